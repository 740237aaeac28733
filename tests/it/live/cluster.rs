//! The harness itself against every major: a fresh cluster is configured as the other live tests
//! expect, a stopped cluster's data directory starts again elsewhere (the path recovery tests
//! take), and the reference tools of Debian's PostgreSQL 15 are there.

use crate::harness::{client_bin, copy_dir, live_test, PgCluster, PgInstall};

live_test!(fresh_cluster_is_replication_ready, |pg: &PgInstall| {
    let mut cluster = PgCluster::start(pg);

    let version_num: u32 = cluster
        .psql("SHOW server_version_num")
        .parse()
        .expect("server_version_num is a number");
    assert_eq!(
        version_num / 10000,
        pg.major,
        "server_version_num {version_num}"
    );
    assert_eq!(cluster.psql("SHOW data_checksums"), "on");
    assert_eq!(cluster.psql("SHOW wal_level"), "replica");
    assert_eq!(cluster.psql("SHOW max_wal_senders"), "10");
    assert_eq!(cluster.psql("SHOW max_replication_slots"), "10");

    // systemid|timeline|xlogpos|dbname
    let identify = cluster.psql_replication("IDENTIFY_SYSTEM");
    let system_id = identify
        .split('|')
        .next()
        .expect("IDENTIFY_SYSTEM has a first column");
    assert_eq!(
        system_id,
        cluster.psql("SELECT system_identifier FROM pg_control_system()"),
        "IDENTIFY_SYSTEM returned {identify:?}"
    );

    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    assert_eq!(
        cluster.psql("SELECT count(*) FROM pgbench_accounts"),
        "100000"
    );

    let port = cluster.port();
    cluster.restart();
    assert_eq!(cluster.port(), port, "a restart keeps the port");
    assert_eq!(cluster.psql("SELECT count(*) FROM pgbench_branches"), "1");

    let root = cluster.root_dir().to_path_buf();
    let socket = cluster
        .socket_dir()
        .join(format!(".s.PGSQL.{}", cluster.port()));
    assert!(socket.exists(), "no socket at {}", socket.display());
    drop(cluster);
    assert!(!root.exists(), "{} was not removed", root.display());
});

live_test!(copied_data_directory_starts, |pg: &PgInstall| {
    let mut source = PgCluster::start(pg);
    source.psql(
        "CREATE TABLE kept (id int PRIMARY KEY, note text);
         INSERT INTO kept SELECT g, 'row ' || g FROM generate_series(1, 1000) g;",
    );
    let system_id = source.psql("SELECT system_identifier FROM pg_control_system()");
    source.stop();

    // A private 0700 directory owned by the test user, as a recovery destination would be.
    let scratch = tempfile::Builder::new()
        .prefix("barman-copy-")
        .tempdir_in("/tmp")
        .expect("create a scratch directory under /tmp");
    let copy = scratch.path().join("pgdata");
    copy_dir(source.data_dir(), &copy);
    drop(source);

    let restored = PgCluster::start_existing(pg, &copy);
    assert_eq!(
        restored.psql("SELECT count(*), sum(id), max(note) FROM kept"),
        "1000|500500|row 999"
    );
    assert_eq!(
        restored.psql("SELECT system_identifier FROM pg_control_system()"),
        system_id
    );
    assert_eq!(restored.major(), pg.major);
    let root = restored.root_dir().to_path_buf();
    drop(restored);
    assert!(!root.exists(), "{} was not removed", root.display());
    assert!(
        copy.join("PG_VERSION").exists(),
        "the caller's data directory must stay"
    );
});

/// The oracles later tests compare against come from Debian's PostgreSQL 15.
#[test]
fn reference_tools_are_installed() {
    for tool in [
        "pg_waldump",
        "pg_verifybackup",
        "pg_basebackup",
        "pg_receivewal",
        "psql",
        "pgbench",
    ] {
        let path = client_bin(tool);
        let output = std::process::Command::new(&path)
            .arg("--version")
            .output()
            .unwrap_or_else(|err| panic!("run {}: {err}", path.display()));
        let version = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && version.contains("(PostgreSQL) 15."),
            "{} --version printed {version:?}",
            path.display()
        );
    }
}
