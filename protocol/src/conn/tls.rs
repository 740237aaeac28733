//! TLS with rustls, configured from the `ssl*` settings the way libpq reads them, and the
//! `tls-server-end-point` channel binding data for SCRAM-SHA-256-PLUS.
//!
//! Mirrors `initialize_SSL` and `verify_peer_name_matches_certificate` of PostgreSQL's
//! `src/interfaces/libpq/fe-secure-openssl.c`, and `pgtls_get_peer_certificate_hash` for the
//! channel binding. Verification by `sslmode`, as libpq does it:
//!
//! | sslmode | root certificate file exists | no root certificate file |
//! |---|---|---|
//! | allow, prefer, require | chain verified, host name not | nothing verified |
//! | verify-ca | chain verified, host name not | error |
//! | verify-full | chain and host name verified | error |
//!
//! The same configuration drives the replication connection and, through
//! [`MakeRustlsConnect`], tokio-postgres connections.

use std::future::Future;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conninfo::{ConnInfo, RootCert, SslMode};
use crate::error::{Error, Result};

/// The ALPN protocol name PostgreSQL 17+ registers; older servers ignore it.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls configuration for `info`, or `None` when `sslmode=disable`.
pub fn client_config(info: &ConnInfo) -> Result<Option<Arc<ClientConfig>>> {
    if info.sslmode() == SslMode::Disable {
        return Ok(None);
    }
    let provider = provider();
    let versions: &[&rustls::SupportedProtocolVersion] = if info.tls13_only() {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| Error::tls(format!("cannot configure TLS: {e}")))?;

    let roots = load_roots(info)?;
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        Some(roots) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::tls(format!("cannot use the root certificates: {e}")))?;
            if info.sslmode() == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(CaOnlyVerifier { inner: webpki })
            }
        }
        None => Arc::new(NoVerifier { provider }),
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    let mut config = match client_certificate(info)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::tls(format!("cannot use the client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Some(Arc::new(config)))
}

/// The trust anchors, or `None` when the server certificate is not verified at all.
fn load_roots(info: &ConnInfo) -> Result<Option<RootCertStore>> {
    let mut store = RootCertStore::empty();
    match info.sslrootcert() {
        Some(RootCert::System) => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // Certificates the parser rejects are skipped, as OpenSSL skips them.
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(Error::tls(
                    "sslrootcert=system: no trusted root certificates found on this system",
                ));
            }
            Ok(Some(store))
        }
        Some(RootCert::File(path)) if path.exists() => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| pem_error("root certificate file", path, &e))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| pem_error("root certificate file", path, &e))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::tls(format!(
                    "could not read root certificate file \"{}\": no certificate in it",
                    path.display()
                )));
            }
            Ok(Some(store))
        }
        other => {
            if matches!(info.sslmode(), SslMode::VerifyCa | SslMode::VerifyFull) {
                let name = match other {
                    Some(RootCert::File(path)) => path.display().to_string(),
                    _ => "~/.postgresql/root.crt".to_owned(),
                };
                return Err(Error::tls(format!(
                    "root certificate file \"{name}\" does not exist; either provide the file, \
                     use the system's trusted roots with sslrootcert=system, or change sslmode \
                     to disable server certificate verification"
                )));
            }
            Ok(None)
        }
    }
}

fn pem_error(what: &str, path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::tls(format!("could not read {what} \"{}\": {e}", path.display()))
}

