//! `cron`: background archive-wal and check-backup, retention, interrupted deletes,
//! lock files, and one server's trouble not stopping the others.

use std::time::{Duration, Instant};

use barman_protocol::wal::testkit::WalBuilder;
use barman_protocol::WalSegmentSize;

use crate::util::Scratch;

const SERVER: &str = "[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\nretention_policy = REDUNDANCY 1\n";

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two DONE backups (the older one obsolete under REDUNDANCY 1), one waiting for WAL.
fn catalogue(scratch: &Scratch) {
    let info = |id: &str, status: &str, begin: u32, end: u32| {
        scratch.write(
            &format!("home/pg/meta/{id}-backup.info"),
            &format!(
                "mode=postgres\nserver_name=pg\nstatus={status}\nsize=10\nbegin_wal=0000000100000000000000{begin:02X}\nend_wal=0000000100000000000000{end:02X}\nend_time=2026-11-2{} 00:10:00+00:00\ntimeline=1\nxlog_segment_size=1048576\n",
                &id[7..8]
            ),
        );
        scratch.write(&format!("home/pg/base/{id}/data/PG_VERSION"), "15\n");
    };
    info("20261120T000000", "DONE", 2, 2);
    info("20261121T000000", "DONE", 3, 3);
    info("20261122T000000", "WAITING_FOR_WALS", 4, 4);
}

#[test]
fn cron_archives_checks_and_enforces_retention() {
    let scratch = Scratch::new(SERVER);
    catalogue(&scratch);
    // WAL 02..04 arrive through archive_command.
    let size = WalSegmentSize::new(1 << 20).unwrap();
    let mut b = WalBuilder::new(15, size, 2);
    b.fill_segment(100);
    b.fill_segment(100);
    b.fill_segment(100);
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    for segno in 2..=4u64 {
        std::fs::write(
            incoming.join(format!("00000001000000000000{segno:04X}")),
            b.segment(segno),
        )
        .unwrap();
    }
    let out = scratch.barman(&["cron"]).ok().to_string();
    assert!(
        out.contains("Starting WAL archiving for server pg\n"),
        "{out}"
    );
    assert!(
        out.contains("Starting check-backup for backup 20261122T000000 of server pg\n"),
        "{out}"
    );
    assert!(
        out.contains("Enforcing retention policy: removing backup 20261120T000000 for server pg\n"),
        "{out}"
    );
    assert!(!scratch.home().join("pg/base/20261120T000000").exists());
    assert!(scratch
        .home()
        .join("pg/base/20261121T000000/data/PG_VERSION")
        .exists());
    // The background archive-wal catalogues the WAL...
    let db = scratch.home().join("pg/wals/pg-xlog.db");
    // (Retention may already have removed segment 02, which only the deleted backup
    // needed: wait for the one the waiting backup needs.)
    wait_until("archive-wal to archive segment 04", || {
        std::fs::read_to_string(&db)
            .map(|t| t.contains("000000010000000000000004\t"))
            .unwrap_or(false)
    });
    // ...after which the next cron's check-backup finds the waiting backup complete.
    wait_until("no archive-wal running", || {
        barman::fsutil::lock_holder(&scratch.home().join(".pg-archive-wal.lock")).is_none()
    });
    scratch.barman(&["cron"]).ok();
    let info = scratch.home().join("pg/meta/20261122T000000-backup.info");
    wait_until("check-backup to mark the backup DONE", || {
        std::fs::read_to_string(&info)
            .unwrap()
            .contains("status=DONE\n")
    });
}

#[test]
fn cron_finishes_an_interrupted_delete_and_cleans_stale_locks() {
    let scratch = Scratch::new(&SERVER.replace("REDUNDANCY 1", "REDUNDANCY 5"));
    catalogue(&scratch);
    scratch.write("home/pg/meta/20261121T000000-delete_this", "");
    scratch.write("home/.pg-backup.lock", "12345\n");
    scratch.write("home/.old-server-cron.lock", "");
    let held = barman::fsutil::try_lock(&scratch.home().join(".pg-sync-wal.lock")).unwrap();
    let out = scratch.barman(&["cron"]).ok().to_string();
    assert!(
        out.contains("Enforcing retention policy: removing backup 20261121T000000 for server pg\n"),
        "{out}"
    );
    assert!(!scratch
        .home()
        .join("pg/meta/20261121T000000-backup.info")
        .exists());
    assert!(!scratch
        .home()
        .join("pg/meta/20261121T000000-delete_this")
        .exists());
    assert!(
        scratch
            .home()
            .join("pg/meta/20261120T000000-backup.info")
            .exists(),
        "not obsolete under REDUNDANCY 5"
    );
    assert!(
        !scratch.home().join(".pg-backup.lock").exists(),
        "a stale lock file is removed"
    );
    assert!(!scratch.home().join(".old-server-cron.lock").exists());
    assert!(
        scratch.home().join(".pg-sync-wal.lock").exists(),
        "a held lock file stays"
    );
    drop(held);
}

#[test]
fn cron_skips_a_server_whose_cron_runs_and_reports_a_broken_one() {
    let scratch = Scratch::new(&format!(
        "{SERVER}\n[broken]\nconninfo = host=b\nbackup_method = postgres\narchiver = on\nretention_policy = REDUNDANCY 1\n"
    ));
    catalogue(&scratch);
    // The broken server has a damaged backup.info.
    scratch.write(
        "home/broken/meta/20261101T000000-backup.info",
        "status=DONE\nbegin_offset=x\n",
    );
    let lock = barman::fsutil::try_lock(&scratch.home().join(".pg-cron.lock")).unwrap();
    let run = scratch.barman(&["cron"]);
    run.code(1)
        .stderr_has("ERROR: Unable to run cron on server 'broken': ");
    assert!(
        run.stdout.contains(
            "Another cron process is already running on server pg. Skipping to the next server"
        ),
        "{}",
        run.stdout
    );
    drop(lock);
    // With the lock free, pg is processed even though broken still fails.
    let run = scratch.barman(&["cron"]);
    run.code(1);
    assert!(
        run.stdout
            .contains("Enforcing retention policy: removing backup 20261120T000000 for server pg"),
        "{}",
        run.stdout
    );
}
