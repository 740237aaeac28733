//! `barman check-backup SERVER BACKUP_ID`: decide whether a WAITING_FOR_WALS backup
//! has all its WAL (DONE), still waits, or misses a segment (FAILED), and save the new
//! status. Silent on success, as in Barman 3.17; cron runs it.

use anyhow::Result;

use super::{select_one_server, Context};
use crate::catalog::check::{check_backup_wals, WalCheck};
use crate::catalog::remove::{save_info, BackupPaths};
use crate::catalog::{self, BackupStatus};

/// Run `check-backup`.
pub fn run(ctx: &mut Context, server: &str, backup: &str) -> Result<()> {
    let Some(server) = select_one_server(&ctx.config, &mut ctx.out, server)? else {
        return Ok(());
    };
    let Some((backups, id)) = super::resolve_backup(&mut ctx.out, server, backup)? else {
        return Ok(());
    };
    ctx.out
        .debug(&format!("Checking backup {id} of server {}", server.name));
    if backups[&id].status == Some(BackupStatus::Failed) {
        ctx.out
            .error("The validity of a failed backup cannot be checked");
        return Ok(());
    }
    let lock_dir = ctx.config.global.lock_directory();
    let _lock = match super::lock_backup(lock_dir, &server.name, &id)? {
        Ok(lock) => lock,
        Err(busy) => {
            ctx.out.info(&busy);
            return Ok(());
        }
    };
    // Read again under the lock: another process may just have changed it.
    let mut info = catalog::read_backups(server)?
        .remove(&id)
        .ok_or_else(|| anyhow::anyhow!("backup {id} of server '{}' disappeared", server.name))?;
    let before = info.status;
    let outcome = check_backup_wals(server, &mut info)?;
    let Some(status) = outcome.status() else {
        return Ok(());
    };
    if info.status != before || matches!(outcome, WalCheck::Missing(_)) {
        save_info(&BackupPaths::of(server, &id), &info)?;
    }
    if let WalCheck::Missing(_) = outcome {
        ctx.out.error(&format!(
            "This backup has been marked as FAILED due to the following reason: {}",
            info.error.as_deref().unwrap_or_default()
        ));
    }
    ctx.out.debug(&format!(
        "Check finished: the status of backup {id} of server {} is {status}",
        server.name
    ));
    Ok(())
}
