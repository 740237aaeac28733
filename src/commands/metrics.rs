//! `metrics`: the figures monitoring needs, in Prometheus' text exposition format
//! (or `-f json`), for node_exporter's textfile collector or any scraper: every
//! `check` outcome, backups by status, the last backup's age and size, the WAL
//! archive's size and lag, the receiver's state and the WAL still waiting to be
//! archived. Not a Barman command; Barman users run a separate exporter for this.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value as Json};

use super::{check, select_servers, Context};
use crate::catalog::{self, xlogdb, BackupStatus};
use crate::config::ServerConfig;
use crate::fsutil;
use crate::output::Format;
use crate::postgres::runtime;

/// One metric family: its name, type, help line and samples (labels, value).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// The families in the order they are printed.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "barman_server_active",
        "gauge",
        "1 when the server is active in barman.conf.",
    ),
    (
        "barman_check_ok",
        "gauge",
        "Outcome of each `barman check` (1 OK, 0 FAILED).",
    ),
    (
        "barman_checks_failed",
        "gauge",
        "How many `barman check` checks fail.",
    ),
    (
        "barman_backups",
        "gauge",
        "Backups in the catalogue, by status.",
    ),
    (
        "barman_last_backup_end_timestamp_seconds",
        "gauge",
        "When the last DONE backup ended (Unix time).",
    ),
    (
        "barman_last_backup_age_seconds",
        "gauge",
        "Seconds since the last DONE backup ended.",
    ),
    (
        "barman_last_backup_size_bytes",
        "gauge",
        "Size of the last DONE backup.",
    ),
    (
        "barman_wal_archived_files",
        "gauge",
        "WAL files listed in the archive catalogue.",
    ),
    (
        "barman_wal_archive_size_bytes",
        "gauge",
        "Bytes of WAL in the archive (as stored).",
    ),
    (
        "barman_last_archived_wal_timestamp_seconds",
        "gauge",
        "When the newest archived WAL file was archived (Unix time).",
    ),
    (
        "barman_wal_archive_lag_seconds",
        "gauge",
        "Seconds since the newest WAL file was archived.",
    ),
    (
        "barman_wal_files_waiting",
        "gauge",
        "Complete WAL segments in incoming/ and streaming/ not yet archived.",
    ),
    (
        "barman_receive_wal_running",
        "gauge",
        "1 when a receive-wal process holds the server's lock.",
    ),
];

pub fn run(ctx: &mut Context, names: &[String]) -> Result<()> {
    let rt = runtime()?;
    let lock_dir = ctx.config.global.lock_directory().to_path_buf();
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let mut families: Vec<Family> = FAMILIES
        .iter()
        .map(|&(name, kind, help)| Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        })
        .collect();
    for server in select_servers(&ctx.config, &mut ctx.out, names)? {
        let figures = server_figures(&rt, server, &lock_dir, now);
        let mut json = Map::new();
        for (family, labels, value) in figures {
            let slot = families
                .iter_mut()
                .find(|f| f.name == family)
                .expect("every family is declared in FAMILIES");
            // JSON: plain figures by name; labelled ones as {label value: figure}.
            let key = family.trim_start_matches("barman_").to_string();
            match labels.last() {
                Some((_, label)) => {
                    let entry = json.entry(key).or_insert_with(|| json!({}));
                    entry[label.as_str()] = json!(value);
                }
                None => {
                    json.insert(key, json!(value));
                }
            }
            let mut all = vec![("server", server.name.clone())];
            all.extend(labels);
            slot.samples.push((all, value));
        }
        ctx.out.result(&server.name, Json::Object(json), Vec::new);
    }
    if ctx.out.format() == Format::Console {
        let lines = exposition(&families);
        ctx.out.result("", Json::Null, || lines);
    }
    Ok(())
}

type Figure = (&'static str, Vec<(&'static str, String)>, f64);

