//! Opening a connection: socket, TLS negotiation (SSLRequest), StartupMessage, authentication
//! and the messages up to the first ReadyForQuery (PROTOCOL.md §1).
//!
//! Follows libpq's `PQconnectPoll` (`src/interfaces/libpq/fe-connect.c`) and `pg_fe_sendauth`
//! (`fe-auth.c`, `fe-auth-scram.c`): hosts are tried in order, each within `connect_timeout`;
//! `sslmode=prefer` falls back to cleartext when the server refuses TLS or the handshake fails,
//! `allow` tries cleartext first; SCRAM uses `postgres-protocol`'s implementation, with
//! channel binding chosen per `channel_binding`. Passwords are never put in messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::socket::{Framed, Socket};
use super::tls;
use crate::conninfo::{ChannelBindingMode, ConnInfo, Host, PasswordSource, SslMode, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::message::backend::{Authentication, BackendMessage};
use crate::message::frontend;

const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// What kind of session to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKind {
    /// `replication=true`: a physical walsender.
    PhysicalReplication,
}

/// A connection that finished its startup.
pub(crate) struct Started {
    pub(crate) framed: Framed,
    pub(crate) parameters: HashMap<String, String>,
    pub(crate) process_id: Option<i32>,
    pub(crate) target: Target,
    pub(crate) notices: Vec<crate::message::DbError>,
}

/// Tries each target in order; the error of the last one (with the others' in its message)
/// when none works.
pub(crate) async fn connect(info: &ConnInfo, kind: SessionKind) -> Result<Started> {
    let tls_config = tls::client_config(info)?;
    let mut failures: Vec<Error> = Vec::new();
    for target in info.targets() {
        let attempt = connect_target(info, target, kind, tls_config.clone());
        let result = match info.connect_timeout() {
            Some(limit) => match tokio::time::timeout(limit, attempt).await {
                Ok(r) => r,
                Err(_) => Err(Error::timeout(format!(
                    "timeout expired after {} s",
                    limit.as_secs()
                ))),
            },
            None => attempt.await,
        };
        match result {
            Ok(started) => return Ok(started),
            Err(e) => failures.push(e.context(describe_target(target))),
        }
    }
    let last = failures
        .pop()
        .unwrap_or_else(|| Error::config("no host to connect to"));
    if failures.is_empty() {
        return Err(last);
    }
    let earlier: Vec<String> = failures.iter().map(|e| e.to_string()).collect();
    Err(last.context(format!("{}; then", earlier.join("; then"))))
}

fn describe_target(target: &Target) -> String {
    match &target.host {
        Host::Unix(_) => format!(
            "connection to server on socket \"{}\" failed",
            target.socket_path().unwrap_or_default().display()
        ),
        Host::Tcp(_) => format!("connection to server at {target} failed"),
    }
}

async fn connect_target(
    info: &ConnInfo,
    target: &Target,
    kind: SessionKind,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) -> Result<Started> {
    let is_unix = matches!(target.host, Host::Unix(_));
    // libpq never uses TLS over Unix sockets.
    let mode = if is_unix {
        SslMode::Disable
    } else {
        info.sslmode()
    };
    match mode {
        SslMode::Disable => attempt(info, target, kind, None).await,
        SslMode::Allow => match attempt(info, target, kind, None).await {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == ErrorKind::Db && tls_config.is_some() => {
                attempt(info, target, kind, tls_config).await
            }
            Err(e) => Err(e),
        },
        SslMode::Prefer => match attempt(info, target, kind, tls_config).await {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == ErrorKind::Tls => attempt(info, target, kind, None).await,
            Err(e) => Err(e),
        },
        _ => {
            if tls_config.is_none() {
                return Err(Error::tls("TLS is required but not configured"));
            }
            attempt(info, target, kind, tls_config).await
        }
    }
}

/// One connection attempt to one target: TLS only if `tls_config` is given.
async fn attempt(
    info: &ConnInfo,
    target: &Target,
    kind: SessionKind,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) -> Result<Started> {
    let socket = open_socket(info, target).await?;
    let socket = match (socket, tls_config) {
        (Socket::Tcp(tcp), Some(config)) => negotiate_tls(info, target, tcp, config).await?,
        (socket, _) => socket,
    };
    startup(info, target, kind, Framed::new(socket)).await
}

