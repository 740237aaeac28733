//! `barman keep SERVER BACKUP_ID (--target full|standalone | -s/--status | -r/--release)`:
//! mark a backup as archival so that retention never deletes it (BARMAN.md §5.4).
//!
//! The annotation is Barman's: `meta/<id>-keep` holding `full` or `standalone`. The older
//! `base/<id>/annotations/keep` is read too; on change it is moved to `meta/`, except for a
//! backup whose metadata is still in `base/<id>` (maybe Barman 3.4's), where both are
//! written. Only DONE, non-incremental backups can be kept.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{select_one_server, Context};
use crate::catalog::{self, BackupStatus};
use crate::cli::KeepTargetArg;
use crate::config::ServerConfig;
use crate::fsutil;

/// What `keep` was asked to do.
pub enum KeepAction {
    /// `--target`.
    Keep(KeepTargetArg),
    /// `--status`.
    Status,
    /// `--release`.
    Release,
}

/// Run `keep`.
pub fn run(ctx: &mut Context, server: &str, backup: &str, action: KeepAction) -> Result<()> {
    let Some(server) = select_one_server(&ctx.config, &mut ctx.out, server)? else {
        return Ok(());
    };
    let Some((backups, id)) = super::resolve_backup(&mut ctx.out, server, backup)? else {
        return Ok(());
    };
    let info = &backups[&id];
    let lock_dir = ctx.config.global.lock_directory();
    match action {
        KeepAction::Status => {
            let target = match catalog::read_keep(server, &id)? {
                Some(crate::retention::KeepTarget::Full) => "full",
                Some(crate::retention::KeepTarget::Standalone) => "standalone",
                None => "nokeep",
            };
            let name = server.name.clone();
            ctx.out.result(
                &name,
                json!({ "keep_status": { "description": "Keep", "message": target } }),
                || vec![format!("Server {name}:"), format!("\tKeep: {target}")],
            );
        }
        KeepAction::Release => {
            let _lock = lock_backup(lock_dir, server, &id)?;
            for path in annotation_paths(server, &id) {
                match std::fs::remove_file(&path) {
                    Ok(()) => fsutil::fsync_dir(path.parent().expect("annotation has a parent"))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("remove {}", path.display())),
                }
            }
        }
        KeepAction::Keep(target) => {
            if info.status != Some(BackupStatus::Done) {
                ctx.out.error(&format!(
                    "Cannot add keep to backup {id} because it has status {}. Only backups with status DONE can be kept.",
                    info.status.unwrap_or(BackupStatus::Empty)
                ));
                return Ok(());
            }
            if info.parent_backup_id.is_some() {
                ctx.out.error(&format!(
                    "Unable to execute the keep command on backup {id}: is an incremental backup.\nOnly full backups are eligible for the use of the keep command."
                ));
                return Ok(());
            }
            let _lock = lock_backup(lock_dir, server, &id)?;
            let paths = annotation_paths(server, &id);
            let meta = paths[0].parent().expect("meta has a parent");
            fsutil::create_dir_all(meta)?;
            let word = match target {
                KeepTargetArg::Full => "full",
                KeepTargetArg::Standalone => "standalone",
            };
            fsutil::write_durably(&paths[0], word.as_bytes())?;
            if catalog::remove::BackupPaths::of(server, &id).is_older_layout() {
                // A backup whose metadata is in base/<id> may still be Barman 3.4's, whose
                // retention reads only base/<id>/annotations/keep: keep that copy too.
                let annotations = paths[1].parent().expect("annotations has a parent");
                fsutil::create_dir_all(annotations)?;
                fsutil::write_durably(&paths[1], word.as_bytes())?;
            } else if paths[1].exists() {
                // The annotation now lives in meta/: remove the pre-3.13.3 copy.
                std::fs::remove_file(&paths[1])
                    .with_context(|| format!("remove {}", paths[1].display()))?;
            }
        }
    }
    Ok(())
}

/// `meta/<id>-keep` first, then the old `base/<id>/annotations/keep`.
fn annotation_paths(server: &ServerConfig, id: &str) -> [PathBuf; 2] {
    let backup = catalog::remove::BackupPaths::of(server, id);
    [backup.annotation(id, "keep"), backup.older_keep()]
}

/// `.<server>-<backup_id>.lock`, as Barman takes it to change one backup.
fn lock_backup(
    lock_dir: &std::path::Path,
    server: &ServerConfig,
    id: &str,
) -> Result<fsutil::LockFile> {
    fsutil::create_dir_all(lock_dir)?;
    let path = fsutil::server_lock_path(lock_dir, &server.name, id);
    fsutil::try_lock(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot change backup {id} of server '{}': {e}; try again when it is done",
            server.name
        )
    })
}
