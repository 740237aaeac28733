//! `barman receive-wal SERVER`: stream WAL into `streaming/` until stopped (the native
//! replacement of Barman's pg_receivewal child, BARMAN.md §1.4), plus its maintenance
//! options: `--create-slot [--if-not-exists]`, `--drop-slot`, `--reset` and `--stop`,
//! with Barman's messages. The receiver itself is `wal::receiver`.

use anyhow::{Context as _, Result};
use barman_protocol::conninfo::{parse_pairs, Env};
use barman_protocol::wal::names::{is_partial_file_name, is_segment_file_name, segment_file_name};
use barman_protocol::{ConnInfo, Lsn, ReplicationConnection, WalSegmentSize};

use super::terminate_process::terminate;
use super::{select_one_server, select_one_server_allowing_inactive, Context};
use crate::catalog::identity::{self, Identity};
use crate::config::ServerConfig;
use crate::fsutil::{self, LockError};
use crate::output::Output;
use crate::postgres::{parse_conninfo, runtime, SqlClient};
use crate::wal::receiver::start::parse_size_setting;
use crate::wal::receiver::{self, ReceiverSettings, STATUS_INTERVAL};

/// The options of `receive-wal`.
#[derive(Debug, Clone, Default)]
pub struct ReceiveWalArgs {
    /// The server.
    pub server: String,
    /// `--stop`.
    pub stop: bool,
    /// `--reset`.
    pub reset: bool,
    /// `--create-slot`.
    pub create_slot: bool,
    /// `--if-not-exists`.
    pub if_not_exists: bool,
    /// `--drop-slot`.
    pub drop_slot: bool,
}

/// Run `receive-wal`.
pub fn run(ctx: &mut Context, args: ReceiveWalArgs) -> Result<()> {
    // 1. The server: inactive ones are only skipped when streaming would start.
    let maintenance = args.create_slot || args.drop_slot || args.stop || args.reset;
    let selected = if maintenance {
        select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, &args.server)?
    } else {
        select_one_server(&ctx.config, &mut ctx.out, &args.server)?
    };
    let Some(server) = selected else {
        return Ok(());
    };
    let lock_dir = ctx.config.global.lock_directory().to_path_buf();
    // 2. The action.
    if args.stop && args.reset {
        ctx.out
            .error("--stop and --reset options are not compatible");
    } else if args.stop {
        terminate(&mut ctx.out, &lock_dir, server, "receive-wal");
    } else if args.create_slot {
        runtime()?.block_on(create_slot(&mut ctx.out, server, args.if_not_exists));
    } else if args.drop_slot {
        runtime()?.block_on(drop_slot(&mut ctx.out, server));
    } else {
        runtime()?.block_on(receive(&mut ctx.out, server, &lock_dir, args.reset))?;
    }
    Ok(())
}

/// The replication connection string (`wal_streaming_conninfo`, else
/// `streaming_conninfo`) with `application_name` = `streaming_archiver_name`.
pub fn replication_conninfo(server: &ServerConfig) -> Result<ConnInfo> {
    let (option, text) = match server.text("wal_streaming_conninfo") {
        Some(text) => ("wal_streaming_conninfo", text),
        None => (
            "streaming_conninfo",
            server.text("streaming_conninfo").ok_or_else(|| {
                anyhow::anyhow!("server '{}' has no streaming_conninfo", server.name)
            })?,
        ),
    };
    let name = application_name(server);
    let mut pairs = parse_pairs(text)
        .map_err(|e| anyhow::anyhow!("invalid {option} of server '{}': {e}", server.name))?;
    pairs.retain(|(k, _)| k != "replication" && k != "application_name");
    pairs.push(("application_name".into(), name));
    ConnInfo::from_pairs(pairs, &Env::process())
        .map_err(|e| anyhow::anyhow!("invalid {option} of server '{}': {e}", server.name))
}

