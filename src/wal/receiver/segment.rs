//! The segment file `receive-wal` writes: `<streaming>/<segment>.partial`, allocated to
//! the full segment size when created (zeros, like pg_receivewal, so that `archive-wal`
//! and `get-wal -P` always see a full-size file and a full disk shows up at creation,
//! not in the middle of a segment), written at the offsets the stream gives, fsynced
//! before any position is reported as flushed, and renamed to its final name only once
//! complete and validated (PROTOCOL.md §5.7, `src/bin/pg_basebackup/walmethods.c`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use barman_protocol::wal::names::segment_file_name;
use barman_protocol::{TimelineId, WalSegNo, WalSegmentSize};

use crate::fsutil;

/// An open `.partial` segment file.
#[derive(Debug)]
pub struct SegmentFile {
    dir: PathBuf,
    name: String,
    file: File,
    /// Timeline of the segment.
    pub timeline: TimelineId,
    /// Segment number.
    pub segno: WalSegNo,
    size: u32,
    /// Bytes written from the segment start.
    written: u32,
    /// Bytes known to be durable.
    synced: u32,
    /// Whether this open created the file (it held nothing before).
    fresh: bool,
}

impl SegmentFile {
    /// Opens `<dir>/<segment>.partial` for writing from offset 0: an existing full-size
    /// file is reused (fsynced first, as pg_receivewal does), anything else is
    /// (re)created and filled to the segment size, then fsynced with its directory.
    pub fn open(
        dir: &Path,
        timeline: TimelineId,
        segno: WalSegNo,
        seg_size: WalSegmentSize,
    ) -> Result<SegmentFile> {
        let name = segment_file_name(timeline, segno, seg_size);
        let path = dir.join(format!("{name}.partial"));
        let size = seg_size.bytes();
        let existing = std::fs::metadata(&path).map(|m| m.len()).ok();
        let fresh = existing != Some(u64::from(size));
        let file = if existing == Some(u64::from(size)) {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .with_context(|| format!("open {}", path.display()))?;
            file.sync_all()
                .with_context(|| format!("fsync {}", path.display()))?;
            file
        } else {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(fsutil::FILE_MODE)
                .open(&path)
                .with_context(|| format!("create {}", path.display()))?;
            if let Err(e) = allocate(&file, size) {
                // Leave no file of the wrong size behind: the next attempt starts afresh.
                drop(file);
                let _ = std::fs::remove_file(&path);
                return Err(e)
                    .with_context(|| format!("allocate {size} bytes for {}", path.display()));
            }
            file.sync_all()
                .with_context(|| format!("fsync {}", path.display()))?;
            fsutil::fsync_dir(dir)?;
            file
        };
        Ok(SegmentFile {
            dir: dir.to_path_buf(),
            name,
            file,
            timeline,
            segno,
            size,
            written: 0,
            synced: 0,
            fresh,
        })
    }

    /// The final name of the segment.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path being written (`.partial`).
    pub fn partial_path(&self) -> PathBuf {
        self.dir.join(format!("{}.partial", self.name))
    }

    /// Bytes written from the segment start.
    pub fn written(&self) -> u32 {
        self.written
    }

    /// Bytes known to be durable.
    pub fn synced(&self) -> u32 {
        self.synced
    }

    /// Writes `data` at `offset`, which must be where the previous write ended.
    pub fn write_at(&mut self, offset: u32, data: &[u8]) -> Result<()> {
        anyhow::ensure!(
            offset == self.written,
            "WAL for offset {offset} of segment {} arrived where offset {} was expected",
            self.name,
            self.written
        );
        let end = offset
            .checked_add(u32::try_from(data.len()).unwrap_or(u32::MAX))
            .filter(|&e| e <= self.size)
            .ok_or_else(|| anyhow::anyhow!("WAL runs past the end of segment {}", self.name))?;
        self.file
            .write_all_at(data, u64::from(offset))
            .with_context(|| format!("write {}", self.partial_path().display()))?;
        self.written = end;
        Ok(())
    }

