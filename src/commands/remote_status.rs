//! The live status of a server's PostgreSQL as `show-servers` prints it, with Barman's
//! keys (BARMAN.md §6.2): what the SQL connection reports (settings, privileges, the
//! current WAL position, the replication slot, configuration files), what the
//! replication connection reports (`IDENTIFY_SYSTEM`), `pg_stat_archiver` when
//! `archiver = on`, and the lines Barman writes about its client binaries.
//!
//! Barman's `pg_receivexlog_*` and `pg_basebackup_*` keys describe `pg_receivewal` and
//! `pg_basebackup`; this barman uses neither, so they describe its own native
//! implementation: installed, this binary's path and version, and compatible when the
//! server's major version is one it speaks (13 to 18).
//!
//! Like Barman, nothing here fails: what cannot be read is `None`, and a connection
//! error is logged and, for the replication connection, shown as `connection_error`.

use std::collections::BTreeMap;
use std::time::Duration;

use barman_protocol::wal::names;
use barman_protocol::{PgVersion, ReplicationConnection, WalSegmentSize};
use serde_json::Value as Json;

use crate::config::ServerConfig;
use crate::postgres::{parse_conninfo, SqlClient};

/// A value as Python holds it: `str()` for the console, and what Barman's JSON writer
/// makes of it (`Repr` values, datetimes and records, become their `str()`).
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<String>),
    Repr(String),
}

impl Py {
    /// Python's `str()` of the value.
    pub fn text(&self) -> String {
        match self {
            Py::None => "None".into(),
            Py::Bool(true) => "True".into(),
            Py::Bool(false) => "False".into(),
            Py::Int(n) => n.to_string(),
            Py::Str(s) | Py::Repr(s) => s.clone(),
            Py::List(items) => {
                let quoted: Vec<String> = items.iter().map(|i| python_quote(i)).collect();
                format!("[{}]", quoted.join(", "))
            }
        }
    }

    /// The value in `-f json` output.
    pub fn json(&self) -> Json {
        match self {
            Py::None => Json::Null,
            Py::Bool(b) => Json::Bool(*b),
            Py::Int(n) => Json::from(*n),
            Py::Str(s) | Py::Repr(s) => Json::String(s.clone()),
            Py::List(items) => items.iter().cloned().map(Json::String).collect(),
        }
    }

    fn opt_str(value: Option<String>) -> Py {
        value.map_or(Py::None, Py::Str)
    }

    fn opt_bool(value: Option<bool>) -> Py {
        value.map_or(Py::None, Py::Bool)
    }

    fn opt_int(value: Option<i64>) -> Py {
        value.map_or(Py::None, Py::Int)
    }
}

