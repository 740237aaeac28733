//! The WAL catalogue `xlog.db` (BARMAN.md §3.4): one archived file per line,
//! `name \t size \t mtime \t compression \t encryption`, in archive order.
//! Barman 3.13+ keeps it as `<xlogdb_directory>/<server>-xlog.db`, older versions as
//! `<wals_directory>/xlog.db`; readers accept 3, 4 or 5 columns.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::ServerConfig;
use crate::output::json::python_float;

/// One line of `xlog.db`.
#[derive(Debug, Clone, PartialEq)]
pub struct XlogEntry {
    /// The file name: a segment, `.history`, `.backup` or `.partial`.
    pub name: String,
    /// Bytes stored (after compression).
    pub size: u64,
    /// Modification time of the source file, seconds since the epoch.
    pub time: f64,
    /// The compression, if any.
    pub compression: Option<String>,
    /// The encryption, if any.
    pub encryption: Option<String>,
}

impl XlogEntry {
    /// Parse one line.
    pub fn parse(line: &str) -> Result<XlogEntry, String> {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, size, time, compression, encryption) = match parts.as_slice() {
            [n, s, t] => (*n, *s, *t, None, None),
            [n, s, t, c] => (*n, *s, *t, Some(*c), None),
            [n, s, t, c, e] => (*n, *s, *t, Some(*c), Some(*e)),
            _ => return Err(format!("cannot parse line: {line:?}")),
        };
        let opt = |v: Option<&str>| v.filter(|v| *v != "None").map(str::to_string);
        Ok(XlogEntry {
            name: name.to_string(),
            size: size
                .parse()
                .map_err(|_| format!("bad size {size:?} in line {line:?}"))?,
            time: time
                .parse()
                .map_err(|_| format!("bad time {time:?} in line {line:?}"))?,
            compression: opt(compression),
            encryption: opt(encryption),
        })
    }

    /// The line as Barman 3.13+ writes it (with its newline).
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\n",
            self.name,
            self.size,
            python_float(self.time),
            self.compression.as_deref().unwrap_or("None"),
            self.encryption.as_deref().unwrap_or("None")
        )
    }

    /// The line for the file `db`: Barman 3.13+'s five columns, or for the older
    /// `wals/xlog.db` the four that Barman < 3.13 writes and can parse (its
    /// `from_xlogdb_line` rejects a fifth column, so a catalogue still shared with such a
    /// Barman must not get one).
    pub fn line_for(&self, db: &Path) -> String {
        if is_old_generation(db) && self.encryption.is_none() {
            format!(
                "{}\t{}\t{}\t{}\n",
                self.name,
                self.size,
                python_float(self.time),
                self.compression.as_deref().unwrap_or("None")
            )
        } else {
            self.to_line()
        }
    }

    /// Whether this is a timeline history file.
    pub fn is_history(&self) -> bool {
        self.name.ends_with(".history")
    }

    /// Whether this is a plain WAL segment (24 hex digits).
    pub fn is_segment(&self) -> bool {
        self.name.len() == 24 && super::is_wal_file_name(&self.name)
    }
}

/// Where a server's `xlog.db` is: `<xlogdb_directory>/<server>-xlog.db`, or the
/// older `<wals_directory>/xlog.db` when only that one exists.
pub fn path(server: &ServerConfig) -> PathBuf {
    let dir = server
        .path("xlogdb_directory")
        .or_else(|| server.path("wals_directory"))
        .unwrap_or(Path::new("."));
    let current = dir.join(format!("{}-xlog.db", server.name));
    if !current.exists() {
        if let Some(wals) = server.path("wals_directory") {
            let old = wals.join("xlog.db");
            if old.exists() {
                return old;
            }
        }
    }
    current
}

/// The archiver's per-segment summaries beside `xlog.db` `db`: `<db name>.summaries`,
/// one `name \t summary` line per archived segment. Its name starts with the xlog.db
/// file name, so Barman's own `rebuild-xlogdb` ignores it.
pub fn summaries_path_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".summaries");
    db.with_file_name(name)
}

