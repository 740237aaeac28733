//! `barman restore` / `barman recover SERVER BACKUP_ID DEST`: rebuild a data directory from
//! a backup and the WAL archive (BARMAN.md §4), locally or on a remote host over SSH.
//!
//! Everything that can refuse the recovery is checked before the destination is touched:
//! the options, the backup, an empty destination (unless `--delta-restore`), and whether the
//! WAL archive reaches the target ([`crate::recovery::wal_plan`]). Then, with Barman's
//! console output: the files, the WAL the target needs (and no more), the recovery
//! configuration, the mangled `postgresql.conf`, and the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use barman_protocol::{Lsn, WalSegmentSize};

use super::{select_one_server_allowing_inactive, Context};
use crate::catalog::remove::BackupPaths;
use crate::catalog::{self, BackupInfo, BackupStatus};
use crate::cli::restore::RestoreArgs;
use crate::config::values::{human_duration, Value};
use crate::config::ServerConfig;
use crate::hooks::Hooks;
use crate::output::Output;
use crate::recovery::config::{
    recovery_file_name, recovery_files, RecoverySettings, RestoreCommand,
};
use crate::recovery::dest::{Destination, Local, Remote};
use crate::recovery::restore::{BackupFiles, Progress, Restore, TablespaceTarget, CAPTURED};
use crate::recovery::target::{self, RecoveryTarget, TargetArgs};
use crate::recovery::throttle::Throttle;
use crate::recovery::wal_copy::{copy_wal, WalFile};
use crate::recovery::{archive::Archive, overlay, select_backup, wal_plan};

/// Run `restore`.
pub fn run(ctx: &mut Context, args: RestoreArgs) -> Result<()> {
    let Some(server) =
        select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, &args.server_name)?
    else {
        return Ok(());
    };
    let out = &mut ctx.out;
    // 1. The target.
    let parsed = match target::parse(&target_args(&args)) {
        Ok(p) => p,
        Err(message) => {
            out.error(&message);
            return Ok(());
        }
    };
    let target = parsed.target;
    // 2. The backup.
    let backups = catalog::read_backups(server)
        .with_context(|| format!("read the backup catalogue of server '{}'", server.name))?;
    let latest_tli = crate::catalog::latest_archived_wals(server)
        .ok()
        .and_then(|m| m.keys().filter_map(|t| crate::wal::timeline_of(t)).max());
    let id = match select_backup(&server.name, &backups, &args.backup_id, &target, latest_tli) {
        Ok(id) => id,
        Err(message) => {
            out.error(&message);
            return Ok(());
        }
    };
    let info = &backups[&id];
    if !matches!(
        info.status,
        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
    ) {
        out.error(&format!(
            "Cannot restore from backup '{}' of server '{}': backup status is not DONE",
            args.backup_id, server.name
        ));
        return Ok(());
    }
    // Barman's gpg encryption is not implemented: say so rather than restore ciphertext.
    if let Some(encryption) = info.encryption.as_deref().filter(|e| *e != "None") {
        out.error(&format!(
            "Cannot restore from backup '{}' of server '{}': it is encrypted ({encryption}), \
             which this barman does not support",
            info.backup_id, server.name
        ));
        out.hint("restore it with Python Barman (barman recover, with the gpg passphrase)");
        return Ok(());
    }
    let Some(request) = check_request(server, out, &args, info)? else {
        return Ok(());
    };
    // 3. The destination must be empty (unless delta restore).
    let throttle = request.bwlimit.and_then(Throttle::from_kbps).map(Arc::new);
    let dest: Box<dyn Destination> = match &args.remote_ssh_command {
        Some(ssh) => Box::new(Remote {
            ssh_command: ssh.clone(),
            throttle: throttle.clone(),
        }),
        None => Box::new(Local {
            throttle: throttle.clone(),
        }),
    };
    if !request.delta && !check_empty(dest.as_ref(), out, &request)? {
        return Ok(());
    }
    // 4. Hooks, then Barman's opening lines.
    let started = chrono::Local::now();
    let clock = Instant::now();
    let paths = BackupPaths::of(server, &id);
    let mut hooks = Hooks::new(server, &ctx.config.path, "recovery");
    env_recovery(&mut hooks, &backups, info, &paths, &request, &args, &target);
    if let Err(aborted) = hooks.pre() {
        out.error(&format!("Restore of backup {id} aborted: {aborted}"));
        return Ok(());
    }
    out.info(&format!(
        "Starting {} restore for server {} using backup {id}",
        dest.kind(),
        server.name
    ));
    out.info(&format!(
        "Destination directory: {}",
        request.data_dir.display()
    ));
    if let Some(ssh) = &args.remote_ssh_command {
        out.info(&format!("Remote command: {ssh}"));
    }
    for warning in &parsed.warnings {
        out.warning(warning);
    }
    if !request.get_wal && info.status == Some(BackupStatus::WaitingForWals) {
        out.warning("IMPORTANT: You have requested a recovery operation for a backup that does not have yet all the WAL files that are required for consistency.");
    }
    let result = restore(
        ctx.config.global.barman_user(),
        &ctx.config.path,
        server,
        out,
        info,
        &request,
        &target,
        dest.as_ref(),
    );
    let mut post = Hooks::new(server, &ctx.config.path, "recovery");
    env_recovery(&mut post, &backups, info, &paths, &request, &args, &target);
    let report = match result {
        Ok(Some(report)) => report,
        Ok(None) => {
            post.env("BARMAN_ERROR", "the recovery target is not reachable");
            post.post();
            return Ok(());
        }
        Err(e) => {
            post.env("BARMAN_ERROR", format!("{e:#}"));
            post.post();
            return Err(e);
        }
    };
    post.post();
    // 5. The report.
    print_report(out, &report, &request, started, clock);
    Ok(())
}