async fn open_socket(info: &ConnInfo, target: &Target) -> Result<Socket> {
    if let Some(path) = target.socket_path() {
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|e| Error::io(&format!("connect to socket \"{}\"", path.display()), &e))?;
        return Ok(Socket::Unix(stream));
    }
    let addrs: Vec<SocketAddr> = match (target.hostaddr, &target.host) {
        (Some(ip), _) => vec![SocketAddr::new(ip, target.port)],
        (None, Host::Tcp(name)) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map_err(|e| {
                Error::io(
                    &format!("could not translate host name \"{name}\" to address"),
                    &e,
                )
            })?
            .collect(),
        (None, Host::Unix(_)) => Vec::new(),
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                configure_tcp(info, &stream);
                return Ok(Socket::Tcp(stream));
            }
            Err(e) => last = Some(Error::io(&format!("connect to {addr}"), &e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::config(format!("no address for host \"{}\"", target.host))))
}

/// Keepalives and TCP_USER_TIMEOUT, best effort (as libpq, a failure is not fatal here).
fn configure_tcp(info: &ConnInfo, stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    let k = info.keepalives();
    if k.enabled {
        let mut params = socket2::TcpKeepalive::new();
        if let Some(idle) = k.idle {
            params = params.with_time(idle);
        }
        if let Some(interval) = k.interval {
            params = params.with_interval(interval);
        }
        if let Some(count) = k.count {
            params = params.with_retries(count);
        }
        let _ = sock.set_tcp_keepalive(&params);
    }
    if let Some(timeout) = info.tcp_user_timeout() {
        let _ = sock.set_tcp_user_timeout(Some(timeout));
    }
}

/// SSLRequest, then the TLS handshake if the server answers `S`.
async fn negotiate_tls(
    info: &ConnInfo,
    target: &Target,
    mut tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> Result<Socket> {
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf)
        .await
        .map_err(|e| Error::io("send SSLRequest", &e))?;
    // Exactly one byte, unbuffered: anything the server sent after it must not be read as
    // part of the TLS session (CVE-2021-23222).
    let answer = tcp
        .read_u8()
        .await
        .map_err(|e| Error::io("read the answer to SSLRequest", &e))?;
    match answer {
        b'S' => {}
        b'N' => {
            return Err(Error::tls(
                "server does not support SSL, but SSL was required",
            ))
        }
        other => {
            return Err(Error::protocol(format!(
                "received invalid response to SSL negotiation: 0x{other:02x}"
            )))
        }
    }
    let name = match &target.host {
        Host::Tcp(name) if !name.is_empty() => name.clone(),
        _ => target
            .hostaddr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "localhost".to_owned()),
    };
    let server_name = tls::server_name(&name, info.sslmode())?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| Error::tls(format!("TLS handshake failed: {e}")))?;
    Ok(Socket::Tls(Box::new(tls)))
}

async fn startup(
    info: &ConnInfo,
    target: &Target,
    kind: SessionKind,
    mut framed: Framed,
) -> Result<Started> {
    let mut params: Vec<(&str, &str)> = vec![("user", info.user())];
    if let Some(db) = info.dbname() {
        params.push(("database", db));
    }
    match kind {
        SessionKind::PhysicalReplication => params.push(("replication", "true")),
    }
    if let Some(name) = info.application_name() {
        params.push(("application_name", name));
    }
    if let Some(options) = info.options() {
        params.push(("options", options));
    }
    params.push(("client_encoding", "UTF8"));
    frontend::startup_message(params, &mut framed.write_buf)?;
    framed.flush().await?;

    // The password file matches physical replication connections with database
    // "replication", as pg_basebackup and pg_receivewal connect.
    let pgpass_db = match kind {
        SessionKind::PhysicalReplication => "replication",
    };
    authenticate(info, target, pgpass_db, &mut framed).await?;

    let mut parameters = HashMap::new();
    let mut process_id = None;
    let mut notices = Vec::new();
    loop {
        match framed.read().await? {
            BackendMessage::ParameterStatus(p) => {
                parameters.insert(p.name().to_owned(), p.value().to_owned());
            }
            BackendMessage::BackendKeyData(k) => process_id = Some(k.process_id()),
            BackendMessage::NoticeResponse(n) => notices.push(n),
            BackendMessage::NegotiateProtocolVersion(_) => {}
            BackendMessage::ErrorResponse(e) => return Err(Error::db(e)),
            BackendMessage::ReadyForQuery(_) => break,
            other => {
                return Err(Error::protocol(format!(
                    "unexpected {} message during startup",
                    other.name()
                )))
            }
        }
    }
    Ok(Started {
        framed,
        parameters,
        process_id,
        target: target.clone(),
        notices,
    })
}

