//! Copying a backup's files to the destination: a plain backup (`base/<id>/data` and
//! `base/<id>/<oid>` per tablespace) file by file, or a tar backup (`base.tar[.gz|.lz4|.zst]`
//! and `<oid>.tar.*`) extracted and decompressed on the fly, with the work spread over
//! `-j` workers (files of a plain backup, archives of a tar backup).
//!
//! What Barman's rsync leaves out is left out (`pg_wal/*`, `pg_xlog/*`, `pg_log/*`,
//! `log/*`, `postmaster.pid`, `recovery.conf`, `tablespace_map`): tablespaces are linked by
//! the `pg_tblspc/<oid>` symbolic links this module writes, pointing to their (possibly
//! relocated) locations. The configuration files the recovery rewrites and
//! `backup_manifest` are not written but captured, to be written by the caller.
//!
//! Files are not fsynced one by one: PostgreSQL syncs the whole data directory at its first
//! start after a backup (`SyncDataDirectory`, because pg_control says it was not shut down).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::dest::{safe_relative, Destination, EntryWriter};

/// Where one tablespace goes.
#[derive(Debug, Clone)]
pub struct TablespaceTarget {
    /// Its name.
    pub name: String,
    /// Its OID.
    pub oid: u32,
    /// Where it is restored.
    pub location: PathBuf,
}

/// The format of the backup's files.
#[derive(Debug, Clone)]
pub enum BackupFiles {
    /// A directory copy: the data directory and one directory per tablespace OID.
    Plain {
        /// `base/<id>/data`.
        data: PathBuf,
        /// `base/<id>` (tablespaces are `<base>/<oid>`).
        base: PathBuf,
    },
    /// Tar archives: `base.tar*` and `<oid>.tar*` in `dir`.
    Tar {
        /// The directory holding them.
        dir: PathBuf,
    },
}

impl BackupFiles {
    /// Tell the format of backup `base/<id>`.
    pub fn detect(base: &Path) -> Result<BackupFiles> {
        for dir in [base.join("data"), base.to_path_buf()] {
            if find_archive(&dir, "base")?.is_some() {
                return Ok(BackupFiles::Tar { dir });
            }
        }
        let data = base.join("data");
        if data.join("PG_VERSION").is_file() {
            return Ok(BackupFiles::Plain {
                data,
                base: base.to_path_buf(),
            });
        }
        let old = base.join("pgdata");
        if old.join("PG_VERSION").is_file() {
            return Ok(BackupFiles::Plain {
                data: old,
                base: base.to_path_buf(),
            });
        }
        bail!(
            "no backup files in {}: neither a data directory nor base.tar archives",
            base.display()
        )
    }
}