/// The SQL connection string of the node WAL comes from (`wal_conninfo`, else
/// `wal_streaming_conninfo`, else `conninfo`).
pub fn sql_conninfo(server: &ServerConfig) -> Result<ConnInfo> {
    let (option, text) = ["wal_conninfo", "wal_streaming_conninfo", "conninfo"]
        .into_iter()
        .find_map(|o| server.text(o).map(|t| (o, t)))
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no conninfo", server.name))?;
    parse_conninfo(&server.name, option, text)
}

fn application_name(server: &ServerConfig) -> String {
    server
        .text("streaming_archiver_name")
        .unwrap_or("barman_receive_wal")
        .to_string()
}

/// `--create-slot`, with Barman's messages.
async fn create_slot(out: &mut Output, server: &ServerConfig, if_not_exists: bool) {
    let Some(slot) = server.text("slot_name") else {
        out.error(
            "Unable to create a physical replication slot: slot_name configuration option required",
        );
        return;
    };
    let Some(mut conn) = connect(out, server).await else {
        return;
    };
    out.info(&format!(
        "Creating physical replication slot '{slot}' on server '{}'",
        server.name
    ));
    match conn.create_physical_slot(slot, false, true).await {
        Ok(_) => out.info(&format!("Replication slot '{slot}' created")),
        Err(e) if e.code() == Some("42710") => {
            if if_not_exists {
                out.info(&format!(
                    "Replication slot '{slot}' already exists and --if-not-exists was specified. Skipping creation"
                ));
            } else {
                out.error(&format!("Replication slot '{slot}' already exists"));
            }
        }
        Err(e) if e.code() == Some("53400") => out.error(&format!(
            "All replication slots for server '{}' are in use\nFree one or increase the max_replication_slots value on your PostgreSQL server.",
            server.name
        )),
        Err(e) => out.error(&format!(
            "Cannot create replication slot '{slot}' on server '{}': {e}",
            server.name
        )),
    }
    let _ = conn.close().await;
}

/// `--drop-slot`, with Barman's messages.
async fn drop_slot(out: &mut Output, server: &ServerConfig) {
    let Some(slot) = server.text("slot_name") else {
        out.error(
            "Unable to drop a physical replication slot: slot_name configuration option required",
        );
        return;
    };
    let Some(mut conn) = connect(out, server).await else {
        return;
    };
    out.info(&format!(
        "Dropping physical replication slot '{slot}' on server '{}'",
        server.name
    ));
    match conn.drop_slot(slot, false).await {
        Ok(()) => out.info(&format!("Replication slot '{slot}' dropped")),
        Err(e) if e.code() == Some("42704") => {
            out.error(&format!("Replication slot '{slot}' does not exist"))
        }
        Err(e) if e.code() == Some("55006") => out.error(&format!(
            "Cannot drop replication slot '{slot}' on server '{}' because it is in use.",
            server.name
        )),
        Err(e) => out.error(&format!(
            "Cannot drop replication slot '{slot}' on server '{}': {e}",
            server.name
        )),
    }
    let _ = conn.close().await;
}

async fn connect(out: &mut Output, server: &ServerConfig) -> Option<ReplicationConnection> {
    let result = match replication_conninfo(server) {
        Ok(info) => ReplicationConnection::connect(&info)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(conn) => Some(conn),
        Err(e) => {
            out.error(&format!("Cannot connect to server '{}'", server.name));
            log::error!("Cannot connect to server '{}': {e:#}", server.name);
            None
        }
    }
}

/// What the checks before streaming learn from the server.
struct ServerState {
    system_id: u64,
    timeline: barman_protocol::TimelineId,
    major: u32,
    seg_size: WalSegmentSize,
    current_lsn: Lsn,
    /// `(active, restart_lsn)` of the slot, when it exists.
    slot: Option<(bool, Option<Lsn>)>,
}

