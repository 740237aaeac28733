//! list-servers, show-servers and diagnose on a configuration and catalogue made
//! by the test.

use serde_json::Value;

use crate::util::{summary_line, Scratch};

const SERVERS: &str = "\
[pg]
description = \"Main cluster\"
conninfo = host=pg user=barman password=s3cret
backup_method = postgres
streaming_archiver = on
slot_name = barman
retention_policy = REDUNDANCY 2
last_backup_maximum_age = 1 day

[old]
description = Old server
conninfo = host=old
backup_method = postgres
archiver = on
active = off

[broken]
description = No connection
backup_method = postgres
archiver = on
";

#[test]
fn list_servers_marks_inactive_and_disabled_servers() {
    let scratch = Scratch::new(SERVERS);
    let out = scratch.barman(&["list-servers"]).ok().to_string();
    assert_eq!(
        out,
        "broken - No connection (WARNING: disabled)\nold - Old server (inactive)\npg - Main cluster\n"
    );
    let out = scratch
        .barman(&["list-server", "--minimal"])
        .ok()
        .to_string();
    assert_eq!(out, "broken\nold\npg\n");
}

#[test]
fn list_servers_in_json() {
    let scratch = Scratch::new(SERVERS);
    let out = scratch
        .barman(&["-f", "json", "list-servers"])
        .ok()
        .to_string();
    assert_eq!(
        out,
        "{\"broken\": {\"description\": \"No connection (WARNING: disabled)\"}, \"old\": {\"description\": \"Old server (inactive)\"}, \"pg\": {\"description\": \"Main cluster\"}}"
    );
}

#[test]
fn quiet_hides_results_but_not_errors() {
    let scratch = Scratch::new(SERVERS);
    let run = scratch.barman(&["-q", "show-servers", "pg", "nope"]);
    run.code(2).stderr_has("ERROR: Unknown server 'nope'");
    assert!(run.stdout.is_empty());
}

#[test]
fn show_servers_prints_the_resolved_configuration_sorted() {
    let scratch = Scratch::new(SERVERS);
    let out = scratch.barman(&["show-servers", "pg"]).ok().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Server pg:");
    let keys: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.trim_start_matches('\t').split(':').next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys must be sorted");
    let home = scratch.home();
    for expected in [
        "\tactive: True".to_string(),
        "\tbackup_method: postgres".into(),
        "\tbackup_options: BackupOptions({'concurrent_backup'})".into(),
        format!("\tbackup_directory: {}/pg", home.display()),
        format!("\twals_directory: {}/pg/wals", home.display()),
        "\tcompression: None".into(),
        "\tconninfo: host=pg user=barman password=*REDACTED*".into(),
        "\tdescription: Main cluster".into(),
        "\tdisabled: False".into(),
        "\tlast_backup_maximum_age: 1 day (WARNING! latest backup is No available backups old)"
            .into(),
        "\tname: pg".into(),
        "\tretention_policy: REDUNDANCY 2".into(),
        "\tslot_name: barman".into(),
        "\tstreaming_archiver: True".into(),
        "\tstreaming_archiver_name: barman_receive_wal".into(),
        "\tstreaming_conninfo: host=pg user=barman password=*REDACTED*".into(),
        "\twal_retention_policy: main".into(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "missing {expected:?} in\n{out}"
        );
    }
    assert!(!out.contains("s3cret"), "the password leaked:\n{out}");
}

#[test]
fn show_servers_all_marks_server_states_and_json_keeps_types() {
    let scratch = Scratch::new(SERVERS);
    let out = scratch.barman(&["show-servers", "all"]).ok().to_string();
    assert!(out.contains("Server broken (WARNING: disabled):\n"));
    assert!(out.contains("Server old (inactive):\n"));
    assert!(out.contains("Server pg:\n"));

    let out = scratch
        .barman(&["-f", "json", "show-server", "pg"])
        .ok()
        .to_string();
    let doc: Value = serde_json::from_str(&out).expect("valid JSON");
    let pg = &doc["pg"];
    assert_eq!(pg["active"], Value::Bool(true));
    assert_eq!(pg["minimum_redundancy"], 0);
    assert_eq!(pg["compression"], Value::Null);
    assert_eq!(pg["retention_policy"], "REDUNDANCY 2");
    assert_eq!(pg["description"], "Main cluster");
    assert_eq!(pg["conninfo"], "host=pg user=barman password=*REDACTED*");
}

