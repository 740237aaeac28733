//! Command-line types only: Barman's global options and sub-commands, as clap
//! derives. Doc comments are the help text. Parsing rules (global options come
//! before the sub-command) follow Barman's `barman/cli.py`.

pub mod restore;

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// Barman-compatible backup and recovery manager for PostgreSQL.
#[derive(Debug, Parser)]
#[command(
    name = "barman",
    disable_version_flag = true,
    after_help = "Barman-compatible, in Rust, speaking PostgreSQL's replication protocol natively."
)]
pub struct Cli {
    /// Show the version and exit.
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    /// Use this configuration file (defaults: ~/.barman.conf, /etc/barman.conf,
    /// /etc/barman/barman.conf).
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    /// Whether to use colours in the output.
    #[arg(
        long = "color",
        visible_alias = "colour",
        value_enum,
        default_value = "auto"
    )]
    pub color: ColorChoice,

    /// Override the log level of the configuration.
    #[arg(long = "log-level", value_parser = ["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])]
    pub log_level: Option<String>,

    /// Be quiet: print errors only.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Print debug output on standard error.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,

    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "console")]
    pub format: Format,

    /// The command to run.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Never colour.
    Never,
    /// Always colour.
    Always,
    /// Colour when both stdout and stderr are terminals.
    Auto,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a WAL file from the archive (decompressed) to standard output or a directory.
    GetWal {
        /// The server name.
        server_name: String,
        /// The WAL file name.
        wal_name: String,
        /// Write the file into this directory instead of standard output.
        #[arg(
            short = 'o',
            long = "output-directory",
            value_name = "OUTPUT_DIRECTORY"
        )]
        output_directory: Option<PathBuf>,
        /// Also serve the partial file being streamed.
        #[arg(short = 'P', long)]
        partial: bool,
        /// Compress the output with gzip (deprecated).
        #[arg(short = 'z', short_alias = 'x', long, conflicts_with = "bzip2")]
        gzip: bool,
        /// Compress the output with bzip2 (deprecated).
        #[arg(short = 'j', long)]
        bzip2: bool,
        /// Send the file as stored, without decompressing it.
        #[arg(long)]
        keep_compression: bool,
        /// List up to N consecutive archived files from WAL_NAME instead.
        #[arg(short = 'p', long, value_name = "VALUE", value_parser = clap::value_parser!(u32).range(1..))]
        peek: Option<u32>,
        /// Only check that WAL files can be retrieved from the server.
        #[arg(short = 't', long)]
        test: bool,
    },

    /// List the backups of the given servers, newest first.
    #[command(visible_alias = "list-backup")]
    ListBackups {
        /// The server names ('all' lists every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
        /// Machine readable output: backup ids only.
        #[arg(long)]
        minimal: bool,
    },

    /// Mark a backup to be kept forever (archival), show or release the mark.
    #[command(group(ArgGroup::new("action").required(true).args(["release", "status", "target"])))]
    Keep {
        /// The server name.
        server_name: String,
        /// The backup id, a shortcut (latest, oldest, last-failed, latest-full) or a name.
        backup_id: String,
        /// Release the keep mark: retention may delete the backup again.
        #[arg(short = 'r', long)]
        release: bool,
        /// Show the keep mark: full, standalone or nokeep.
        #[arg(short = 's', long)]
        status: bool,
        /// Keep the backup with all WAL after it (full) or only the WAL it needs (standalone).
        #[arg(long, value_enum)]
        target: Option<KeepTargetArg>,
    },

    /// List the files of a backup, and the WAL files it needs or that follow it.
    ListFiles {
        /// The server name.
        server_name: String,
        /// The backup id, a shortcut (latest, oldest, last-failed, latest-full) or a name.
        backup_id: String,
        /// What to list: the backup's files and the WAL it needs (standalone), its
        /// files only (data), the WAL up to the next backup (wal), or files and that
        /// WAL (full).
        #[arg(long, value_enum, default_value = "standalone")]
        target: ListFilesTarget,
        /// Also list empty directories.
        #[arg(long)]
        list_empty_directories: bool,
    },

    /// List available servers, with useful information.
    #[command(visible_alias = "list-server")]
    ListServers {
        /// Machine readable output: server names only.
        #[arg(long)]
        minimal: bool,
    },

    /// Rewrite the WAL catalogue (xlog.db) from the content of the WAL archive.
    RebuildXlogdb {
        /// The server names ('all' for every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
    },

    /// Show everything known about one backup.
    #[command(visible_alias = "show-backups")]
    ShowBackup {
        /// The server name.
        server_name: String,
        /// The backup id, a shortcut (latest, oldest, last-failed, latest-full) or a name.
        backup_id: String,
    },

    /// Validate archived WAL files again (page headers, record checksums, system id).
    VerifyWal {
        /// The server name.
        server_name: String,
        /// Only these WAL files (default: every file the WAL catalogue lists).
        wal_name: Vec<String>,
    },

    /// Show a summary of the given servers: PostgreSQL, WAL archiving, retention, backups.
    Status {
        /// The server names ('all' for every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
    },

    /// Print monitoring figures in Prometheus' text format (checks, backups, WAL archive).
    Metrics {
        /// The server names ('all', the default, for every server).
        #[arg(value_name = "SERVER_NAME")]
        server_name: Vec<String>,
    },

    /// Show all configuration parameters for the specified servers.
    #[command(visible_alias = "show-server")]
    ShowServers {
        /// The server names ('all' shows every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
    },

    /// Archive the WAL files received by streaming or archive_command, validating each.
    ArchiveWal {
        /// The server name.
        server_name: String,
    },

    /// Run the health checks of the given servers.
    Check {
        /// The server names ('all' checks every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
        /// Nagios plugin output.
        #[arg(long)]
        nagios: bool,
    },

    /// Check that a backup has all the WAL it needs; mark it DONE or FAILED.
    CheckBackup {
        /// The server name.
        server_name: String,
        /// The backup id, a shortcut (latest, oldest, last-failed, latest-full) or a name.
        backup_id: String,
    },

    /// Check that the server's WAL archive can be used by a new server: empty, or with
    /// --timeline holding nothing of that timeline or later.
    CheckWalArchive {
        /// The server name.
        server_name: String,
        /// The earliest timeline whose WAL files make the check fail.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        timeline: Option<u32>,
    },

    /// Stream WAL from the server into the streaming directory until stopped, or
    /// manage its replication slot and position.
    ReceiveWal {
        /// Stop the receive-wal process of the server.
        #[arg(long)]
        stop: bool,
        /// Reset the status of receive-wal, removing any status files.
        #[arg(long)]
        reset: bool,
        /// Create the replication slot, if it does not exist.
        #[arg(long)]
        create_slot: bool,
        /// Do not fail when --create-slot finds the slot already there.
        #[arg(long)]
        if_not_exists: bool,
        /// Drop the replication slot, if it exists.
        #[arg(long)]
        drop_slot: bool,
        /// The server name.
        server_name: String,
    },

    /// Show live information about the streaming clients of the servers.
    ReplicationStatus {
        /// The server names ('all' for every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
        /// Machine readable output.
        #[arg(long)]
        minimal: bool,
        /// Which clients: hot standby servers, WAL streamers, or all.
        #[arg(long, value_enum, default_value = "all")]
        target: crate::commands::replication_status::Target,
        /// List the clients of the backup host (conninfo) or of the WAL host (wal_conninfo).
        #[arg(long, value_enum, default_value = "backup-host")]
        source: crate::commands::replication_status::SourceHost,
    },

    /// Close the current WAL segment of the servers (pg_switch_wal).
    #[command(visible_alias = "switch-xlog")]
    SwitchWal {
        /// The server names ('all' for every server).
        #[arg(required = true, value_name = "SERVER_NAME")]
        server_name: Vec<String>,
        /// Run a CHECKPOINT before the switch.
        #[arg(long)]
        force: bool,
        /// Wait for one WAL file to be archived.
        #[arg(long)]
        archive: bool,
        /// How long --archive waits, in seconds.
        #[arg(long, value_name = "TIMEOUT", default_value_t = 30)]
        archive_timeout: u64,
    },

    /// Receive WAL files (a tar stream with their checksums, as barman-wal-archive sends
    /// it) on standard input and store them in the incoming directory.
    PutWal {
        /// The server name.
        server_name: String,
        /// Only check that the server is ready to accept WAL files.
        #[arg(short = 't', long)]
        test: bool,
    },

    /// Stop a barman process of a server (backup, receive-wal, archive-wal, cron, ...).
    TerminateProcess {
        /// The server name.
        server_name: String,
        /// The task to stop.
        task: String,
    },

    /// Maintenance to run every minute: start WAL archiving and streaming, check
    /// waiting backups, enforce retention, clean lock files.
    Cron {
        /// Keep the standard streams of the processes it starts.
        #[arg(long)]
        keep_descriptors: bool,
    },

    /// Remove the lock files that no process holds.
    LockDirectoryCleanup,

    /// Delete a backup, its incremental backups and the WAL no backup needs any more.
    Delete {
        /// The server name.
        server_name: String,
        /// The backup id, a shortcut (latest, oldest, last-failed, latest-full) or a name.
        backup_id: String,
    },

    /// Restore a backup into a directory, to the end of the WAL or to a point in time.
    #[command(visible_alias = "recover")]
    Restore(Box<restore::RestoreArgs>),

    /// Diagnostic information in JSON: configuration, catalogue and system.
    Diagnose {
        /// Include the configuration file each setting comes from.
        #[arg(long)]
        show_config_source: bool,
    },

    /// Take a base backup of the given servers over the streaming replication protocol.
    Backup(BackupCli),

    /// Check a backup's files against its backup_manifest (sizes and checksums).
    #[command(visible_alias = "verify")]
    VerifyBackup {
        /// The server name.
        server_name: String,
        /// The backup id, a shortcut (latest, oldest, last-failed, latest-full) or a name.
        backup_id: String,
    },
}

