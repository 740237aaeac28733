//! `barman show-backup SERVER BACKUP_ID` (alias `show-backups`): everything known about
//! one backup, in Barman's layout (BARMAN.md §6.5): general facts, server facts,
//! tablespaces, base backup facts (sizes with and without WAL, timeline, WAL range,
//! times, throughput, offsets, LSNs), the WAL archived after it, and its place in the
//! catalogue (retention status, previous and next backups).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde_json::{json, Value as Json};

use super::list_backups::{backup_type, retention_report};
use super::{select_one_server, Context};
use crate::catalog::backup_info::python_datetime;
use crate::catalog::{xlogdb, BackupInfo, BackupStatus};
use crate::config::values::{human_duration, pretty_size};
use crate::config::ServerConfig;

/// Run `show-backup`.
pub fn run(ctx: &mut Context, server: &str, backup: &str) -> Result<()> {
    let Some(server) = select_one_server(&ctx.config, &mut ctx.out, server)? else {
        return Ok(());
    };
    let Some((backups, id)) = super::resolve_backup(&mut ctx.out, server, backup)? else {
        return Ok(());
    };
    let facts = Facts::gather(server, &backups, &id)?;
    let (lines, json) = (facts.console(), facts.json());
    ctx.out.result(&server.name, json, || lines);
    Ok(())
}

/// What show-backup prints, gathered from the catalogue.
struct Facts<'a> {
    info: &'a BackupInfo,
    kind: &'static str,
    copy_done: bool,
    wal: xlogdb::WalInfo,
    segment_size: u64,
    retention: Option<String>,
    previous: Option<String>,
    next: Option<String>,
    children_timelines: Vec<u32>,
    copy_time: f64,
    analysis_time: f64,
    workers: i64,
}

fn is_copy_done(b: &BackupInfo) -> bool {
    matches!(
        b.status,
        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
    )
}