/// What was decided from the command line and the configuration.
struct Request {
    data_dir: PathBuf,
    tablespaces: Vec<TablespaceTarget>,
    get_wal: bool,
    delta: bool,
    jobs: usize,
    bwlimit: Option<u64>,
    staging_wal: Option<PathBuf>,
    recovery_conf_filename: Option<String>,
    standby: bool,
    remote: bool,
    port: Option<u16>,
}

fn target_args(args: &RestoreArgs) -> TargetArgs {
    TargetArgs {
        time: args.target_time.clone(),
        xid: args.target_xid.clone(),
        lsn: args.target_lsn.clone(),
        name: args.target_name.clone(),
        immediate: args.target_immediate,
        tli: args.target_tli.clone(),
        action: args.target_action.clone(),
        exclusive: args.exclusive,
    }
}

fn flag_set(server: &ServerConfig, option: &str, flag: &str) -> bool {
    matches!(server.get(option), Some(Value::Flags(f)) if f.flags.contains(flag))
}

/// Check the options against the backup, Barman's way.
fn check_request(
    server: &ServerConfig,
    out: &mut Output,
    args: &RestoreArgs,
    info: &BackupInfo,
) -> Result<Option<Request>> {
    let dest = &args.destination_directory;
    if args.remote_ssh_command.is_none() && dest.contains(':') {
        out.error("The destination directory parameter cannot contain the ':' character\nHINT: If you want to do a remote recovery you have to use the --remote-ssh-command option");
        return Ok(None);
    }
    let data_dir = absolute(Path::new(dest));
    let mut rules = std::collections::BTreeMap::new();
    for rule in &args.tablespace {
        match rule.split_once(':') {
            Some((name, location)) => {
                rules.insert(name.to_string(), absolute(Path::new(location)));
            }
            None => {
                out.error(&format!("Invalid tablespace relocation rule '{rule}'\nHINT: The valid syntax for a relocation rule is NAME:LOCATION"));
                return Ok(None);
            }
        }
    }
    let known: Vec<&str> = info
        .tablespaces
        .iter()
        .flatten()
        .map(|t| t.name.as_str())
        .collect();
    for name in rules.keys() {
        if !known.contains(&name.as_str()) {
            out.error(&format!(
                "Invalid tablespace name '{name}'\nHINT: Please use any of the following tablespaces: {}",
                known.join(", ")
            ));
            return Ok(None);
        }
    }
    let tablespaces = info
        .tablespaces
        .iter()
        .flatten()
        .map(|t| TablespaceTarget {
            name: t.name.clone(),
            oid: t.oid,
            location: rules
                .get(&t.name)
                .cloned()
                .unwrap_or_else(|| PathBuf::from(&t.location)),
        })
        .collect();
    let get_wal = if args.get_wal {
        true
    } else if args.no_get_wal {
        false
    } else {
        flag_set(server, "recovery_options", "get-wal")
    };
    let delta = if args.delta_restore {
        true
    } else if args.no_delta_restore {
        false
    } else {
        flag_set(server, "recovery_options", "delta-restore")
    };
    let jobs = args
        .jobs
        .map(|j| j as usize)
        .or_else(|| server.int("parallel_jobs").map(|j| j.max(1) as usize))
        .unwrap_or(1);
    let bwlimit = args
        .bwlimit
        .or_else(|| server.int("bandwidth_limit").map(|b| b.max(0) as u64));
    Ok(Some(Request {
        data_dir,
        tablespaces,
        get_wal,
        delta,
        jobs,
        bwlimit,
        staging_wal: args.staging_wal_directory.as_deref().map(absolute),
        recovery_conf_filename: args.recovery_conf_filename.clone(),
        standby: args.standby_mode,
        remote: args.remote_ssh_command.is_some(),
        port: args.recovery_option_port,
    }))
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

fn check_empty(dest: &dyn Destination, out: &mut Output, request: &Request) -> Result<bool> {
    if !dest.is_empty_dir(&request.data_dir)? {
        out.error(&format!(
            "The restore operation cannot proceed because the destination folder '{}' is not empty. To prevent accidental data loss, the destination must be empty. Please choose a different location or manually empty the folder.",
            request.data_dir.display()
        ));
        return Ok(false);
    }
    for t in &request.tablespaces {
        if !dest.is_empty_dir(&t.location)? {
            out.error(&format!(
                "The restore operation cannot proceed. The destination path '{}' for the tablespace '{}' is not empty. To prevent accidental data loss, the tablespace destination must be empty. Please choose a different location or manually empty the folder.",
                t.location.display(),
                t.name
            ));
            return Ok(false);
        }
    }
    Ok(true)
}

/// Barman's recovery hook variables, after the backup's.
fn env_recovery(
    hooks: &mut Hooks<'_>,
    backups: &std::collections::BTreeMap<String, BackupInfo>,
    info: &BackupInfo,
    paths: &BackupPaths,
    request: &Request,
    args: &RestoreArgs,
    target: &RecoveryTarget,
) {
    let previous = backups
        .range(..info.backup_id.clone())
        .next_back()
        .map(|(k, _)| k.as_str());
    let next = backups
        .range(info.backup_id.clone()..)
        .nth(1)
        .map(|(k, _)| k.as_str());
    hooks.env_backup(info, &paths.base, &paths.info_file(), previous, next);
    let tablespaces = if args.tablespace.is_empty() {
        String::new()
    } else {
        let map: serde_json::Map<String, serde_json::Value> = request
            .tablespaces
            .iter()
            .map(|t| (t.name.clone(), t.location.display().to_string().into()))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    let mut options = serde_json::Map::new();
    for (key, value) in [
        ("target_time", args.target_time.clone()),
        ("target_xid", args.target_xid.clone()),
        ("target_lsn", args.target_lsn.clone()),
        ("target_name", args.target_name.clone()),
        ("target_tli", args.target_tli.clone()),
        ("target_action", args.target_action.clone()),
    ] {
        if let Some(v) = value {
            options.insert(key.into(), v.into());
        }
    }
    if args.target_immediate {
        options.insert("target_immediate".into(), true.into());
    }
    if target.exclusive {
        options.insert("exclusive".into(), true.into());
    }
    if request.standby {
        options.insert("standby_mode".into(), true.into());
    }
    hooks
        .env(
            "BARMAN_DESTINATION_DIRECTORY",
            request.data_dir.display().to_string(),
        )
        .env("BARMAN_TABLESPACES", tablespaces)
        .env(
            "BARMAN_REMOTE_COMMAND",
            args.remote_ssh_command.clone().unwrap_or_default(),
        )
        .env(
            "BARMAN_RECOVER_OPTIONS",
            serde_json::Value::Object(options).to_string(),
        );
}

/// The facts of a backup the WAL plan needs.
fn backup_wal(info: &BackupInfo) -> Result<(wal_plan::BackupWal, WalSegmentSize)> {
    let lsn = |v: &Option<String>, key: &str| -> Result<Lsn> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("backup {} has no valid {key}", info.backup_id))
    };
    let seg_size = WalSegmentSize::new(info.xlog_segment_size.unwrap_or(16 << 20) as u32)
        .map_err(|e| anyhow::anyhow!("backup {}: {e}", info.backup_id))?;
    Ok((
        wal_plan::BackupWal {
            timeline: info.timeline.unwrap_or(1),
            begin: lsn(&info.begin_xlog, "begin_xlog")?,
            end: lsn(&info.end_xlog, "end_xlog")?,
            end_time: info.end_time,
            seg_size,
        },
        seg_size,
    ))
}

