//! The native replication client (`barman_protocol`) against every major: connection over TCP
//! and Unix socket, each authentication method with right and wrong passwords, the password
//! file, TLS (require, verify-ca, verify-full, SCRAM-SHA-256-PLUS), the simple commands, slots,
//! BASE_BACKUP with a user tablespace and START_REPLICATION with keepalives.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use barman_protocol::command::{Checkpoint, Manifest};
use barman_protocol::conninfo::Env;
use barman_protocol::stream::base_backup::BaseBackupEvent;
use barman_protocol::stream::wal::{StartReplication, WalEvent};
use barman_protocol::{BaseBackupOptions, ConnInfo, ErrorKind, Lsn, ReplicationConnection};

use crate::harness::{
    give_tree_to_server_user, live_test, run_ok, ClusterOptions, PgCluster, PgInstall,
};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// A conninfo parsed without the process's PG* variables or home directory.
fn conninfo(text: &str) -> ConnInfo {
    let env = Env::from_vars([], Some(Path::new("/nonexistent-home")), Some("postgres"));
    ConnInfo::parse_with_env(text, &env).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn tcp(cluster: &PgCluster, extra: &str) -> ConnInfo {
    conninfo(&format!(
        "host=127.0.0.1 port={} user=postgres application_name=barman_test {extra}",
        cluster.port()
    ))
}

async fn connect(info: &ConnInfo) -> ReplicationConnection {
    ReplicationConnection::connect(info)
        .await
        .unwrap_or_else(|e| panic!("connect with {info}: {e}"))
}

live_test!(
    replication_commands_over_tcp_and_socket,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let system_id: u64 = cluster
            .psql("select system_identifier from pg_control_system()")
            .parse()
            .unwrap();
        let socket = conninfo(&format!(
            "host={} port={} user=postgres",
            cluster.socket_dir().display(),
            cluster.port()
        ));
        let info = tcp(&cluster, "sslmode=disable");
        block_on(async {
            for info in [&info, &socket] {
                let mut conn = connect(info).await;
                assert_eq!(conn.server_version().major(), pg.major);
                let id = conn.identify_system().await.unwrap();
                assert_eq!(id.system_id, system_id);
                assert_eq!(id.timeline.get(), 1);
                assert!(id.xlogpos.is_valid());
                assert_eq!(id.dbname, None);
                assert_eq!(conn.show("wal_segment_size").await.unwrap(), "16MB");
                // Timeline 1 has no history file: a server error, and the session goes on.
                let err = conn
                    .timeline_history(barman_protocol::TimelineId::FIRST)
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Db, "{err}");
                assert!(!err.is_closed());
                // SQL is refused by a physical walsender.
                let err = conn.simple_query("SELECT 1").await.unwrap_err();
                assert!(err.as_db_error().is_some(), "{err}");
                assert_eq!(conn.identify_system().await.unwrap().system_id, system_id);
                conn.close().await.unwrap();
            }
        });
        let seen = cluster.psql("select count(*) from pg_stat_replication");
        assert_eq!(seen, "0");
    }
);

