//! The storing side of a backup, on its own thread: it receives the BASE_BACKUP stream as
//! [`Chunk`]s through a bounded channel (a slow disk slows the socket down instead of
//! growing memory), extracts or stores each archive, checks every file against the
//! manifest, writes the manifest, and fsyncs everything before it reports success.
//!
//! Layouts (BARMAN.md §3.1): plain backups are a data directory `base/<id>/data` with each
//! tablespace in `base/<id>/<oid>` (and `data/pg_tblspc/<oid>` pointing there); tar backups
//! keep `base.tar[.gz|.lz4|.zst]`, `<oid>.tar[...]` and `backup_manifest` in
//! `base/<id>/data`, as `pg_basebackup -Ft` writes them for Barman.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, Bytes};
use tokio::sync::mpsc::Receiver;

use super::archive::{parse_archive_name, read_archive, ArchiveSpec, Destination};
use super::compress::{decoder, ArchiveWriter, Compression, Method};
use super::manifest::{compare, ChecksumAlgorithm, Inventory, Manifest};

/// What the network side sends to the storing side.
#[derive(Debug)]
pub enum Chunk {
    /// The backup started: the OIDs of its tablespaces.
    Begin {
        /// The user tablespaces.
        tablespaces: Vec<u32>,
    },
    /// A new archive.
    Archive {
        /// The name the server gave (`base.tar`, `16395.tar.gz`).
        name: String,
        /// Its tablespace; `None` for the data directory.
        tablespace: Option<u32>,
    },
    /// Bytes of the current archive.
    Data(Bytes),
    /// Bytes of the manifest.
    Manifest(Bytes),
    /// The server finished the backup.
    End,
}

/// How the archives are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Extracted into directories; `server` is the server-side compression to undo.
    Plain {
        /// Server-side compression of the received archives.
        server: Option<Method>,
    },
    /// Kept as tar files, compressed here (`client`) or by the server (`server`).
    Tar {
        /// Client-side compression.
        client: Option<Compression>,
        /// Server-side compression (the archives are stored as received).
        server: Option<Method>,
    },
}

impl Layout {
    /// The compression recorded in `backup.info` (tar layouts only, as Barman does).
    pub fn recorded_compression(&self) -> Option<Method> {
        match self {
            Layout::Plain { .. } => None,
            Layout::Tar { client, server } => client.map(|c| c.method).or(*server),
        }
    }

    fn server(&self) -> Option<Method> {
        match self {
            Layout::Plain { server } | Layout::Tar { server, .. } => *server,
        }
    }
}

/// Where and how to store one backup.
#[derive(Debug, Clone)]
pub struct StorePlan {
    /// `base/<id>`.
    pub backup_dir: PathBuf,
    /// The layout.
    pub layout: Layout,
    /// The cluster's system identifier, checked against a version 2 manifest.
    pub system_identifier: Option<u64>,
}

impl StorePlan {
    /// `base/<id>/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.backup_dir.join("data")
    }
}

/// What was stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The content of `backup_label`.
    pub backup_label: String,
    /// The manifest.
    pub manifest: Manifest,
    /// Files in the backup.
    pub files: u64,
    /// Their bytes (uncompressed).
    pub bytes: u64,
}

/// The channel, read as a sequence of control chunks with archive data in between.
struct Feed {
    rx: Receiver<Chunk>,
    pending: Option<Chunk>,
    current: Bytes,
}

impl Feed {
    fn next_control(&mut self) -> Result<Chunk> {
        if let Some(chunk) = self.pending.take() {
            return Ok(chunk);
        }
        match self.rx.blocking_recv() {
            Some(Chunk::Data(_)) => bail!("the server sent archive data outside an archive"),
            Some(chunk) => Ok(chunk),
            None => bail!("the backup stream ended early"),
        }
    }
}

/// The data of the current archive; end of file at the next control chunk. Every chunk
/// also goes whole to `copy`, when there is one.
struct ArchiveReader<'a> {
    feed: &'a mut Feed,
    done: bool,
    copy: Option<&'a mut ArchiveWriter>,
}

