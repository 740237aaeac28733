//! `barman replication-status SERVER... [--minimal] [--target all|hot-standby|wal-streamer]
//! [--source backup-host|wal-host]`: the server's `pg_stat_replication`, in Barman's
//! console and JSON layouts (BARMAN.md §6.6, `barman/output.py`
//! `result_replication_status`).

use anyhow::{Context as _, Result};
use serde_json::{json, Map, Value};

use super::receive_wal::sql_conninfo;
use super::{select_servers, Context};
use crate::config::values::pretty_size;
use crate::config::ServerConfig;
use crate::postgres::{parse_conninfo, runtime, SqlClient};

/// `--target` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Every streaming client.
    All,
    /// Hot standby servers only (they report a replay position).
    HotStandby,
    /// WAL streamers only (pg_receivewal, receive-wal).
    WalStreamer,
}

/// `--source` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceHost {
    /// The node backups are taken from (`conninfo`).
    BackupHost,
    /// The node WAL is streamed from (`wal_conninfo`).
    WalHost,
}

/// One row of `pg_stat_replication`, values as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// WAL sender PID.
    pub pid: String,
    /// User.
    pub usename: String,
    /// `application_name`.
    pub application_name: String,
    /// Client address (none for a Unix socket).
    pub client_addr: Option<String>,
    /// Client host name.
    pub client_hostname: Option<String>,
    /// Client port.
    pub client_port: Option<String>,
    /// When the WAL sender started.
    pub backend_start: String,
    /// The standby's xmin.
    pub backend_xmin: Option<String>,
    /// `streaming`, `catchup`, ...
    pub state: String,
    /// Positions.
    pub sent_lsn: Option<String>,
    /// Written by the client.
    pub write_lsn: Option<String>,
    /// Flushed by the client.
    pub flush_lsn: Option<String>,
    /// Replayed by the client (none for a WAL streamer).
    pub replay_lsn: Option<String>,
    /// Synchronous priority.
    pub sync_priority: i64,
    /// `async`, `sync`, `potential`, `quorum`.
    pub sync_state: String,
    /// The physical slot the client streams from.
    pub slot_name: Option<String>,
    /// The server's current position.
    pub current_lsn: Option<String>,
}

/// Run `replication-status`.
pub fn run(
    ctx: &mut Context,
    servers: &[String],
    minimal: bool,
    target: Target,
    source: SourceHost,
) -> Result<()> {
    let selected: Vec<ServerConfig> = select_servers(&ctx.config, &mut ctx.out, servers)?
        .into_iter()
        .filter(|s| s.active() && !s.passive_node())
        .cloned()
        .collect();
    for server in &selected {
        if server.disabled() {
            for message in &server.msg_list {
                ctx.out.error(message);
            }
            continue;
        }
        match runtime()?.block_on(read_status(server, target, source)) {
            Ok((server_lsn, clients)) => {
                let json = to_json(target, minimal, server_lsn.as_deref(), &clients);
                let lines = console(
                    &server.name,
                    target,
                    minimal,
                    server_lsn.as_deref(),
                    &clients,
                );
                ctx.out.result(&server.name, json, || lines);
            }
            Err(e) => {
                log::debug!("Error retrieving status of standby servers: {e:#}");
                ctx.out
                    .error(&format!("Unable to connect to server {}", server.name));
            }
        }
    }
    Ok(())
}