#[test]
fn diagnose_reports_configuration_catalogue_and_system() {
    let scratch = Scratch::new(SERVERS);
    let home = scratch.home();
    // A backup in the current layout, one in the old layout, and two archived WALs.
    scratch.write(
        "home/pg/meta/20261122T020235-backup.info",
        "backup_name=first\nbegin_offset=40\nerror=None\nstatus=DONE\nsize=102036932\n",
    );
    scratch.write(
        "home/pg/base/20261101T000000/backup.info",
        "status=FAILED\nerror=failure copy (boom)\n",
    );
    scratch.write(
        "home/pg/wals/0000000100000000/000000010000000000000002",
        "plain",
    );
    std::fs::write(
        home.join("pg/wals/0000000100000000/000000010000000000000003"),
        [0x1f, 0x8b, 0x08, 0, 1, 2],
    )
    .unwrap();
    let out = scratch.barman(&["diagnose"]).ok().to_string();
    assert!(out.starts_with("{\n    \"global\": {"), "{out}");
    assert!(!out.contains("s3cret"), "the password leaked");
    let doc: Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(
        doc["global"]["config"]["barman_home"],
        home.display().to_string()
    );
    assert_eq!(doc["global"]["system_info"]["barman_ver"], "3.17.0");
    let pg = &doc["servers"]["pg"];
    assert_eq!(pg["config"]["slot_name"], "barman");
    assert_eq!(pg["config"]["last_backup_maximum_age"], "1 day");
    assert_eq!(pg["msg_list"], Value::Array(vec![]));
    assert_eq!(pg["backups"]["20261122T020235"]["status"], "DONE");
    assert_eq!(pg["backups"]["20261122T020235"]["size"], 102036932);
    assert_eq!(pg["backups"]["20261122T020235"]["error"], Value::Null);
    assert_eq!(pg["backups"]["20261101T000000"]["status"], "FAILED");
    let wal = &pg["wals"]["last_archived_wal_per_timeline"]["00000001"];
    assert_eq!(wal["name"], "000000010000000000000003");
    assert_eq!(wal["compression"], "gzip");
    assert_eq!(wal["size"], 6);
    let broken = &doc["servers"]["broken"];
    assert_eq!(
        broken["msg_list"][0],
        "PostgreSQL connection: Missing 'conninfo' parameter for server 'broken'"
    );
}

#[test]
fn diagnose_can_name_the_source_of_each_setting() {
    let scratch = Scratch::new(SERVERS);
    let out = scratch
        .barman(&["diagnose", "--show-config-source"])
        .ok()
        .to_string();
    let doc: Value = serde_json::from_str(&out).expect("valid JSON");
    let slot = &doc["servers"]["pg"]["config"]["slot_name"];
    assert_eq!(slot["value"], "barman");
    assert_eq!(slot["source"], scratch.config().display().to_string());
    assert_eq!(
        doc["servers"]["pg"]["config"]["check_timeout"]["source"],
        "default"
    );
}

#[test]
fn messages_are_logged_in_barmans_line_format() {
    let scratch = Scratch::new(SERVERS);
    scratch.barman(&["show-servers", "nope"]).code(2);
    let log = std::fs::read_to_string(scratch.log_file()).expect("the log file exists");
    let line = log
        .lines()
        .find(|l| l.contains("Unknown server 'nope'"))
        .unwrap_or_else(|| panic!("no log line for the error in:\n{log}"));
    // 2026-11-22 03:14:29,123 [1234] barman.cli ERROR: Unknown server 'nope'
    let (stamp, rest) = line.split_at(23);
    assert!(stamp.chars().nth(19) == Some(','), "{line}");
    assert!(rest.starts_with(" ["), "{line}");
    assert!(
        rest.ends_with("] barman.cli ERROR: Unknown server 'nope'"),
        "{line}"
    );
}

#[test]
fn a_damaged_backup_info_is_reported_with_its_path_and_line() {
    let scratch = Scratch::new(SERVERS);
    let path = scratch.write(
        "home/pg/meta/20261122T020235-backup.info",
        "status=DONE\nbegin_offset=forty\n",
    );
    scratch.barman(&["diagnose"]).code(1).stderr_has(&format!(
        "ERROR: read the backup catalogue of server 'pg': {}, line 2: invalid begin_offset 'forty': not an integer",
        path.display()
    ));
}

