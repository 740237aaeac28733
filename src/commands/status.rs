//! `barman status SERVER...|all`: a summary of each server (BARMAN.md §6.3): its
//! configuration state, what PostgreSQL reports (version, state, size, data directory,
//! current WAL segment, archive_command and the archiver's statistics), the retention
//! policy and the backups. Console `\tDescription: message` lines, JSON
//! `{"SERVER": {"key": {"description", "message"}}}`, as Barman prints them.

use anyhow::Result;
use serde_json::{json, Map, Value as Json};

use super::{select_servers, Context};
use crate::catalog::{self, BackupStatus};
use crate::config::values::pretty_size;
use crate::config::ServerConfig;
use crate::postgres::{parse_conninfo, runtime, SqlClient};

/// What PostgreSQL reports for `status`.
#[derive(Default)]
struct PgStatus {
    version: Option<String>,
    in_recovery: Option<bool>,
    current_size: Option<u64>,
    data_directory: Option<String>,
    current_wal: Option<String>,
    archive_mode: Option<String>,
    archive_command: Option<String>,
    last_archived: Option<(String, Option<String>)>,
    failed: Option<(u64, Option<String>, Option<String>)>,
    archived_per_hour: Option<f64>,
}

async fn pg_status(server: &ServerConfig) -> PgStatus {
    let mut st = PgStatus::default();
    let Some(conninfo) = server.text("conninfo") else {
        return st;
    };
    let Ok(info) = parse_conninfo(&server.name, "conninfo", conninfo) else {
        return st;
    };
    let Ok(sql) = SqlClient::connect(&server.name, &info, "barman_status").await else {
        return st;
    };
    let text = |q: &'static str| {
        let sql = &sql;
        async move { sql.query_text(q).await.ok().flatten() }
    };
    // Barman prints `int_version_to_string_version(server_version)`: "15.18", not the
    // packager's full `server_version` ("15.18 (Debian 15.18-0+deb12u1)").
    st.version = text("show server_version_num")
        .await
        .and_then(|v| v.parse::<u32>().ok())
        .map(version_text);
    st.in_recovery = text("select pg_is_in_recovery()").await.map(|v| v == "t");
    // Barman's `current_size`: every tablespace, pg_global included.
    st.current_size = text("select sum(pg_tablespace_size(oid))::bigint from pg_tablespace")
        .await
        .and_then(|v| v.parse().ok());
    st.data_directory = text("show data_directory").await;
    st.current_wal = if st.in_recovery == Some(true) {
        None
    } else {
        text("select pg_walfile_name(pg_current_wal_lsn())").await
    };
    st.archive_mode = text("show archive_mode").await;
    st.archive_command = text("show archive_command").await;
    if let Some(row) = text(
        "select coalesce(last_archived_wal, '') || '|' || coalesce(floor(extract(epoch from last_archived_time at time zone current_setting('TimeZone')))::bigint::text, '') \
         || '|' || failed_count || '|' || coalesce(last_failed_wal, '') || '|' || coalesce(floor(extract(epoch from last_failed_time at time zone current_setting('TimeZone')))::bigint::text, '') \
         || '|' || archived_count || '|' || extract(epoch from now() - stats_reset)::bigint from pg_stat_archiver",
    )
    .await
    {
        let f: Vec<&str> = row.split('|').collect();
        if f.len() == 7 {
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let at = |s: &str| s.parse().ok().and_then(python_ctime);
            if let Some(wal) = opt(f[0]) {
                st.last_archived = Some((wal, at(f[1])));
            }
            st.failed = Some((f[2].parse().unwrap_or(0), opt(f[3]), at(f[4])));
            let archived: f64 = f[5].parse().unwrap_or(0.0);
            let seconds: f64 = f[6].parse().unwrap_or(0.0);
            if archived > 0.0 && seconds > 0.0 {
                st.archived_per_hour = Some(3600.0 * archived / seconds);
            }
        }
    }
    st
}

/// A time of `pg_stat_archiver` as Barman prints it, Python's `ctime()` of the value
/// psycopg2 returns (the wall clock of the session's TimeZone, read here as seconds of that
/// wall clock since the epoch): `Mon Dec  7 14:15:29 2026`, the day padded with a space.
fn python_ctime(epoch: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(epoch, 0).map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
}

/// Run `status`.
pub fn run(ctx: &mut Context, names: &[String]) -> Result<()> {
    let rt = runtime()?;
    for server in select_servers(&ctx.config, &mut ctx.out, names)? {
        let timeout = server.int("check_timeout").unwrap_or(30).max(1) as u64;
        let pg = rt
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(timeout), pg_status(server))
                    .await
            })
            .unwrap_or_default();
        let rows = rows(server, &pg)?;
        let mut json = Map::new();
        let mut lines = vec![format!("Server {}:", server.name)];
        for (key, description, message) in rows {
            lines.push(format!("\t{description}: {}", display(&message)));
            // Barman stores `str(message)` in JSON too: "True", "2", "None".
            json.insert(
                key.into(),
                json!({ "description": description, "message": display(&message) }),
            );
        }
        ctx.out.result(&server.name, Json::Object(json), || lines);
    }
    Ok(())
}

