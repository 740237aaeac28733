//! `barman verify-backup SERVER BACKUP_ID`: check a stored backup against its
//! `backup_manifest`, natively (Barman runs `pg_verifybackup`). Messages follow Barman's:
//! `Verifying backup ...`, then `backup successfully verified` or
//! `verify backup failure on directory '...'` followed by one error per problem.

use anyhow::Result;

use super::{select_one_server_allowing_inactive, Context};
use crate::backup::verify::verify;
use crate::catalog::remove::BackupPaths;

/// Run `verify-backup`.
pub fn run(ctx: &mut Context, server: &str, backup: &str) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    let Some((backups, id)) = super::resolve_backup(&mut ctx.out, server, backup)? else {
        return Ok(());
    };
    ctx.out.info(&format!(
        "Verifying backup '{backup}' on server {}",
        server.name
    ));
    // Under the backup's lock, so that a delete cannot remove it meanwhile.
    let lock_dir = ctx.config.global.lock_directory();
    let _lock = match super::lock_backup(lock_dir, &server.name, &id)? {
        Ok(lock) => lock,
        Err(busy) => {
            ctx.out.error(&busy);
            return Ok(());
        }
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
