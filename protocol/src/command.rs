//! Replication commands as a typed enum, rendered to the exact SQL text each server version
//! accepts (STYLE.md rule 3): identifiers and literals are quoted in one place ([`quote_ident`],
//! [`quote_literal`]) and nothing else in the crate builds command strings.
//!
//! Grammar: `src/backend/replication/repl_gram.y` of each major, and PROTOCOL.md §2, §3.1–3.2,
//! §5.1 and §9. Before 15, BASE_BACKUP and CREATE_REPLICATION_SLOT take bare keywords
//! (`BASE_BACKUP LABEL 'x' FAST ...`); from 15 on, a parenthesised option list
//! (`BASE_BACKUP ( LABEL 'x', CHECKPOINT 'fast', ... )`), the only form 15+ accepts for
//! BASE_BACKUP.

use std::fmt;

use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};

/// The server's version as `server_version_num` spells it (`150020` = 15.20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion(u32);

impl ServerVersion {
    /// From `server_version_num` (e.g. 170004).
    pub const fn from_num(num: u32) -> ServerVersion {
        ServerVersion(num)
    }

    /// From a major version alone (minor 0).
    pub const fn from_major(major: u32) -> ServerVersion {
        ServerVersion(major * 10000)
    }

    /// From the `server_version` parameter (`15.20 (Debian 15.20-1)`, `16beta1`, `18.3`).
    pub fn parse(text: &str) -> Result<ServerVersion> {
        let digits_then = |s: &str| -> (Option<u32>, usize) {
            let n = s.chars().take_while(char::is_ascii_digit).count();
            (s[..n].parse().ok(), n)
        };
        let (major, n) = digits_then(text);
        let major = major.ok_or_else(|| {
            Error::protocol(format!("cannot read the server version from \"{text}\""))
        })?;
        if major < 10 {
            return Err(Error::protocol(format!(
                "server version \"{text}\" is not supported (PostgreSQL 13 to 18 are)"
            )));
        }
        let minor = match text[n..].strip_prefix('.') {
            Some(rest) => digits_then(rest).0.unwrap_or(0),
            None => 0,
        };
        Ok(ServerVersion(
            major.saturating_mul(10000).saturating_add(minor.min(9999)),
        ))
    }

    /// The major version (13 to 18).
    pub const fn major(self) -> u32 {
        self.0 / 10000
    }

    /// The `server_version_num` value.
    pub const fn num(self) -> u32 {
        self.0
    }

    /// 15+: BASE_BACKUP takes `( option, ... )` and sends one COPY with typed messages;
    /// CREATE_REPLICATION_SLOT takes `( option, ... )`; READ_REPLICATION_SLOT exists; server-side
    /// compression and backup targets exist.
    pub const fn has_generic_options(self) -> bool {
        self.major() >= 15
    }

    /// 17+: INCREMENTAL and UPLOAD_MANIFEST.
    pub const fn has_incremental_backup(self) -> bool {
        self.major() >= 17
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.0 % 10000)
    }
}

/// `"name"` with embedded double quotes doubled: an identifier as the replication grammar
/// reads it, case preserved.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded single quotes doubled (standard_conforming_strings semantics: a
/// backslash is an ordinary character in the replication grammar).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The `CHECKPOINT` option of BASE_BACKUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checkpoint {
    /// Spread over `checkpoint_completion_target` (the server's default).
    #[default]
    Spread,
    /// Immediate (`FAST`, `CHECKPOINT 'fast'`).
    Fast,
}

/// The `MANIFEST` option of BASE_BACKUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Manifest {
    /// No manifest.
    #[default]
    No,
    /// A manifest.
    Yes,
    /// A manifest with every path hex-encoded.
    ForceEncode,
}