/// A `server_version_num` as Barman's `int_version_to_string_version` writes it:
/// `150018` is "15.18", `90624` is "9.6.24".
fn version_text(num: u32) -> String {
    let (major, minor, patch) = (num / 10000, num / 100 % 100, num % 100);
    if major < 10 {
        format!("{major}.{minor}.{patch}")
    } else {
        format!("{major}.{patch}")
    }
}

/// A JSON value as Python's `str()` prints it.
fn display(value: &Json) -> String {
    match value {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rows(server: &ServerConfig, pg: &PgStatus) -> Result<Vec<(&'static str, &'static str, Json)>> {
    let mut rows: Vec<(&'static str, &'static str, Json)> = Vec::new();
    if !server.description().is_empty() {
        rows.push(("description", "Description", json!(server.description())));
    }
    rows.push(("active", "Active", json!(server.active())));
    rows.push(("disabled", "Disabled", json!(server.disabled())));
    rows.push((
        "active_model",
        "Active configuration model",
        json!(server.active_model),
    ));
    if !server.passive_node() {
        rows.push((
            "pg_version",
            "PostgreSQL version",
            json!(pg
                .version
                .clone()
                .unwrap_or_else(|| "FAILED trying to get PostgreSQL version".into())),
        ));
        rows.push((
            "is_in_recovery",
            "Cluster state",
            json!(if pg.in_recovery == Some(true) {
                "in archive recovery"
            } else {
                "in production"
            }),
        ));
        if let Some(size) = pg.current_size {
            rows.push((
                "current_size",
                "Current data size",
                json!(pretty_size(size as f64)),
            ));
        }
        if let Some(dir) = &pg.data_directory {
            rows.push(("data_directory", "PostgreSQL Data directory", json!(dir)));
        }
        if let Some(wal) = &pg.current_wal {
            rows.push(("current_xlog", "Current WAL segment", json!(wal)));
        }
        if server.flag("archiver") && pg.archive_mode.is_some() {
            rows.push((
                "archive_command",
                "PostgreSQL 'archive_command' setting",
                json!(pg
                    .archive_command
                    .clone()
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(
                        || "FAILED (please set it accordingly to documentation)".into()
                    )),
            ));
            let last = match &pg.last_archived {
                Some((wal, Some(at))) => format!("{wal}, at {at}"),
                Some((wal, None)) => wal.clone(),
                None => "No WAL segment shipped yet".into(),
            };
            rows.push(("last_archived_wal", "Last archived WAL", json!(last)));
            if let Some((count, wal, at)) = &pg.failed {
                let mut text = count.to_string();
                if *count > 0 {
                    text.push_str(&format!(
                        " ({} at {})",
                        wal.clone().unwrap_or_default(),
                        at.clone().unwrap_or_default()
                    ));
                }
                rows.push(("failed_count", "Failures of WAL archiver", json!(text)));
            }
            if let Some(rate) = pg.archived_per_hour {
                rows.push((
                    "server_archived_wals_per_hour",
                    "Server WAL archiving rate",
                    json!(format!("{rate:.2}/hour")),
                ));
            }
        }
    }
    rows.push(("passive_node", "Passive node", json!(server.passive_node())));
    let retention = match server.get("retention_policy") {
        Some(policy) if server.text("retention_policy_mode") == Some("auto") => format!(
            "enforced (mode: auto, retention: {}, WAL retention: {})",
            policy.display(),
            server
                .text("wal_retention_policy")
                .unwrap_or("main")
                .to_uppercase()
        ),
        _ => "not enforced".into(),
    };
    rows.push(("retention_policies", "Retention policies", json!(retention)));
    let backups = catalog::read_backups(server)?;
    let done: Vec<_> = backups
        .values()
        .filter(|b| b.status == Some(BackupStatus::Done))
        .collect();
    let copy_done: Vec<_> = backups
        .values()
        .filter(|b| {
            matches!(
                b.status,
                Some(BackupStatus::Done | BackupStatus::WaitingForWals)
            )
        })
        .collect();
    rows.push((
        "backups_number",
        "No. of available backups",
        json!(done.len()),
    ));
    rows.push((
        "first_backup",
        "First available backup",
        json!(copy_done.first().map(|b| b.backup_id.clone())),
    ));
    rows.push((
        "last_backup",
        "Last available backup",
        json!(copy_done.last().map(|b| b.backup_id.clone())),
    ));
    let full = done.iter().filter(|b| b.parent_backup_id.is_none()).count();
    let minimum = server.int("minimum_redundancy").unwrap_or(0).max(0) as usize;
    rows.push((
        "minimum_redundancy",
        "Minimum redundancy requirements",
        json!(if full < minimum {
            format!("FAILED ({full}/{minimum})")
        } else {
            format!("satisfied ({full}/{minimum})")
        }),
    ));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archiver_times_are_printed_as_python_ctime() {
        assert_eq!(
            python_ctime(1_796_652_929).as_deref(),
            Some("Mon Dec  7 14:15:29 2026")
        );
        assert_eq!(
            python_ctime(1_795_356_155).as_deref(),
            Some("Sun Nov 22 14:02:35 2026")
        );
    }

    #[test]
    fn versions_are_printed_as_barman_does() {
        assert_eq!(version_text(150018), "15.18");
        assert_eq!(version_text(180000), "18.0");
        assert_eq!(version_text(90624), "9.6.24");
    }
}
