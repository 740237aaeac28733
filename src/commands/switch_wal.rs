//! `barman switch-wal SERVER... [--force] [--archive] [--archive-timeout S]`: close the
//! current WAL segment with `pg_switch_wal()` (after a CHECKPOINT with `--force`) and,
//! with `--archive`, wait until it is archived, running archive-wal meanwhile
//! (Barman's `Server.switch_wal` and `wait_for_wal`, messages included).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use barman_protocol::{Lsn, TimelineId, WalSegmentSize};

use super::receive_wal::sql_conninfo;
use super::{select_servers, Context};
use crate::catalog::latest_archived_wals;
use crate::catalog::remove::archived_path;
use crate::config::ServerConfig;
use crate::fsutil;
use crate::output::Output;
use crate::postgres::{runtime, SqlClient};
use crate::wal::archiver::{archive, ArchiveEnv, Source};
use crate::wal::receiver::start::{parse_size_setting, segment_name_before};

/// The options of `switch-wal`.
#[derive(Debug, Clone)]
pub struct SwitchWalArgs {
    /// The servers (`all` for every one).
    pub servers: Vec<String>,
    /// `--force`: CHECKPOINT first.
    pub force: bool,
    /// `--archive`: wait for the WAL to be archived.
    pub archive: bool,
    /// `--archive-timeout` in seconds (0: no limit).
    pub archive_timeout: u64,
}

/// How a switch went.
enum Switched {
    /// The segment that was closed.
    Closed(String),
    /// Nothing was written since the last switch.
    NotNeeded,
    /// The server is a standby.
    Standby,
}

/// Run `switch-wal`.
pub fn run(ctx: &mut Context, args: SwitchWalArgs) -> Result<()> {
    let servers: Vec<ServerConfig> = select_servers(&ctx.config, &mut ctx.out, &args.servers)?
        .into_iter()
        .cloned()
        .collect();
    for server in &servers {
        if !server.active() {
            continue;
        }
        if server.disabled() {
            for message in &server.msg_list {
                ctx.out.error(message);
            }
            continue;
        }
        let name = &server.name;
        let switched = runtime()?.block_on(switch(server, args.force));
        let closed = match switched {
            Ok(Switched::Closed(wal)) => {
                ctx.out.info(&format!(
                    "The WAL file {wal} has been closed on server '{name}'"
                ));
                Some(wal)
            }
            Ok(Switched::NotNeeded) => {
                ctx.out
                    .info(&format!("No switch required for server '{name}'"));
                None
            }
            Ok(Switched::Standby) => {
                ctx.out.info(&format!(
                    "No switch performed because server '{name}' is a standby."
                ));
                None
            }
            Err(e) if args.force && format!("{e:#}").contains("CHECKPOINT") => {
                log::error!("switch-wal --force on {name}: {e:#}");
                ctx.out.error(
                    "Barman switch-wal --force requires superuser rights or the 'pg_checkpoint' role",
                );
                continue;
            }
            Err(e) => {
                log::error!("pg_switch_wal() on {name}: {e:#}");
                ctx.out.error(&format!(
                    "Unable to perform pg_switch_wal for server '{name}'."
                ));
                continue;
            }
        };
        if args.archive {
            wait_for_wal(ctx, server, closed.as_deref(), args.archive_timeout)?;
        }
    }
    Ok(())
}

