//! A scripted fake PostgreSQL server (15, or 14 with the older stream), for what a real
//! one never sends: hostile tar entries, a manifest that lies about a file.
//!
//! It listens on 127.0.0.1 (any port), one thread per connection, and speaks just enough of
//! the v3 protocol (PROTOCOL.md §1, §3.3, §3.5) for `barman backup`: an SSLRequest is
//! refused (`N`), any StartupMessage is accepted without a password (trust), then
//! ParameterStatus (`server_version` 15.4 or 14.10), BackendKeyData, ReadyForQuery. Simple
//! queries are answered from a table of the statements `src/backup/executor.rs` sends
//! (precheck, metadata, position, `pg_switch_wal()`, restore point, the archiver's
//! progress) and the replication commands `IDENTIFY_SYSTEM` and `BASE_BACKUP`;
//! BASE_BACKUP gets the 15+ single-COPY stream (`n`, `d`, `p`, `m` CopyData), or for 14
//! one plain COPY for the archive (without the end-of-archive marker, which 13/14 do not
//! send) and one for the manifest, carrying the [`Script`]'s archive and manifest. Any other
//! statement gets an ErrorResponse naming it, and is recorded in [`FakeServer::unknown`]
//! so that a test can tell a fake that was asked something new from a real failure.
//!
//! A client that hangs up mid-stream (as `barman backup` does when it refuses an entry)
//! only ends that connection's thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use barman::backup::manifest::{to_hex, ChecksumAlgorithm, Checksummer};
use sha2::Digest;

/// The system identifier the fake reports everywhere.
pub const SYSTEM_ID: u64 = 7_400_000_000_000_000_042;

/// The `backup_label` a real PostgreSQL 15 would put first in `base.tar`.
pub const BACKUP_LABEL: &[u8] = b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
START TIME: 2026-01-01 00:00:00 UTC\nLABEL: barman_backup\nSTART TIMELINE: 1\n";

/// What the fake answers BASE_BACKUP with.
#[derive(Debug, Clone)]
pub struct Script {
    /// The bytes of `base.tar` (the data directory), sent as they are.
    pub base_tar: Vec<u8>,
    /// The backup manifest, sent after the archive.
    pub manifest: Vec<u8>,
    /// The major version the fake claims: 15, or 14 for the 13/14 stream.
    pub major: u32,
}

/// A running fake server; stopped on drop.
pub struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
    unknown: Arc<Mutex<Vec<String>>>,
    queries: Arc<Mutex<Vec<String>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Start listening; every BASE_BACKUP gets `script`.
    pub fn start(script: Script) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
        let port = listener.local_addr().expect("fake server address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let unknown = Arc::new(Mutex::new(Vec::new()));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let acceptor = {
            let (stop, unknown, queries) = (stop.clone(), unknown.clone(), queries.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let session = Session {
                        stream,
                        script: script.clone(),
                        unknown: unknown.clone(),
                        queries: queries.clone(),
                    };
                    std::thread::spawn(move || {
                        // A client hanging up is not the fake's problem.
                        let _ = session.run();
                    });
                }
            })
        };
        FakeServer {
            port,
            stop,
            unknown,
            queries,
            acceptor: Some(acceptor),
        }
    }

    /// A conninfo reaching the fake (no TLS, no password).
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=barman dbname=postgres sslmode=disable connect_timeout=10",
            self.port
        )
    }

    /// The statements the fake could not answer.
    pub fn unknown(&self) -> Vec<String> {
        self.unknown.lock().unwrap().clone()
    }

    /// Every statement received, in order.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor up so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

struct Session {
    stream: TcpStream,
    script: Arc<Script>,
    unknown: Arc<Mutex<Vec<String>>>,
    queries: Arc<Mutex<Vec<String>>>,
}

