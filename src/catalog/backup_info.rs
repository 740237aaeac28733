//! `backup.info`: the metadata of one backup, as Barman 3.17 writes it (BARMAN.md
//! §3.3): one `key=value` per line, keys sorted, every known key written with `None`
//! when unset except `backup_name` and `snapshots_info`, timestamps as Python's
//! `str(datetime)` with an offset, and some values as Python literals.
//!
//! Reading accepts both catalogue generations and keeps keys it does not know (a
//! newer Barman's), writing them back unchanged, so that our rewrites never lose
//! another tool's data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, FixedOffset};

use super::pyliteral::{str_repr, PyValue};

/// A backup's status (BARMAN.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackupStatus {
    /// Only in memory, before anything is recorded.
    Empty,
    /// The start position is recorded; the copy is running (or died).
    Started,
    /// The copy is done; the WAL up to the end is not archived yet.
    WaitingForWals,
    /// Complete and usable.
    Done,
    /// Failed; `error` says why.
    Failed,
    /// Being copied from another Barman (passive node).
    Syncing,
}

impl BackupStatus {
    /// The word in `backup.info`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Empty => "EMPTY",
            BackupStatus::Started => "STARTED",
            BackupStatus::WaitingForWals => "WAITING_FOR_WALS",
            BackupStatus::Done => "DONE",
            BackupStatus::Failed => "FAILED",
            BackupStatus::Syncing => "SYNCING",
        }
    }

    /// Parse the word of `backup.info`.
    pub fn parse(text: &str) -> Option<BackupStatus> {
        Some(match text {
            "EMPTY" => BackupStatus::Empty,
            "STARTED" => BackupStatus::Started,
            "WAITING_FOR_WALS" => BackupStatus::WaitingForWals,
            "DONE" => BackupStatus::Done,
            "FAILED" => BackupStatus::Failed,
            "SYNCING" => BackupStatus::Syncing,
            _ => return None,
        })
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tablespace of a backup: `(name, oid, location)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    /// The tablespace name.
    pub name: String,
    /// Its OID (the directory name under `pg_tblspc`).
    pub oid: u32,
    /// Its location on the PostgreSQL server.
    pub location: String,
}

/// The keys Barman 3.17 writes, in the order they appear (sorted).
pub const KNOWN_KEYS: &[&str] = &[
    "backup_label",
    "backup_name",
    "begin_offset",
    "begin_time",
    "begin_wal",
    "begin_xlog",
    "children_backup_ids",
    "cluster_size",
    "compression",
    "config_file",
    "copy_stats",
    "data_checksums",
    "deduplicated_size",
    "encryption",
    "end_offset",
    "end_time",
    "end_wal",
    "end_xlog",
    "error",
    "hba_file",
    "ident_file",
    "included_files",
    "mode",
    "parent_backup_id",
    "pgdata",
    "server_name",
    "size",
    "snapshots_info",
    "status",
    "summarize_wal",
    "systemid",
    "tablespaces",
    "timeline",
    "version",
    "xlog_segment_size",
];

/// The metadata of one backup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackupInfo {
    /// The backup id (`YYYYMMDDTHHMMSS`), from the file or directory name.
    pub backup_id: String,
    /// The content of the `backup_label` file.
    pub backup_label: Option<String>,
    /// A name given with `backup --name`.
    pub backup_name: Option<String>,
    /// Offset of the start LSN in its segment.
    pub begin_offset: Option<u64>,
    /// When the backup started.
    pub begin_time: Option<DateTime<FixedOffset>>,
    /// The segment holding the start LSN.
    pub begin_wal: Option<String>,
    /// The start LSN (`X/X`).
    pub begin_xlog: Option<String>,
    /// Incremental backups built on this one.
    pub children_backup_ids: Option<Vec<String>>,
    /// Sum of database sizes when the backup was taken.
    pub cluster_size: Option<u64>,
    /// Compression of the base backup files (`gzip`, `lz4`, `zstd`) or none.
    pub compression: Option<String>,
    /// PostgreSQL's `config_file`.
    pub config_file: Option<String>,
    /// Timings (`copy_time`, `total_time`, ...), a Python dict.
    pub copy_stats: Option<PyValue>,
    /// `on` or `off`.
    pub data_checksums: Option<String>,
    /// Bytes actually stored.
    pub deduplicated_size: Option<u64>,
    /// `gpg` or none.
    pub encryption: Option<String>,
    /// Offset of the end LSN in its segment.
    pub end_offset: Option<u64>,
    /// When the backup ended.
    pub end_time: Option<DateTime<FixedOffset>>,
    /// The segment holding the end LSN.
    pub end_wal: Option<String>,
    /// The end LSN (`X/X`).
    pub end_xlog: Option<String>,
    /// Why the backup failed.
    pub error: Option<String>,
    /// PostgreSQL's `hba_file`.
    pub hba_file: Option<String>,
    /// PostgreSQL's `ident_file`.
    pub ident_file: Option<String>,
    /// Files included by postgresql.conf.
    pub included_files: Option<Vec<String>>,
    /// `postgres`, `rsync-concurrent`, ...
    pub mode: Option<String>,
    /// The parent of an incremental backup.
    pub parent_backup_id: Option<String>,
    /// PostgreSQL's data directory.
    pub pgdata: Option<String>,
    /// The Barman server name.
    pub server_name: Option<String>,
    /// Bytes of the backup.
    pub size: Option<u64>,
    /// Cloud snapshot metadata (kept as is).
    pub snapshots_info: Option<PyValue>,
    /// The status.
    pub status: Option<BackupStatus>,
    /// PostgreSQL 17's `summarize_wal`.
    pub summarize_wal: Option<String>,
    /// The system identifier, as text.
    pub systemid: Option<String>,
    /// The tablespaces.
    pub tablespaces: Option<Vec<Tablespace>>,
    /// The start timeline.
    pub timeline: Option<u32>,
    /// `server_version_num`.
    pub version: Option<u32>,
    /// WAL segment size in bytes.
    pub xlog_segment_size: Option<u64>,
    /// Keys this version does not know, kept verbatim.
    pub unknown: BTreeMap<String, String>,
}

/// A `backup.info` that cannot be read: the file, the line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoError {
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InfoError {}

/// Python's `str(datetime)` for an aware datetime: `2026-11-22 02:02:35.723992+00:00`
/// (no fraction when the microseconds are zero).
pub fn python_datetime(t: &DateTime<FixedOffset>) -> String {
    let micros = t.timestamp_subsec_micros();
    let base = t.format("%Y-%m-%d %H:%M:%S");
    let offset = t.format("%:z");
    if micros == 0 {
        format!("{base}{offset}")
    } else {
        format!("{base}.{micros:06}{offset}")
    }
}

impl BackupInfo {
    /// Parse the text of a `backup.info` file.
    pub fn parse(path: &Path, backup_id: &str, text: &str) -> Result<BackupInfo, InfoError> {
        let mut info = BackupInfo {
            backup_id: backup_id.to_string(),
            ..BackupInfo::default()
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |why: String| InfoError {
                message: format!("{}, line {}: {why}", path.display(), index + 1),
            };
            let Some((key, value)) = line.split_once('=') else {
                return Err(fail(format!("'{line}' is not a key=value line")));
            };
            let (key, value) = (key.trim(), value.trim());
            info.set(key, value)
                .map_err(|why| fail(format!("invalid {key} '{value}': {why}")))?;
        }
        Ok(info)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let none = value == "None";
        let text = || (!none).then(|| value.to_string());
        let int = || -> Result<Option<u64>, String> {
            if none {
                return Ok(None);
            }
            value
                .parse()
                .map(Some)
                .map_err(|_| "not an integer".to_string())
        };
        let time = || -> Result<Option<DateTime<FixedOffset>>, String> {
            if none {
                return Ok(None);
            }
            super::parse_python_datetime(value)
                .map(Some)
                .ok_or_else(|| "not a timestamp".to_string())
        };
        let literal = || -> Result<Option<PyValue>, String> {
            match PyValue::parse(value)? {
                PyValue::None => Ok(None),
                v => Ok(Some(v)),
            }
        };
        match key {
            "backup_label" => {
                self.backup_label = match literal()? {
                    None => None,
                    Some(PyValue::Str(s)) => Some(s),
                    Some(_) => return Err("not a string literal".into()),
                }
            }
            "backup_name" => self.backup_name = text(),
            "begin_offset" => self.begin_offset = int()?,
            "begin_time" => self.begin_time = time()?,
            "begin_wal" => self.begin_wal = text(),
            "begin_xlog" => self.begin_xlog = text(),
            "children_backup_ids" => {
                self.children_backup_ids = text().map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
            }
            "cluster_size" => self.cluster_size = int()?,
            "compression" => self.compression = text(),
            "config_file" => self.config_file = text(),
            "copy_stats" => self.copy_stats = literal()?,
            "data_checksums" => self.data_checksums = text(),
            "deduplicated_size" => self.deduplicated_size = int()?,
            "encryption" => self.encryption = text(),
            "end_offset" => self.end_offset = int()?,
            "end_time" => self.end_time = time()?,
            "end_wal" => self.end_wal = text(),
            "end_xlog" => self.end_xlog = text(),
            "error" => self.error = text(),
            "hba_file" => self.hba_file = text(),
            "ident_file" => self.ident_file = text(),
            "included_files" => {
                self.included_files = match literal()? {
                    None => None,
                    Some(v) => Some(
                        v.items()
                            .ok_or("not a list")?
                            .iter()
                            .map(|i| {
                                i.as_str()
                                    .map(str::to_string)
                                    .ok_or("not a list of strings")
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                }
            }
            "mode" => self.mode = text(),
            "parent_backup_id" => self.parent_backup_id = text(),
            "pgdata" => self.pgdata = text(),
            "server_name" => self.server_name = text(),
            "size" => self.size = int()?,
            "snapshots_info" => self.snapshots_info = literal()?,
            "status" => {
                self.status = if none {
                    None
                } else {
                    Some(BackupStatus::parse(value).ok_or("not a backup status")?)
                }
            }
            "summarize_wal" => self.summarize_wal = text(),
            "systemid" => self.systemid = text(),
            "tablespaces" => {
                self.tablespaces = match literal()? {
                    None => None,
                    Some(v) => Some(parse_tablespaces(&v)?),
                }
            }
            "timeline" => self.timeline = int()?.map(|n| n as u32),
            "version" => self.version = int()?.map(|n| n as u32),
            "xlog_segment_size" => self.xlog_segment_size = int()?,
            other => {
                self.unknown.insert(other.to_string(), value.to_string());
            }
        }
        Ok(())
    }

    /// The file text, as Barman 3.17 writes it.
    pub fn to_text(&self) -> String {
        let mut lines: BTreeMap<String, String> = BTreeMap::new();
        let mut put = |key: &str, value: Option<String>| {
            lines.insert(key.to_string(), value.unwrap_or_else(|| "None".into()));
        };
        put("backup_label", self.backup_label.as_deref().map(str_repr));
        if let Some(name) = &self.backup_name {
            put("backup_name", Some(name.clone()));
        }
        put("begin_offset", self.begin_offset.map(|n| n.to_string()));
        put("begin_time", self.begin_time.as_ref().map(python_datetime));
        put("begin_wal", self.begin_wal.clone());
        put("begin_xlog", self.begin_xlog.clone());
        put(
            "children_backup_ids",
            self.children_backup_ids
                .as_ref()
                .filter(|ids| !ids.is_empty())
                .map(|ids| ids.join(",")),
        );
        put("cluster_size", self.cluster_size.map(|n| n.to_string()));
        put("compression", self.compression.clone());
        put("config_file", self.config_file.clone());
        put("copy_stats", self.copy_stats.as_ref().map(PyValue::repr));
        put("data_checksums", self.data_checksums.clone());
        put(
            "deduplicated_size",
            self.deduplicated_size.map(|n| n.to_string()),
        );
        put("encryption", self.encryption.clone());
        put("end_offset", self.end_offset.map(|n| n.to_string()));
        put("end_time", self.end_time.as_ref().map(python_datetime));
        put("end_wal", self.end_wal.clone());
        put("end_xlog", self.end_xlog.clone());
        put("error", self.error.clone());
        put("hba_file", self.hba_file.clone());
        put("ident_file", self.ident_file.clone());
        put(
            "included_files",
            self.included_files.as_ref().map(|files| {
                PyValue::List(files.iter().cloned().map(PyValue::Str).collect()).repr()
            }),
        );
        put("mode", self.mode.clone());
        put("parent_backup_id", self.parent_backup_id.clone());
        put("pgdata", self.pgdata.clone());
        put("server_name", self.server_name.clone());
        put("size", self.size.map(|n| n.to_string()));
        if let Some(snapshots) = &self.snapshots_info {
            put("snapshots_info", Some(snapshots.repr()));
        }
        put("status", self.status.map(|s| s.as_str().to_string()));
        put("summarize_wal", self.summarize_wal.clone());
        put("systemid", self.systemid.clone());
        put(
            "tablespaces",
            self.tablespaces.as_ref().map(|list| {
                PyValue::List(
                    list.iter()
                        .map(|t| {
                            PyValue::Tuple(vec![
                                PyValue::Str(t.name.clone()),
                                PyValue::Int(t.oid.into()),
                                PyValue::Str(t.location.clone()),
                            ])
                        })
                        .collect(),
                )
                .repr()
            }),
        );
        put("timeline", self.timeline.map(|n| n.to_string()));
        put("version", self.version.map(|n| n.to_string()));
        put(
            "xlog_segment_size",
            self.xlog_segment_size.map(|n| n.to_string()),
        );
        for (key, value) in &self.unknown {
            lines.insert(key.clone(), value.clone());
        }
        let mut out = String::new();
        for (key, value) in lines {
            out.push_str(&key);
            out.push('=');
            out.push_str(&value);
            out.push('\n');
        }
        out
    }
}

impl BackupInfo {
    /// The metadata as JSON, as Barman's `diagnose` shows it: typed values, `null`
    /// for unset keys, tablespaces as lists, timestamps in ISO 8601.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        let mut map = serde_json::Map::new();
        for line in self.to_text().lines() {
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            let value = match key {
                "begin_time" => json!(self.begin_time.map(|t| t.to_rfc3339())),
                "end_time" => json!(self.end_time.map(|t| t.to_rfc3339())),
                "backup_label" => json!(self.backup_label),
                "copy_stats" => self
                    .copy_stats
                    .as_ref()
                    .map_or(Value::Null, PyValue::to_json),
                "snapshots_info" => self
                    .snapshots_info
                    .as_ref()
                    .map_or(Value::Null, PyValue::to_json),
                "included_files" => json!(self.included_files),
                "children_backup_ids" => json!(self.children_backup_ids),
                "tablespaces" => json!(self.tablespaces.as_ref().map(|list| list
                    .iter()
                    .map(|t| json!([t.name, t.oid, t.location]))
                    .collect::<Vec<_>>())),
                _ if raw == "None" => Value::Null,
                _ => raw.parse::<i64>().map_or_else(|_| json!(raw), Value::from),
            };
            map.insert(key.to_string(), value);
        }
        map.insert("backup_id".into(), json!(self.backup_id));
        Value::Object(map)
    }
}

fn parse_tablespaces(value: &PyValue) -> Result<Vec<Tablespace>, String> {
    let items = value.items().ok_or("not a list")?;
    items
        .iter()
        .map(|item| {
            let fields = item.items().ok_or("not a list of (name, oid, location)")?;
            match fields {
                [PyValue::Str(name), PyValue::Int(oid), PyValue::Str(location)] => Ok(Tablespace {
                    name: name.clone(),
                    oid: u32::try_from(*oid).map_err(|_| "tablespace oid out of range")?,
                    location: location.clone(),
                }),
                _ => Err("not a list of (name, oid, location)".to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real example of BARMAN.md §3.3 (Barman 3.17, observed).
    const OBSERVED: &str = "backup_label='START WAL LOCATION: 0/A000028 (file 00000001000000000000000A)\\nCHECKPOINT LOCATION: 0/A000060\\nBACKUP METHOD: streamed\\nBACKUP FROM: primary\\nSTART TIME: 2026-11-22 02:02:40 UTC\\nLABEL: pg_basebackup base backup\\nSTART TIMELINE: 1\\n'
backup_name=first-backup
begin_offset=40
begin_time=2026-11-22 02:02:35.723992+00:00
begin_wal=00000001000000000000000A
begin_xlog=0/A000028
children_backup_ids=None
cluster_size=102214189
compression=None
config_file=/srv/pg/data/postgresql.conf
copy_stats={'copy_time': 5.79283, 'total_time': 5.79283}
data_checksums=on
deduplicated_size=102036932
encryption=None
end_offset=0
end_time=2026-11-22 02:02:41.526012+00:00
end_wal=00000001000000000000000A
end_xlog=0/B000000
error=None
hba_file=/srv/pg/data/pg_hba.conf
ident_file=/srv/pg/data/pg_ident.conf
included_files=None
mode=postgres
parent_backup_id=None
pgdata=/srv/pg/data
server_name=pg
size=102036932
status=DONE
summarize_wal=None
systemid=7710809247697520226
tablespaces=None
timeline=1
version=150020
xlog_segment_size=16777216
";

    #[test]
    fn barmans_file_reads_and_writes_back_byte_for_byte() {
        let info = BackupInfo::parse(Path::new("x"), "20261122T020235", OBSERVED).unwrap();
        assert_eq!(info.status, Some(BackupStatus::Done));
        assert_eq!(info.begin_offset, Some(40));
        assert_eq!(info.version, Some(150020));
        assert!(info
            .backup_label
            .as_deref()
            .unwrap()
            .starts_with("START WAL LOCATION: 0/A000028"));
        assert!(info
            .backup_label
            .as_deref()
            .unwrap()
            .contains("\nCHECKPOINT"));
        assert_eq!(
            info.copy_stats
                .as_ref()
                .unwrap()
                .get("copy_time")
                .unwrap()
                .as_f64(),
            Some(5.79283)
        );
        assert_eq!(info.to_text(), OBSERVED);
    }

    #[test]
    fn tablespaces_and_unknown_keys_survive_a_rewrite() {
        let text = OBSERVED
            .replace(
                "tablespaces=None",
                "tablespaces=[('tbs1', 16412, '/srv/pg/tbs1')]",
            )
            .replace("version=150020\n", "version=150020\nwarehouse_field=x\n");
        let info = BackupInfo::parse(Path::new("x"), "id", &text).unwrap();
        assert_eq!(
            info.tablespaces.as_ref().unwrap()[0],
            Tablespace {
                name: "tbs1".into(),
                oid: 16412,
                location: "/srv/pg/tbs1".into()
            }
        );
        assert_eq!(info.unknown["warehouse_field"], "x");
        assert_eq!(info.to_text(), text);
    }

    #[test]
    fn unset_name_and_snapshots_are_omitted_and_other_keys_are_none() {
        let info = BackupInfo {
            backup_id: "20260101T000000".into(),
            status: Some(BackupStatus::Started),
            ..BackupInfo::default()
        };
        let text = info.to_text();
        assert!(!text.contains("backup_name="));
        assert!(!text.contains("snapshots_info="));
        assert!(text.contains("status=STARTED\n"));
        assert!(text.contains("error=None\n"));
        assert_eq!(text.lines().count(), KNOWN_KEYS.len() - 2);
        let keys: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn damaged_files_are_errors_with_file_and_line() {
        let e = BackupInfo::parse(
            Path::new("/b/meta/x-backup.info"),
            "x",
            "status=DONE\nbegin_offset=forty\n",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "/b/meta/x-backup.info, line 2: invalid begin_offset 'forty': not an integer"
        );
        assert!(BackupInfo::parse(Path::new("f"), "x", "status=BROKEN\n").is_err());
        assert!(BackupInfo::parse(Path::new("f"), "x", "tablespaces=[('a', 'b')]\n").is_err());
        assert!(BackupInfo::parse(Path::new("f"), "x", "just text\n").is_err());
        assert!(BackupInfo::parse(Path::new("f"), "x", "backup_label='unterminated\n").is_err());
    }

    #[test]
    fn timestamps_print_like_python() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T02:02:35+01:00").unwrap();
        assert_eq!(python_datetime(&t), "2026-11-22 02:02:35+01:00");
        let t = DateTime::parse_from_rfc3339("2026-11-22T02:02:35.000100Z").unwrap();
        assert_eq!(python_datetime(&t), "2026-11-22 02:02:35.000100+00:00");
    }
}
