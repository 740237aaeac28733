//! `barman rebuild-xlogdb SERVER...|all`: rewrite the WAL catalogue (`xlog.db`) from
//! what the WAL archive holds, after files were moved by hand or the catalogue was
//! damaged. Output as Barman's.

use anyhow::{Context as _, Result};

use super::{select_servers, Context};
use crate::catalog::xlogdb;

/// Run `rebuild-xlogdb`.
pub fn run(ctx: &mut Context, names: &[String]) -> Result<()> {
    let lock_dir = ctx.config.global.lock_directory().to_path_buf();
    for server in select_servers(&ctx.config, &mut ctx.out, names)? {
        if !server.active() {
            ctx.out
                .info(&format!("Skipping inactive server '{}'", server.name));
            continue;
        }
        if server.disabled() {
            for message in &server.msg_list {
                ctx.out.error(message);
            }
            continue;
        }
        ctx.out
            .info(&format!("Rebuilding xlogdb for server {}", server.name));
        let report = xlogdb::rebuild(server, &lock_dir)
            .with_context(|| format!("rebuild the WAL catalogue of server '{}'", server.name))?;
        for path in &report.unexpected {
            ctx.out.warning(&format!(
                "unexpected file rebuilding the wal database: {}",
                path.display()
            ));
        }
        ctx.out.info(&format!(
            "Done rebuilding xlogdb for server {} (history: {}, backup_labels: {}, wal_file: {})",
            server.name, report.history, report.backup_labels, report.wal_files
        ));
    }
    Ok(())
}
