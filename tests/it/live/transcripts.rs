//! Recorded sessions: a small TCP proxy in front of a real server keeps every byte the
//! server sends during a replication session (startup, IDENTIFY_SYSTEM, SHOW, a failing
//! TIMELINE_HISTORY, START_REPLICATION with XLogData and keepalives, the stop), and the
//! bytes are replayed through the message decoders, which must cut them into the same
//! messages the client saw, with nothing left over. On every major.
//!
//! With `BARMAN_RECORD_TRANSCRIPTS=1` the transcripts of 13 and 18 are written to
//! `protocol/tests/data/transcripts/` for `protocol/tests/transcript.rs`, which replays
//! them without a server.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use barman_protocol::conninfo::Env;
use barman_protocol::message::backend::BackendMessage;
use barman_protocol::message::copy_data::ReplicationMessage;
use barman_protocol::stream::wal::{StartReplication, WalEvent};
use barman_protocol::{ConnInfo, ReplicationConnection, TimelineId};

use crate::harness::{live_test, PgCluster, PgInstall};

/// Accept one connection on a local port, forward it to `port`, and record what the
/// server sends. Returns the proxy's port and the recording.
async fn recording_proxy(port: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let up = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            let _ = server_write.shutdown().await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up.await;
    });
    (proxy_port, recorded)
}

/// The names of the messages in a recording (CopyData refined by its sub-message).
pub fn message_names(bytes: &[u8]) -> (Vec<String>, usize) {
    let mut buf = BytesMut::from(bytes);
    let mut names = Vec::new();
    while let Some(message) =
        BackendMessage::parse(&mut buf, 1 << 30).expect("a recorded message decodes")
    {
        let name = match &message {
            BackendMessage::CopyData(payload) => match ReplicationMessage::parse(payload) {
                Ok(ReplicationMessage::XLogData(_)) => "CopyData(XLogData)".to_string(),
                Ok(ReplicationMessage::PrimaryKeepalive(_)) => {
                    "CopyData(PrimaryKeepalive)".to_string()
                }
                Ok(other) => format!("CopyData({other:?})"),
                Err(e) => panic!("a recorded CopyData does not decode: {e}"),
            },
            other => other.name().to_string(),
        };
        // Runs of the same message are kept once, so the list is stable across runs.
        if names.last() != Some(&name) {
            names.push(name);
        }
    }
    (names, buf.len())
}

live_test!(
    recorded_sessions_replay_through_the_decoders,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let recorded = runtime.block_on(async {
        let (port, recorded) = recording_proxy(cluster.port()).await;
        let env = Env::from_vars([], Some(Path::new("/nonexistent-home")), Some("postgres"));
        let info = ConnInfo::parse_with_env(
            &format!("host=127.0.0.1 port={port} user=postgres sslmode=disable application_name=transcript"),
            &env,
        )
        .unwrap();
        let mut conn = ReplicationConnection::connect(&info).await.unwrap();
        let id = conn.identify_system().await.unwrap();
        conn.show("wal_segment_size").await.unwrap();
        assert!(conn.timeline_history(TimelineId::new(1).unwrap()).await.is_err());
        let mut stream = conn
            .start_replication(
                &StartReplication::new(id.xlogpos)
                    .timeline(id.timeline)
                    .status_interval(Some(Duration::from_millis(100))),
            )
            .await
            .unwrap();
        cluster.psql("create table t as select generate_series(1, 100) g");
        let mut data = false;
        while !data {
            if let WalEvent::XLogData(_) = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .expect("WAL within 30 s")
                .unwrap()
                .unwrap()
            {
                data = true;
            }
        }
        stream.send_status(true).await.unwrap();
        stream.stop().await.unwrap();
        while let Some(event) = stream.next().await.unwrap() {
            if event == WalEvent::Stopped {
                break;
            }
        }
        drop(stream);
        conn.close().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes = recorded.lock().unwrap().clone();
        bytes
    });
        let (names, left) = message_names(&recorded);
        assert_eq!(left, 0, "bytes left after the last message");
        for expected in [
            "Authentication",
            "ParameterStatus",
            "BackendKeyData",
            "ReadyForQuery",
            "RowDescription",
            "DataRow",
            "CommandComplete",
            "ErrorResponse",
            "CopyBothResponse",
            "CopyData(XLogData)",
            "CopyDone",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }
        if std::env::var_os("BARMAN_RECORD_TRANSCRIPTS").is_some() && matches!(pg.major, 13 | 18) {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/tests/data/transcripts");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join(format!("pg{}_replication_session.bin", pg.major)),
                &recorded,
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("pg{}_replication_session.messages", pg.major)),
                names.join("\n") + "\n",
            )
            .unwrap();
        }
    }
);
