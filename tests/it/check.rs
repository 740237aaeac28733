//! `check` without a reachable PostgreSQL: Barman's layout, JSON keys, Nagios output
//! and exit codes.

use serde_json::Value;

use crate::util::Scratch;

#[test]
fn check_reports_each_failure_with_barmans_names() {
    // Nothing listens on port 1: the connection is refused at once.
    let scratch = Scratch::new(
        "[pg]\nconninfo = host=127.0.0.1 port=1 user=postgres connect_timeout=2\nbackup_method = postgres\narchiver = on\nminimum_redundancy = 1\ncheck_timeout = 10\nxlogdb_directory = %(backup_directory)s/xlogdb\n",
    );
    let run = scratch.barman(&["check", "pg"]);
    run.code(1);
    let out = &run.stdout;
    assert!(out.starts_with("Server pg:\n"), "{out}");
    for line in [
        "\tWAL archive: FAILED (please make sure WAL shipping is setup)",
        "\tPostgreSQL: FAILED",
        "\tdirectories: OK",
        "\tretention policy settings: OK",
        "\tbackup maximum age: OK (no last_backup_maximum_age provided)",
        "\tbackup minimum size: OK (0 B)",
        "\twal maximum age: OK (no last_wal_maximum_age provided)",
        "\twal size: OK (0 B)",
        "\tcompression settings: OK",
        "\tfailed backups: OK (there are 0 failed backups)",
        "\tminimum redundancy requirements: FAILED (have 0 non-incremental backups, expected at least 1)",
        "\tsystemid coherence: OK (no system Id stored on disk)",
        "\tarchiver errors: OK",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    for dir in ["pg/wals", "pg/incoming", "pg/xlogdb"] {
        assert!(
            scratch.home().join(dir).is_dir(),
            "check creates the directories: no {dir}"
        );
    }

    let json = scratch.barman(&["-f", "json", "check", "pg"]);
    json.code(1);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["pg"]["postgresql"]["status"], "FAILED");
    assert_eq!(doc["pg"]["wal_level"], Value::Null);
    assert_eq!(
        doc["pg"]["minimum_redundancy_requirements"]["hint"],
        "have 0 non-incremental backups, expected at least 1"
    );

    let nagios = scratch.barman(&["check", "--nagios", "all"]);
    nagios.code(2);
    let first = nagios.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("BARMAN CRITICAL - server pg has issues * pg FAILED: WAL archive, PostgreSQL, minimum redundancy requirements|pg=0B pg_wals=0B"),
        "{first}"
    );
    assert!(
        nagios.stdout.contains("\npg.PostgreSQL: FAILED\n"),
        "{}",
        nagios.stdout
    );
}

#[test]
fn check_fails_on_an_old_backup_and_old_wal() {
    let scratch = Scratch::new(
        "[pg]\nconninfo = host=127.0.0.1 port=1 user=postgres connect_timeout=2\nbackup_method = postgres\narchiver = on\nlast_backup_maximum_age = 1 day\nlast_wal_maximum_age = 2 hours\n",
    );
    scratch.write(
        "home/pg/meta/20261101T000000-backup.info",
        "mode=postgres\nserver_name=pg\nstatus=DONE\nsize=4096\nbegin_wal=000000010000000000000002\nend_wal=000000010000000000000002\nend_time=2026-11-01 00:10:00+00:00\n",
    );
    // Archived WAL, last written long ago.
    scratch.write(
        "home/pg/wals/pg-xlog.db",
        "000000010000000000000002\t100\t1793500000.0\tNone\tNone\n000000010000000000000003\t100\t1793500000.5\tNone\tNone\n",
    );
    let run = scratch.barman(&["check", "pg"]);
    run.code(1);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("\t{name}: ")))
            .unwrap_or_else(|| panic!("no {name} line in\n{}", run.stdout))
            .to_string()
    };
    assert!(
        line("backup maximum age").starts_with(
            "\tbackup maximum age: FAILED (interval provided: 1 day, latest backup age: "
        ),
        "{}",
        run.stdout
    );
    assert!(
        line("wal maximum age")
            .starts_with("\twal maximum age: FAILED (interval provided: 2 hours, latest wal age: "),
        "{}",
        run.stdout
    );
    assert_eq!(line("wal size"), "\twal size: OK (100 B)");
    assert_eq!(
        line("backup minimum size"),
        "\tbackup minimum size: OK (4.0 KiB)"
    );
    assert!(
        !run.stdout.contains("WAL archive:"),
        "the archive is not empty"
    );
}

#[test]
fn check_counts_archiver_errors_by_kind() {
    let scratch = Scratch::new(
        "[pg]\nconninfo = host=127.0.0.1 port=1 user=postgres connect_timeout=2\nbackup_method = postgres\narchiver = on\n",
    );
    for name in [
        "000000010000000000000002.20261122T000000Z.duplicate",
        "000000010000000000000003.20261122T000000Z.duplicate",
        "junk.20261122T000000Z.unknown",
        "000000010000000000000004.20261122T000000Z.corrupt",
    ] {
        scratch.write(&format!("home/pg/errors/{name}"), "x");
    }
    let run = scratch.barman(&["check", "pg"]);
    assert!(
        run.stdout.contains(
            "\tarchiver errors: FAILED (duplicates: 2, unknown: 1, unknown failure: 1)\n"
        ),
        "{}",
        run.stdout
    );
}
