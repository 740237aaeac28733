//! The recovery configuration written into the restored data directory, per the backup's
//! PostgreSQL version, and Barman's pass over `postgresql.conf` / `postgresql.auto.conf`
//! (BARMAN.md §4.4, PROTOCOL.md §8):
//!
//! - 12+: lines appended to `postgresql.auto.conf` (or `--recovery-conf-filename`) and an
//!   empty `recovery.signal` (`standby.signal` in standby mode); older: a `recovery.conf`.
//! - `archive_command` is commented out as `#BARMAN#archive_command = …` and followed by
//!   `archive_command = false`; existing `recovery_target*` settings are commented out. The
//!   originals are kept as `<file>.origin`.
//! - Settings that point outside the data directory are reported for review.
//!
//! Pure: text in, text out. Line numbers in reports are 0-based, as Barman prints them.

use super::target::{python_datetime, RecoveryTarget, Target};

/// How PostgreSQL will fetch WAL during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreCommand {
    /// `cp <wal_dest>/%f %p`, with `recovery_end_command = 'rm -fr <wal_dest>'`.
    Copy {
        /// Where the WAL was copied (absolute).
        wal_dest: String,
    },
    /// `barman get-wal` on this host.
    LocalGetWal {
        /// The server name.
        server: String,
        /// `barman_user`.
        barman_user: String,
        /// `-c CONFIG` when the configuration is not at a default place.
        config: Option<String>,
    },
    /// `barman-wal-restore` on the remote host, calling back over SSH.
    RemoteGetWal {
        /// The server name.
        server: String,
        /// `barman_user`.
        barman_user: String,
        /// This host's name as the remote host reaches it.
        host: String,
        /// `--recovery-option-port`.
        port: Option<u16>,
        /// `parallel_jobs` (`-p N` when above 1).
        jobs: u32,
    },
    /// No restore command (standby mode with the WAL in `pg_wal`).
    None,
}

/// What the recovery configuration is made of.
#[derive(Debug, Clone)]
pub struct RecoverySettings<'a> {
    /// `server_version_num` of the backup.
    pub version: u32,
    /// The target.
    pub target: &'a RecoveryTarget,
    /// How WAL is fetched.
    pub restore: RestoreCommand,
    /// `--standby-mode`.
    pub standby: bool,
}

/// The lines of recovery settings, in Barman's order.
pub fn recovery_lines(s: &RecoverySettings<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    match &s.restore {
        RestoreCommand::Copy { wal_dest } => {
            // Barman's exact lines; a path that the shell would split is double-quoted.
            let plain = wal_dest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b));
            let (dir, files) = if plain {
                (wal_dest.clone(), format!("{wal_dest}/%f"))
            } else {
                let q = wal_dest
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('$', "\\$")
                    .replace('`', "\\`")
                    .replace('\'', "''");
                (format!("\"{q}\""), format!("\"{q}/%f\""))
            };
            lines.push(format!("restore_command = 'cp {files} %p'"));
            lines.push(format!("recovery_end_command = 'rm -fr {dir}'"));
        }
        RestoreCommand::LocalGetWal {
            server,
            barman_user,
            config,
        } => {
            let partial = if s.standby { "" } else { "-P" };
            let config = config
                .as_deref()
                .map(|c| format!(" -c {c}"))
                .unwrap_or_default();
            lines.push(format!(
                "# The 'barman get-wal' command must run as '{barman_user}' user"
            ));
            lines.push(format!(
                "restore_command = 'barman{config} get-wal {partial} {server} %f > %p'"
            ));
        }
        RestoreCommand::RemoteGetWal {
            server,
            barman_user,
            host,
            port,
            jobs,
        } => {
            let partial = if s.standby { "" } else { "-P" };
            let port = port.map(|p| format!("--port {p}")).unwrap_or_default();
            let jobs = if *jobs > 1 {
                format!(" -p {jobs}")
            } else {
                String::new()
            };
            lines.push(
                "# The 'barman-wal-restore' command is provided in the 'barman-cli' package".into(),
            );
            let command = format!(
                "restore_command = 'barman-wal-restore {partial} -U {barman_user} {port} {host} {server} %f %p{jobs}'"
            );
            lines.push(command.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        RestoreCommand::None => {}
    }
    let t = s.target;
    match &t.target {
        Some(Target::Time(time)) => lines.push(format!(
            "recovery_target_time = '{}'",
            python_datetime(time)
        )),
        Some(Target::Xid(xid)) => lines.push(format!("recovery_target_xid = '{xid}'")),
        Some(Target::Lsn(lsn)) => lines.push(format!("recovery_target_lsn = '{lsn}'")),
        Some(Target::Name(name)) => lines.push(format!(
            "recovery_target_name = '{}'",
            name.replace('\'', "''")
        )),
        Some(Target::Immediate) => lines.push("recovery_target = 'immediate'".into()),
        None => {}
    }
    if t.exclusive
        && matches!(
            t.target,
            Some(Target::Time(_) | Target::Xid(_) | Target::Lsn(_))
        )
    {
        lines.push("recovery_target_inclusive = 'False'".into());
    }
    if let Some(tli) = t.timeline {
        lines.push(format!("recovery_target_timeline = {tli}"));
    }
    if let Some(action) = t.action {
        if s.version < 90500 {
            lines.push("pause_at_recovery_target = 'on'".into());
        } else {
            lines.push(format!("recovery_target_action = '{}'", action.as_str()));
        }
    }
    lines
}