/// What the restore reports at the end.
struct Report {
    config: overlay::ConfigReport,
    recovery_file: String,
    get_wal: bool,
}

/// The restore itself; `Ok(None)` when it was refused (the message is printed).
#[allow(clippy::too_many_arguments)]
fn restore(
    barman_user: &str,
    config_path: &Path,
    server: &ServerConfig,
    out: &mut Output,
    info: &BackupInfo,
    request: &Request,
    target: &RecoveryTarget,
    dest: &dyn Destination,
) -> Result<Option<Report>> {
    let version = info.version.unwrap_or(0);
    let is_pitr = target.is_pitr();
    // Where the WAL goes.
    let pg_wal = request.data_dir.join(if version >= 100000 || version == 0 {
        "pg_wal"
    } else {
        "pg_xlog"
    });
    let wal_dest = if request.standby && !request.get_wal {
        pg_wal.clone()
    } else if is_pitr {
        request
            .staging_wal
            .clone()
            .unwrap_or_else(|| request.data_dir.join("barman_wal"))
    } else {
        pg_wal.clone()
    };
    // The WAL plan: decided before anything is written.
    let (backup_wal, seg_size) = backup_wal(info)?;
    let mut archive = Archive::open(
        server,
        seg_size,
        info.systemid.as_deref().and_then(|s| s.parse().ok()),
    )?;
    let plan = match wal_plan::plan(&backup_wal, target, &mut archive) {
        Ok(plan) => plan,
        Err(e) => {
            if is_pitr {
                out.info(&format!(
                    "Doing PITR. Recovery target {}",
                    target.describe(None)
                ));
            }
            out.error(&e.message);
            if let Some(hint) = &e.hint {
                out.hint(hint);
            }
            return Ok(None);
        }
    };
    // WAL that Barman stored with gpg encryption would reach PostgreSQL as ciphertext.
    let encrypted = archive.encrypted(&plan.segments);
    if let Some(first) = encrypted.first() {
        let more = match encrypted.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        out.error(&format!(
            "WAL file {first}{more} needed by this recovery is encrypted, which this \
             barman does not support"
        ));
        out.hint("restore with Python Barman (barman recover, with the gpg passphrase)");
        return Ok(None);
    }
    if is_pitr {
        out.info(&format!(
            "Doing PITR. Recovery target {}",
            target.describe(target.timeline.map(|_| plan.timeline))
        ));
    }
    // The files.
    let files = BackupFiles::detect(&BackupPaths::of(server, &info.backup_id).base)?;
    out.info("Copying the base backup.");
    let progress = Progress::new(!matches!(out.format(), crate::output::Format::Json));
    let mut capture: Vec<String> = CAPTURED.iter().map(|s| s.to_string()).collect();
    if let Some(f) = &request.recovery_conf_filename {
        capture.push(f.clone());
    }
    let restored = Restore {
        dest,
        data_dir: request.data_dir.clone(),
        tablespaces: request.tablespaces.clone(),
        jobs: request.jobs,
        delta: request.delta,
        progress: &progress,
        capture,
    }
    .run(&files)
    .context("Failure copying base backup")?;
    log::info!(
        "restored {} files, {} bytes of backup {}",
        restored.files,
        restored.bytes,
        info.backup_id
    );
    // The WAL.
    if !request.get_wal {
        out.info("Copying required WAL segments.");
        let mut wal: Vec<WalFile> = plan
            .histories
            .iter()
            .chain(plan.segments.iter())
            .map(|name| WalFile {
                name: name.clone(),
                source: archive.path_of(name),
            })
            .collect();
        if let Some(name) = &plan.partial {
            if let Some(source) = archive.partial_path(name) {
                wal.push(WalFile {
                    name: name.clone(),
                    source,
                });
            }
        }
        let archived = wal_after(&archive, &backup_wal);
        out.info(&format!(
            "\t{} of {} archived WAL segments from the backup's start{}; recovery stops {}",
            plan.segments.len(),
            archived,
            if plan.partial.is_some() {
                " plus the streamed partial segment"
            } else {
                ""
            },
            plan.stop.as_deref().unwrap_or("at the end of the WAL")
        ));
        copy_wal(dest, &wal_dest, &wal, request.jobs, !is_pitr)
            .context("Failure copying WAL files")?;
        if !is_pitr {
            out.info("Generating archive status files");
        }
    }
    // The recovery configuration.
    let recovery = if is_pitr || request.get_wal || request.standby {
        out.info("Generating recovery configuration");
        let restore = if request.get_wal {
            if request.remote {
                RestoreCommand::RemoteGetWal {
                    server: server.name.clone(),
                    barman_user: barman_user.to_string(),
                    host: host_name(),
                    port: request.port,
                    jobs: request.jobs as u32,
                }
            } else {
                RestoreCommand::LocalGetWal {
                    server: server.name.clone(),
                    barman_user: barman_user.to_string(),
                    config: (!crate::config::DEFAULT_CONFIG_FILES
                        .iter()
                        .any(|d| Path::new(d) == config_path))
                    .then(|| config_path.display().to_string()),
                }
            }
        } else if request.standby {
            RestoreCommand::None
        } else {
            RestoreCommand::Copy {
                wal_dest: wal_dest.display().to_string(),
            }
        };
        Some(recovery_files(
            &RecoverySettings {
                version,
                target,
                restore,
                standby: request.standby,
            },
            request.recovery_conf_filename.as_deref(),
        ))
    } else {
        None
    };
    if request.get_wal && is_pitr {
        // Barman creates the WAL directory and its archive_status even with get-wal.
        let mut w = dest.writer(&wal_dest)?;
        w.dir(Path::new("archive_status"), 0o700)?;
        w.finish()?;
    }
    out.info("Identify dangerous settings in destination directory.");
    let config = overlay::write(
        dest,
        &request.data_dir,
        &overlay::Overlay {
            version,
            captured: &restored.captured,
            top_level: &restored.top_level,
            recovery: recovery.as_ref(),
        },
        &info.backup_id,
        &info.to_text(),
    )?;
    Ok(Some(Report {
        config,
        recovery_file: recovery_file_name(version, request.recovery_conf_filename.as_deref()),
        get_wal: request.get_wal,
    }))
}