async fn server_state(server: &ServerConfig, slot: Option<&str>) -> Result<ServerState> {
    let mut conn = ReplicationConnection::connect(&replication_conninfo(server)?)
        .await
        .with_context(|| format!("open the streaming connection of server '{}'", server.name))?;
    let id = conn.identify_system().await?;
    let seg_text = conn.show("wal_segment_size").await?;
    let seg_size = parse_size_setting(&seg_text)
        .and_then(|n| u32::try_from(n).ok())
        .and_then(|n| WalSegmentSize::new(n).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "server '{}' reports an invalid wal_segment_size '{seg_text}'",
                server.name
            )
        })?;
    let major = conn.server_version().major();
    let _ = conn.close().await;
    let sql = SqlClient::connect(&server.name, &sql_conninfo(server)?, "barman").await?;
    let current: String = sql
        .client
        .query_one(
            "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
             ELSE pg_current_wal_lsn() END)::text",
            &[],
        )
        .await
        .context("read the current WAL position")?
        .get(0);
    let current_lsn: Lsn = current
        .parse()
        .map_err(|_| anyhow::anyhow!("the server returned an invalid LSN {current}"))?;
    let slot = match slot {
        None => None,
        Some(name) => sql
            .client
            .query_opt(
                "SELECT active, restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&name],
            )
            .await
            .context("read pg_replication_slots")?
            .map(|row| {
                let active: bool = row.get(0);
                let restart: Option<String> = row.get(1);
                (active, restart.and_then(|t| t.parse().ok()))
            }),
    };
    Ok(ServerState {
        system_id: id.system_id,
        timeline: id.timeline,
        major,
        seg_size,
        current_lsn,
        slot,
    })
}

/// Streaming itself, or `--reset`.
async fn receive(
    out: &mut Output,
    server: &ServerConfig,
    lock_dir: &std::path::Path,
    reset: bool,
) -> Result<()> {
    let name = &server.name;
    // 1. Only with streaming_archiver = on.
    if !server.flag("streaming_archiver") {
        out.error(
            "Unable to start receive-wal process: streaming_archiver option set to 'off' in barman configuration file",
        );
        return Ok(());
    }
    // 2. The server must answer on both connections.
    let slot_name = server.text("slot_name");
    let state = match server_state(server, slot_name).await {
        Ok(state) => state,
        Err(e) => {
            log::error!("receive-wal checks of server {name} failed: {e:#}");
            out.error(&format!(
                "Impossible to start WAL streaming. Check the log for more details, or run 'barman check {name}'"
            ));
            return Ok(());
        }
    };
    if !reset {
        out.info(&format!("Starting receive-wal for server {name}"));
    }
    // 3. One receiver per server.
    fsutil::create_dir_all(lock_dir)?;
    let _lock = match fsutil::try_lock(&fsutil::server_lock_path(lock_dir, name, "receive-wal")) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => {
            out.error(&if reset {
                format!("Unable to reset the status of receive-wal for server {name}. Process is still running")
            } else {
                format!("Another receive-wal process is already running for server {name}.")
            });
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    // 4. The slot must exist (or be created with create_slot = auto) and be free.
    let mut slot_restart = None;
    if let Some(slot) = slot_name {
        match state.slot {
            None if server.text("create_slot") == Some("auto") => {
                if !reset {
                    out.info(&format!("Creating replication slot '{slot}'"));
                    create_slot(out, server, false).await;
                    if out.errored() {
                        return Ok(());
                    }
                }
            }
            None => {
                out.error(&format!(
                    "replication slot '{slot}' doesn't exist. Please execute 'barman receive-wal --create-slot {name}'"
                ));
                return Ok(());
            }
            Some((true, _)) => {
                out.error(&format!("replication slot '{slot}' is already in use"));
                return Ok(());
            }
            Some((false, restart)) => slot_restart = restart,
        }
    }
    let directory = server
        .path("streaming_wals_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{name}' has no streaming_wals_directory"))?
        .to_path_buf();
    fsutil::create_dir_all(&directory)?;
    // 5. --reset moves the start point to the server's position.
    if reset {
        return reset_position(out, &directory, &state, slot_restart);
    }
    // 6. A `.partial` of a wrong size is emptied, as Barman does.
    truncate_partial_if_needed(out, &directory, state.seg_size)?;
    // 7. The catalogue belongs to one cluster.
    let system_identifier = match identity::read(server)? {
        Some(identity) => identity.systemid_number(),
        None => {
            identity::write(
                server,
                &Identity {
                    systemid: state.system_id.to_string(),
                    version: state.major.to_string(),
                },
            )?;
            Some(state.system_id)
        }
    };
    if let Some(expected) = system_identifier {
        anyhow::ensure!(
            expected == state.system_id,
            "server '{name}' has system identifier {}, but its catalogue (identity.json) belongs to system {expected}",
            state.system_id
        );
    }
    // 8. Stream until stopped.
    let settings = ReceiverSettings {
        server: name.clone(),
        conninfo: replication_conninfo(server)?,
        application_name: application_name(server),
        directory,
        archive_directory: server.path("wals_directory").map(|p| p.to_path_buf()),
        slot_name: slot_name.map(str::to_string),
        slot_restart_lsn: slot_restart,
        system_identifier,
        status_interval: STATUS_INTERVAL,
    };
    log::info!("Activating WAL archiving through streaming protocol");
    receiver::receive(&settings, out)
        .await
        .with_context(|| format!("receive-wal of server {name} stopped"))
}