/// A Barman catalogue: three DONE backups (the middle one kept standalone), one
/// STARTED, one FAILED, and the WAL archive's xlog.db.
fn catalogue(scratch: &Scratch) {
    let info = |id: &str, extra: &str| {
        scratch.write(
            &format!("home/pg/meta/{id}-backup.info"),
            &format!("mode=postgres\nserver_name=pg\nxlog_segment_size=16777216\n{extra}"),
        );
    };
    info(
        "20261120T000000",
        "status=DONE\nsize=1000\nbegin_wal=000000010000000000000002\nend_wal=000000010000000000000003\nend_time=2026-11-20 00:10:00+00:00\n",
    );
    info(
        "20261121T000000",
        "status=DONE\nbackup_name=second\nsize=2000\nbegin_wal=000000010000000000000005\nend_wal=000000010000000000000005\nend_time=2026-11-21 00:10:00.5+00:00\n",
    );
    info(
        "20261122T000000",
        "status=DONE\nsize=3000\nbegin_wal=000000010000000000000007\nend_wal=000000010000000000000008\nend_time=2026-11-22 00:10:00+00:00\n",
    );
    info("20261122T010000", "status=STARTED\n");
    info(
        "20261122T020000",
        "status=FAILED\nerror=failure copy (boom)\n",
    );
    scratch.write("home/pg/meta/20261121T000000-keep", "standalone\n");
    let xlogdb: String = (2..=9)
        .map(|n| format!("0000000100000000000000{n:02X}\t100\t1795312965.5\tgzip\tNone\n"))
        .collect();
    scratch.write("home/pg/wals/pg-xlog.db", &xlogdb);
}

#[test]
fn list_backups_matches_barmans_lines() {
    let scratch = Scratch::new(&SERVERS.replace("REDUNDANCY 2", "REDUNDANCY 1"));
    catalogue(&scratch);
    let out = scratch.barman(&["list-backups", "pg"]).ok().to_string();
    assert_eq!(
        out,
        "pg 20261122T020000 - F - FAILED
pg 20261122T010000 - F - STARTED
pg 20261122T000000 - F - Sun Nov 22 00:10:00 2026 - Size: 3.1 KiB - WAL Size: 100 B
pg 20261121T000000 'second' - F - Sat Nov 21 00:10:00 2026 - Size: 2.1 KiB - WAL Size: 300 B - KEEP:STANDALONE
pg 20261120T000000 - F - Fri Nov 20 00:10:00 2026 - Size: 1.2 KiB - WAL Size: 200 B - OBSOLETE
"
    );
    let out = scratch
        .barman(&["list-backup", "--minimal", "all"])
        .ok()
        .to_string();
    assert_eq!(
        out,
        "20261122T020000\n20261122T010000\n20261122T000000\n20261121T000000\n20261120T000000\n"
    );
}

#[test]
fn list_backups_in_json() {
    let scratch = Scratch::new(&SERVERS.replace("REDUNDANCY 2", "REDUNDANCY 1"));
    catalogue(&scratch);
    let out = scratch
        .barman(&["-f", "json", "list-backups", "pg", "old"])
        .ok()
        .to_string();
    let doc: Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(doc["old"], Value::Array(vec![]));
    let rows = doc["pg"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(
        rows[0],
        serde_json::json!({"backup_id": "20261122T020000", "backup_type": "full", "status": "FAILED"})
    );
    assert_eq!(
        rows[3],
        serde_json::json!({
            "backup_id": "20261121T000000",
            "backup_name": "second",
            "backup_type": "full",
            "end_time": "Sat Nov 21 00:10:00 2026",
            "end_time_timestamp": "1795219800",
            "retention_status": "KEEP:STANDALONE",
            "size": "2.1 KiB",
            "size_bytes": 2100,
            "status": "DONE",
            "wal_size": "300 B",
            "wal_size_bytes": 300
        })
    );
    assert_eq!(rows[2]["retention_status"], "-");
}

#[test]
fn list_backups_without_a_policy_shows_no_retention_status() {
    let scratch = Scratch::new(&SERVERS.replace("retention_policy = REDUNDANCY 2\n", ""));
    catalogue(&scratch);
    let out = scratch.barman(&["list-backups", "pg"]).ok().to_string();
    assert!(!out.contains("OBSOLETE") && !out.contains("KEEP"), "{out}");
}

#[test]
fn keep_marks_shows_and_releases_a_backup() {
    let scratch = Scratch::new(&SERVERS.replace("REDUNDANCY 2", "REDUNDANCY 1"));
    catalogue(&scratch);
    let status = |s: &Scratch, id: &str| s.barman(&["keep", "--status", "pg", id]).ok().to_string();
    assert_eq!(status(&scratch, "latest"), "Server pg:\n\tKeep: nokeep\n");
    assert_eq!(
        status(&scratch, "second"),
        "Server pg:\n\tKeep: standalone\n"
    );

    scratch
        .barman(&["keep", "--target", "full", "pg", "oldest"])
        .ok();
    let mark = scratch.home().join("pg/meta/20261120T000000-keep");
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "full");
    assert_eq!(
        status(&scratch, "20261120T000000"),
        "Server pg:\n\tKeep: full\n"
    );
    let list = scratch.barman(&["list-backups", "pg"]).ok().to_string();
    assert!(
        list.lines().last().unwrap().ends_with(" - KEEP:FULL"),
        "{list}"
    );

    scratch
        .barman(&["keep", "-r", "pg", "20261120T000000"])
        .ok();
    assert!(!mark.exists());
    assert_eq!(
        status(&scratch, "20261120T000000"),
        "Server pg:\n\tKeep: nokeep\n"
    );

    let json = scratch
        .barman(&["-f", "json", "keep", "-s", "pg", "second"])
        .ok()
        .to_string();
    assert_eq!(
        json,
        "{\"pg\": {\"keep_status\": {\"description\": \"Keep\", \"message\": \"standalone\"}}}"
    );
}

