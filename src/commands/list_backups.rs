//! `barman list-backups SERVER...|all [--minimal]` (alias `list-backup`): one line
//! per backup, newest first, as Barman prints it (BARMAN.md §6.4):
//!
//! ```text
//! pg 20261122T020253 - F - Sun Nov 22 02:02:55 2026 - Size: 98.3 MiB - WAL Size: 203.4 KiB - OBSOLETE
//! pg 20261122T020310 - F - STARTED
//! ```
//!
//! `Size` is the backup plus the WAL it needs (begin to end), `WAL Size` the WAL
//! archived after it up to the next backup; the last column is the retention status
//! when it is not VALID.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde_json::{json, Value as Json};

use super::{select_servers, Context};
use crate::catalog::{self, xlogdb, BackupInfo, BackupStatus};
use crate::config::values::{pretty_size, Value};
use crate::config::ServerConfig;
use crate::retention::{self, BackupFacts, RetentionStatus};

/// Run `list-backups`.
pub fn run(ctx: &mut Context, names: &[String], minimal: bool) -> Result<()> {
    for server in select_servers(&ctx.config, &mut ctx.out, names)? {
        let rows = rows(server)?;
        let json: Vec<Json> = rows
            .iter()
            .map(|r| if minimal { json!(r.id) } else { r.json.clone() })
            .collect();
        let lines: Vec<String> = rows
            .into_iter()
            .map(|r| if minimal { r.id } else { r.line })
            .collect();
        ctx.out.result(&server.name, Json::Array(json), || lines);
    }
    Ok(())
}

struct Row {
    id: String,
    line: String,
    json: Json,
}

/// Barman's backup type: full, incremental, rsync or snapshot.
pub fn backup_type(info: &BackupInfo) -> &'static str {
    let mode = info.mode.as_deref().unwrap_or("postgres");
    if mode.starts_with("snapshot") {
        "snapshot"
    } else if mode.starts_with("rsync") {
        "rsync"
    } else if info.parent_backup_id.is_some() {
        "incremental"
    } else {
        "full"
    }
}

/// The retention status of every backup of a server, when it has a policy.
pub fn retention_report(
    server: &ServerConfig,
    backups: &BTreeMap<String, BackupInfo>,
) -> Result<Option<BTreeMap<String, RetentionStatus>>> {
    let Some(Value::Retention(policy)) = server.get("retention_policy") else {
        return Ok(None);
    };
    let facts = facts(server, backups)?;
    let minimum = server.int("minimum_redundancy").unwrap_or(0).max(0) as u32;
    Ok(Some(retention::report(
        policy,
        minimum,
        &facts,
        chrono::Utc::now(),
    )))
}

fn facts(
    server: &ServerConfig,
    backups: &BTreeMap<String, BackupInfo>,
) -> Result<Vec<BackupFacts>> {
    backups
        .values()
        .map(|b| {
            Ok(BackupFacts {
                id: b.backup_id.clone(),
                status: b.status.unwrap_or(BackupStatus::Empty),
                end_time: b.end_time,
                keep: catalog::read_keep(server, &b.backup_id)?,
                parent: b.parent_backup_id.clone(),
            })
        })
        .collect()
}

fn rows(server: &ServerConfig) -> Result<Vec<Row>> {
    let backups = catalog::read_backups(server)
        .with_context(|| format!("read the backup catalogue of server '{}'", server.name))?;
    let report = retention_report(server, &backups)?;
    let entries = xlogdb::read(server)
        .with_context(|| format!("read the WAL catalogue of server '{}'", server.name))?;
    let copy_done = |b: &BackupInfo| {
        matches!(
            b.status,
            Some(BackupStatus::Done | BackupStatus::WaitingForWals)
        )
    };
    let mut rows = Vec::new();
    let ordered = xlogdb::in_name_order(&entries);
    for (id, info) in backups.iter().rev() {
        let kind = backup_type(info);
        let status = info.status.unwrap_or(BackupStatus::Empty);
        let mut line = format!("{} {id}", server.name);
        let mut json = json!({ "backup_id": id, "backup_type": kind });
        if let Some(name) = &info.backup_name {
            line.push_str(&format!(" '{name}'"));
            json["backup_name"] = json!(name);
        }
        line.push_str(&format!(" - {} - ", kind[..1].to_ascii_uppercase()));
        match (copy_done(info), info.end_time) {
            (true, Some(end_time)) => {
                let next_end = backups
                    .range::<String, _>((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded))
                    .map(|(_, b)| b)
                    .find(|b| copy_done(b))
                    .and_then(|b| b.end_wal.as_deref());
                let wal = match (&info.begin_wal, &info.end_wal) {
                    (Some(begin), Some(end)) => {
                        let scope = if ordered {
                            xlogdb::from_name(&entries, begin)
                        } else {
                            &entries
                        };
                        xlogdb::wal_info(begin, end, next_end, scope)
                    }
                    _ => xlogdb::WalInfo::default(),
                };
                let size = info.size.unwrap_or(0) + wal.wal_size;
                let wal_size = wal.wal_until_next_size;
                let retention = report
                    .as_ref()
                    .and_then(|r| r.get(id).copied())
                    .filter(|s| *s != RetentionStatus::Valid);
                let ctime = end_time.format("%a %b %e %H:%M:%S %Y").to_string();
                line.push_str(&format!(
                    "{ctime} - Size: {} - WAL Size: {}",
                    pretty_size(size as f64),
                    pretty_size(wal_size as f64)
                ));
                if status == BackupStatus::WaitingForWals {
                    line.push_str(" - WAITING_FOR_WALS");
                }
                if let Some(r) = retention.filter(|r| *r != RetentionStatus::None) {
                    line.push_str(&format!(" - {r}"));
                }
                json["end_time"] = json!(ctime);
                json["end_time_timestamp"] = json!(end_time.timestamp().to_string());
                json["size"] = json!(pretty_size(size as f64));
                json["size_bytes"] = json!(size);
                json["wal_size"] = json!(pretty_size(wal_size as f64));
                json["wal_size_bytes"] = json!(wal_size);
                json["status"] = json!(status.as_str());
                json["retention_status"] =
                    json!(retention.unwrap_or(RetentionStatus::None).as_str());
            }
            _ => {
                line.push_str(status.as_str());
                json["status"] = json!(status.as_str());
            }
        }
        rows.push(Row {
            id: id.clone(),
            line,
            json,
        });
    }
    Ok(rows)
}