impl<'a> Facts<'a> {
    fn gather(
        server: &'a ServerConfig,
        backups: &'a BTreeMap<String, BackupInfo>,
        id: &str,
    ) -> Result<Facts<'a>> {
        let info = &backups[id];
        let copy_done = is_copy_done(info);
        let previous = backups
            .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(id)))
            .rev()
            .map(|(_, b)| b)
            .find(|b| is_copy_done(b))
            .map(|b| b.backup_id.clone());
        let next_backup = backups
            .range::<str, _>((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded))
            .map(|(_, b)| b)
            .find(|b| is_copy_done(b));
        let mut wal = xlogdb::WalInfo::default();
        let mut children_timelines = Vec::new();
        if copy_done {
            let entries = xlogdb::read(server)
                .with_context(|| format!("read the WAL catalogue of server '{}'", server.name))?;
            if let (Some(begin), Some(end)) = (&info.begin_wal, &info.end_wal) {
                let next_end = next_backup.and_then(|b| b.end_wal.as_deref());
                wal = xlogdb::wal_info(begin, end, next_end, &entries);
            }
            children_timelines = child_timelines(server, info)?;
        }
        let retention = retention_report(server, backups)?
            .and_then(|r| r.get(id).map(|s| s.as_str().to_string()));
        let stat = |key: &str| {
            info.copy_stats
                .as_ref()
                .and_then(|s| s.get(key))
                .and_then(|v| v.as_f64())
        };
        Ok(Facts {
            info,
            kind: backup_type(info),
            copy_done,
            wal,
            segment_size: info.xlog_segment_size.unwrap_or(16 << 20),
            retention,
            previous,
            next: next_backup.map(|b| b.backup_id.clone()),
            children_timelines,
            copy_time: stat("copy_time").unwrap_or(0.0),
            analysis_time: stat("analysis_time").unwrap_or(0.0),
            workers: stat("number_of_workers").map_or(1, |n| n as i64),
        })
    }

    fn dedup_size(&self) -> u64 {
        self.info.deduplicated_size.unwrap_or(0)
    }

    fn throughput(&self) -> Option<f64> {
        (self.copy_time > 0.0 && self.dedup_size() > 0)
            .then(|| self.dedup_size() as f64 / self.copy_time)
    }

    fn console(&self) -> Vec<String> {
        let i = self.info;
        let mut out = Vec::new();
        let row = |k: &str, v: String| format!("  {k:<23}: {v}");
        let nested = |k: &str, v: String| format!("    {k:<21}: {v}");
        let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
        let num = |v: Option<u64>| v.map_or("None".into(), |n| n.to_string());
        let status = i.status.unwrap_or(BackupStatus::Empty);
        out.push(format!("Backup {}:", i.backup_id));
        if let Some(name) = &i.backup_name {
            out.push(row("Backup Name", name.clone()));
        }
        out.push(row("Server Name", text(&i.server_name)));
        if let Some(id) = &i.systemid {
            out.push(row("System Id", id.clone()));
        }
        out.push(row("Status", status.to_string()));
        if self.copy_done {
            out.push(row("PostgreSQL Version", num(i.version.map(u64::from))));
            out.push(row("PGDATA directory", text(&i.pgdata)));
            if let Some(size) = i.cluster_size.filter(|s| *s > 0) {
                out.push(row("Estimated Cluster Size", pretty_size(size as f64)));
            }
        }
        out.push(String::new());
        if i.data_checksums.is_some() || i.summarize_wal.is_some() {
            out.push("  Server information:".into());
            if let Some(c) = &i.data_checksums {
                out.push(nested("Checksums", c.clone()));
            }
            if let Some(s) = &i.summarize_wal {
                out.push(nested("WAL summarizer", s.clone()));
            }
            out.push(String::new());
        }
        if !self.copy_done {
            if let Some(error) = &i.error {
                out.push(row("Error", error.clone()));
            }
            return out;
        }
        if let Some(list) = i.tablespaces.as_ref().filter(|l| !l.is_empty()) {
            out.push("  Tablespaces:".into());
            for t in list {
                out.push(nested(&t.name, format!("{} (oid: {})", t.location, t.oid)));
            }
            out.push(String::new());
        }
        out.push("  Base backup information:".into());
        if let Some(mode) = &i.mode {
            out.push(nested("Backup Method", mode.clone()));
        }
        if let Some(e) = &i.encryption {
            out.push(nested("Encryption", e.clone()));
        }
        if i.mode.as_deref() == Some("postgres") {
            out.push(nested("Backup Type", self.kind.into()));
        }
        if self.dedup_size() > 0 {
            let mut size = pretty_size(self.dedup_size() as f64);
            if self.wal.wal_size > 0 {
                size.push_str(&format!(
                    " ({} with WALs)",
                    pretty_size((self.dedup_size() + self.wal.wal_size) as f64)
                ));
            }
            out.push(nested("Backup Size", size));
        }
        if let Some(c) = i.compression.as_ref().filter(|c| *c != "none") {
            out.push(nested("Backup Compression", c.clone()));
        }
        if self.wal.wal_size > 0 {
            out.push(nested("WAL Size", pretty_size(self.wal.wal_size as f64)));
        }
        out.push(nested("Timeline", num(i.timeline.map(u64::from))));
        out.push(nested("Begin WAL", text(&i.begin_wal)));
        out.push(nested("End WAL", text(&i.end_wal)));
        if self.wal.wal_num > 0 {
            out.push(nested("Number of WALs", self.wal.wal_num.to_string()));
        }
        let ratio = self.wal.wal_compression_ratio(self.segment_size);
        if ratio > 0.0 {
            out.push(nested("WAL compression ratio", percent(ratio)));
        }
        out.push(nested(
            "Begin time",
            i.begin_time.as_ref().map_or("None".into(), python_datetime),
        ));
        out.push(nested(
            "End time",
            i.end_time.as_ref().map_or("None".into(), python_datetime),
        ));
        if self.copy_time > 0.0 {
            let mut copy = human_duration(self.copy_time as u64);
            if self.analysis_time >= 1.0 {
                copy.push_str(&format!(
                    " + {} startup",
                    human_duration(self.analysis_time as u64)
                ));
            }
            out.push(nested("Copy time", copy));
            if let Some(t) = self.throughput() {
                let mut rate = format!("{}/s", pretty_size(t));
                if self.workers > 1 {
                    rate.push_str(&format!(" ({} jobs)", self.workers));
                }
                out.push(nested("Estimated throughput", rate));
            }
        }
        out.push(nested("Begin Offset", num(i.begin_offset)));
        out.push(nested("End Offset", num(i.end_offset)));
        out.push(nested("Begin LSN", text(&i.begin_xlog)));
        out.push(nested("End LSN", text(&i.end_xlog)));
        out.push(String::new());
        out.push("  WAL information:".into());
        out.push(nested(
            "Number of files",
            self.wal.wal_until_next_num.to_string(),
        ));
        out.push(nested(
            "Disk usage",
            pretty_size(self.wal.wal_until_next_size as f64),
        ));
        if self.wal.wals_per_second() > 0.0 {
            out.push(nested(
                "WAL rate",
                format!("{:.2}/hour", self.wal.wals_per_second() * 3600.0),
            ));
        }
        let ratio = self.wal.wal_until_next_compression_ratio(self.segment_size);
        if ratio > 0.0 {
            out.push(nested("Compression ratio", percent(ratio)));
        }
        out.push(nested(
            "Last available",
            self.wal
                .wal_last
                .as_ref()
                .map_or("None".into(), |(n, _)| n.clone()),
        ));
        if !self.children_timelines.is_empty() {
            let list: Vec<String> = self.children_timelines.iter().map(u32::to_string).collect();
            out.push(nested("Reachable timelines", list.join(", ")));
        }
        out.push(String::new());
        out.push("  Catalog information:".into());
        out.push(nested(
            "Retention Policy",
            self.retention
                .clone()
                .unwrap_or_else(|| "not enforced".into()),
        ));
        out.push(nested(
            "Previous Backup",
            self.previous
                .clone()
                .unwrap_or_else(|| "- (this is the oldest base backup)".into()),
        ));
        out.push(nested(
            "Next Backup",
            self.next
                .clone()
                .unwrap_or_else(|| "- (this is the latest base backup)".into()),
        ));
        if !self.children_timelines.is_empty() {
            out.push(String::new());
            out.push("WARNING: WAL information is inaccurate due to multiple timelines interacting with this backup".into());
        }
        if self.kind == "incremental" {
            out.push(nested("Parent Backup", text(&i.parent_backup_id)));
        }
        if i.mode.as_deref() == Some("postgres") {
            if let Some(children) = &i.children_backup_ids {
                out.push(nested("Children Backup(s)", children.join(",")));
            }
        }
        out
    }

    fn json(&self) -> Json {
        let i = self.info;
        let status = i.status.unwrap_or(BackupStatus::Empty);
        let mut out = json!({ "backup_id": i.backup_id, "status": status.as_str() });
        if let Some(name) = &i.backup_name {
            out["backup_name"] = json!(name);
        }
        if let Some(id) = &i.systemid {
            out["system_id"] = json!(id);
        }
        out["backup_type"] = json!(self.kind);
        out["server_information"] =
            json!({ "data_checksums": i.data_checksums, "summarize_wal": i.summarize_wal });
        if !self.copy_done {
            if let Some(error) = &i.error {
                out["error"] = json!(error);
            }
            return out;
        }
        if let Some(size) = i.cluster_size.filter(|s| *s > 0) {
            out["cluster_size"] = json!(pretty_size(size as f64));
            out["cluster_size_bytes"] = json!(size);
        }
        out["postgresql_version"] = json!(i.version);
        out["pgdata_directory"] = json!(i.pgdata);
        out["tablespaces"] = json!(i
            .tablespaces
            .iter()
            .flatten()
            .map(|t| json!({ "name": t.name, "location": t.location, "oid": t.oid }))
            .collect::<Vec<_>>());
        let dedup = self.dedup_size();
        let with_wals = dedup + self.wal.wal_size;
        let mut base = json!({
            "backup_method": i.mode,
            "encryption": i.encryption,
            "compression": i.compression,
            "backup_size": pretty_size(dedup as f64),
            "backup_size_bytes": dedup,
            "backup_size_with_wals": pretty_size(with_wals as f64),
            "backup_size_with_wals_bytes": with_wals,
            "wal_size": pretty_size(self.wal.wal_size as f64),
            "wal_size_bytes": self.wal.wal_size,
            "timeline": i.timeline,
            "begin_wal": i.begin_wal,
            "end_wal": i.end_wal,
            "wal_num": self.wal.wal_num,
            "begin_time_timestamp": i.begin_time.map(|t| t.timestamp().to_string()),
            "begin_time": i.begin_time.map(|t| python_datetime(&t)),
            "end_time_timestamp": i.end_time.map(|t| t.timestamp().to_string()),
            "end_time": i.end_time.map(|t| python_datetime(&t)),
            "begin_offset": i.begin_offset,
            "end_offset": i.end_offset,
            "begin_lsn": i.begin_xlog,
            "end_lsn": i.end_xlog,
        });
        let ratio = self.wal.wal_compression_ratio(self.segment_size);
        if ratio > 0.0 {
            base["wal_compression_ratio"] = json!(percent(ratio));
        }
        if self.copy_time > 0.0 {
            base["copy_time"] = json!(human_duration(self.copy_time as u64));
            base["copy_time_seconds"] = json!(self.copy_time);
            if self.analysis_time >= 1.0 {
                base["analysis_time"] = json!(human_duration(self.analysis_time as u64));
                base["analysis_time_seconds"] = json!(self.analysis_time);
            }
            let t = self.throughput().unwrap_or(0.0);
            base["throughput"] = json!(format!("{}/s", pretty_size(t)));
            base["throughput_bytes"] = json!(t as u64);
            base["number_of_workers"] = json!(self.workers);
        }
        out["base_backup_information"] = base;
        let mut catalog = json!({
            "retention_policy": self.retention.clone().unwrap_or_else(|| "not enforced".into()),
            "previous_backup": self.previous.clone().unwrap_or_else(|| "- (this is the oldest base backup)".into()),
            "next_backup": self.next.clone().unwrap_or_else(|| "- (this is the latest base backup)".into()),
        });
        if i.mode.as_deref() == Some("postgres") {
            catalog["children_backup_ids"] = json!(i.children_backup_ids);
        }
        out["catalog_information"] = catalog;
        let wps = self.wal.wals_per_second();
        let ratio = self.wal.wal_until_next_compression_ratio(self.segment_size);
        let mut wal = json!({
            "no_of_files": self.wal.wal_until_next_num,
            "disk_usage": pretty_size(self.wal.wal_until_next_size as f64),
            "disk_usage_bytes": self.wal.wal_until_next_size,
            "wal_rate": if wps > 0.0 { json!(format!("{:.2}/hour", wps * 3600.0)) } else { json!(0) },
            "wal_rate_per_second": if wps > 0.0 { json!(wps) } else { json!(0) },
            "compression_ratio": if ratio > 0.0 { json!(percent(ratio)) } else { json!(0) },
            "last_available": self.wal.wal_last.as_ref().map(|(n, _)| n.clone()),
            "timelines": self.children_timelines.iter().map(u32::to_string).collect::<Vec<_>>(),
        });
        if !self.children_timelines.is_empty() {
            wal["_WARNING"] = json!("WAL information is inaccurate due to multiple timelines interacting with this backup");
        }
        out["wal_information"] = wal;
        out
    }
}

