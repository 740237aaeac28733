//! The options of `barman restore` / `barman recover` (BARMAN.md §4.1).

use std::path::PathBuf;

use clap::Args;

/// `restore [options] SERVER_NAME BACKUP_ID DESTINATION_DIRECTORY`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The server name.
    pub server_name: String,
    /// The backup id, a shortcut (latest, oldest, last-failed, latest-full), a name, or
    /// 'auto' (the newest backup that ends before --target-time or --target-lsn).
    pub backup_id: String,
    /// The directory to restore into (on the remote host with --remote-ssh-command).
    pub destination_directory: String,

    /// Recover to this time (e.g. '2026-11-22 18:43:14+01'); without a zone, the local one.
    #[arg(long, value_name = "TARGET_TIME")]
    pub target_time: Option<String>,
    /// Recover to the end of this transaction.
    #[arg(long, value_name = "TARGET_XID")]
    pub target_xid: Option<String>,
    /// Recover to this WAL position (X/X).
    #[arg(long, value_name = "TARGET_LSN")]
    pub target_lsn: Option<String>,
    /// Recover to this restore point (pg_create_restore_point).
    #[arg(long, value_name = "TARGET_NAME")]
    pub target_name: Option<String>,
    /// End recovery as soon as the backup is consistent.
    #[arg(long)]
    pub target_immediate: bool,
    /// Recover along this timeline: a number, 'current' or 'latest'.
    #[arg(long, value_name = "TARGET_TLI")]
    pub target_tli: Option<String>,
    /// What the server does at the target.
    #[arg(long, value_name = "TARGET_ACTION", value_parser = ["pause", "shutdown", "promote"])]
    pub target_action: Option<String>,
    /// Stop just before the target (time, xid, LSN) instead of just after it.
    #[arg(long)]
    pub exclusive: bool,
    /// Restore a standby: write standby.signal (PostgreSQL 12+).
    #[arg(long)]
    pub standby_mode: bool,
    /// Restore tablespace NAME into LOCATION (repeatable).
    #[arg(long = "tablespace", value_name = "NAME:LOCATION")]
    pub tablespace: Vec<String>,
    /// Restore on a remote host through this SSH command, e.g. 'ssh postgres@pg1'.
    #[arg(long, value_name = "REMOTE_SSH_COMMAND")]
    pub remote_ssh_command: Option<String>,
    /// Let restore_command fetch WAL with 'barman get-wal' instead of copying it.
    #[arg(long, overrides_with = "no_get_wal")]
    pub get_wal: bool,
    /// Copy the WAL even if recovery_options has get-wal.
    #[arg(long, overrides_with = "get_wal")]
    pub no_get_wal: bool,
    /// Where to put the WAL for a point-in-time recovery (default: DEST/barman_wal).
    #[arg(long, value_name = "STAGING_WAL_DIRECTORY")]
    pub staging_wal_directory: Option<PathBuf>,
    /// Write the recovery settings into this file instead of postgresql.auto.conf.
    #[arg(long, value_name = "RECOVERY_CONF_FILENAME")]
    pub recovery_conf_filename: Option<String>,
    /// The port of the generated barman-wal-restore command (remote get-wal).
    #[arg(long, value_name = "RECOVERY_OPTION_PORT")]
    pub recovery_option_port: Option<u16>,
    /// Parallel copy workers (default: parallel_jobs).
    #[arg(short = 'j', long = "jobs", value_name = "PARALLEL_WORKERS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Bandwidth limit in KB/s (0: none; default: bandwidth_limit).
    #[arg(long, value_name = "KBPS")]
    pub bwlimit: Option<u64>,
    /// Allow a non-empty destination: keep unchanged files, remove extra ones.
    #[arg(long, overrides_with = "no_delta_restore")]
    pub delta_restore: bool,
    /// Refuse a non-empty destination even if recovery_options has delta-restore.
    #[arg(long, overrides_with = "delta_restore")]
    pub no_delta_restore: bool,
    /// Accepted for compatibility (rsync retries); the copy is not retried.
    #[arg(long, value_name = "RETRY_TIMES")]
    pub retry_times: Option<u32>,
    /// Accepted for compatibility (rsync retries).
    #[arg(long, value_name = "RETRY_SLEEP")]
    pub retry_sleep: Option<u32>,
    /// Accepted for compatibility (rsync retries).
    #[arg(long)]
    pub no_retry: bool,
}