impl Read for ArchiveReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.feed.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.feed.rx.blocking_recv() {
                Some(Chunk::Data(data)) => {
                    if let Some(copy) = self.copy.as_mut() {
                        copy.send(data.clone())?;
                    }
                    self.feed.current = data;
                }
                Some(other) => {
                    self.feed.pending = Some(other);
                    self.done = true;
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the backup stream ended early",
                    ))
                }
            }
        }
        let n = buf.len().min(self.feed.current.len());
        buf[..n].copy_from_slice(&self.feed.current[..n]);
        self.feed.current.advance(n);
        Ok(n)
    }
}

/// Store a backup from the chunks of `rx`.
pub fn store(rx: Receiver<Chunk>, plan: &StorePlan) -> Result<Stored> {
    let mut feed = Feed {
        rx,
        pending: None,
        current: Bytes::new(),
    };
    let data_dir = plan.data_dir();
    crate::fsutil::create_dir_all(&data_dir)?;
    let tablespaces = match feed.next_control()? {
        Chunk::Begin { tablespaces } => tablespaces,
        other => bail!("the backup stream started with {other:?}"),
    };
    let mut tablespace_dirs = BTreeMap::new();
    for oid in &tablespaces {
        let dir = plan.backup_dir.join(oid.to_string());
        if matches!(plan.layout, Layout::Plain { .. }) {
            crate::fsutil::create_dir_all(&dir)?;
        }
        tablespace_dirs.insert(*oid, dir);
    }
    let mut inventory = Inventory::default();
    let mut seen_archives: Vec<Option<u32>> = Vec::new();
    let mut label = None;
    let mut manifest_bytes: Vec<u8> = Vec::new();
    let (mut files, mut bytes) = (0u64, 0u64);
    loop {
        match feed.next_control()? {
            Chunk::Begin { .. } => bail!("the server started the backup twice"),
            Chunk::Data(_) => unreachable!("next_control never returns data"),
            Chunk::Archive { name, tablespace } => {
                if !manifest_bytes.is_empty() {
                    bail!("the server sent an archive after the manifest");
                }
                let (named_oid, suffix) = parse_archive_name(&name).map_err(|e| anyhow!(e))?;
                if named_oid != tablespace && tablespace.is_some() {
                    bail!("the server sent archive {name} for tablespace {tablespace:?}");
                }
                if suffix != plan.layout.server().map(Method::name) {
                    bail!("the server sent archive {name}, which is not compressed as requested");
                }
                if let Some(oid) = named_oid {
                    if !tablespace_dirs.contains_key(&oid) {
                        bail!("the server sent archive {name} for an unknown tablespace");
                    }
                }
                if seen_archives.contains(&named_oid) {
                    bail!("the server sent archive {name} twice");
                }
                seen_archives.push(named_oid);
                let spec = ArchiveSpec {
                    name: &name,
                    tablespace: named_oid,
                    tablespace_dirs: &tablespace_dirs,
                    algorithm: ChecksumAlgorithm::Crc32c,
                };
                let report = store_archive(&mut feed, plan, &spec, &data_dir, &mut inventory)?;
                files += report.files;
                bytes += report.bytes;
                if report.backup_label.is_some() {
                    label = report.backup_label;
                }
            }
            Chunk::Manifest(data) => manifest_bytes.extend_from_slice(&data),
            Chunk::End => break,
        }
    }
    if !seen_archives.contains(&None) {
        bail!("the server sent no archive of the data directory");
    }
    for oid in tablespace_dirs.keys() {
        if !seen_archives.contains(&Some(*oid)) {
            bail!("the server sent no archive of tablespace {oid}");
        }
    }
    if manifest_bytes.is_empty() {
        bail!("the server sent no backup manifest");
    }
    let manifest_path = data_dir.join("backup_manifest");
    write_new(&manifest_path, &manifest_bytes)?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| anyhow!(e))?;
    if let (Some(listed), Some(ours)) = (manifest.system_identifier, plan.system_identifier) {
        if listed != ours {
            bail!("the manifest is for system {listed}, the server is system {ours}");
        }
    }
    let problems = compare(&manifest, &inventory, &[]);
    if !problems.is_empty() {
        let shown: Vec<String> = problems.iter().take(5).map(|p| p.to_string()).collect();
        bail!(
            "the backup does not match its manifest ({} problem{}): {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            shown.join("; ")
        );
    }
    let label = label.ok_or_else(|| anyhow!("the data directory archive has no backup_label"))?;
    let backup_label = String::from_utf8(label).context("backup_label is not UTF-8")?;
    sync_tree(&plan.backup_dir)?;
    Ok(Stored {
        backup_label,
        manifest,
        files,
        bytes,
    })
}