/// `name.tar`, `name.tar.gz`, `name.tar.lz4`, `name.tar.zst` in `dir`.
fn find_archive(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    for ext in ["tar", "tar.gz", "tar.lz4", "tar.zst", "tar.zstd"] {
        let path = dir.join(format!("{name}.{ext}"));
        if path.is_file() {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Files of the data directory that are captured instead of written.
pub const CAPTURED: &[&str] = &["postgresql.conf", "postgresql.auto.conf", "backup_manifest"];

/// Whether a path of the data directory is left out of the restore.
pub fn excluded(rel: &Path) -> bool {
    let mut parts = rel.components();
    let first = parts
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let nested = parts.next().is_some();
    match first.as_deref() {
        Some("pg_wal" | "pg_xlog" | "pg_log" | "log") => nested,
        Some(
            "postmaster.pid" | "postmaster.opts" | "recovery.conf" | "tablespace_map"
            | "recovery.signal" | "standby.signal",
        ) => !nested,
        _ => false,
    }
}

/// What was restored.
#[derive(Debug, Default)]
pub struct Restored {
    /// The captured files of the data directory, by name.
    pub captured: BTreeMap<String, Vec<u8>>,
    /// Top-level file names seen in the data directory (to report missing config files).
    pub top_level: Vec<String>,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Progress on a terminal: bytes done out of a total, redrawn twice a second.
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    stop: AtomicBool,
    enabled: bool,
}

impl Progress {
    /// Progress shown on standard error when it is a terminal and `show` is true.
    pub fn new(show: bool) -> Progress {
        Progress {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            enabled: show && std::io::stderr().is_terminal(),
        }
    }

    fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    fn run(&self, label: &str) {
        if !self.enabled {
            return;
        }
        let start = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(500));
            let done = self.done.load(Ordering::Relaxed);
            let total = self.total.load(Ordering::Relaxed);
            let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001) / 1048576.0;
            let line = if total > 0 {
                format!(
                    "\r{label}: {} of {} ({:.0}%, {rate:.0} MiB/s)   ",
                    crate::config::values::pretty_size(done as f64),
                    crate::config::values::pretty_size(total as f64),
                    done as f64 * 100.0 / total as f64
                )
            } else {
                format!(
                    "\r{label}: {} ({rate:.0} MiB/s)   ",
                    crate::config::values::pretty_size(done as f64)
                )
            };
            let mut err = std::io::stderr();
            let _ = err.write_all(line.as_bytes());
            let _ = err.flush();
        }
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\r\x1b[K");
        let _ = err.flush();
    }
}

/// One file of a plain backup.
struct FileJob {
    root: usize,
    rel: PathBuf,
    src: PathBuf,
    mode: u32,
    size: u64,
    mtime: i64,
}

/// The restore of a backup's files.
pub struct Restore<'a> {
    /// The destination host.
    pub dest: &'a dyn Destination,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The tablespaces.
    pub tablespaces: Vec<TablespaceTarget>,
    /// Workers.
    pub jobs: usize,
    /// Keep files that did not change (delta restore).
    pub delta: bool,
    /// Progress display.
    pub progress: &'a Progress,
    /// Files of the data directory to capture instead of writing (see [`CAPTURED`]).
    pub capture: Vec<String>,
}