/// Archived segments from the backup's start (for the report).
fn wal_after(archive: &Archive, backup: &wal_plan::BackupWal) -> usize {
    use crate::recovery::wal_plan::WalSource;
    let first = barman_protocol::wal::names::segment_file_name(
        barman_protocol::TimelineId::new(backup.timeline.max(1))
            .unwrap_or(barman_protocol::TimelineId::FIRST),
        backup.begin.segment_number(backup.seg_size),
        backup.seg_size,
    );
    archive
        .segments()
        .iter()
        .filter(|n| n[8..] >= first[8..] && n[..8] >= first[..8])
        .count()
}

fn print_report(
    out: &mut Output,
    report: &Report,
    _request: &Request,
    started: chrono::DateTime<chrono::Local>,
    clock: Instant,
) {
    let elapsed = clock.elapsed();
    let c = &report.config;
    let changes: Vec<serde_json::Value> = c.changes.iter().map(|a| a.to_json()).collect();
    let warnings: Vec<serde_json::Value> = c.warnings.iter().map(|a| a.to_json()).collect();
    let json = serde_json::json!({
        "changes_count": c.changes.len(),
        "changes": changes,
        "warnings_count": c.warnings.len(),
        "warnings": warnings,
        "missing_files": c.missing_files,
        "recovery_start_time": started.fixed_offset().format("%Y-%m-%d %H:%M:%S%.6f%:z").to_string(),
        "recovery_start_time_timestamp": started.timestamp().to_string(),
        "recovery_elapsed_time": human_duration(elapsed.as_secs()),
        "recovery_elapsed_time_seconds": elapsed.as_secs_f64(),
    });
    let start_text = crate::catalog::backup_info::python_datetime(&started.fixed_offset());
    out.result("recovery", json, || {
        let mut lines = Vec::new();
        if !c.changes.is_empty() {
            lines.push(String::new());
            lines.push("IMPORTANT".into());
            lines.push("These settings have been modified to prevent data losses".into());
            lines.push(String::new());
            lines.extend(c.changes.iter().map(|a| a.render()));
        }
        if !c.warnings.is_empty() {
            lines.push(String::new());
            lines.push("WARNING".into());
            lines.push(
                "You are required to review the following options as potentially dangerous"
                    .into(),
            );
            lines.push(String::new());
            lines.extend(c.warnings.iter().map(|a| a.render()));
        }
        if !c.missing_files.is_empty() {
            lines.push(String::new());
            lines.push("WARNING".into());
            lines.push("The following configuration files have not been saved during backup, hence they have not been restored.".into());
            lines.push("You need to manually restore them in order to start the restored PostgreSQL instance:".into());
            lines.push(String::new());
            lines.extend(c.missing_files.iter().map(|f| format!("    {f}")));
        }
        if report.get_wal {
            lines.push(String::new());
            lines.push("WARNING: 'get-wal' is in the specified 'recovery_options'.".into());
            lines.push(format!(
                "Before you start up the PostgreSQL server, please review the {} file",
                report.recovery_file
            ));
            lines.push("inside the target directory. Make sure that 'restore_command' can be executed by the PostgreSQL user.".into());
        }
        lines.push(String::new());
        lines.push(format!(
            "Restore operation completed (start time: {start_text}, elapsed time: {})",
            human_duration(elapsed.as_secs())
        ));
        lines.push("Your PostgreSQL server has been successfully prepared for recovery!".into());
        lines
    });
}

/// This host's name, for `barman-wal-restore` on the remote host.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // (or truncates, which the search for NUL below handles).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}
