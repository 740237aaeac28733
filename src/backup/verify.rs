//! `verify-backup`: check a stored backup against its `backup_manifest`, natively (what
//! Barman delegates to `pg_verifybackup`, PROTOCOL.md §4.4 steps 1–3): the manifest's own
//! checksum, then every file's presence, size and checksum, and no unlisted files except
//! `pg_verifybackup`'s ignore list. Plain backups are read from their directories
//! (tablespaces through `pg_tblspc/<oid>`), tar backups from their archives, compressed or
//! not. WAL is not parsed here (the archive holds it; `check-backup` checks it is there).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::archive::{parse_archive_name, read_archive, ArchiveSpec, Destination};
use super::compress::{decoder, Method};
use super::manifest::{
    compare, is_ignored, ChecksumAlgorithm, Checksummer, Inventory, Manifest, SeenFile,
    VERIFY_IGNORED,
};

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Files checked.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Problems found, one message each (empty: the backup matches its manifest).
    pub problems: Vec<String>,
}

/// Verify the backup whose data directory (`base/<id>/data`) is `data_dir`.
/// `system_id` is the one recorded in `backup.info`, compared with a version 2 manifest.
pub fn verify(data_dir: &Path, system_id: Option<u64>) -> Result<Verification> {
    let manifest_path = data_dir.join("backup_manifest");
    let bytes = match fs::read(&manifest_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "{} not found: this backup has no manifest to verify against",
            manifest_path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("read {}", manifest_path.display())),
    };
    let manifest = Manifest::parse(&bytes).map_err(|e| anyhow!(e))?;
    let mut result = Verification::default();
    if let (Some(listed), Some(ours)) = (manifest.system_identifier, system_id) {
        if listed != ours {
            result.problems.push(format!(
                "manifest system identifier is {listed}, but the backup is of system {ours}"
            ));
        }
    }
    let archives = tar_archives(data_dir)?;
    let inventory = if archives.is_empty() {
        inventory_of_directory(data_dir, &manifest)?
    } else {
        inventory_of_archives(data_dir, &archives, &manifest)?
    };
    result.files = inventory.files.len() as u64;
    result.bytes = inventory.files.values().map(|f| f.size).sum();
    result.problems.extend(
        compare(&manifest, &inventory, VERIFY_IGNORED)
            .iter()
            .map(|p| p.to_string()),
    );
    Ok(result)
}

/// An archive of a tar backup: file name, tablespace, compression.
type ArchiveFile = (String, Option<u32>, Option<Method>);

