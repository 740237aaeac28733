//! archive-wal on synthetic WAL (valid pages and records with correct CRCs, built by
//! barman-protocol's testkit): what is archived, what is held back, what is rejected.

use barman_protocol::wal::testkit::{flip_bit, WalBuilder};
use barman_protocol::WalSegmentSize;

use crate::util::Scratch;

const SERVER: &str = "[pg]\nconninfo = host=pg\nbackup_method = postgres\nstreaming_archiver = on\nslot_name = barman\narchiver = on\n";

/// WAL of PostgreSQL 15 in 1 MiB segments 2, 3 and 4 (4 only half written).
fn wal() -> (WalBuilder, WalSegmentSize) {
    let size = WalSegmentSize::new(1 << 20).unwrap();
    let mut b = WalBuilder::new(15, size, 2);
    b.commit(700, 1_000_000);
    b.fill_segment(200);
    b.restore_point("before_upgrade", 2_000_000);
    b.fill_segment(150);
    for xid in 800..900 {
        b.commit(xid, 3_000_000 + xid as i64);
    }
    (b, size)
}

fn name(segno: u64) -> String {
    format!("00000001000000000000{segno:04X}")
}

fn streaming(scratch: &Scratch) -> std::path::PathBuf {
    let dir = scratch.home().join("pg/streaming");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn streamed_segments_are_validated_archived_and_served_back() {
    let scratch = Scratch::new(SERVER);
    let (b, _) = wal();
    let dir = streaming(&scratch);
    for segno in [2, 3] {
        std::fs::write(dir.join(name(segno)), b.segment(segno)).unwrap();
    }
    std::fs::write(dir.join(format!("{}.partial", name(4))), b.segment(4)).unwrap();
    let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
    assert_eq!(
        out,
        format!(
            "Processing xlog segments from streaming for pg\n\t{}\n\t{}\nProcessing xlog segments from file archival for pg\n\tno file found\n",
            name(2),
            name(3)
        )
    );
    assert!(
        dir.join(format!("{}.partial", name(4))).exists(),
        "the live .partial stays"
    );
    assert!(!dir.join(name(2)).exists());
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    let names: Vec<&str> = db.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, [name(2), name(3)]);
    assert!(db.lines().all(|l| l.ends_with("\tNone\tNone")), "{db}");
    let summaries =
        std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db.summaries")).unwrap();
    assert_eq!(summaries.lines().count(), 2);
    assert!(summaries.contains("before_upgrade"), "{summaries}");
    // get-wal serves exactly what was streamed
    let dest = scratch.path().join("restore");
    std::fs::create_dir(&dest).unwrap();
    scratch
        .barman(&["get-wal", "-o", dest.to_str().unwrap(), "pg", &name(3)])
        .ok();
    assert!(std::fs::read(dest.join(name(3))).unwrap() == b.segment(3));
}

#[test]
fn a_corrupt_segment_is_never_archived() {
    let scratch = Scratch::new(SERVER);
    let (b, _) = wal();
    let dir = streaming(&scratch);
    std::fs::write(dir.join(name(2)), b.segment(2)).unwrap();
    let mut bad = b.segment(3);
    flip_bit(&mut bad, 70_000, 3);
    std::fs::write(dir.join(name(3)), &bad).unwrap();
    std::fs::write(dir.join(format!("{}.partial", name(4))), b.segment(4)).unwrap();
    let run = scratch.barman(&["archive-wal", "pg"]);
    run.code(1).stderr_has(&format!(
        "ERROR: WAL file {} from streaming of server pg failed validation: ",
        name(3)
    ));
    assert!(
        run.stderr.contains("0/3") && run.stderr.contains("CRC"),
        "{}",
        run.stderr
    );
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    assert_eq!(db.lines().count(), 1, "only the sound segment is archived");
    assert!(!scratch
        .home()
        .join("pg/wals/0000000100000000")
        .join(name(3))
        .exists());
    let errors: Vec<String> = std::fs::read_dir(scratch.home().join("pg/errors"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(&name(3)) && errors[0].ends_with(".corrupt"),
        "{errors:?}"
    );
    // nothing is lost: the rejected file keeps its bytes
    let kept = std::fs::read(scratch.home().join("pg/errors").join(&errors[0])).unwrap();
    assert!(kept == bad);
}

#[test]
fn a_corrupt_file_dropped_into_incoming_goes_to_errors() {
    let scratch = Scratch::new(SERVER);
    let (b, _) = wal();
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::write(incoming.join(name(2)), b.segment(2)).unwrap();
    let mut bad = b.segment(3);
    flip_bit(&mut bad, 300_000, 5);
    std::fs::write(incoming.join(name(3)), &bad).unwrap();
    let run = scratch.barman(&["archive-wal", "pg"]);
    run.code(1).stderr_has(&format!(
        "ERROR: WAL file {} from file archival of server pg failed validation: ",
        name(3)
    ));
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    let archived: Vec<&str> = db.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(archived, [name(2)], "only the sound segment is archived");
    assert!(
        !incoming.join(name(3)).exists(),
        "the bad file stays in incoming/"
    );
    let errors: Vec<String> = std::fs::read_dir(scratch.home().join("pg/errors"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with(&name(3)) && errors[0].ends_with(".corrupt"));
    let kept = std::fs::read(scratch.home().join("pg/errors").join(&errors[0])).unwrap();
    assert!(kept == bad, "the rejected file keeps its bytes");
}

#[test]
fn wal_of_another_cluster_is_rejected() {
    let scratch = Scratch::new(SERVER);
    scratch.write(
        "home/pg/identity.json",
        "{\n    \"systemid\": \"6000000000000000001\",\n    \"version\": \"15\"\n}\n",
    );
    let (b, _) = wal();
    let dir = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name(2)), b.segment(2)).unwrap();
    scratch
        .barman(&["archive-wal", "pg"])
        .code(1)
        .stderr_has("failed validation");
    assert!(
        !scratch.home().join("pg/wals/pg-xlog.db").exists()
            || std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db"))
                .unwrap()
                .is_empty()
    );
}