/// Where the recovery settings go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryFiles {
    /// 12+: append `lines` to `file` (after mangling) and create the empty `signal` file.
    AutoConf {
        /// `postgresql.auto.conf` or `--recovery-conf-filename`.
        file: String,
        /// The lines to append.
        lines: Vec<String>,
        /// `recovery.signal` or `standby.signal`.
        signal: &'static str,
    },
    /// Older: a new `recovery.conf` with this text.
    RecoveryConf {
        /// The content.
        text: String,
    },
}

/// The recovery files for `settings`; `conf_filename` is `--recovery-conf-filename`.
pub fn recovery_files(
    settings: &RecoverySettings<'_>,
    conf_filename: Option<&str>,
) -> RecoveryFiles {
    let mut lines = recovery_lines(settings);
    if settings.version >= 120000 {
        RecoveryFiles::AutoConf {
            file: conf_filename.unwrap_or("postgresql.auto.conf").to_string(),
            lines,
            signal: if settings.standby {
                "standby.signal"
            } else {
                "recovery.signal"
            },
        }
    } else {
        if settings.standby {
            lines.push("standby_mode = 'on'".into());
        }
        RecoveryFiles::RecoveryConf {
            text: lines.join("\n") + "\n",
        }
    }
}

/// The file Barman reports as "the recovery configuration file".
pub fn recovery_file_name(version: u32, conf_filename: Option<&str>) -> String {
    match conf_filename {
        Some(f) => f.to_string(),
        None if version < 120000 => "recovery.conf".into(),
        None => "postgresql.auto.conf".into(),
    }
}

/// A setting found in a configuration file (Barman's `Assertion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The file's base name.
    pub filename: String,
    /// The line, counted from 0.
    pub line: usize,
    /// The setting.
    pub key: String,
    /// The new value (changes; `None` when only commented out) or the value found (warnings).
    pub value: Option<String>,
}

impl Assertion {
    /// `postgresql.conf line 823: archive_command = false`.
    pub fn render(&self) -> String {
        format!(
            "{} line {}: {} = {}",
            self.filename,
            self.line,
            self.key,
            self.value.as_deref().unwrap_or("None")
        )
    }

    /// As JSON, Barman's namedtuple as a list.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!([self.filename, self.line, self.key, self.value])
    }
}

/// Settings forced during recovery (`None`: only commented out).
const OPTIONS_TO_MANGLE: &[(&str, Option<&str>)] = &[
    ("archive_command", Some("false")),
    ("recovery_target", None),
    ("recovery_target_name", None),
    ("recovery_target_time", None),
    ("recovery_target_xid", None),
    ("recovery_target_lsn", None),
    ("recovery_target_inclusive", None),
    ("recovery_target_timeline", None),
    ("recovery_target_action", None),
];

/// Settings to review after a recovery.
const DANGEROUS_OPTIONS: &[&str] = &[
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
    "unix_socket_directory",
    "unix_socket_directories",
    "include",
    "include_dir",
    "include_if_exists",
];

