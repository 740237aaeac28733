//! Compression of stored tar archives (`backup_compression` gzip, lz4, zstd): streaming
//! encoders that write a file (client side) and decoders that read archives the server
//! compressed (server side, 15+). zstd runs multi-threaded with `workers` threads.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::fsutil::WriteBehind;

/// A compression method of base backup archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// gzip, `.gz`.
    Gzip,
    /// LZ4 frames, `.lz4`.
    Lz4,
    /// Zstandard, `.zst`.
    Zstd,
}

impl Method {
    /// From `backup_compression` (`none` is no method).
    pub fn from_name(name: &str) -> Option<Method> {
        match name {
            "gzip" => Some(Method::Gzip),
            "lz4" => Some(Method::Lz4),
            "zstd" => Some(Method::Zstd),
            _ => None,
        }
    }

    /// The name Barman records in `backup.info` (`compression`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Gzip => "gzip",
            Method::Lz4 => "lz4",
            Method::Zstd => "zstd",
        }
    }

    /// The file name suffix (`.gz`, `.lz4`, `.zst`).
    pub fn suffix(self) -> &'static str {
        match self {
            Method::Gzip => ".gz",
            Method::Lz4 => ".lz4",
            Method::Zstd => ".zst",
        }
    }

    /// The protocol's name of the method, for server-side compression.
    pub fn protocol(self) -> barman_protocol::command::CompressionMethod {
        use barman_protocol::command::CompressionMethod as P;
        match self {
            Method::Gzip => P::Gzip,
            Method::Lz4 => P::Lz4,
            Method::Zstd => P::Zstd,
        }
    }
}

/// Compression settings: method, level and (zstd) worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The method.
    pub method: Method,
    /// The level; `None` for the method's default (gzip 6, zstd 3; lz4 has one level here).
    pub level: Option<i32>,
    /// zstd worker threads; `None` or 0 for one thread.
    pub workers: Option<u32>,
}

/// A file being written, compressed or not.
pub enum Encoder {
    /// No compression.
    Plain(BufWriter<WriteBehind>),
    /// gzip.
    Gzip(flate2::write::GzEncoder<BufWriter<WriteBehind>>),
    /// LZ4 frame.
    Lz4(lz4_flex::frame::FrameEncoder<BufWriter<WriteBehind>>),
    /// zstd.
    Zstd(super::zstd_writer::ZstdWriter<BufWriter<WriteBehind>>),
}

const BUFFER: usize = 1 << 20;

impl Encoder {
    /// Write `file` through `compression`.
    pub fn new(file: File, compression: Option<&Compression>) -> io::Result<Encoder> {
        let out = BufWriter::with_capacity(BUFFER, WriteBehind::new(file));
        Ok(match compression {
            None => Encoder::Plain(out),
            Some(c) => match c.method {
                Method::Gzip => {
                    let level = c.level.filter(|l| (1..=9).contains(l)).unwrap_or(6) as u32;
                    Encoder::Gzip(flate2::write::GzEncoder::new(
                        out,
                        flate2::Compression::new(level),
                    ))
                }
                Method::Lz4 => Encoder::Lz4(lz4_flex::frame::FrameEncoder::new(out)),
                Method::Zstd => Encoder::Zstd(super::zstd_writer::ZstdWriter::new(
                    out,
                    c.level.unwrap_or(3),
                    c.workers.unwrap_or(0),
                )?),
            },
        })
    }

