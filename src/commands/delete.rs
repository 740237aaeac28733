//! `barman delete SERVER BACKUP_ID`: remove a backup, its incremental descendants,
//! and the WAL no remaining backup needs (BARMAN.md §5.3).
//!
//! Refused for kept backups and below `minimum_redundancy`. Runs under the server's
//! backup lock (never during a backup) and the backup's own lock, with the delete
//! hooks around each backup and the wal_delete hooks around each WAL file.
//! [`delete_backup`] is also what retention enforcement calls.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;

use super::{select_one_server_allowing_inactive, Context};
use crate::catalog::remove::{self, BackupPaths};
use crate::catalog::{self, BackupInfo, BackupStatus};
use crate::config::values::{human_duration, Value};
use crate::config::ServerConfig;
use crate::fsutil::{self, LockError};
use crate::hooks::Hooks;
use crate::output::Output;
use crate::retention::wal;

/// Run `delete`.
pub fn run(ctx: &mut Context, server: &str, backup: &str) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    let Some((_, id)) = super::resolve_backup(&mut ctx.out, server, backup)? else {
        return Ok(());
    };
    let env = DeleteEnv {
        server,
        lock_dir: ctx.config.global.lock_directory(),
        config_file: &ctx.config.path,
    };
    if !delete_backup(&env, &mut ctx.out, &id, true)? {
        ctx.out
            .error(&format!("Cannot delete backup ({} {id})", server.name));
    }
    Ok(())
}

/// What deleting needs besides the backup.
pub struct DeleteEnv<'a> {
    /// The server.
    pub server: &'a ServerConfig,
    /// `barman_lock_directory`.
    pub lock_dir: &'a std::path::Path,
    /// The configuration file, for hooks.
    pub config_file: &'a std::path::Path,
}

/// Delete backup `id` and its incremental descendants. `manual` is true for the
/// `delete` command (WAL kept while an older standalone backup exists) and false
/// for retention. Returns whether the backup was deleted.
pub fn delete_backup(
    env: &DeleteEnv<'_>,
    out: &mut Output,
    id: &str,
    manual: bool,
) -> Result<bool> {
    let server = env.server;
    let backups = catalog::read_backups(server)?;
    let Some(info) = backups.get(id) else {
        out.error(&format!(
            "Unknown backup '{id}' for server '{}'",
            server.name
        ));
        return Ok(false);
    };
    if catalog::read_keep(server, id)?.is_some() {
        out.warning(&format!(
            "Skipping delete of backup {id} for server {} as it has a current keep request. If you really want to delete this backup please remove the keep and try again.",
            server.name
        ));
        return Ok(false);
    }
    let minimum = server.int("minimum_redundancy").unwrap_or(0).max(0) as usize;
    let full_done = backups
        .values()
        .filter(|b| b.status == Some(BackupStatus::Done) && b.parent_backup_id.is_none())
        .count();
    if info.status == Some(BackupStatus::Done)
        && info.parent_backup_id.is_none()
        && minimum >= full_done
    {
        out.warning(&format!(
            "Skipping delete of backup {id} for server {} due to minimum redundancy requirements (minimum redundancy = {minimum}, current redundancy = {full_done})",
            server.name
        ));
        return Ok(false);
    }
    if info
        .children_backup_ids
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        out.warning(&format!(
            "Backup {id} has incremental backups which depend on it. Deleting all backups in the tree"
        ));
    }
    fsutil::create_dir_all(env.lock_dir)?;
    let _server_lock = match fsutil::try_lock(&fsutil::server_lock_path(
        env.lock_dir,
        &server.name,
        "backup",
    )) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => {
            out.error(&format!(
                "Another process in running on server {}. Impossible to delete the backup.",
                server.name
            ));
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    for target in tree_bottom_up(&backups, id) {
        let lock_path = fsutil::server_lock_path(env.lock_dir, &server.name, &target);
        let lock = match super::lock_backup(env.lock_dir, &server.name, &target)? {
            Ok(lock) => lock,
            Err(busy) => {
                out.error(&busy);
                return Ok(false);
            }
        };
        let deleted = delete_one(env, out, &target, manual)?;
        drop(lock);
        if !deleted {
            if target != id {
                out.error("Failed to delete one of its incremental backups. Make sure all its dependent backups are deletable and try again.");
            }
            return Ok(false);
        }
        // Nobody waits on the lock of a backup that no longer exists.
        let _ = std::fs::remove_file(&lock_path);
    }
    Ok(true)
}

