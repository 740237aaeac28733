//! `check` without a reachable PostgreSQL: Barman's layout, JSON keys, Nagios output
//! and exit codes.

use serde_json::Value;

use crate::util::Scratch;

#[test]
fn check_reports_each_failure_with_barmans_names() {
    // Nothing listens on port 1: the connection is refused at once.
    let scratch = Scratch::new(
        "[pg]\nconninfo = host=127.0.0.1 port=1 user=postgres connect_timeout=2\nbackup_method = postgres\narchiver = on\nminimum_redundancy = 1\ncheck_timeout = 10\n",
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
    assert!(
        scratch.home().join("pg/wals").is_dir(),
        "check creates the directories"
    );

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
