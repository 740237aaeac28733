//! The WAL commands that work on the archive: get-wal.

use barman::wal::compression::Compression;

use crate::util::{summary_line, Scratch};

const PG: &str = "[pg]\nconninfo = host=pg\nbackup_method = postgres\nstreaming_archiver = on\nslot_name = barman\n";

/// A 16 MiB WAL-like segment whose bytes identify it.
fn segment(seed: u8) -> Vec<u8> {
    (0..16u32 << 20)
        .map(|i| {
            if i % 8192 < 64 {
                seed.wrapping_add(i as u8)
            } else {
                0
            }
        })
        .collect()
}

/// An archive with segments 01..03 of timeline 1 (02 gzip, 03 zstd), FF of log 0,
/// 00 of log 1, and a .partial in streaming/.
fn archive(scratch: &Scratch) {
    let wals = scratch.home().join("pg/wals/0000000100000000");
    std::fs::create_dir_all(&wals).unwrap();
    std::fs::write(wals.join("000000010000000000000001"), segment(1)).unwrap();
    for (name, seed, c) in [
        ("000000010000000000000002", 2, Compression::Gzip),
        ("000000010000000000000003", 3, Compression::Zstd),
    ] {
        let mut packed = Vec::new();
        c.compress(1, &mut segment(seed).as_slice(), &mut packed)
            .unwrap();
        std::fs::write(wals.join(name), packed).unwrap();
    }
    std::fs::write(wals.join("0000000100000000000000FF"), segment(9)).unwrap();
    scratch.write(
        "home/pg/wals/0000000100000001/000000010000000100000000",
        "next log",
    );
    scratch.write(
        "home/pg/streaming/000000010000000000000004.partial",
        "partial bytes",
    );
}

#[test]
fn get_wal_sends_decompressed_segments_to_stdout() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_barman"))
        .arg("-c")
        .arg(scratch.config())
        .args(["get-wal", "pg", "000000010000000000000002"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout == segment(2),
        "stdout is not the decompressed segment"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_barman"))
        .arg("-c")
        .arg(scratch.config())
        .args([
            "get-wal",
            "--keep-compression",
            "pg",
            "000000010000000000000003",
        ])
        .output()
        .unwrap();
    assert_eq!(Compression::detect(&output.stdout), Some(Compression::Zstd));
}

#[test]
fn get_wal_writes_into_a_directory() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    let dest = scratch.path().join("pg_wal");
    std::fs::create_dir(&dest).unwrap();
    let run = scratch.barman(&[
        "get-wal",
        "-o",
        dest.to_str().unwrap(),
        "pg",
        "000000010000000000000003",
    ]);
    assert_eq!(
        run.ok(),
        format!(
            "Sending WAL '000000010000000000000003' for server 'pg' into '{}' file\n",
            dest.join("000000010000000000000003").display()
        )
    );
    assert!(std::fs::read(dest.join("000000010000000000000003")).unwrap() == segment(3));
    let leftovers: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn get_wal_serves_the_partial_file_only_with_p() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    let dest = scratch.path();
    scratch
        .barman(&[
            "get-wal",
            "-o",
            dest.to_str().unwrap(),
            "pg",
            "000000010000000000000004",
        ])
        .code(1)
        .stderr_has("ERROR: WAL file '000000010000000000000004' not found in server 'pg'");
    scratch
        .barman(&[
            "get-wal",
            "-P",
            "-o",
            dest.to_str().unwrap(),
            "pg",
            "000000010000000000000004",
        ])
        .ok();
    assert_eq!(
        std::fs::read_to_string(dest.join("000000010000000000000004")).unwrap(),
        "partial bytes"
    );
}

#[test]
fn get_wal_peek_lists_consecutive_files_across_log_boundaries() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    // 04 is missing; as it is a power of two it may be a log boundary (for 64 MiB
    // segments), so the first segment of the next log is tried, as Barman does.
    let out = scratch
        .barman(&["get-wal", "--peek", "10", "pg", "000000010000000000000001"])
        .ok()
        .to_string();
    assert_eq!(out, "000000010000000000000001\n000000010000000000000002\n000000010000000000000003\n000000010000000100000000\n");
    let out = scratch
        .barman(&["get-wal", "--peek", "2", "pg", "000000010000000000000001"])
        .ok()
        .to_string();
    assert_eq!(out, "000000010000000000000001\n000000010000000000000002\n");
    let out = scratch
        .barman(&["get-wal", "-p", "3", "pg", "0000000100000000000000FF"])
        .ok()
        .to_string();
    assert_eq!(out, "0000000100000000000000FF\n000000010000000100000000\n");
    let out = scratch
        .barman(&[
            "-f",
            "json",
            "get-wal",
            "-p",
            "2",
            "pg",
            "000000010000000000000002",
        ])
        .ok()
        .to_string();
    assert_eq!(
        out,
        "{\"_INFO\": [\"000000010000000000000002\", \"000000010000000000000003\"]}"
    );
}

