//! One backup of one server, as Barman's `Server.backup` + `BackupManager.backup` +
//! `PostgresBackupExecutor` run it for `backup_method = postgres` (BARMAN.md §3.7), with
//! BASE_BACKUP spoken natively instead of `pg_basebackup`:
//!
//! 1. checks (SQL and replication connections work, wal_level, same cluster as
//!    `identity.json`), directories, `identity.json` at the first backup;
//! 2. `.<server>-backup.lock`; `meta/<id>-backup.info` as STARTED with the server's
//!    metadata; `pre_backup` hooks;
//! 3. BASE_BACKUP (label, checkpoint, MAX_RATE, manifest with CRC-32C, no WAL; NOWAIT on
//!    a primary of 15+, where we wait for the archiver ourselves in step 4), stored and
//!    checked by [`store`](super::store) on its own thread, retried
//!    `basebackup_retry_times` times;
//! 4. begin from `backup_label`, end exactly as the protocol reports it, `pg_switch_wal()`,
//!    purge of older WAL at the first backup, restore point `barman_<id>`, the wait for the
//!    server to archive the end segment (what BASE_BACKUP's own wait does, polled every
//!    50 ms instead of every second), sizes, WAITING_FOR_WALS; on any error FAILED with
//!    `failure <action> (<reason>)` and the partial files removed;
//! 5. `--wait`: archive WAL until the end segment is in, then check the backup;
//!    `post_backup` hooks; after the lock: archive-wal, check-backup, the warning for a
//!    backup still WAITING_FOR_WALS.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use barman_protocol::stream::base_backup::{BackupEnd, BaseBackupEvent};
use barman_protocol::wal::names::{is_segment_file_name, segment_file_name};
use barman_protocol::{ConnInfo, Lsn, ReplicationConnection, WalSegmentSize};
use chrono::{DateTime, Local};

use super::settings::BackupSettings;
use super::store::{store, tree_size, Chunk, StorePlan, Stored};
use super::{Progress, Report, ReportSink, Reporter};
use crate::catalog::backup_info::Tablespace;
use crate::catalog::check::{check_backup_wals, WalCheck};
use crate::catalog::pyliteral::PyValue;
use crate::catalog::remove::{archived_path, remove_wals, save_info, BackupPaths};
use crate::catalog::{self, BackupInfo, BackupStatus};
use crate::config::values::{human_duration, pretty_size};
use crate::config::ServerConfig;
use crate::fsutil::{self, LockError};
use crate::hooks::Hooks;
use crate::postgres::{parse_conninfo, SqlClient};
use crate::retention::wal::WalCleanup;

/// One backup to take.
pub struct Job<'a> {
    /// The server.
    pub server: &'a ServerConfig,
    /// The configuration file (for hooks).
    pub config_file: &'a Path,
    /// `barman_lock_directory`.
    pub lock_dir: &'a Path,
    /// The resolved settings.
    pub settings: BackupSettings,
    /// `--name`.
    pub name: Option<String>,
    /// `--wait`.
    pub wait: bool,
    /// `--wait-timeout` in seconds.
    pub wait_timeout: Option<u64>,
}

/// What the checks learnt about the server.
#[derive(Debug, Clone)]
struct ServerFacts {
    version_num: u32,
    in_recovery: bool,
    system_id: u64,
}

/// Take a backup of `job.server`; every message goes to `rep`. Returns the backup's final
/// metadata, or `None` when no backup was started.
pub fn backup_server(job: &Job<'_>, rep: &Reporter) -> Option<BackupInfo> {
    let server = job.server;
    let rt = match crate::postgres::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            rep.error(format!("{e:#}"));
            return None;
        }
    };
    // 1. Checks, directories, identity.
    let (sql, facts) = match rt.block_on(precheck(job)) {
        Ok(v) => v,
        Err(reason) => {
            rep.error(format!(
                "Impossible to start the backup of server '{}': {reason}",
                server.name
            ));
            return None;
        }
    };
    if let Err(e) = make_directories(server) {
        rep.error(format!("failed to create directories: {e:#}"));
        return None;
    }
    if let Err(e) = write_identity(server, &facts) {
        rep.error(format!("{e:#}"));
        return None;
    }
    // 2. The lock, then the backup.
    let info = {
        let lock_path = fsutil::server_lock_path(job.lock_dir, &server.name, "backup");
        let _lock = match fsutil::create_dir_all(job.lock_dir)
            .map_err(|e| LockError::Io {
                path: lock_path.clone(),
                error: std::io::Error::other(format!("{e:#}")),
            })
            .and_then(|()| fsutil::try_lock(&lock_path))
        {
            Ok(lock) => lock,
            Err(LockError::Busy { .. }) => {
                rep.error("Another backup process is running");
                return None;
            }
            Err(e) => {
                rep.error(format!("Permission denied, unable to access '{e}'"));
                return None;
            }
        };
        let mut run = Run {
            job,
            rep,
            rt: &rt,
            facts,
            sql: Some(sql),
            action: "initialising postgres backup_method",
            info: BackupInfo::default(),
            paths: None,
        };
        run.backup()
    };
    drop(rt);
    let mut info = info?;
    // 3. After the lock: archive what arrived, check the backup, purge at the first backup.
    archive_once(job, rep, false);
    if info.status == Some(BackupStatus::WaitingForWals) {
        if let Err(e) = check_backup(job, rep, &mut info) {
            rep.error(format!("{e:#}"));
        }
    }
    if info.status != Some(BackupStatus::Failed) && is_first_backup(server, &info.backup_id) {
        if let Err(e) = purge_before(job, &info) {
            rep.error(format!("{e:#}"));
        }
    }
    if info.status == Some(BackupStatus::WaitingForWals) {
        rep.warning(
            "IMPORTANT: this backup is classified as WAITING_FOR_WALS, meaning that Barman has not received yet all the required WAL files for the backup consistency.\n\
             This is a common behaviour in concurrent backup scenarios, and Barman automatically set the backup as DONE once all the required WAL files have been archived.\n\
             Hint: execute the backup command with '--wait'",
        );
    }
    rep.send(Report::Result(info.to_json()));
    Some(info)
}

