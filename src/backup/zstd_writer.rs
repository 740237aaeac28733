//! zstd streaming compression on libzstd itself (`zstd-sys`), for base backup archives.
//!
//! The `zstd` crate's encoder cannot set `ZSTD_c_blockSplitterLevel`: zstd 1.5.7 added a
//! block pre-splitter, on by default from level 3, that cost about 6% of a backup's CPU
//! (perf: `ZSTD_recordFingerprint`, `ZSTD_splitBlock`) for 0.01% of size on pgbench data.
//! Level 1 of that setting turns it off, as zstd 1.5.6 and earlier (and the libzstd
//! `pg_basebackup` links, on Debian 1.5.4) compressed. The frames are ordinary zstd
//! frames, read by any zstd decoder.
//!
//! With workers, each job of the stream (8 MiB at level 3) starts by default from a copy of
//! the end of the job before (`ZSTD_c_overlapLog`, an eighth of the window: 256 KiB). With
//! no overlap (log 1: each job compressed on its own, the frame still one frame) base
//! backups came out smaller, and one job buffer fewer (8 MiB) is needed. Measured against
//! `pg_basebackup`'s one-threaded zstd at level 3: on pgbench clusters at scale 100, with
//! and without data checksums and with the tar entries shifted by 512 to 4096 bytes, 0.990
//! to 0.996 (the default overlap: 0.997 to 1.008, depending on the shift); on a cluster of
//! text and JSON rows 0.995 (default 0.991); on a tar of /usr/lib 1.0004 (default 0.998).
//! A small overlap (log 2, 16 KiB) was no better than the default on pgbench data.

use std::ffi::CStr;
use std::io::{self, Write};
use std::ptr::NonNull;

use zstd_sys::{ZSTD_EndDirective, ZSTD_cParameter, ZSTD_inBuffer, ZSTD_outBuffer};

/// `ZSTD_c_blockSplitterLevel`, which zstd.h of 1.5.7 numbers `ZSTD_c_experimentalParam20`
/// (experimental numbers may change between versions: it is set only on this one).
const BLOCK_SPLITTER_LEVEL: ZSTD_cParameter = ZSTD_cParameter::ZSTD_c_experimentalParam20;

/// The libzstd version whose experimental parameter numbers are used here (1.5.7).
const KNOWN_VERSION: u32 = 10507;

/// `ZSTD_c_overlapLog` with workers: 1, no overlap between jobs (see the module
/// documentation for the measurements).
const JOB_OVERLAP_LOG: i32 = 1;

/// A zstd stream written into `W`.
pub struct ZstdWriter<W: Write> {
    cctx: NonNull<zstd_sys::ZSTD_CCtx>,
    out: Vec<u8>,
    inner: Option<W>,
}

// SAFETY: a compression context belongs to one owner at a time and may move between
// threads (libzstd keeps no thread-local state for it); `&self` gives no access to it.
unsafe impl<W: Write + Send> Send for ZstdWriter<W> {}

impl<W: Write> ZstdWriter<W> {
    /// Compress into `inner` at `level` with `workers` threads (0: in the caller's thread).
    pub fn new(inner: W, level: i32, workers: u32) -> io::Result<Self> {
        // SAFETY: no preconditions; a null result means no memory, handled below.
        let cctx = NonNull::new(unsafe { zstd_sys::ZSTD_createCCtx() })
            .ok_or_else(|| io::Error::other("zstd: cannot create a compression context"))?;
        // SAFETY: no preconditions.
        let out_size = unsafe { zstd_sys::ZSTD_CStreamOutSize() };
        let mut writer = ZstdWriter {
            cctx,
            out: vec![0; out_size],
            inner: Some(inner),
        };
        writer.set(ZSTD_cParameter::ZSTD_c_compressionLevel, level)?;
        if workers > 0 {
            writer.set(ZSTD_cParameter::ZSTD_c_nbWorkers, workers as i32)?;
            writer.set(ZSTD_cParameter::ZSTD_c_overlapLog, JOB_OVERLAP_LOG)?;
        }
        // SAFETY: no preconditions.
        if unsafe { zstd_sys::ZSTD_versionNumber() } == KNOWN_VERSION {
            writer.set(BLOCK_SPLITTER_LEVEL, 1)?;
        }
        Ok(writer)
    }

    fn set(&mut self, parameter: ZSTD_cParameter, value: i32) -> io::Result<()> {
        // SAFETY: a live context; libzstd checks the parameter and its bounds.
        check(unsafe { zstd_sys::ZSTD_CCtx_setParameter(self.cctx.as_ptr(), parameter, value) })
            .map(drop)
    }

    /// Compress `input` with `directive`, writing what comes out, until `input` is taken
    /// (continue) or the flush or frame end is complete.
    fn run(&mut self, input: &[u8], directive: ZSTD_EndDirective) -> io::Result<()> {
        let mut source = ZSTD_inBuffer {
            src: input.as_ptr().cast(),
            size: input.len(),
            pos: 0,
        };
        loop {
            let mut sink = ZSTD_outBuffer {
                dst: self.out.as_mut_ptr().cast(),
                size: self.out.len(),
                pos: 0,
            };
            // SAFETY: a live context; `source` and `sink` describe live slices (`input`,
            // `self.out`) that libzstd reads and writes only within their sizes.
            let left = check(unsafe {
                zstd_sys::ZSTD_compressStream2(
                    self.cctx.as_ptr(),
                    &mut sink,
                    &mut source,
                    directive,
                )
            })?;
            let produced = sink.pos.min(self.out.len());
            if produced > 0 {
                let inner = self
                    .inner
                    .as_mut()
                    .ok_or_else(|| io::Error::other("zstd: the stream is finished"))?;
                inner.write_all(&self.out[..produced])?;
            }
            let done = match directive {
                ZSTD_EndDirective::ZSTD_e_continue => source.pos >= source.size,
                _ => left == 0,
            };
            if done {
                return Ok(());
            }
        }
    }