/// [`summaries_path_for`] the server's current `xlog.db`.
pub fn summaries_path(server: &ServerConfig) -> PathBuf {
    summaries_path_for(&path(server))
}

/// The `(name, summary)` lines of a summaries file's bytes, in file order. A line that is
/// not UTF-8 or has no name (torn by a crash, say) is skipped: the segment is then
/// summarised on the spot by whoever needs it.
pub fn summary_lines(bytes: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    bytes.split(|&b| b == b'\n').filter_map(summary_line)
}

fn summary_line(line: &[u8]) -> Option<(&str, &str)> {
    std::str::from_utf8(line).ok()?.split_once('\t')
}

/// Rewrite the summaries files `from` (in order; missing ones count as empty) as the one
/// file `to`, with only the names `keep` accepts, each by its last line that parses (the
/// one readers use); other lines go. The caller holds the xlogdb lock, under which the
/// archiver appends. Sources other than `to` are removed once `to` is written. Returns how
/// many lines were dropped; nothing is written when nothing would change.
pub fn prune_summaries(from: &[PathBuf], to: &Path, keep: impl Fn(&str) -> bool) -> Result<usize> {
    let mut texts = Vec::new();
    for path in from {
        match fs::read(path) {
            Ok(bytes) => texts.push((path, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        }
    }
    let mut total = 0;
    let mut lines = Vec::new();
    for line in texts
        .iter()
        .flat_map(|(_, bytes)| bytes.split(|&b| b == b'\n'))
        .filter(|line| !line.is_empty())
    {
        total += 1;
        lines.extend(summary_line(line).filter(|(name, text)| {
            keep(name) && barman_protocol::wal::SegmentSummary::parse_line(text).is_ok()
        }));
    }
    let last: std::collections::HashMap<&str, usize> = lines
        .iter()
        .enumerate()
        .map(|(index, (name, _))| (*name, index))
        .collect();
    let mut kept = String::new();
    let mut count = 0;
    for (index, (name, text)) in lines.iter().enumerate() {
        if last[name] == index {
            kept.push_str(&format!("{name}\t{text}\n"));
            count += 1;
        }
    }
    let dropped = total - count;
    let moved = texts.iter().any(|(path, _)| path.as_path() != to);
    if moved || dropped > 0 {
        crate::fsutil::write_durably(to, kept.as_bytes())?;
    }
    for (path, _) in texts.iter().filter(|(path, _)| path.as_path() != to) {
        fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::fsync_dir(dir)?;
        }
    }
    Ok(dropped)
}

/// [`prune_summaries`] for WAL removal and `rebuild-xlogdb`, where a failure must not stop
/// the work: a line of a removed file is never read, and a missing one only makes restore
/// read that segment itself. So a failure is a warning that says what to do.
pub fn prune_summaries_or_warn(
    server: &ServerConfig,
    from: &[PathBuf],
    to: &Path,
    keep: impl Fn(&str) -> bool,
) {
    if let Err(e) = prune_summaries(from, to, keep) {
        log::warn!(
            "could not prune the WAL summaries of server '{}' ({}): {e:#}; restore reads the \
             segments themselves meanwhile; fix the file's permissions or free space, and the \
             next WAL removal or 'barman rebuild-xlogdb {}' prunes it",
            server.name,
            to.display(),
            server.name
        );
    }
}

/// Whether `db` is the `xlog.db` of Barman < 3.13 (not `<server>-xlog.db`).
fn is_old_generation(db: &Path) -> bool {
    db.file_name().is_some_and(|n| n == "xlog.db")
}

/// Read every entry of a server's `xlog.db` (none when it does not exist yet).
pub fn read(server: &ServerConfig) -> Result<Vec<XlogEntry>> {
    read_file(&path(server))
}

/// Read every entry of an `xlog.db` file.
pub fn read_file(path: &Path) -> Result<Vec<XlogEntry>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    let mut entries = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = XlogEntry::parse(&line).map_err(|why| {
            anyhow::anyhow!(
                "{}, line {}: {why}; run 'barman rebuild-xlogdb' to rebuild it from the WAL archive",
                path.display(),
                index + 1
            )
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Append entries and fsync, as the archiver does after each file.
pub fn append(path: &Path, entries: &[XlogEntry]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // `xlogdb_directory` may be a directory of its own that nothing created yet.
        crate::fsutil::create_dir_all(dir)?;
    }
    let lines: String = entries.iter().map(|e| e.line_for(path)).collect();
    crate::fsutil::append_durably(path, lines.as_bytes())
}

/// WAL statistics of one backup, as Barman's `get_wal_info` computes them from
/// `xlog.db`: the segments from `begin_wal` to `end_wal` (needed to restore it) and
/// those after it up to the next backup's `end_wal` (on its timeline or older).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalInfo {
    /// Segments from begin_wal to end_wal.
    pub wal_num: u64,
    /// Their stored size.
    pub wal_size: u64,
    /// Segments after end_wal, up to the next backup.
    pub wal_until_next_num: u64,
    /// Their stored size.
    pub wal_until_next_size: u64,
    /// The first segment (begin_wal) if archived, and its time.
    pub wal_first: Option<(String, f64)>,
    /// The last segment counted, and its time.
    pub wal_last: Option<(String, f64)>,
}

impl WalInfo {
    /// Segments archived per second between begin_wal and the last segment (0 when
    /// the backup's first segment is not archived or no time passed).
    pub fn wals_per_second(&self) -> f64 {
        match (&self.wal_first, &self.wal_last) {
            (Some((_, first)), Some((_, last))) if last > first => {
                (self.wal_num + self.wal_until_next_num) as f64 / (last - first)
            }
            _ => 0.0,
        }
    }

    /// How much compression saved on the backup's own segments (0 to 1).
    pub fn wal_compression_ratio(&self, segment_size: u64) -> f64 {
        ratio(
            self.wal_first.is_some(),
            self.wal_num,
            self.wal_size,
            segment_size,
        )
    }

    /// How much compression saved on the segments after the backup (0 to 1).
    pub fn wal_until_next_compression_ratio(&self, segment_size: u64) -> f64 {
        ratio(
            self.wal_first.is_some(),
            self.wal_until_next_num,
            self.wal_until_next_size,
            segment_size,
        )
    }
}

fn ratio(complete: bool, count: u64, size: u64, segment_size: u64) -> f64 {
    let theoretical = count as f64 * segment_size as f64;
    if !complete || theoretical == 0.0 {
        return 0.0;
    }
    1.0 - size as f64 / theoretical
}

/// The archived files from `begin_wal` up to the next backup's `end_wal` on the
/// backup's timeline or older, in catalogue order (Barman's
/// `get_wal_until_next_backup`); history files too when asked.
pub fn wal_until_next<'e>(
    begin_wal: &str,
    next_end_wal: Option<&str>,
    entries: &'e [XlogEntry],
    include_history: bool,
) -> Vec<&'e XlogEntry> {
    let timeline = &begin_wal[..begin_wal.len().min(8)];
    let mut selected = Vec::new();
    for entry in entries {
        if entry.is_history() {
            if include_history {
                selected.push(entry);
            }
            continue;
        }
        // The cheap comparison first: in a long archive most entries are older.
        if entry.name.as_str() < begin_wal || !entry.is_segment() || &entry.name[..8] > timeline {
            continue;
        }
        if next_end_wal.is_some_and(|next| entry.name.as_str() > next) {
            break;
        }
        selected.push(entry);
    }
    selected
}

