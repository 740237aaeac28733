//! WAL file compression, as Barman stores it (BARMAN.md §3.5): an archived file keeps
//! its plain name whatever its compression, which is recorded in `xlog.db` and told by
//! the file's magic bytes. Streams are compressed and decompressed without holding a
//! whole segment in memory.
//!
//! `compression` names and their levels (`low`/`medium`/`high`) follow Barman 3.17:
//! gzip and pigz (gzip format) 1/6/9, bzip2 1/5/9, xz 1/3/5, zstd 1/4/9, lz4 0/6/10,
//! snappy (framing format) without levels. `pygzip`/`pybzip2` are gzip/bzip2.
//! `custom` (shell filters) is not supported.

use std::io::{self, Read, Write};

use crate::config::values::CompressionLevel;

/// A compression format of archived WAL files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (also what `pigz` and `pygzip` produce).
    Gzip,
    /// bzip2 (also `pybzip2`).
    Bzip2,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
    /// lz4 frame format.
    Lz4,
    /// Snappy framing format.
    Snappy,
}

impl Compression {
    /// The name recorded in `xlog.db`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
        }
    }

    /// The format of a `compression` setting (or an `xlog.db` column).
    pub fn from_name(name: &str) -> Result<Compression, String> {
        Ok(match name {
            "gzip" | "pigz" | "pygzip" => Compression::Gzip,
            "bzip2" | "pybzip2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            "zstd" => Compression::Zstd,
            "lz4" => Compression::Lz4,
            "snappy" => Compression::Snappy,
            "custom" => {
                return Err("compression = custom (shell filters) is not supported by this barman; choose gzip, bzip2, xz, zstd, lz4 or snappy".into())
            }
            other => return Err(format!("unknown compression '{other}'")),
        })
    }

    /// The format of a stored file, from its first bytes.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        crate::catalog::detect_compression(head).and_then(|name| Compression::from_name(name).ok())
    }

    /// The numeric level for a `compression_level` setting.
    pub fn level(self, level: CompressionLevel) -> i32 {
        let (low, medium, high, max) = match self {
            Compression::Gzip | Compression::Bzip2 => (1, 6, 9, 9),
            Compression::Xz => (1, 3, 5, 9),
            Compression::Zstd => (1, 4, 9, 22),
            Compression::Lz4 => (0, 6, 10, 12),
            Compression::Snappy => (0, 0, 0, 0),
        };
        let medium = if self == Compression::Bzip2 {
            5
        } else {
            medium
        };
        match level {
            CompressionLevel::Low => low,
            CompressionLevel::Medium => medium,
            CompressionLevel::High => high,
            CompressionLevel::Int(n) => {
                let min = if self == Compression::Zstd { -7 } else { low };
                (n.clamp(i64::from(min), i64::from(max))) as i32
            }
        }
    }

    /// Copy `input` to `output` compressed; returns the bytes read.
    pub fn compress(
        self,
        level: i32,
        input: &mut dyn Read,
        output: &mut dyn Write,
    ) -> io::Result<u64> {
        let copied = match self {
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(output, flate2::Compression::new(level as u32));
                let n = io::copy(input, &mut enc)?;
                enc.finish()?;
                n
            }
            Compression::Bzip2 => {
                let mut enc = bzip2::write::BzEncoder::new(
                    output,
                    bzip2::Compression::new(level.max(1) as u32),
                );
                let n = io::copy(input, &mut enc)?;
                enc.finish()?;
                n
            }
            Compression::Xz => {
                let mut enc = xz2::write::XzEncoder::new(output, level as u32);
                let n = io::copy(input, &mut enc)?;
                enc.finish()?;
                n
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(output, level)?;
                let n = io::copy(input, &mut enc)?;
                enc.finish()?;
                n
            }
            Compression::Lz4 => {
                let mut enc = lz4_flex::frame::FrameEncoder::new(output);
                let n = io::copy(input, &mut enc)?;
                enc.finish().map_err(io::Error::other)?;
                n
            }
            Compression::Snappy => {
                let mut enc = snap::write::FrameEncoder::new(output);
                let n = io::copy(input, &mut enc)?;
                enc.flush()?;
                n
            }
        };
        Ok(copied)
    }

    /// Copy `input` to `output` decompressed; returns the bytes written.
    pub fn decompress(self, input: &mut dyn Read, output: &mut dyn Write) -> io::Result<u64> {
        match self {
            Compression::Gzip => io::copy(&mut flate2::read::MultiGzDecoder::new(input), output),
            Compression::Bzip2 => io::copy(&mut bzip2::read::MultiBzDecoder::new(input), output),
            Compression::Xz => {
                io::copy(&mut xz2::read::XzDecoder::new_multi_decoder(input), output)
            }
            Compression::Zstd => io::copy(&mut zstd::stream::read::Decoder::new(input)?, output),
            Compression::Lz4 => io::copy(&mut lz4_flex::frame::FrameDecoder::new(input), output),
            Compression::Snappy => io::copy(&mut snap::read::FrameDecoder::new(input), output),
        }
    }
}