    fn inner_mut(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("zstd: the stream is finished"))
    }

    /// End the frame and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.run(&[], ZSTD_EndDirective::ZSTD_e_end)?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("zstd: the stream is finished"))
    }
}

impl<W: Write> Write for ZstdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.run(buf, ZSTD_EndDirective::ZSTD_e_continue)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.run(&[], ZSTD_EndDirective::ZSTD_e_flush)?;
        self.inner_mut()?.flush()
    }
}

impl<W: Write> Drop for ZstdWriter<W> {
    fn drop(&mut self) {
        // SAFETY: the context was created by ZSTD_createCCtx and is freed once, here
        // (with workers, this also stops and joins them).
        unsafe {
            zstd_sys::ZSTD_freeCCtx(self.cctx.as_ptr());
        }
    }
}

/// A libzstd result: the number it returns, or its error as an I/O error.
fn check(code: usize) -> io::Result<usize> {
    // SAFETY: ZSTD_isError takes any value.
    if unsafe { zstd_sys::ZSTD_isError(code) } == 0 {
        return Ok(code);
    }
    // SAFETY: ZSTD_getErrorName returns a static NUL-terminated string for any code.
    let name = unsafe { CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code)) };
    Err(io::Error::other(format!(
        "zstd: {}",
        name.to_string_lossy()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        rows(40_000)
    }

    /// Rows of a table, 40 bytes each: the same layout with changing numbers, and noise.
    fn rows(count: u32) -> Vec<u8> {
        let mut data = Vec::with_capacity(count as usize * 40);
        for i in 0..count {
            data.extend_from_slice(&i.to_le_bytes());
            data.extend_from_slice(b"    filler of a pgbench row     ");
            data.extend_from_slice(&(i.wrapping_mul(2_654_435_761)).to_le_bytes());
        }
        data
    }

    fn decompress(frame: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        zstd::stream::read::Decoder::new(frame)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn frames_round_trip_with_and_without_workers() {
        let data = sample();
        for workers in [0, 2] {
            let mut w = ZstdWriter::new(Vec::new(), 3, workers).unwrap();
            for piece in data.chunks(7_001) {
                w.write_all(piece).unwrap();
            }
            let frame = w.finish().unwrap();
            assert!(
                frame.len() < data.len() / 4,
                "{workers}: {} bytes",
                frame.len()
            );
            assert!(decompress(&frame) == data, "{workers} workers");
        }
    }

    #[test]
    fn many_jobs_round_trip_without_overlap() {
        // 24 MiB of rows: three jobs of 8 MiB, each compressed on its own.
        let data = rows((24 << 20) / 40);
        let mut w = ZstdWriter::new(Vec::new(), 3, 2).unwrap();
        let mut overlap = 0;
        // SAFETY: a live context and a valid destination for the value.
        check(unsafe {
            zstd_sys::ZSTD_CCtx_getParameter(
                w.cctx.as_ptr(),
                ZSTD_cParameter::ZSTD_c_overlapLog,
                &mut overlap,
            )
        })
        .unwrap();
        assert_eq!(overlap, JOB_OVERLAP_LOG);
        for piece in data.chunks(65_536) {
            w.write_all(piece).unwrap();
        }
        let frame = w.finish().unwrap();
        assert!(frame.len() < data.len() / 4, "{} bytes", frame.len());
        assert!(decompress(&frame) == data);
    }

    #[test]
    fn a_flush_makes_everything_so_far_readable() {
        let data = sample();
        let mut w = ZstdWriter::new(Vec::new(), 3, 0).unwrap();
        w.write_all(&data).unwrap();
        w.flush().unwrap();
        let so_far = w.inner.clone().unwrap();
        let mut back = vec![0; data.len()];
        zstd::stream::read::Decoder::new(&so_far[..])
            .unwrap()
            .read_exact(&mut back)
            .unwrap();
        assert!(back == data);
        w.write_all(b"more").unwrap();
        let frame = w.finish().unwrap();
        assert_eq!(decompress(&frame).len(), data.len() + 4);
    }

    #[test]
    fn libzstd_errors_become_io_errors() {
        // (size_t)-ZSTD_error_parameter_outOfBound
        let err = check(usize::MAX - 41).unwrap_err().to_string();
        assert!(err.starts_with("zstd: "), "{err}");
        assert_eq!(check(12).unwrap(), 12);
    }

    #[test]
    fn the_bundled_libzstd_is_the_one_whose_parameters_are_known() {
        // On another version the pre-splitter stays on (still correct, a little slower):
        // check the number of ZSTD_c_blockSplitterLevel in its zstd.h, then update.
        // SAFETY: no preconditions.
        assert_eq!(unsafe { zstd_sys::ZSTD_versionNumber() }, KNOWN_VERSION);
    }

    #[test]
    fn a_failing_destination_reports_its_error() {
        struct Refuses;
        impl Write for Refuses {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = ZstdWriter::new(Refuses, 3, 0).unwrap();
        let data = sample();
        let result = w.write_all(&data).and_then(|()| w.finish().map(drop));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::StorageFull);
    }
}
