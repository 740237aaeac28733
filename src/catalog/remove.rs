//! Removing things from the catalogue: archived WAL files and backups.
//!
//! Order matters for crash safety. WAL files: `xlog.db` is rewritten first (durably,
//! under `.<server>-xlogdb.lock`), then the files are deleted, so a crash leaves at
//! worst unlisted files (which `rebuild-xlogdb` finds again), never listed files that
//! are gone. Backups follow Barman's sequence: a `delete_this` annotation first (an
//! interrupted delete is finished by the next `cron`), then the data, the WAL, and the
//! `backup.info` last.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::xlogdb::{self, XlogEntry};
use super::BackupInfo;
use crate::config::ServerConfig;
use crate::fsutil;
use crate::hooks::Hooks;
use crate::retention::wal::WalCleanup;

/// Where an archived file lives: `wals/<tli+log>/<name>`, history files at the root.
pub fn archived_path(wals: &Path, name: &str) -> PathBuf {
    if name.ends_with(".history") || name.len() < 16 {
        wals.join(name)
    } else {
        wals.join(&name[..16]).join(name)
    }
}

/// Take `.<server>-xlogdb.lock`, waiting up to a minute for another archiver.
pub fn lock_xlogdb(lock_dir: &Path, server: &str) -> Result<fsutil::LockFile> {
    fsutil::create_dir_all(lock_dir)?;
    let path = fsutil::server_lock_path(lock_dir, server, "xlogdb");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match fsutil::try_lock(&path) {
            Ok(lock) => return Ok(lock),
            Err(fsutil::LockError::Busy { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot lock the WAL catalogue of server '{server}': {e}"
                ))
            }
        }
    }
}

/// Remove the archived WAL files that `cleanup` does not keep; returns their names.
/// `wal_delete` hooks run around each file.
pub fn remove_wals(
    server: &ServerConfig,
    lock_dir: &Path,
    config_file: &Path,
    cleanup: &WalCleanup,
) -> Result<Vec<String>> {
    let Some(wals) = server.path("wals_directory") else {
        return Ok(Vec::new());
    };
    let _lock = lock_xlogdb(lock_dir, &server.name)?;
    let db = xlogdb::path(server);
    let entries = xlogdb::read_file(&db)?;
    let (keep, remove): (Vec<XlogEntry>, Vec<XlogEntry>) =
        entries.into_iter().partition(|e| cleanup.keeps(&e.name));
    if remove.is_empty() {
        return Ok(Vec::new());
    }
    // 1. The catalogue no longer lists them.
    let text: String = keep.iter().map(|e| e.line_for(&db)).collect();
    fsutil::write_durably(&db, text.as_bytes())?;
    // 2. The files go one by one, then their hash directory if that emptied it. Never a
    //    whole directory at once: archive-wal may be placing a newer segment in it right
    //    now (it writes the file before it takes the xlog.db lock held here).
    let mut by_dir: BTreeMap<PathBuf, Vec<&XlogEntry>> = BTreeMap::new();
    for entry in &remove {
        let path = archived_path(wals, &entry.name);
        let dir = path.parent().unwrap_or(wals).to_path_buf();
        by_dir.entry(dir).or_default().push(entry);
    }
    let mut removed = Vec::new();
    for (dir, entries) in by_dir {
        for entry in &entries {
            let mut hooks = Hooks::new(server, config_file, "wal_delete");
            let path = archived_path(wals, &entry.name);
            hooks.env_wal(
                &entry.name,
                &path,
                entry.size,
                entry.time,
                entry.compression.as_deref(),
            );
            hooks.pre()?;
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    log::warn!(
                        "Ignoring deletion of WAL file {} for server {}: {e}",
                        entry.name,
                        server.name
                    );
                    hooks.post();
                    continue;
                }
            }
            hooks.post();
            removed.push(entry.name.clone());
        }
        // An emptied hash directory goes too; one that received a file meanwhile stays.
        if dir != wals {
            let _ = fs::remove_dir(&dir);
        }
    }
    fsutil::fsync_dir(wals)?;
    // 3. Their summaries go last (a failure is only a warning: see prune_summaries_or_warn).
    let kept: std::collections::HashSet<&str> = keep.iter().map(|e| e.name.as_str()).collect();
    let summaries = xlogdb::summaries_path_for(&db);
    xlogdb::prune_summaries_or_warn(
        server,
        std::slice::from_ref(&summaries),
        &summaries,
        |name| kept.contains(name),
    );
    Ok(removed)
}

/// The places of a backup in the catalogue.
#[derive(Debug, Clone)]
pub struct BackupPaths {
    /// `base/<id>`.
    pub base: PathBuf,
    /// `meta/<id>-backup.info`.
    pub meta_info: PathBuf,
    /// `meta/`.
    pub meta: PathBuf,
}