/// Whether the entries are in name order, as archiving writes them; then the entries
/// a backup's WAL is among start at [`from_name`] of its `begin_wal`.
pub fn in_name_order(entries: &[XlogEntry]) -> bool {
    entries.windows(2).all(|w| w[0].name <= w[1].name)
}

/// For entries in name order, those from the first whose name is not below `name`:
/// all that [`wal_info`] reads of a backup beginning at `name`, found without walking
/// the older part of the archive (1,000 backups over 200,000 WAL files otherwise cost
/// 200 million comparisons in `list-backups`).
pub fn from_name<'e>(entries: &'e [XlogEntry], name: &str) -> &'e [XlogEntry] {
    &entries[entries.partition_point(|e| e.name.as_str() < name)..]
}

/// Compute [`WalInfo`] for a backup from the `xlog.db` entries.
pub fn wal_info(
    begin_wal: &str,
    end_wal: &str,
    next_end_wal: Option<&str>,
    entries: &[XlogEntry],
) -> WalInfo {
    let mut info = WalInfo::default();
    for entry in wal_until_next(begin_wal, next_end_wal, entries, false) {
        if entry.name == begin_wal {
            info.wal_first = Some((entry.name.clone(), entry.time));
        }
        if entry.name.as_str() <= end_wal {
            info.wal_num += 1;
            info.wal_size += entry.size;
        } else {
            info.wal_until_next_num += 1;
            info.wal_until_next_size += entry.size;
        }
        info.wal_last = Some((entry.name.clone(), entry.time));
    }
    info
}

