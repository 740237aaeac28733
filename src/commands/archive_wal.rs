//! `barman archive-wal SERVER`: archive what `receive-wal` streamed (`streaming/`)
//! and what `archive_command` or `put-wal` delivered (`incoming/`), each file
//! validated first. Runs under `.<server>-archive-wal.lock`; cron starts it.

use anyhow::Result;

use super::{select_one_server, Context};
use crate::fsutil::{self, LockError};
use crate::wal::archiver::{archive, ArchiveEnv, Source};

/// Run `archive-wal`.
pub fn run(ctx: &mut Context, server: &str) -> Result<()> {
    let Some(server) = select_one_server(&ctx.config, &mut ctx.out, server)? else {
        return Ok(());
    };
    ctx.out
        .debug(&format!("Starting archive-wal for server {}", server.name));
    let lock_dir = ctx.config.global.lock_directory();
    fsutil::create_dir_all(lock_dir)?;
    let _lock = match fsutil::try_lock(&fsutil::server_lock_path(
        lock_dir,
        &server.name,
        "archive-wal",
    )) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => {
            ctx.out.info(&format!(
                "Another archive-wal process is already running on server {}. Skipping to the next server",
                server.name
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let env = ArchiveEnv {
        server,
        lock_dir,
        config_file: &ctx.config.path,
    };
    // Streaming first, then incoming, as Barman orders its archivers.
    if server.flag("streaming_archiver") {
        archive(&env, Source::Streaming, &mut ctx.out, true)?;
    }
    if server.flag("archiver") {
        archive(&env, Source::Incoming, &mut ctx.out, true)?;
    }
    Ok(())
}
