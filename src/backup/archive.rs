//! One tar archive of a BASE_BACKUP, read as it streams: every entry's path is checked
//! before use, every regular file is checksummed (and, for plain backups, written out),
//! and what was seen is added to the backup's [`Inventory`] for the manifest check.
//!
//! Rules for entries (ARCHITECTURE.md "Durability and safety"; what `basebackup.c` sends,
//! PROTOCOL.md §3.6):
//! - paths are relative, without `..` or NUL; `.` and empty components are dropped;
//! - regular files and directories only, plus symbolic links named `pg_tblspc/<oid>` in the
//!   base archive for a tablespace of this backup; a plain backup points them at the
//!   tablespace's directory in the catalogue (`base/<id>/<oid>`), as Barman's
//!   `--tablespace-mapping` does; any other link, hard link or special file is refused;
//! - nothing is written below a link, and no entry may replace an earlier one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::manifest::{ChecksumAlgorithm, Checksummer, Inventory, SeenFile};
use crate::fsutil::WriteBehind;

/// Where an archive's content goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Extract into this directory (the data directory or a tablespace's).
    Extract(PathBuf),
    /// Only read and check (the archive itself is stored by the caller).
    Inspect,
}

/// What an archive is.
#[derive(Debug, Clone)]
pub struct ArchiveSpec<'a> {
    /// Its name, for messages (`base.tar`, `16395.tar.gz`).
    pub name: &'a str,
    /// The tablespace it holds; `None` for the data directory.
    pub tablespace: Option<u32>,
    /// Where each tablespace of the backup is extracted (for the `pg_tblspc` links);
    /// every tablespace of the backup is a key.
    pub tablespace_dirs: &'a BTreeMap<u32, PathBuf>,
    /// The checksum to compute for each file.
    pub algorithm: ChecksumAlgorithm,
}

/// What reading an archive found, besides the inventory.
#[derive(Debug, Clone, Default)]
pub struct ArchiveReport {
    /// Regular files.
    pub files: u64,
    /// Bytes of regular files.
    pub bytes: u64,
    /// The content of `backup_label` (base archive).
    pub backup_label: Option<Vec<u8>>,
}

