//! `barman check SERVER...|all [--nagios]`: Barman's health checks, with its names, order
//! and hints (BARMAN.md §6.1), so that monitoring that scrapes them keeps working.
//!
//! Where Barman checks its client binaries (`pg_basebackup`, `pg_receivexlog` and their
//! compatibility), this barman needs none: those lines report the native protocol
//! support for the server's version instead, under the same names. Every check that
//! talks to PostgreSQL is bounded by `check_timeout`.

use std::time::Duration;

use anyhow::Result;
use barman_protocol::ReplicationConnection;
use serde_json::{json, Map, Value as Json};

use super::{select_servers, Context};
use crate::catalog::{self, identity, xlogdb, BackupStatus};
use crate::config::values::{human_duration, pretty_size, Value};
use crate::config::ServerConfig;
use crate::fsutil;
use crate::postgres::{parse_conninfo, runtime, SqlClient};
use crate::wal::compression::Compression;

/// One check's outcome.
#[derive(Debug, Clone)]
struct Item {
    name: &'static str,
    ok: bool,
    hint: Option<String>,
    perfdata: Option<u64>,
}

/// The checks of one server.
struct Checks {
    items: Vec<Item>,
}

impl Checks {
    fn add(&mut self, name: &'static str, ok: bool, hint: Option<String>) {
        self.items.push(Item {
            name,
            ok,
            hint,
            perfdata: None,
        });
    }

    fn failed(&self) -> Vec<&'static str> {
        self.items
            .iter()
            .filter(|i| !i.ok)
            .map(|i| i.name)
            .collect()
    }
}

/// What PostgreSQL told us.
#[derive(Default)]
struct Remote {
    connected: bool,
    error: Option<String>,
    version_num: Option<u32>,
    version_text: Option<String>,
    backup_privileges: Option<bool>,
    wal_level: Option<String>,
    archive_mode: Option<String>,
    archive_command: Option<String>,
    archiving_ok: Option<bool>,
    sql_systemid: Option<String>,
    slot: Option<Option<(bool, bool)>>,
    streaming: Option<Result<String, String>>,
}

async fn remote_status(server: &ServerConfig) -> Remote {
    let mut remote = Remote::default();
    let Some(conninfo) = server.text("conninfo") else {
        return remote;
    };
    match parse_conninfo(&server.name, "conninfo", conninfo) {
        Err(e) => remote.error = Some(format!("{e:#}")),
        Ok(info) => match SqlClient::connect(&server.name, &info, "barman_check").await {
            Err(e) => remote.error = Some(format!("{e:#}")),
            Ok(sql) => {
                remote.connected = true;
                let text = |q: &'static str| {
                    let sql = &sql;
                    async move { sql.query_text(q).await.ok().flatten() }
                };
                remote.version_num = text("show server_version_num")
                    .await
                    .and_then(|v| v.parse().ok());
                remote.version_text = text("show server_version").await;
                remote.backup_privileges = text(
                    "select (select rolsuper from pg_roles where rolname = current_user) \
                     or (has_function_privilege('pg_switch_wal()', 'execute') \
                         and has_function_privilege('pg_create_restore_point(text)', 'execute'))",
                )
                .await
                .map(|v| v == "t");
                remote.wal_level = text("show wal_level").await;
                remote.archive_mode = text("show archive_mode").await;
                remote.archive_command = text("show archive_command").await;
                remote.archiving_ok = text(
                    "select coalesce(last_failed_time is null or last_archived_time >= last_failed_time, true) \
                     from pg_stat_archiver",
                )
                .await
                .map(|v| v == "t");
                remote.sql_systemid =
                    text("select system_identifier from pg_control_system()").await;
                if let Some(slot) = server.text("slot_name") {
                    let query = format!(
                        "select active::text || ' ' || (restart_lsn is not null)::text from pg_replication_slots where slot_name = '{}'",
                        slot.replace('\'', "''")
                    );
                    remote.slot = Some(
                        sql.query_text(&query)
                            .await
                            .ok()
                            .flatten()
                            .map(|v| (v.starts_with("true"), v.ends_with("true"))),
                    );
                }
            }
        },
    }
    if server.text("backup_method") == Some("postgres") || server.flag("streaming_archiver") {
        if let Some(streaming) = server.text("streaming_conninfo") {
            remote.streaming = Some(
                match parse_conninfo(&server.name, "streaming_conninfo", streaming) {
                    Err(e) => Err(format!("{e:#}")),
                    Ok(mut info) => {
                        info.set_fallback_application_name("barman_check");
                        match ReplicationConnection::connect(&info).await {
                            Err(e) => Err(e.to_string()),
                            Ok(mut conn) => {
                                let id = conn.identify_system().await.map_err(|e| e.to_string());
                                let _ = conn.close().await;
                                id.map(|id| id.system_id.to_string())
                            }
                        }
                    }
                },
            );
        }
    }
    remote
}