impl Restore<'_> {
    fn roots(&self) -> Vec<PathBuf> {
        std::iter::once(self.data_dir.clone())
            .chain(self.tablespaces.iter().map(|t| t.location.clone()))
            .collect()
    }

    /// Copy the backup's files.
    pub fn run(&self, files: &BackupFiles) -> Result<Restored> {
        let progress = self.progress;
        let label = if self.dest.kind() == "remote" {
            "Sending"
        } else {
            "Copying"
        };
        std::thread::scope(|scope| {
            let shower = scope.spawn(move || progress.run(label));
            let result = match files {
                BackupFiles::Plain { data, base } => self.plain(data, base),
                BackupFiles::Tar { dir } => self.tar(dir),
            };
            progress.stop.store(true, Ordering::Relaxed);
            let _ = shower.join();
            let mut restored = result?;
            // The tablespace links, to the (relocated) locations.
            let mut w = self.dest.writer(&self.data_dir)?;
            w.dir(Path::new("pg_tblspc"), 0o700)?;
            for t in &self.tablespaces {
                w.symlink(&Path::new("pg_tblspc").join(t.oid.to_string()), &t.location)?;
            }
            for d in ["pg_wal", "pg_wal/archive_status"] {
                w.dir(Path::new(d), 0o700)?;
            }
            w.finish()?;
            restored.top_level.sort();
            Ok(restored)
        })
    }

    fn plain(&self, data: &Path, base: &Path) -> Result<Restored> {
        let mut restored = Restored::default();
        let mut dirs: Vec<(usize, PathBuf, u32)> = Vec::new();
        let mut jobs: Vec<FileJob> = Vec::new();
        let sources: Vec<(usize, PathBuf)> = std::iter::once((0, data.to_path_buf()))
            .chain(
                self.tablespaces
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i + 1, base.join(t.oid.to_string()))),
            )
            .collect();
        for (root, src) in &sources {
            if !src.is_dir() {
                bail!("the backup has no directory {}", src.display());
            }
            scan(
                src,
                Path::new(""),
                *root,
                &mut dirs,
                &mut jobs,
                &mut restored,
            )?;
        }
        // Delta: keep files with the same size and time, remove those not in the backup.
        if self.delta {
            let roots = self.roots();
            let mut keep = std::collections::HashSet::new();
            for (root, path) in roots.iter().enumerate() {
                let wanted: std::collections::HashMap<&Path, (u64, i64)> = jobs
                    .iter()
                    .filter(|j| j.root == root)
                    .map(|j| (j.rel.as_path(), (j.size, j.mtime)))
                    .collect();
                for (rel, size, mtime) in self.dest.existing_files(path)? {
                    match wanted.get(rel.as_path()) {
                        Some((s, m)) if *s == size && *m == mtime => {
                            keep.insert((root, rel));
                        }
                        Some(_) => {}
                        None if root == 0 && excluded(&rel) => {}
                        None => self.dest.remove(path, &rel)?,
                    }
                }
            }
            jobs.retain(|j| !keep.contains(&(j.root, j.rel.clone())));
        }
        // Directories first (one stream per root), then files by size, largest first.
        let roots = self.roots();
        let mut writers: Vec<Box<dyn EntryWriter>> = roots
            .iter()
            .map(|r| self.dest.writer(r))
            .collect::<Result<_>>()?;
        for (root, rel, mode) in &dirs {
            writers[*root].dir(rel, *mode)?;
        }
        for w in writers {
            w.finish()?;
        }
        let captured: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());
        jobs.retain(|j| {
            if j.root == 0 && self.capture.iter().any(|c| Path::new(c) == j.rel) {
                if let Ok(content) = fs::read(&j.src) {
                    captured
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(j.rel.to_string_lossy().into_owned(), content);
                }
                return false;
            }
            true
        });
        jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
        self.progress
            .total
            .store(jobs.iter().map(|j| j.size).sum(), Ordering::Relaxed);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let workers = self.jobs.max(1).min(jobs.len().max(1));
        let results: Vec<Result<(u64, u64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<(u64, u64)> {
                        let mut writers: BTreeMap<usize, Box<dyn EntryWriter>> = BTreeMap::new();
                        let (mut files, mut bytes) = (0u64, 0u64);
                        loop {
                            if failed.load(Ordering::Relaxed) {
                                break;
                            }
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            let w = match writers.entry(job.root) {
                                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                                std::collections::btree_map::Entry::Vacant(e) => {
                                    e.insert(self.dest.writer(&roots[job.root])?)
                                }
                            };
                            if let Err(e) =
                                w.file_from_path(&job.rel, &job.src, job.mode, job.size, job.mtime)
                            {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                            files += 1;
                            bytes += job.size;
                            self.progress.add(job.size);
                        }
                        for (_, w) in writers {
                            w.finish()?;
                        }
                        Ok((files, bytes))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a copy worker panicked")))
                })
                .collect()
        });
        for r in results {
            let (files, bytes) = r?;
            restored.files += files;
            restored.bytes += bytes;
        }
        restored.captured = captured.into_inner().unwrap_or_else(|e| e.into_inner());
        Ok(restored)
    }

    fn tar(&self, dir: &Path) -> Result<Restored> {
        let mut archives = vec![(
            0usize,
            find_archive(dir, "base")?.context("the backup has no base.tar")?,
        )];
        for (i, t) in self.tablespaces.iter().enumerate() {
            let path = find_archive(dir, &t.oid.to_string())?.with_context(|| {
                format!(
                    "the backup has no archive for tablespace {} ({})",
                    t.name, t.oid
                )
            })?;
            archives.push((i + 1, path));
        }
        let total: u64 = archives
            .iter()
            .filter_map(|(_, p)| fs::metadata(p).ok().map(|m| m.len()))
            .sum();
        self.progress.total.store(total, Ordering::Relaxed);
        let roots = self.roots();
        let next = AtomicUsize::new(0);
        let workers = self.jobs.max(1).min(archives.len());
        let results: Vec<Result<Restored>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<Restored> {
                        let mut restored = Restored::default();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some((root, path)) = archives.get(i) else {
                                break;
                            };
                            let w = self.dest.writer(&roots[*root])?;
                            extract(path, *root, w, &mut restored, self.progress, &self.capture)
                                .with_context(|| format!("extract {}", path.display()))?;
                        }
                        Ok(restored)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("an extract worker panicked")))
                })
                .collect()
        });
        let mut all = Restored::default();
        for r in results {
            let r = r?;
            all.files += r.files;
            all.bytes += r.bytes;
            all.captured.extend(r.captured);
            all.top_level.extend(r.top_level);
        }
        Ok(all)
    }
}