/// One backend message: tag, then the body with its length in front.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 5);
    m.push(tag);
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// RowDescription + DataRows + CommandComplete, every column text.
fn result_set(columns: &[&str], rows: &[Vec<Option<&str>>], tag: &str) -> Vec<u8> {
    let mut desc = (columns.len() as u16).to_be_bytes().to_vec();
    for c in columns {
        cstr(&mut desc, c);
        desc.extend_from_slice(&0u32.to_be_bytes()); // table
        desc.extend_from_slice(&0u16.to_be_bytes()); // attnum
        desc.extend_from_slice(&25u32.to_be_bytes()); // text
        desc.extend_from_slice(&(-1i16).to_be_bytes());
        desc.extend_from_slice(&(-1i32).to_be_bytes());
        desc.extend_from_slice(&0u16.to_be_bytes());
    }
    let mut out = message(b'T', &desc);
    for row in rows {
        let mut body = (row.len() as u16).to_be_bytes().to_vec();
        for value in row {
            match value {
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    body.extend_from_slice(v.as_bytes());
                }
            }
        }
        out.extend(message(b'D', &body));
    }
    let mut complete = Vec::new();
    cstr(&mut complete, tag);
    out.extend(message(b'C', &complete));
    out
}

fn ready() -> Vec<u8> {
    message(b'Z', b"I")
}

fn error(text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', "XX000"),
        (b'M', text),
    ] {
        body.push(field);
        cstr(&mut body, value);
    }
    body.push(0);
    message(b'E', &body)
}

fn copy_data(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend_from_slice(payload);
    message(b'd', &body)
}

