//! START_REPLICATION beyond the basics, on every major: a stream that crosses a
//! segment boundary delivers exactly the bytes PostgreSQL wrote (and they validate),
//! and a server shutting down mid-stream is reported as such, after which a new
//! connection resumes from where the stream stopped.

use std::path::Path;
use std::time::Duration;

use barman_protocol::conninfo::Env;
use barman_protocol::stream::wal::{StartReplication, WalEvent};
use barman_protocol::wal::{validate_segment, ValidatorOptions};
use barman_protocol::{ConnInfo, Lsn, ReplicationConnection, WalSegmentSize};

use crate::harness::{live_test, ClusterOptions, PgCluster, PgInstall};

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

const SEG: u64 = 16 << 20;

live_test!(
    streaming_crosses_a_segment_boundary_byte_for_byte,
    |pg: &PgInstall| {
        // Keep the segments in pg_wal, to compare them with what was streamed.
        let cluster =
            PgCluster::start_with(pg, &ClusterOptions::new().conf("wal_keep_size = '256MB'"));
        let info = info(&cluster);
        block_on(async {
            let mut conn = ReplicationConnection::connect(&info).await.unwrap();
            let id = conn.identify_system().await.unwrap();
            let start = Lsn::new(id.xlogpos.as_u64() & !(SEG - 1));
            let first_segment = format!(
                "{:08X}{:08X}{:08X}",
                id.timeline.get(),
                start.as_u64() >> 32,
                (start.as_u64() & 0xFFFF_FFFF) / SEG
            );
            // More than a segment of WAL, then close the segment so PostgreSQL finishes it.
            cluster.psql("create table big as select g, repeat('x', 200) as pad from generate_series(1, 120000) g");
            cluster.psql("select pg_switch_wal()");
            let target: Lsn = cluster
                .psql("select pg_current_wal_flush_lsn()")
                .parse()
                .unwrap();
            assert!(
                target.as_u64() > start.as_u64() + SEG,
                "the test must span a segment boundary"
            );
            let mut stream = conn
                .start_replication(&StartReplication::new(start).timeline(id.timeline))
                .await
                .unwrap();
            let mut received = Vec::with_capacity(2 * SEG as usize);
            let mut next = start;
            while next < target {
                match tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .expect("WAL within 30 s")
                    .unwrap()
                    .unwrap()
                {
                    WalEvent::XLogData(x) => {
                        assert_eq!(x.wal_start(), next, "contiguous WAL");
                        received.extend_from_slice(x.data());
                        next = x.data_end().unwrap();
                        stream.set_positions(next, next, Lsn::INVALID);
                    }
                    WalEvent::Keepalive(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            stream.stop().await.unwrap();
            // The first segment as streamed is the segment PostgreSQL wrote, and it validates.
            let streamed = &received[..SEG as usize];
            let on_disk = std::fs::read(cluster.data_dir().join("pg_wal").join(&first_segment))
                .expect("the first segment is still in pg_wal");
            assert!(
                streamed == on_disk.as_slice(),
                "streamed bytes differ from pg_wal/{first_segment}"
            );
            let options = ValidatorOptions::for_file_name(&first_segment, WalSegmentSize::DEFAULT)
                .unwrap()
                .system_identifier(Some(id.system_id));
            let summary =
                validate_segment(streamed, options).expect("the streamed segment validates");
            assert!(summary.records > 0);
        });
    }
);

live_test!(
    a_server_shutdown_mid_stream_is_reported_and_resumable,
    |pg: &PgInstall| {
        let mut cluster = PgCluster::start(pg);
        let info = info(&cluster);
        let resumed_at = block_on(async {
            let mut conn = ReplicationConnection::connect(&info).await.unwrap();
            let id = conn.identify_system().await.unwrap();
            let start = Lsn::new(id.xlogpos.as_u64() & !(SEG - 1));
            let mut stream = conn
                .start_replication(&StartReplication::new(start).timeline(id.timeline))
                .await
                .unwrap();
            cluster.psql("create table t as select generate_series(1, 1000) g");
            // Read until the new WAL arrived, then stop the server under the stream.
            let target: Lsn = cluster
                .psql("select pg_current_wal_flush_lsn()")
                .parse()
                .unwrap();
            let mut next = start;
            while next < target {
                if let WalEvent::XLogData(x) =
                    tokio::time::timeout(Duration::from_secs(30), stream.next())
                        .await
                        .expect("WAL within 30 s")
                        .unwrap()
                        .unwrap()
                {
                    next = x.data_end().unwrap();
                }
            }
            cluster.stop_with_mode("fast");
            // The stream ends as a server shutdown or a lost connection, never as a hang.
            loop {
                match tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .expect("the shutdown is noticed within 30 s")
                {
                    Ok(Some(WalEvent::XLogData(x))) => next = x.data_end().unwrap(),
                    Ok(Some(WalEvent::Keepalive(_))) => {}
                    Ok(Some(WalEvent::ServerStopped)) | Ok(None) => break,
                    Err(e) => {
                        assert!(e.is_closed(), "a shutdown is a connection loss: {e}");
                        break;
                    }
                    Ok(Some(other)) => panic!("unexpected {other:?}"),
                }
            }
            next
        });
        cluster.start_again();
        // A new connection resumes exactly where the stream stopped.
        block_on(async {
            let mut conn = ReplicationConnection::connect(&info).await.unwrap();
            let id = conn.identify_system().await.unwrap();
            let mut stream = conn
                .start_replication(&StartReplication::new(resumed_at).timeline(id.timeline))
                .await
                .unwrap();
            cluster.psql("insert into t select generate_series(1, 10)");
            loop {
                match tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .expect("WAL after the restart within 30 s")
                    .unwrap()
                    .unwrap()
                {
                    WalEvent::XLogData(x) => {
                        assert_eq!(x.wal_start(), resumed_at, "no gap and no overlap");
                        break;
                    }
                    WalEvent::Keepalive(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            stream.stop().await.unwrap();
        });
    }
);
