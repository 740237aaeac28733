//! A base backup taken over our replication client, untarred, becomes a standby that
//! streams from the primary (its user tablespace relocated); once promoted, its new
//! timeline is followed the way a WAL receiver must: TIMELINE_HISTORY names the switch
//! point, and START_REPLICATION on the old timeline ends exactly there with the next
//! timeline's number. On every major.

use std::path::Path;
use std::time::{Duration, Instant};

use barman_protocol::command::Checkpoint;
use barman_protocol::conninfo::Env;
use barman_protocol::stream::base_backup::BaseBackupEvent;
use barman_protocol::stream::wal::{StartReplication, WalEvent};
use barman_protocol::wal::TimelineHistory;
use barman_protocol::{BaseBackupOptions, ConnInfo, Lsn, ReplicationConnection, TimelineId};

use crate::harness::{give_tree_to_server_user, live_test, ClusterOptions, PgCluster, PgInstall};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

fn info(cluster: &PgCluster) -> ConnInfo {
    let env = Env::from_vars([], Some(Path::new("/nonexistent-home")), Some("postgres"));
    ConnInfo::parse_with_env(
        &format!(
            "host=127.0.0.1 port={} user=postgres sslmode=disable",
            cluster.port()
        ),
        &env,
    )
    .expect("valid conninfo")
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Untar `bytes` into `dir`.
fn untar(bytes: &[u8], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut archive = tar::Archive::new(bytes);
    archive.set_preserve_permissions(true);
    archive
        .unpack(dir)
        .unwrap_or_else(|e| panic!("untar into {}: {e}", dir.display()));
}

live_test!(
    a_promoted_standby_built_from_our_base_backup_is_followed_across_timelines,
    |pg: &PgInstall| {
        let primary =
            PgCluster::start_with(pg, &ClusterOptions::new().conf("wal_keep_size = '256MB'"));
        let work = tempfile::Builder::new()
            .prefix("barman-tl-")
            .tempdir_in("/tmp")
            .unwrap();
        let space = work.path().join("ts_primary");
        std::fs::create_dir_all(&space).unwrap();
        give_tree_to_server_user(work.path());
        primary.psql(&format!(
            "create tablespace ts1 location '{}';
         create table t (id int) tablespace ts1;
         insert into t select generate_series(1, 5000);",
            space.display()
        ));
        let ts_oid = primary.psql("select oid from pg_tablespace where spcname = 'ts1'");

        // 1. BASE_BACKUP over our client: keep each archive's tar stream.
        let mut options = BaseBackupOptions::default();
        options.label = Some("standby".into());
        options.checkpoint = Checkpoint::Fast;
        options.wait = false;
        let archives = block_on(async {
            let mut conn = ReplicationConnection::connect(&info(&primary))
                .await
                .unwrap();
            let mut stream = conn.base_backup(&options).await.unwrap();
            let mut archives: Vec<(Option<u32>, Vec<u8>)> = Vec::new();
            while let Some(event) = stream.next().await.unwrap() {
                match event {
                    BaseBackupEvent::Archive { tablespace, .. } => {
                        archives.push((tablespace.oid, Vec::new()))
                    }
                    BaseBackupEvent::Data(bytes) => {
                        archives.last_mut().unwrap().1.extend_from_slice(&bytes)
                    }
                    _ => {}
                }
            }
            archives
        });
        assert_eq!(archives.len(), 2, "base and one tablespace");

        // 2. Untar: the data directory, and the tablespace at a new place.
        let data = work.path().join("standby");
        let new_space = work.path().join("ts_standby");
        for (oid, bytes) in &archives {
            match oid {
                None => untar(bytes, &data),
                Some(_) => untar(bytes, &new_space),
            }
        }
        let link = data.join("pg_tblspc").join(&ts_oid);
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&link);
        std::os::unix::fs::symlink(&new_space, &link).unwrap();
        std::fs::write(data.join("standby.signal"), "").unwrap();
        let mut auto = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(data.join("postgresql.auto.conf"))
            .unwrap();
        use std::io::Write;
        writeln!(
            auto,
            "primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=tl_standby'",
            primary.port()
        )
        .unwrap();
        drop(auto);
        std::fs::create_dir_all(data.join("pg_wal")).unwrap();
        give_tree_to_server_user(work.path());

        // 3. It starts as a standby and follows the primary.
        let standby = PgCluster::start_existing(pg, &data);
        primary.psql("insert into t select generate_series(5001, 6000)");
        wait_for("the standby to replay the primary's writes", || {
            standby.psql("select count(*) from t") == "6000"
        });
        assert_eq!(standby.psql("select pg_is_in_recovery()"), "t");

        // 4. Promote it: timeline 2.
        standby.psql("select pg_promote(true, 60)");
        wait_for("the promotion", || {
            standby.psql("select pg_is_in_recovery()") == "f"
        });
        standby.psql("insert into t select generate_series(6001, 6010)");
        assert_eq!(standby.psql("select count(*) from t"), "6010");

        // 5. Follow the timeline switch on the promoted server.
        block_on(async {
            let mut conn = ReplicationConnection::connect(&info(&standby))
                .await
                .unwrap();
            let id = conn.identify_system().await.unwrap();
            assert_eq!(id.timeline.get(), 2);
            let file = conn.timeline_history(id.timeline).await.unwrap();
            assert_eq!(file.filename, "00000002.history");
            let text = std::str::from_utf8(&file.content).unwrap();
            let history = TimelineHistory::parse(id.timeline, text).expect("a valid history file");
            let switchpoint: Lsn = history
                .switchpoint(TimelineId::new(1).unwrap())
                .expect("timeline 1 ends somewhere");
            // Stream timeline 1 from its last segment's start: it must end at the switch point.
            let start = Lsn::new(switchpoint.as_u64().saturating_sub(1) & !((16u64 << 20) - 1));
            let mut stream = conn
                .start_replication(
                    &StartReplication::new(start).timeline(TimelineId::new(1).unwrap()),
                )
                .await
                .unwrap();
            let mut next = start;
            loop {
                match tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .expect("the end of timeline 1 within 30 s")
                    .unwrap()
                    .unwrap()
                {
                    WalEvent::XLogData(x) => {
                        assert_eq!(x.wal_start(), next);
                        next = x.data_end().unwrap();
                    }
                    WalEvent::Keepalive(_) => {}
                    WalEvent::EndOfTimeline {
                        next_timeline,
                        start,
                    } => {
                        assert_eq!(next_timeline.get(), 2);
                        assert_eq!(start, switchpoint, "timeline 2 starts at the switch point");
                        assert!(
                            next >= switchpoint,
                            "all of timeline 1 was sent before its end"
                        );
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            drop(stream);
            // The new timeline streams from the switch point.
            let mut conn = ReplicationConnection::connect(&info(&standby))
                .await
                .unwrap();
            let mut stream = conn
                .start_replication(
                    &StartReplication::new(Lsn::new(switchpoint.as_u64() & !((16u64 << 20) - 1)))
                        .timeline(TimelineId::new(2).unwrap()),
                )
                .await
                .unwrap();
            loop {
                match tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .expect("WAL of timeline 2 within 30 s")
                    .unwrap()
                    .unwrap()
                {
                    WalEvent::XLogData(_) => break,
                    WalEvent::Keepalive(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        });
    }
);
