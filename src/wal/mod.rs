//! The WAL side of the catalogue: compression of archived files and finding a WAL
//! file wherever it is (archive, incoming, streaming).

pub mod archiver;
pub mod compression;
pub mod receiver;

use std::path::{Path, PathBuf};

use crate::catalog::remove::archived_path;
use crate::config::ServerConfig;

/// Where a WAL file may be, in the order `get-wal` looks (Barman's
/// `get_wal_possible_paths`): the archive, `incoming/`, `streaming/`, then with
/// `partial` the `.partial` files, and the archive again (a file may move there while
/// we look).
pub fn possible_paths(server: &ServerConfig, name: &str, partial: bool) -> Vec<PathBuf> {
    let wals = server.path("wals_directory").unwrap_or(Path::new("."));
    let archived = archived_path(wals, name);
    let incoming = server
        .path("incoming_wals_directory")
        .unwrap_or(Path::new("."))
        .join(name);
    let streaming = server
        .path("streaming_wals_directory")
        .unwrap_or(Path::new("."))
        .join(name);
    let with_partial = |p: &Path| {
        let mut s = p.as_os_str().to_os_string();
        s.push(".partial");
        PathBuf::from(s)
    };
    let mut paths = vec![archived.clone(), incoming.clone(), streaming.clone()];
    if partial {
        paths.push(with_partial(&streaming));
        paths.push(streaming);
        paths.push(with_partial(&archived));
        paths.push(with_partial(&incoming));
    }
    paths.push(archived);
    paths
}

/// The timeline of a WAL file name: its first 8 hexadecimal digits, for segments,
/// `.partial` and backup history files, and history files (`00000002.history`) alike.
pub fn timeline_of(name: &str) -> Option<u32> {
    let digits = name.get(..8)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// The WAL segment names after `name` (same timeline), for `get-wal --peek`: the next
/// segment numbers, and across a log boundary when a power-of-two segment number is
/// missing (Barman's rule, which works for every segment size).
pub fn next_segment_name(name: &str) -> Option<String> {
    let tli = timeline_of(name)?;
    let log = u32::from_str_radix(name.get(8..16)?, 16).ok()?;
    let seg = u32::from_str_radix(name.get(16..24)?, 16).ok()?;
    let seg = seg.checked_add(1)?;
    Some(format!("{tli:08X}{log:08X}{seg:08X}"))
}

/// The first segment of the next log after `name`.
pub fn next_log_first_segment(name: &str) -> Option<String> {
    let tli = timeline_of(name)?;
    let log = u32::from_str_radix(name.get(8..16)?, 16).ok()?;
    Some(format!("{tli:08X}{:08X}{:08X}", log.checked_add(1)?, 0))
}
