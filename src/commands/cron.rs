//! `barman cron [--keep-descriptors]`: the maintenance run to call every minute
//! (BARMAN.md §1.5). For every active, working server, under `.<server>-cron.lock`:
//! start `archive-wal` in the background when none runs; start `receive-wal` when
//! `streaming_archiver = on` and none runs (stop it when streaming is off); start
//! `check-backup` for the oldest WAITING_FOR_WALS backup; enforce the retention policy
//! (`retention_policy_mode = auto`), finishing interrupted deletes. Then remove lock
//! files nobody holds (`lock_directory_cleanup`).
//!
//! One server's trouble never stops the others: each problem is reported and the exit
//! code says so. Background processes run `barman -c CONFIG -q SUBCOMMAND SERVER`,
//! detached from cron (their own process group, no terminal), as Barman starts them.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};

use super::delete::{delete_backup, DeleteEnv};
use super::list_backups::retention_report;
use super::Context;
use crate::catalog::remove::BackupPaths;
use crate::catalog::{self, BackupStatus};
use crate::config::ServerConfig;
use crate::fsutil::{self, LockError};
use crate::output::Output;
use crate::retention::RetentionStatus;

/// Run `cron`.
pub fn run(ctx: &mut Context, keep_descriptors: bool) -> Result<()> {
    super::refuse_on_global_errors(&ctx.config, &mut ctx.out)?;
    let lock_dir = ctx.config.global.lock_directory().to_path_buf();
    fsutil::create_dir_all(&lock_dir)?;
    let spawner = Spawner {
        config_file: ctx.config.path.clone(),
        keep_descriptors,
    };
    for server in ctx.config.servers.values() {
        if !server.active() {
            ctx.out
                .info(&format!("Skipping inactive server '{}'", server.name));
            continue;
        }
        if server.disabled() {
            ctx.out.info(&format!(
                "Skipping temporarily disabled server '{}'",
                server.name
            ));
            continue;
        }
        let env = CronEnv {
            server,
            lock_dir: &lock_dir,
            config_file: &ctx.config.path,
            spawner: &spawner,
        };
        if let Err(e) = cron_server(&env, &mut ctx.out) {
            ctx.out.error(&format!(
                "Unable to run cron on server '{}': {e:#}",
                server.name
            ));
        }
    }
    if ctx.config.global.get("lock_directory_cleanup")
        != Some(&crate::config::values::Value::Bool(false))
    {
        clean_lock_directory(&lock_dir)?;
    }
    Ok(())
}

struct CronEnv<'a> {
    server: &'a ServerConfig,
    lock_dir: &'a Path,
    config_file: &'a Path,
    spawner: &'a Spawner,
}