async fn read_status(
    server: &ServerConfig,
    target: Target,
    source: SourceHost,
) -> Result<(Option<String>, Vec<Client>)> {
    let info = match source {
        SourceHost::WalHost => sql_conninfo(server)?,
        SourceHost::BackupHost => parse_conninfo(
            &server.name,
            "conninfo",
            server.text("conninfo").unwrap_or_default(),
        )?,
    };
    let sql = SqlClient::connect(&server.name, &info, "barman").await?;
    let filter = match target {
        Target::All => "",
        Target::HotStandby => " AND r.replay_lsn IS NOT NULL",
        Target::WalStreamer => " AND r.replay_lsn IS NULL",
    };
    let query = format!(
        "SELECT r.pid::text, r.usename::text, r.application_name, host(r.client_addr), \
         r.client_hostname, r.client_port::text, r.backend_start::text, r.backend_xmin::text, \
         r.state, r.sent_lsn::text, r.write_lsn::text, r.flush_lsn::text, r.replay_lsn::text, \
         r.sync_priority::int8, r.sync_state, rs.slot_name::text, \
         (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
          ELSE pg_current_wal_lsn() END)::text \
         FROM pg_stat_replication r \
         LEFT JOIN pg_replication_slots rs ON (r.pid = rs.active_pid) \
         WHERE (rs.slot_type IS NULL OR rs.slot_type = 'physical'){filter} \
         ORDER BY sync_state DESC, sync_priority"
    );
    let rows = sql
        .client
        .query(&query, &[])
        .await
        .context("read pg_stat_replication")?;
    let clients = rows
        .iter()
        .map(|r| Client {
            pid: r.get::<_, Option<String>>(0).unwrap_or_default(),
            usename: r.get::<_, Option<String>>(1).unwrap_or_default(),
            application_name: r.get::<_, Option<String>>(2).unwrap_or_default(),
            client_addr: r.get(3),
            client_hostname: r.get(4),
            client_port: r.get(5),
            backend_start: python_timestamp(&r.get::<_, Option<String>>(6).unwrap_or_default()),
            backend_xmin: r.get(7),
            state: r.get::<_, Option<String>>(8).unwrap_or_default(),
            sent_lsn: r.get(9),
            write_lsn: r.get(10),
            flush_lsn: r.get(11),
            replay_lsn: r.get(12),
            sync_priority: r.get::<_, Option<i64>>(13).unwrap_or(0),
            sync_state: r.get::<_, Option<String>>(14).unwrap_or_default(),
            slot_name: r.get(15),
            current_lsn: r.get(16),
        })
        .collect();
    // Barman's `current_xlog_location`: only a primary reports one.
    let server_lsn = sql
        .query_text(
            "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END",
        )
        .await?;
    Ok((server_lsn, clients))
}

/// PostgreSQL's `2026-11-22 01:58:25.214157+00` as Python prints a datetime:
/// `2026-11-22 01:58:25.214157+00:00`.
pub fn python_timestamp(text: &str) -> String {
    let Some(pos) = text.rfind(['+', '-']).filter(|&p| p > 10) else {
        return text.to_string();
    };
    let (stamp, zone) = text.split_at(pos);
    // PostgreSQL drops trailing zeros of the fraction ("24.21045"); Python's str() of a
    // datetime always prints six digits of microseconds when there are any ("24.210450").
    let stamp = match stamp.split_once('.') {
        Some((seconds, fraction)) if fraction.len() < 6 => format!("{seconds}.{fraction:0<6}"),
        _ => stamp.to_string(),
    };
    match zone.len() {
        3 => format!("{stamp}{zone}:00"),
        _ => format!("{stamp}{zone}"),
    }
}

fn parse_lsn(text: &str) -> Option<i128> {
    let lsn = text.parse::<barman_protocol::Lsn>().ok()?;
    Some(i128::from(lsn.as_u64()))
}

/// Barman's `diff_lsn`: `a - b` in bytes, `None` when either is missing.
pub fn diff_lsn(a: Option<&str>, b: Option<&str>) -> Option<i128> {
    Some(parse_lsn(a?)? - parse_lsn(b?)?)
}