/// The archives of a tar backup.
fn tar_archives(data_dir: &Path) -> Result<Vec<ArchiveFile>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(data_dir).with_context(|| format!("list {}", data_dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Ok((oid, compression)) = parse_archive_name(&name) {
            let method = compression.and_then(Method::from_name);
            found.push((name.clone(), oid, method));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The checksum algorithm the manifest uses (the first file's; PostgreSQL uses one).
fn algorithm_of(manifest: &Manifest) -> ChecksumAlgorithm {
    manifest
        .files
        .values()
        .next()
        .map(|f| f.algorithm)
        .unwrap_or(ChecksumAlgorithm::None)
}

fn inventory_of_archives(
    data_dir: &Path,
    archives: &[ArchiveFile],
    manifest: &Manifest,
) -> Result<Inventory> {
    let mut inventory = Inventory::default();
    let tablespace_dirs: BTreeMap<u32, PathBuf> = archives
        .iter()
        .filter_map(|(_, oid, _)| oid.map(|o| (o, data_dir.join(o.to_string()))))
        .collect();
    for (name, oid, method) in archives {
        let path = data_dir.join(name);
        let file = File::open(&path).with_context(|| format!("open {}", path.display()))?;
        let reader: Box<dyn Read> = match method {
            Some(m) => decoder(*m, io::BufReader::with_capacity(1 << 20, file))?,
            None => Box::new(io::BufReader::with_capacity(1 << 20, file)),
        };
        let spec = ArchiveSpec {
            name,
            tablespace: *oid,
            tablespace_dirs: &tablespace_dirs,
            algorithm: algorithm_of(manifest),
        };
        read_archive(reader, &spec, &Destination::Inspect, &mut inventory)
            .with_context(|| format!("read {}", path.display()))?;
    }
    Ok(inventory)
}

fn inventory_of_directory(data_dir: &Path, manifest: &Manifest) -> Result<Inventory> {
    let mut inventory = Inventory::default();
    let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(data_dir.to_path_buf(), Vec::new())];
    let mut buf = vec![0u8; 1 << 20];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
            let entry = entry.with_context(|| format!("list {}", dir.display()))?;
            let mut rel = prefix.clone();
            rel.extend_from_slice(entry.file_name().as_bytes());
            if is_ignored(&rel, &["pg_wal"]) {
                continue;
            }
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                rel.push(b'/');
                stack.push((path, rel));
            } else if kind.is_symlink() {
                // Tablespaces: pg_tblspc/<oid> leads to their directory.
                if rel.starts_with(b"pg_tblspc/") && rel.len() > 10 && !rel[10..].contains(&b'/') {
                    let target = fs::canonicalize(&path)
                        .with_context(|| format!("follow {}", path.display()))?;
                    rel.push(b'/');
                    stack.push((target, rel));
                }
            } else if kind.is_file() {
                let size = entry.metadata()?.len();
                let listed = manifest.files.get(&rel);
                let algorithm = listed.map_or(ChecksumAlgorithm::None, |f| f.algorithm);
                let mut sum = Checksummer::new(algorithm);
                // A size mismatch is reported without reading the file.
                if listed.is_some_and(|f| f.size == size) && algorithm != ChecksumAlgorithm::None {
                    let mut file =
                        File::open(&path).with_context(|| format!("open {}", path.display()))?;
                    loop {
                        let n = file
                            .read(&mut buf)
                            .with_context(|| format!("read {}", path.display()))?;
                        if n == 0 {
                            break;
                        }
                        sum.update(&buf[..n]);
                    }
                }
                inventory.files.insert(
                    rel,
                    SeenFile {
                        size,
                        checksum: sum.finish(),
                        algorithm,
                    },
                );
            }
        }
    }
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::tests::{raw_entry, tar_of};
    use crate::backup::manifest::tests::manifest_text;

    fn plain_backup(dir: &Path) {
        fs::create_dir_all(dir.join("data/base/1")).unwrap();
        fs::create_dir_all(dir.join("data/pg_tblspc")).unwrap();
        fs::create_dir_all(dir.join("data/pg_wal")).unwrap();
        fs::create_dir_all(dir.join("16395/PG_15_1")).unwrap();
        fs::write(dir.join("data/backup_label"), b"label").unwrap();
        fs::write(dir.join("data/base/1/1"), b"data").unwrap();
        fs::write(dir.join("data/pg_wal/000000010000000000000001"), b"wal").unwrap();
        fs::write(dir.join("16395/PG_15_1/x"), b"tbs").unwrap();
        std::os::unix::fs::symlink(dir.join("16395"), dir.join("data/pg_tblspc/16395")).unwrap();
        fs::write(
            dir.join("data/backup_manifest"),
            manifest_text(
                &[
                    ("backup_label", b"label"),
                    ("base/1/1", b"data"),
                    ("pg_tblspc/16395/PG_15_1/x", b"tbs"),
                ],
                2,
            ),
        )
        .unwrap();
    }

    #[test]
    fn a_plain_backup_verifies_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        plain_backup(dir.path());
        let data = dir.path().join("data");
        let ok = verify(&data, Some(7710809521602424182)).unwrap();
        assert_eq!(ok.problems, Vec::<String>::new());
        assert_eq!(ok.files, 4, "the manifest itself is seen but ignored");
        fs::write(data.join("base/1/1"), b"DATA").unwrap();
        fs::write(dir.path().join("16395/PG_15_1/x"), b"tbs+").unwrap();
        fs::write(data.join("base/1/2"), b"new").unwrap();
        fs::remove_file(data.join("backup_label")).unwrap();
        let bad = verify(&data, Some(1)).unwrap();
        assert_eq!(
            bad.problems,
            [
                "manifest system identifier is 7710809521602424182, but the backup is of system 1",
                "\"backup_label\" is present in the manifest but not on disk",
                "checksum mismatch for file \"base/1/1\"",
                "\"pg_tblspc/16395/PG_15_1/x\" has size 4 on disk but size 3 in the manifest",
                "\"base/1/2\" is present on disk but not in the manifest",
            ]
        );
    }

    #[test]
    fn a_compressed_tar_backup_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        let base = tar_of(&[
            raw_entry(b"backup_label", b'0', b"", b"label"),
            raw_entry(b"pg_tblspc/16395", b'2', b"/srv", b""),
        ]);
        let tbs = tar_of(&[raw_entry(b"PG_15_1/x", b'0', b"", b"tbs")]);
        for (name, bytes) in [("base.tar.zst", base), ("16395.tar.zst", tbs)] {
            let c = crate::backup::compress::Compression {
                method: Method::Zstd,
                level: None,
                workers: None,
            };
            let mut e = crate::backup::compress::Encoder::new(
                File::create(data.join(name)).unwrap(),
                Some(&c),
            )
            .unwrap();
            std::io::Write::write_all(&mut e, &bytes).unwrap();
            e.finish().unwrap();
        }
        let manifest = manifest_text(
            &[
                ("backup_label", b"label"),
                ("pg_tblspc/16395/PG_15_1/x", b"tbs"),
            ],
            1,
        );
        fs::write(data.join("backup_manifest"), &manifest).unwrap();
        assert!(verify(&data, None).unwrap().problems.is_empty());
        let other = manifest_text(&[("backup_label", b"lab")], 1);
        fs::write(data.join("backup_manifest"), other).unwrap();
        assert_eq!(verify(&data, None).unwrap().problems.len(), 2);
        fs::remove_file(data.join("backup_manifest")).unwrap();
        assert!(format!("{:#}", verify(&data, None).unwrap_err()).contains("no manifest"));
    }
}