#[test]
fn keep_moves_an_old_layout_annotation_to_meta() {
    let scratch = Scratch::new(SERVERS);
    catalogue(&scratch);
    let old = scratch.write(
        "home/pg/base/20261122T000000/annotations/keep",
        "standalone",
    );
    assert!(scratch
        .barman(&["keep", "-s", "pg", "20261122T000000"])
        .ok()
        .contains("standalone"));
    scratch
        .barman(&["keep", "--target", "full", "pg", "20261122T000000"])
        .ok();
    assert!(!old.exists());
    assert_eq!(
        std::fs::read_to_string(scratch.home().join("pg/meta/20261122T000000-keep")).unwrap(),
        "full"
    );
}

#[test]
fn keep_on_a_barman_34_backup_writes_where_barman_34_reads_too() {
    let scratch = Scratch::new(SERVERS);
    catalogue(&scratch);
    // A backup of the older layout: its backup.info in base/<id>, as Barman 3.4 writes it.
    scratch.write(
        "home/pg/base/20261119T000000/backup.info",
        "mode=postgres\nserver_name=pg\nstatus=DONE\nbegin_wal=000000010000000000000002\nend_wal=000000010000000000000002\n",
    );
    scratch
        .barman(&["keep", "--target", "standalone", "pg", "20261119T000000"])
        .ok();
    for place in [
        "pg/meta/20261119T000000-keep",
        "pg/base/20261119T000000/annotations/keep",
    ] {
        assert_eq!(
            std::fs::read_to_string(scratch.home().join(place)).unwrap(),
            "standalone",
            "{place}"
        );
    }
    // Barman 3.4 changes only its own copy: that one is read first for its backups.
    scratch.write("home/pg/base/20261119T000000/annotations/keep", "full");
    assert!(scratch
        .barman(&["keep", "--status", "pg", "20261119T000000"])
        .ok()
        .contains("Keep: full"));
    scratch
        .barman(&["keep", "--release", "pg", "20261119T000000"])
        .ok();
    assert!(!scratch.home().join("pg/meta/20261119T000000-keep").exists());
    assert!(!scratch
        .home()
        .join("pg/base/20261119T000000/annotations/keep")
        .exists());
}

#[test]
fn keep_refuses_what_cannot_be_kept() {
    let scratch = Scratch::new(SERVERS);
    catalogue(&scratch);
    scratch
        .barman(&["keep", "--target", "full", "pg", "last-failed"])
        .code(1)
        .stderr_has("ERROR: Cannot add keep to backup 20261122T020000 because it has status FAILED. Only backups with status DONE can be kept.");
    scratch
        .barman(&["keep", "--target", "full", "pg", "20260101T000000"])
        .code(1)
        .stderr_has("ERROR: Unknown backup '20260101T000000' for server 'pg'");
    scratch
        .barman(&["keep", "pg", "latest"])
        .code(2)
        .stderr_has("the following required arguments were not provided");
    scratch
        .barman(&["keep", "--target", "full", "all", "latest"])
        .code(2)
        .stderr_has("You cannot use 'all' in a single server context");
    scratch
        .barman(&["keep", "--status", "broken", "latest"])
        .code(1)
        .stderr_has(
            "ERROR: PostgreSQL connection: Missing 'conninfo' parameter for server 'broken'",
        );
    assert!(!scratch.home().join("pg/meta/20261122T020000-keep").exists());
}

