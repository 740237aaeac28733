//! The one table of every `barman.conf` option: where it may be set, its default,
//! how its value is parsed, and a line of documentation.
//!
//! Everything else derives from this table: the resolver's inheritance and
//! validation, `show-servers` and `diagnose`, and the tests that check that
//! `barman.conf.example` and `docs/configuration.md` mention every option.
//! Names, scopes and defaults follow Barman 3.17 (`barman/config.py`,
//! `ServerConfig.KEYS`, `BARMAN_KEYS`, `DEFAULTS`, `PARSERS`).

use super::values::{
    parse_bool, parse_int, parse_non_negative, parse_size, parse_slot_name, CompressionLevel,
    FlagSet, FlagVocabulary, Interval, RetentionPolicy, Value,
};

/// Where an option may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope(u8);

impl Scope {
    /// Only in `[barman]`: a setting of the whole installation.
    pub const GLOBAL: Scope = Scope(1);
    /// In server sections only.
    pub const SERVER: Scope = Scope(2);
    /// In server sections and models.
    pub const SERVER_MODEL: Scope = Scope(2 | 4);
    /// In server sections, or in `[barman]` for every server (inherited).
    pub const INHERITED: Scope = Scope(1 | 2 | 8);
    /// In server sections and models, or in `[barman]` for every server.
    pub const INHERITED_MODEL: Scope = Scope(1 | 2 | 4 | 8);
    /// Only in model sections.
    pub const MODEL: Scope = Scope(4);

    /// May appear in `[barman]`.
    pub fn global(self) -> bool {
        self.0 & 1 != 0
    }
    /// May appear in a server section.
    pub fn server(self) -> bool {
        self.0 & 2 != 0
    }
    /// May appear in a model section.
    pub fn model(self) -> bool {
        self.0 & 4 != 0
    }
    /// A value in `[barman]` is inherited by servers.
    pub fn inherited(self) -> bool {
        self.0 & 8 != 0
    }

    /// The short code used in the documentation: `G`, `S`, `M` letters.
    pub fn code(self) -> String {
        let mut code = String::new();
        if self.global() {
            code.push('G');
        }
        if self.server() {
            code.push('S');
        }
        if self.model() {
            code.push('M');
        }
        code
    }
}

/// How an option's text is parsed.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Free text.
    Text,
    /// A filesystem path (`~` expanded).
    Path,
    /// An absolute filesystem path.
    AbsolutePath,
    /// A boolean.
    Bool,
    /// An integer.
    Int,
    /// An integer ≥ 0.
    Count,
    /// A size with optional suffix.
    Size,
    /// A time interval.
    Interval,
    /// One of a fixed set of words, case-insensitive, stored lower-cased.
    Choice(&'static [&'static str]),
    /// Like `Choice`, where the word `none` means unset.
    ChoiceOrNone(&'static [&'static str]),
    /// A retention policy.
    Retention,
    /// A compression level.
    Level,
    /// A replication slot name.
    SlotName,
    /// A comma-separated flag set.
    Flags(&'static FlagVocabulary),
    /// A comma-separated list of non-empty names.
    List,
    /// A Python logging level name or number.
    LogLevel,
}