impl Session {
    fn run(mut self) -> io::Result<()> {
        // Startup: SSLRequest / GSSENCRequest are refused, then the StartupMessage.
        loop {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len)?;
            let len = u32::from_be_bytes(len) as usize;
            if !(8..=10_000).contains(&len) {
                return Err(io::Error::other("bad startup length"));
            }
            let mut body = vec![0u8; len - 4];
            self.stream.read_exact(&mut body)?;
            match u32::from_be_bytes([body[0], body[1], body[2], body[3]]) {
                80877103 | 80877104 => self.stream.write_all(b"N")?,
                196608 => break,
                _ => return Err(io::Error::other("unknown startup code")),
            }
        }
        let mut hello = message(b'R', &0u32.to_be_bytes());
        for (name, value) in [
            (
                "server_version",
                if self.script.major >= 15 {
                    "15.4"
                } else {
                    "14.10"
                },
            ),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
        ] {
            let mut body = Vec::new();
            cstr(&mut body, name);
            cstr(&mut body, value);
            hello.extend(message(b'S', &body));
        }
        hello.extend(message(b'K', &[0, 0, 0, 42, 0, 0, 0, 7]));
        hello.extend(ready());
        self.stream.write_all(&hello)?;
        loop {
            let mut tag = [0u8; 1];
            if self.stream.read_exact(&mut tag).is_err() {
                return Ok(());
            }
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len)?;
            let len = (u32::from_be_bytes(len) as usize).saturating_sub(4);
            let mut body = vec![0u8; len];
            self.stream.read_exact(&mut body)?;
            match tag[0] {
                b'X' => return Ok(()),
                b'Q' => {
                    let sql = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body))
                        .into_owned();
                    self.queries.lock().unwrap().push(sql.clone());
                    let reply = self.answer(&sql);
                    self.stream.write_all(&reply)?;
                    self.stream.flush()?;
                }
                other => {
                    let text = format!(
                        "the fake server only knows simple queries, not message {:?}",
                        other as char
                    );
                    self.unknown.lock().unwrap().push(text.clone());
                    self.stream.write_all(&error(&text))?;
                    let _ = self.stream.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
        }
    }

    fn answer(&self, sql: &str) -> Vec<u8> {
        let sysid = SYSTEM_ID.to_string();
        let mut out = if sql.starts_with("IDENTIFY_SYSTEM") {
            result_set(
                &["systemid", "timeline", "xlogpos", "dbname"],
                &[vec![Some(&sysid), Some("1"), Some("0/3000000"), None]],
                "IDENTIFY_SYSTEM",
            )
        } else if sql.starts_with("BASE_BACKUP") {
            self.base_backup()
        } else if sql.starts_with("SELECT current_setting('server_version_num')") {
            result_set(
                &["a", "b", "c", "d"],
                &[vec![
                    Some(if self.script.major >= 15 {
                        "150004"
                    } else {
                        "140010"
                    }),
                    Some("f"),
                    Some("replica"),
                    Some(&sysid),
                ]],
                "SELECT 1",
            )
        } else if sql.starts_with("SELECT current_setting('data_directory')") {
            result_set(
                &["a", "b", "c", "d", "e", "f", "g", "h"],
                &[vec![
                    Some("/srv/fake/data"),
                    Some("16777216"),
                    Some("/srv/fake/data/postgresql.conf"),
                    Some("/srv/fake/data/pg_hba.conf"),
                    Some("/srv/fake/data/pg_ident.conf"),
                    Some("off"),
                    None,
                    Some("30000000"),
                ]],
                "SELECT 1",
            )
        } else if sql.starts_with("SELECT DISTINCT sourcefile") {
            result_set(&["included_file"], &[], "SELECT 0")
        } else if sql.starts_with("SELECT spcname, oid, pg_tablespace_location") {
            result_set(
                &["spcname", "oid", "pg_tablespace_location"],
                &[],
                "SELECT 0",
            )
        } else if sql.starts_with("SELECT location, (pg_walfile_name_offset(location)).*") {
            result_set(
                &["location", "file_name", "file_offset"],
                &[vec![
                    Some("0/2000028"),
                    Some("000000010000000000000002"),
                    Some("40"),
                ]],
                "SELECT 1",
            )
        } else if sql.starts_with("SELECT current_setting('archive_mode'), last_archived_wal") {
            // The backup's end segment (0/2000100 is in segment 2) is archived.
            result_set(
                &[
                    "archive_mode",
                    "last_archived_wal",
                    "last_failed_wal",
                    "last_failed_time",
                ],
                &[vec![
                    Some("on"),
                    Some("000000010000000000000002"),
                    None,
                    None,
                ]],
                "SELECT 1",
            )
        } else if sql.starts_with("SELECT pg_switch_wal()") {
            result_set(&["pg_switch_wal"], &[vec![Some("0/2000200")]], "SELECT 1")
        } else if sql.starts_with("SELECT pg_create_restore_point(") {
            result_set(
                &["pg_create_restore_point"],
                &[vec![Some("0/3000090")]],
                "SELECT 1",
            )
        } else {
            self.unknown.lock().unwrap().push(sql.to_string());
            error(&format!("the fake server does not know {sql:?}"))
        };
        out.extend(ready());
        out
    }

    /// Start position, tablespace list, the archive and the manifest (PROTOCOL.md §3.4 for
    /// 14, §3.5 for 15), end position (§3.3).
    fn base_backup(&self) -> Vec<u8> {
        let script = &self.script;
        let mut out = result_set(
            &["recptr", "tli"],
            &[vec![Some("0/2000028"), Some("1")]],
            "SELECT",
        );
        let size_kb = (script.base_tar.len() / 1024 + 1).to_string();
        out.extend(result_set(
            &["spcoid", "spclocation", "size"],
            &[vec![None, None, Some(&size_kb)]],
            "SELECT",
        ));
        if script.major < 15 {
            // 13/14: a plain COPY per archive, no end-of-archive marker; the manifest in its own.
            let archive = script
                .base_tar
                .strip_suffix(&[0u8; 1024])
                .unwrap_or(&script.base_tar);
            for body in [archive, &script.manifest] {
                out.extend(message(b'H', &[0, 0, 0]));
                for piece in body.chunks(3000) {
                    out.extend(message(b'd', piece));
                }
                out.extend(message(b'c', b""));
            }
        } else {
            out.extend(self.typed_copy());
        }
        out.extend(result_set(
            &["recptr", "tli"],
            &[vec![Some("0/2000100"), Some("1")]],
            "SELECT",
        ));
        let mut complete = Vec::new();
        cstr(&mut complete, "BASE_BACKUP");
        out.extend(message(b'C', &complete));
        out
    }

    /// 15+: one COPY with the archive and the manifest in typed CopyData.
    fn typed_copy(&self) -> Vec<u8> {
        let script = &self.script;
        let mut out = message(b'H', &[0, 0, 0]);
        out.extend(copy_data(b'n', b"base.tar\0\0"));
        for piece in script.base_tar.chunks(3000) {
            out.extend(copy_data(b'd', piece));
        }
        out.extend(copy_data(
            b'p',
            &(script.base_tar.len() as u64).to_be_bytes(),
        ));
        out.extend(copy_data(b'm', b""));
        for piece in script.manifest.chunks(3000) {
            out.extend(copy_data(b'd', piece));
        }
        out.extend(message(b'c', b""));
        out
    }
}

