//! Durable file writes and Barman's lock files.
//!
//! Every file the catalogue keeps is written through [`write_durably`]: the data goes
//! to `<name>.<pid>.tmp` in the same directory (two processes writing the same file,
//! say receive-wal and backup both recording `identity.json`, never share one), is fsynced, renamed over `<name>`, and the
//! directory is fsynced, so a crash at any instant leaves the old content or the new
//! one, never a half-written file with the final name. Catalogue files are 0600 and
//! catalogue directories 0700.
//!
//! Locks are Barman's: an exclusive, non-blocking `flock` on
//! `<barman_lock_directory>/.<server>-<task>.lock`, with the holder's PID written in
//! the file, so that a Barman process and ours never act on the same server at once
//! and `list-processes` style tools can tell who holds it (BARMAN.md §3.6).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Mode of catalogue files.
pub const FILE_MODE: u32 = 0o600;
/// Mode of catalogue directories.
pub const DIR_MODE: u32 = 0o700;

/// Create a directory and its missing parents with mode 0700, durably: the parent of each
/// directory created is fsynced, so that a file stored in it later cannot vanish with it in
/// a crash.
pub fn create_dir_all(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .with_context(|| format!("create directory {}", path.display()))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

/// Append `data` to `path` and fsync it; a file created by the append gets mode 0600 and
/// its directory is fsynced too, as for every catalogue file.
pub fn append_durably(path: &Path, data: &[u8]) -> Result<()> {
    let created = !path.exists();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(data)
        .with_context(|| format!("append to {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("fsync {}", path.display()))?;
    if created {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fsync_dir(dir)?;
    }
    Ok(())
}

/// fsync a directory, so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(path: &Path) -> Result<()> {
    let dir = File::open(path).with_context(|| format!("open directory {}", path.display()))?;
    dir.sync_all()
        .with_context(|| format!("fsync directory {}", path.display()))
}

/// The temporary name this process uses while writing `path`: `<name>.<pid>.tmp`, so
/// that concurrent writers of one file each rename a complete file of their own.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Whether a directory entry is a file still being written under a temporary name
/// (`<name>.<pid>.tmp` of [`temp_path`], or the `%f.tmp` of an archive_command that renames
/// into place): readers of `incoming/` and `streaming/` leave such files alone.
pub fn is_temp_name(name: &str) -> bool {
    name.ends_with(".tmp")
}

/// Write `data` to `path` durably: temp file, fsync, rename, fsync the directory.
/// The file gets mode 0600.
pub fn write_durably(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        file.write_all(data)
            .with_context(|| format!("write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        // Leave nothing half-written behind; the old file (if any) is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rename `from` to `to` and fsync the directories involved.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to)
        .with_context(|| format!("rename {} to {}", from.display(), to.display()))?;
    let to_dir = to.parent().unwrap_or(Path::new("."));
    fsync_dir(to_dir)?;
    let from_dir = from.parent().unwrap_or(Path::new("."));
    if from_dir != to_dir {
        fsync_dir(from_dir)?;
    }
    Ok(())
}

/// Bytes written through a [`WriteBehind`] before their write-back is started.
const WRITE_BEHIND_STEP: u64 = 8 << 20;

/// A file whose dirty pages are handed to the kernel for write-back every
/// [`WRITE_BEHIND_STEP`] bytes (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which starts
/// the I/O without waiting for it), as PostgreSQL's `*_flush_after` settings do. The
/// final fsync, which is still what makes the file durable, then finds most of the data
/// already on disk instead of writing a whole backup at the end, and the disk works
/// while the network does.
#[derive(Debug)]
pub struct WriteBehind {
    file: File,
    written: u64,
    started: u64,
}

impl WriteBehind {
    /// Wrap `file`, written from its start.
    pub fn new(file: File) -> WriteBehind {
        WriteBehind {
            file,
            written: 0,
            started: 0,
        }
    }

    /// Start the write-back of everything written and not yet handed over.
    pub fn start_writeback(&mut self) {
        let len = self.written - self.started;
        if len == 0 {
            return;
        }
        // Only a hint: a file system without it still gets the final fsync.
        // SAFETY: a valid open descriptor and a range inside what was written.
        let _ = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                self.started as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        self.started = self.written;
    }

    /// The file, with the write-back of its tail started.
    pub fn into_inner(mut self) -> File {
        self.start_writeback();
        self.file
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_BEHIND_STEP {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// An exclusive lock held on a lock file until dropped.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    // Keeps the flock: it is released when the descriptor is closed.
    _file: File,
}

impl LockFile {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its PID if the file names one.
    Busy {
        /// The lock file.
        path: PathBuf,
        /// The PID written by the holder.
        pid: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy {
                path,
                pid: Some(pid),
            } => write!(f, "{} is held by process {pid}", path.display()),
            LockError::Busy { path, pid: None } => {
                write!(f, "{} is held by another process", path.display())
            }
            LockError::Io { path, error } => write!(
                f,
                "cannot lock {}: {}",
                path.display(),
                crate::config::io_reason(error)
            ),
        }
    }
}

impl std::error::Error for LockError {}

/// The lock file of a task on a server: `.<server>-<task>.lock`
/// (`backup`, `cron`, `receive-wal`, `archive-wal`, `xlogdb`, or a backup id).
pub fn server_lock_path(lock_dir: &Path, server: &str, task: &str) -> PathBuf {
    lock_dir.join(format!(".{server}-{task}.lock"))
}

/// Take an exclusive lock without waiting, and write our PID into the file.
pub fn try_lock(path: &Path) -> Result<LockFile, LockError> {
    let io_err = |error| LockError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_err)?;
    // SAFETY: flock on a descriptor we own; it has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Busy {
                path: path.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        return Err(io_err(error));
    }
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    writeln!(file, "{}", std::process::id()).map_err(io_err)?;
    file.flush().map_err(io_err)?;
    Ok(LockFile {
        path: path.to_path_buf(),
        _file: file,
    })
}

/// The PID of the process holding a lock file, or `None` when nobody holds it.
pub fn lock_holder(path: &Path) -> Option<u32> {
    match try_lock(path) {
        Ok(lock) => {
            // Nobody held it; we did for an instant. Leave the file as Barman does.
            drop(lock);
            None
        }
        Err(LockError::Busy { pid, .. }) => Some(pid.unwrap_or(0)),
        Err(LockError::Io { .. }) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn durable_writes_replace_the_file_with_mode_0600_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.info");
        write_durably(&path, b"status=STARTED\n").unwrap();
        write_durably(&path, b"status=DONE\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "status=DONE\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn appends_create_the_file_with_mode_0600_and_add_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg-xlog.db");
        // With the usual umask (022) a plain create would make it 0644.
        append_durably(&path, b"one\n").unwrap();
        append_durably(&path, b"two\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(append_durably(&dir.path().join("no/such/dir/file"), b"x").is_err());
    }

    #[test]
    fn durable_directories_are_made_with_their_parents_at_mode_0700() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("wals/0000000100000000");
        create_dir_all(&deep).unwrap();
        create_dir_all(&deep).unwrap();
        for d in [dir.path().join("wals"), deep.clone()] {
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(create_dir_all(&file.join("below")).is_err());
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        write_durably(&path, b"old").unwrap();
        // A directory where the temp file should go makes the write fail.
        fs::create_dir(temp_path(&path)).unwrap();
        assert!(write_durably(&path, b"new").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn directories_are_created_0700() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b");
        create_dir_all(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn a_lock_is_exclusive_names_its_holder_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = server_lock_path(dir.path(), "pg", "backup");
        assert!(path.ends_with(".pg-backup.lock"));
        let lock = try_lock(&path).unwrap();
        assert_eq!(
            fs::read_to_string(lock.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to open file descriptions: a second open conflicts,
        // even within one process.
        match try_lock(&path) {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected a busy lock, got {other:?}"),
        }
        assert_eq!(lock_holder(&path), Some(std::process::id()));
        drop(lock);
        assert_eq!(lock_holder(&path), None);
        assert!(try_lock(&path).is_ok());
    }
}