impl Kind {
    /// Parse text (already interpolated and unquoted) into a value; `Ok(None)` means
    /// the text explicitly leaves the option unset.
    pub fn parse(self, text: &str) -> Result<Option<Value>, String> {
        let value = match self {
            Kind::Text => Value::Str(text.to_string()),
            Kind::Path => Value::Str(expand_tilde(text)),
            Kind::AbsolutePath => {
                let path = expand_tilde(text);
                if !path.starts_with('/') {
                    return Err("must be an absolute path".into());
                }
                Value::Str(path)
            }
            Kind::Bool => Value::Bool(parse_bool(text)?),
            Kind::Int => Value::Int(parse_int(text)?),
            Kind::Count => Value::Int(parse_non_negative(text)?),
            Kind::Size => Value::Size(parse_size(text)?),
            Kind::Interval => Value::Interval(Interval::parse(text)?),
            Kind::Choice(words) | Kind::ChoiceOrNone(words) => {
                let word = text.trim().to_ascii_lowercase();
                if matches!(self, Kind::ChoiceOrNone(_)) && word == "none" {
                    return Ok(None);
                }
                if !words.contains(&word.as_str()) {
                    return Err(format!("must be one of: {}", words.join(", ")));
                }
                Value::Str(word)
            }
            Kind::Retention => Value::Retention(RetentionPolicy::parse(text)?),
            Kind::Level => Value::Level(CompressionLevel::parse(text)?),
            Kind::SlotName => Value::Str(parse_slot_name(text)?),
            Kind::Flags(vocabulary) => Value::Flags(FlagSet::parse(text, vocabulary)?),
            Kind::List => {
                let items: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
                if items.iter().any(String::is_empty) {
                    return Err("a comma-separated list of names must not have empty items".into());
                }
                Value::List(items)
            }
            Kind::LogLevel => Value::Str(parse_log_level(text)?),
        };
        Ok(Some(value))
    }

    /// A short description of the accepted syntax, for the documentation.
    pub fn syntax(self) -> String {
        match self {
            Kind::Text => "text".into(),
            Kind::Path => "path".into(),
            Kind::AbsolutePath => "absolute path".into(),
            Kind::Bool => "boolean".into(),
            Kind::Int => "integer".into(),
            Kind::Count => "integer >= 0".into(),
            Kind::Size => "size (k, Ki, M, Mi, G, Gi, T, Ti)".into(),
            Kind::Interval => "interval (N hours|days|weeks|months)".into(),
            Kind::Choice(words) => words.join(" | "),
            Kind::ChoiceOrNone(words) => format!("{} | none", words.join(" | ")),
            Kind::Retention => "REDUNDANCY n | RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS".into(),
            Kind::Level => "low | medium | high | integer".into(),
            Kind::SlotName => "slot name ([0-9a-z_]+)".into(),
            Kind::Flags(v) => format!("comma-separated: {}", v.allowed.join(", ")),
            Kind::List => "comma-separated names".into(),
            Kind::LogLevel => "DEBUG | INFO | WARNING | ERROR | CRITICAL".into(),
        }
    }
}

/// Python logging levels as names; numbers are accepted too.
pub const LOG_LEVELS: &[&str] = &["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

fn parse_log_level(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = match upper.as_str() {
        "WARN" => "WARNING".to_string(),
        "FATAL" => "CRITICAL".to_string(),
        _ => upper,
    };
    if LOG_LEVELS.contains(&upper.as_str()) || upper.parse::<u8>().is_ok() {
        Ok(upper)
    } else {
        Err(format!("must be one of: {}", LOG_LEVELS.join(", ")))
    }
}

/// Replace a leading `~` or `~/` by `$HOME`, as Python's `expanduser` does.
pub fn expand_tilde(text: &str) -> String {
    if text == "~" || text.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return format!("{}{}", home.to_string_lossy(), &text[1..]);
        }
    }
    text.to_string()
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// The key in `barman.conf`.
    pub name: &'static str,
    /// Where it may be set.
    pub scope: Scope,
    /// How its value is parsed.
    pub kind: Kind,
    /// The default, as raw text that may use `%(name)s`, `%(barman_home)s` and other
    /// options of the same server.
    pub default: Option<&'static str>,
    /// One line of documentation.
    pub doc: &'static str,
}

/// `backup_options` flags.
pub static BACKUP_OPTIONS: FlagVocabulary = FlagVocabulary {
    class: "BackupOptions",
    allowed: &[
        "concurrent_backup",
        "exclusive_backup",
        "external_configuration",
    ],
    conflicts: &[("concurrent_backup", "exclusive_backup")],
    implied: Some(("concurrent_backup", &["exclusive_backup"])),
};