#[test]
fn get_wal_errors_use_barmans_exit_codes() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    scratch
        .barman(&["get-wal", "pg", "not-a-wal"])
        .code(3)
        .stderr_has("ERROR: 'not-a-wal' is not a valid wal file name");
    // A directory under a regular file cannot be created, not even by root.
    let not_a_dir = scratch.path().join("a-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let target = not_a_dir.join("dir");
    scratch
        .barman(&[
            "get-wal",
            "-o",
            target.to_str().unwrap(),
            "pg",
            "000000010000000000000001",
        ])
        .code(3)
        .stderr_has(&format!(
            "ERROR: Unable to write '{}/000000010000000000000001' file",
            target.display()
        ));
    assert_eq!(
        scratch
            .barman(&["get-wal", "-t", "pg", "000000010000000000000001"])
            .ok(),
        "Ready to retrieve WAL files from the server pg\n"
    );
    scratch
        .barman(&["get-wal", "nope", "000000010000000000000001"])
        .code(2);
}

#[test]
fn get_wal_reports_a_corrupt_compressed_file() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    let path = scratch
        .home()
        .join("pg/wals/0000000100000000/000000010000000000000002");
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes.truncate(len / 2);
    std::fs::write(&path, bytes).unwrap();
    let dest = scratch.path();
    scratch
        .barman(&[
            "get-wal",
            "-o",
            dest.to_str().unwrap(),
            "pg",
            "000000010000000000000002",
        ])
        .code(3)
        .stderr_has("Unable to write");
    assert!(
        !dest.join("000000010000000000000002").exists(),
        "a broken segment must not be delivered"
    );
}

#[test]
fn rebuild_xlogdb_lists_the_archive_in_name_order() {
    let scratch = Scratch::new(PG);
    archive(&scratch);
    scratch.write(
        "home/pg/wals/00000002.history",
        "1\t0/3000000\tno recovery target specified\n",
    );
    scratch.write(
        "home/pg/wals/0000000100000000/000000010000000000000002.00000028.backup",
        "label",
    );
    scratch.write(
        "home/pg/wals/0000000100000000/000000010000000000000009.tmp",
        "junk",
    );
    scratch.write("home/pg/wals/xlog.db", "stale\n");
    // Summaries kept beside the old xlog.db: one of a file still archived, one of a file
    // that is gone.
    let kept = summary_line("000000010000000000000003", 1);
    scratch.write(
        "home/pg/wals/xlog.db.summaries",
        &(kept.clone() + &summary_line("00000001000000000000000A", 1)),
    );
    let run = scratch.barman(&["rebuild-xlogdb", "pg"]);
    assert_eq!(
        run.ok(),
        "Rebuilding xlogdb for server pg\nDone rebuilding xlogdb for server pg (history: 1, backup_labels: 1, wal_file: 5)\n"
    );
    run.stderr_has("WARNING: unexpected file rebuilding the wal database: ")
        .stderr_has("000000010000000000000009.tmp");
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    let names: Vec<&str> = db.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000002.00000028.backup",
            "000000010000000000000003",
            "0000000100000000000000FF",
            "000000010000000100000000",
            "00000002.history"
        ]
    );
    let gz = db.lines().nth(1).unwrap();
    assert!(gz.contains("\tgzip\tNone"), "{gz}");
    assert!(db.lines().nth(3).unwrap().contains("\tzstd\tNone"));
    assert!(db
        .lines()
        .next()
        .unwrap()
        .starts_with("000000010000000000000001\t16777216\t"));
    assert!(
        !scratch.home().join("pg/wals/xlog.db").exists(),
        "the old catalogue is removed"
    );
    assert!(!scratch.home().join("pg/wals/xlog.db.summaries").exists());
    assert_eq!(
        std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db.summaries")).unwrap(),
        kept
    );
    // list-backups and get-wal keep working on the rebuilt catalogue
    scratch.barman(&["list-backups", "pg"]).ok();
}