/// Walk a plain backup directory: directories and files to copy.
fn scan(
    src: &Path,
    rel: &Path,
    root: usize,
    dirs: &mut Vec<(usize, PathBuf, u32)>,
    jobs: &mut Vec<FileJob>,
    restored: &mut Restored,
) -> Result<()> {
    let dir = src.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .with_context(|| format!("list {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child = rel.join(entry.file_name());
        if root == 0 && excluded(&child) {
            continue;
        }
        if root == 0 && rel.as_os_str().is_empty() {
            restored
                .top_level
                .push(entry.file_name().to_string_lossy().into_owned());
        }
        let meta = fs::symlink_metadata(entry.path())
            .with_context(|| format!("stat {}", entry.path().display()))?;
        if root == 0 && child.parent() == Some(Path::new("pg_tblspc")) {
            // Tablespace links are written by the restore, to their new locations.
            continue;
        }
        if meta.is_dir() {
            dirs.push((root, child.clone(), meta.mode()));
            scan(src, &child, root, dirs, jobs, restored)?;
        } else if meta.is_file() {
            jobs.push(FileJob {
                root,
                rel: child,
                src: entry.path(),
                mode: meta.mode(),
                size: meta.len(),
                mtime: meta.mtime(),
            });
        } else if meta.file_type().is_symlink() {
            // A symbolic link elsewhere in a data directory (e.g. pg_wal made with
            // initdb -X): recreated as a directory, its content is not restored.
            if child.as_os_str() == "pg_wal" || child.as_os_str() == "pg_xlog" {
                dirs.push((root, child, 0o700));
            } else {
                log::warn!(
                    "skipping the symbolic link {} of the backup",
                    entry.path().display()
                );
            }
        }
    }
    Ok(())
}

/// A reader counting the compressed bytes consumed, for progress.
struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Extract one tar archive (decompressing it) through a writer, refusing hostile entries.
fn extract(
    path: &Path,
    root: usize,
    mut w: Box<dyn EntryWriter>,
    restored: &mut Restored,
    progress: &Progress,
    capture: &[String],
) -> Result<()> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let counting = Counting {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        progress,
    };
    let name = path.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(counting))
    } else if name.ends_with(".lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(counting))
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        Box::new(zstd::stream::read::Decoder::new(counting)?)
    } else {
        Box::new(counting)
    };
    let mut archive = tar::Archive::new(reader);
    // The tablespace links of the archive: not written here (see below), so nothing may be
    // written below them either, as `backup` refuses it (a real archive never does).
    let mut links: Vec<PathBuf> = Vec::new();
    for entry in archive.entries().context("read the tar archive")? {
        let mut entry = entry.context("read a tar entry")?;
        let raw = entry.path().context("read a tar entry name")?.into_owned();
        if raw
            .components()
            .all(|c| matches!(c, std::path::Component::CurDir))
        {
            continue; // "./", the archive's root
        }
        let rel = safe_relative(&raw)?;
        if let Some(link) = links.iter().find(|l| rel.starts_with(l)) {
            bail!(
                "refusing the entry '{}' of {}: it lies below the symbolic link '{}' of the archive",
                raw.display(),
                path.display(),
                link.display()
            );
        }
        if root == 0 {
            if excluded(&rel) {
                continue;
            }
            if rel.components().count() == 1 {
                restored.top_level.push(rel.to_string_lossy().into_owned());
            }
        }
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o600);
        let mtime = header.mtime().unwrap_or(0) as i64;
        match header.entry_type() {
            tar::EntryType::Directory => w.dir(&rel, mode)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                if root == 0 && capture.iter().any(|c| Path::new(c) == rel) {
                    let mut content = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut content)?;
                    restored
                        .captured
                        .insert(rel.to_string_lossy().into_owned(), content);
                    continue;
                }
                w.file_from_reader(&rel, mode, size, mtime, &mut entry)?;
                restored.files += 1;
                restored.bytes += size;
            }
            tar::EntryType::Symlink
                if root == 0 && rel.parent() == Some(Path::new("pg_tblspc")) =>
            {
                // Written by the restore, to the tablespace's (new) location.
                links.push(rel);
            }
            tar::EntryType::Symlink
                if rel == Path::new("pg_wal") || rel == Path::new("pg_xlog") =>
            {
                w.dir(&rel, 0o700)?
            }
            other => bail!(
                "refusing the entry '{}' of {}: a {:?} entry has no place in a backup",
                raw.display(),
                path.display(),
                other
            ),
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::dest::Local;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o600);
            h.set_size(data.len() as u64);
            // Write the name raw, so that hostile names are not cleaned by the builder.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn exclusions_follow_barman() {
        for (path, out) in [
            ("pg_wal/000000010000000000000001", true),
            ("pg_wal", false),
            ("postmaster.pid", true),
            ("tablespace_map", true),
            ("base/1/postmaster.pid", false),
            ("log/postgresql.log", true),
            ("backup_label", false),
        ] {
            assert_eq!(excluded(Path::new(path)), out, "{path}");
        }
    }

    #[test]
    fn hostile_tar_entries_cannot_write_outside_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let progress = Progress::new(false);
        for entries in [
            vec![("../escape", tar::EntryType::Regular, &b"x"[..], None)],
            vec![("/tmp/escape-abs", tar::EntryType::Regular, &b"x"[..], None)],
            vec![
                ("evil", tar::EntryType::Symlink, &b""[..], Some("/tmp")),
                ("evil/escape", tar::EntryType::Regular, &b"x"[..], None),
            ],
            vec![("hard", tar::EntryType::Link, &b""[..], Some("/etc/passwd"))],
            vec![
                (
                    "pg_tblspc/16999",
                    tar::EntryType::Symlink,
                    &b""[..],
                    Some("/tmp"),
                ),
                (
                    "pg_tblspc/16999/escape",
                    tar::EntryType::Regular,
                    &b"x"[..],
                    None,
                ),
            ],
        ] {
            let archive = dir.path().join("base.tar");
            fs::write(&archive, tar_with(&entries)).unwrap();
            let local = Local { throttle: None };
            let dest = dir.path().join("dest");
            let w = local.writer(&dest).unwrap();
            let mut restored = Restored::default();
            let err = extract(&archive, 0, w, &mut restored, &progress, &[]).unwrap_err();
            assert!(format!("{err:#}").contains("refusing"), "{err:#}");
            assert!(!dir.path().join("escape").exists());
            assert!(!Path::new("/tmp/escape").exists());
            assert!(!dest.join("pg_tblspc/16999/escape").exists());
        }
    }

    #[test]
    fn a_tar_backup_is_extracted_with_config_files_captured() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_with(&[
            ("PG_VERSION", tar::EntryType::Regular, b"16\n", None),
            ("base/1/1259", tar::EntryType::Regular, b"data", None),
            (
                "postgresql.conf",
                tar::EntryType::Regular,
                b"port = 5432\n",
                None,
            ),
            (
                "pg_wal/000000010000000000000001",
                tar::EntryType::Regular,
                b"wal",
                None,
            ),
            (
                "pg_tblspc/16385",
                tar::EntryType::Symlink,
                b"",
                Some("/old/place"),
            ),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&archive).unwrap();
        fs::create_dir(dir.path().join("b")).unwrap();
        fs::write(dir.path().join("b/base.tar.gz"), gz.finish().unwrap()).unwrap();
        let files = BackupFiles::detect(&dir.path().join("b")).unwrap();
        let local = Local { throttle: None };
        let progress = Progress::new(false);
        let dest = dir.path().join("dest");
        let r = Restore {
            dest: &local,
            data_dir: dest.clone(),
            tablespaces: Vec::new(),
            jobs: 2,
            delta: false,
            progress: &progress,
            capture: CAPTURED.iter().map(|s| s.to_string()).collect(),
        }
        .run(&files)
        .unwrap();
        assert_eq!(fs::read(dest.join("base/1/1259")).unwrap(), b"data");
        assert!(!dest.join("postgresql.conf").exists());
        assert!(!dest.join("pg_wal/000000010000000000000001").exists());
        assert!(dest.join("pg_wal/archive_status").is_dir());
        assert!(!dest.join("pg_tblspc/16385").exists());
        assert_eq!(r.captured["postgresql.conf"], b"port = 5432\n");
    }
}