/// Check a path from a tar entry and return it normalised (components joined by `/`).
pub fn safe_relative_path(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.contains(&0) {
        return Err("the path contains a NUL byte".into());
    }
    if raw.first() == Some(&b'/') {
        return Err("the path is absolute".into());
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("the path contains \"..\"".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("the path is empty".into());
    }
    Ok(parts.join(&b'/'))
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn to_path(rel: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(rel))
}

/// Read one tar archive from `reader` to its end-of-archive marker.
pub fn read_archive<R: Read>(
    reader: R,
    spec: &ArchiveSpec<'_>,
    destination: &Destination,
    inventory: &mut Inventory,
) -> Result<ArchiveReport> {
    let mut report = ArchiveReport::default();
    let prefix: Vec<u8> = match spec.tablespace {
        Some(oid) => format!("pg_tblspc/{oid}/").into_bytes(),
        None => Vec::new(),
    };
    let mut links: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut archive = tar::Archive::new(reader);
    let mut buf = vec![0u8; 256 * 1024];
    let entries = archive
        .entries()
        .with_context(|| format!("read {}", spec.name))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("read {}", spec.name))?;
        let raw_path = entry.path_bytes().into_owned();
        let refuse = |why: &str| {
            anyhow!(
                "refused tar entry \"{}\" of {}: {why}",
                show(&raw_path),
                spec.name
            )
        };
        let rel = safe_relative_path(&raw_path).map_err(|why| refuse(&why))?;
        if let Some(link) = links
            .iter()
            .find(|l| rel.starts_with(l) && rel.get(l.len()) == Some(&b'/'))
        {
            return Err(refuse(&format!(
                "it lies below the symbolic link \"{}\"",
                show(link)
            )));
        }
        let target = match destination {
            Destination::Extract(dir) => Some(dir.join(to_path(&rel))),
            Destination::Inspect => None,
        };
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let key = [prefix.as_slice(), rel.as_slice()].concat();
                if inventory.files.contains_key(&key) {
                    return Err(refuse("the archive holds this file twice"));
                }
                let mut file = match &target {
                    Some(path) => {
                        if let Some(parent) = path.parent() {
                            make_dirs(parent)?;
                        }
                        Some(WriteBehind::new(
                            OpenOptions::new()
                                .write(true)
                                .create_new(true)
                                .mode(0o600)
                                .custom_flags(libc::O_NOFOLLOW)
                                .open(path)
                                .map_err(|e| {
                                    if replaces_something(&e) {
                                        refuse(&format!("cannot create {}: {e}", path.display()))
                                    } else {
                                        anyhow::Error::new(e)
                                            .context(format!("create {}", path.display()))
                                    }
                                })?,
                        ))
                    }
                    None => None,
                };
                let keep_label = spec.tablespace.is_none() && rel == b"backup_label";
                let mut label = Vec::new();
                let mut sum = Checksummer::new(spec.algorithm);
                let mut size = 0u64;
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("read \"{}\" from {}", show(&raw_path), spec.name)
                            })
                        }
                    };
                    let chunk = &buf[..n];
                    sum.update(chunk);
                    size += n as u64;
                    if keep_label && label.len() < 1 << 20 {
                        label.extend_from_slice(chunk);
                    }
                    if let (Some(f), Some(path)) = (file.as_mut(), &target) {
                        f.write_all(chunk)
                            .with_context(|| format!("write {}", path.display()))?;
                    }
                }
                // The write-back of the file's tail starts now; the fsync comes at the end.
                drop(file.map(WriteBehind::into_inner));
                if size != entry.size() {
                    bail!(
                        "{} ends inside \"{}\" ({size} of {} bytes)",
                        spec.name,
                        show(&raw_path),
                        entry.size()
                    );
                }
                if keep_label {
                    report.backup_label = Some(label);
                }
                report.files += 1;
                report.bytes += size;
                inventory.files.insert(
                    key,
                    SeenFile {
                        size,
                        checksum: sum.finish(),
                        algorithm: spec.algorithm,
                    },
                );
            }
            tar::EntryType::Directory => {
                if let Some(path) = &target {
                    make_dirs(path)?;
                }
            }
            tar::EntryType::Symlink => {
                let link_target = entry
                    .link_name_bytes()
                    .map(|l| show(&l))
                    .unwrap_or_default();
                let oid = rel
                    .strip_prefix(b"pg_tblspc/")
                    .and_then(|o| std::str::from_utf8(o).ok())
                    .and_then(|o| o.parse::<u32>().ok());
                let dir = match (spec.tablespace, oid) {
                    (None, Some(oid)) => spec.tablespace_dirs.get(&oid),
                    _ => None,
                };
                let Some(dir) = dir else {
                    return Err(refuse(&format!(
                        "symbolic links (here to \"{link_target}\") are accepted only as pg_tblspc/<oid> for a tablespace of the backup"
                    )));
                };
                if let Some(path) = &target {
                    if let Some(parent) = path.parent() {
                        make_dirs(parent)?;
                    }
                    std::os::unix::fs::symlink(dir, path).map_err(|e| {
                        if replaces_something(&e) {
                            refuse(&format!("cannot create the link {}: {e}", path.display()))
                        } else {
                            anyhow::Error::new(e)
                                .context(format!("create the link {}", path.display()))
                        }
                    })?;
                }
                links.insert(rel);
            }
            other => {
                return Err(refuse(&format!(
                    "entries of type {other:?} are not accepted (regular files, directories and tablespace links only)"
                )))
            }
        }
    }
    // The entries end at a zero block; the rest of the stream must be the end-of-archive
    // marker (zeros), or the archive was cut short.
    let mut rest = archive.into_inner();
    let mut trailer = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("read {}", spec.name)),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            bail!("{} has data after its end-of-archive marker", spec.name);
        }
        trailer += n as u64;
    }
    if trailer < 512 {
        bail!("{} ends without its end-of-archive marker", spec.name);
    }
    Ok(report)
}

/// Whether creating an entry failed because something is already there (an entry
/// replacing an earlier one, or a link: the archive's fault), rather than for a reason
/// of this machine's (a full disk, permissions), which is not reported as a refusal.
fn replaces_something(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ELOOP)
}

/// Create a directory and its parents (0700); an existing one must be a real directory.
fn make_dirs(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => bail!("{} exists and is not a directory", path.display()),
        Err(_) => {}
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("create directory {}", path.display()))
}