#[test]
fn show_backup_prints_barmans_sections() {
    let scratch = Scratch::new(&SERVERS.replace("REDUNDANCY 2", "REDUNDANCY 1"));
    catalogue(&scratch);
    // A complete backup.info, as Barman 3.17 writes it.
    scratch.write(
        "home/pg/meta/20261121T000000-backup.info",
        "backup_label='START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\\n'
backup_name=second
begin_offset=40
begin_time=2026-11-21 00:09:54.723992+00:00
begin_wal=000000010000000000000005
begin_xlog=0/5000028
children_backup_ids=None
cluster_size=102214189
compression=None
config_file=/srv/pg/data/postgresql.conf
copy_stats={'copy_time': 5.79283, 'total_time': 5.79283}
data_checksums=on
deduplicated_size=102036932
encryption=None
end_offset=0
end_time=2026-11-21 00:10:00.5+00:00
end_wal=000000010000000000000005
end_xlog=0/6000000
error=None
hba_file=/srv/pg/data/pg_hba.conf
ident_file=/srv/pg/data/pg_ident.conf
included_files=None
mode=postgres
parent_backup_id=None
pgdata=/srv/pg/data
server_name=pg
size=102036932
status=DONE
summarize_wal=None
systemid=7710809247697520226
tablespaces=[('tbs1', 16412, '/srv/pg/tbs1')]
timeline=1
version=150020
xlog_segment_size=16777216
",
    );
    let out = scratch
        .barman(&["show-backup", "pg", "second"])
        .ok()
        .to_string();
    let expected = "Backup 20261121T000000:
  Backup Name            : second
  Server Name            : pg
  System Id              : 7710809247697520226
  Status                 : DONE
  PostgreSQL Version     : 150020
  PGDATA directory       : /srv/pg/data
  Estimated Cluster Size : 97.5 MiB

  Server information:
    Checksums            : on

  Tablespaces:
    tbs1                 : /srv/pg/tbs1 (oid: 16412)

  Base backup information:
    Backup Method        : postgres
    Backup Type          : full
    Backup Size          : 97.3 MiB (97.3 MiB with WALs)
    WAL Size             : 100 B
    Timeline             : 1
    Begin WAL            : 000000010000000000000005
    End WAL              : 000000010000000000000005
    Number of WALs       : 1
    WAL compression ratio: 100.00%
    Begin time           : 2026-11-21 00:09:54.723992+00:00
    End time             : 2026-11-21 00:10:00.500000+00:00
    Copy time            : 5 seconds
    Estimated throughput : 16.8 MiB/s
    Begin Offset         : 40
    End Offset           : 0
    Begin LSN            : 0/5000028
    End LSN              : 0/6000000

  WAL information:
    Number of files      : 3
    Disk usage           : 300 B
    Compression ratio    : 100.00%
    Last available       : 000000010000000000000008

  Catalog information:
    Retention Policy     : KEEP:STANDALONE
    Previous Backup      : 20261120T000000
    Next Backup          : 20261122T000000
";
    assert_eq!(out, expected);

    let json = scratch
        .barman(&["-f", "json", "show-backup", "pg", "20261121T000000"])
        .ok()
        .to_string();
    let doc: Value = serde_json::from_str(&json).unwrap();
    let pg = &doc["pg"];
    assert_eq!(pg["backup_id"], "20261121T000000");
    assert_eq!(pg["system_id"], "7710809247697520226");
    assert_eq!(
        pg["base_backup_information"]["backup_size_bytes"],
        102036932
    );
    assert_eq!(
        pg["base_backup_information"]["backup_size_with_wals_bytes"],
        102037032
    );
    assert_eq!(pg["base_backup_information"]["copy_time_seconds"], 5.79283);
    assert_eq!(
        pg["catalog_information"]["retention_policy"],
        "KEEP:STANDALONE"
    );
    assert_eq!(
        pg["catalog_information"]["children_backup_ids"],
        Value::Null
    );
    assert_eq!(pg["tablespaces"][0]["oid"], 16412);
    assert_eq!(pg["wal_information"]["no_of_files"], 3);
}

#[test]
fn show_backup_of_a_failed_backup_shows_the_error() {
    let scratch = Scratch::new(SERVERS);
    catalogue(&scratch);
    let out = scratch
        .barman(&["show-backup", "pg", "last-failed"])
        .ok()
        .to_string();
    assert_eq!(
        out,
        "Backup 20261122T020000:\n  Server Name            : pg\n  Status                 : FAILED\n\n  Error                  : failure copy (boom)\n"
    );
    scratch
        .barman(&["show-backup", "pg", "nope"])
        .code(1)
        .stderr_has("ERROR: Unknown backup 'nope' for server 'pg'");
}

/// The catalogue of [`catalogue`] with real files: a data directory per backup and
/// the WAL files xlog.db lists.
fn catalogue_with_files(scratch: &Scratch) {
    catalogue(scratch);
    for id in ["20261120T000000", "20261121T000000", "20261122T000000"] {
        scratch.write(&format!("home/pg/base/{id}/data/PG_VERSION"), "15\n");
    }
    for n in 2..=9 {
        scratch.write(
            &format!("home/pg/wals/0000000100000000/0000000100000000000000{n:02X}"),
            "wal",
        );
    }
}