/// `recovery_options` flags.
pub static RECOVERY_OPTIONS: FlagVocabulary = FlagVocabulary {
    class: "RecoveryOptions",
    allowed: &["get-wal", "delta-restore"],
    conflicts: &[],
    implied: None,
};

/// WAL compression algorithms (`compression`).
pub const WAL_COMPRESSIONS: &[&str] = &[
    "gzip", "bzip2", "pigz", "xz", "zstd", "lz4", "snappy", "pygzip", "pybzip2", "custom",
];

const fn opt(
    name: &'static str,
    scope: Scope,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        scope,
        kind,
        default,
        doc,
    }
}

use Kind::*;
const G: Scope = Scope::GLOBAL;
const S: Scope = Scope::SERVER;
const SM: Scope = Scope::SERVER_MODEL;
const GS: Scope = Scope::INHERITED;
const GSM: Scope = Scope::INHERITED_MODEL;

/// Every option, global ones first, then server options in alphabetical order.
pub static OPTIONS: &[OptionSpec] = &[
    // [barman] only
    opt("barman_home", G, Path, None, "Root directory of the catalogue; every server's backup_directory defaults to a folder named after it here. Required."),
    opt("barman_user", G, Text, Some("barman"), "OS user barman runs as; started as root it switches to this user, started as any other user it refuses to run."),
    opt("barman_lock_directory", G, Path, Some("%(barman_home)s"), "Directory of the .<server>-<task>.lock files; must be on a local filesystem."),
    opt("lock_directory_cleanup", G, Bool, Some("true"), "Let cron remove lock files that no process holds."),
    opt("config_changes_queue", G, Path, Some("%(barman_home)s/cfg_changes.queue"), "Queue file of configuration changes (config-update)."),
    opt("configuration_files_directory", G, Path, None, "Directory whose *.conf files are read, in sorted order, after the main file; they may hold server and model sections, not [barman]."),
    opt("log_file", G, Path, None, "Log file; without it, log lines go to standard error."),
    opt("log_level", G, LogLevel, Some("INFO"), "Lowest level written to the log file (DEBUG, INFO, WARNING, ERROR, CRITICAL)."),
    opt("log_format", G, Text, Some("%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s"), "Log line format, in Python logging's syntax (asctime, process, name, levelname, message, levelno, processName, threadName)."),
    // server options
    opt("active", SM, Bool, Some("true"), "An inactive server is only shown by diagnostic commands; operational commands refuse it."),
    opt("archiver", GSM, Bool, Some("off"), "Archive WAL files that PostgreSQL's archive_command (or put-wal) drops into incoming_wals_directory."),
    opt("archiver_batch_size", GSM, Count, Some("0"), "Maximum number of WAL files archive-wal takes from incoming per run (0: all)."),
    opt("autogenerate_manifest", GSM, Bool, Some("false"), "rsync backups only: generate a backup_manifest (our backups always keep the server's manifest)."),
    opt("aws_await_snapshots_timeout", GSM, Count, Some("3600"), "Snapshot backups on AWS: seconds to wait for snapshots (snapshot method, not supported here)."),
    opt("aws_check_object_lock", GSM, Bool, Some("off"), "Barman 3.19 cloud storage on AWS: check the bucket's object lock (cloud backups, not supported here)."),
    opt("aws_encryption", GSM, ChoiceOrNone(&["AES256", "aws:kms"]), None, "Barman 3.19 cloud storage on AWS: server-side encryption (cloud backups, not supported here)."),
    opt("aws_profile", GSM, Text, None, "Snapshot backups on AWS: profile name (snapshot method, not supported here)."),
    opt("aws_read_timeout", GSM, Int, None, "Barman 3.19 cloud storage on AWS: read timeout in seconds (cloud backups, not supported here)."),
    opt("aws_region", GSM, Text, None, "Snapshot backups on AWS: region (snapshot method, not supported here)."),
    opt("aws_snapshot_lock_cool_off_period", GSM, Count, None, "Snapshot backups on AWS: lock cool-off period in hours (snapshot method, not supported here)."),
    opt("aws_snapshot_lock_duration", GSM, Count, None, "Snapshot backups on AWS: lock duration in days (snapshot method, not supported here)."),
    opt("aws_snapshot_lock_expiration_date", GSM, Text, None, "Snapshot backups on AWS: lock expiry date (snapshot method, not supported here)."),
    opt("aws_snapshot_lock_mode", GSM, Text, None, "Snapshot backups on AWS: compliance or governance lock (snapshot method, not supported here)."),
    opt("aws_sse_kms_key_id", GSM, Text, None, "Barman 3.19 cloud storage on AWS: KMS key for aws:kms encryption (cloud backups, not supported here)."),
    opt("azure_credential", GSM, Text, None, "Snapshot backups on Azure: credential type (snapshot method, not supported here)."),
    opt("azure_resource_group", GSM, Text, None, "Snapshot backups on Azure: resource group (snapshot method, not supported here)."),
    opt("azure_subscription_id", GSM, Text, None, "Snapshot backups on Azure: subscription id (snapshot method, not supported here)."),
    opt("backup_compression", GSM, Choice(&["gzip", "lz4", "zstd", "none"]), None, "Compression of base backups: gzip, lz4, zstd (lz4 and zstd server-side need PostgreSQL 15+), or none."),
    opt("backup_compression_format", GSM, Choice(&["plain", "tar"]), None, "With backup_compression: keep tar files (tar) or extract them (plain, server-side compression only)."),
    opt("backup_compression_level", GSM, Int, None, "Compression level for backup_compression."),
    opt("backup_compression_location", GSM, Choice(&["client", "server"]), None, "Compress on the backup server (client) or on PostgreSQL (server, 15+)."),
    opt("backup_compression_workers", GSM, Count, None, "zstd threads for backup compression."),
    opt("backup_directory", S, Path, Some("%(barman_home)s/%(name)s"), "The server's directory in the catalogue."),
    opt("backup_method", GSM, Choice(&["rsync", "postgres", "local-rsync", "snapshot"]), Some("rsync"), "How base backups are taken; this implementation supports postgres (the streaming replication protocol) only."),
    opt("backup_options", GSM, Flags(&BACKUP_OPTIONS), Some(""), "Comma-separated: concurrent_backup (default), exclusive_backup (rsync, PostgreSQL < 15), external_configuration."),
    opt("bandwidth_limit", GSM, Count, None, "Maximum transfer rate in KB/s for backups (MAX_RATE) and restores; 0 means no limit."),
    opt("basebackup_retry_sleep", GSM, Count, Some("30"), "Seconds between attempts of a failed base backup copy."),
    opt("basebackup_retry_times", GSM, Count, Some("0"), "How many times a failed base backup copy is retried."),
    opt("basebackups_directory", S, Path, Some("%(backup_directory)s/base"), "Where base backups are stored."),
    opt("check_timeout", GSM, Count, Some("30"), "Seconds allowed for the checks of `check` and of the pre-backup check (0: no limit)."),
    opt("cloud_delete_batch_size", GSM, Int, None, "Barman 3.19 cloud storage: objects deleted per request (cloud backups, not supported here)."),
    opt("cloud_staging_directory", GSM, AbsolutePath, Some("/tmp/barman/cloud-staging"), "Barman 3.19 cloud storage: local staging directory (cloud backups, not supported here)."),
    opt("cloud_staging_max_size", GSM, Size, Some("30Gi"), "Barman 3.19 cloud storage: maximum size of the staging directory (cloud backups, not supported here)."),
    opt("cloud_upload_max_archive_size", SM, Size, Some("100Gi"), "Barman 3.19 cloud storage: maximum size of one uploaded archive (cloud backups, not supported here)."),
    opt("cloud_upload_min_chunk_size", SM, Size, None, "Barman 3.19 cloud storage: minimum upload chunk size (cloud backups, not supported here)."),
    opt("cloud_wal_archive_parallel", GSM, Count, Some("0"), "Barman 3.19 cloud storage: parallel WAL uploads (cloud backups, not supported here)."),
    opt("cloud_wal_restore_parallel", GSM, Count, Some("0"), "Barman 3.19 cloud storage: parallel WAL downloads (cloud backups, not supported here)."),
    opt("cluster", SM, Text, Some("%(name)s"), "Groups a server with the models that may be applied to it."),
    opt("combine_mode", GSM, Choice(&["copy", "link", "clone", "copy-file-range"]), Some("copy"), "How files of incremental backups are combined at restore time."),
    opt("compression", GSM, Choice(WAL_COMPRESSIONS), None, "Compression of archived WAL files: gzip, bzip2, pigz, xz, zstd, lz4, snappy (pygzip, pybzip2, custom are deprecated)."),
    opt("compression_level", GSM, Level, Some("medium"), "WAL compression level: low, medium, high or an integer for the chosen algorithm."),
    opt("conninfo", SM, Text, None, "libpq connection string of the ordinary (SQL) connection to the server. Required."),
    opt("create_slot", GSM, Choice(&["manual", "auto"]), Some("manual"), "auto: receive-wal creates the replication slot slot_name when it is missing."),
    opt("custom_compression_filter", GSM, Text, None, "Deprecated: shell filter compressing WAL for compression = custom."),
    opt("custom_compression_magic", GSM, Text, None, "Deprecated: hex magic bytes identifying custom-compressed WAL (0x...)."),
    opt("custom_decompression_filter", GSM, Text, None, "Deprecated: shell filter decompressing WAL for compression = custom."),
    opt("description", SM, Text, None, "Free text shown by list-servers and status."),
    opt("encryption", GSM, ChoiceOrNone(&["gpg"]), Some("none"), "Encryption of tar backups and WAL files at rest: gpg or none."),
    opt("encryption_key_id", GSM, Text, None, "GPG key used by encryption = gpg."),
    opt("encryption_passphrase_command", GSM, Text, None, "Command printing the GPG passphrase needed to restore encrypted backups."),
    opt("errors_directory", S, Path, Some("%(backup_directory)s/errors"), "Where rejected WAL files (duplicates, unknown files) are moved."),
    opt("forward_config_path", GSM, Bool, Some("false"), "Passive nodes: pass -c with the configuration path to the primary's sync-info."),
    opt("gcp_project", GSM, Text, None, "Snapshot backups on Google Cloud: project (snapshot method, not supported here)."),
    opt("gcp_zone", SM, Text, None, "Snapshot backups on Google Cloud: zone (snapshot method, not supported here)."),
    opt("immediate_checkpoint", GSM, Bool, Some("false"), "Ask PostgreSQL for a fast checkpoint when a backup starts instead of a spread one."),
    opt("incoming_wals_directory", S, Path, Some("%(backup_directory)s/incoming"), "Where archive_command and put-wal drop WAL files."),
    opt("keepalive_interval", GSM, Count, Some("60"), "rsync backups: seconds between keepalive queries on the PostgreSQL connection."),
    opt("last_backup_maximum_age", GSM, Interval, None, "check fails when the newest backup is older than this interval."),
    opt("last_backup_minimum_size", GSM, Size, None, "check fails when the newest backup is smaller than this size."),
    opt("last_wal_maximum_age", GSM, Interval, None, "check fails when the newest archived WAL file is older than this interval."),
    opt("local_staging_path", GSM, AbsolutePath, None, "Deprecated (use staging_path): staging directory for combining incremental backups."),
    opt("max_incoming_wals_queue", GSM, Count, None, "check fails when more WAL files than this wait in incoming or streaming."),
    opt("minimum_redundancy", GSM, Count, Some("0"), "Minimum number of DONE backups that delete and retention never go below."),
    opt("model", Scope::MODEL, Bool, None, "true makes a section a model: a set of overrides applied to servers of the same cluster."),
    opt("network_compression", GSM, Bool, Some("false"), "rsync only: compress data over the network; not allowed with backup_method = postgres."),
    opt("parallel_jobs", GSM, Count, Some("1"), "Parallel workers for restores (and rsync backups)."),
    opt("parallel_jobs_start_batch_period", GSM, Count, Some("1"), "rsync: seconds between batches of started workers."),
    opt("parallel_jobs_start_batch_size", GSM, Count, Some("10"), "rsync: workers started per batch."),
    opt("path_prefix", GSM, Text, None, "Colon-separated directories prepended to PATH for hook scripts and helper programs."),
    opt("post_archive_retry_script", GS, Text, None, "Hook run after each WAL file is archived, retried until it succeeds."),
    opt("post_archive_script", GS, Text, None, "Hook run after each WAL file is archived."),
    opt("post_backup_retry_script", GS, Text, None, "Hook run after a backup, retried until it succeeds."),
    opt("post_backup_script", GS, Text, None, "Hook run after a backup."),
    opt("post_delete_retry_script", GS, Text, None, "Hook run after a backup is deleted, retried until it succeeds."),
    opt("post_delete_script", GS, Text, None, "Hook run after a backup is deleted."),
    opt("post_recovery_retry_script", GS, Text, None, "Hook run after a recovery, retried until it succeeds."),
    opt("post_recovery_script", GS, Text, None, "Hook run after a recovery."),
    opt("post_wal_delete_retry_script", GS, Text, None, "Hook run after each WAL file is deleted, retried until it succeeds."),
    opt("post_wal_delete_script", GS, Text, None, "Hook run after each WAL file is deleted."),
    opt("pre_archive_retry_script", GS, Text, None, "Hook run before each WAL file is archived, retried until it succeeds (exit 63 aborts)."),
    opt("pre_archive_script", GS, Text, None, "Hook run before each WAL file is archived."),
    opt("pre_backup_retry_script", GS, Text, None, "Hook run before a backup, retried until it succeeds (exit 63 aborts the backup)."),
    opt("pre_backup_script", GS, Text, None, "Hook run before a backup."),
    opt("pre_delete_retry_script", GS, Text, None, "Hook run before a backup is deleted, retried until it succeeds (exit 63 aborts)."),
    opt("pre_delete_script", GS, Text, None, "Hook run before a backup is deleted."),
    opt("pre_recovery_retry_script", GS, Text, None, "Hook run before a recovery, retried until it succeeds (exit 63 aborts)."),
    opt("pre_recovery_script", GS, Text, None, "Hook run before a recovery."),
    opt("pre_wal_delete_retry_script", GS, Text, None, "Hook run before each WAL file is deleted, retried until it succeeds (exit 63 aborts)."),
    opt("pre_wal_delete_script", GS, Text, None, "Hook run before each WAL file is deleted."),
    opt("primary_checkpoint_timeout", GSM, Count, Some("0"), "Backups from a standby: seconds to wait for a new WAL file before forcing a checkpoint on the primary."),
    opt("primary_conninfo", SM, Text, None, "When conninfo points to a standby: connection string of its primary."),
    opt("primary_ssh_command", GSM, Text, None, "Makes this a passive node that copies backups and WAL from another Barman server over SSH."),
    opt("recovery_options", GSM, Flags(&RECOVERY_OPTIONS), Some(""), "Comma-separated: get-wal (restore_command fetches WAL from this server), delta-restore."),
    opt("recovery_staging_path", GSM, AbsolutePath, None, "Deprecated (use staging_path): staging directory for compressed backups on the recovery host."),
    opt("retention_policy", GSM, Retention, None, "REDUNDANCY n or RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS; unset: backups are kept forever."),
    opt("retention_policy_mode", GSM, Choice(&["auto"]), Some("auto"), "auto: cron enforces the retention policy (the only mode)."),
    opt("reuse_backup", GSM, Choice(&["off", "copy", "link"]), None, "rsync only: file-level incremental backups; not allowed with backup_method = postgres."),
    opt("slot_name", GSM, SlotName, None, "Physical replication slot used by receive-wal."),
    opt("snapshot_disks", SM, List, None, "Snapshot backups: comma-separated disk names (snapshot method, not supported here)."),
    opt("snapshot_gcp_project", GSM, Text, None, "Deprecated (use gcp_project): snapshot backups on Google Cloud (not supported here)."),
    opt("snapshot_instance", SM, Text, None, "Snapshot backups: compute instance name (snapshot method, not supported here)."),
    opt("snapshot_provider", GSM, Text, None, "Snapshot backups: aws, azure or gcp (snapshot method, not supported here)."),
    opt("snapshot_zone", SM, Text, None, "Deprecated (use gcp_zone): snapshot backups on Google Cloud (not supported here)."),
    opt("ssh_command", SM, Text, None, "rsync backups: SSH command to the PostgreSQL host."),
    opt("staging_location", GSM, Choice(&["local", "remote"]), Some("local"), "Where compressed or incremental backups are prepared during a restore."),
    opt("staging_path", GSM, AbsolutePath, None, "Staging directory for restores of compressed or incremental backups."),
    opt("streaming_archiver", GSM, Bool, Some("off"), "Stream WAL with receive-wal over the replication protocol (START_REPLICATION on slot_name)."),
    opt("streaming_archiver_batch_size", GSM, Count, Some("0"), "Maximum number of WAL files archive-wal takes from streaming per run (0: all)."),
    opt("streaming_archiver_name", GSM, Text, Some("barman_receive_wal"), "application_name of the WAL streaming connection (name it in synchronous_standby_names for zero data loss)."),
    opt("streaming_backup_name", GSM, Text, Some("barman_streaming_backup"), "application_name of the base backup connection."),
    opt("streaming_conninfo", SM, Text, Some("%(conninfo)s"), "libpq connection string for replication connections (backups and WAL streaming)."),
    opt("streaming_wals_directory", S, Path, Some("%(backup_directory)s/streaming"), "Where receive-wal writes WAL as it streams."),
    opt("tablespace_bandwidth_limit", GSM, Text, None, "rsync only: per-tablespace limits 'name:kbps ...'; not allowed with backup_method = postgres."),
    opt("wal_conninfo", SM, Text, None, "SQL connection string of the node WAL is streamed from, when it is not the backup source."),
    opt("wal_retention_policy", GSM, Choice(&["main"]), Some("main"), "main: WAL files are removed only together with the backups that need them (the only policy)."),
    opt("wal_streaming_conninfo", SM, Text, None, "Replication connection string for WAL streaming, when it is not streaming_conninfo."),
    opt("wals_directory", S, Path, Some("%(backup_directory)s/wals"), "The WAL archive."),
    opt("warehousepg_dbid", GSM, Int, None, "Barman 3.19 WarehousePG segment id (WarehousePG clusters, not supported here)."),
    opt("worm_mode", GSM, Bool, Some("off"), "Immutable storage: never rewrite or delete files that were written once."),
    opt("xlogdb_directory", GS, Path, Some("%(wals_directory)s"), "Where the WAL catalogue <server>-xlog.db is kept."),
];