/// Every figure of one server.
fn server_figures(
    rt: &tokio::runtime::Runtime,
    server: &ServerConfig,
    lock_dir: &Path,
    now: f64,
) -> Vec<Figure> {
    let mut out: Vec<Figure> = Vec::new();
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    out.push(("barman_server_active", vec![], flag(server.active())));

    let outcomes = check::outcomes(rt, server, lock_dir);
    let failed = outcomes.iter().filter(|(_, ok)| !ok).count();
    for (name, ok) in outcomes {
        out.push((
            "barman_check_ok",
            vec![("check", name.to_string())],
            flag(ok),
        ));
    }
    out.push(("barman_checks_failed", vec![], failed as f64));

    let backups = catalog::read_backups(server).unwrap_or_default();
    let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
    for status in [BackupStatus::Done, BackupStatus::Failed] {
        by_status.insert(status.as_str(), 0);
    }
    for backup in backups.values() {
        if let Some(status) = backup.status {
            *by_status.entry(status.as_str()).or_default() += 1;
        }
    }
    for (status, count) in by_status {
        out.push((
            "barman_backups",
            vec![("status", status.to_string())],
            count as f64,
        ));
    }
    let last_done = backups
        .values()
        .rev()
        .find(|b| b.status == Some(BackupStatus::Done));
    if let Some(last) = last_done {
        if let Some(end) = last.end_time {
            let end = end.timestamp_millis() as f64 / 1000.0;
            out.push(("barman_last_backup_end_timestamp_seconds", vec![], end));
            out.push((
                "barman_last_backup_age_seconds",
                vec![],
                (now - end).max(0.0),
            ));
        }
        if let Some(size) = last.deduplicated_size.or(last.size) {
            out.push(("barman_last_backup_size_bytes", vec![], size as f64));
        }
    }

    let entries = xlogdb::read(server).unwrap_or_default();
    let segments = entries.iter().filter(|e| !e.is_history());
    out.push(("barman_wal_archived_files", vec![], segments.count() as f64));
    let size: u64 = entries.iter().map(|e| e.size).sum();
    out.push(("barman_wal_archive_size_bytes", vec![], size as f64));
    if let Some(newest) = entries
        .iter()
        .map(|e| e.time)
        .fold(None, |acc: Option<f64>, t| {
            Some(acc.map_or(t, |a| a.max(t)))
        })
    {
        out.push(("barman_last_archived_wal_timestamp_seconds", vec![], newest));
        out.push((
            "barman_wal_archive_lag_seconds",
            vec![],
            (now - newest).max(0.0),
        ));
    }

    let waiting: usize = ["incoming_wals_directory", "streaming_wals_directory"]
        .iter()
        .filter_map(|option| server.path(option))
        .map(complete_wal_files)
        .sum();
    out.push(("barman_wal_files_waiting", vec![], waiting as f64));
    let receiver = fsutil::lock_holder(&fsutil::server_lock_path(
        lock_dir,
        &server.name,
        "receive-wal",
    ))
    .is_some();
    out.push(("barman_receive_wal_running", vec![], flag(receiver)));
    out
}

/// Complete WAL segments (compressed or not) in a drop directory; the receiver's
/// `.partial` and the `.tmp` files of put-wal are still being written and are not counted.
fn complete_wal_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.len() >= 24
                    && name[..24].bytes().all(|b| b.is_ascii_hexdigit())
                    && !name.ends_with(".partial")
                    && !crate::fsutil::is_temp_name(&name)
            })
            .count()
    })
}

/// The text exposition format: `# HELP`, `# TYPE`, then one line per sample.
fn exposition(families: &[Family]) -> Vec<String> {
    let mut lines = Vec::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        lines.push(format!("# HELP {} {}", family.name, family.help));
        lines.push(format!("# TYPE {} {}", family.name, family.kind));
        for (labels, value) in &family.samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            lines.push(format!("{}{{{}}} {}", family.name, labels.join(","), value));
        }
    }
    lines
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_groups_samples_under_one_help_and_type() {
        let families = vec![
            Family {
                name: "barman_backups",
                kind: "gauge",
                help: "Backups.",
                samples: vec![
                    (vec![("server", "a".into()), ("status", "DONE".into())], 2.0),
                    (
                        vec![("server", "b\"x\\".into()), ("status", "DONE".into())],
                        0.0,
                    ),
                ],
            },
            Family {
                name: "barman_empty",
                kind: "gauge",
                help: "Nothing.",
                samples: vec![],
            },
        ];
        assert_eq!(
            exposition(&families),
            vec![
                "# HELP barman_backups Backups.",
                "# TYPE barman_backups gauge",
                "barman_backups{server=\"a\",status=\"DONE\"} 2",
                "barman_backups{server=\"b\\\"x\\\\\",status=\"DONE\"} 0",
            ]
        );
    }

    #[test]
    fn only_complete_wal_files_are_waiting() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "000000010000000000000001",
            "000000010000000000000002.partial",
            "00000002.history",
            "000000010000000000000003.gz",
            "not-a-wal",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(complete_wal_files(dir.path()), 2);
        assert_eq!(complete_wal_files(&dir.path().join("missing")), 0);
    }
}
