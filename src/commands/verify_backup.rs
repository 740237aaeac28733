//! `barman verify-backup SERVER BACKUP_ID`: check a stored backup against its
//! `backup_manifest`, natively (Barman runs `pg_verifybackup`). Messages follow Barman's:
//! `Verifying backup ...`, then `backup successfully verified` or
//! `verify backup failure on directory '...'` followed by one error per problem.

use anyhow::{Context as _, Result};

use super::{select_one_server_allowing_inactive, Context};
use crate::backup::verify::verify;
use crate::catalog::remove::BackupPaths;
use crate::catalog::{self};
use crate::fsutil::{self, LockError};

/// Run `verify-backup`.
pub fn run(ctx: &mut Context, server: &str, backup: &str) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    let backups = catalog::read_backups(server)
        .with_context(|| format!("read the backup catalogue of server '{}'", server.name))?;
    let id = match catalog::resolve_backup_id(&server.name, &backups, backup) {
        Ok(id) => id,
        Err(message) => {
            ctx.out.error(&message);
            return Ok(());
        }
    };
    ctx.out.info(&format!(
        "Verifying backup '{backup}' on server {}",
        server.name
    ));
    // Under the backup's lock, so that a delete cannot remove it meanwhile.
    let lock_dir = ctx.config.global.lock_directory();
    fsutil::create_dir_all(lock_dir)?;
    let _lock = match fsutil::try_lock(&fsutil::server_lock_path(lock_dir, &server.name, &id)) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => {
            ctx.out.error(&format!(
                "Another process is holding the lock for backup {id} of server {}.",
                server.name
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let data_dir = BackupPaths::of(server, &id).base.join("data");
    let system_id = backups[&id]
        .systemid
        .as_deref()
        .and_then(|s| s.parse().ok());
    let failure = format!(
        "verify backup failure on directory '{}'",
        data_dir.display()
    );
    match verify(&data_dir, system_id) {
        Ok(v) if v.problems.is_empty() => {
            ctx.out.debug(&format!(
                "{} files, {} bytes checked against the manifest",
                v.files, v.bytes
            ));
            ctx.out.info("backup successfully verified");
        }
        Ok(v) => {
            ctx.out.error(&failure);
            for problem in &v.problems {
                ctx.out.error(problem);
            }
        }
        Err(e) => {
            ctx.out.error(&failure);
            ctx.out.error(&format!("{e:#}"));
        }
    }
    Ok(())
}