/// `MANIFEST_CHECKSUMS`: the algorithm of the per-file checksums in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestChecksums {
    /// No checksums.
    None,
    /// CRC-32C (the server's default).
    Crc32c,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl ManifestChecksums {
    fn as_str(self) -> &'static str {
        match self {
            ManifestChecksums::None => "NONE",
            ManifestChecksums::Crc32c => "CRC32C",
            ManifestChecksums::Sha224 => "SHA224",
            ManifestChecksums::Sha256 => "SHA256",
            ManifestChecksums::Sha384 => "SHA384",
            ManifestChecksums::Sha512 => "SHA512",
        }
    }
}

/// A server-side compression algorithm (15+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionMethod {
    /// gzip (`.gz`).
    Gzip,
    /// LZ4 frames (`.lz4`).
    Lz4,
    /// Zstandard (`.zst`).
    Zstd,
}

impl CompressionMethod {
    fn as_str(self) -> &'static str {
        match self {
            CompressionMethod::Gzip => "gzip",
            CompressionMethod::Lz4 => "lz4",
            CompressionMethod::Zstd => "zstd",
        }
    }
}

/// Server-side compression of the archives (15+): `COMPRESSION` and `COMPRESSION_DETAIL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The algorithm.
    pub method: CompressionMethod,
    /// `level=N`.
    pub level: Option<i32>,
    /// `workers=N` (zstd only).
    pub workers: Option<u32>,
    /// `long` distance matching (zstd only, 16+).
    pub long: bool,
}

impl Compression {
    /// The algorithm at its default level.
    pub fn new(method: CompressionMethod) -> Compression {
        Compression {
            method,
            level: None,
            workers: None,
            long: false,
        }
    }