fn wal_names(scratch: &Scratch) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scratch.home().join("pg/wals/0000000100000000"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The summaries are a cache for restore: when they cannot be pruned, the WAL still goes.
#[test]
fn a_delete_removes_wal_even_when_the_summaries_cannot_be_pruned() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    std::fs::create_dir_all(scratch.home().join("pg/wals/pg-xlog.db.summaries")).unwrap();
    let run = scratch.barman(&["delete", "pg", "oldest"]);
    run.ok();
    let log = std::fs::read_to_string(scratch.log_file()).unwrap();
    assert!(
        log.contains("WARNING") && log.contains("could not prune the WAL summaries of server 'pg'"),
        "{log}"
    );
    assert_eq!(
        wal_names(&scratch).first().map(String::as_str),
        Some("000000010000000000000005")
    );
}

#[test]
fn delete_the_oldest_backup_removes_its_files_and_the_wal_before_the_next() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    // The archiver's summaries of segments 02..09, 05 twice.
    let mut summaries = String::new();
    for n in (2..=9).chain([5]) {
        summaries.push_str(&summary_line(
            &format!("0000000100000000000000{n:02X}"),
            10 + n,
        ));
    }
    scratch.write("home/pg/wals/pg-xlog.db.summaries", &summaries);
    let hook_log = scratch.path().join("hooks.log");
    let mut config = std::fs::read_to_string(scratch.config()).unwrap();
    config = config.replace(
        "[pg]\n",
        &format!(
            "[pg]\npre_delete_script = echo pre $BARMAN_BACKUP_ID prev=$BARMAN_PREVIOUS_ID next=$BARMAN_NEXT_ID $BARMAN_STATUS >> {log}\npost_wal_delete_script = echo wal $BARMAN_SEGMENT >> {log}\n",
            log = hook_log.display()
        ),
    );
    scratch.write_config(&config);
    let run = scratch.barman(&["delete", "pg", "oldest"]);
    let out = run.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Deleting backup 20261120T000000 for server pg");
    assert_eq!(
        lines[1..5],
        [
            "Delete associated WAL segments:",
            "\t000000010000000000000002",
            "\t000000010000000000000003",
            "\t000000010000000000000004"
        ]
    );
    assert!(
        lines[5].starts_with("Deleted backup 20261120T000000 (start time: "),
        "{out}"
    );
    assert_eq!(lines.len(), 6);
    let home = scratch.home();
    assert!(!home.join("pg/base/20261120T000000").exists());
    assert!(!home.join("pg/meta/20261120T000000-backup.info").exists());
    assert!(!home.join("pg/meta/20261120T000000-delete_this").exists());
    assert!(home
        .join("pg/base/20261121T000000/data/PG_VERSION")
        .exists());
    assert_eq!(
        wal_names(&scratch).first().map(String::as_str),
        Some("000000010000000000000005")
    );
    let xlogdb = std::fs::read_to_string(home.join("pg/wals/pg-xlog.db")).unwrap();
    assert!(xlogdb.starts_with("000000010000000000000005\t"), "{xlogdb}");
    assert_eq!(xlogdb.lines().count(), 5);
    // The removed segments' summaries went with them; 05 keeps its last one.
    assert_eq!(
        std::fs::read_to_string(home.join("pg/wals/pg-xlog.db.summaries")).unwrap(),
        [(6, 16), (7, 17), (8, 18), (9, 19), (5, 15)]
            .map(|(n, r)| summary_line(&format!("0000000100000000000000{n:02X}"), r))
            .concat()
    );
    assert_eq!(
        std::fs::read_to_string(&hook_log).unwrap(),
        "pre 20261120T000000 prev= next=20261121T000000 DONE\nwal 000000010000000000000002\nwal 000000010000000000000003\nwal 000000010000000000000004\n"
    );
}

/// archive-wal places a segment in its hash directory before it takes the xlog.db lock,
/// so a delete that empties that directory may find a newcomer in it: the newcomer stays.
#[test]
fn a_segment_arriving_while_its_directory_is_emptied_is_kept() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    let dir = scratch.home().join("pg/wals/0000000100000000");
    // Only the segments the delete removes are on disk...
    for n in 5..=9 {
        std::fs::remove_file(dir.join(format!("0000000100000000000000{n:02X}"))).unwrap();
    }
    // ...until segment 05 is archived in the middle of the delete.
    let newcomer = dir.join("000000010000000000000005");
    let config = std::fs::read_to_string(scratch.config()).unwrap().replace(
        "[pg]\n",
        &format!(
            "[pg]\npre_wal_delete_script = test $BARMAN_SEGMENT != 000000010000000000000003 || echo new > {}\n",
            newcomer.display()
        ),
    );
    scratch.write_config(&config);
    let out = scratch.barman(&["delete", "pg", "oldest"]).ok().to_string();
    assert!(out.contains("\t000000010000000000000004\n"), "{out}");
    assert_eq!(wal_names(&scratch), ["000000010000000000000005"]);
    assert_eq!(std::fs::read_to_string(&newcomer).unwrap(), "new\n");
}