/// Run `check`.
pub fn run(ctx: &mut Context, names: &[String], nagios: bool) -> Result<()> {
    let rt = runtime()?;
    let mut results: Vec<(&ServerConfig, Checks)> = Vec::new();
    for server in select_servers(&ctx.config, &mut ctx.out, names)? {
        let checks = checks_of(&rt, server, ctx.config.global.lock_directory());
        results.push((server, checks));
    }
    if nagios {
        return nagios_report(&mut ctx.out, &results);
    }
    for (server, checks) in &results {
        let header = match super::server_state_note(server) {
            Some(note) => format!("Server {} {note}:", server.name),
            None => format!("Server {}:", server.name),
        };
        let mut json = Map::new();
        let mut lines = vec![header];
        for item in &checks.items {
            let status = if item.ok { "OK" } else { "FAILED" };
            let colored = if item.ok {
                ctx.out.green(status)
            } else {
                ctx.out.red(status)
            };
            lines.push(match &item.hint {
                Some(hint) => format!("\t{}: {colored} ({hint})", item.name),
                None => format!("\t{}: {colored}", item.name),
            });
            json.insert(
                item.name
                    .to_lowercase()
                    .replace([' ', '-'], "_")
                    .replace('.', ""),
                json!({ "status": status, "hint": item.hint.clone().unwrap_or_default() }),
            );
        }
        ctx.out.result(&server.name, Json::Object(json), || lines);
        if server.active() && !checks.failed().is_empty() {
            log::error!(
                "Check failed for server {}: {}",
                server.name,
                checks.failed().join(", ")
            );
            ctx.out.mark_failed();
        }
    }
    Ok(())
}

/// Every check of `server`, the PostgreSQL part bounded by `check_timeout`.
fn checks_of(
    rt: &tokio::runtime::Runtime,
    server: &ServerConfig,
    lock_dir: &std::path::Path,
) -> Checks {
    let timeout = server.int("check_timeout").unwrap_or(30).max(0) as u64;
    let remote = rt.block_on(async {
        if timeout == 0 {
            Some(remote_status(server).await)
        } else {
            tokio::time::timeout(Duration::from_secs(timeout), remote_status(server))
                .await
                .ok()
        }
    });
    run_checks(server, remote.as_ref(), lock_dir)
}

/// The name and outcome of every check of `server`, in `check`'s order (for `metrics`).
pub(crate) fn outcomes(
    rt: &tokio::runtime::Runtime,
    server: &ServerConfig,
    lock_dir: &std::path::Path,
) -> Vec<(&'static str, bool)> {
    checks_of(rt, server, lock_dir)
        .items
        .into_iter()
        .map(|i| (i.name, i.ok))
        .collect()
}