/// Barman's `^\s*([^\s=]+)\s*=?\s*(.*)$` on one line (without its end of line).
fn setting(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start();
    let key_len = rest
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(rest.len());
    if key_len == 0 {
        return None;
    }
    let (key, after) = rest.split_at(key_len);
    let after = after.trim_start();
    let after = after.strip_prefix('=').unwrap_or(after).trim_start();
    Some((key, after))
}

/// Comment out dangerous settings of a configuration file and append `append` lines.
/// Returns the new content and the changes made.
pub fn mangle(
    filename: &str,
    content: &[u8],
    append: Option<&[String]>,
) -> (Vec<u8>, Vec<Assertion>) {
    let mut out = Vec::with_capacity(content.len() + 256);
    let mut changes = Vec::new();
    let mut last_line: Option<&[u8]> = None;
    for (number, line) in content.split_inclusive(|b| *b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(line);
        let body = text.trim_end_matches(['\n', '\r']);
        if let Some((key, _)) = setting(body) {
            if let Some((_, value)) = OPTIONS_TO_MANGLE.iter().find(|(k, _)| *k == key) {
                out.extend_from_slice(b"#BARMAN#");
                out.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    out.push(b'\n');
                }
                if let Some(v) = value {
                    out.extend_from_slice(format!("{key} = {v}\n").as_bytes());
                }
                changes.push(Assertion {
                    filename: filename.to_string(),
                    line: number,
                    key: key.to_string(),
                    value: value.map(str::to_string),
                });
                continue;
            }
        }
        last_line = Some(line);
        out.extend_from_slice(line);
    }
    if let Some(lines) = append {
        if last_line.is_some_and(|l| !l.ends_with(b"\n"))
            || (!out.is_empty() && !out.ends_with(b"\n"))
        {
            out.push(b'\n');
        }
        out.extend_from_slice((lines.join("\n") + "\n").as_bytes());
    }
    (out, changes)
}

