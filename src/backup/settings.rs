//! What a backup of one server is asked to do, resolved from `barman.conf` and the
//! command line: checkpoint, rate limit, storage layout and compression, retries. The
//! checks and their messages follow Barman's `PgBaseBackupCompression.validate` and
//! `check_non_negative`.

use std::time::Duration;

use barman_protocol::command::{BaseBackupOptions, Checkpoint, Manifest, ManifestChecksums};

use super::compress::{Compression, Method};
use super::store::Layout;
use crate::config::ServerConfig;

/// Command-line values that override the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--immediate-checkpoint` / `--no-immediate-checkpoint`.
    pub immediate_checkpoint: Option<bool>,
    /// `--bwlimit` (kB/s, 0 = none).
    pub bwlimit: Option<u64>,
    /// `--retry-times` / `--no-retry`.
    pub retry_times: Option<u64>,
    /// `--retry-sleep`.
    pub retry_sleep: Option<u64>,
}

/// Where compression happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Here, after the archives arrive.
    Client,
    /// On PostgreSQL, before they are sent (15+).
    Server,
}

/// The resolved backup settings of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSettings {
    /// Ask for a fast checkpoint.
    pub fast_checkpoint: bool,
    /// MAX_RATE in kB/s.
    pub max_rate: Option<u32>,
    /// Compression, with where it happens.
    pub compression: Option<(Compression, Location)>,
    /// Extract the archives (`plain`) rather than keep tar files.
    pub plain: bool,
    /// Attempts after a failed copy.
    pub retry_times: u64,
    /// Pause between attempts.
    pub retry_sleep: Duration,
    /// `application_name` of the backup connection.
    pub application_name: String,
}

impl BackupSettings {
    /// Resolve and check the settings of `server`; the error is the message to print.
    pub fn resolve(server: &ServerConfig, overrides: &Overrides) -> Result<BackupSettings, String> {
        match server.text("backup_method") {
            Some("postgres") => {}
            other => {
                return Err(format!(
                    "backup_method = {} is not supported: this implementation takes backups over the streaming replication protocol only (backup_method = postgres)",
                    other.unwrap_or("rsync")
                ))
            }
        }
        if let Some(encryption) = server.encryption() {
            return Err(format!(
                "encryption = {encryption} is not supported by this barman: the backup would be \
                 stored unencrypted; remove encryption from the configuration of server '{}', or \
                 keep Python Barman for this server",
                server.name
            ));
        }
        let bwlimit = match overrides.bwlimit {
            Some(v) => Some(v),
            None => server.int("bandwidth_limit").map(|v| v.max(0) as u64),
        };
        let max_rate = match bwlimit {
            None | Some(0) => None,
            Some(rate) if (32..=1_048_576).contains(&rate) => Some(rate as u32),
            Some(rate) => {
                return Err(format!(
                    "bandwidth_limit {rate} is out of range: PostgreSQL accepts 32 to 1048576 kB/s (or 0 for no limit)"
                ))
            }
        };
        let compression = match server.text("backup_compression") {
            None | Some("none") => None,
            Some(name) => {
                let method = Method::from_name(name)
                    .ok_or_else(|| format!("unknown backup_compression '{name}'"))?;
                let level = server.int("backup_compression_level").map(|l| l as i32);
                let workers = server.int("backup_compression_workers").map(|w| w as u32);
                check_level(method, level)?;
                if workers.is_some() && method != Method::Zstd {
                    return Err(format!(
                        "backup_compression_workers is not compatible with compression {}",
                        method.name()
                    ));
                }
                let location = match server.text("backup_compression_location") {
                    Some("server") => Location::Server,
                    _ => Location::Client,
                };
                Some((
                    Compression {
                        method,
                        level,
                        workers,
                    },
                    location,
                ))
            }
        };
        let format = server.text("backup_compression_format");
        let plain = match (&compression, format) {
            (None, _) => true,
            (Some((_, Location::Server)), Some("plain")) => true,
            (Some((_, location)), Some("plain")) => {
                return Err(format!(
                    "backup_compression_format plain is not compatible with backup_compression_location {}",
                    match location {
                        Location::Client => "client",
                        Location::Server => "server",
                    }
                ))
            }
            _ => false,
        };
        Ok(BackupSettings {
            fast_checkpoint: overrides
                .immediate_checkpoint
                .unwrap_or_else(|| server.flag("immediate_checkpoint")),
            max_rate,
            compression,
            plain,
            retry_times: overrides
                .retry_times
                .unwrap_or_else(|| server.int("basebackup_retry_times").unwrap_or(0).max(0) as u64),
            retry_sleep: Duration::from_secs(overrides.retry_sleep.unwrap_or_else(|| {
                server.int("basebackup_retry_sleep").unwrap_or(30).max(0) as u64
            })),
            application_name: server
                .text("streaming_backup_name")
                .unwrap_or("barman_streaming_backup")
                .to_string(),
        })
    }