/// `{:.2%}` in Python.
fn percent(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

/// Timelines that forked from the backup's timeline after its end, from the history
/// files in the WAL archive.
fn child_timelines(server: &ServerConfig, info: &BackupInfo) -> Result<Vec<u32>> {
    let (Some(timeline), Some(end)) = (info.timeline, info.end_xlog.as_deref().and_then(parse_lsn))
    else {
        return Ok(Vec::new());
    };
    let Some(wals) = server.path("wals_directory") else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(wals) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("list {}", wals.display())),
    };
    let mut children = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(tli) = name
            .strip_suffix(".history")
            .and_then(crate::wal::timeline_of)
        else {
            continue;
        };
        if tli <= timeline {
            continue;
        }
        let path = wals.join(&name);
        let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        // Compressed history files cannot be read here; they are skipped.
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let forks_after_end = text.lines().any(|line| {
            let mut fields = line.split_whitespace();
            match (
                fields.next().and_then(|p| p.parse::<u32>().ok()),
                fields.next().and_then(parse_lsn),
            ) {
                (Some(parent), Some(switch)) => parent == timeline && switch >= end,
                _ => false,
            }
        });
        if forks_after_end {
            children.push(tli);
        }
    }
    children.sort_unstable();
    Ok(children)
}

fn parse_lsn(text: &str) -> Option<u64> {
    text.parse::<barman_protocol::Lsn>()
        .ok()
        .map(|l| l.as_u64())
}