    fn detail(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(level) = self.level {
            parts.push(format!("level={level}"));
        }
        if let Some(workers) = self.workers {
            parts.push(format!("workers={workers}"));
        }
        if self.long {
            parts.push("long".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

/// The options of BASE_BACKUP. `Default` is what the server does without options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BaseBackupOptions {
    /// `LABEL`: written into `backup_label`.
    pub label: Option<String>,
    /// `PROGRESS`: compute tablespace sizes first (for progress reporting).
    pub progress: bool,
    /// `FAST` / `CHECKPOINT 'fast'`.
    pub checkpoint: Checkpoint,
    /// `WAL`: append the needed WAL to the base archive.
    pub wal: bool,
    /// `NOWAIT` / `WAIT false` when false: do not wait for the WAL to be archived.
    pub wait: bool,
    /// `MAX_RATE` in kB/s (32 to 1048576).
    pub max_rate: Option<u32>,
    /// `TABLESPACE_MAP`: include a `tablespace_map` file.
    pub tablespace_map: bool,
    /// `NOVERIFY_CHECKSUMS` / `VERIFY_CHECKSUMS false` when false.
    pub verify_checksums: bool,
    /// `MANIFEST`.
    pub manifest: Manifest,
    /// `MANIFEST_CHECKSUMS`.
    pub manifest_checksums: Option<ManifestChecksums>,
    /// `COMPRESSION` and `COMPRESSION_DETAIL` (15+).
    pub compression: Option<Compression>,
    /// `INCREMENTAL` (17+; needs UPLOAD_MANIFEST first on the same connection).
    pub incremental: bool,
}

impl Default for BaseBackupOptions {
    fn default() -> BaseBackupOptions {
        BaseBackupOptions {
            label: None,
            progress: false,
            checkpoint: Checkpoint::Spread,
            wal: false,
            wait: true,
            max_rate: None,
            tablespace_map: false,
            verify_checksums: true,
            manifest: Manifest::No,
            manifest_checksums: None,
            compression: None,
            incremental: false,
        }
    }
}

/// A replication command for a physical walsender.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationCommand {
    /// `IDENTIFY_SYSTEM`.
    IdentifySystem,
    /// `SHOW name`.
    Show {
        /// The setting (may be dotted, `foo.bar`).
        name: String,
    },
    /// `TIMELINE_HISTORY tli`.
    TimelineHistory {
        /// The timeline whose history file is wanted.
        timeline: TimelineId,
    },
    /// `CREATE_REPLICATION_SLOT "name" [TEMPORARY] PHYSICAL [RESERVE_WAL]`.
    CreatePhysicalSlot {
        /// The slot's name.
        slot_name: String,
        /// Dropped at the end of the session.
        temporary: bool,
        /// Reserve WAL from now on (else from the first START_REPLICATION).
        reserve_wal: bool,
    },
    /// `DROP_REPLICATION_SLOT "name" [WAIT]`.
    DropSlot {
        /// The slot's name.
        slot_name: String,
        /// Wait until the slot is no longer active instead of failing.
        wait: bool,
    },
    /// `READ_REPLICATION_SLOT "name"` (15+).
    ReadSlot {
        /// The slot's name.
        slot_name: String,
    },
    /// `START_REPLICATION [SLOT "name"] PHYSICAL X/X [TIMELINE n]`.
    StartReplication {
        /// The physical slot to use.
        slot_name: Option<String>,
        /// Where to start (clients start at a segment boundary).
        start: Lsn,
        /// The timeline; `None` for the server's current one.
        timeline: Option<TimelineId>,
    },
    /// `BASE_BACKUP ...`.
    BaseBackup(BaseBackupOptions),
    /// `UPLOAD_MANIFEST` (17+), followed by a COPY IN of the previous backup's manifest.
    UploadManifest,
}

impl ReplicationCommand {
    /// Checks the command exists with these options on `version`.
    pub fn check(&self, version: ServerVersion) -> Result<()> {
        let needs = |what: &str, major: u32| -> Result<()> {
            if version.major() < major {
                Err(Error::usage(format!(
                    "{what} needs PostgreSQL {major} or later, the server runs {version}"
                )))
            } else {
                Ok(())
            }
        };
        match self {
            ReplicationCommand::ReadSlot { .. } => needs("READ_REPLICATION_SLOT", 15),
            ReplicationCommand::UploadManifest => needs("UPLOAD_MANIFEST", 17),
            ReplicationCommand::BaseBackup(o) => {
                if o.compression.is_some() {
                    needs("server-side compression of BASE_BACKUP", 15)?;
                }
                if o.compression.is_some_and(|c| c.long) {
                    needs("zstd long-distance mode", 16)?;
                }
                if o.incremental {
                    needs("an incremental BASE_BACKUP", 17)?;
                }
                if let Some(rate) = o.max_rate {
                    if !(32..=1_048_576).contains(&rate) {
                        return Err(Error::usage(format!(
                            "MAX_RATE {rate} is out of range (32 to 1048576 kB/s)"
                        )));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The SQL text for `version`, after [`check`](Self::check).
    pub fn to_sql(&self, version: ServerVersion) -> Result<String> {
        self.check(version)?;
        Ok(self.display_for(version).to_string())
    }

    /// A `Display` of the command as `version` reads it (no checks: see
    /// [`to_sql`](Self::to_sql)).
    pub fn display_for(&self, version: ServerVersion) -> Rendered<'_> {
        Rendered {
            command: self,
            version,
        }
    }

    /// The CommandComplete tag the server ends this command with.
    pub fn tag(&self) -> &'static str {
        match self {
            ReplicationCommand::IdentifySystem => "IDENTIFY_SYSTEM",
            ReplicationCommand::Show { .. } => "SHOW",
            ReplicationCommand::TimelineHistory { .. } => "TIMELINE_HISTORY",
            ReplicationCommand::CreatePhysicalSlot { .. } => "CREATE_REPLICATION_SLOT",
            ReplicationCommand::DropSlot { .. } => "DROP_REPLICATION_SLOT",
            ReplicationCommand::ReadSlot { .. } => "READ_REPLICATION_SLOT",
            ReplicationCommand::StartReplication { .. } => "START_REPLICATION",
            ReplicationCommand::BaseBackup(_) => "BASE_BACKUP",
            ReplicationCommand::UploadManifest => "UPLOAD_MANIFEST",
        }
    }
}

/// A command rendered for one server version (see [`ReplicationCommand::display_for`]).
#[derive(Debug, Clone, Copy)]
pub struct Rendered<'a> {
    command: &'a ReplicationCommand,
    version: ServerVersion,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let generic = self.version.has_generic_options();
        match self.command {
            ReplicationCommand::IdentifySystem => f.write_str("IDENTIFY_SYSTEM"),
            ReplicationCommand::Show { name } => {
                // Each dotted part is an identifier.
                let parts: Vec<String> = name.split('.').map(quote_ident).collect();
                write!(f, "SHOW {}", parts.join("."))
            }
            ReplicationCommand::TimelineHistory { timeline } => {
                write!(f, "TIMELINE_HISTORY {timeline}")
            }
            ReplicationCommand::CreatePhysicalSlot {
                slot_name,
                temporary,
                reserve_wal,
            } => {
                write!(f, "CREATE_REPLICATION_SLOT {}", quote_ident(slot_name))?;
                if *temporary {
                    f.write_str(" TEMPORARY")?;
                }
                f.write_str(" PHYSICAL")?;
                match (*reserve_wal, generic) {
                    (true, true) => f.write_str(" (RESERVE_WAL)"),
                    (true, false) => f.write_str(" RESERVE_WAL"),
                    (false, _) => Ok(()),
                }
            }
            ReplicationCommand::DropSlot { slot_name, wait } => {
                write!(f, "DROP_REPLICATION_SLOT {}", quote_ident(slot_name))?;
                if *wait {
                    f.write_str(" WAIT")?;
                }
                Ok(())
            }
            ReplicationCommand::ReadSlot { slot_name } => {
                write!(f, "READ_REPLICATION_SLOT {}", quote_ident(slot_name))
            }
            ReplicationCommand::StartReplication {
                slot_name,
                start,
                timeline,
            } => {
                f.write_str("START_REPLICATION")?;
                if let Some(slot) = slot_name {
                    write!(f, " SLOT {}", quote_ident(slot))?;
                }
                write!(f, " PHYSICAL {start}")?;
                if let Some(tli) = timeline {
                    write!(f, " TIMELINE {tli}")?;
                }
                Ok(())
            }
            ReplicationCommand::BaseBackup(options) => {
                let words = base_backup_options(options, generic);
                match (words.is_empty(), generic) {
                    (true, _) => f.write_str("BASE_BACKUP"),
                    (false, true) => write!(f, "BASE_BACKUP ( {} )", words.join(", ")),
                    (false, false) => write!(f, "BASE_BACKUP {}", words.join(" ")),
                }
            }
            ReplicationCommand::UploadManifest => f.write_str("UPLOAD_MANIFEST"),
        }
    }
}

/// The BASE_BACKUP options in the legacy keyword syntax (13–14) or the generic one (15+).
fn base_backup_options(o: &BaseBackupOptions, generic: bool) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(label) = &o.label {
        words.push(format!("LABEL {}", quote_literal(label)));
    }
    if o.progress {
        words.push("PROGRESS".to_owned());
    }
    if o.checkpoint == Checkpoint::Fast {
        words.push(if generic { "CHECKPOINT 'fast'" } else { "FAST" }.to_owned());
    }
    if o.wal {
        words.push("WAL".to_owned());
    }
    if !o.wait {
        words.push(if generic { "WAIT false" } else { "NOWAIT" }.to_owned());
    }
    if let Some(rate) = o.max_rate {
        words.push(format!("MAX_RATE {rate}"));
    }
    if o.tablespace_map {
        words.push("TABLESPACE_MAP".to_owned());
    }
    if !o.verify_checksums {
        words.push(
            if generic {
                "VERIFY_CHECKSUMS false"
            } else {
                "NOVERIFY_CHECKSUMS"
            }
            .to_owned(),
        );
    }
    match o.manifest {
        Manifest::No => {}
        Manifest::Yes => words.push("MANIFEST 'yes'".to_owned()),
        Manifest::ForceEncode => words.push("MANIFEST 'force-encode'".to_owned()),
    }
    if let Some(algorithm) = o.manifest_checksums {
        words.push(format!(
            "MANIFEST_CHECKSUMS {}",
            quote_literal(algorithm.as_str())
        ));
    }
    if generic {
        if let Some(c) = &o.compression {
            words.push(format!("COMPRESSION {}", quote_literal(c.method.as_str())));
            if let Some(detail) = c.detail() {
                words.push(format!("COMPRESSION_DETAIL {}", quote_literal(&detail)));
            }
        }
        if o.incremental {
            words.push("INCREMENTAL".to_owned());
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    const V13: ServerVersion = ServerVersion::from_num(130001);
    const V14: ServerVersion = ServerVersion::from_num(140013);
    const V15: ServerVersion = ServerVersion::from_num(150020);
    const V17: ServerVersion = ServerVersion::from_num(170004);

    fn sql(c: &ReplicationCommand, v: ServerVersion) -> String {
        c.to_sql(v).unwrap()
    }

    #[test]
    fn parses_server_versions() {
        assert_eq!(
            ServerVersion::parse("15.20 (Debian 15.20-1.pgdg120+1)")
                .unwrap()
                .num(),
            150020
        );
        assert_eq!(ServerVersion::parse("16beta1").unwrap().num(), 160000);
        assert_eq!(ServerVersion::parse("18.3").unwrap().major(), 18);
        assert_eq!(ServerVersion::parse("13.1").unwrap().to_string(), "13.1");
        assert!(ServerVersion::parse("9.6.1").is_err());
        assert!(ServerVersion::parse("x").is_err());
        assert!(ServerVersion::parse("").is_err());
        assert!(ServerVersion::parse("99999999999999").is_err());
    }

    #[test]
    fn renders_simple_commands() {
        assert_eq!(
            sql(&ReplicationCommand::IdentifySystem, V13),
            "IDENTIFY_SYSTEM"
        );
        let show = ReplicationCommand::Show {
            name: "wal_segment_size".into(),
        };
        assert_eq!(sql(&show, V13), "SHOW \"wal_segment_size\"");
        let tli = ReplicationCommand::TimelineHistory {
            timeline: TimelineId::new(2).unwrap(),
        };
        assert_eq!(sql(&tli, V17), "TIMELINE_HISTORY 2");
        let drop = ReplicationCommand::DropSlot {
            slot_name: "we\"ird".into(),
            wait: true,
        };
        assert_eq!(sql(&drop, V14), "DROP_REPLICATION_SLOT \"we\"\"ird\" WAIT");
    }

    #[test]
    fn renders_slot_creation_per_version() {
        let c = ReplicationCommand::CreatePhysicalSlot {
            slot_name: "barman".into(),
            temporary: true,
            reserve_wal: true,
        };
        assert_eq!(
            sql(&c, V14),
            "CREATE_REPLICATION_SLOT \"barman\" TEMPORARY PHYSICAL RESERVE_WAL"
        );
        assert_eq!(
            sql(&c, V15),
            "CREATE_REPLICATION_SLOT \"barman\" TEMPORARY PHYSICAL (RESERVE_WAL)"
        );
        let c = ReplicationCommand::CreatePhysicalSlot {
            slot_name: "barman".into(),
            temporary: false,
            reserve_wal: false,
        };
        assert_eq!(sql(&c, V17), "CREATE_REPLICATION_SLOT \"barman\" PHYSICAL");
    }

    #[test]
    fn read_slot_needs_15() {
        let c = ReplicationCommand::ReadSlot {
            slot_name: "s".into(),
        };
        let err = c.to_sql(V14).unwrap_err();
        assert!(err.to_string().contains("needs PostgreSQL 15"), "{err}");
        assert_eq!(sql(&c, V15), "READ_REPLICATION_SLOT \"s\"");
        assert!(ReplicationCommand::UploadManifest.to_sql(V15).is_err());
        assert_eq!(
            sql(&ReplicationCommand::UploadManifest, V17),
            "UPLOAD_MANIFEST"
        );
    }

    #[test]
    fn renders_start_replication() {
        let c = ReplicationCommand::StartReplication {
            slot_name: Some("barman".into()),
            start: Lsn::new(0x1_0300_0000),
            timeline: Some(TimelineId::new(3).unwrap()),
        };
        assert_eq!(
            sql(&c, V13),
            "START_REPLICATION SLOT \"barman\" PHYSICAL 1/3000000 TIMELINE 3"
        );
        let c = ReplicationCommand::StartReplication {
            slot_name: None,
            start: Lsn::new(0x300_0000),
            timeline: None,
        };
        assert_eq!(sql(&c, V15), "START_REPLICATION PHYSICAL 0/3000000");
    }

    #[test]
    fn renders_base_backup_per_version() {
        let mut o = BaseBackupOptions::default();
        assert_eq!(
            sql(&ReplicationCommand::BaseBackup(o.clone()), V13),
            "BASE_BACKUP"
        );
        assert_eq!(
            sql(&ReplicationCommand::BaseBackup(o.clone()), V15),
            "BASE_BACKUP"
        );
        o.label = Some("barman's backup".into());
        o.progress = true;
        o.checkpoint = Checkpoint::Fast;
        o.wal = true;
        o.wait = false;
        o.max_rate = Some(1024);
        o.tablespace_map = true;
        o.verify_checksums = false;
        o.manifest = Manifest::ForceEncode;
        o.manifest_checksums = Some(ManifestChecksums::Sha256);
        let c = ReplicationCommand::BaseBackup(o.clone());
        assert_eq!(
            sql(&c, V13),
            "BASE_BACKUP LABEL 'barman''s backup' PROGRESS FAST WAL NOWAIT MAX_RATE 1024 \
             TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'force-encode' MANIFEST_CHECKSUMS 'SHA256'"
        );
        assert_eq!(
            sql(&c, V15),
            "BASE_BACKUP ( LABEL 'barman''s backup', PROGRESS, CHECKPOINT 'fast', WAL, \
             WAIT false, MAX_RATE 1024, TABLESPACE_MAP, VERIFY_CHECKSUMS false, \
             MANIFEST 'force-encode', MANIFEST_CHECKSUMS 'SHA256' )"
        );

        let mut o = BaseBackupOptions {
            manifest: Manifest::Yes,
            compression: Some(Compression {
                method: CompressionMethod::Zstd,
                level: Some(3),
                workers: Some(2),
                long: false,
            }),
            ..BaseBackupOptions::default()
        };
        let c = ReplicationCommand::BaseBackup(o.clone());
        assert!(c.to_sql(V14).is_err(), "no server compression before 15");
        assert_eq!(
            sql(&c, V15),
            "BASE_BACKUP ( MANIFEST 'yes', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3,workers=2' )"
        );
        o.compression = Some(Compression::new(CompressionMethod::Gzip));
        o.incremental = true;
        let c = ReplicationCommand::BaseBackup(o.clone());
        assert!(c.to_sql(V15).is_err(), "no INCREMENTAL before 17");
        assert_eq!(
            sql(&c, V17),
            "BASE_BACKUP ( MANIFEST 'yes', COMPRESSION 'gzip', INCREMENTAL )"
        );
        o.max_rate = Some(1);
        assert!(ReplicationCommand::BaseBackup(o).to_sql(V17).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's \\ here"), "'it''s \\ here'");
    }
}