/// Barman's `_reset_streaming_status`: the newest file of `streaming/` is replaced by an
/// empty `.partial` of the slot's (or the server's) current segment.
fn reset_position(
    out: &mut Output,
    directory: &std::path::Path,
    state: &ServerState,
    slot_restart: Option<Lsn>,
) -> Result<()> {
    let current_wal = segment_file_name(
        state.timeline,
        state.current_lsn.segment_number(state.seg_size),
        state.seg_size,
    );
    let restart_wal = match slot_restart {
        Some(lsn) => segment_file_name(
            state.timeline,
            lsn.segment_number(state.seg_size),
            state.seg_size,
        ),
        None => current_wal.clone(),
    };
    let restart_partial = format!("{restart_wal}.partial");
    let mut names: Vec<String> = receiver::list_files(directory)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    let last = names
        .into_iter()
        .rev()
        .find(|n| is_segment_file_name(n) || is_partial_file_name(n));
    let Some(last) = last.filter(|l| *l != restart_partial && *l != restart_wal) else {
        out.info("Nothing to do. Position of receive-wal is aligned.");
        return Ok(());
    };
    if last > current_wal {
        out.error(&format!(
            "The receive-wal position is ahead of PostgreSQL current WAL lsn ({last} > {})",
            state.current_lsn
        ));
        return Ok(());
    }
    out.info("Resetting receive-wal directory status");
    if is_partial_file_name(&last) {
        let path = directory.join(&last);
        out.info(&format!("Removing status file {}", path.display()));
        std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    }
    let path = directory.join(&restart_partial);
    out.info(&format!("Creating status file {}", path.display()));
    std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    fsutil::fsync_dir(directory)
}

/// Barman's `_truncate_partial_file_if_needed`: the newest `.partial` must be empty or
/// of the segment size.
fn truncate_partial_if_needed(
    out: &mut Output,
    directory: &std::path::Path,
    seg_size: WalSegmentSize,
) -> Result<()> {
    let last = receiver::list_files(directory)?
        .into_iter()
        .rev()
        .find(|(n, _)| is_partial_file_name(n));
    if let Some((name, size)) = last {
        if size != 0 && size != u64::from(seg_size.bytes()) {
            let path = directory.join(&name);
            out.info(&format!(
                "Truncating partial file {} that has wrong size {size} while {} was expected.",
                path.display(),
                seg_size.bytes()
            ));
            std::fs::File::create(&path).with_context(|| format!("truncate {}", path.display()))?;
        }
    }
    Ok(())
}