#[test]
fn deleting_a_backup_with_an_older_one_keeps_all_wal() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    scratch.barman(&["keep", "--release", "pg", "second"]).ok();
    let out = scratch.barman(&["delete", "pg", "second"]).ok().to_string();
    assert!(!out.contains("Delete associated WAL segments"), "{out}");
    assert_eq!(wal_names(&scratch).len(), 8);
    assert!(!scratch.home().join("pg/base/20261121T000000").exists());
}

#[test]
fn delete_refuses_kept_backups_and_minimum_redundancy() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    scratch
        .barman(&["delete", "pg", "second"])
        .code(1)
        .stderr_has("WARNING: Skipping delete of backup 20261121T000000 for server pg as it has a current keep request.")
        .stderr_has("ERROR: Cannot delete backup (pg 20261121T000000)");
    let config = std::fs::read_to_string(scratch.config())
        .unwrap()
        .replace("[pg]\n", "[pg]\nminimum_redundancy = 3\n");
    scratch.write_config(&config);
    scratch
        .barman(&["delete", "pg", "oldest"])
        .code(1)
        .stderr_has("WARNING: Skipping delete of backup 20261120T000000 for server pg due to minimum redundancy requirements (minimum redundancy = 3, current redundancy = 3)");
    assert!(scratch
        .home()
        .join("pg/base/20261120T000000/data/PG_VERSION")
        .exists());
    assert_eq!(wal_names(&scratch).len(), 8);
}

#[test]
fn a_pre_delete_retry_hook_can_veto_the_delete() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    let config = std::fs::read_to_string(scratch.config())
        .unwrap()
        .replace("[pg]\n", "[pg]\npre_delete_retry_script = exit 63\n");
    scratch.write_config(&config);
    scratch
        .barman(&["delete", "pg", "oldest"])
        .code(1)
        .stderr_has("asked to stop (exit code 63)");
    let home = scratch.home();
    assert!(home
        .join("pg/base/20261120T000000/data/PG_VERSION")
        .exists());
    assert!(home.join("pg/meta/20261120T000000-backup.info").exists());
    assert!(!home.join("pg/meta/20261120T000000-delete_this").exists());
}

#[test]
fn delete_waits_for_no_one_while_a_backup_runs() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    let lock = barman::fsutil::try_lock(&scratch.home().join(".pg-backup.lock")).unwrap();
    scratch
        .barman(&["delete", "pg", "oldest"])
        .code(1)
        .stderr_has(
            "ERROR: Another process in running on server pg. Impossible to delete the backup.",
        );
    drop(lock);
    assert!(scratch
        .home()
        .join("pg/base/20261120T000000/data/PG_VERSION")
        .exists());
    scratch.barman(&["delete", "pg", "oldest"]).ok();
}

#[test]
fn check_backup_moves_a_waiting_backup_to_done_or_failed() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    let info = scratch.home().join("pg/meta/20261122T000000-backup.info");
    let waiting = std::fs::read_to_string(&info)
        .unwrap()
        .replace("status=DONE", "status=WAITING_FOR_WALS");
    std::fs::write(&info, &waiting).unwrap();
    // 07 and 08 are archived: DONE.
    scratch
        .barman(&["check-backup", "pg", "20261122T000000"])
        .ok();
    let text = std::fs::read_to_string(&info).unwrap();
    assert!(text.contains("status=DONE\n"), "{text}");
    // Archived up to 09 but 08 missing: FAILED with the reason.
    std::fs::write(&info, &waiting).unwrap();
    std::fs::remove_file(
        scratch
            .home()
            .join("pg/wals/0000000100000000/000000010000000000000008"),
    )
    .unwrap();
    scratch
        .barman(&["check-backup", "pg", "20261122T000000"])
        .code(1)
        .stderr_has("ERROR: This backup has been marked as FAILED due to the following reason: At least one WAL file is missing. The first missing WAL file is 000000010000000000000008");
    let text = std::fs::read_to_string(&info).unwrap();
    assert!(text.contains("status=FAILED\n"), "{text}");
    assert!(text.contains("error=At least one WAL file is missing. The first missing WAL file is 000000010000000000000008\n"));
    scratch
        .barman(&["check-backup", "pg", "20261122T000000"])
        .code(1)
        .stderr_has("ERROR: The validity of a failed backup cannot be checked");
}