    /// Problems with the server's version (server-side compression needs 15+).
    pub fn check_server(&self, major: u32) -> Result<(), String> {
        if let Some((_, Location::Server)) = self.compression {
            if major < 15 {
                return Err(
                    "backup_compression_location = server requires PostgreSQL 15 or greater".into(),
                );
            }
        }
        Ok(())
    }

    /// How the archives are stored.
    pub fn layout(&self) -> Layout {
        let server = match self.compression {
            Some((c, Location::Server)) => Some(c.method),
            _ => None,
        };
        if self.plain {
            return Layout::Plain { server };
        }
        let client = match self.compression {
            Some((mut c, Location::Client)) => {
                if c.method == Method::Zstd && c.workers.is_none() {
                    // Unset: use the cores (Barman leaves pg_basebackup single-threaded).
                    c.workers = std::thread::available_parallelism()
                        .ok()
                        .map(|n| n.get().min(8) as u32);
                }
                Some(c)
            }
            _ => None,
        };
        Layout::Tar { client, server }
    }

    /// The BASE_BACKUP options: manifest with CRC-32C checksums, no WAL, wait for the
    /// archiver (as pg_basebackup `--wal-method=none` does for Barman; the executor
    /// turns that off where it waits itself), progress sizes.
    pub fn base_backup_options(&self, label: &str) -> BaseBackupOptions {
        let mut options = BaseBackupOptions::default();
        options.label = Some(label.to_string());
        options.progress = true;
        options.checkpoint = if self.fast_checkpoint {
            Checkpoint::Fast
        } else {
            Checkpoint::Spread
        };
        options.wal = false;
        options.wait = true;
        options.max_rate = self.max_rate;
        options.manifest = Manifest::Yes;
        options.manifest_checksums = Some(ManifestChecksums::Crc32c);
        if let Some((c, Location::Server)) = self.compression {
            let mut p = barman_protocol::command::Compression::new(c.method.protocol());
            p.level = c.level;
            p.workers = c.workers;
            options.compression = Some(p);
        }
        options
    }
}

fn check_level(method: Method, level: Option<i32>) -> Result<(), String> {
    let Some(level) = level else { return Ok(()) };
    let (ok, range) = match method {
        Method::Gzip => (level == -1 || (1..=9).contains(&level), "between 1 and 9"),
        Method::Lz4 => ((0..=12).contains(&level), "between 0 and 12"),
        Method::Zstd => ((-7..=22).contains(&level), "between -7 and 22"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "backup_compression_level {level} unsupported by compression algorithm. {} expects a compression level {range}.",
            method.name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MainConfig;

    fn server(extra: &str) -> Result<BackupSettings, String> {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("barman.conf");
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = x\nbackup_method = postgres\n{extra}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let cfg = MainConfig::load(&conf).unwrap().complete().unwrap();
        BackupSettings::resolve(cfg.server("pg").unwrap(), &Overrides::default())
    }

    #[test]
    fn defaults_are_a_plain_backup_with_a_spread_checkpoint() {
        let s = server("").unwrap();
        assert!(s.plain && !s.fast_checkpoint && s.max_rate.is_none());
        assert_eq!(s.layout(), Layout::Plain { server: None });
        assert_eq!(s.retry_sleep, Duration::from_secs(30));
        let o = s.base_backup_options("barman_backup");
        assert!(o.wait && !o.wal && o.manifest == Manifest::Yes);
    }

    #[test]
    fn compression_settings_are_checked_as_barman_does() {
        let s = server("backup_compression = gzip\nbackup_compression_level = 5").unwrap();
        assert!(
            matches!(s.layout(), Layout::Tar { client: Some(c), server: None } if c.level == Some(5))
        );
        let s = server("backup_compression = zstd\nbackup_compression_location = server\nbackup_compression_format = plain").unwrap();
        assert_eq!(
            s.layout(),
            Layout::Plain {
                server: Some(Method::Zstd)
            }
        );
        assert!(s.check_server(14).is_err());
        assert_eq!(
            server("backup_compression = lz4\nbackup_compression_format = plain").unwrap_err(),
            "backup_compression_format plain is not compatible with backup_compression_location client"
        );
        assert_eq!(
            server("backup_compression = gzip\nbackup_compression_workers = 2").unwrap_err(),
            "backup_compression_workers is not compatible with compression gzip"
        );
        assert!(server("backup_compression = gzip\nbackup_compression_level = 12").is_err());
        assert!(server("bandwidth_limit = 10").is_err());
        assert_eq!(server("bandwidth_limit = 0").unwrap().max_rate, None);
        assert_eq!(server("bandwidth_limit = 100").unwrap().max_rate, Some(100));
    }

    #[test]
    fn other_backup_methods_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("barman.conf");
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = x\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let cfg = MainConfig::load(&conf).unwrap().complete().unwrap();
        let err =
            BackupSettings::resolve(cfg.server("pg").unwrap(), &Overrides::default()).unwrap_err();
        assert!(
            err.starts_with("backup_method = rsync is not supported"),
            "{err}"
        );
    }
}
