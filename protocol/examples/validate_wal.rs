//! Validates WAL segment files and prints one summary line per segment, plus throughput.
//!
//! Usage: `cargo run -p barman-protocol --release --example validate_wal -- [--size 16MB]
//! [--sysid N] [--repeat N] FILE...`. Files are validated in the order given; consecutive
//! segments hand over their state, so records crossing segment boundaries are checked too.
//! This is a development tool (it reads files); the library itself does no I/O.

use std::time::Instant;

use barman_protocol::wal::{SegmentSummary, SegmentValidator, ValidatorOptions};
use barman_protocol::WalSegmentSize;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut size = WalSegmentSize::DEFAULT;
    let mut sysid = None;
    let mut repeat = 1usize;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => {
                size = args
                    .next()
                    .expect("--size value")
                    .parse()
                    .expect("segment size")
            }
            "--sysid" => sysid = Some(args.next().expect("--sysid value").parse().expect("sysid")),
            "--repeat" => repeat = args.next().expect("--repeat value").parse().expect("count"),
            _ => files.push(a),
        }
    }
    let data: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::read(f).unwrap_or_else(|e| panic!("read {f}: {e}")),
            )
        })
        .collect();
    let total: usize = data.iter().map(|(_, d)| d.len()).sum();
    let mut failures = 0;
    let started = Instant::now();
    for round in 0..repeat {
        let mut carry = None;
        for (path, bytes) in &data {
            let name = path.rsplit('/').next().unwrap_or(path);
            let mut options = ValidatorOptions::for_file_name(name, size)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .system_identifier(sysid);
            if let Some(c) = carry.take() {
                options = options.carry_over(c);
            }
            let result = SegmentValidator::new(options).and_then(|mut v| {
                let s: SegmentSummary = match v.feed(bytes)? {
                    Some(s) => s,
                    None => v.finish()?,
                };
                carry = v.into_carry_over().ok();
                Ok(s)
            });
            match result {
                Ok(s) if round == 0 => println!("{s}"),
                Ok(_) => {}
                Err(e) => {
                    failures += 1;
                    if round == 0 {
                        println!("{name}: ERROR at {:?}: {e}", e.lsn().map(|l| l.to_string()));
                    }
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "validated {} MB in {:.3} s: {:.0} MB/s",
        total * repeat / 1_000_000,
        secs,
        (total * repeat) as f64 / 1e6 / secs
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