/// The parts of an archive name the server sent: `base.tar` or `<oid>.tar`, plus the
/// server-side compression suffix. Any other name is refused (it becomes a file name).
pub fn parse_archive_name(name: &str) -> Result<(Option<u32>, Option<&str>), String> {
    let (stem, suffix) = match name.find(".tar") {
        Some(i) => (&name[..i], &name[i + 4..]),
        None => return Err(format!("unexpected archive name \"{name}\"")),
    };
    let compression = match suffix {
        "" => None,
        ".gz" => Some("gzip"),
        ".lz4" => Some("lz4"),
        ".zst" => Some("zstd"),
        _ => return Err(format!("unexpected archive name \"{name}\"")),
    };
    let oid = match stem {
        "base" => None,
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Some(
            digits
                .parse()
                .map_err(|_| format!("unexpected archive name \"{name}\""))?,
        ),
        _ => return Err(format!("unexpected archive name \"{name}\"")),
    };
    Ok((oid, compression))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A raw ustar header with any name (the tar crate's builder refuses hostile ones).
    pub(crate) fn raw_entry(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000600\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link);
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

    pub(crate) fn tar_of(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn run(
        tar: &[u8],
        tablespace: Option<u32>,
        dest: &Destination,
    ) -> (Result<ArchiveReport>, Inventory) {
        let mut dirs = BTreeMap::new();
        dirs.insert(16395u32, PathBuf::from("/backups/pg/base/X/16395"));
        let spec = ArchiveSpec {
            name: "base.tar",
            tablespace,
            tablespace_dirs: &dirs,
            algorithm: ChecksumAlgorithm::Crc32c,
        };
        let mut inv = Inventory::default();
        let r = read_archive(tar, &spec, dest, &mut inv);
        (r, inv)
    }

    #[test]
    fn paths_are_checked_and_normalised() {
        assert_eq!(safe_relative_path(b"base/1/2").unwrap(), b"base/1/2");
        assert_eq!(safe_relative_path(b"./base//1/").unwrap(), b"base/1");
        assert!(safe_relative_path(b"/etc/passwd").is_err());
        assert!(safe_relative_path(b"base/../../x").is_err());
        assert!(safe_relative_path(b"..").is_err());
        assert!(safe_relative_path(b"./").is_err());
        assert!(safe_relative_path(b"a\0b").is_err());
    }

    #[test]
    fn a_plain_archive_is_extracted_and_inventoried() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            raw_entry(
                b"backup_label",
                b'0',
                b"",
                b"START WAL LOCATION: 0/2000028\n",
            ),
            raw_entry(b"base/", b'5', b"", b""),
            raw_entry(b"base/1/", b'5', b"", b""),
            raw_entry(b"base/1/123", b'0', b"", &[7u8; 9000]),
            raw_entry(b"pg_tblspc/16395", b'2', b"/srv/ts1", b""),
        ]);
        let (r, inv) = run(&tar, None, &Destination::Extract(dir.path().into()));
        let r = r.unwrap();
        assert_eq!(r.files, 2);
        assert_eq!(r.bytes, 9000 + 30);
        assert_eq!(
            r.backup_label.unwrap(),
            b"START WAL LOCATION: 0/2000028\n".to_vec()
        );
        assert_eq!(
            fs::read(dir.path().join("base/1/123")).unwrap(),
            [7u8; 9000]
        );
        assert_eq!(
            fs::read_link(dir.path().join("pg_tblspc/16395")).unwrap(),
            Path::new("/backups/pg/base/X/16395")
        );
        assert_eq!(inv.files[&b"base/1/123".to_vec()].size, 9000);
        // A tablespace archive's files are listed under pg_tblspc/<oid>/.
        let tar = tar_of(&[raw_entry(b"PG_15_1/5/1", b'0', b"", b"x")]);
        let (r, inv) = run(&tar, Some(16395), &Destination::Inspect);
        r.unwrap();
        assert!(inv
            .files
            .contains_key(b"pg_tblspc/16395/PG_15_1/5/1".as_slice()));
    }

    #[test]
    fn hostile_entries_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (raw_entry(b"../evil", b'0', b"", b"x"), "contains \"..\""),
            (raw_entry(b"/etc/evil", b'0', b"", b"x"), "absolute"),
            (raw_entry(b"base/x", b'2', b"/etc", b""), "symbolic links"),
            (
                raw_entry(b"pg_tblspc/99", b'2', b"/etc", b""),
                "symbolic links",
            ),
            (raw_entry(b"base/h", b'1', b"base/1", b""), "not accepted"),
            (raw_entry(b"dev", b'3', b"", b""), "not accepted"),
        ];
        for (entry, why) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (r, _) = run(
                &tar_of(&[entry]),
                None,
                &Destination::Extract(dir.path().into()),
            );
            let err = format!("{:#}", r.unwrap_err());
            assert!(
                err.contains("refused tar entry") && err.contains(why),
                "{err}"
            );
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "{err}");
        }
        // Writing through an accepted tablespace link is refused too.
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            raw_entry(b"pg_tblspc/16395", b'2', b"/srv/ts1", b""),
            raw_entry(b"pg_tblspc/16395/PG_15/x", b'0', b"", b"x"),
        ]);
        let (r, _) = run(&tar, None, &Destination::Inspect);
        assert!(format!("{:#}", r.unwrap_err()).contains("below the symbolic link"));
        let _ = dir;
        // A link in a tablespace archive, and a duplicate file.
        let tar = tar_of(&[raw_entry(b"pg_tblspc/16395", b'2', b"/x", b"")]);
        assert!(run(&tar, Some(16395), &Destination::Inspect).0.is_err());
        let tar = tar_of(&[
            raw_entry(b"a", b'0', b"", b"x"),
            raw_entry(b"./a", b'0', b"", b"y"),
        ]);
        let err = format!(
            "{:#}",
            run(&tar, None, &Destination::Inspect).0.unwrap_err()
        );
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn a_truncated_archive_is_an_error() {
        let tar = raw_entry(b"base/1/123", b'0', b"", &[7u8; 9000]);
        let (r, _) = run(&tar[..5000], None, &Destination::Inspect);
        assert!(r.is_err());
    }

    #[test]
    fn archive_names_are_checked() {
        assert_eq!(parse_archive_name("base.tar").unwrap(), (None, None));
        assert_eq!(
            parse_archive_name("16395.tar.zst").unwrap(),
            (Some(16395), Some("zstd"))
        );
        for bad in [
            "../base.tar",
            "base.tar.bz2",
            "x.tar",
            ".tar",
            "base",
            "1/2.tar",
        ] {
            assert!(parse_archive_name(bad).is_err(), "{bad}");
        }
    }
}