/// Python's `repr()` of a string.
fn python_quote(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// The status keys and their values.
pub type RemoteStatus = BTreeMap<&'static str, Py>;

/// Everything the server reports, bounded by `check_timeout`: on a timeout, the keys
/// read so far are kept and the rest are `None`.
pub async fn fetch(server: &ServerConfig) -> RemoteStatus {
    let timeout = Duration::from_secs(server.int("check_timeout").unwrap_or(30).max(1) as u64);
    let mut status = RemoteStatus::new();
    let uses_streaming =
        server.text("backup_method") == Some("postgres") || server.flag("streaming_archiver");
    let sql_part = async {
        let mut part = RemoteStatus::new();
        if tokio::time::timeout(timeout, sql_status(server, &mut part))
            .await
            .is_err()
        {
            log::warn!(
                "Error retrieving PostgreSQL status of server {}: no answer within check_timeout ({}s)",
                server.name,
                timeout.as_secs()
            );
        }
        part
    };
    let streaming_part = async {
        let mut part = RemoteStatus::new();
        if uses_streaming {
            let read = tokio::time::timeout(timeout, streaming_status(server, &mut part)).await;
            if read.is_err() {
                part.insert(
                    "connection_error",
                    Py::Str(format!(
                        "no answer from the streaming connection within check_timeout ({}s)",
                        timeout.as_secs()
                    )),
                );
            }
        }
        part
    };
    let (sql, streaming) = tokio::join!(sql_part, streaming_part);
    if server.text("conninfo").is_some() {
        for key in [
            "data_directory",
            "server_txt_version",
            "is_superuser",
            "is_in_recovery",
            "current_xlog",
            "replication_slot_support",
            "replication_slot",
            "synchronous_standby_names",
            "postgres_systemid",
            "version_supported",
        ] {
            status.insert(key, Py::None);
        }
    }
    // Merged in Barman's order: the SQL connection, then the replication connection
    // (whose `version_supported` wins), then the archivers, then the backup executor.
    status.extend(sql);
    status.extend(streaming);
    let major = server_major(&status);
    if server.flag("archiver") {
        for key in ["archive_mode", "archive_command"] {
            status.entry(key).or_insert(Py::None);
        }
    } else {
        for key in ARCHIVER_KEYS {
            status.remove(key);
        }
    }
    let native = native_tool(major);
    if server.flag("streaming_archiver") {
        let synchronous = match (&status.get("synchronous_standby_names"), major) {
            (Some(Py::List(names)), Some(_)) => {
                let ours = server
                    .text("streaming_archiver_name")
                    .unwrap_or("barman_receive_wal");
                Py::Bool(names.iter().any(|n| n == ours || n == "*"))
            }
            _ => Py::None,
        };
        status.insert("pg_receivexlog_installed", Py::Bool(true));
        status.insert("pg_receivexlog_path", native.path.clone());
        status.insert("pg_receivexlog_version", native.version.clone());
        status.insert("pg_receivexlog_compatible", native.compatible.clone());
        status.insert("pg_receivexlog_supports_slots", native.compatible.clone());
        status.insert(
            "pg_receivexlog_synchronous",
            if native.compatible == Py::Bool(true) {
                synchronous
            } else {
                native.compatible.clone()
            },
        );
    }
    if server.text("backup_method") == Some("postgres") {
        status.insert("pg_basebackup_installed", Py::Bool(true));
        status.insert("pg_basebackup_path", native.path);
        status.insert("pg_basebackup_version", native.version);
        status.insert("pg_basebackup_compatible", native.compatible);
        status.insert("pg_basebackup_bwlimit", Py::Bool(true));
        status.insert("pg_basebackup_tbls_mapping", Py::Bool(true));
    }
    status
}

/// The keys that only the file archiver (`archiver = on`) reports.
const ARCHIVER_KEYS: [&str; 11] = [
    "archive_mode",
    "archive_command",
    "archived_count",
    "last_archived_wal",
    "last_archived_time",
    "failed_count",
    "last_failed_wal",
    "last_failed_time",
    "stats_reset",
    "is_archiving",
    "current_archived_wals_per_second",
];

/// The server's major version, from whichever connection answered.
fn server_major(status: &RemoteStatus) -> Option<u32> {
    match status.get("server_txt_version") {
        Some(Py::Str(v)) => v.split(['.', 'b', 'r', 'd']).next()?.parse().ok(),
        _ => None,
    }
}

/// Whether this barman backs up and streams from a server of this `server_version_num`
/// (Barman's `version_supported` is its own minimum; this is ours, 13 to 18).
fn supported_version(version_num: u32) -> bool {
    PgVersion::for_major(version_num / 10000).is_some()
}

/// What stands in for Barman's client binaries: this one.
struct NativeTool {
    path: Py,
    version: Py,
    compatible: Py,
}

fn native_tool(major: Option<u32>) -> NativeTool {
    NativeTool {
        path: Py::opt_str(
            std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string()),
        ),
        version: Py::Str(format!("{} (native protocol)", env!("CARGO_PKG_VERSION"))),
        compatible: major.map_or(Py::None, |m| Py::Bool(supported_version(m * 10000))),
    }
}