/// The client certificate chain and key, when the certificate file exists.
fn client_certificate(
    info: &ConnInfo,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    let Some(cert_path) = info.sslcert().filter(|p| p.exists()) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| pem_error("certificate file", cert_path, &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate file", cert_path, &e))?;
    let key_path = info.sslkey().filter(|p| p.exists()).ok_or_else(|| {
        Error::tls(format!(
            "certificate present, but not private key file \"{}\"",
            info.sslkey()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))
    })?;
    check_key_permissions(key_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| pem_error("private key file", key_path, &e))?;
    Ok(Some((chain, key)))
}

/// libpq refuses a private key others can read: 0600 or less when owned by the user, 0640
/// or less when owned by root.
fn check_key_permissions(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::tls(format!(
            "could not stat private key file \"{}\": {e}",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::tls(format!(
            "private key file \"{}\" is not a regular file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode();
    let too_open = if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    };
    if too_open {
        return Err(Error::tls(format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root",
            path.display()
        )));
    }
    Ok(())
}

/// The name the certificate is checked against (and sent as SNI when it is a DNS name). A
/// name rustls cannot represent is only an error for `verify-full`.
pub fn server_name(host: &str, mode: SslMode) -> Result<ServerName<'static>> {
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    match ServerName::try_from(trimmed.to_owned()) {
        Ok(name) => Ok(name),
        Err(_) if mode != SslMode::VerifyFull => Ok(ServerName::try_from("localhost")
            .map_err(|e| Error::tls(e.to_string()))?
            .to_owned()),
        Err(e) => Err(Error::tls(format!(
            "sslmode=verify-full: cannot verify the certificate against host \"{host}\": {e}"
        ))),
    }
}

/// Verifies the chain against the roots but accepts any host name (`verify-ca`).
#[derive(Debug)]
struct CaOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for CaOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate (sslmode `require`/`prefer`/`allow` without a root certificate),
/// still checking the handshake signatures so the channel binding hash is of the key used.
#[derive(Debug)]
struct NoVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The `tls-server-end-point` channel binding data (RFC 5929): the hash of the server's
/// certificate with the hash algorithm of its signature, SHA-256 for MD5 and SHA-1. `None`
/// when the algorithm has no single hash (RSASSA-PSS, Ed25519) or the DER cannot be read:
/// libpq fails channel binding for those too.
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    // OIDs of signatureAlgorithm, DER-encoded content bytes.
    const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    const SHA224_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e];
    const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    const MD5_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
    const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];

    let oid = signature_algorithm_oid(cert_der)?;
    let hash = match oid {
        o if o == SHA256_WITH_RSA
            || o == ECDSA_SHA256
            || o == SHA1_WITH_RSA
            || o == MD5_WITH_RSA
            || o == ECDSA_SHA1 =>
        {
            sha2::Sha256::digest(cert_der).to_vec()
        }
        o if o == SHA224_WITH_RSA || o == ECDSA_SHA224 => sha2::Sha224::digest(cert_der).to_vec(),
        o if o == SHA384_WITH_RSA || o == ECDSA_SHA384 => sha2::Sha384::digest(cert_der).to_vec(),
        o if o == SHA512_WITH_RSA || o == ECDSA_SHA512 => sha2::Sha512::digest(cert_der).to_vec(),
        _ => return None,
    };
    Some(hash)
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, ... }, ... }`:
/// the content bytes of that OID.
fn signature_algorithm_oid(der: &[u8]) -> Option<&[u8]> {
    let (tag, cert, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _tbs, rest) = der_element(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg, _) = der_element(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_element(alg)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element: (tag, content, what follows it). Definite lengths up to 4 bytes only.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        (
            bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize),
            2 + n,
        )
    };
    let end = header.checked_add(len)?;
    Some((tag, input.get(header..end)?, input.get(end..)?))
}

/// A TLS connector for tokio-postgres built from the same settings as the replication
/// connection (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), with channel binding.
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Option<Arc<ClientConfig>>,
    mode: SslMode,
}

impl MakeRustlsConnect {
    /// The connector for `info`. With `sslmode=disable` it is never asked to connect.
    pub fn new(info: &ConnInfo) -> Result<MakeRustlsConnect> {
        Ok(MakeRustlsConnect {
            config: client_config(info)?,
            mode: info.sslmode(),
        })
    }
}

impl std::fmt::Debug for MakeRustlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeRustlsConnect")
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect> {
        let config = match &self.config {
            Some(c) => c.clone(),
            None => Arc::new(
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::tls(e.to_string()))?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoVerifier {
                        provider: provider(),
                    }))
                    .with_no_client_auth(),
            ),
        };
        Ok(RustlsConnect {
            config,
            name: server_name(domain, self.mode)?,
        })
    }
}

/// One TLS handshake for tokio-postgres (see [`MakeRustlsConnect`]).
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS stream for tokio-postgres, reporting the channel binding data of its certificate.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| tls_server_end_point(c))
        {
            Some(hash) => tokio_postgres::tls::ChannelBinding::tls_server_end_point(hash),
            None => tokio_postgres::tls::ChannelBinding::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_reader_never_panics() {
        assert_eq!(signature_algorithm_oid(&[]), None);
        assert_eq!(
            signature_algorithm_oid(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(signature_algorithm_oid(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0x30) as u8).collect();
            let _ = tls_server_end_point(&junk);
        }
    }

    #[test]
    fn finds_the_signature_algorithm() {
        // SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID sha256WithRSAEncryption, NULL }, BIT STRING }
        let cert = [
            0x30, 0x13, 0x30, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 0x0b, 0x05, 0x00, 0x03, 0x01, 0x00,
        ];
        assert_eq!(
            signature_algorithm_oid(&cert),
            Some(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b][..])
        );
        assert_eq!(
            tls_server_end_point(&cert),
            Some(sha2::Sha256::digest(cert).to_vec())
        );
        let mut ed25519 = cert;
        ed25519[8..17].copy_from_slice(&[0x2b, 0x65, 0x70, 0, 0, 0, 0, 0, 0]);
        assert_eq!(tls_server_end_point(&ed25519), None);
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let env = crate::conninfo::Env::from_vars([], Some(Path::new("/nonexistent")), Some("u"));
        let info = ConnInfo::parse_with_env("sslmode=verify-ca", &env).unwrap();
        let err = client_config(&info).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let info = ConnInfo::parse_with_env("sslmode=require", &env).unwrap();
        assert!(client_config(&info).unwrap().is_some());
        let info = ConnInfo::parse_with_env("sslmode=disable", &env).unwrap();
        assert!(client_config(&info).unwrap().is_none());
    }
}