fn cron_server(env: &CronEnv<'_>, out: &mut Output) -> Result<()> {
    let server = env.server;
    let _lock = match fsutil::try_lock(&fsutil::server_lock_path(
        env.lock_dir,
        &server.name,
        "cron",
    )) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => {
            out.info(&format!(
                "Another cron process is already running on server {}. Skipping to the next server",
                server.name
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if server.passive_node() {
        out.warning(&format!(
            "Server {} is a passive node (primary_ssh_command): copying backups from another Barman is not supported by this barman, skipping",
            server.name
        ));
        return Ok(());
    }
    // 1. WAL archiving.
    if lock_is_free(env.lock_dir, &server.name, "archive-wal")? {
        out.info_unlogged(&format!(
            "Starting WAL archiving for server {}",
            server.name
        ));
        env.spawner.spawn("archive-wal", &[&server.name])?;
    } else {
        out.info(&format!(
            "Another archive-wal process is already running on server {}. Skipping to the next server",
            server.name
        ));
    }
    // 2. The WAL receiver.
    if server.flag("streaming_archiver") {
        if lock_is_free(env.lock_dir, &server.name, "receive-wal")? {
            out.info_unlogged(&format!(
                "Starting streaming archiver for server {}",
                server.name
            ));
            env.spawner.spawn("receive-wal", &[&server.name])?;
        } else {
            log::debug!(
                "Another STREAMING ARCHIVER process is running for server {}",
                server.name
            );
        }
    } else if let Some(pid) = fsutil::lock_holder(&fsutil::server_lock_path(
        env.lock_dir,
        &server.name,
        "receive-wal",
    )) {
        stop_process(out, "receive-wal", pid);
    }
    // 3. The oldest backup waiting for its WAL.
    let backups = catalog::read_backups(server)
        .with_context(|| format!("read the backup catalogue of server '{}'", server.name))?;
    if let Some(waiting) = backups
        .values()
        .find(|b| b.status == Some(BackupStatus::WaitingForWals))
    {
        if lock_is_free(env.lock_dir, &server.name, &waiting.backup_id)? {
            out.info_unlogged(&format!(
                "Starting check-backup for backup {} of server {}",
                waiting.backup_id, server.name
            ));
            env.spawner
                .spawn("check-backup", &[&server.name, &waiting.backup_id])?;
        }
    }
    // 4. Retention.
    enforce_retention(env, out)
}

/// Delete every OBSOLETE backup, and finish deletes that were interrupted.
fn enforce_retention(env: &CronEnv<'_>, out: &mut Output) -> Result<()> {
    let server = env.server;
    if server.text("retention_policy_mode") != Some("auto") {
        return Ok(());
    }
    let backups = catalog::read_backups(server)?;
    let Some(mut report) = retention_report(server, &backups)? else {
        return Ok(());
    };
    for id in backups.keys() {
        let paths = BackupPaths::of(server, id);
        if paths.annotation(id, "delete_this").exists() {
            report.insert(id.clone(), RetentionStatus::Obsolete);
        }
    }
    let delete_env = DeleteEnv {
        server,
        lock_dir: env.lock_dir,
        config_file: env.config_file,
    };
    for (id, status) in report {
        if status != RetentionStatus::Obsolete {
            continue;
        }
        if !lock_is_free(env.lock_dir, &server.name, &id)? {
            out.warning(&format!(
                "Another action is in progress for the backup {id} of server {}, skipping retention policy application",
                server.name
            ));
            continue;
        }
        out.info(&format!(
            "Enforcing retention policy: removing backup {id} for server {}",
            server.name
        ));
        delete_backup(&delete_env, out, &id, false)?;
    }
    Ok(())
}

/// Whether nobody holds `.<server>-<task>.lock` right now.
fn lock_is_free(lock_dir: &Path, server: &str, task: &str) -> Result<bool> {
    match fsutil::try_lock(&fsutil::server_lock_path(lock_dir, server, task)) {
        Ok(_released_at_once) => Ok(true),
        Err(LockError::Busy { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Ask a process to stop (SIGTERM), as Barman's `kill` does.
pub fn stop_process(out: &mut Output, task: &str, pid: u32) {
    let Ok(pid_i32) = i32::try_from(pid) else {
        return;
    };
    match nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid_i32),
        nix::sys::signal::Signal::SIGTERM,
    ) {
        Ok(()) => out.info(&format!("Stopped process {task}({pid})")),
        Err(_) => out.error(&format!("Cannot terminate process {task}({pid})")),
    }
}

/// Remove the lock files nobody holds (`lock-directory-cleanup`).
pub fn clean_lock_directory(lock_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(lock_dir) {
        Ok(it) => it,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("list {}", lock_dir.display())),
    };
    log::info!("Cleaning up lockfiles directory.");
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !(name.starts_with('.') && name.ends_with(".lock")) {
            continue;
        }
        // Holding the lock while removing the file: nobody can take it meanwhile.
        if let Ok(lock) = fsutil::try_lock(&path) {
            let _ = std::fs::remove_file(&path);
            drop(lock);
        }
    }
    Ok(())
}

/// Starts barman sub-commands in the background.
struct Spawner {
    config_file: std::path::PathBuf,
    keep_descriptors: bool,
}

impl Spawner {
    fn spawn(&self, subcommand: &str, args: &[&str]) -> Result<()> {
        let exe = std::env::current_exe().context("find the barman executable")?;
        let mut cmd = Command::new(&exe);
        cmd.arg("-c")
            .arg(&self.config_file)
            .arg("-q")
            .arg(subcommand)
            .args(args);
        if !self.keep_descriptors {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        // Its own process group: a Ctrl-C on cron's terminal does not reach it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("start barman {subcommand} {}", args.join(" ")))?;
        log::debug!(
            "Started barman {subcommand} {} (pid {})",
            args.join(" "),
            child.id()
        );
        // Not waited for: it runs on after cron exits (and is reaped by init).
        drop(child);
        Ok(())
    }
}