/// The settings of a configuration file a DBA must review after a recovery.
pub fn detect_issues(filename: &str, content: &[u8]) -> Vec<Assertion> {
    let text = String::from_utf8_lossy(content);
    let mut found = Vec::new();
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        if let Some((key, value)) = setting(body) {
            if DANGEROUS_OPTIONS.contains(&key) {
                found.push(Assertion {
                    filename: filename.to_string(),
                    line: number,
                    key: key.to_string(),
                    value: Some(value.to_string()),
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::target::{parse_time, TargetAction, TimelineTarget};

    fn pitr_time() -> RecoveryTarget {
        RecoveryTarget {
            target: Some(Target::Time(
                parse_time("2026-11-22 02:03:37+00:00").unwrap().0,
            )),
            action: Some(TargetAction::Promote),
            ..RecoveryTarget::default()
        }
    }

    #[test]
    fn pg12_and_later_append_to_auto_conf_with_a_signal_file() {
        let target = pitr_time();
        let s = RecoverySettings {
            version: 150020,
            target: &target,
            restore: RestoreCommand::Copy {
                wal_dest: "/srv/rec/up2/barman_wal".into(),
            },
            standby: false,
        };
        assert_eq!(
            recovery_files(&s, None),
            RecoveryFiles::AutoConf {
                file: "postgresql.auto.conf".into(),
                lines: vec![
                    "restore_command = 'cp /srv/rec/up2/barman_wal/%f %p'".into(),
                    "recovery_end_command = 'rm -fr /srv/rec/up2/barman_wal'".into(),
                    "recovery_target_time = '2026-11-22 02:03:37+00:00'".into(),
                    "recovery_target_action = 'promote'".into(),
                ],
                signal: "recovery.signal",
            }
        );
        let standby = RecoverySettings {
            standby: true,
            restore: RestoreCommand::None,
            ..s.clone()
        };
        let RecoveryFiles::AutoConf { signal, .. } = recovery_files(&standby, Some("custom.conf"))
        else {
            panic!("12+ uses a signal file")
        };
        assert_eq!(signal, "standby.signal");
    }

    #[test]
    fn wal_paths_with_spaces_are_quoted() {
        let target = pitr_time();
        let s = RecoverySettings {
            version: 160000,
            target: &target,
            restore: RestoreCommand::Copy {
                wal_dest: "/srv/my data/barman_wal".into(),
            },
            standby: false,
        };
        let lines = recovery_lines(&s);
        assert_eq!(
            lines[0],
            r#"restore_command = 'cp "/srv/my data/barman_wal/%f" %p'"#
        );
        assert_eq!(
            lines[1],
            r#"recovery_end_command = 'rm -fr "/srv/my data/barman_wal"'"#
        );
    }

    #[test]
    fn older_versions_get_a_recovery_conf() {
        let target = RecoveryTarget {
            target: Some(Target::Xid(barman_protocol::wal::TransactionId::new(745))),
            timeline: Some(TimelineTarget::Latest),
            exclusive: true,
            ..RecoveryTarget::default()
        };
        let s = RecoverySettings {
            version: 110005,
            target: &target,
            restore: RestoreCommand::Copy {
                wal_dest: "/d/barman_wal".into(),
            },
            standby: true,
        };
        assert_eq!(
            recovery_files(&s, None),
            RecoveryFiles::RecoveryConf {
                text: "restore_command = 'cp /d/barman_wal/%f %p'\nrecovery_end_command = 'rm -fr /d/barman_wal'\nrecovery_target_xid = '745'\nrecovery_target_inclusive = 'False'\nrecovery_target_timeline = latest\nstandby_mode = 'on'\n".into()
            }
        );
        assert_eq!(recovery_file_name(110005, None), "recovery.conf");
        assert_eq!(recovery_file_name(160000, None), "postgresql.auto.conf");
    }

    #[test]
    fn get_wal_restore_commands_as_barman_writes_them() {
        let target = RecoveryTarget {
            target: Some(Target::Immediate),
            ..RecoveryTarget::default()
        };
        let mut s = RecoverySettings {
            version: 160000,
            target: &target,
            restore: RestoreCommand::LocalGetWal {
                server: "pg".into(),
                barman_user: "barman".into(),
                config: None,
            },
            standby: false,
        };
        assert_eq!(
            recovery_lines(&s),
            [
                "# The 'barman get-wal' command must run as 'barman' user",
                "restore_command = 'barman get-wal -P pg %f > %p'",
                "recovery_target = 'immediate'"
            ]
        );
        s.standby = true;
        assert_eq!(
            recovery_lines(&s)[1],
            "restore_command = 'barman get-wal  pg %f > %p'"
        );
        s.standby = false;
        s.restore = RestoreCommand::RemoteGetWal {
            server: "pg".into(),
            barman_user: "barman".into(),
            host: "backup.example".into(),
            port: None,
            jobs: 4,
        };
        assert_eq!(
            recovery_lines(&s)[1],
            "restore_command = 'barman-wal-restore -P -U barman backup.example pg %f %p -p 4'"
        );
    }

    #[test]
    fn archive_command_and_recovery_targets_are_mangled() {
        let conf = b"# comment\narchive_mode = on\narchive_command = 'cp %p /arch/%f'\n  recovery_target_name='x'\n#archive_command = 'no'\nport = 5432";
        let (out, changes) = mangle(
            "postgresql.conf",
            conf,
            Some(&["restore_command = 'cp /d/barman_wal/%f %p'".to_string()]),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# comment\narchive_mode = on\n#BARMAN#archive_command = 'cp %p /arch/%f'\narchive_command = false\n#BARMAN#  recovery_target_name='x'\n#archive_command = 'no'\nport = 5432\nrestore_command = 'cp /d/barman_wal/%f %p'\n"
        );
        assert_eq!(
            changes.iter().map(Assertion::render).collect::<Vec<_>>(),
            [
                "postgresql.conf line 2: archive_command = false",
                "postgresql.conf line 3: recovery_target_name = None"
            ]
        );
    }

    #[test]
    fn dangerous_settings_are_reported_with_their_values() {
        let conf = b"data_directory = '/srv/pg'\nunix_socket_directories = '/run/pg'\ninclude 'extra.conf'\nwork_mem = 4MB\n";
        let found = detect_issues("postgresql.conf", conf);
        assert_eq!(
            found.iter().map(Assertion::render).collect::<Vec<_>>(),
            [
                "postgresql.conf line 0: data_directory = '/srv/pg'",
                "postgresql.conf line 1: unix_socket_directories = '/run/pg'",
                "postgresql.conf line 2: include = 'extra.conf'"
            ]
        );
    }
}