/// What [`rebuild`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Timeline history files.
    pub history: usize,
    /// `.backup` label files.
    pub backup_labels: usize,
    /// WAL segments (and `.partial` files kept in the archive).
    pub wal_files: usize,
    /// Files and directories that do not belong in the archive (not listed).
    pub unexpected: Vec<PathBuf>,
}

/// Rewrite a server's `xlog.db` from the content of its WAL archive: every segment,
/// `.backup` and `.partial` file in the hash directories and every history file at
/// the root, in name order, with size, modification time and compression (magic
/// bytes). The old `wals/xlog.db` of Barman < 3.13 is removed once the new file is
/// written.
pub fn rebuild(server: &ServerConfig, lock_dir: &Path) -> Result<RebuildReport> {
    let wals = server
        .path("wals_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no wals_directory", server.name))?;
    let dir = server.path("xlogdb_directory").unwrap_or(wals);
    crate::fsutil::create_dir_all(dir)?;
    crate::fsutil::create_dir_all(wals)?;
    let _lock = super::remove::lock_xlogdb(lock_dir, &server.name)?;
    let mut report = RebuildReport::default();
    let mut text = String::new();
    let add = |path: &Path, text: &mut String| -> Result<()> {
        let info =
            super::WalFileInfo::read(path).with_context(|| format!("read {}", path.display()))?;
        let entry = XlogEntry {
            name: info.name,
            size: info.size,
            time: info.time,
            compression: info.compression.map(str::to_string),
            encryption: None,
        };
        text.push_str(&entry.to_line());
        Ok(())
    };
    let db_name = format!("{}-xlog.db", server.name);
    for name in super::list_dir_names(wals).with_context(|| format!("list {}", wals.display()))? {
        if name.starts_with(&db_name) || name.starts_with("xlog.db") {
            continue;
        }
        let path = wals.join(&name);
        if path.is_dir() {
            for inner in
                super::list_dir_names(&path).with_context(|| format!("list {}", path.display()))?
            {
                let file = path.join(&inner);
                if file.is_dir()
                    || inner.ends_with(".tmp")
                    || !super::is_wal_file_name(&inner)
                    || inner.ends_with(".history")
                {
                    report.unexpected.push(file);
                    continue;
                }
                if inner.ends_with(".backup") {
                    report.backup_labels += 1;
                } else {
                    report.wal_files += 1;
                }
                add(&file, &mut text)?;
            }
        } else if name.ends_with(".history") && super::is_wal_file_name(&name) {
            report.history += 1;
            add(&path, &mut text)?;
        } else {
            report.unexpected.push(path);
        }
    }
    let db = dir.join(&db_name);
    crate::fsutil::write_durably(&db, text.as_bytes())?;
    // The summaries follow: those of files no longer archived go, and any kept beside the
    // old `wals/xlog.db` (even by a rebuild that crashed after writing the new file) join
    // the new file's.
    let names: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|line| line.split('\t').next())
        .collect();
    let summaries = summaries_path_for(&db);
    let sources = [summaries_path_for(&wals.join("xlog.db")), summaries.clone()];
    prune_summaries_or_warn(server, &sources, &summaries, |name| names.contains(name));
    let old = wals.join("xlog.db");
    if old.exists() {
        std::fs::remove_file(&old).with_context(|| format!("remove {}", old.display()))?;
        crate::fsutil::fsync_dir(wals)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_generation_parse() {
        let e =
            XlogEntry::parse("00000001000000000000000B\t2042064\t1795312965.981544\tgzip\tNone")
                .unwrap();
        assert_eq!(e.size, 2042064);
        assert_eq!(e.compression.as_deref(), Some("gzip"));
        assert_eq!(e.encryption, None);
        assert_eq!(
            e.to_line(),
            "00000001000000000000000B\t2042064\t1795312965.981544\tgzip\tNone\n"
        );
        let old = XlogEntry::parse("00000002.history\t42\t1795312965.0\tNone").unwrap();
        assert!(old.is_history() && !old.is_segment());
        assert_eq!(
            old.to_line(),
            "00000002.history\t42\t1795312965.0\tNone\tNone\n"
        );
        let oldest = XlogEntry::parse("000000010000000000000002 16777216 1700000000.5").unwrap();
        assert!(oldest.is_segment());
        assert_eq!(oldest.compression, None);
    }

    #[test]
    fn the_old_xlog_db_keeps_four_columns() {
        let e = XlogEntry::parse("000000010000000000000002\t16522\t1795330667.683121\tgzip\tNone")
            .unwrap();
        assert_eq!(
            e.line_for(Path::new("/b/pg/wals/xlog.db")),
            "000000010000000000000002\t16522\t1795330667.683121\tgzip\n"
        );
        assert_eq!(e.line_for(Path::new("/b/pg/wals/pg-xlog.db")), e.to_line());
    }

    fn entry(name: &str, size: u64) -> XlogEntry {
        XlogEntry {
            name: name.into(),
            size,
            time: 1.0,
            compression: None,
            encryption: None,
        }
    }

    #[test]
    fn wal_info_splits_required_and_following_segments() {
        let entries = vec![
            entry("000000010000000000000002", 1),
            entry("000000010000000000000003", 10),
            entry("000000010000000000000004", 100),
            entry("000000010000000000000004.00000028.backup", 7),
            entry("00000002.history", 5),
            entry("000000010000000000000005", 1000),
            entry("000000020000000000000005", 20000),
            entry("000000010000000000000006", 10000),
            entry("000000010000000000000007", 100000),
        ];
        let info = wal_info(
            "000000010000000000000003",
            "000000010000000000000004",
            Some("000000010000000000000006"),
            &entries,
        );
        assert_eq!((info.wal_num, info.wal_size), (2, 110));
        assert_eq!(
            (info.wal_until_next_num, info.wal_until_next_size),
            (2, 11000)
        );
        assert_eq!(info.wal_first.unwrap().0, "000000010000000000000003");
        assert_eq!(info.wal_last.unwrap().0, "000000010000000000000006");
        let last = wal_info(
            "000000010000000000000003",
            "000000010000000000000004",
            None,
            &entries,
        );
        assert_eq!(last.wal_until_next_size, 111000);
    }

    #[test]
    fn the_ordered_shortcut_reads_what_the_full_scan_reads() {
        let mut entries: Vec<XlogEntry> = (1..200u64)
            .map(|n| entry(&format!("00000001{:08X}{:08X}", n / 256, n % 256), n))
            .collect();
        entries.push(entry("00000002.history", 5));
        entries.push(entry("000000020000000000000080", 7));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(in_name_order(&entries));
        for (begin, end, next) in [
            (
                "000000010000000000000010",
                "000000010000000000000011",
                Some("000000010000000000000020"),
            ),
            ("0000000100000000000000C6", "0000000100000000000000C7", None),
            ("000000010000000000000001", "000000010000000000000001", None),
        ] {
            let full = wal_info(begin, end, next, &entries);
            let short = wal_info(begin, end, next, from_name(&entries, begin));
            assert_eq!(format!("{full:?}"), format!("{short:?}"), "{begin}");
            assert!(full.wal_num > 0);
        }
        entries.swap(3, 4);
        assert!(!in_name_order(&entries));
    }

    #[test]
    fn malformed_lines_are_rejected() {
        assert!(XlogEntry::parse("only two").is_err());
        assert!(XlogEntry::parse("a b c d e f").is_err());
        assert!(XlogEntry::parse("000000010000000000000002\tbig\t1.0").is_err());
        assert!(XlogEntry::parse("000000010000000000000002\t1\tlate").is_err());
    }

    #[test]
    fn append_then_read_round_trips_and_a_bad_line_names_the_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        // In an xlogdb_directory of its own that does not exist yet.
        let path = dir.path().join("xlogdb/pg-xlog.db");
        let entry = XlogEntry {
            name: "000000010000000000000003".into(),
            size: 16 << 20,
            time: 1795312965.25,
            compression: None,
            encryption: None,
        };
        append(&path, std::slice::from_ref(&entry)).unwrap();
        assert_eq!(read_file(&path).unwrap(), vec![entry]);
        fs::write(&path, "garbage\n").unwrap();
        let e = read_file(&path).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("rebuild-xlogdb"), "{e}");
        assert!(read_file(&dir.path().join("missing")).unwrap().is_empty());
    }

    /// A summaries line that parses, told apart by its record count.
    fn summary(name: &str, records: u32) -> String {
        format!(
            "{name}\twalsummary1 seg={name} size=16MB sysid=7710809521602424182 pg=15 blcksz=8192 \
             head=clean tail=switch records={records} first=0/3000028 last=0/3154B18 end=0/4000000 \
             commits=0 aborts=0\n"
        )
    }

    #[test]
    fn pruned_summaries_keep_the_last_good_line_of_each_kept_name() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let (a, b, c) = (
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000005",
        );
        assert!(barman_protocol::wal::SegmentSummary::parse_line(
            summary(a, 1).split_once('\t').unwrap().1.trim_end()
        )
        .is_ok());
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("xlog.db.summaries");
        let mut text = summary(a, 1) + &summary(b, 2) + "no tab here\n" + &summary(a, 3);
        text.push_str(&format!("{c}\twalsummary1 torn\n"));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&summary(c, 4).into_bytes());
        bytes.extend_from_slice(b"\xff\xfe\tnot utf-8\n");
        fs::write(&from, &bytes).unwrap();
        // b goes (not kept), so do the older a, the nameless, torn and non-UTF-8 lines.
        let from = vec![from];
        let one = &from[0];
        assert_eq!(prune_summaries(&from, one, |n| n != b).unwrap(), 5);
        assert_eq!(
            fs::read_to_string(one).unwrap(),
            summary(a, 3) + &summary(c, 4)
        );
        // A torn last line after a good one: the good one is kept.
        let mut torn = fs::read(one).unwrap();
        torn.extend_from_slice(format!("{a}\twalsummary1 se").as_bytes());
        fs::write(one, torn).unwrap();
        assert_eq!(prune_summaries(&from, one, |_| true).unwrap(), 1);
        assert_eq!(
            fs::read_to_string(one).unwrap(),
            summary(a, 3) + &summary(c, 4)
        );
        // Nothing to drop: the file is left as it is (the same inode, not a rewrite).
        let inode = fs::metadata(one).unwrap().ino();
        assert_eq!(prune_summaries(&from, one, |_| true).unwrap(), 0);
        assert_eq!(fs::metadata(one).unwrap().ino(), inode);
        // Two sources joined beside another xlog.db (0600); the first source is removed.
        let to = dir.path().join("pg-xlog.db.summaries");
        fs::write(&to, summary(c, 5) + &summary(b, 6)).unwrap();
        let both = vec![one.clone(), to.clone()];
        assert_eq!(prune_summaries(&both, &to, |n| n != b).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(&to).unwrap(),
            summary(a, 3) + &summary(c, 5)
        );
        assert!(!one.exists());
        assert_eq!(
            fs::metadata(&to).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No summaries at all: nothing to do, nothing created.
        let none = vec![dir.path().join("none")];
        assert_eq!(prune_summaries(&none, &none[0], |_| true).unwrap(), 0);
        assert!(!none[0].exists());
        assert_eq!(
            summaries_path_for(Path::new("/w/pg-xlog.db")),
            Path::new("/w/pg-xlog.db.summaries")
        );
    }
}