#[test]
fn duplicates_unknown_files_and_compression() {
    let scratch = Scratch::new(&format!("{SERVER}compression = gzip\n"));
    let (b, _) = wal();
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::write(incoming.join(name(2)), b.segment(2)).unwrap();
    std::fs::write(incoming.join("notes.txt"), "not wal").unwrap();
    let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
    assert!(out.contains("Some unknown objects have been found while processing xlog segments for pg. Objects moved to errors directory:\n\tnotes.txt\n"), "{out}");
    let stored = std::fs::read(
        scratch
            .home()
            .join("pg/wals/0000000100000000")
            .join(name(2)),
    )
    .unwrap();
    assert_eq!(
        &stored[..3],
        b"\x1f\x8b\x08",
        "stored gzip-compressed under its plain name"
    );
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    assert!(db.contains("\tgzip\tNone"), "{db}");
    // the same file again: dropped silently
    std::fs::write(incoming.join(name(2)), b.segment(2)).unwrap();
    let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
    assert!(!out.contains("Error:"), "{out}");
    assert!(!incoming.join(name(2)).exists());
    // different content under the same name: moved to errors as a duplicate
    let mut other = WalBuilder::new(15, WalSegmentSize::new(1 << 20).unwrap(), 2);
    other.commit(5, 1);
    other.fill_segment(300);
    std::fs::write(incoming.join(name(2)), other.segment(2)).unwrap();
    let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
    assert!(
        out.contains(&format!(
            "\tError: {} is already present in server pg. File moved to errors directory.",
            name(2)
        )),
        "{out}"
    );
    let errors: Vec<String> = std::fs::read_dir(scratch.home().join("pg/errors"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        errors.iter().any(|e| e.ends_with(".duplicate")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("notes.txt.") && e.ends_with(".unknown")),
        "{errors:?}"
    );
}

#[test]
fn without_a_partial_the_newest_streamed_segment_is_held_back() {
    let scratch = Scratch::new(SERVER);
    let (b, _) = wal();
    let dir = streaming(&scratch);
    for segno in [2, 3] {
        std::fs::write(dir.join(name(segno)), b.segment(segno)).unwrap();
    }
    scratch.barman(&["archive-wal", "pg"]).ok();
    assert!(
        dir.join(name(3)).exists(),
        "kept for the receiver to find its position"
    );
    assert!(!dir.join(name(2)).exists());
}

#[test]
fn batch_size_limits_a_run() {
    let scratch = Scratch::new(&format!("{SERVER}archiver_batch_size = 1\n"));
    let (b, _) = wal();
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    for segno in [2, 3] {
        std::fs::write(incoming.join(name(segno)), b.segment(segno)).unwrap();
    }
    let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
    assert!(
        out.contains("Processing xlog segments from file archival for pg (batch size: 1)\n"),
        "{out}"
    );
    assert!(incoming.join(name(3)).exists());
}

#[test]
fn a_temp_file_left_by_put_wal_neither_blocks_a_batch_nor_is_archived() {
    let scratch = Scratch::new(&format!(
        "{SERVER}archiver_batch_size = 1\nmax_incoming_wals_queue = 0\n"
    ));
    let (b, _) = wal();
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    // A put-wal killed while writing segment 1 left `<name>.<pid>.tmp`, which sorts
    // before segment 2, delivered since.
    let left = incoming.join(format!("{}.4242.tmp", name(1)));
    std::fs::write(&left, &b.segment(2)[..8192]).unwrap();
    std::fs::write(incoming.join(name(2)), b.segment(2)).unwrap();
    scratch.barman(&["archive-wal", "pg"]).ok();
    assert!(!incoming.join(name(2)).exists(), "the segment was archived");
    assert!(left.exists(), "the temp file is left alone");
    let errors = scratch.home().join("pg/errors");
    assert!(
        std::fs::read_dir(&errors).map_or(true, |mut d| d.next().is_none()),
        "nothing went to errors/"
    );
    // Nor is it a WAL file waiting in the queue (at most 0 here).
    let check = scratch.barman(&["check", "pg"]).stdout.clone();
    assert!(!check.contains("too many WALs in queue"), "{check}");
}

#[test]
fn a_temp_file_untouched_for_a_day_goes_to_errors_and_a_fresh_one_stays() {
    let scratch = Scratch::new(SERVER);
    let (b, _) = wal();
    let incoming = scratch.home().join("pg/incoming");
    let streaming = scratch.home().join("pg/streaming");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::create_dir_all(&streaming).unwrap();
    // Its modification time says a day ago (`cp -p` of an old segment does that), which
    // must not make it stale: only its change time counts.
    let copied = incoming.join(format!("{}.tmp", name(4)));
    std::fs::write(&copied, &b.segment(4)[..8192]).unwrap();
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&copied)
        .unwrap()
        .set_modified(day_ago)
        .unwrap();
    std::fs::write(incoming.join(name(2)), b.segment(2)).unwrap();
    let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
    assert!(!out.contains("untouched"), "{out}");
    assert!(
        copied.exists(),
        "a temp file still being written is left alone"
    );
    assert!(!incoming.join(name(2)).exists(), "the segment was archived");
    std::fs::remove_file(&copied).unwrap();
    // Left by a dead put-wal in incoming/ and in streaming/, and now old enough (the age is
    // lowered to 3 seconds, as the change time cannot be set back; the fresh file has those
    // 3 seconds for barman to start and list it, ample even on a loaded machine).
    let left = incoming.join(format!("{}.4242.tmp", name(1)));
    std::fs::write(&left, &b.segment(2)[..8192]).unwrap();
    let left_streaming = streaming.join(format!("{}.4243.tmp", name(5)));
    std::fs::write(&left_streaming, &b.segment(2)[..8192]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let fresh = incoming.join(format!("{}.4244.tmp", name(3)));
    std::fs::write(&fresh, &b.segment(3)[..8192]).unwrap();
    let out = scratch
        .barman_env(&["archive-wal", "pg"], &[("BARMAN_STALE_TEMP_AGE", "3")])
        .ok()
        .to_string();
    assert!(
        out.contains("temporary files untouched for over 3 seconds")
            && out.contains(&format!("\t{}.4242.tmp\n", name(1)))
            && out.contains(&format!("\t{}.4243.tmp\n", name(5))),
        "{out}"
    );
    assert!(!out.contains(".4244.tmp"), "{out}");
    assert!(!left.exists() && !left_streaming.exists());
    assert!(
        fresh.exists(),
        "a temp file written a moment ago is left alone"
    );
    let mut errors: Vec<String> = std::fs::read_dir(scratch.home().join("pg/errors"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    errors.sort();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.ends_with(".stale"))
            && errors[0].starts_with(&format!("{}.4242.tmp.", name(1))),
        "{errors:?}"
    );
}

#[test]
fn verify_wal_checks_the_archive_again_and_reports_damage() {
    let scratch = Scratch::new(SERVER);
    let (b, _) = wal();
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    for segno in [2, 3] {
        std::fs::write(incoming.join(name(segno)), b.segment(segno)).unwrap();
    }
    scratch.barman(&["archive-wal", "pg"]).ok();
    let out = scratch.barman(&["verify-wal", "pg"]).ok().to_string();
    assert_eq!(
        out,
        format!(
            "Verifying the WAL archive of server pg\n\t{}: OK\n\t{}: OK\nVerified 2 WAL files: 2 OK, 0 FAILED\n",
            name(2),
            name(3)
        )
    );
    // Damage an archived file after the fact (bit rot on the backup server).
    let stored = scratch
        .home()
        .join("pg/wals/0000000100000000")
        .join(name(3));
    let mut bytes = std::fs::read(&stored).unwrap();
    flip_bit(&mut bytes, 200_000, 1);
    std::fs::write(&stored, bytes).unwrap();
    let run = scratch.barman(&["verify-wal", "pg"]);
    run.code(1)
        .stderr_has("ERROR: 1 WAL file(s) of server pg failed verification");
    assert!(
        run.stdout.contains(&format!("\t{}: FAILED (", name(3))),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("\t{}: OK", name(2))));
    assert!(run.stdout.contains("Verified 2 WAL files: 1 OK, 1 FAILED"));
    // Only some files, and a missing one.
    let run = scratch.barman(&["verify-wal", "pg", &name(2), &name(9)]);
    run.code(1);
    assert!(
        run.stdout.contains(&format!("\t{}: OK", name(2))),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("\t{}: FAILED (cannot open", name(9))),
        "{}",
        run.stdout
    );
}
