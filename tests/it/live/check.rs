//! `check` against a working server on every major: all OK (exit 0) once WAL arrives,
//! and the Nagios line says so.

use crate::harness::{live_test, PgCluster, PgInstall};
use crate::util::Scratch;

live_test!(check_passes_on_a_working_server, |pg: &PgInstall| {
    let (scratch, cluster, incoming) = crate::live::archive::archiving_cluster(pg);
    let text = std::fs::read_to_string(scratch.config()).unwrap();
    scratch.write_config(&format!(
        "{text}[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\n",
        cluster.conninfo()
    ));
    let segment = cluster.psql("select pg_walfile_name(pg_current_wal_lsn())");
    cluster.psql("select pg_switch_wal()");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !incoming.join(&segment).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "archive_command did not deliver {segment}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    scratch.barman(&["archive-wal", "pg"]).ok();
    let run = scratch.barman(&["check", "pg"]);
    let out = run.ok();
    for line in [
        "\tPostgreSQL: OK",
        "\tsuperuser or standard user with backup privileges: OK",
        "\tPostgreSQL streaming: OK",
        "\twal_level: OK",
        "\tarchive_mode: OK",
        "\tarchive_command: OK",
        "\tcontinuous archiving: OK",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert!(!out.contains("FAILED"), "{out}");
    let nagios = scratch
        .barman(&["check", "--nagios", "pg"])
        .ok()
        .to_string();
    assert!(
        nagios.starts_with("BARMAN OK - Ready to serve the Espresso backup for pg|pg=0B pg_wals="),
        "{nagios}"
    );
});

live_test!(
    check_reports_a_missing_slot_and_no_receiver,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = Scratch::new(&format!(
        "[pg]\nconninfo = {}\nbackup_method = postgres\nstreaming_archiver = on\nslot_name = barman\n",
        cluster.conninfo()
    ));
        let run = scratch.barman(&["check", "pg"]);
        run.code(1);
        for line in [
        "\treplication slot: FAILED (replication slot 'barman' doesn't exist. Please execute 'barman receive-wal --create-slot pg')",
        "\treceive-wal running: FAILED (See the Barman log file for more details)",
        "\tPostgreSQL: OK",
        "\tPostgreSQL streaming: OK",
    ] {
        assert!(run.stdout.lines().any(|l| l == line), "missing {line:?} in\n{}", run.stdout);
    }
        // A slot nobody streams from: present but not active.
        cluster.psql("select pg_create_physical_replication_slot('barman', true)");
        let run = scratch.barman(&["check", "pg"]);
        assert!(
        run.stdout.contains("\treplication slot: FAILED (slot 'barman' not active: is 'receive-wal' running?)\n"),
        "{}",
        run.stdout
    );
        let nagios = scratch.barman(&["check", "--nagios", "pg"]);
        nagios.code(2);
        assert!(nagios.stdout.contains("pg FAILED: "), "{}", nagios.stdout);
        assert!(
            nagios.stdout.contains(
                "\npg.receive-wal running: FAILED (See the Barman log file for more details)\n"
            ),
            "{}",
            nagios.stdout
        );
    }
);