#[test]
fn check_backup_waits_while_the_end_is_not_archived() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    let info = scratch.home().join("pg/meta/20261122T000000-backup.info");
    let text = std::fs::read_to_string(&info)
        .unwrap()
        .replace("status=DONE", "status=WAITING_FOR_WALS")
        .replace(
            "end_wal=000000010000000000000008",
            "end_wal=00000001000000000000000A",
        );
    std::fs::write(&info, &text).unwrap();
    scratch
        .barman(&["check-backup", "pg", "20261122T000000"])
        .ok();
    assert!(std::fs::read_to_string(&info)
        .unwrap()
        .contains("status=WAITING_FOR_WALS\n"));
}

#[test]
fn list_files_lists_data_and_wal_by_target() {
    let scratch = Scratch::new(SERVERS);
    catalogue_with_files(&scratch);
    scratch.write("home/pg/base/20261121T000000/data/base/1/1234", "x");
    std::fs::create_dir_all(
        scratch
            .home()
            .join("pg/base/20261121T000000/data/pg_notify"),
    )
    .unwrap();
    scratch.write("home/pg/wals/00000002.history", "1\t0/9000000\treason\n");
    // xlog.db is in archive order: the history file was archived after segment 06.
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    let db = db.replacen(
        "000000010000000000000007\t",
        "00000002.history\t20\t1795312965.5\tNone\tNone\n000000010000000000000007\t",
        1,
    );
    std::fs::write(scratch.home().join("pg/wals/pg-xlog.db"), db).unwrap();
    let home = scratch.home();
    let base = home.join("pg/base/20261121T000000");
    let wal = |n: &str| {
        home.join("pg/wals/0000000100000000")
            .join(n)
            .display()
            .to_string()
    };
    let out = scratch
        .barman(&["list-files", "pg", "second"])
        .ok()
        .to_string();
    assert_eq!(
        out,
        format!(
            "{}\n{}\n{}\n",
            base.join("data/PG_VERSION").display(),
            base.join("data/base/1/1234").display(),
            wal("000000010000000000000005")
        )
    );
    let out = scratch
        .barman(&[
            "list-files",
            "--target",
            "data",
            "--list-empty-directories",
            "pg",
            "second",
        ])
        .ok()
        .to_string();
    // As Barman's os.walk: a directory's files (sorted) before its subdirectories, which
    // come in the order the directory lists them.
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(
        lines[0],
        base.join("data/PG_VERSION").display().to_string(),
        "{out}"
    );
    lines.sort();
    assert_eq!(
        lines,
        [
            base.join("data/PG_VERSION").display().to_string(),
            base.join("data/base/1/1234").display().to_string(),
            base.join("data/pg_notify").display().to_string()
        ],
        "{out}"
    );
    let out = scratch
        .barman(&["list-files", "--target", "wal", "pg", "second"])
        .ok()
        .to_string();
    assert_eq!(
        out,
        format!(
            "{}\n{}\n{}\n{}\n{}\n",
            wal("000000010000000000000005"),
            wal("000000010000000000000006"),
            home.join("pg/wals/00000002.history").display(),
            wal("000000010000000000000007"),
            wal("000000010000000000000008"),
        )
    );
    let full = scratch
        .barman(&["list-files", "--target", "full", "pg", "second"])
        .ok()
        .to_string();
    assert_eq!(full.lines().count(), 7);
}

#[test]
fn gpg_encryption_is_refused_not_ignored() {
    let scratch = Scratch::new(&SERVERS.replace(
        "slot_name = barman\n",
        "slot_name = barman\nencryption = gpg\nencryption_key_id = ABCDEF\n",
    ));
    catalogue(&scratch);
    // Taking a backup or archiving WAL would store them unencrypted.
    let backup = scratch.barman(&["backup", "pg"]);
    assert_ne!(backup.code, 0, "{backup:?}");
    backup.stderr_has("encryption = gpg is not supported by this barman");
    scratch.write("home/pg/streaming/000000010000000000000010", "not read");
    let archive = scratch.barman(&["archive-wal", "pg"]);
    assert_ne!(archive.code, 0, "{archive:?}");
    archive.stderr_has("encryption = gpg is not supported by this barman");
    assert!(scratch
        .home()
        .join("pg/streaming/000000010000000000000010")
        .is_file());
    // A backup Barman encrypted is not restored as ciphertext.
    let info = scratch.home().join("pg/meta/20261120T000000-backup.info");
    let text = std::fs::read_to_string(&info).unwrap();
    std::fs::write(&info, format!("{text}encryption=gpg\n")).unwrap();
    let dest = scratch.path().join("dest");
    let restore = scratch.barman(&["restore", "pg", "20261120T000000", dest.to_str().unwrap()]);
    assert_ne!(restore.code, 0, "{restore:?}");
    restore.stderr_has("it is encrypted (gpg), which this barman does not support");
    assert!(!dest.exists());
}