/// `keep --target` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeepTargetArg {
    /// The backup and every WAL file after it (recovery to any later point).
    Full,
    /// The backup and only the WAL it needs to be consistent.
    Standalone,
}

/// `list-files --target` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFilesTarget {
    /// The backup's files and the WAL it needs to be consistent.
    Standalone,
    /// The backup's files.
    Data,
    /// The WAL archived from the backup up to the next one.
    Wal,
    /// The backup's files and the WAL up to the next backup.
    Full,
}

/// `backup` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupCli {
    /// The server names ('all' backs up every server).
    #[arg(required = true, value_name = "SERVER_NAME")]
    pub server_name: Vec<String>,
    /// Ask for an immediate (fast) checkpoint at the start.
    #[arg(long, overrides_with = "no_immediate_checkpoint")]
    pub immediate_checkpoint: bool,
    /// Let the starting checkpoint be spread.
    #[arg(long, overrides_with = "immediate_checkpoint")]
    pub no_immediate_checkpoint: bool,
    /// Performs an incremental backup (not supported yet).
    #[arg(long, value_name = "BACKUP_ID")]
    pub incremental: Option<String>,
    /// rsync only: reuse the previous backup (refused with backup_method = postgres).
    #[arg(long, num_args = 0..=1, default_missing_value = "link", value_parser = ["off", "copy", "link"])]
    pub reuse_backup: Option<String>,
    /// Attempts after a failed copy.
    #[arg(long, value_name = "RETRY_TIMES")]
    pub retry_times: Option<u64>,
    /// Seconds between attempts.
    #[arg(long, value_name = "RETRY_SLEEP")]
    pub retry_sleep: Option<u64>,
    /// Do not retry a failed copy.
    #[arg(long)]
    pub no_retry: bool,
    /// rsync only: parallel jobs (ignored).
    #[arg(short = 'j', long, value_name = "NJOBS")]
    pub jobs: Option<u64>,
    /// rsync only (ignored).
    #[arg(long, hide = true)]
    pub jobs_start_batch_period: Option<u64>,
    /// rsync only (ignored).
    #[arg(long, hide = true)]
    pub jobs_start_batch_size: Option<u64>,
    /// Maximum transfer rate in kB/s (0: no limit); overrides bandwidth_limit.
    #[arg(long, value_name = "KBPS")]
    pub bwlimit: Option<u64>,
    /// Wait until the WAL the backup needs is archived (the backup is then DONE).
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// Seconds to wait with --wait before giving up (0: forever).
    #[arg(long, value_name = "TIMEOUT")]
    pub wait_timeout: Option<u64>,
    /// rsync only (ignored).
    #[arg(long, value_name = "KEEPALIVE_INTERVAL", hide = true)]
    pub keepalive_interval: Option<u64>,
    /// A name for the backup, usable instead of its id.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// rsync only (ignored: the server always sends a manifest here).
    #[arg(long, overrides_with = "no_manifest")]
    pub manifest: bool,
    /// rsync only (ignored).
    #[arg(long, overrides_with = "manifest")]
    pub no_manifest: bool,
    /// Time limit of the checks before the backup (ignored).
    #[arg(long, value_name = "CHECK_TIMEOUT", hide = true)]
    pub check_timeout: Option<u64>,
}