/// The state of one backup run.
struct Run<'a> {
    job: &'a Job<'a>,
    rep: &'a Reporter,
    rt: &'a tokio::runtime::Runtime,
    facts: ServerFacts,
    sql: Option<SqlClient>,
    /// What is being done, for Barman's `failure <action> (...)`.
    action: &'static str,
    info: BackupInfo,
    paths: Option<BackupPaths>,
}

impl Run<'_> {
    fn backup(&mut self) -> Option<BackupInfo> {
        let server = self.job.server;
        if let Err(e) = fail_interrupted_backups(server, self.rep) {
            self.rep.warning(format!("{e:#}"));
        }
        let id = new_backup_id(server);
        let paths = BackupPaths::of(server, &id);
        self.info = BackupInfo {
            backup_id: id.clone(),
            backup_name: self.job.name.clone(),
            server_name: Some(server.name.clone()),
            systemid: Some(self.facts.system_id.to_string()),
            mode: Some("postgres".into()),
            status: Some(BackupStatus::Started),
            ..BackupInfo::default()
        };
        if let Err(e) = save_info(&paths, &self.info) {
            self.rep
                .error(format!("Backup failed {}.\nDETAILS: {e:#}", self.action));
            return None;
        }
        self.paths = Some(paths.clone());
        self.rep.info(format!(
            "Starting backup using postgres method for server {} in {}",
            server.name,
            paths.base.display()
        ));
        let started = Local::now();
        let outcome = self
            .hooks(&paths)
            .pre()
            .map_err(anyhow::Error::from)
            .and_then(|()| self.take(&paths, started));
        match outcome {
            Ok(()) => {
                self.rep.info(format!(
                    "Backup end at LSN: {} ({}, {:08X})",
                    self.info.end_xlog.as_deref().unwrap_or(""),
                    self.info.end_wal.as_deref().unwrap_or(""),
                    self.info.end_offset.unwrap_or(0)
                ));
                self.rep.info(format!(
                    "Backup completed (start time: {}, elapsed time: {})",
                    started.format("%Y-%m-%d %H:%M:%S%.6f"),
                    human_duration((Local::now() - started).num_seconds().max(0) as u64)
                ));
                if self.job.wait {
                    self.wait_for_wal();
                }
            }
            Err(e) => {
                let text = format!("{e:#}");
                let first = text.lines().next().unwrap_or("").trim().to_string();
                self.info.status = Some(BackupStatus::Failed);
                self.info.error = Some(format!("failure {} ({first})", self.action));
                // Nothing partial stays: the data goes, the FAILED backup.info stays.
                let removed = remove_partial(&paths.base);
                let hint = match (&removed, is_disk_full(&e)) {
                    (Ok(()), true) => format!(
                        "\nHINT: the file system of {} is full: the partial files of this backup were removed and earlier backups are untouched; free space there (delete obsolete backups, or give basebackups_directory a larger file system), then run the backup again",
                        paths.base.display()
                    ),
                    _ => String::new(),
                };
                self.rep.error(format!(
                    "Backup failed {}.\nDETAILS: {}{hint}",
                    self.action,
                    text.trim()
                ));
                if let Err(e) = removed {
                    self.rep.warning(format!("{e:#}"));
                }
            }
        }
        if let Err(e) = save_info(&paths, &self.info) {
            self.rep.error(format!("{e:#}"));
        }
        self.sql = None;
        self.hooks(&paths).post();
        Some(self.info.clone())
    }

    fn hooks<'h>(&'h self, paths: &'h BackupPaths) -> Hooks<'h> {
        let server = self.job.server;
        let mut hooks = Hooks::new(server, self.job.config_file, "backup");
        let backups = catalog::read_backups(server).unwrap_or_default();
        let done = |b: &&BackupInfo| {
            matches!(
                b.status,
                Some(BackupStatus::Done | BackupStatus::WaitingForWals)
            )
        };
        let id = &self.info.backup_id;
        let previous = backups
            .values()
            .filter(done)
            .rfind(|b| &b.backup_id < id)
            .map(|b| b.backup_id.clone());
        let next = backups
            .values()
            .filter(done)
            .find(|b| &b.backup_id > id)
            .map(|b| b.backup_id.clone());
        hooks.env_backup(
            &self.info,
            &paths.base,
            &paths.info_file(),
            previous.as_deref(),
            next.as_deref(),
        );
        hooks
    }

    /// Everything between STARTED and WAITING_FOR_WALS.
    fn take(&mut self, paths: &BackupPaths, started: DateTime<Local>) -> Result<()> {
        let job = self.job;
        let server = job.server;
        // Metadata and the start position, as Barman's start_backup records them.
        self.action = "initialising postgres backup_method";
        let sql = self
            .sql
            .take()
            .ok_or_else(|| anyhow!("no SQL connection"))?;
        self.rt
            .block_on(read_metadata(&sql, &self.facts, &mut self.info, started))?;
        save_info(paths, &self.info)?;
        drop(sql);
        // The copy, retried as configured.
        self.action = "copying files";
        self.rep.info(format!(
            "Starting backup copy via BASE_BACKUP for {}",
            self.info.backup_id
        ));
        let copy_start = Instant::now();
        let segment_size =
            WalSegmentSize::new(self.info.xlog_segment_size.unwrap_or(16 << 20) as u32)
                .map_err(|e| anyhow!("{e}"))?;
        let mut attempt = 0;
        let (stored, end) = loop {
            prepare_destination(&paths.base)?;
            match self.copy(paths) {
                Ok(done) => break done,
                // A full disk stays full: a retry would only fill it again.
                Err(e) if attempt < job.settings.retry_times && !is_disk_full(&e) => {
                    attempt += 1;
                    log::warn!("backup copy of {} failed: {e:#}", server.name);
                    self.rep.warning(format!(
                        "Failure executing a backup using BASE_BACKUP (attempt {attempt})"
                    ));
                    self.rep.warning(format!(
                        "The files copied so far will be removed and the backup process will restart in {} seconds",
                        job.settings.retry_sleep.as_secs()
                    ));
                    std::thread::sleep(job.settings.retry_sleep);
                }
                Err(e) => return Err(e),
            }
        };
        // Microseconds, as Barman's timedelta.total_seconds() gives (4.154781).
        let copy_time = copy_start.elapsed().as_micros() as f64 / 1e6;
        self.info.copy_stats = Some(PyValue::Dict(vec![
            (PyValue::Str("copy_time".into()), PyValue::Float(copy_time)),
            (PyValue::Str("total_time".into()), PyValue::Float(copy_time)),
        ]));
        self.rep.info(format!(
            "Copy done (time: {})",
            human_duration(copy_time as u64)
        ));
        // The begin position from backup_label, as Barman reads it.
        self.action = "reading the backup label";
        apply_backup_label(&mut self.info, &stored.backup_label)?;
        self.info.compression = job
            .settings
            .layout()
            .recorded_compression()
            .map(|m| m.name().to_string());
        // The end, exactly as the server reports it; then a WAL switch.
        self.action = "stopping postgres backup_method";
        self.rep.info("Finalising the backup.");
        apply_end(&mut self.info, &end, segment_size);
        let sql = self.rt.block_on(connect_sql(server))?;
        if !self.facts.in_recovery {
            self.rt
                .block_on(sql.query_text("SELECT pg_switch_wal()"))
                .context("switch to a new WAL file")?;
        }
        // At the first backup, older WAL goes (BackupExecutor._purge_unused_wal_files).
        if is_first_backup(server, &self.info.backup_id) {
            self.rep.info(format!(
                "This is the first backup for server {}",
                server.name
            ));
            if server.flag("worm_mode") {
                self.rep
                    .info("'worm_mode' is enabled, skip purging of unused WAL files.");
            } else {
                let removed = purge_before(job, &self.info)?;
                if !removed.is_empty() {
                    self.rep
                        .info("WAL segments preceding the current backup have been found:");
                    for name in removed {
                        self.rep.info(format!(
                            "\t{name} from server {} has been removed",
                            server.name
                        ));
                    }
                }
            }
        }
        if !self.facts.in_recovery {
            let sql_text = format!(
                "SELECT pg_create_restore_point({})",
                barman_protocol::command::quote_literal(&format!("barman_{}", self.info.backup_id))
            );
            self.rt
                .block_on(sql.query_text(&sql_text))
                .context("create the restore point")?;
        }
        if self.waits_itself() {
            self.action = "waiting for the WAL archiving";
            let end_wal = self.info.end_wal.clone().unwrap_or_default();
            self.rt
                .block_on(wait_for_archiver(job, &sql, &end_wal, self.rep))?;
        }
        drop(sql);
        // Sizes (everything is already fsynced by the store) and the new status.
        self.action = "calculating backup size";
        let size = tree_size(&paths.base)?;
        self.info.size = Some(size);
        self.info.deduplicated_size = Some(size);
        self.rep
            .info(format!("Backup size: {}", pretty_size(size as f64)));
        log::info!(
            "backup {} of {}: {} files, {} bytes of data",
            self.info.backup_id,
            server.name,
            stored.files,
            stored.bytes
        );
        self.info.status = Some(BackupStatus::WaitingForWals);
        save_info(paths, &self.info)?;
        Ok(())
    }

    /// Whether we wait for the server to archive the backup's last WAL segment instead of
    /// letting BASE_BACKUP wait: the server polls its archive status once a second, so
    /// its wait ends on the next whole second after the archiver is done; we poll
    /// `pg_stat_archiver` every 50 ms. Only on a primary of 15 or later, where that view
    /// is exact (shared memory; 13 and 14 report through the statistics collector, whose
    /// messages may come late or be lost) and the wait applies at all (a standby waits
    /// only with `archive_mode = always`, which the server still handles).
    fn waits_itself(&self) -> bool {
        !self.facts.in_recovery && self.facts.version_num >= 150000
    }

    /// One attempt at the copy: BASE_BACKUP into the store thread.
    fn copy(&mut self, paths: &BackupPaths) -> Result<(Stored, BackupEnd)> {
        let job = self.job;
        let segment_size =
            WalSegmentSize::new(self.info.xlog_segment_size.unwrap_or(16 << 20) as u32)
                .map_err(|e| anyhow!("{e}"))?;
        let plan = StorePlan {
            backup_dir: paths.base.clone(),
            layout: job.settings.layout(),
            system_identifier: Some(self.facts.system_id),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let writer = std::thread::Builder::new()
            .name(format!("backup-store-{}", job.server.name))
            .spawn(move || store(rx, &plan))
            .context("start the storing thread")?;
        let label = format!("barman_backup_{}", self.info.backup_id);
        let streamed = self.rt.block_on(stream(
            job,
            &label,
            tx,
            self.rep,
            segment_size,
            !self.waits_itself(),
        ));
        let stored = writer
            .join()
            .map_err(|_| anyhow!("the storing thread panicked"))?;
        let ((end, listed), stored) = match (streamed, stored) {
            (Ok(s), Ok(stored)) => (s, stored),
            // The store stopped first: its error says why.
            (Err(StreamError::StoreGone), Err(e)) => return Err(e),
            (Err(StreamError::StoreGone), Ok(_)) => bail!("the storing thread stopped early"),
            (Err(StreamError::Failed(e)), _) => return Err(e),
            (Ok(_), Err(e)) => return Err(e),
        };
        self.set_tablespaces(&listed);
        Ok((stored, end))
    }

    /// The tablespaces as BASE_BACKUP listed them, named as the SQL query found them.
    fn set_tablespaces(&mut self, listed: &[barman_protocol::stream::base_backup::Tablespace]) {
        let known = self.info.tablespaces.clone().unwrap_or_default();
        let list: Vec<Tablespace> = listed
            .iter()
            .filter_map(|t| {
                let oid = t.oid?;
                let location = t.location.clone().unwrap_or_default();
                let name = known
                    .iter()
                    .find(|k| k.oid == oid)
                    .map(|k| k.name.clone())
                    .unwrap_or_else(|| oid.to_string());
                Some(Tablespace {
                    name,
                    oid,
                    location,
                })
            })
            .collect();
        self.info.tablespaces = (!list.is_empty()).then_some(list);
    }

    /// `--wait`: archive WAL until `end_wal` is in the archive (or the timeout), then
    /// check the backup (Barman's `Server.wait_for_wal`).
    fn wait_for_wal(&mut self) {
        let job = self.job;
        let Some(end_wal) = self.info.end_wal.clone() else {
            return;
        };
        let max = job
            .wait_timeout
            .filter(|t| *t > 0)
            .map(|t| format!(" (max: {t} seconds)"))
            .unwrap_or_default();
        self.rep.info(format!(
            "Waiting for the WAL file {end_wal} from server '{}'{max}",
            job.server.name
        ));
        let deadline = job
            .wait_timeout
            .filter(|t| *t > 0)
            .map(|t| Instant::now() + Duration::from_secs(t));
        let wals = job.server.path("wals_directory").unwrap_or(Path::new("."));
        loop {
            archive_once(job, self.rep, false);
            if archived_path(wals, &end_wal).exists() {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.rep.error(format!(
                    "The WAL file {end_wal} has not been received in {} seconds",
                    job.wait_timeout.unwrap_or(0)
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Err(e) = check_backup(job, self.rep, &mut self.info) {
            self.rep.error(format!("{e:#}"));
        }
    }
}

enum StreamError {
    /// The store thread went away (its own error explains why).
    StoreGone,
    /// The server or the connection failed.
    Failed(anyhow::Error),
}

async fn send(tx: &tokio::sync::mpsc::Sender<Chunk>, chunk: Chunk) -> Result<(), StreamError> {
    tx.send(chunk).await.map_err(|_| StreamError::StoreGone)
}

type StreamEnd = (
    BackupEnd,
    Vec<barman_protocol::stream::base_backup::Tablespace>,
);

/// Run BASE_BACKUP and pass its events to the store; report progress.
async fn stream(
    job: &Job<'_>,
    label: &str,
    tx: tokio::sync::mpsc::Sender<Chunk>,
    rep: &Reporter,
    segment_size: WalSegmentSize,
    server_waits: bool,
) -> Result<StreamEnd, StreamError> {
    let failed = StreamError::Failed;
    let info = streaming_conninfo(job.server, &job.settings).map_err(failed)?;
    let mut conn = ReplicationConnection::connect(&info).await.map_err(|e| {
        failed(anyhow!(
            "connect for streaming replication to server '{}': {e}",
            job.server.name
        ))
    })?;
    let mut options = job.settings.base_backup_options(label);
    options.wait = server_waits;
    let mut tablespaces = Vec::new();
    let mut total: Option<u64> = None;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let end = {
        let mut events = conn
            .base_backup(&options)
            .await
            .map_err(|e| failed(anyhow!("BASE_BACKUP on server '{}': {e}", job.server.name)))?;
        loop {
            let event = events.next().await.map_err(|e| {
                failed(anyhow!(
                    "BASE_BACKUP stream from server '{}': {e}",
                    job.server.name
                ))
            })?;
            match event {
                None => {
                    return Err(failed(anyhow!(
                        "BASE_BACKUP ended without its end position"
                    )))
                }
                Some(BaseBackupEvent::Begin {
                    start_lsn,
                    timeline,
                    tablespaces: list,
                }) => {
                    rep.info(format!(
                        "Backup start at LSN: {start_lsn} ({}, {:08X})",
                        segment_file_name(
                            timeline,
                            start_lsn.segment_number(segment_size),
                            segment_size
                        ),
                        start_lsn.segment_offset(segment_size)
                    ));
                    total = list
                        .iter()
                        .map(|t| t.size_kb.map(|kb| kb * 1024))
                        .sum::<Option<u64>>();
                    let oids = list.iter().filter_map(|t| t.oid).collect();
                    tablespaces = list;
                    send(&tx, Chunk::Begin { tablespaces: oids }).await?;
                }
                Some(BaseBackupEvent::Archive { name, tablespace }) => {
                    send(
                        &tx,
                        Chunk::Archive {
                            name,
                            tablespace: tablespace.oid,
                        },
                    )
                    .await?;
                }
                Some(BaseBackupEvent::Data(data)) => send(&tx, Chunk::Data(data)).await?,
                Some(BaseBackupEvent::Manifest(data)) => send(&tx, Chunk::Manifest(data)).await?,
                Some(BaseBackupEvent::Progress(done)) => {
                    if last_progress.elapsed() >= Duration::from_millis(250) {
                        last_progress = Instant::now();
                        rep.send(Report::Progress(Progress {
                            done,
                            total,
                            elapsed: started.elapsed(),
                        }));
                    }
                }
                Some(BaseBackupEvent::End(end)) => break end,
                Some(_) => {}
            }
        }
    };
    for notice in conn.take_notices() {
        let text = notice.to_string();
        if notice.severity().starts_with("WARNING") {
            rep.warning(text);
        } else {
            log::info!("{}: {text}", job.server.name);
        }
    }
    send(&tx, Chunk::End).await?;
    drop(tx);
    let _ = conn.close().await;
    Ok((end, tablespaces))
}

fn streaming_conninfo(server: &ServerConfig, settings: &BackupSettings) -> Result<ConnInfo> {
    let text = server
        .text("streaming_conninfo")
        .or_else(|| server.text("conninfo"))
        .ok_or_else(|| anyhow!("server '{}' has no streaming_conninfo", server.name))?;
    let mut info = parse_conninfo(&server.name, "streaming_conninfo", text)?;
    info.set_fallback_application_name(&settings.application_name);
    Ok(info)
}

async fn connect_sql(server: &ServerConfig) -> Result<SqlClient> {
    let text = server
        .text("conninfo")
        .ok_or_else(|| anyhow!("server '{}' has no conninfo", server.name))?;
    let info = parse_conninfo(&server.name, "conninfo", text)?;
    SqlClient::connect(&server.name, &info, "barman").await
}

/// The text values of the first row of `sql`.
async fn row(client: &SqlClient, sql: &str) -> Result<Vec<Option<String>>> {
    let messages = client
        .client
        .simple_query(sql)
        .await
        .with_context(|| format!("run {sql}"))?;
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            return Ok((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    Ok(Vec::new())
}

/// Every row of `sql`, as text.
async fn rows(client: &SqlClient, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let messages = client
        .client
        .simple_query(sql)
        .await
        .with_context(|| format!("run {sql}"))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// The minimal checks Barman's `check` would do before a backup.
async fn precheck(job: &Job<'_>) -> std::result::Result<(SqlClient, ServerFacts), String> {
    let server = job.server;
    let sql = connect_sql(server).await.map_err(|e| format!("{e:#}"))?;
    let r = row(
        &sql,
        "SELECT current_setting('server_version_num'), pg_is_in_recovery(), current_setting('wal_level'), (SELECT system_identifier FROM pg_control_system())",
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    let version_num: u32 = get(0)
        .parse()
        .map_err(|_| format!("cannot read server_version_num ({:?})", get(0)))?;
    if version_num < 130000 {
        return Err(format!(
            "PostgreSQL {} is not supported (13 to 18 are)",
            version_num / 10000
        ));
    }
    let in_recovery = get(1) == "t";
    let wal_level = get(2);
    if wal_level == "minimal" {
        return Err("wal_level is minimal: backups need wal_level = replica (or logical)".into());
    }
    let system_id: u64 = get(3)
        .parse()
        .map_err(|_| format!("cannot read the system identifier ({:?})", get(3)))?;
    job.settings.check_server(version_num / 10000)?;
    // The replication connection must work and reach the same cluster.
    let info = streaming_conninfo(server, &job.settings).map_err(|e| format!("{e:#}"))?;
    let mut repl = ReplicationConnection::connect(&info)
        .await
        .map_err(|e| format!("the streaming replication connection failed: {e}"))?;
    let ident = repl
        .identify_system()
        .await
        .map_err(|e| format!("IDENTIFY_SYSTEM failed: {e}"))?;
    let _ = repl.close().await;
    if ident.system_id != system_id {
        return Err(format!(
            "streaming_conninfo reaches system {} but conninfo reaches system {system_id}",
            ident.system_id
        ));
    }
    match catalog::identity::read(server) {
        Ok(Some(identity)) if identity.systemid_number() != Some(system_id) => {
            return Err(format!(
                "the server's system identifier {system_id} differs from {} recorded in identity.json: this is not the PostgreSQL cluster this catalogue belongs to",
                identity.systemid
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(format!("{e:#}")),
    }
    Ok((
        sql,
        ServerFacts {
            version_num,
            in_recovery,
            system_id,
        },
    ))
}

/// What a BASE_BACKUP without NOWAIT waits for at its end (`do_pg_backup_stop`), with a
/// finer poll: the server has archived `end_wal`, the segment holding the backup's end.
/// As in the server, there is no time limit: a warning every minute says what is awaited
/// and what the archiver last failed on. Nothing is awaited when the server does not
/// archive (its WAL then comes through streaming, and the backup stays WAITING_FOR_WALS
/// until it does). The segment found in our own archive, incoming or streaming
/// directory also ends the wait (`pg_stat_archiver` may have been reset).
async fn wait_for_archiver(
    job: &Job<'_>,
    sql: &SqlClient,
    end_wal: &str,
    rep: &Reporter,
) -> Result<()> {
    const POLL: Duration = Duration::from_millis(50);
    const WARN_EVERY: Duration = Duration::from_secs(60);
    let server = job.server;
    let started = Instant::now();
    let mut next_warning = WARN_EVERY;
    let ours = [
        server
            .path("wals_directory")
            .map(|w| archived_path(w, end_wal)),
        server
            .path("incoming_wals_directory")
            .map(|d| d.join(end_wal)),
        server
            .path("streaming_wals_directory")
            .map(|d| d.join(end_wal)),
    ];
    loop {
        let r = row(
            sql,
            "SELECT current_setting('archive_mode'), last_archived_wal, last_failed_wal, last_failed_time FROM pg_stat_archiver",
        )
        .await?;
        let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        if get(0) == "off" {
            log::info!(
                "{}: the server does not archive WAL (archive_mode = off); {end_wal} must come through streaming",
                server.name
            );
            return Ok(());
        }
        if segment_reached(&get(1), end_wal) || ours.iter().flatten().any(|p| p.exists()) {
            log::info!(
                "{}: {end_wal} archived {} ms after the end of the backup",
                server.name,
                started.elapsed().as_millis()
            );
            return Ok(());
        }
        if started.elapsed() >= next_warning {
            let failed = match get(2).as_str() {
                "" => String::new(),
                name => format!("; the archiver last failed on {name} at {}", get(3)),
            };
            rep.warning(format!(
                "still waiting for server '{}' to archive WAL file {end_wal} ({} seconds elapsed{failed}): check that archive_command works",
                server.name,
                started.elapsed().as_secs()
            ));
            next_warning += WARN_EVERY;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `last`, the name of the file the archiver last archived (a segment, a
/// `.partial` or `.backup` file, or a timeline history file), shows that `segment` is
/// archived: the archiver takes segments in name order, timeline first, so any segment
/// name at or after it does. A history file or an empty name says nothing.
fn segment_reached(last: &str, segment: &str) -> bool {
    last.get(..24)
        .is_some_and(|name| is_segment_file_name(name) && name >= segment)
}

/// Barman's `_pg_get_metadata` and `_backup_info_from_start_location`.
async fn read_metadata(
    sql: &SqlClient,
    facts: &ServerFacts,
    info: &mut BackupInfo,
    started: DateTime<Local>,
) -> Result<()> {
    let summarize = if facts.version_num >= 170000 {
        "current_setting('summarize_wal')"
    } else {
        "NULL"
    };
    let r = row(
        sql,
        &format!(
            "SELECT current_setting('data_directory'), \
             (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), \
             current_setting('config_file'), current_setting('hba_file'), current_setting('ident_file'), \
             current_setting('data_checksums'), {summarize}, \
             (SELECT sum(pg_tablespace_size(oid)) FROM pg_tablespace)"
        ),
    )
    .await?;
    let get = |i: usize| r.get(i).cloned().flatten();
    info.pgdata = get(0);
    info.version = Some(facts.version_num);
    info.xlog_segment_size = Some(
        get(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("cannot read wal_segment_size"))?,
    );
    info.config_file = get(2);
    info.hba_file = get(3);
    info.ident_file = get(4);
    info.data_checksums = get(5);
    info.summarize_wal = get(6);
    info.cluster_size = get(7).and_then(|s| s.parse().ok());
    let included: Vec<String> = rows(
        sql,
        "SELECT DISTINCT sourcefile AS included_file FROM pg_settings \
         WHERE sourcefile IS NOT NULL AND sourcefile NOT IN \
         (SELECT setting FROM pg_settings WHERE name = 'config_file') ORDER BY 1",
    )
    .await
    .unwrap_or_default()
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect();
    info.included_files = (!included.is_empty()).then_some(included);
    let tablespaces: Vec<Tablespace> = rows(
        sql,
        "SELECT spcname, oid, pg_tablespace_location(oid) FROM pg_tablespace \
         WHERE pg_tablespace_location(oid) != '' ORDER BY oid",
    )
    .await?
    .into_iter()
    .filter_map(|r| {
        Some(Tablespace {
            name: r.first()?.clone()?,
            oid: r.get(1)?.as_ref()?.parse().ok()?,
            location: r.get(2)?.clone()?,
        })
    })
    .collect();
    info.tablespaces = (!tablespaces.is_empty()).then_some(tablespaces);
    // The current position: replaced by backup_label's once the copy is done.
    info.begin_time = Some(started.fixed_offset());
    let position = if facts.in_recovery {
        row(sql, "SELECT pg_last_wal_replay_lsn(), NULL, NULL").await?
    } else {
        row(
            sql,
            "SELECT location, (pg_walfile_name_offset(location)).* FROM pg_current_wal_lsn() AS location",
        )
        .await?
    };
    let get = |i: usize| position.get(i).cloned().flatten();
    info.begin_xlog = get(0);
    info.begin_wal = get(1);
    info.begin_offset = get(2).and_then(|s| s.parse().ok());
    info.timeline = info.begin_wal.as_deref().and_then(crate::wal::timeline_of);
    info.status = Some(BackupStatus::Started);
    Ok(())
}

/// Barman's `_backup_info_from_backup_label`.
fn apply_backup_label(info: &mut BackupInfo, label: &str) -> Result<()> {
    let segment_size = info.xlog_segment_size.unwrap_or(16 << 20);
    let line = label
        .lines()
        .find_map(|l| l.strip_prefix("START WAL LOCATION: "))
        .ok_or_else(|| anyhow!("Failure parsing backup_label for backup {}", info.backup_id))?;
    // `0/2000028 (file 000000010000000000000002)`
    let (lsn, rest) = line
        .split_once(" (file ")
        .ok_or_else(|| anyhow!("Failure parsing backup_label for backup {}", info.backup_id))?;
    let wal = rest.trim_end_matches(')').to_string();
    let lsn: Lsn = lsn
        .parse()
        .map_err(|_| anyhow!("Failure parsing backup_label for backup {}", info.backup_id))?;
    info.timeline = crate::wal::timeline_of(&wal);
    info.begin_xlog = Some(lsn.to_string());
    info.begin_offset = Some(lsn.as_u64() % segment_size);
    info.begin_wal = Some(wal);
    info.backup_label = Some(label.to_string());
    Ok(())
}

/// The end position as BASE_BACKUP reported it: the segment holding the byte before it
/// (an end exactly on a boundary needs the previous segment only), its offset, now.
fn apply_end(info: &mut BackupInfo, end: &BackupEnd, size: WalSegmentSize) {
    let segno = end
        .end_lsn
        .prev_segment_number(size)
        .unwrap_or_else(|| end.end_lsn.segment_number(size));
    info.end_xlog = Some(end.end_lsn.to_string());
    info.end_wal = Some(segment_file_name(end.end_timeline, segno, size));
    info.end_offset = Some(end.end_lsn.segment_offset(size) as u64);
    info.end_time = Some(Local::now().fixed_offset());
}

/// Backups left STARTED by a process that died (we hold the server's backup lock, so no
/// backup of this server is running): FAILED, their partial files removed.
fn fail_interrupted_backups(server: &ServerConfig, rep: &Reporter) -> Result<()> {
    for (id, mut info) in catalog::read_backups(server)? {
        if info.status != Some(BackupStatus::Started) {
            continue;
        }
        let paths = BackupPaths::of(server, &id);
        remove_partial(&paths.base)?;
        info.status = Some(BackupStatus::Failed);
        info.error = Some(
            "failure interrupted (the barman process taking this backup stopped before it finished)"
                .into(),
        );
        save_info(&paths, &info)?;
        rep.warning(format!(
            "Backup {id} of server {} was interrupted: it is now marked as FAILED",
            server.name
        ));
    }
    Ok(())
}

/// Whether `e` comes from a full file system (or an exhausted quota): retrying cannot
/// help, freeing space can. The text is checked too, for errors that reached us through a
/// library that kept only the message.
fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|code| code == libc::ENOSPC || code == libc::EDQUOT)
            || cause.to_string().contains("No space left on device")
            || cause.to_string().contains("Disk quota exceeded")
    })
}

/// A new backup id: the local time, one second later if that id is taken.
fn new_backup_id(server: &ServerConfig) -> String {
    loop {
        let id = Local::now().format("%Y%m%dT%H%M%S").to_string();
        let paths = BackupPaths::of(server, &id);
        if !paths.meta_info.exists() && !paths.base.exists() {
            return id;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn make_directories(server: &ServerConfig) -> Result<()> {
    for dir in server.directories_to_create() {
        fsutil::create_dir_all(dir)?;
    }
    if let Some(dir) = server.path("backup_directory") {
        fsutil::create_dir_all(&dir.join("meta"))?;
    }
    Ok(())
}

fn write_identity(server: &ServerConfig, facts: &ServerFacts) -> Result<()> {
    if catalog::identity::read(server)?.is_none() {
        catalog::identity::write(
            server,
            &catalog::identity::Identity {
                systemid: facts.system_id.to_string(),
                version: (facts.version_num / 10000).to_string(),
            },
        )?;
    }
    Ok(())
}

/// Empty and recreate `base/<id>` (a retry starts from scratch).
fn prepare_destination(base: &Path) -> Result<()> {
    remove_partial(base)?;
    fsutil::create_dir_all(base)
}

fn remove_partial(base: &Path) -> Result<()> {
    match std::fs::remove_dir_all(base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("remove {}", base.display())),
    }
    if let Some(parent) = base.parent() {
        fsutil::fsync_dir(parent)?;
    }
    Ok(())
}

/// Whether no finished backup precedes `id`.
fn is_first_backup(server: &ServerConfig, id: &str) -> bool {
    catalog::read_backups(server)
        .map(|b| {
            !b.values().any(|b| {
                b.backup_id.as_str() < id
                    && matches!(
                        b.status,
                        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
                    )
            })
        })
        .unwrap_or(false)
}

/// Remove the archived WAL older than the backup's begin (Barman's
/// `remove_wal_before_backup`); history files stay.
fn purge_before(job: &Job<'_>, info: &BackupInfo) -> Result<Vec<String>> {
    if job.server.flag("worm_mode") || info.begin_wal.is_none() {
        return Ok(Vec::new());
    }
    let cleanup = WalCleanup {
        remove_before: info.begin_wal.clone(),
        timelines_to_protect: Default::default(),
        ranges_to_protect: Vec::new(),
    };
    remove_wals(job.server, job.lock_dir, job.config_file, &cleanup)
}

/// One `archive-wal` run (skipped when another process archives), printing through
/// the reporter.
pub fn archive_once(job: &Job<'_>, rep: &Reporter, verbose: bool) {
    let server = job.server;
    let lock = fsutil::try_lock(&fsutil::server_lock_path(
        job.lock_dir,
        &server.name,
        "archive-wal",
    ));
    let Ok(_lock) = lock else {
        return;
    };
    let env = crate::wal::archiver::ArchiveEnv {
        server,
        lock_dir: job.lock_dir,
        config_file: job.config_file,
    };
    let mut out = crate::output::Output::new(
        crate::output::Format::Console,
        false,
        false,
        false,
        Box::new(ReportSink(rep.clone())),
    );
    use crate::wal::archiver::{archive, Source};
    for (enabled, source) in [
        (server.flag("streaming_archiver"), Source::Streaming),
        (server.flag("archiver"), Source::Incoming),
    ] {
        if enabled {
            if let Err(e) = archive(&env, source, &mut out, verbose) {
                rep.error(format!("{e:#}"));
            }
        }
    }
}

/// Barman's `check_backup`: DONE when the WAL from begin to end is archived, FAILED when
/// one is missing while later ones are in; saved when it changes.
fn check_backup(job: &Job<'_>, rep: &Reporter, info: &mut BackupInfo) -> Result<()> {
    let server = job.server;
    if info.status != Some(BackupStatus::WaitingForWals) {
        return Ok(());
    }
    let Ok(_lock) = fsutil::try_lock(&fsutil::server_lock_path(
        job.lock_dir,
        &server.name,
        &info.backup_id,
    )) else {
        return Ok(());
    };
    let before = info.status;
    if let WalCheck::Missing(_) = check_backup_wals(server, info)? {
        rep.error(format!(
            "This backup has been marked as FAILED due to the following reason: {}",
            info.error.as_deref().unwrap_or_default()
        ));
    }
    if info.status != before {
        save_info(&BackupPaths::of(server, &info.backup_id), info)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_protocol::TimelineId;

    #[test]
    fn the_archivers_last_file_tells_whether_a_segment_is_archived() {
        let end = "000000010000000200000003";
        assert!(segment_reached("000000010000000200000003", end));
        assert!(segment_reached("000000010000000200000004", end));
        assert!(segment_reached(
            "000000010000000200000003.00000028.backup",
            end
        ));
        assert!(segment_reached("000000020000000200000001.partial", end));
        assert!(!segment_reached("000000010000000200000002", end));
        assert!(!segment_reached("0000000100000001000000FF", end));
        assert!(!segment_reached("00000002.history", end));
        assert!(!segment_reached("", end));
    }

    #[test]
    fn a_full_disk_is_told_apart_from_other_failures() {
        let full = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("write /b/data/base/1/1259");
        assert!(is_disk_full(&full));
        let quota = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(is_disk_full(&quota.context("store /b/data/base.tar.gz")));
        assert!(is_disk_full(&anyhow!(
            "read base.tar: No space left on device (os error 28)"
        )));
        let denied = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(!is_disk_full(&denied.context("create /b/data/PG_VERSION")));
        assert!(!is_disk_full(&anyhow!(
            "refused tar entry \"../x\" of base.tar"
        )));
    }

    #[test]
    fn begin_comes_from_backup_label_and_end_from_the_protocol() {
        let mut info = BackupInfo {
            backup_id: "20260101T000000".into(),
            xlog_segment_size: Some(16 << 20),
            ..BackupInfo::default()
        };
        let label = "START WAL LOCATION: 0/A000028 (file 00000001000000000000000A)\nCHECKPOINT LOCATION: 0/A000060\n";
        apply_backup_label(&mut info, label).unwrap();
        assert_eq!(info.begin_xlog.as_deref(), Some("0/A000028"));
        assert_eq!(info.begin_wal.as_deref(), Some("00000001000000000000000A"));
        assert_eq!(info.begin_offset, Some(40));
        assert_eq!(info.timeline, Some(1));
        assert!(apply_backup_label(&mut info, "nothing").is_err());
        let size = WalSegmentSize::new(16 << 20).unwrap();
        let tli = TimelineId::new(1).unwrap();
        let end = |lsn: u64| BackupEnd {
            start_lsn: Lsn::new(0xA000028),
            start_timeline: tli,
            end_lsn: Lsn::new(lsn),
            end_timeline: tli,
        };
        apply_end(&mut info, &end(0xA000138), size);
        assert_eq!(info.end_wal.as_deref(), Some("00000001000000000000000A"));
        assert_eq!(info.end_offset, Some(0x138));
        assert_eq!(info.end_xlog.as_deref(), Some("0/A000138"));
        // On a boundary: the segment before (as Barman keeps it on every version).
        apply_end(&mut info, &end(0xB000000), size);
        assert_eq!(info.end_wal.as_deref(), Some("00000001000000000000000A"));
        assert_eq!(info.end_offset, Some(0));
    }
}