fn run_checks(
    server: &ServerConfig,
    remote: Option<&Remote>,
    lock_dir: &std::path::Path,
) -> Checks {
    let mut c = Checks { items: Vec::new() };
    let backups = catalog::read_backups(server).unwrap_or_default();
    let entries = xlogdb::read(server).unwrap_or_default();
    // 1. WAL archive: only shown when failing.
    let waiting = backups
        .values()
        .any(|b| b.status == Some(BackupStatus::WaitingForWals));
    if entries.is_empty() && !waiting {
        c.add(
            "WAL archive",
            false,
            Some("please make sure WAL shipping is setup".into()),
        );
    }
    // 2–3. Drop zones.
    for (option, archiver, label, queue_label) in [
        (
            "incoming_wals_directory",
            "archiver",
            "empty incoming directory",
            "incoming WALs directory",
        ),
        (
            "streaming_wals_directory",
            "streaming_archiver",
            "empty streaming directory",
            "streaming WALs directory",
        ),
    ] {
        let count = server
            .path(option)
            .and_then(|d| std::fs::read_dir(d).ok())
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .filter(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        !name.ends_with(".partial") && !fsutil::is_temp_name(&name)
                    })
                    .count()
            })
            .unwrap_or(0);
        if !server.flag(archiver) && count > 0 {
            c.add(
                label,
                false,
                Some(format!(
                    "'{}' must be empty when {archiver}=off",
                    server
                        .path(option)
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                )),
            );
        }
        if let Some(max) = server.int("max_incoming_wals_queue") {
            if server.flag(archiver) && count as i64 > max {
                c.add(
                    queue_label,
                    false,
                    Some(format!(
                        "there are too many WALs in queue: {count}, max {max}"
                    )),
                );
            }
        }
    }
    // 4–10. PostgreSQL.
    match remote {
        None => c.add(
            "check timeout",
            false,
            Some("barman check command timed out".into()),
        ),
        Some(r) if !r.connected => c.add("PostgreSQL", false, None),
        Some(r) => {
            match r.version_num {
                Some(v) if v < 130000 => c.add(
                    "PostgreSQL",
                    false,
                    Some(format!(
                        "unsupported version: PostgreSQL server is too old ({} < 13.0)",
                        r.version_text.clone().unwrap_or_default()
                    )),
                ),
                _ => c.add("PostgreSQL", true, None),
            }
            if let Some(ok) = r.backup_privileges {
                c.add(
                    "superuser or standard user with backup privileges",
                    ok,
                    (!ok).then(|| "privileges for PostgreSQL backup functions are required (see documentation)".into()),
                );
            }
            if let Some(streaming) = &r.streaming {
                c.add(
                    "PostgreSQL streaming",
                    streaming.is_ok(),
                    streaming.as_ref().err().cloned(),
                );
            }
            if let Some(level) = &r.wal_level {
                let ok = level != "minimal";
                c.add(
                    "wal_level",
                    ok,
                    (!ok).then(|| "please set it to a higher level than 'minimal'".into()),
                );
            }
            if let (Some(slot_name), Some(slot)) = (server.text("slot_name"), &r.slot) {
                let streaming = server.flag("streaming_archiver");
                match (streaming, slot) {
                    (true, None) => c.add(
                        "replication slot",
                        false,
                        Some(format!(
                            "replication slot '{slot_name}' doesn't exist. Please execute 'barman receive-wal --create-slot {}'",
                            server.name
                        )),
                    ),
                    (true, Some((_, false))) => c.add(
                        "replication slot",
                        false,
                        Some(format!("slot '{slot_name}' not initialised: is 'receive-wal' running?")),
                    ),
                    (true, Some((false, true))) => c.add(
                        "replication slot",
                        false,
                        Some(format!("slot '{slot_name}' not active: is 'receive-wal' running?")),
                    ),
                    (true, Some(_)) => c.add("replication slot", true, None),
                    (false, Some((active, true))) => c.add(
                        "replication slot",
                        true,
                        Some(format!(
                            "WARNING: slot '{slot_name}' is {} but not required by the current config",
                            if *active { "active" } else { "initialised" }
                        )),
                    ),
                    (false, _) => {}
                }
            }
        }
    }
    // 11. Directories.
    let mut dir_error = None;
    for path in server.directories_to_create() {
        if let Err(e) = fsutil::create_dir_all(path) {
            dir_error.get_or_insert(format!("{}: {e:#}", path.display()));
        }
    }
    let ok = dir_error.is_none();
    c.add("directories", ok, dir_error);
    // 12. Retention policy settings (a malformed one does not load at all).
    c.add("retention policy settings", true, None);
    // 13–14. Backup age and size.
    let last = backups.values().rev().find(|b| {
        matches!(
            b.status,
            Some(BackupStatus::Done | BackupStatus::WaitingForWals)
        )
    });
    let now = chrono::Utc::now();
    match server.get("last_backup_maximum_age") {
        Some(Value::Interval(limit)) => {
            let age = last
                .and_then(|b| b.end_time)
                .map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0) as u64);
            let ok = age.is_some_and(|a| a <= limit.seconds());
            c.add(
                "backup maximum age",
                ok,
                Some(format!(
                    "interval provided: {}, latest backup age: {}",
                    limit.human(),
                    age.map_or("No available backups".to_string(), human_duration)
                )),
            );
        }
        _ => c.add(
            "backup maximum age",
            true,
            Some("no last_backup_maximum_age provided".into()),
        ),
    }
    let last_size = last
        .and_then(|b| b.deduplicated_size.or(b.size))
        .unwrap_or(0);
    match server.get("last_backup_minimum_size") {
        Some(Value::Size(min)) => {
            let ok = last_size >= *min;
            c.items.push(Item {
                name: "backup minimum size",
                ok,
                hint: Some(format!(
                    "last backup size {} {} {} minimum",
                    pretty_size(last_size as f64),
                    if ok { ">" } else { "<" },
                    pretty_size(*min as f64)
                )),
                perfdata: Some(last_size),
            });
        }
        _ => c.items.push(Item {
            name: "backup minimum size",
            ok: true,
            hint: Some(pretty_size(last_size as f64)),
            perfdata: Some(last_size),
        }),
    }
    // 16–17. WAL age and size.
    let wal_info = last.and_then(|b| match (&b.begin_wal, &b.end_wal) {
        (Some(begin), Some(end)) => Some(xlogdb::wal_info(begin, end, None, &entries)),
        _ => None,
    });
    let wal_size = wal_info.as_ref().map_or(0, |w| w.wal_until_next_size);
    match server.get("last_wal_maximum_age") {
        Some(Value::Interval(limit)) => match wal_info.as_ref().and_then(|w| w.wal_last.clone()) {
            None => c.add(
                "wal maximum age",
                false,
                Some("No WAL files archived for last backup".into()),
            ),
            Some((_, time)) => {
                let age = (now.timestamp() as f64 - time).max(0.0) as u64;
                let ok = age <= limit.seconds();
                c.add(
                    "wal maximum age",
                    ok,
                    Some(format!(
                        "interval provided: {}, latest wal age: {}",
                        limit.human(),
                        human_duration(age)
                    )),
                );
            }
        },
        _ => c.add(
            "wal maximum age",
            true,
            Some("no last_wal_maximum_age provided".into()),
        ),
    }
    c.items.push(Item {
        name: "wal size",
        ok: true,
        hint: Some(pretty_size(wal_size as f64)),
        perfdata: Some(wal_size),
    });
    // 18–20. Compression, failed backups, minimum redundancy.
    let compression_ok = server
        .text("compression")
        .map_or(true, |c| Compression::from_name(c).is_ok());
    c.add("compression settings", compression_ok, None);
    let failed = backups
        .values()
        .filter(|b| b.status == Some(BackupStatus::Failed))
        .count();
    c.add(
        "failed backups",
        failed == 0,
        Some(format!("there are {failed} failed backups")),
    );
    let full_done = backups
        .values()
        .filter(|b| b.status == Some(BackupStatus::Done) && b.parent_backup_id.is_none())
        .count();
    let minimum = server.int("minimum_redundancy").unwrap_or(0).max(0) as usize;
    c.add(
        "minimum redundancy requirements",
        full_done >= minimum,
        Some(format!(
            "have {full_done} non-incremental backups, expected at least {minimum}"
        )),
    );
    // 21. The backup "executor": native BASE_BACKUP instead of pg_basebackup.
    let version = remote.and_then(|r| r.version_text.clone());
    if server.text("backup_method") == Some("postgres") {
        c.add(
            "pg_basebackup",
            true,
            Some("native BASE_BACKUP, no client binary needed".into()),
        );
        c.add(
            "pg_basebackup compatible",
            true,
            version
                .as_ref()
                .map(|v| format!("PostgreSQL version: {v}, native protocol supports 13 to 18")),
        );
        c.add("pg_basebackup supports tablespaces mapping", true, None);
    }
    // 22. Configuration problems.
    if !server.msg_list.is_empty() {
        c.add("configuration", false, Some(server.msg_list.join("; ")));
    }
    // 23. System identifier coherence.
    let stored = identity::read(server).ok().flatten();
    let sql_id = remote.and_then(|r| r.sql_systemid.clone());
    let streaming_id =
        remote.and_then(|r| r.streaming.as_ref().and_then(|s| s.as_ref().ok().cloned()));
    let coherence = match (&stored, &sql_id, &streaming_id) {
        (_, Some(a), Some(b)) if a != b => (false, Some("is the streaming DSN targeting the same server of the PostgreSQL connection string?".to_string())),
        (Some(id), Some(a), _) | (Some(id), None, Some(a)) if &id.systemid != a => (
            false,
            Some(format!("the system Id of the connected PostgreSQL server changed, stored in \"{}\"", server.path("backup_directory").unwrap_or(std::path::Path::new("")).join("identity.json").display())),
        ),
        (None, _, _) => (true, Some("no system Id stored on disk".into())),
        _ => (true, None),
    };
    c.add("systemid coherence", coherence.0, coherence.1);
    // 24. Archivers.
    if server.flag("streaming_archiver") {
        c.add(
            "pg_receivexlog",
            true,
            Some("native START_REPLICATION, no client binary needed".into()),
        );
        c.add(
            "pg_receivexlog compatible",
            true,
            version
                .as_ref()
                .map(|v| format!("PostgreSQL version: {v}, native protocol supports 13 to 18")),
        );
        let running = fsutil::lock_holder(&fsutil::server_lock_path(
            lock_dir,
            &server.name,
            "receive-wal",
        ))
        .is_some();
        c.add(
            "receive-wal running",
            running,
            (!running).then(|| "See the Barman log file for more details".into()),
        );
    }
    if server.flag("archiver") {
        if let Some(r) = remote.filter(|r| r.connected) {
            if let Some(mode) = &r.archive_mode {
                let ok = mode == "on" || mode == "always";
                c.add(
                    "archive_mode",
                    ok,
                    (!ok).then(|| "please set it to 'on' or 'always'".into()),
                );
            }
            let command_ok = r
                .archive_command
                .as_deref()
                .is_some_and(|a| !a.is_empty() && a != "(disabled)");
            c.add(
                "archive_command",
                command_ok,
                (!command_ok).then(|| "please set it accordingly to documentation".into()),
            );
            if command_ok {
                if let Some(ok) = r.archiving_ok {
                    c.add("continuous archiving", ok, None);
                }
            }
        }
    }
    // 25. Archiver errors.
    let errors: Vec<String> = server
        .path("errors_directory")
        .and_then(|d| std::fs::read_dir(d).ok())
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let count = |suffix: &str| errors.iter().filter(|e| e.ends_with(suffix)).count();
    let (dup, unknown, not_relevant) = (count(".duplicate"), count(".unknown"), count(".error"));
    let other = errors.len() - dup - unknown - not_relevant;
    let mut parts = Vec::new();
    for (n, label) in [
        (dup, "duplicates"),
        (unknown, "unknown"),
        (not_relevant, "not relevant"),
        (other, "unknown failure"),
    ] {
        if n > 0 {
            parts.push(format!("{label}: {n}"));
        }
    }
    c.add(
        "archiver errors",
        errors.is_empty(),
        (!parts.is_empty()).then(|| parts.join(", ")),
    );
    c
}