fn store_archive(
    feed: &mut Feed,
    plan: &StorePlan,
    spec: &ArchiveSpec<'_>,
    data_dir: &Path,
    inventory: &mut Inventory,
) -> Result<super::archive::ArchiveReport> {
    match plan.layout {
        Layout::Plain { server } => {
            let mut reader = ArchiveReader {
                feed,
                done: false,
                copy: None,
            };
            let dest = match spec.tablespace {
                Some(oid) => plan.backup_dir.join(oid.to_string()),
                None => data_dir.to_path_buf(),
            };
            let report = match server {
                Some(m) => read_archive(
                    decoder(m, &mut reader)?,
                    spec,
                    &Destination::Extract(dest),
                    inventory,
                )?,
                None => read_archive(&mut reader, spec, &Destination::Extract(dest), inventory)?,
            };
            io::copy(&mut reader, &mut io::sink())
                .with_context(|| format!("read {}", spec.name))?;
            Ok(report)
        }
        Layout::Tar { client, server } => {
            let mut name = spec.name.to_string();
            if let Some(c) = &client {
                name.push_str(c.method.suffix());
            }
            let path = data_dir.join(&name);
            let file = create_new(&path)?;
            let mut writer = ArchiveWriter::new(file, &path, client.as_ref())
                .with_context(|| format!("start writing {}", path.display()))?;
            let report = {
                let mut reader = ArchiveReader {
                    feed,
                    done: false,
                    copy: Some(&mut writer),
                };
                let report = match server {
                    Some(m) => read_archive(
                        decoder(m, &mut reader)?,
                        spec,
                        &Destination::Inspect,
                        inventory,
                    ),
                    None => read_archive(&mut reader, spec, &Destination::Inspect, inventory),
                }
                .with_context(|| format!("store {}", path.display()))?;
                io::copy(&mut reader, &mut io::sink())
                    .with_context(|| format!("write {}", path.display()))?;
                report
            };
            writer
                .finish()
                .with_context(|| format!("write {}", path.display()))?;
            Ok(report)
        }
    }
}

fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))
}

fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    let mut file = create_new(path)?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