/// Look an option up by name.
pub fn find(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// The options a server section may set, in table order.
pub fn server_options() -> impl Iterator<Item = &'static OptionSpec> {
    OPTIONS.iter().filter(|o| o.scope.server())
}

/// The options of `[barman]` that are not server options.
pub fn global_options() -> impl Iterator<Item = &'static OptionSpec> {
    OPTIONS.iter().filter(|o| o.scope == Scope::GLOBAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = HashSet::new();
        for o in OPTIONS {
            assert!(seen.insert(o.name), "duplicate option {}", o.name);
            assert_eq!(o.name, o.name.to_ascii_lowercase());
            assert!(!o.doc.is_empty(), "{} has no doc", o.name);
        }
    }

    #[test]
    fn every_default_parses_with_its_own_parser() {
        for o in OPTIONS {
            if let Some(d) = o.default {
                if d.contains("%(") {
                    continue;
                }
                o.kind
                    .parse(d)
                    .unwrap_or_else(|e| panic!("default of {} does not parse: {e}", o.name));
            }
        }
    }

    #[test]
    fn choices_are_case_insensitive_and_none_unsets() {
        assert_eq!(
            find("backup_method")
                .unwrap()
                .kind
                .parse("Postgres")
                .unwrap(),
            Some(Value::Str("postgres".into()))
        );
        assert_eq!(
            find("encryption").unwrap().kind.parse("None").unwrap(),
            None
        );
        assert!(find("compression").unwrap().kind.parse("rar").is_err());
    }

    #[test]
    fn all_of_barmans_server_keys_are_known() {
        // ServerConfig.KEYS of Barman 3.17, so that no real configuration gets an
        // "invalid option" warning from us.
        let keys = "active archiver archiver_batch_size autogenerate_manifest aws_await_snapshots_timeout aws_snapshot_lock_mode aws_snapshot_lock_duration aws_snapshot_lock_cool_off_period aws_snapshot_lock_expiration_date aws_profile aws_region azure_credential azure_resource_group azure_subscription_id backup_compression backup_compression_format backup_compression_level backup_compression_location backup_compression_workers backup_directory backup_method backup_options bandwidth_limit basebackup_retry_sleep basebackup_retry_times basebackups_directory check_timeout cluster compression compression_level conninfo custom_compression_filter custom_decompression_filter custom_compression_magic description encryption encryption_key_id encryption_passphrase_command errors_directory forward_config_path gcp_project gcp_zone immediate_checkpoint incoming_wals_directory keepalive_interval last_backup_maximum_age last_backup_minimum_size last_wal_maximum_age combine_mode local_staging_path max_incoming_wals_queue minimum_redundancy network_compression parallel_jobs parallel_jobs_start_batch_period parallel_jobs_start_batch_size path_prefix post_archive_retry_script post_archive_script post_backup_retry_script post_backup_script post_delete_script post_delete_retry_script post_recovery_retry_script post_recovery_script post_wal_delete_script post_wal_delete_retry_script pre_archive_retry_script pre_archive_script pre_backup_retry_script pre_backup_script pre_delete_script pre_delete_retry_script pre_recovery_retry_script pre_recovery_script pre_wal_delete_script pre_wal_delete_retry_script primary_checkpoint_timeout primary_conninfo primary_ssh_command recovery_options recovery_staging_path create_slot retention_policy retention_policy_mode reuse_backup slot_name snapshot_disks snapshot_gcp_project snapshot_instance snapshot_provider snapshot_zone ssh_command staging_path staging_location streaming_archiver streaming_archiver_batch_size streaming_archiver_name streaming_backup_name streaming_conninfo streaming_wals_directory tablespace_bandwidth_limit wal_conninfo wal_retention_policy wal_streaming_conninfo wals_directory worm_mode xlogdb_directory";
        for key in keys.split_whitespace() {
            let o = find(key).unwrap_or_else(|| panic!("{key} missing from the table"));
            assert!(o.scope.server(), "{key} must be allowed in server sections");
        }
    }
}