live_test!(replication_authentication_methods, |pg: &PgInstall| {
    let cluster = PgCluster::start_with(
        pg,
        &ClusterOptions::new()
            .hba("host replication reptrust 127.0.0.1/32 trust")
            .hba("host replication reppass 127.0.0.1/32 password")
            .hba("host replication repmd5 127.0.0.1/32 md5")
            .hba("host replication repscram 127.0.0.1/32 scram-sha-256"),
    );
    cluster.psql(
        "SET client_min_messages = error;
         CREATE ROLE reptrust LOGIN REPLICATION;
         SET password_encryption = 'scram-sha-256';
         CREATE ROLE reppass LOGIN REPLICATION PASSWORD 'pass secret';
         CREATE ROLE repscram LOGIN REPLICATION PASSWORD 'scram''secret';
         SET password_encryption = 'md5';
         CREATE ROLE repmd5 LOGIN REPLICATION PASSWORD 'md5 secret';",
    );
    let port = cluster.port();
    let with = |user: &str, password: Option<&str>| {
        let mut text = format!("host=127.0.0.1 port={port} user={user} sslmode=disable");
        if let Some(p) = password {
            text.push_str(&format!(" password='{}'", p.replace('\'', "\\'")));
        }
        conninfo(&text)
    };
    block_on(async {
        connect(&with("reptrust", None))
            .await
            .close()
            .await
            .unwrap();
        for (user, password) in [
            ("reppass", "pass secret"),
            ("repmd5", "md5 secret"),
            ("repscram", "scram'secret"),
        ] {
            let mut conn = connect(&with(user, Some(password))).await;
            conn.identify_system().await.unwrap();
            conn.close().await.unwrap();

            let err = ReplicationConnection::connect(&with(user, Some("wrong")))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some("28P01"), "{user}: {err}");
            assert!(
                err.to_string().contains("password authentication failed"),
                "{err}"
            );
            assert!(!err.to_string().contains(password), "{err}");

            let err = ReplicationConnection::connect(&with(user, None))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Authentication, "{user}: {err}");
            assert!(
                err.to_string().contains("none was supplied")
                    && err.to_string().contains("does not exist"),
                "{err}"
            );
        }
    });

    // The password file: matched on database "replication", refused when world-readable.
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("127.0.0.1:{port}:replication:repscram:scram'secret\n"),
    )
    .unwrap();
    set_mode(&passfile, 0o600);
    let info = conninfo(&format!(
        "host=127.0.0.1 port={port} user=repscram sslmode=disable passfile={}",
        passfile.display()
    ));
    block_on(async {
        connect(&info).await.close().await.unwrap();
        set_mode(&passfile, 0o644);
        let err = ReplicationConnection::connect(&info).await.unwrap_err();
        assert!(err.to_string().contains("group or world access"), "{err}");
    });
});

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A CA and a server certificate for `localhost` and 127.0.0.1, made with the openssl CLI.
fn make_certificates(dir: &Path) -> PathBuf {
    let run = |args: &[&str]| {
        run_ok(
            Command::new("openssl").args(args).current_dir(dir),
            &format!("openssl {}", args[0]),
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=barman test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    set_mode(&dir.join("server.key"), 0o600);
    // A client certificate for the role `repcert` (cert authentication).
    let mut client = vec!["req"];
    client.extend(ec);
    client.extend([
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=repcert",
    ]);
    run(&client);
    std::fs::write(
        dir.join("client.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.crt",
        "-days",
        "2",
        "-extfile",
        "client.cnf",
    ]);
    set_mode(&dir.join("client.key"), 0o600);
    dir.join("ca.crt")
}

live_test!(replication_tls_and_channel_binding, |pg: &PgInstall| {
    let certs = tempfile::Builder::new()
        .prefix("barman-tls-")
        .tempdir_in("/tmp")
        .unwrap();
    let ca = make_certificates(certs.path());
    give_tree_to_server_user(certs.path());
    let cluster = PgCluster::start_with(
        pg,
        &ClusterOptions::new()
            .conf("ssl = on")
            .conf(format!(
                "ssl_cert_file = '{}'",
                certs.path().join("server.crt").display()
            ))
            .conf(format!(
                "ssl_key_file = '{}'",
                certs.path().join("server.key").display()
            ))
            .conf(format!(
                "ssl_ca_file = '{}'",
                certs.path().join("ca.crt").display()
            ))
            .hba("hostssl replication repcert 127.0.0.1/32 cert")
            .hba("hostssl replication repscram 127.0.0.1/32 scram-sha-256")
            .hba("hostnossl replication repscram 127.0.0.1/32 reject"),
    );
    cluster.psql(
        "SET password_encryption = 'scram-sha-256';
         CREATE ROLE repscram LOGIN REPLICATION PASSWORD 'secret';
         CREATE ROLE repcert LOGIN REPLICATION;",
    );
    let port = cluster.port();
    let info = |extra: &str| {
        conninfo(&format!(
            "port={port} user=repscram password=secret sslrootcert={} {extra}",
            ca.display()
        ))
    };
    block_on(async {
        for extra in [
            "host=127.0.0.1 sslmode=require",
            "host=localhost sslmode=verify-full channel_binding=require",
            "host=127.0.0.1 sslmode=verify-full",
            "host=wrong.example hostaddr=127.0.0.1 sslmode=verify-ca channel_binding=require",
            "host=127.0.0.1 sslmode=prefer channel_binding=disable",
        ] {
            let mut conn = connect(&info(extra)).await;
            assert!(conn.is_tls(), "{extra}");
            conn.identify_system().await.unwrap();
            conn.close().await.unwrap();
        }
        // The certificate does not name this host.
        let err = ReplicationConnection::connect(&info(
            "host=wrong.example hostaddr=127.0.0.1 sslmode=verify-full",
        ))
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        // Cleartext is rejected by pg_hba, and channel binding needs TLS.
        let err = ReplicationConnection::connect(&info("host=127.0.0.1 sslmode=disable"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("28000"), "{err}");

        // Client certificate authentication: with the certificate, and without it.
        let with_cert = conninfo(&format!(
            "host=localhost port={port} user=repcert sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            ca.display(),
            certs.path().join("client.crt").display(),
            certs.path().join("client.key").display()
        ));
        let mut conn = connect(&with_cert).await;
        assert!(conn.is_tls());
        conn.identify_system().await.unwrap();
        conn.close().await.unwrap();
        let without = conninfo(&format!(
            "host=localhost port={port} user=repcert sslmode=verify-full sslrootcert={} sslcert=/nonexistent/client.crt sslkey=/nonexistent/client.key",
            ca.display()
        ));
        let err = ReplicationConnection::connect(&without).await.unwrap_err();
        assert!(
            err.code() == Some("28000")
                || err.kind() == ErrorKind::Tls
                || err.kind() == ErrorKind::Authentication,
            "{err}"
        );

        // An ordinary SQL connection through tokio-postgres with the same settings.
        let sql_info = conninfo(&format!(
            "host=localhost port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
            ca.display()
        ));
        let tls = barman_protocol::conn::tls::MakeRustlsConnect::new(&sql_info).unwrap();
        let (client, connection) = sql_info
            .to_tokio_postgres()
            .unwrap()
            .connect(tls)
            .await
            .unwrap_or_else(|e| panic!("tokio-postgres over TLS: {e}"));
        let task = tokio::spawn(connection);
        let row = client
            .query_one(
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0));
        drop(client);
        let _ = task.await;
    });
});

live_test!(replication_slots, |pg: &PgInstall| {
    let cluster = PgCluster::start(pg);
    let info = tcp(&cluster, "sslmode=disable");
    block_on(async {
        let mut conn = connect(&info).await;
        let created = conn
            .create_physical_slot("barman_slot", false, true)
            .await
            .unwrap();
        assert_eq!(created.slot_name, "barman_slot");
        let temp = conn
            .create_physical_slot("temp_slot", true, false)
            .await
            .unwrap();
        assert_eq!(temp.slot_name, "temp_slot");
        assert_eq!(temp.consistent_point, None);
        if pg.major >= 15 {
            let slot = conn.read_slot("barman_slot").await.unwrap().unwrap();
            assert_eq!(slot.slot_type, "physical");
            assert!(slot.restart_lsn.is_some_and(|l| l.is_valid()));
            assert_eq!(slot.restart_tli.map(|t| t.get()), Some(1));
            assert_eq!(conn.read_slot("no_such_slot").await.unwrap(), None);
        } else {
            let err = conn.read_slot("barman_slot").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        }
        let err = conn
            .create_physical_slot("barman_slot", false, true)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("42710"), "{err}");
        conn.drop_slot("barman_slot", true).await.unwrap();
        conn.close().await.unwrap();
    });
    assert_eq!(
        cluster.psql("select count(*) from pg_replication_slots"),
        "0",
        "the permanent slot was dropped and the temporary one went with the session"
    );
});

live_test!(replication_base_backup, |pg: &PgInstall| {
    let cluster = PgCluster::start(pg);
    let space = tempfile::Builder::new()
        .prefix("barman-ts-")
        .tempdir_in("/tmp")
        .unwrap();
    give_tree_to_server_user(space.path());
    cluster.psql(&format!(
        "CREATE TABLESPACE ts1 LOCATION '{}';
         CREATE TABLE t (id int) TABLESPACE ts1;
         INSERT INTO t SELECT generate_series(1, 10000);",
        space.path().display()
    ));
    let ts_oid = cluster.psql("select oid from pg_tablespace where spcname = 'ts1'");
    let out = tempfile::tempdir().unwrap();
    let info = tcp(&cluster, "sslmode=disable");
    let mut options = BaseBackupOptions::default();
    options.label = Some("barman test".into());
    options.progress = true;
    options.checkpoint = Checkpoint::Fast;
    options.wait = false;
    options.manifest = Manifest::Yes;
    let (archives, end, progress, manifest) = block_on(async {
        let mut conn = connect(&info).await;
        let mut stream = conn.base_backup(&options).await.unwrap();
        let mut archives: Vec<(String, Option<u32>, u64)> = Vec::new();
        let mut file: Option<std::fs::File> = None;
        let mut manifest = Vec::new();
        let mut progress = 0;
        let mut end = None;
        let mut began = false;
        while let Some(event) = stream.next().await.unwrap() {
            match event {
                BaseBackupEvent::Begin {
                    start_lsn,
                    tablespaces,
                    ..
                } => {
                    began = true;
                    assert!(start_lsn.is_valid());
                    assert_eq!(tablespaces.len(), 2);
                    assert!(tablespaces[1].is_base());
                    assert!(tablespaces.iter().all(|t| t.size_kb.is_some()));
                }
                BaseBackupEvent::Archive { name, tablespace } => {
                    assert!(began);
                    file = Some(std::fs::File::create(out.path().join(&name)).unwrap());
                    archives.push((name, tablespace.oid, 0));
                }
                BaseBackupEvent::Data(bytes) => {
                    use std::io::Write;
                    file.as_mut().unwrap().write_all(&bytes).unwrap();
                    archives.last_mut().unwrap().2 += bytes.len() as u64;
                }
                BaseBackupEvent::Progress(done) => {
                    assert!(done >= progress, "progress is cumulative");
                    progress = done;
                }
                BaseBackupEvent::Manifest(bytes) => manifest.extend_from_slice(&bytes),
                BaseBackupEvent::End(e) => end = Some(e),
                other => panic!("unexpected event {other:?}"),
            }
        }
        drop(stream);
        // The session is usable after the backup.
        conn.identify_system().await.unwrap();
        conn.close().await.unwrap();
        (archives, end.expect("an End event"), progress, manifest)
    });

    let names: Vec<&str> = archives.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, vec![format!("{ts_oid}.tar").as_str(), "base.tar"]);
    assert_eq!(archives[0].1, Some(ts_oid.parse().unwrap()));
    assert!(end.end_lsn >= end.start_lsn);
    assert!(progress > 0);
    for (name, _, size) in &archives {
        let bytes = std::fs::read(out.path().join(name)).unwrap();
        assert_eq!(bytes.len() as u64, *size);
        assert_eq!(bytes.len() % 512, 0, "{name} is whole tar blocks");
        assert!(
            bytes[bytes.len() - 1024..].iter().all(|&b| b == 0),
            "{name} has the tar trailer"
        );
    }
    let base = std::fs::read(out.path().join("base.tar")).unwrap();
    assert_eq!(&base[..13], b"backup_label\0", "backup_label comes first");
    let label = String::from_utf8_lossy(&base[512..1024]);
    assert!(label.contains("LABEL: barman test"), "{label}");
    let manifest = String::from_utf8(manifest).unwrap();
    assert!(
        manifest.contains("\"PostgreSQL-Backup-Manifest-Version\""),
        "{manifest}"
    );
    assert!(manifest.contains("\"Path\": \"global/pg_control\""));
    assert!(manifest.contains(&format!("\"Path\": \"pg_tblspc/{ts_oid}/")));
    std::fs::write(out.path().join("backup_manifest"), &manifest).unwrap();
});