impl BackupPaths {
    /// The paths of backup `id` of `server`.
    pub fn of(server: &ServerConfig, id: &str) -> BackupPaths {
        let dir = server.path("backup_directory").unwrap_or(Path::new("."));
        let base = server
            .path("basebackups_directory")
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("base"));
        let meta = dir.join("meta");
        BackupPaths {
            base: base.join(id),
            meta_info: meta.join(format!("{id}-backup.info")),
            meta,
        }
    }

    /// The `backup.info` in use: `meta/` when it exists, else the old place.
    pub fn info_file(&self) -> PathBuf {
        if self.meta_info.exists() || !self.base.join("backup.info").exists() {
            self.meta_info.clone()
        } else {
            self.base.join("backup.info")
        }
    }

    /// Whether the backup's metadata is still in `base/<id>/backup.info` (Barman before
    /// 3.13.2, maybe 3.4 itself).
    pub fn is_older_layout(&self) -> bool {
        self.info_file() != self.meta_info
    }

    /// The keep annotation of Barman before 3.13.3: `base/<id>/annotations/keep`.
    pub fn older_keep(&self) -> PathBuf {
        self.base.join("annotations").join("keep")
    }

    /// An annotation file: `meta/<id>-<name>`.
    pub fn annotation(&self, id: &str, name: &str) -> PathBuf {
        self.meta.join(format!("{id}-{name}"))
    }
}

/// Write the `delete_this` mark of an interrupted delete.
pub fn mark_for_deletion(paths: &BackupPaths, id: &str) -> Result<()> {
    fsutil::create_dir_all(&paths.meta)?;
    fsutil::write_durably(&paths.annotation(id, "delete_this"), b"")
}

/// Remove the backup's data (the data directory and tablespaces): the first step,
/// after which the backup cannot be restored any more.
pub fn remove_backup_data(paths: &BackupPaths, info: &BackupInfo) -> Result<()> {
    let mut dirs = vec![paths.base.join("data"), paths.base.join("pgdata")];
    for t in info.tablespaces.iter().flatten() {
        dirs.push(paths.base.join(t.oid.to_string()));
    }
    for dir in dirs {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove {}", dir.display())),
        }
    }
    Ok(())
}

/// The last steps: the mark, the base directory, then `backup.info`.
pub fn remove_backup_entry(paths: &BackupPaths, id: &str) -> Result<()> {
    for annotation in ["delete_this", "keep"] {
        let path = paths.annotation(id, annotation);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove {}", path.display())),
        }
    }
    match fs::remove_dir_all(&paths.base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "remove {}; please remove that directory by hand",
                    paths.base.display()
                )
            })
        }
    }
    if let Some(parent) = paths.base.parent() {
        if parent.exists() {
            fsutil::fsync_dir(parent)?;
        }
    }
    match fs::remove_file(&paths.meta_info) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove {}", paths.meta_info.display())),
    }
    if paths.meta.exists() {
        fsutil::fsync_dir(&paths.meta)?;
    }
    Ok(())
}

/// Save a `backup.info` durably where it lives.
///
/// A file of the older layout (`base/<id>/backup.info`) is Barman 3.4's, which refuses a
/// file with keys it does not know: it keeps the keys it had, with their new values.
pub fn save_info(paths: &BackupPaths, info: &BackupInfo) -> Result<()> {
    let path = paths.info_file();
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all(dir)?;
    }
    let mut text = info.to_text();
    if paths.is_older_layout() {
        let old = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        text = keep_only_keys_of(&text, &old);
    }
    fsutil::write_durably(&path, text.as_bytes())
}

/// The lines of `text` whose key is one of `old`'s.
fn keep_only_keys_of(text: &str, old: &str) -> String {
    let key = |line: &str| line.split_once('=').map(|(k, _)| k.trim().to_string());
    let known: std::collections::HashSet<String> = old.lines().filter_map(key).collect();
    text.lines()
        .filter(|line| key(line).is_some_and(|k| known.contains(&k)))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_layout_file_keeps_only_its_own_keys() {
        let dir = tempfile::tempdir().unwrap();
        let paths = BackupPaths {
            base: dir.path().join("base/20261122T020235"),
            meta_info: dir.path().join("meta/20261122T020235-backup.info"),
            meta: dir.path().join("meta"),
        };
        fs::create_dir_all(&paths.base).unwrap();
        // What Barman 3.4 writes: no summarize_wal, cluster_size, parent_backup_id, ...
        let old = "begin_wal=000000010000000000000002\nerror=None\nmode=postgres\n\
                   status=WAITING_FOR_WALS\nversion=150020\n";
        fs::write(paths.base.join("backup.info"), old).unwrap();
        let mut info =
            BackupInfo::parse(&paths.base.join("backup.info"), "20261122T020235", old).unwrap();
        info.status = Some(super::super::BackupStatus::Done);
        save_info(&paths, &info).unwrap();
        assert_eq!(
            fs::read_to_string(paths.base.join("backup.info")).unwrap(),
            old.replace("WAITING_FOR_WALS", "DONE")
        );
        assert!(!paths.meta_info.exists());
        // A backup of the newer layout gets every key.
        fs::create_dir_all(&paths.meta).unwrap();
        fs::write(&paths.meta_info, old).unwrap();
        save_info(&paths, &info).unwrap();
        let new = fs::read_to_string(&paths.meta_info).unwrap();
        assert!(
            new.contains("\nsummarize_wal=None\n") && new.contains("\nstatus=DONE\n"),
            "{new}"
        );
    }

    #[test]
    fn archived_files_live_in_hash_directories() {
        let w = Path::new("/w");
        assert_eq!(
            archived_path(w, "000000010000000200000003"),
            Path::new("/w/0000000100000002/000000010000000200000003")
        );
        assert_eq!(
            archived_path(w, "00000002.history"),
            Path::new("/w/00000002.history")
        );
        assert_eq!(
            archived_path(w, "000000010000000200000003.00000028.backup"),
            Path::new("/w/0000000100000002/000000010000000200000003.00000028.backup")
        );
    }
}