/// The settings read with one query: (key, SQL expression).
const SETTINGS: [(&str, &str); 13] = [
    (
        "server_version_num",
        "current_setting('server_version_num')",
    ),
    ("version", "version()"),
    (
        "is_superuser",
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
    ),
    ("is_in_recovery", "pg_is_in_recovery()"),
    ("wal_level", "current_setting('wal_level')"),
    ("hot_standby", "current_setting('hot_standby')"),
    ("max_wal_senders", "current_setting('max_wal_senders')"),
    ("data_checksums", "current_setting('data_checksums')"),
    (
        "max_replication_slots",
        "current_setting('max_replication_slots')",
    ),
    ("wal_compression", "current_setting('wal_compression')"),
    ("wal_keep_size", "current_setting('wal_keep_size')"),
    (
        "synchronous_standby_names",
        "current_setting('synchronous_standby_names')",
    ),
    (
        "numbers",
        "(SELECT string_agg(setting, ' ' ORDER BY name) FROM pg_settings \
         WHERE name IN ('archive_timeout', 'checkpoint_timeout', 'wal_segment_size'))",
    ),
];

async fn sql_status(server: &ServerConfig, out: &mut RemoteStatus) {
    let Some(conninfo) = server.text("conninfo") else {
        return;
    };
    let sql = match parse_conninfo(&server.name, "conninfo", conninfo) {
        Err(e) => return log::warn!("Error retrieving PostgreSQL status: {e:#}"),
        Ok(info) => match SqlClient::connect(&server.name, &info, "barman").await {
            Err(e) => return log::warn!("Error retrieving PostgreSQL status: {e:#}"),
            Ok(sql) => sql,
        },
    };
    let query = format!(
        "SELECT {}",
        SETTINGS
            .iter()
            .map(|(_, expr)| *expr)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let row = match sql.query_row(&query).await {
        Ok(Some(row)) if row.len() == SETTINGS.len() => row,
        Ok(_) => return,
        Err(e) => {
            return log::warn!(
                "Error retrieving PostgreSQL status of server {}: {e:#}",
                server.name
            )
        }
    };
    let get = |key: &str| -> Option<String> {
        let i = SETTINGS.iter().position(|(k, _)| *k == key)?;
        row[i].clone()
    };
    let version_num: Option<u32> = get("server_version_num").and_then(|v| v.parse().ok());
    let is_superuser = get("is_superuser").map(|v| v == "t");
    out.insert("is_superuser", Py::opt_bool(is_superuser));
    out.insert(
        "is_in_recovery",
        Py::opt_bool(get("is_in_recovery").map(|v| v == "t")),
    );
    out.insert(
        "server_txt_version",
        Py::opt_str(get("version").and_then(|v| v.split_whitespace().nth(1).map(str::to_string))),
    );
    out.insert(
        "version_supported",
        Py::opt_bool(version_num.map(supported_version)),
    );
    for key in [
        "wal_level",
        "hot_standby",
        "max_wal_senders",
        "data_checksums",
        "max_replication_slots",
        "wal_compression",
        "wal_keep_size",
    ] {
        out.insert(key, Py::opt_str(get(key)));
    }
    // archive_timeout, checkpoint_timeout, wal_segment_size: in bytes and seconds.
    let numbers: Vec<i64> = get("numbers")
        .unwrap_or_default()
        .split(' ')
        .filter_map(|n| n.parse().ok())
        .collect();
    let number = |i: usize| Py::opt_int(numbers.get(i).copied().filter(|_| numbers.len() == 3));
    out.insert("archive_timeout", number(0));
    out.insert("checkpoint_timeout", number(1));
    out.insert("xlog_segment_size", number(2));
    out.insert(
        "synchronous_standby_names",
        Py::List(standby_names(
            &get("synchronous_standby_names").unwrap_or_default(),
        )),
    );
    out.insert("replication_slot_support", Py::Bool(true));

    let text = |q: String| {
        let sql = &sql;
        async move { sql.query_text(&q).await.ok().flatten() }
    };
    let backup_privileges = text(backup_privileges_query(version_num.unwrap_or(0)))
        .await
        .map(|v| v == "t");
    out.insert("has_backup_privileges", Py::opt_bool(backup_privileges));
    let monitoring = if is_superuser == Some(true) {
        Some(true)
    } else {
        text(
            "SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE') \
             OR (pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') \
                 AND pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'))"
                .into(),
        )
        .await
        .map(|v| v == "t")
    };
    out.insert("has_monitoring_privileges", Py::opt_bool(monitoring));
    if backup_privileges == Some(true) {
        out.insert(
            "data_directory",
            Py::opt_str(text("SHOW data_directory".into()).await),
        );
        // A numeric sum: a Decimal in psycopg2, which Barman's JSON writer prints as its
        // str() ("23252681", a string).
        out.insert(
            "current_size",
            text("SELECT sum(pg_tablespace_size(oid)) FROM pg_tablespace".into())
                .await
                .filter(|v| v.parse::<u64>().is_ok())
                .map_or(Py::None, Py::Repr),
        );
    } else {
        out.insert("current_size", Py::None);
    }
    let (lsn, file) = current_wal(&sql, version_num, numbers.get(2).copied()).await;
    out.insert("current_lsn", Py::opt_str(lsn));
    out.insert("current_xlog", Py::opt_str(file));
    for (name, value) in config_files(&sql).await {
        out.insert(name, value);
    }
    if let Some(slot) = server.text("slot_name") {
        let query = format!(
            "SELECT slot_name, active, restart_lsn FROM pg_replication_slots \
             WHERE slot_type = 'physical' AND slot_name = '{}'",
            slot.replace('\'', "''")
        );
        let record = match sql.query_row(&query).await {
            Ok(Some(row)) if row.len() == 3 => Py::Repr(format!(
                "Record(slot_name={}, active={}, restart_lsn={})",
                python_literal(&row[0]),
                Py::opt_bool(row[1].as_deref().map(|v| v == "t")).text(),
                python_literal(&row[2]),
            )),
            _ => Py::None,
        };
        out.insert("replication_slot", record);
    }
    out.insert(
        "postgres_systemid",
        Py::opt_str(text("SELECT system_identifier::text FROM pg_control_system()".into()).await),
    );
    if server.flag("archiver") {
        out.insert(
            "archive_mode",
            Py::opt_str(text("SHOW archive_mode".into()).await),
        );
        out.insert(
            "archive_command",
            Py::opt_str(text("SHOW archive_command".into()).await),
        );
        archiver_stats(&sql, out).await;
    }
}

/// A text or NULL column as a Python literal.
fn python_literal(value: &Option<String>) -> String {
    value.as_deref().map_or("None".into(), python_quote)
}

/// Barman's `has_backup_privileges`: a superuser, or a user who may read the settings
/// and statistics and run the backup and WAL functions.
fn backup_privileges_query(version_num: u32) -> String {
    let (start, stop) = if version_num >= 150000 {
        (
            "has_function_privilege(current_user, 'pg_backup_start(text,bool)', 'EXECUTE')",
            "has_function_privilege(current_user, 'pg_backup_stop(bool)', 'EXECUTE')",
        )
    } else {
        (
            "has_function_privilege(current_user, 'pg_start_backup(text,bool,bool)', 'EXECUTE')",
            "(has_function_privilege(current_user, 'pg_stop_backup()', 'EXECUTE') \
             OR has_function_privilege(current_user, 'pg_stop_backup(bool,bool)', 'EXECUTE'))",
        )
    };
    format!(
        "SELECT usesuper OR ((pg_has_role(current_user, 'pg_monitor', 'USAGE') \
         OR (pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') \
             AND pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'))) \
         AND {start} AND {stop} \
         AND has_function_privilege(current_user, 'pg_switch_wal()', 'EXECUTE') \
         AND has_function_privilege(current_user, 'pg_create_restore_point(text)', 'EXECUTE')) \
         FROM pg_user WHERE usename = current_user"
    )
}

/// The current WAL position and its file name; on a standby the replayed position and
/// no file name. From 17, PostgreSQL names the segment that starts at a boundary
/// position; Barman (and this) keep naming the one that ends there, as before 17.
async fn current_wal(
    sql: &SqlClient,
    version_num: Option<u32>,
    segment_size: Option<i64>,
) -> (Option<String>, Option<String>) {
    let row = sql
        .query_row(
            "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                    ELSE pg_current_wal_lsn() END::text, \
                    CASE WHEN pg_is_in_recovery() THEN NULL \
                    ELSE (pg_walfile_name_offset(pg_current_wal_lsn())).file_name END, \
                    CASE WHEN pg_is_in_recovery() THEN NULL \
                    ELSE (pg_walfile_name_offset(pg_current_wal_lsn())).file_offset END",
        )
        .await
        .ok()
        .flatten();
    let Some([lsn, file, offset]) = row.and_then(|r| <[Option<String>; 3]>::try_from(r).ok())
    else {
        return (None, None);
    };
    let at_boundary = offset.as_deref() == Some("0") && version_num.unwrap_or(0) >= 170000;
    let size = segment_size
        .and_then(|s| u32::try_from(s).ok())
        .and_then(|s| WalSegmentSize::new(s).ok());
    let file = match (file, size) {
        (Some(name), Some(size)) if at_boundary => {
            match names::parse_segment_file_name(&name, size) {
                Ok((tli, segno)) if segno.get() > 0 => Some(names::segment_file_name(
                    tli,
                    barman_protocol::WalSegNo::new(segno.get() - 1),
                    size,
                )),
                _ => Some(name),
            }
        }
        (file, _) => file,
    };
    (lsn, file)
}

/// `config_file`, `hba_file`, `ident_file`, and `included_files` when there are any.
async fn config_files(sql: &SqlClient) -> Vec<(&'static str, Py)> {
    let mut files = Vec::new();
    let Ok(Some(row)) = sql
        .query_row(
            "SELECT current_setting('config_file'), current_setting('hba_file'), \
             current_setting('ident_file'), \
             (SELECT string_agg(DISTINCT sourcefile, E'\\n' ORDER BY sourcefile) \
              FROM pg_settings WHERE sourcefile IS NOT NULL \
              AND sourcefile <> current_setting('config_file'))",
        )
        .await
    else {
        return files;
    };
    for (i, key) in ["config_file", "hba_file", "ident_file"].iter().enumerate() {
        files.push((*key, Py::opt_str(row.get(i).cloned().flatten())));
    }
    if let Some(Some(included)) = row.get(3) {
        files.push((
            "included_files",
            Py::List(included.lines().map(str::to_string).collect()),
        ));
    }
    files
}

/// The columns of `pg_stat_archiver`, with Barman's `is_archiving` and
/// `current_archived_wals_per_second`.
async fn archiver_stats(sql: &SqlClient, out: &mut RemoteStatus) {
    // Timestamps as Python's str() of an aware datetime: 2026-11-22 02:02:35.123456+00:00.
    let ts = |col: &str| {
        format!("to_char({col}, 'YYYY-MM-DD HH24:MI:SS.US') || to_char({col}, 'TZH:TZM')")
    };
    let query = format!(
        "SELECT archived_count, last_archived_wal, {}, failed_count, last_failed_wal, {}, {}, \
         current_setting('archive_mode') IN ('on', 'always') \
         AND (last_failed_wal IS NULL \
              OR last_failed_wal LIKE '%.history' \
                 AND substring(last_failed_wal from 1 for 8) <= substring(last_archived_wal from 1 for 8) \
              OR last_failed_time <= last_archived_time), \
         CAST(archived_count AS numeric) / EXTRACT(EPOCH FROM age(now(), stats_reset)) \
         FROM pg_stat_archiver",
        ts("last_archived_time"),
        ts("last_failed_time"),
        ts("stats_reset"),
    );
    let Ok(Some(row)) = sql.query_row(&query).await else {
        return;
    };
    if row.len() != 9 {
        return;
    }
    let time = |v: &Option<String>| {
        v.as_deref().map_or(Py::None, |t| {
            // Python leaves out a zero fraction.
            Py::Repr(t.replacen(".000000", "", 1))
        })
    };
    let int = |v: &Option<String>| Py::opt_int(v.as_deref().and_then(|n| n.parse().ok()));
    out.insert("archived_count", int(&row[0]));
    out.insert("last_archived_wal", Py::opt_str(row[1].clone()));
    out.insert("last_archived_time", time(&row[2]));
    out.insert("failed_count", int(&row[3]));
    out.insert("last_failed_wal", Py::opt_str(row[4].clone()));
    out.insert("last_failed_time", time(&row[5]));
    out.insert("stats_reset", time(&row[6]));
    out.insert(
        "is_archiving",
        Py::opt_bool(row[7].as_deref().map(|v| v == "t")),
    );
    out.insert(
        "current_archived_wals_per_second",
        row[8].clone().map_or(Py::None, Py::Repr),
    );
}

/// Barman's reading of `synchronous_standby_names`: the names between the parentheses
/// of `N (a, b)` / `FIRST N (...)` / `ANY N (...)`, or the whole list, unquoted.
fn standby_names(setting: &str) -> Vec<String> {
    let start = setting.find('(').map_or(0, |i| i + 1);
    let end = setting
        .rfind(')')
        .filter(|&e| e >= start)
        .unwrap_or(setting.len());
    setting[start..end]
        .split(',')
        .map(|name| name.trim().trim_matches('"').to_string())
        .collect()
}

/// What `IDENTIFY_SYSTEM` on the replication connection reports.
async fn streaming_status(server: &ServerConfig, out: &mut RemoteStatus) {
    for key in [
        "connection_error",
        "streaming_supported",
        "streaming",
        "streaming_systemid",
        "timeline",
        "xlogpos",
        "version_supported",
    ] {
        out.insert(key, Py::None);
    }
    let Some(conninfo) = server
        .text("streaming_conninfo")
        .or_else(|| server.text("conninfo"))
    else {
        return;
    };
    let mut info = match parse_conninfo(&server.name, "streaming_conninfo", conninfo) {
        Ok(info) => info,
        Err(e) => {
            out.insert("connection_error", Py::Str(format!("{e:#}")));
            return;
        }
    };
    info.set_fallback_application_name("barman");
    let mut conn = match ReplicationConnection::connect(&info).await {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!(
                "Error retrieving PostgreSQL status of server {}: {e}",
                server.name
            );
            out.insert("connection_error", Py::Str(e.to_string()));
            return;
        }
    };
    let supported = supported_version(conn.server_version().num());
    out.insert("version_supported", Py::Bool(supported));
    if supported {
        out.insert("streaming_supported", Py::Bool(true));
        match conn.identify_system().await {
            Ok(id) => {
                out.insert("streaming", Py::Bool(true));
                out.insert("streaming_systemid", Py::Str(id.system_id.to_string()));
                out.insert("timeline", Py::Int(i64::from(id.timeline.get())));
                out.insert("xlogpos", Py::Str(id.xlogpos.to_string()));
            }
            Err(e) => {
                out.insert("streaming", Py::Bool(false));
                log::warn!(
                    "IDENTIFY_SYSTEM failed on the streaming connection of server {}: {e}",
                    server.name
                );
            }
        }
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_names_are_read_as_barman_reads_them() {
        assert_eq!(standby_names(""), vec![""]);
        assert_eq!(standby_names("a, b"), vec!["a", "b"]);
        assert_eq!(
            standby_names("FIRST 1 (barman_receive_wal, \"other one\")"),
            vec!["barman_receive_wal", "other one"]
        );
        assert_eq!(standby_names("ANY 2 (x)"), vec!["x"]);
        assert_eq!(standby_names("*"), vec!["*"]);
    }

    #[test]
    fn values_print_as_python_prints_them() {
        assert_eq!(Py::None.text(), "None");
        assert_eq!(Py::Bool(true).text(), "True");
        assert_eq!(Py::List(vec![String::new()]).text(), "['']");
        assert_eq!(
            Py::List(vec!["a".into(), "it's".into()]).text(),
            "['a', \"it's\"]"
        );
        assert_eq!(Py::Int(16777216).json(), Json::from(16777216));
        assert_eq!(
            Py::Repr("Record(slot_name='s')".into()).json(),
            Json::String("Record(slot_name='s')".into())
        );
        assert_eq!(python_literal(&None), "None");
        assert_eq!(python_literal(&Some("0/3000000".into())), "'0/3000000'");
    }
}