async fn switch(server: &ServerConfig, force: bool) -> Result<Switched> {
    let sql = SqlClient::connect(&server.name, &sql_conninfo(server)?, "barman").await?;
    let in_recovery = sql.query_text("SELECT pg_is_in_recovery()").await?;
    if in_recovery.as_deref() == Some("t") {
        return Ok(Switched::Standby);
    }
    if force {
        sql.client
            .batch_execute("CHECKPOINT")
            .await
            .context("run CHECKPOINT")?;
    }
    let seg_text = sql
        .query_text("SHOW wal_segment_size")
        .await?
        .unwrap_or_default();
    let seg_size = parse_size_setting(&seg_text)
        .and_then(|n| u32::try_from(n).ok())
        .and_then(|n| WalSegmentSize::new(n).ok())
        .ok_or_else(|| anyhow::anyhow!("invalid wal_segment_size {seg_text}"))?;
    let (tli, before) = insert_lsn(&sql).await?;
    sql.client
        .batch_execute("SELECT pg_switch_wal()")
        .await
        .context("run pg_switch_wal()")?;
    let (_, after) = insert_lsn(&sql).await?;
    let pre = segment_name_before(tli, before, seg_size).unwrap_or_default();
    let post = segment_name_before(tli, after, seg_size).unwrap_or_default();
    Ok(if pre < post {
        Switched::Closed(pre)
    } else {
        Switched::NotNeeded
    })
}

/// The WAL insert position and its timeline (from the WAL file name of the position).
async fn insert_lsn(sql: &SqlClient) -> Result<(TimelineId, Lsn)> {
    let row = sql
        .client
        .query_one(
            "SELECT pg_current_wal_insert_lsn()::text, pg_walfile_name(pg_current_wal_insert_lsn())",
            &[],
        )
        .await
        .context("read the WAL insert position")?;
    let lsn: String = row.get(0);
    let file: String = row.get(1);
    let lsn: Lsn = lsn
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid LSN {lsn}"))?;
    let tli = crate::wal::timeline_of(&file)
        .and_then(|t| TimelineId::new(t).ok())
        .ok_or_else(|| anyhow::anyhow!("invalid WAL file name {file}"))?;
    Ok((tli, lsn))
}

/// Barman's `wait_for_wal`: archive until the file (or any new file) is archived.
fn wait_for_wal(
    ctx: &mut Context,
    server: &ServerConfig,
    wal: Option<&str>,
    timeout: u64,
) -> Result<()> {
    let name = &server.name;
    let max = if timeout > 0 {
        format!(" (max: {timeout} seconds)")
    } else {
        String::new()
    };
    let initial = latest_names(server);
    match wal {
        Some(wal) => ctx.out.info(&format!(
            "Waiting for the WAL file {wal} from server '{name}'{max}"
        )),
        None => ctx.out.info(&format!(
            "Waiting for a WAL file from server '{name}' to be archived{max}"
        )),
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_secs(timeout));
    let wals = server.path("wals_directory").map(|p| p.to_path_buf());
    loop {
        archive_quietly(ctx, server)?;
        let done = match (wal, &wals) {
            (Some(wal), Some(dir)) => archived_path(dir, wal).exists(),
            _ => latest_names(server) != initial,
        };
        if done {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            match wal {
                Some(wal) => ctx.out.error(&format!(
                    "The WAL file {wal} has not been received in {timeout} seconds"
                )),
                None => ctx.out.info(&format!(
                    "A WAL file has not been received in {timeout} seconds"
                )),
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn latest_names(server: &ServerConfig) -> Vec<String> {
    latest_archived_wals(server)
        .map(|m| m.into_values().map(|w| w.name).collect())
        .unwrap_or_default()
}

/// One archive-wal pass, unless another archive-wal holds the lock.
fn archive_quietly(ctx: &mut Context, server: &ServerConfig) -> Result<()> {
    let lock_dir = ctx.config.global.lock_directory().to_path_buf();
    fsutil::create_dir_all(&lock_dir)?;
    let Ok(_lock) = fsutil::try_lock(&fsutil::server_lock_path(
        &lock_dir,
        &server.name,
        "archive-wal",
    )) else {
        return Ok(());
    };
    let env = ArchiveEnv {
        server,
        lock_dir: &lock_dir,
        config_file: &ctx.config.path,
    };
    let out: &mut Output = &mut ctx.out;
    if server.flag("streaming_archiver") {
        archive(&env, Source::Streaming, out, false)?;
    }
    if server.flag("archiver") {
        archive(&env, Source::Incoming, out, false)?;
    }
    Ok(())
}