fn nagios_report(
    out: &mut crate::output::Output,
    results: &[(&ServerConfig, Checks)],
) -> Result<()> {
    let mut perf = Vec::new();
    let mut issues = Vec::new();
    let mut details = Vec::new();
    let mut ignored = Vec::new();
    for (server, checks) in results {
        for item in &checks.items {
            if let Some(p) = item.perfdata {
                let key = if item.name == "wal size" {
                    format!("{}_wals", server.name)
                } else {
                    server.name.clone()
                };
                perf.push(format!("{key}={p}B"));
            }
        }
        let failed = checks.failed();
        if failed.is_empty() {
            continue;
        }
        if !server.active() {
            ignored.push(server.name.clone());
            continue;
        }
        issues.push(format!("{} FAILED: {}", server.name, failed.join(", ")));
        for item in checks.items.iter().filter(|i| !i.ok) {
            details.push(match &item.hint {
                Some(h) => format!("{}.{}: FAILED ({h})", server.name, item.name),
                None => format!("{}.{}: FAILED", server.name, item.name),
            });
        }
    }
    let total = results.len();
    let names: Vec<String> = results.iter().map(|(s, _)| s.name.clone()).collect();
    let mut tail = String::new();
    for name in &ignored {
        tail.push_str(&format!(" * IGNORING: {name}"));
    }
    let perf = perf.join(" ");
    let line = if issues.is_empty() {
        let target = if total == 1 {
            names[0].clone()
        } else {
            format!("{total} servers * {}", names.join(" * "))
        };
        format!("BARMAN OK - Ready to serve the Espresso backup for {target}{tail}|{perf}")
    } else {
        let head = if total == 1 {
            format!("server {} has issues", names[0])
        } else {
            format!("{} server out of {total} have issues", issues.len())
        };
        out.mark_failed_with_code(2);
        format!(
            "BARMAN CRITICAL - {head} * {}{tail}|{perf}",
            issues.join(" * ")
        )
    };
    // Nagios reads plain lines on stdout, whatever the output format.
    println!("{line}");
    for d in details {
        println!("{d}");
    }
    Ok(())
}
