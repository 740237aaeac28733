//! The server's WAL archive as the recovery planner sees it ([`WalSource`]): the segments
//! listed in `xlog.db`, the timeline history files, the archiver's per-segment summaries
//! (`<server>-xlog.db.summaries`), summaries computed on the spot for segments archived
//! without one (by Barman, or before summaries existed), and the live `.partial` segment of
//! the streaming archiver.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use barman_protocol::wal::names::parse_segment_file_name;
use barman_protocol::wal::{
    validate_segment, SegmentSummary, SegmentValidator, TimelineHistory, ValidatorOptions,
};
use barman_protocol::{TimelineId, WalSegmentSize};

use super::wal_plan::WalSource;
use crate::catalog::remove::archived_path;
use crate::catalog::xlogdb;
use crate::config::ServerConfig;
use crate::wal::compression::copy_decompressed;

/// The archive of one server.
pub struct Archive {
    wals: PathBuf,
    streaming: Option<PathBuf>,
    seg_size: WalSegmentSize,
    system_identifier: Option<u64>,
    segments: BTreeSet<String>,
    /// Segments Barman stored with gpg encryption (which we cannot read).
    encrypted: BTreeSet<String>,
    histories: BTreeMap<u32, TimelineHistory>,
    stored: BTreeMap<String, SegmentSummary>,
    computed: BTreeMap<String, Option<SegmentSummary>>,
}

impl Archive {
    /// Read the catalogue of `server`.
    pub fn open(
        server: &ServerConfig,
        seg_size: WalSegmentSize,
        system_identifier: Option<u64>,
    ) -> Result<Archive> {
        let wals = server
            .path("wals_directory")
            .ok_or_else(|| anyhow::anyhow!("server '{}' has no wals_directory", server.name))?
            .to_path_buf();
        let entries = xlogdb::read(server)?;
        let mut segments = BTreeSet::new();
        let mut encrypted = BTreeSet::new();
        let mut histories = BTreeMap::new();
        for entry in &entries {
            if entry.is_segment() && entry.encryption.is_some() {
                encrypted.insert(entry.name.clone());
            }
            if entry.is_segment() {
                // A file listed but gone (deleted by hand) is as good as missing.
                if archived_path(&wals, &entry.name).is_file() {
                    segments.insert(entry.name.clone());
                } else {
                    log::warn!(
                        "WAL file {} is in xlog.db but not in the archive",
                        entry.name
                    );
                }
            } else if entry.is_history() {
                let Some(tli) = crate::wal::timeline_of(&entry.name) else {
                    continue;
                };
                let path = archived_path(&wals, &entry.name);
                let text = read_plain(&path)?;
                let id = TimelineId::new(tli).map_err(|e| anyhow::anyhow!("{e}"))?;
                let history = TimelineHistory::parse(id, &String::from_utf8_lossy(&text))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                histories.insert(tli, history);
            }
        }
        let stored = read_summaries(&crate::catalog::xlogdb::summaries_path(server))?;
        Ok(Archive {
            wals,
            streaming: server
                .path("streaming_wals_directory")
                .map(Path::to_path_buf),
            seg_size,
            system_identifier,
            segments,
            encrypted,
            histories,
            stored,
            computed: BTreeMap::new(),
        })
    }

    /// Those of `names` that Barman stored encrypted, in order.
    pub fn encrypted<'n>(&self, names: impl IntoIterator<Item = &'n String>) -> Vec<&'n str> {
        names
            .into_iter()
            .filter(|n| self.encrypted.contains(*n))
            .map(String::as_str)
            .collect()
    }

    /// Where an archived file is.
    pub fn path_of(&self, name: &str) -> PathBuf {
        archived_path(&self.wals, name)
    }

    /// The live `.partial` file of segment `name` in `streaming/`.
    pub fn partial_path(&self, name: &str) -> Option<PathBuf> {
        let path = self.streaming.as_ref()?.join(format!("{name}.partial"));
        path.is_file().then_some(path)
    }

    fn options(&self, name: &str) -> Option<ValidatorOptions> {
        ValidatorOptions::for_file_name(name, self.seg_size)
            .ok()
            .map(|o| o.system_identifier(self.system_identifier))
    }
}

/// Read a stored file, decompressed.
pub fn read_plain(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut plain = Vec::with_capacity(16 << 20);
    copy_decompressed(&mut file, &mut plain).with_context(|| format!("read {}", path.display()))?;
    Ok(plain)
}

/// Read `<server>-xlog.db.summaries`: `name \t summary` per line; the last line of a name
/// wins; lines that do not parse are ignored (the segment is then summarised on the spot).
pub fn read_summaries(path: &Path) -> Result<BTreeMap<String, SegmentSummary>> {
    let mut found = BTreeMap::new();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    for (name, text) in xlogdb::summary_lines(&bytes) {
        match SegmentSummary::parse_line(text) {
            Ok(s) => {
                found.insert(name.to_string(), s);
            }
            Err(e) => log::warn!("{}: ignoring the summary of {name}: {e}", path.display()),
        }
    }
    Ok(found)
}

impl WalSource for Archive {
    fn segments(&self) -> &BTreeSet<String> {
        &self.segments
    }

    fn histories(&self) -> &BTreeMap<u32, TimelineHistory> {
        &self.histories
    }

    fn summary(&mut self, name: &str) -> Option<SegmentSummary> {
        if let Some(s) = self.stored.get(name) {
            return Some(s.clone());
        }
        if let Some(s) = self.computed.get(name) {
            return s.clone();
        }
        log::debug!("no stored summary of {name}: validating it");
        let summary = self.options(name).and_then(|options| {
            let plain = read_plain(&self.path_of(name)).ok()?;
            validate_segment(&plain, options)
                .map_err(|e| log::warn!("WAL file {name} does not validate: {e}"))
                .ok()
        });
        self.computed.insert(name.to_string(), summary.clone());
        summary
    }

    fn exact_summaries(&mut self, names: &[String]) -> Vec<Option<SegmentSummary>> {
        let mut out = Vec::with_capacity(names.len());
        let mut carry = None;
        for name in names {
            let result = (|| -> Option<(SegmentSummary, Option<_>)> {
                let mut options = self.options(name)?;
                if let Some(c) = carry.take() {
                    options = options.carry_over(c);
                }
                let plain = read_plain(&self.path_of(name)).ok()?;
                let mut v = SegmentValidator::new(options).ok()?;
                let summary = v.feed(&plain).ok()??;
                let next = v.into_carry_over().ok();
                Some((summary, next))
            })();
            match result {
                Some((summary, next)) => {
                    carry = next;
                    out.push(Some(summary));
                }
                None => {
                    carry = None;
                    out.push(self.summary(name));
                }
            }
        }
        out
    }

    fn live_partial(&mut self, name: &str) -> Option<SegmentSummary> {
        let path = self.partial_path(name)?;
        parse_segment_file_name(name, self.seg_size).ok()?;
        let options = self.options(&format!("{name}.partial"))?;
        let plain = read_plain(&path).ok()?;
        validate_segment(&plain, options)
            .map_err(|e| log::warn!("the streamed {name}.partial does not validate: {e}"))
            .ok()
    }
}