    /// End the stream and return the file, fsynced.
    pub fn finish(self) -> io::Result<File> {
        let out = match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Lz4(e) => e.finish().map_err(io::Error::other)?,
            Encoder::Zstd(e) => e.finish()?,
        };
        let file = out.into_inner().map_err(|e| e.into_error())?.into_inner();
        file.sync_all()?;
        Ok(file)
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Lz4(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(buf),
            Encoder::Gzip(w) => w.write_all(buf),
            Encoder::Lz4(w) => w.write_all(buf),
            Encoder::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Lz4(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

/// Chunks waiting for the writing thread: a few hundred kilobytes of archive data, so a
/// slow disk or compressor slows the network down instead of growing memory.
const CHUNKS_IN_FLIGHT: usize = 32;

/// An archive file written, and compressed, on a thread of its own from the chunks of the
/// backup stream as they arrive: compressing runs beside the reading and checking of the
/// archive instead of after it, and the chunks are handed over without a copy.
pub struct ArchiveWriter {
    chunks: Option<SyncSender<Bytes>>,
    thread: Option<JoinHandle<io::Result<File>>>,
}

impl ArchiveWriter {
    /// Start writing `file` (at `path`, for messages) through `compression`.
    pub fn new(file: File, path: &Path, compression: Option<&Compression>) -> io::Result<Self> {
        let mut encoder = Encoder::new(file, compression)?;
        let (tx, rx) = sync_channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("backup-archive-writer".into())
            .spawn(move || {
                let written = rx
                    .iter()
                    .try_for_each(|chunk| encoder.write_all(&chunk))
                    .and_then(|()| encoder.finish());
                written.map_err(|e| io::Error::new(e.kind(), format!("write {shown}: {e}")))
            })?;
        Ok(ArchiveWriter {
            chunks: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queue the next bytes of the archive.
    pub fn send(&mut self, chunk: Bytes) -> io::Result<()> {
        let sent = match &self.chunks {
            Some(tx) => tx.send(chunk).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread stopped on an error: that error says why.
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the archive writing thread stopped early")))
        }
    }

    /// Write what is queued, end the stream and return the file, fsynced.
    pub fn finish(mut self) -> io::Result<File> {
        self.join()
    }

    fn join(&mut self) -> io::Result<File> {
        self.chunks = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the archive writing thread panicked")),
            None => Err(io::Error::other("the archive writing thread is gone")),
        }
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

/// A reader decompressing `method` from `inner`.
pub fn decoder<'a, R: Read + 'a>(method: Method, inner: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match method {
        Method::Gzip => Box::new(flate2::read::MultiGzDecoder::new(inner)),
        Method::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(inner)),
        Method::Zstd => Box::new(zstd::stream::read::Decoder::new(inner)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_round_trips_through_a_file() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for method in [Method::Gzip, Method::Lz4, Method::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("base.tar");
            let c = Compression {
                method,
                level: None,
                workers: Some(2),
            };
            let mut e = Encoder::new(File::create(&path).unwrap(), Some(&c)).unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap();
            let head = std::fs::read(&path).unwrap();
            assert_eq!(
                crate::catalog::detect_compression(&head),
                Some(method.name()),
                "{method:?}"
            );
            let mut back = Vec::new();
            decoder(method, File::open(&path).unwrap())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{method:?}");
        }
    }

    #[test]
    fn the_archive_writer_stores_every_chunk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.tar.zst");
        let c = Compression {
            method: Method::Zstd,
            level: None,
            workers: None,
        };
        let mut writer = ArchiveWriter::new(File::create(&path).unwrap(), &path, Some(&c)).unwrap();
        let mut sent = Vec::new();
        for i in 0..500u32 {
            let chunk: Vec<u8> = (0..(i * 37 % 9000)).map(|j| (i ^ j) as u8).collect();
            sent.extend_from_slice(&chunk);
            writer.send(Bytes::from(chunk)).unwrap();
        }
        writer.finish().unwrap();
        let mut back = Vec::new();
        decoder(Method::Zstd, File::open(&path).unwrap())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == sent);
    }

    #[test]
    fn a_failed_write_reaches_the_sender_with_the_file_name() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let path = Path::new("/backups/base.tar");
        let mut writer = ArchiveWriter::new(full, path, None).unwrap();
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        // The thread fails at its first write of the 1 MiB buffer; sending goes on until
        // the queue notices, or the error comes at the end.
        let mut failure = None;
        for _ in 0..200 {
            if let Err(e) = writer.send(chunk.clone()) {
                failure = Some(e);
                break;
            }
        }
        let e = match failure {
            Some(e) => e,
            None => writer.finish().unwrap_err(),
        };
        let text = e.to_string();
        assert!(text.contains("/backups/base.tar"), "{text}");
        assert!(text.contains("No space left on device"), "{text}");
    }
}