fn title(target: Target) -> &'static str {
    match target {
        Target::HotStandby => "hot standby servers",
        Target::WalStreamer => "WAL streamers",
        Target::All => "streaming clients",
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// The kind of client and its sync stage, as Barman names them.
fn stage(c: &Client) -> (&'static str, String) {
    let diff = |l: &Option<String>| diff_lsn(l.as_deref(), c.current_lsn.as_deref());
    let (kind, max) = if c.replay_lsn.is_none() {
        ("WAL streamer", 3)
    } else {
        ("standby", 5)
    };
    if c.replay_lsn.is_some() {
        if diff(&c.replay_lsn) == Some(0) {
            return (kind, "5/5 Hot standby (max)".into());
        }
        if diff(&c.flush_lsn) == Some(0) {
            return (kind, "4/5 2-safe".into());
        }
    }
    let stage = if diff(&c.write_lsn) == Some(0) {
        format!("3/{max} Remote write")
    } else if diff(&c.sent_lsn) == Some(0) {
        format!("2/{max} WAL Sent (min)")
    } else {
        format!("1/{max} 1-safe")
    };
    (kind, stage)
}

fn client_name(c: &Client, kind: &str) -> String {
    if c.sync_priority > 0 {
        format!("#{} {} {kind}", c.sync_priority, capitalize(&c.sync_state))
    } else {
        format!("{} {kind}", capitalize(&c.sync_state))
    }
}

fn size_diff(d: Option<i128>) -> String {
    pretty_size(d.unwrap_or(0) as f64)
}

/// The console lines of one server.
pub fn console(
    server: &str,
    target: Target,
    minimal: bool,
    server_lsn: Option<&str>,
    clients: &[Client],
) -> Vec<String> {
    let title = title(target);
    let mut lines = Vec::new();
    if minimal {
        match server_lsn {
            Some(lsn) => lines.push(format!(
                "{} for master '{server}' (LSN @ {lsn}):",
                capitalize_first(title)
            )),
            None => lines.push(format!("{} for slave '{server}':", capitalize_first(title))),
        }
    } else {
        lines.push(format!("Status of {title} for server '{server}':"));
        if let Some(lsn) = server_lsn {
            lines.push(format!("  Current LSN on master: {lsn}"));
        }
    }
    if clients.is_empty() {
        lines.push(format!("  No {title} attached"));
        return lines;
    }
    if minimal {
        for (i, c) in clients.iter().enumerate() {
            let addr = c.client_addr.as_deref().unwrap_or("socket");
            let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
            if c.replay_lsn.is_none() {
                lines.push(format!(
                    "  {}. W) {}@{addr} S:{} W:{} P:{} AN:{}",
                    i + 1,
                    c.usename,
                    opt(&c.sent_lsn),
                    opt(&c.write_lsn),
                    c.sync_priority,
                    c.application_name
                ));
            } else {
                lines.push(format!(
                    "  {}. {}) {}@{addr} S:{} F:{} R:{} P:{} AN:{}",
                    i + 1,
                    c.sync_state
                        .chars()
                        .next()
                        .unwrap_or('?')
                        .to_ascii_uppercase(),
                    c.usename,
                    opt(&c.sent_lsn),
                    opt(&c.flush_lsn),
                    opt(&c.replay_lsn),
                    c.sync_priority,
                    c.application_name
                ));
            }
        }
        return lines;
    }
    lines.push(format!("  Number of {title}: {}", clients.len()));
    for (i, c) in clients.iter().enumerate() {
        lines.push(String::new());
        let (kind, sync_stage) = stage(c);
        lines.push(format!("  {}. {}", i + 1, client_name(c, kind)));
        lines.push(format!("     Application name: {}", c.application_name));
        lines.push(format!("     Sync stage      : {sync_stage}"));
        match &c.client_addr {
            Some(addr) => {
                lines.push("     Communication   : TCP/IP".into());
                lines.push(format!(
                    "     IP Address      : {addr} / Port: {} / Host: {}",
                    c.client_port.as_deref().unwrap_or("None"),
                    c.client_hostname.as_deref().unwrap_or("-")
                ));
            }
            None => lines.push("     Communication   : Unix domain socket".into()),
        }
        lines.push(format!("     User name       : {}", c.usename));
        lines.push(format!(
            "     Current state   : {} ({})",
            c.state, c.sync_state
        ));
        if let Some(slot) = &c.slot_name {
            lines.push(format!("     Replication slot: {slot}"));
        }
        lines.push(format!("     WAL sender PID  : {}", c.pid));
        lines.push(format!("     Started at      : {}", c.backend_start));
        if let Some(xmin) = &c.backend_xmin {
            lines.push(format!("     Standby's xmin  : {xmin}"));
        }
        let current = c.current_lsn.as_deref();
        for (label, value) in [
            ("Sent LSN   ", &c.sent_lsn),
            ("Write LSN  ", &c.write_lsn),
            ("Flush LSN  ", &c.flush_lsn),
            ("Replay LSN ", &c.replay_lsn),
        ] {
            if let Some(lsn) = value {
                lines.push(format!(
                    "     {label}: {lsn} (diff: {})",
                    size_diff(diff_lsn(Some(lsn), current))
                ));
            }
        }
    }
    lines
}

fn capitalize_first(text: &str) -> String {
    // Python's str.capitalize(): first upper, the rest lower.
    capitalize(text)
}

/// The JSON document of one server.
pub fn to_json(
    target: Target,
    minimal: bool,
    server_lsn: Option<&str>,
    clients: &[Client],
) -> Value {
    let title = title(target);
    let key = title.replace(' ', "_").to_lowercase();
    let mut doc = Map::new();
    doc.insert(key.clone(), json!([]));
    doc.insert("server_lsn".into(), json!(server_lsn));
    if clients.is_empty() {
        doc.insert("standby_info".into(), json!(format!("No {title} attached")));
        return Value::Object(doc);
    }
    let list: Vec<Value> = clients
        .iter()
        .map(|c| {
            let addr = c.client_addr.clone().unwrap_or_else(|| "socket".into());
            if minimal {
                if c.replay_lsn.is_none() {
                    json!({
                        "user_name": c.usename,
                        "client_addr": addr,
                        "sent_lsn": c.sent_lsn,
                        "write_lsn": c.write_lsn,
                        "sync_priority": c.sync_priority,
                        "application_name": c.application_name,
                    })
                } else {
                    json!({
                        "sync_state": c.sync_state.chars().next().map(|ch| ch.to_ascii_uppercase().to_string()),
                        "user_name": c.usename,
                        "client_addr": addr,
                        "sent_lsn": c.sent_lsn,
                        "flush_lsn": c.flush_lsn,
                        "replay_lsn": c.replay_lsn,
                        "sync_priority": c.sync_priority,
                        "application_name": c.application_name,
                    })
                }
            } else {
                let (kind, sync_stage) = stage(c);
                let mut m = Map::new();
                m.insert("name".into(), json!(client_name(c, kind)));
                m.insert("application_name".into(), json!(c.application_name));
                m.insert("sync_stage".into(), json!(sync_stage));
                match &c.client_addr {
                    Some(ip) => {
                        m.insert("communication".into(), json!("TCP/IP"));
                        m.insert("ip_address".into(), json!(ip));
                        m.insert(
                            "port".into(),
                            json!(c.client_port.as_deref().and_then(|p| p.parse::<i64>().ok())),
                        );
                        m.insert("host".into(), json!(c.client_hostname));
                    }
                    None => {
                        m.insert("communication".into(), json!("Unix domain socket"));
                    }
                }
                m.insert("user_name".into(), json!(c.usename));
                m.insert("current_state".into(), json!(c.state));
                m.insert("current_sync_state".into(), json!(c.sync_state));
                if let Some(slot) = &c.slot_name {
                    m.insert("replication_slot".into(), json!(slot));
                }
                m.insert(
                    "wal_sender_pid".into(),
                    json!(c.pid.parse::<i64>().ok()),
                );
                m.insert("started_at".into(), json!(c.backend_start));
                if let Some(xmin) = &c.backend_xmin {
                    m.insert("standbys_xmin".into(), json!(xmin));
                }
                for (name, value) in [
                    ("sent", &c.sent_lsn),
                    ("write", &c.write_lsn),
                    ("flush", &c.flush_lsn),
                    ("replay", &c.replay_lsn),
                ] {
                    if let Some(lsn) = value {
                        let d = diff_lsn(Some(lsn), c.current_lsn.as_deref());
                        m.insert(format!("{name}_lsn"), json!(lsn));
                        m.insert(format!("{name}_lsn_diff"), json!(size_diff(d)));
                        m.insert(
                            format!("{name}_lsn_diff_bytes"),
                            json!(d.map(|v| v as i64)),
                        );
                    }
                }
                Value::Object(m)
            }
        })
        .collect();
    doc.insert(key, Value::Array(list));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_printed_as_python_prints_datetimes() {
        assert_eq!(
            python_timestamp("2026-11-22 07:22:24.21045+00"),
            "2026-11-22 07:22:24.210450+00:00"
        );
        assert_eq!(
            python_timestamp("2026-11-22 07:22:24+05:30"),
            "2026-11-22 07:22:24+05:30"
        );
        assert_eq!(
            python_timestamp("2026-11-22 07:22:24.214157+00"),
            "2026-11-22 07:22:24.214157+00:00"
        );
    }

    fn streamer() -> Client {
        Client {
            pid: "10523".into(),
            usename: "postgres".into(),
            application_name: "barman_receive_wal".into(),
            client_addr: Some("127.0.0.1".into()),
            client_port: Some("43970".into()),
            backend_start: python_timestamp("2026-11-22 01:58:25.214157+00"),
            state: "streaming".into(),
            sent_lsn: Some("0/1A000090".into()),
            write_lsn: Some("0/1A000090".into()),
            flush_lsn: Some("0/1A000000".into()),
            sync_state: "async".into(),
            slot_name: Some("barman34".into()),
            current_lsn: Some("0/1A000090".into()),
            ..Client::default()
        }
    }

    #[test]
    fn console_output_matches_barmans_layout() {
        let lines = console("pg", Target::All, false, Some("0/1A000090"), &[streamer()]);
        let expected = "Status of streaming clients for server 'pg':
  Current LSN on master: 0/1A000090
  Number of streaming clients: 1

  1. Async WAL streamer
     Application name: barman_receive_wal
     Sync stage      : 3/3 Remote write
     Communication   : TCP/IP
     IP Address      : 127.0.0.1 / Port: 43970 / Host: -
     User name       : postgres
     Current state   : streaming (async)
     Replication slot: barman34
     WAL sender PID  : 10523
     Started at      : 2026-11-22 01:58:25.214157+00:00
     Sent LSN   : 0/1A000090 (diff: 0 B)
     Write LSN  : 0/1A000090 (diff: 0 B)
     Flush LSN  : 0/1A000000 (diff: -144 B)";
        assert_eq!(lines.join("\n"), expected);
    }

    #[test]
    fn minimal_and_empty_outputs() {
        let lines = console(
            "pg",
            Target::WalStreamer,
            true,
            Some("0/3000060"),
            &[streamer()],
        );
        assert_eq!(lines[0], "Wal streamers for master 'pg' (LSN @ 0/3000060):");
        assert_eq!(
            lines[1],
            "  1. W) postgres@127.0.0.1 S:0/1A000090 W:0/1A000090 P:0 AN:barman_receive_wal"
        );
        let lines = console("pg", Target::HotStandby, false, Some("0/1"), &[]);
        assert_eq!(lines.last().unwrap(), "  No hot standby servers attached");
    }

    #[test]
    fn json_output_has_barmans_keys() {
        let doc = to_json(Target::All, false, Some("0/1A000090"), &[streamer()]);
        let c = &doc["streaming_clients"][0];
        assert_eq!(c["name"], "Async WAL streamer");
        assert_eq!(c["flush_lsn_diff"], "-144 B");
        assert_eq!(c["flush_lsn_diff_bytes"], -144);
        assert_eq!(c["wal_sender_pid"], 10523);
        assert_eq!(doc["server_lsn"], "0/1A000090");
        let empty = to_json(Target::All, false, None, &[]);
        assert_eq!(empty["standby_info"], "No streaming clients attached");
    }
}
