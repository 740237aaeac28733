//! Compression of stored tar archives (`backup_compression` gzip, lz4, zstd): streaming
//! encoders that write a file (client side) and decoders that read archives the server
//! compressed (server side, 15+). zstd runs multi-threaded with `workers` threads.

use std::fs::File;

use crate::fsutil::WriteBehind;
use std::io::{self, BufWriter, Read, Write};

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
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<WriteBehind>>),
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
                Method::Zstd => {
                    let mut e = zstd::stream::write::Encoder::new(out, c.level.unwrap_or(3))?;
                    if let Some(workers) = c.workers.filter(|w| *w > 0) {
                        e.multithread(workers)?;
                    }
                    Encoder::Zstd(e)
                }
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
}