    /// Makes what was written durable (fdatasync: the size never changes after creation).
    pub fn sync(&mut self) -> Result<()> {
        if self.synced < self.written {
            self.file
                .sync_data()
                .with_context(|| format!("fsync {}", self.partial_path().display()))?;
            self.synced = self.written;
        }
        Ok(())
    }

    /// Renames the complete segment to its final name, durably: fsync, rename, fsync the
    /// directory. Returns the final path.
    pub fn complete(mut self) -> Result<PathBuf> {
        anyhow::ensure!(
            self.written == self.size,
            "segment {} is not complete",
            self.name
        );
        self.sync()?;
        let to = self.dir.join(&self.name);
        fsutil::rename_durably(&self.partial_path(), &to)?;
        Ok(to)
    }

    /// Closes the file, keeping it as `.partial` (fsynced). One this open created and
    /// nothing was written to (made ahead of data that never came) is removed when
    /// `remove_if_empty`.
    pub fn close(mut self, remove_if_empty: bool) -> Result<()> {
        self.sync()?;
        if remove_if_empty && self.fresh && self.written == 0 {
            let path = self.partial_path();
            std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
            fsutil::fsync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// Gives `file` `size` bytes of zeros, allocated on disk (a full disk fails here).
fn allocate(file: &File, size: u32) -> std::io::Result<()> {
    // SAFETY: posix_fallocate on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, libc::off_t::from(size)) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => {
            // The filesystem cannot allocate: write the zeros, as pg_receivewal does.
            let zeros = vec![0u8; 1 << 20];
            let mut left = size as usize;
            let mut writer = file;
            while left > 0 {
                let n = left.min(zeros.len());
                writer.write_all(&zeros[..n])?;
                left -= n;
            }
            Ok(())
        }
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_full_size_partial_until_complete() {
        let dir = tempfile::tempdir().unwrap();
        let size = WalSegmentSize::MIN;
        let tli = TimelineId::FIRST;
        let mut seg = SegmentFile::open(dir.path(), tli, WalSegNo::new(3), size).unwrap();
        let partial = seg.partial_path();
        assert_eq!(
            std::fs::metadata(&partial).unwrap().len(),
            u64::from(size.bytes())
        );
        seg.write_at(0, b"abc").unwrap();
        assert!(seg.write_at(10, b"x").is_err(), "a gap is refused");
        seg.sync().unwrap();
        assert_eq!(seg.synced(), 3);
        let rest = vec![7u8; size.bytes() as usize - 3];
        seg.write_at(3, &rest).unwrap();
        let done = seg.complete().unwrap();
        assert!(!partial.exists());
        let bytes = std::fs::read(done).unwrap();
        assert_eq!(&bytes[..4], b"abc\x07");
    }

    #[test]
    fn an_existing_full_partial_is_reused_and_a_short_one_refilled() {
        let dir = tempfile::tempdir().unwrap();
        let size = WalSegmentSize::MIN;
        let tli = TimelineId::FIRST;
        let mut seg = SegmentFile::open(dir.path(), tli, WalSegNo::new(1), size).unwrap();
        seg.write_at(0, b"keep").unwrap();
        seg.close(true).unwrap();
        let seg = SegmentFile::open(dir.path(), tli, WalSegNo::new(1), size).unwrap();
        assert_eq!(&std::fs::read(seg.partial_path()).unwrap()[..4], b"keep");
        std::fs::write(seg.partial_path(), b"short").unwrap();
        let seg = SegmentFile::open(dir.path(), tli, WalSegNo::new(1), size).unwrap();
        let bytes = std::fs::read(seg.partial_path()).unwrap();
        assert_eq!(bytes.len(), size.bytes() as usize);
        assert!(bytes.iter().all(|&b| b == 0));
        // Closing an untouched segment removes it.
        let path = seg.partial_path();
        seg.close(true).unwrap();
        assert!(!path.exists());
    }
}