/// Children before parents, the backup itself last.
fn tree_bottom_up(backups: &BTreeMap<String, BackupInfo>, id: &str) -> Vec<String> {
    let mut order = Vec::new();
    if let Some(children) = backups.get(id).and_then(|b| b.children_backup_ids.as_ref()) {
        for child in children {
            if backups.contains_key(child) {
                order.extend(tree_bottom_up(backups, child));
            }
        }
    }
    order.push(id.to_string());
    order
}

/// Delete one backup (its lock is held).
fn delete_one(env: &DeleteEnv<'_>, out: &mut Output, id: &str, manual: bool) -> Result<bool> {
    let server = env.server;
    let backups = catalog::read_backups(server)?;
    let Some(info) = backups.get(id) else {
        return Ok(true);
    };
    let paths = BackupPaths::of(server, id);
    let neighbour = |forward: bool| {
        let done = |b: &&BackupInfo| {
            matches!(
                b.status,
                Some(BackupStatus::Done | BackupStatus::WaitingForWals)
            )
        };
        if forward {
            backups
                .values()
                .filter(|b| b.backup_id.as_str() > id)
                .find(done)
        } else {
            backups
                .values()
                .rev()
                .filter(|b| b.backup_id.as_str() < id)
                .find(done)
        }
        .map(|b| b.backup_id.clone())
    };
    let mut hooks = Hooks::new(server, env.config_file, "delete");
    hooks.env_backup(
        info,
        &paths.base,
        &paths.info_file(),
        neighbour(false).as_deref(),
        neighbour(true).as_deref(),
    );
    let start = Instant::now();
    let start_time = chrono::Local::now();
    // A pre retry hook may veto the delete: nothing has been touched yet.
    hooks.pre()?;
    // 1. Mark the backup, so that an interrupted delete is finished later.
    remove::mark_for_deletion(&paths, id)?;
    out.info(&format!("Deleting backup {id} for server {}", server.name));
    // 2. Decide about the WAL while the backup is still in the catalogue.
    let keep_of = |other: &str| catalog::read_keep(server, other).ok().flatten();
    let concurrent = match server.get("backup_options") {
        Some(Value::Flags(flags)) => flags.contains("concurrent_backup"),
        _ => true,
    };
    let cleanup = wal::plan(info, &backups, &keep_of, manual, concurrent);
    // 3. The data.
    if let Err(e) = remove::remove_backup_data(&paths, info) {
        out.error(&format!(
            "Failure deleting backup {id} for server {}.\n{e:#}",
            server.name
        ));
        return Ok(false);
    }
    // 4. The WAL nobody needs any more.
    if let Some(cleanup) = cleanup {
        out.info("Delete associated WAL segments:");
        for name in remove::remove_wals(server, env.lock_dir, env.config_file, &cleanup)? {
            out.info(&format!("\t{name}"));
        }
    }
    // 5. The catalogue entry, backup.info last.
    if let Err(e) = remove::remove_backup_entry(&paths, id) {
        out.error(&format!(
            "Failure deleting backup {id} for server {}.\n{e:#}",
            server.name
        ));
        return Ok(false);
    }
    out.info(&format!(
        "Deleted backup {id} (start time: {}, elapsed time: {})",
        start_time.format("%a %b %e %H:%M:%S %Y"),
        human_duration(start.elapsed().as_secs())
    ));
    // 6. An incremental backup is no longer its parent's child.
    if let Some(parent_id) = &info.parent_backup_id {
        if let Some(parent) = backups.get(parent_id) {
            let mut parent = parent.clone();
            if let Some(children) = parent.children_backup_ids.as_mut() {
                children.retain(|c| c != id);
                if children.is_empty() {
                    parent.children_backup_ids = None;
                }
            }
            remove::save_info(&BackupPaths::of(server, parent_id), &parent)?;
        }
    }
    hooks.post();
    Ok(true)
}
