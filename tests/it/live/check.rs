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

live_test!(show_servers_reports_the_live_status, |pg: &PgInstall| {
    let (scratch, mut cluster, incoming) = crate::live::archive::archiving_cluster(pg);
    let text = std::fs::read_to_string(scratch.config()).unwrap();
    scratch.write_config(&format!(
        "{text}[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\n\
         streaming_archiver = on\nslot_name = barman\n",
        cluster.conninfo()
    ));
    cluster.psql("select pg_create_physical_replication_slot('barman', true)");
    let segment = cluster.psql("select pg_walfile_name(pg_current_wal_lsn())");
    cluster.psql("select pg_switch_wal()");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cluster.psql("select archived_count from pg_stat_archiver") == "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "archive_command did not deliver {segment} into {}",
            incoming.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sysid = cluster.psql("select system_identifier from pg_control_system()");
    let restart_lsn =
        cluster.psql("select restart_lsn from pg_replication_slots where slot_name = 'barman'");
    let out = scratch.barman(&["show-servers", "pg"]).ok().to_string();
    let value = |key: &str| -> String {
        let prefix = format!("\t{key}: ");
        out.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {key} in\n{out}"))
            .to_string()
    };
    assert!(
        value("server_txt_version").starts_with(&pg.major.to_string()),
        "{out}"
    );
    for (key, expected) in [
        ("is_superuser", "True".to_string()),
        ("has_backup_privileges", "True".into()),
        ("has_monitoring_privileges", "True".into()),
        ("is_in_recovery", "False".into()),
        ("version_supported", "True".into()),
        ("streaming", "True".into()),
        ("streaming_supported", "True".into()),
        ("connection_error", "None".into()),
        ("timeline", "1".into()),
        ("postgres_systemid", sysid.clone()),
        ("streaming_systemid", sysid.clone()),
        ("wal_level", "replica".into()),
        ("xlog_segment_size", "16777216".into()),
        ("synchronous_standby_names", "['']".into()),
        ("replication_slot_support", "True".into()),
        (
            "replication_slot",
            format!("Record(slot_name='barman', active=False, restart_lsn='{restart_lsn}')"),
        ),
        ("archive_mode", "on".into()),
        ("is_archiving", "True".into()),
        ("failed_count", "0".into()),
        ("pg_receivexlog_installed", "True".into()),
        ("pg_receivexlog_compatible", "True".into()),
        ("pg_receivexlog_synchronous", "False".into()),
        ("pg_basebackup_compatible", "True".into()),
        ("data_directory", cluster.data_dir().display().to_string()),
    ] {
        assert_eq!(value(key), expected, "{key} in\n{out}");
    }
    // The archiver statistics and the current position, as the server reports them.
    assert!(
        value("archived_count").parse::<u64>().unwrap() >= 1,
        "{out}"
    );
    assert!(value("last_archived_wal").len() == 24, "{out}");
    // Right after a switch, the position is at a boundary: like Barman (and PostgreSQL
    // before 17), the segment named is the one that ends there.
    let current = value("current_xlog");
    assert!(
        current.len() == 24 && current.as_str() >= segment.as_str(),
        "{out}"
    );
    let lsn = value("current_lsn");
    let (hi, lo) = lsn.split_once('/').expect("an LSN");
    let lsn = (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap();
    let segno = if lsn % (16 << 20) == 0 {
        lsn / (16 << 20) - 1
    } else {
        lsn / (16 << 20)
    };
    assert_eq!(
        current,
        format!("00000001{:08X}{:08X}", segno / 256, segno % 256),
        "{out}"
    );
    assert!(value("config_file").ends_with("postgresql.conf"), "{out}");
    assert!(
        value("current_size").parse::<u64>().unwrap() > 1 << 20,
        "{out}"
    );

    let json = scratch
        .barman(&["-f", "json", "show-servers", "pg"])
        .ok()
        .to_string();
    let doc: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let pg_json = &doc["pg"];
    assert_eq!(pg_json["timeline"], 1, "{json}");
    assert_eq!(pg_json["xlog_segment_size"], 16777216, "{json}");
    assert_eq!(
        pg_json["synchronous_standby_names"],
        serde_json::json!([""])
    );
    assert_eq!(pg_json["is_superuser"], true);
    assert!(
        pg_json["replication_slot"]
            .as_str()
            .is_some_and(|s| s.starts_with("Record(slot_name='barman'")),
        "{json}"
    );

    // With the server down, show-servers still shows everything else and says why.
    cluster.stop();
    let out = scratch.barman(&["show-servers", "pg"]).ok().to_string();
    assert!(out.contains("\tserver_txt_version: None\n"), "{out}");
    assert!(out.contains("\tslot_name: barman\n"), "{out}");
    let error = out
        .lines()
        .find_map(|l| l.strip_prefix("\tconnection_error: "))
        .unwrap_or_else(|| panic!("no connection_error in\n{out}"));
    assert_ne!(error, "None", "{out}");
});