live_test!(replication_streams_wal, |pg: &PgInstall| {
    let cluster = PgCluster::start(pg);
    let info = tcp(&cluster, "sslmode=disable");
    block_on(async {
        let mut conn = connect(&info).await;
        let id = conn.identify_system().await.unwrap();
        // Generate some WAL after the start point, then stream it.
        let start = Lsn::new(id.xlogpos.as_u64() & !(16 * 1024 * 1024 - 1));
        cluster.psql("CREATE TABLE w AS SELECT generate_series(1, 20000) AS id");
        let target: Lsn = cluster
            .psql("select pg_current_wal_flush_lsn()")
            .parse()
            .unwrap();
        let request = StartReplication::new(start)
            .timeline(id.timeline)
            .status_interval(Some(Duration::from_millis(200)));
        let mut stream = conn.start_replication(&request).await.unwrap();
        let mut next = start;
        let mut keepalives = 0;
        let mut asked = false;
        while next < target || keepalives == 0 {
            match tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .expect("WAL or a keepalive within 20 s")
                .unwrap()
                .unwrap()
            {
                WalEvent::XLogData(x) => {
                    assert_eq!(x.wal_start(), next);
                    next = x.data_end().unwrap();
                    stream.set_positions(next, next, Lsn::INVALID);
                }
                WalEvent::Keepalive(_) => keepalives += 1,
                other => panic!("unexpected {other:?}"),
            }
            if next >= target && !asked {
                // Ask the server for a keepalive right away.
                stream.send_status(true).await.unwrap();
                asked = true;
            }
        }
        assert!(stream.received() >= target);
        stream.stop().await.unwrap();
        loop {
            match stream.next().await.unwrap() {
                Some(WalEvent::Stopped) => break,
                Some(WalEvent::XLogData(_) | WalEvent::Keepalive(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(stream.next().await.unwrap(), None);
        drop(stream);
        conn.identify_system().await.unwrap();
        conn.close().await.unwrap();
    });
});