/// fsync every file and directory under `root` (links are not followed), children first.
pub fn sync_tree(root: &Path) -> Result<()> {
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, visited)) = stack.pop() {
        if visited {
            crate::fsutil::fsync_dir(&dir)?;
            continue;
        }
        stack.push((dir.clone(), true));
        for entry in fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
            let entry = entry.with_context(|| format!("list {}", dir.display()))?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push((entry.path(), false));
            } else if kind.is_file() {
                let path = entry.path();
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("fsync {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Bytes of the files under `root` (links not followed): a backup's `size`.
pub fn tree_size(root: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::tests::{raw_entry, tar_of};
    use crate::backup::manifest::tests::manifest_text;

    fn feed(chunks: Vec<Chunk>) -> Receiver<Chunk> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        std::thread::spawn(move || {
            for c in chunks {
                if tx.blocking_send(c).is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn backup_chunks(base: Vec<u8>, tbs: Vec<u8>, manifest: Vec<u8>) -> Vec<Chunk> {
        let mut chunks = vec![
            Chunk::Begin {
                tablespaces: vec![16395],
            },
            Chunk::Archive {
                name: "16395.tar".into(),
                tablespace: Some(16395),
            },
        ];
        for piece in tbs.chunks(700) {
            chunks.push(Chunk::Data(Bytes::copy_from_slice(piece)));
        }
        chunks.push(Chunk::Archive {
            name: "base.tar".into(),
            tablespace: None,
        });
        for piece in base.chunks(1000) {
            chunks.push(Chunk::Data(Bytes::copy_from_slice(piece)));
        }
        chunks.push(Chunk::Manifest(Bytes::from(manifest)));
        chunks.push(Chunk::End);
        chunks
    }

    fn sample() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let label: &[u8] = b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n";
        let base = tar_of(&[
            raw_entry(b"backup_label", b'0', b"", label),
            raw_entry(b"base/1/", b'5', b"", b""),
            raw_entry(b"base/1/123", b'0', b"", &[3u8; 5000]),
            raw_entry(b"pg_tblspc/16395", b'2', b"/srv/ts", b""),
        ]);
        let tbs = tar_of(&[raw_entry(b"PG_15_1/5/9", b'0', b"", b"tbs data")]);
        let manifest = manifest_text(
            &[
                ("backup_label", label),
                ("base/1/123", &[3u8; 5000]),
                ("pg_tblspc/16395/PG_15_1/5/9", b"tbs data"),
            ],
            2,
        );
        (base, tbs, manifest)
    }

    #[test]
    fn a_plain_backup_is_extracted_and_matches_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let (base, tbs, manifest) = sample();
        let plan = StorePlan {
            backup_dir: dir.path().join("20260101T000000"),
            layout: Layout::Plain { server: None },
            system_identifier: Some(7710809521602424182),
        };
        let stored = store(feed(backup_chunks(base, tbs, manifest.clone())), &plan).unwrap();
        assert_eq!(stored.files, 3);
        assert!(stored.backup_label.starts_with("START WAL LOCATION"));
        let b = &plan.backup_dir;
        assert_eq!(fs::read(b.join("data/base/1/123")).unwrap(), [3u8; 5000]);
        assert_eq!(fs::read(b.join("16395/PG_15_1/5/9")).unwrap(), b"tbs data");
        assert_eq!(
            fs::read_link(b.join("data/pg_tblspc/16395")).unwrap(),
            b.join("16395")
        );
        assert_eq!(fs::read(b.join("data/backup_manifest")).unwrap(), manifest);
    }

    #[test]
    fn a_compressed_tar_backup_keeps_the_archives() {
        for method in [Method::Gzip, Method::Lz4, Method::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let (base, tbs, manifest) = sample();
            let plan = StorePlan {
                backup_dir: dir.path().join("b"),
                layout: Layout::Tar {
                    client: Some(Compression {
                        method,
                        level: None,
                        workers: None,
                    }),
                    server: None,
                },
                system_identifier: None,
            };
            store(feed(backup_chunks(base.clone(), tbs, manifest)), &plan).unwrap();
            let stored =
                fs::read(plan.data_dir().join(format!("base.tar{}", method.suffix()))).unwrap();
            let mut plain = Vec::new();
            decoder(method, stored.as_slice())
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            assert!(plain == base, "{method:?}");
            assert!(plan.data_dir().join("backup_manifest").exists());
        }
    }

    #[test]
    fn a_mismatch_with_the_manifest_fails_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (base, tbs, _) = sample();
        let manifest = manifest_text(&[("base/1/123", &[4u8; 5000])], 1);
        let plan = StorePlan {
            backup_dir: dir.path().join("b"),
            layout: Layout::Plain { server: None },
            system_identifier: None,
        };
        let err = format!(
            "{:#}",
            store(feed(backup_chunks(base, tbs, manifest)), &plan).unwrap_err()
        );
        assert!(
            err.contains("does not match its manifest (3 problems)"),
            "{err}"
        );
        assert!(
            err.contains("checksum mismatch for file \"base/1/123\""),
            "{err}"
        );
        assert!(err.contains("\"backup_label\" is present on disk but not in the manifest"));
    }

    #[test]
    fn a_stream_cut_short_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (base, tbs, manifest) = sample();
        let mut chunks = backup_chunks(base, tbs, manifest);
        chunks.truncate(5);
        let plan = StorePlan {
            backup_dir: dir.path().join("b"),
            layout: Layout::Plain { server: None },
            system_identifier: None,
        };
        let err = format!("{:#}", store(feed(chunks), &plan).unwrap_err());
        assert!(err.contains("ended early"), "{err}");
    }

    #[test]
    fn a_hostile_archive_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = vec![
            Chunk::Begin {
                tablespaces: vec![],
            },
            Chunk::Archive {
                name: "../../x.tar".into(),
                tablespace: None,
            },
        ];
        let plan = StorePlan {
            backup_dir: dir.path().join("b"),
            layout: Layout::Tar {
                client: None,
                server: None,
            },
            system_identifier: None,
        };
        let err = format!("{:#}", store(feed(chunks), &plan).unwrap_err());
        assert!(err.contains("unexpected archive name"), "{err}");
    }
}