/// Copy a stored WAL file to `output`, decompressing it when its magic bytes say so.
pub fn copy_decompressed(input: &mut dyn Read, output: &mut dyn Write) -> io::Result<u64> {
    let mut head = [0u8; 10];
    let mut filled = 0;
    while filled < head.len() {
        let n = input.read(&mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let mut chained = io::Cursor::new(head[..filled].to_vec()).chain(input);
    match Compression::detect(&head[..filled]) {
        Some(c) => c.decompress(&mut chained, output),
        None => io::copy(&mut chained, output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 6] = [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ];

    fn segment() -> Vec<u8> {
        // Something WAL-like: mostly zeros with structured bytes.
        (0..1 << 20)
            .map(|i: u32| if i % 8192 < 200 { (i % 251) as u8 } else { 0 })
            .collect()
    }

    #[test]
    fn every_format_round_trips_and_is_detected_by_its_magic() {
        let data = segment();
        for c in ALL {
            let mut packed = Vec::new();
            let level = c.level(CompressionLevel::Medium);
            assert_eq!(
                c.compress(level, &mut data.as_slice(), &mut packed)
                    .unwrap(),
                data.len() as u64
            );
            assert!(
                packed.len() < data.len() / 4,
                "{} did not compress",
                c.name()
            );
            assert_eq!(Compression::detect(&packed), Some(c), "{}", c.name());
            let mut back = Vec::new();
            copy_decompressed(&mut packed.as_slice(), &mut back).unwrap();
            assert_eq!(back, data, "{}", c.name());
        }
    }

    #[test]
    fn plain_files_pass_through() {
        let data = segment();
        let mut out = Vec::new();
        copy_decompressed(&mut data.as_slice(), &mut out).unwrap();
        assert_eq!(out, data);
        let mut out = Vec::new();
        copy_decompressed(&mut &b"abc"[..], &mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn corrupt_compressed_data_is_an_error() {
        let mut packed = Vec::new();
        Compression::Gzip
            .compress(6, &mut segment().as_slice(), &mut packed)
            .unwrap();
        let len = packed.len();
        packed.truncate(len / 2);
        assert!(copy_decompressed(&mut packed.as_slice(), &mut Vec::new()).is_err());
    }

    #[test]
    fn levels_follow_barman() {
        assert_eq!(Compression::Gzip.level(CompressionLevel::Low), 1);
        assert_eq!(Compression::Bzip2.level(CompressionLevel::Medium), 5);
        assert_eq!(Compression::Xz.level(CompressionLevel::High), 5);
        assert_eq!(Compression::Zstd.level(CompressionLevel::Medium), 4);
        assert_eq!(Compression::Lz4.level(CompressionLevel::High), 10);
        assert_eq!(Compression::Zstd.level(CompressionLevel::Int(-100)), -7);
        assert_eq!(Compression::Gzip.level(CompressionLevel::Int(42)), 9);
        assert!(Compression::from_name("custom").is_err());
        assert_eq!(Compression::from_name("pigz"), Ok(Compression::Gzip));
    }
}