/// A raw ustar entry with any name and link (the `tar` crate's builder refuses hostile
/// ones): header, data, padding to 512.
pub fn tar_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "name too long for ustar: {name}"
    );
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode: &[u8] = if kind == b'5' {
        b"0000700\0"
    } else {
        b"0000600\0"
    };
    h[100..108].copy_from_slice(mode);
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"15000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A regular file entry.
pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
    tar_entry(name, b'0', "", data)
}

/// A directory entry.
pub fn dir(name: &str) -> Vec<u8> {
    tar_entry(name, b'5', "", b"")
}

/// A symbolic link entry.
pub fn symlink(name: &str, target: &str) -> Vec<u8> {
    tar_entry(name, b'2', target, b"")
}

/// Entries followed by the end-of-archive marker.
pub fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The entries of a small, honest data directory (backup_label first, pg_control last).
pub fn honest_entries() -> Vec<Vec<u8>> {
    vec![
        file("backup_label", BACKUP_LABEL),
        file("PG_VERSION", b"15\n"),
        dir("base/"),
        dir("base/1/"),
        file("base/1/1259", &[7u8; 8192]),
        dir("global/"),
        file("global/pg_control", &[1u8; 8192]),
    ]
}

/// The files of [`honest_entries`], for the manifest.
pub fn honest_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("backup_label", BACKUP_LABEL.to_vec()),
        ("PG_VERSION", b"15\n".to_vec()),
        ("base/1/1259", vec![7u8; 8192]),
        ("global/pg_control", vec![1u8; 8192]),
    ]
}

/// A version 1 backup manifest of `files` with CRC-32C checksums, as PostgreSQL 15 writes
/// it (its own SHA-256 checksum last). `lie_about` gets the checksum of other bytes.
pub fn manifest(files: &[(&str, Vec<u8>)], lie_about: Option<&str>) -> Vec<u8> {
    let mut text = String::from("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n");
    let lines: Vec<String> = files
        .iter()
        .map(|(path, data)| {
            let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
            c.update(data);
            if lie_about == Some(*path) {
                c.update(b"not what was sent");
            }
            format!(
                "{{ \"Path\": \"{path}\", \"Size\": {}, \"Last-Modified\": \"2026-01-01 00:00:00 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"{}\" }}",
                data.len(),
                to_hex(&c.finish())
            )
        })
        .collect();
    text.push_str(&lines.join(",\n"));
    text.push_str("\n],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n");
    let sum = to_hex(&sha2::Sha256::digest(text.as_bytes()));
    text.push_str(&format!("\"Manifest-Checksum\": \"{sum}\"}}\n"));
    text.into_bytes()
}
