//! Recovery across timelines, into a standby, and over a used data directory
//! (`--delta-restore`), on every major version.
//!
//! A timeline is made the way it happens in production: a backup on timeline 1, a
//! point-in-time recovery that is promoted (timeline 2) and archives into the same
//! catalogue, rows written there. `restore --target-tli` then reaches either branch from
//! the one backup. A `--standby-mode` restore becomes a streaming standby of the primary.

use crate::harness::{live_test, PgCluster, PgInstall};
use crate::live::recover_fixture::{append_auto_conf, start_recovered, wait_for, Fixture};

fn timeline_of(cluster: &PgCluster) -> u32 {
    cluster.psql("checkpoint");
    cluster
        .psql("select timeline_id from pg_control_checkpoint()")
        .parse()
        .unwrap()
}

live_test!(recover_follows_a_later_timeline, |pg: &PgInstall| {
    let mut f = Fixture::new(pg);
    let c = &f.cluster;
    c.psql("create table t (id int) tablespace tbs");
    c.psql("insert into t select generate_series(1, 100)");
    f.backup("20260101T000000");
    c.psql("insert into t select generate_series(101, 200)");
    c.psql("select pg_create_restore_point('fork')");
    // Timeline 1 goes on without the branch: 100 more rows.
    c.psql("insert into t select generate_series(201, 300)");
    f.archive_all();

    // The branch: recover to 'fork', promote; the new primary archives into the same
    // catalogue (its archive_command is disabled by restore; enabled again here).
    let (branch, _) = f.restore_latest(
        "branch",
        &["--target-name", "fork", "--target-action", "promote"],
    );
    f.cluster.stop();
    let incoming = f.scratch.home().join("pg/incoming");
    append_auto_conf(
        &branch,
        &format!("archive_command = 'cp %p {}/%f'", incoming.display()),
    );
    let promoted = start_recovered(pg, &branch);
    assert_eq!(timeline_of(&promoted), 2);
    promoted.psql("insert into t select generate_series(1001, 1050)");
    promoted.psql("select pg_create_restore_point('on_tl2')");
    promoted.psql("select pg_logical_emit_message(false, 'barman-rs', 'switch')");
    let last = promoted.psql("select pg_walfile_name(pg_current_wal_lsn())");
    promoted.psql("select pg_switch_wal()");
    wait_for(
        &promoted,
        &format!("select coalesce(last_archived_wal, '') >= '{last}' from pg_stat_archiver"),
        "t",
        "timeline 2 to be archived",
    );
    drop(promoted);
    f.scratch.barman(&["archive-wal", "pg"]).ok();
    let wals = f.scratch.home().join("pg/wals");
    assert!(
        wals.join("00000002.history").is_file(),
        "the history file of timeline 2 was not archived"
    );

    // From the one backup on timeline 1: the branch's restore point, on timeline 2.
    let (dest, _) = f.restore_latest(
        "on_tl2",
        &[
            "--target-tli",
            "2",
            "--target-name",
            "on_tl2",
            "--target-action",
            "promote",
        ],
    );
    assert!(
        dest.join("barman_wal/00000002.history").is_file(),
        "the history file is needed to follow timeline 2"
    );
    let recovered = start_recovered(pg, &dest);
    assert_eq!(recovered.psql("select count(*) from t"), "250");
    assert_eq!(recovered.psql("select max(id) from t"), "1050");
    assert_eq!(timeline_of(&recovered), 3);
    drop(recovered);

    // --target-tli latest with no other target: the end of timeline 2.
    let (dest, _) = f.restore_latest(
        "latest_tli",
        &["--target-tli", "latest", "--target-action", "promote"],
    );
    let recovered = start_recovered(pg, &dest);
    assert_eq!(recovered.psql("select count(*) from t"), "250");
    drop(recovered);

    // --target-tli 1: the original history, which never saw the branch.
    let (dest, _) = f.restore_latest(
        "on_tl1",
        &["--target-tli", "1", "--target-action", "promote"],
    );
    let copied: Vec<String> = std::fs::read_dir(dest.join("barman_wal"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        copied
            .iter()
            .all(|n| n.starts_with("00000001") || n == "archive_status"),
        "WAL of timeline 2 was copied for a recovery on timeline 1: {copied:?}"
    );
    let recovered = start_recovered(pg, &dest);
    assert_eq!(recovered.psql("select count(*) from t"), "300");
    assert_eq!(recovered.psql("select max(id) from t"), "300");
    drop(recovered);

    // A restore point that only timeline 2 has, asked for on timeline 1: refused.
    let dest = f.path("refused");
    let refused_tbs = f.path("refused_tbs");
    let run = f.restore(&[
        "--target-tli",
        "1",
        "--target-name",
        "on_tl2",
        "--tablespace",
        &format!("tbs:{}", refused_tbs.display()),
        "latest",
        dest.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("'on_tl2'"), "{}", run.stderr);
    for untouched in [&dest, &refused_tbs] {
        assert!(
            !untouched.exists() || std::fs::read_dir(untouched).unwrap().next().is_none(),
            "the refused restore wrote into {}",
            untouched.display()
        );
    }
    f.cluster.start_again();
});

live_test!(
    standby_mode_restore_streams_from_the_primary,
    |pg: &PgInstall| {
        let f = Fixture::new(pg);
        let c = &f.cluster;
        c.psql("create table t (id int)");
        c.psql("insert into t select generate_series(1, 100)");
        f.backup("20260101T000000");
        c.psql("insert into t select generate_series(101, 200)");
        f.archive_all();

        let (dest, out) = f.restore_latest("standby", &["--standby-mode"]);
        assert!(dest.join("standby.signal").is_file(), "{out}");
        assert!(!dest.join("recovery.signal").exists(), "{out}");
        // The DBA points the standby at its primary, as after any standby restore.
        append_auto_conf(
            &dest,
            &format!(
                "primary_conninfo = '{}'\nhot_standby = on",
                c.conninfo().replace('\'', "\\'")
            ),
        );
        let standby = PgCluster::start_existing(pg, &dest);
        wait_for(
            &standby,
            "select count(*) from t",
            "200",
            "the standby to replay the archived WAL",
        );
        assert_eq!(standby.psql("select pg_is_in_recovery()"), "t");
        // It streams: a row committed on the primary now appears on the standby.
        c.psql("insert into t values (201)");
        wait_for(
            &standby,
            "select count(*) from t",
            "201",
            "the standby to stream from the primary",
        );
        wait_for(
            c,
            "select count(*) from pg_stat_replication where state = 'streaming'",
            "1",
            "the primary to see its standby",
        );
    }
);

live_test!(
    delta_restore_brings_a_used_data_directory_back,
    |pg: &PgInstall| {
        let f = Fixture::new(pg);
        f.rows_around_restore_point("");

        // A first recovery, started and used: rows changed, a table and a file added.
        let dest = f.path("delta");
        let tbs = format!("tbs:{}", f.path("delta_tbs").display());
        let args = |extra: &[&'static str]| -> Vec<String> {
            let mut all: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            all.extend(
                [
                    "--target-name",
                    "rp",
                    "--target-action",
                    "promote",
                    "--tablespace",
                    &tbs,
                    "latest",
                    dest.to_str().unwrap(),
                ]
                .map(String::from),
            );
            all
        };
        let run = |extra: &[&'static str]| {
            let all = args(extra);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            f.restore(&refs)
        };
        run(&[]).ok();
        let used = start_recovered(pg, &dest);
        assert_eq!(used.psql("select count(*) from t"), "150");
        used.psql("delete from t where id <= 50");
        used.psql("create table scratch_work as select generate_series(1, 10000) x");
        drop(used);
        std::fs::write(dest.join("leftover.txt"), "not from the backup").unwrap();

        // Without --delta-restore the used directory is refused, untouched.
        let refused = run(&[]);
        assert_ne!(refused.code, 0, "{}", refused.stdout);
        assert!(
            refused.stderr.contains("is not empty"),
            "{}",
            refused.stderr
        );
        assert!(dest.join("leftover.txt").exists());

        // With it: the backup's files back, what it did not have removed.
        run(&["--delta-restore"]).ok();
        assert!(
            !dest.join("leftover.txt").exists(),
            "a file not in the backup was kept"
        );
        let recovered = start_recovered(pg, &dest);
        assert_eq!(recovered.psql("select count(*) from t"), "150");
        assert_eq!(recovered.psql("select min(id) from t"), "1");
        assert_eq!(
            recovered.psql("select count(*) from pg_class where relname = 'scratch_work'"),
            "0"
        );
    }
);

live_test!(
    get_wal_restore_command_feeds_a_recovering_server,
    |pg: &PgInstall| {
        let f = Fixture::new(pg);
        f.rows_around_restore_point("");

        let (dest, _) = f.restore_latest(
            "getwal",
            &[
                "--get-wal",
                "--target-name",
                "rp",
                "--target-action",
                "promote",
            ],
        );
        let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
        let config = f.scratch.config();
        let expected = format!(
            "restore_command = 'barman -c {} get-wal -P pg %f > %p'",
            config.display()
        );
        assert!(auto.contains(&expected), "{auto}");
        // No WAL was copied: the server asks for each file.
        let copied = std::fs::read_dir(dest.join("pg_wal"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().len() == 24)
            .count();
        assert_eq!(copied, 0);

        // The command runs as the server's OS user; as the comment Barman writes says,
        // get-wal must run as barman_user. Here that user gets its own copy of the
        // catalogue and a configuration naming it, and the command names this binary.
        let user = nix::unistd::User::from_uid(crate::harness::server_user().uid)
            .unwrap()
            .unwrap()
            .name;
        let home = f.path("server_user_home");
        crate::harness::copy_dir(&f.scratch.home(), &home);
        let text = std::fs::read_to_string(&config).unwrap();
        let servers = &text[text.find("[pg]").expect("a [pg] section")..];
        let own_config = home.join("barman.conf");
        std::fs::write(
            &own_config,
            format!(
                "[barman]\nbarman_home = {}\nbarman_user = {user}\nlog_file = {}/barman.log\n\n{servers}",
                home.display(),
                home.display()
            ),
        )
        .unwrap();
        crate::harness::give_tree_to_server_user(&home);
        std::fs::write(
            dest.join("postgresql.auto.conf"),
            auto.replace(
                &expected,
                &format!(
                    "restore_command = '{} -c {} get-wal -P pg %f > %p'",
                    env!("CARGO_BIN_EXE_barman"),
                    own_config.display()
                ),
            ),
        )
        .unwrap();
        let recovered = start_recovered(pg, &dest);
        assert_eq!(recovered.psql("select count(*) from t"), "150");
        assert!(
            recovered.log().contains("restored log file"),
            "the server did not restore WAL through get-wal:\n{}",
            recovered.log()
        );
    }
);
