//! Validation throughput of `barman_protocol::wal::SegmentValidator` (page headers, every
//! record's CRC-32C, the segment summary), in bytes per second on one core.
//!
//! Two inputs:
//! - a synthetic 16 MB segment shaped like pgbench WAL (mostly 50–200 byte records, a commit
//!   every few records, some 8 kB full-page images), built with `wal::testkit`;
//! - real segments, when `BARMAN_BENCH_WAL_DIR` names a directory of complete 16 MB segments
//!   (e.g. a copy of `pg_wal` or a Barman `wals/` directory with uncompressed files). They
//!   are validated in order with carry-over, as the archiver does.
//!
//! The goal is at least 2 GB/s, so that validating every byte costs less than
//! receiving it. Run with `cargo bench --bench wal_validate`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use barman_protocol::wal::testkit::{tli, WalBuilder};
use barman_protocol::wal::{SegmentValidator, ValidatorOptions, WalFileName};
use barman_protocol::{WalSegNo, WalSegmentSize};

/// A 16 MB segment of pgbench-like WAL.
fn synthetic_segment() -> Vec<u8> {
    let size = WalSegmentSize::DEFAULT;
    let mut b = WalBuilder::new(16, size, 1);
    let mut i: u32 = 0;
    while b.position().as_u64() < (2 << 24) - 20_000 {
        // UPDATE accounts, SELECT, UPDATE tellers, UPDATE branches, INSERT history, COMMIT.
        b.noop(79 + (i % 7) as usize * 8);
        b.noop(69);
        b.noop(71);
        b.noop(108);
        if i % 40 == 0 {
            b.noop(8241); // a full-page image
        }
        b.commit(1000 + i, i64::from(i) * 150);
        i += 1;
    }
    b.fill_segment(100);
    b.segment(1)
}

fn validate(bytes: &[u8], segno: u64) {
    let options = ValidatorOptions::new(tli(1), WalSegNo::new(segno), WalSegmentSize::DEFAULT);
    let mut v = SegmentValidator::new(options).expect("validator");
    let summary = v.feed(bytes).expect("valid WAL").expect("a whole segment");
    assert!(summary.records > 0);
}

fn real_segments() -> Vec<(WalSegNo, Vec<u8>)> {
    let Some(dir) = std::env::var_os("BARMAN_BENCH_WAL_DIR") else {
        return Vec::new();
    };
    let size = WalSegmentSize::DEFAULT;
    let mut files: Vec<(WalSegNo, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .expect("read BARMAN_BENCH_WAL_DIR")
        .filter_map(|e| {
            let e = e.ok()?;
            match WalFileName::parse(&e.file_name().to_string_lossy(), size).ok()? {
                WalFileName::Segment { segno, .. } => Some((segno, e.path())),
                _ => None,
            }
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(segno, path)| (segno, std::fs::read(path).expect("read segment")))
        .collect()
}

fn bench(c: &mut Criterion) {
    let segment = synthetic_segment();
    let mut group = c.benchmark_group("wal_validate");
    group.throughput(Throughput::Bytes(segment.len() as u64));
    group.bench_function("synthetic_pgbench_16mb", |b| {
        b.iter(|| validate(&segment, 1))
    });
    group.bench_function("synthetic_pgbench_16mb_8k_chunks", |b| {
        b.iter_batched(
            || {
                SegmentValidator::new(ValidatorOptions::new(
                    tli(1),
                    WalSegNo::new(1),
                    WalSegmentSize::DEFAULT,
                ))
                .expect("validator")
            },
            |mut v| {
                for chunk in segment.chunks(8192) {
                    v.feed(chunk).expect("valid WAL");
                }
            },
            BatchSize::SmallInput,
        )
    });

    let real = real_segments();
    if !real.is_empty() {
        let total: usize = real.iter().map(|(_, b)| b.len()).sum();
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function("real_segments_in_order", |b| {
            b.iter(|| {
                let mut carry = None;
                let mut previous: Option<WalSegNo> = None;
                for (segno, bytes) in &real {
                    let mut options =
                        ValidatorOptions::new(tli(1), *segno, WalSegmentSize::DEFAULT);
                    if previous.and_then(|p| p.checked_add(1)) == Some(*segno) {
                        if let Some(c) = carry.take() {
                            options = options.carry_over(c);
                        }
                    }
                    let mut v = SegmentValidator::new(options).expect("validator");
                    v.feed(bytes).expect("valid WAL").expect("a whole segment");
                    carry = v.into_carry_over().ok();
                    previous = Some(*segno);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
