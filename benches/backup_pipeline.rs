//! Throughput of the client side of a base backup, in bytes of data per second:
//!
//! - `tar_sink`: reading one BASE_BACKUP tar stream with `backup::archive::read_archive`
//!   (entry checks, the CRC-32C of every file for the manifest), only inspecting it (the
//!   tar formats) and extracting it into a directory (the plain format, files written and
//!   fsynced as a backup writes them);
//! - `compression`: writing a stored file through `backup::compress::Encoder` with each
//!   method (zstd with one and two worker threads), fsync included.
//!
//! The input is 32 files of 1 MiB shaped like heap pages of pgbench_accounts: 8 kB pages
//! of similar tuples that differ in a few bytes, so it compresses as real tables do.
//! Run with `cargo bench --bench backup_pipeline`.

use std::collections::BTreeMap;
use std::io::Write;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use barman::backup::archive::{read_archive, ArchiveSpec, Destination};
use barman::backup::compress::{Compression, Encoder, Method};
use barman::backup::manifest::{ChecksumAlgorithm, Inventory};

const FILES: usize = 32;
const FILE_SIZE: usize = 1 << 20;

/// 1 MiB of heap-like pages: a page header, then 100-byte tuples with a counter.
fn heap_file(seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(FILE_SIZE);
    let mut n = seed.wrapping_mul(100_000);
    while out.len() < FILE_SIZE {
        let mut page = vec![0u8; 8192];
        page[..4].copy_from_slice(&n.to_le_bytes());
        for (i, tuple) in page[24..].chunks_mut(100).enumerate() {
            let aid = n.wrapping_add(i as u32);
            tuple[..4].copy_from_slice(&aid.to_le_bytes());
            tuple[4..8].copy_from_slice(&(aid % 10).to_le_bytes());
            for b in tuple.iter_mut().skip(8) {
                *b = b' ';
            }
        }
        n = n.wrapping_add(80);
        out.extend_from_slice(&page);
    }
    out.truncate(FILE_SIZE);
    out
}

/// A base.tar holding the heap files under base/5/.
fn base_tar(files: &[Vec<u8>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_size(0);
    for name in ["base", "base/5"] {
        builder
            .append_data(&mut dir.clone(), name, std::io::empty())
            .unwrap();
    }
    for (i, data) in files.iter().enumerate() {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o600);
        header.set_size(data.len() as u64);
        builder
            .append_data(
                &mut header,
                format!("base/5/{}", 16384 + i),
                data.as_slice(),
            )
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn tar_sink(c: &mut Criterion) {
    let files: Vec<Vec<u8>> = (0..FILES as u32).map(heap_file).collect();
    let tar = base_tar(&files);
    let dirs = BTreeMap::new();
    let spec = ArchiveSpec {
        name: "base.tar",
        tablespace: None,
        tablespace_dirs: &dirs,
        algorithm: ChecksumAlgorithm::Crc32c,
    };
    let mut group = c.benchmark_group("tar_sink");
    group.throughput(Throughput::Bytes((FILES * FILE_SIZE) as u64));
    group.sample_size(20);
    group.bench_function("inspect_crc32c", |b| {
        b.iter(|| {
            let mut inventory = Inventory::default();
            read_archive(tar.as_slice(), &spec, &Destination::Inspect, &mut inventory).unwrap()
        })
    });
    group.bench_function("extract_crc32c", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let mut inventory = Inventory::default();
                read_archive(
                    tar.as_slice(),
                    &spec,
                    &Destination::Extract(dir.path().to_path_buf()),
                    &mut inventory,
                )
                .unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn compression(c: &mut Criterion) {
    let data: Vec<u8> = (0..FILES as u32).flat_map(heap_file).collect();
    let mut group = c.benchmark_group("compression");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    let methods: [(&str, Option<Compression>); 5] = [
        ("none", None),
        (
            "gzip6",
            Some(Compression {
                method: Method::Gzip,
                level: None,
                workers: None,
            }),
        ),
        (
            "lz4",
            Some(Compression {
                method: Method::Lz4,
                level: None,
                workers: None,
            }),
        ),
        (
            "zstd3_1thread",
            Some(Compression {
                method: Method::Zstd,
                level: None,
                workers: None,
            }),
        ),
        (
            "zstd3_2workers",
            Some(Compression {
                method: Method::Zstd,
                level: None,
                workers: Some(2),
            }),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, method) in methods {
        group.bench_function(name, |b| {
            b.iter(|| {
                let file = std::fs::File::create(dir.path().join(name)).unwrap();
                let mut encoder = Encoder::new(file, method.as_ref()).unwrap();
                for chunk in data.chunks(256 * 1024) {
                    encoder.write_all(chunk).unwrap();
                }
                encoder.finish().unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tar_sink, compression);
criterion_main!(benches);