/// The authentication exchange, up to AuthenticationOk.
async fn authenticate(
    info: &ConnInfo,
    target: &Target,
    pgpass_db: &str,
    framed: &mut Framed,
) -> Result<()> {
    let cb_mode = info.channel_binding();
    let password = || -> Result<String> {
        match info.password_for(target, pgpass_db) {
            (Some(p), _) => Ok(p),
            (None, PasswordSource::None(why)) => Err(Error::auth(format!(
                "the server asks for a password, but none was supplied ({why})"
            ))),
            (None, _) => Err(Error::auth(
                "the server asks for a password, but none was supplied",
            )),
        }
    };
    let no_cb_method = || {
        Error::auth("channel binding required but not supported by server's authentication request")
    };
    let mut scram: Option<ScramSha256> = None;
    let mut used_channel_binding = false;
    loop {
        let auth = match framed.read().await? {
            BackendMessage::Authentication(a) => a,
            BackendMessage::ErrorResponse(e) => return Err(Error::db(e)),
            BackendMessage::NoticeResponse(_) => continue,
            BackendMessage::NegotiateProtocolVersion(_) => continue,
            other => {
                return Err(Error::protocol(format!(
                    "expected an authentication request from the server, got {}",
                    other.name()
                )))
            }
        };
        match auth {
            Authentication::Ok => {
                if scram.is_some() {
                    // SASLFinal must come before AuthenticationOk.
                    return Err(Error::auth(
                        "server ended SCRAM authentication without its final message",
                    ));
                }
                if cb_mode == ChannelBindingMode::Require && !used_channel_binding {
                    return Err(Error::auth(
                        "channel binding required, but server authenticated client without channel binding",
                    ));
                }
                return Ok(());
            }
            Authentication::CleartextPassword => {
                if cb_mode == ChannelBindingMode::Require {
                    return Err(no_cb_method());
                }
                frontend::password_message(password()?.as_bytes(), &mut framed.write_buf)?;
                framed.flush().await?;
            }
            Authentication::Md5Password { salt } => {
                if cb_mode == ChannelBindingMode::Require {
                    return Err(no_cb_method());
                }
                let hash = postgres_protocol::authentication::md5_hash(
                    info.user().as_bytes(),
                    password()?.as_bytes(),
                    salt,
                );
                frontend::password_message(hash.as_bytes(), &mut framed.write_buf)?;
                framed.flush().await?;
            }
            Authentication::Sasl { mechanisms } => {
                let offers = |m: &str| mechanisms.iter().any(|x| x == m);
                let cert_hash = framed
                    .socket
                    .peer_certificate()
                    .and_then(tls::tls_server_end_point);
                let (mechanism, binding) = match (cb_mode, cert_hash) {
                    (ChannelBindingMode::Disable, _) if offers(SCRAM_SHA_256) => {
                        (SCRAM_SHA_256, ChannelBinding::unsupported())
                    }
                    (ChannelBindingMode::Prefer | ChannelBindingMode::Require, Some(hash))
                        if offers(SCRAM_SHA_256_PLUS) =>
                    {
                        used_channel_binding = true;
                        (
                            SCRAM_SHA_256_PLUS,
                            ChannelBinding::tls_server_end_point(hash),
                        )
                    }
                    (ChannelBindingMode::Require, _) => {
                        return Err(Error::auth(
                            "channel binding is required, but the server did not offer an \
                             authentication method that supports channel binding over this \
                             connection",
                        ))
                    }
                    (ChannelBindingMode::Prefer, Some(_)) if offers(SCRAM_SHA_256) => {
                        // TLS, but the server does not offer -PLUS: say we could have.
                        (SCRAM_SHA_256, ChannelBinding::unrequested())
                    }
                    (_, _) if offers(SCRAM_SHA_256) => {
                        (SCRAM_SHA_256, ChannelBinding::unsupported())
                    }
                    _ => {
                        return Err(Error::auth(format!(
                            "none of the server's SASL authentication mechanisms are supported: {}",
                            mechanisms.join(", ")
                        )))
                    }
                };
                let state = ScramSha256::new(password()?.as_bytes(), binding);
                frontend::sasl_initial_response(mechanism, state.message(), &mut framed.write_buf)?;
                framed.flush().await?;
                scram = Some(state);
            }
            Authentication::SaslContinue(data) => {
                let state = scram.as_mut().ok_or_else(|| {
                    Error::protocol("SASL continue message without a SASL exchange")
                })?;
                state
                    .update(&data)
                    .map_err(|e| Error::auth(format!("SCRAM exchange failed: {e}")))?;
                frontend::sasl_response(state.message(), &mut framed.write_buf);
                framed.flush().await?;
            }
            Authentication::SaslFinal(data) => {
                let mut state = scram
                    .take()
                    .ok_or_else(|| Error::protocol("SASL final message without a SASL exchange"))?;
                state.finish(&data).map_err(|e| {
                    Error::auth(format!(
                        "SCRAM exchange failed: the server could not prove it knows the password ({e})"
                    ))
                })?;
                // AuthenticationOk follows.
                if cb_mode == ChannelBindingMode::Require && !used_channel_binding {
                    return Err(no_cb_method());
                }
            }
            Authentication::Unsupported(code) => {
                return Err(Error::auth(format!(
                    "authentication method {code} requested by the server is not supported \
                     (only trust, password, md5 and scram-sha-256 are)"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conninfo::Env;
    use bytes::BufMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// Reads one tagged frontend message: (tag, body).
    async fn read_frontend(s: &mut UnixStream) -> (u8, Vec<u8>) {
        let tag = s.read_u8().await.unwrap();
        let len = s.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        (tag, body)
    }

    async fn read_startup(s: &mut UnixStream) -> Vec<u8> {
        let len = s.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        body
    }

    fn ready() -> Vec<u8> {
        let mut v = frame(b'R', &[0, 0, 0, 0]);
        v.extend(frame(b'S', b"server_version\x0015.20\0"));
        v.extend(frame(b'K', &[0, 0, 0, 7, 1, 2, 3, 4]));
        v.extend(frame(b'Z', b"I"));
        v
    }

    fn info(text: &str) -> ConnInfo {
        let env = Env::from_vars([], None, Some("repmd5"));
        ConnInfo::parse_with_env(text, &env).unwrap()
    }

    #[tokio::test]
    async fn md5_exchange_matches_the_observed_vector() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let info = info("user=repmd5 password=secret host=/x");
        let target = info.targets()[0].clone();
        let server_task = tokio::spawn(async move {
            let startup = read_startup(&mut server).await;
            assert!(startup.windows(16).any(|w| w == b"replication\0true"));
            server
                .write_all(&frame(b'R', &[0, 0, 0, 5, 0x85, 0xb3, 0x03, 0x4d]))
                .await
                .unwrap();
            let (tag, body) = read_frontend(&mut server).await;
            assert_eq!(tag, b'p');
            assert_eq!(body, b"md5c28372dc675dab14f64a4eeafdd43644\0");
            server.write_all(&ready()).await.unwrap();
        });
        let started = startup(
            &info,
            &target,
            SessionKind::PhysicalReplication,
            Framed::new(Socket::Unix(client)),
        )
        .await
        .unwrap();
        assert_eq!(started.process_id, Some(7));
        assert_eq!(started.parameters["server_version"], "15.20");
        server_task.await.unwrap();
    }

    #[tokio::test]
    async fn scram_rejects_a_server_nonce_that_does_not_extend_ours() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let info = info("user=u password=secret host=/x");
        let target = info.targets()[0].clone();
        let server_task = tokio::spawn(async move {
            read_startup(&mut server).await;
            server
                .write_all(&frame(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"))
                .await
                .unwrap();
            let (tag, body) = read_frontend(&mut server).await;
            assert_eq!(tag, b'p');
            assert!(body.starts_with(b"SCRAM-SHA-256\0"));
            let first = &body[14 + 4..];
            assert!(first.starts_with(b"n,,n=,r="), "{first:?}");
            let mut m = BytesMut::new();
            m.put_i32(11);
            m.put_slice(b"r=somethingelse,s=0MLrv/wgp2baoxbGhD2r2A==,i=4096");
            server.write_all(&frame(b'R', &m)).await.unwrap();
        });
        let err = startup(
            &info,
            &target,
            SessionKind::PhysicalReplication,
            Framed::new(Socket::Unix(client)),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
        assert!(!err.to_string().contains("secret"));
        server_task.await.unwrap();
    }

    #[tokio::test]
    async fn channel_binding_require_refuses_cleartext_and_trust() {
        for request in [frame(b'R', &[0, 0, 0, 3]), frame(b'R', &[0, 0, 0, 0])] {
            let (client, mut server) = UnixStream::pair().unwrap();
            let info = info("user=u password=secret host=/x channel_binding=require");
            let target = info.targets()[0].clone();
            let server_task = tokio::spawn(async move {
                read_startup(&mut server).await;
                server.write_all(&request).await.unwrap();
            });
            let err = startup(
                &info,
                &target,
                SessionKind::PhysicalReplication,
                Framed::new(Socket::Unix(client)),
            )
            .await
            .err()
            .unwrap();
            assert!(err.to_string().contains("channel binding"), "{err}");
            server_task.await.unwrap();
        }
    }

    #[tokio::test]
    async fn server_errors_during_startup_are_db_errors() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let info = info("user=u host=/x");
        let target = info.targets()[0].clone();
        let server_task = tokio::spawn(async move {
            read_startup(&mut server).await;
            server
                .write_all(&frame(
                    b'E',
                    b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry\0\0",
                ))
                .await
                .unwrap();
        });
        let err = startup(
            &info,
            &target,
            SessionKind::PhysicalReplication,
            Framed::new(Socket::Unix(client)),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.code(), Some("28000"));
        assert!(err.is_closed());
        server_task.await.unwrap();
    }
}
