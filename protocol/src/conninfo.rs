//! Connection strings as libpq reads them: `key=value` conninfo and `postgresql://` URIs, the
//! `PG*` environment variables as defaults, and the password file (`~/.pgpass`).
//!
//! Mirrors `conninfo_parse`, `conninfo_uri_parse_options`, `conninfo_add_defaults`,
//! `connectOptions2` and `passwordFromFile` of PostgreSQL's
//! `src/interfaces/libpq/fe-connect.c`, and the "Connection Strings", "Parameter Key Words",
//! "Environment Variables" and "The Password File" sections of the libpq documentation.
//! Parsing does no network I/O; [`ConnInfo::targets`] lists the hosts to try in order and
//! [`ConnInfo::password_for`] resolves the password of one of them (explicit, `PGPASSWORD`,
//! then the password file). The password never appears in `Display`, `Debug` or errors.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The default port.
pub const DEFAULT_PORT: u16 = 5432;

/// Where libpq looks for the server's socket when no host is given: Debian's and Red Hat's
/// builds use `/var/run/postgresql`, the upstream default is `/tmp`. The first that exists wins.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];

/// `sslmode`: whether and how TLS is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Cleartext first; TLS only if the server insists (we try cleartext, then TLS).
    Allow,
    /// TLS if the server offers it, else cleartext (libpq's default).
    Prefer,
    /// TLS; the server certificate is verified only if a root certificate file exists.
    Require,
    /// TLS and a server certificate signed by a trusted CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(invalid_value("sslmode", other)),
        })
    }

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// True for the modes that refuse a cleartext connection.
    pub fn requires_tls(self) -> bool {
        self >= SslMode::Require
    }
}

/// `channel_binding`: whether SCRAM must bind the authentication to the TLS channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingMode {
    /// Never use channel binding.
    Disable,
    /// Use it when TLS is on and the server offers SCRAM-SHA-256-PLUS (the default).
    Prefer,
    /// Refuse to authenticate without it (so only SCRAM-SHA-256-PLUS over TLS).
    Require,
}

impl ChannelBindingMode {
    fn parse(value: &str) -> Result<ChannelBindingMode> {
        Ok(match value {
            "disable" => ChannelBindingMode::Disable,
            "prefer" => ChannelBindingMode::Prefer,
            "require" => ChannelBindingMode::Require,
            other => return Err(invalid_value("channel_binding", other)),
        })
    }
}

/// Where the server certificate's trust anchors come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootCert {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted roots (forces `verify-full`).
    System,
}

/// How to reach one server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address, over TCP.
    Tcp(String),
    /// A Unix socket directory; the socket is `DIR/.s.PGSQL.PORT`.
    Unix(PathBuf),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Tcp(name) => f.write_str(name),
            Host::Unix(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// One entry of the host list, tried in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host name, IP or socket directory.
    pub host: Host,
    /// `hostaddr`: the IP to connect to instead of resolving `host` (which is still used for
    /// certificate verification and the password file).
    pub hostaddr: Option<IpAddr>,
    /// The port (also the socket's file name suffix).
    pub port: u16,
}

impl Target {
    /// The path of the Unix socket, for a socket-directory host.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match &self.host {
            Host::Unix(dir) => Some(dir.join(format!(".s.PGSQL.{}", self.port))),
            Host::Tcp(_) => None,
        }
    }

    /// The host name as the password file matches it: `localhost` for the default socket
    /// directory, else the host (or the `hostaddr` when no host was given).
    fn pgpass_host(&self) -> String {
        match &self.host {
            Host::Unix(dir) if DEFAULT_SOCKET_DIRS.iter().any(|d| Path::new(d) == dir) => {
                "localhost".to_owned()
            }
            Host::Unix(dir) => dir.display().to_string(),
            Host::Tcp(name) if name.is_empty() => self
                .hostaddr
                .map(|a| a.to_string())
                .unwrap_or_else(|| "localhost".to_owned()),
            Host::Tcp(name) => name.clone(),
        }
    }
}

impl fmt::Display for Target {
    /// `host:port`, `[ipv6]:port` or `/socket/dir:port`, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.hostaddr) {
            (Host::Tcp(name), _) if name.contains(':') => write!(f, "[{name}]:{}", self.port),
            (Host::Tcp(name), Some(addr)) if name.is_empty() => {
                write!(f, "{addr}:{}", self.port)
            }
            (host, _) => write!(f, "{host}:{}", self.port),
        }
    }
}

/// TCP keepalive settings (`keepalives*`); durations are `None` for the OS default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keepalives {
    /// `keepalives`: on unless set to 0.
    pub enabled: bool,
    /// `keepalives_idle`.
    pub idle: Option<Duration>,
    /// `keepalives_interval`.
    pub interval: Option<Duration>,
    /// `keepalives_count`.
    pub count: Option<u32>,
}

/// What one password-file lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Given in the connection string or `PGPASSWORD`.
    Explicit,
    /// A matching line of this password file.
    File(PathBuf),
    /// No password: the reason, for the error shown if the server asks for one.
    None(String),
}

/// How a key reaches the parsed settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    /// Used by this crate.
    Used,
    /// Accepted for compatibility; has no effect here (checked by `validate`).
    Accepted,
    /// Known to libpq but not implemented here: an error names it.
    Unsupported,
}

/// Every libpq keyword, its environment variable, and how this crate handles it.
const KEYWORDS: &[(&str, Option<&str>, Support)] = &[
    ("host", Some("PGHOST"), Support::Used),
    ("hostaddr", Some("PGHOSTADDR"), Support::Used),
    ("port", Some("PGPORT"), Support::Used),
    ("dbname", Some("PGDATABASE"), Support::Used),
    ("user", Some("PGUSER"), Support::Used),
    ("password", Some("PGPASSWORD"), Support::Used),
    ("passfile", Some("PGPASSFILE"), Support::Used),
    ("application_name", Some("PGAPPNAME"), Support::Used),
    ("fallback_application_name", None, Support::Used),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT"), Support::Used),
    ("options", Some("PGOPTIONS"), Support::Used),
    ("sslmode", Some("PGSSLMODE"), Support::Used),
    ("sslrootcert", Some("PGSSLROOTCERT"), Support::Used),
    ("sslcert", Some("PGSSLCERT"), Support::Used),
    ("sslkey", Some("PGSSLKEY"), Support::Used),
    ("channel_binding", Some("PGCHANNELBINDING"), Support::Used),
    ("keepalives", None, Support::Used),
    ("keepalives_idle", None, Support::Used),
    ("keepalives_interval", None, Support::Used),
    ("keepalives_count", None, Support::Used),
    ("tcp_user_timeout", None, Support::Used),
    ("replication", None, Support::Accepted),
    (
        "client_encoding",
        Some("PGCLIENTENCODING"),
        Support::Accepted,
    ),
    ("gssencmode", Some("PGGSSENCMODE"), Support::Accepted),
    ("sslsni", Some("PGSSLSNI"), Support::Accepted),
    ("sslcompression", None, Support::Accepted),
    (
        "target_session_attrs",
        Some("PGTARGETSESSIONATTRS"),
        Support::Accepted,
    ),
    (
        "sslnegotiation",
        Some("PGSSLNEGOTIATION"),
        Support::Accepted,
    ),
    (
        "ssl_min_protocol_version",
        Some("PGSSLMINPROTOCOLVERSION"),
        Support::Accepted,
    ),
    (
        "ssl_max_protocol_version",
        Some("PGSSLMAXPROTOCOLVERSION"),
        Support::Accepted,
    ),
    (
        "load_balance_hosts",
        Some("PGLOADBALANCEHOSTS"),
        Support::Accepted,
    ),
    ("service", None, Support::Unsupported),
    ("sslcrl", None, Support::Unsupported),
    ("sslcrldir", None, Support::Unsupported),
    ("sslpassword", None, Support::Unsupported),
    ("sslcertmode", None, Support::Unsupported),
    ("sslkeylogfile", None, Support::Unsupported),
    ("requirepeer", None, Support::Unsupported),
    ("require_auth", None, Support::Unsupported),
    ("krbsrvname", None, Support::Unsupported),
    ("gsslib", None, Support::Unsupported),
    ("gssdelegation", None, Support::Unsupported),
    ("min_protocol_version", None, Support::Unsupported),
    ("max_protocol_version", None, Support::Unsupported),
    ("scram_client_key", None, Support::Unsupported),
    ("scram_server_key", None, Support::Unsupported),
    ("oauth_issuer", None, Support::Unsupported),
    ("oauth_client_id", None, Support::Unsupported),
    ("oauth_client_secret", None, Support::Unsupported),
    ("oauth_scope", None, Support::Unsupported),
];

fn keyword(name: &str) -> Option<&'static (&'static str, Option<&'static str>, Support)> {
    KEYWORDS.iter().find(|(k, _, _)| *k == name)
}

fn invalid_value(key: &str, value: &str) -> Error {
    Error::config(format!("invalid {key} value: \"{value}\""))
}

/// The environment a connection string is completed from: variables, home directory and
/// OS user. [`Env::process`] is the real one; tests build their own with [`Env::from_vars`].
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    home: Option<PathBuf>,
    os_user: Option<String>,
}

impl Env {
    /// The process environment, `$HOME` (else the passwd entry) and the OS user name.
    pub fn process() -> Env {
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PG"))
            .collect();
        let passwd = own_passwd_entry();
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| passwd.as_ref().map(|(_, home)| home.clone()));
        let os_user = passwd
            .map(|(name, _)| name)
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok());
        Env {
            vars,
            home,
            os_user,
        }
    }

    /// An environment with exactly these variables, home directory and OS user (for tests).
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
        home: Option<&Path>,
        os_user: Option<&str>,
    ) -> Env {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            home: home.map(Path::to_path_buf),
            os_user: os_user.map(str::to_owned),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// The user name and home directory of the running process's uid, from `/etc/passwd`.
fn own_passwd_entry() -> Option<(String, PathBuf)> {
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 6 && fields[2].parse::<u32>().ok()? == uid {
            Some((fields[0].to_owned(), PathBuf::from(fields[5])))
        } else {
            None
        }
    })
}

/// A parsed, validated connection string with its defaults filled in.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Every setting, explicit or from the environment, in keyword order (for `Display`).
    settings: BTreeMap<&'static str, String>,
    targets: Vec<Target>,
    user: String,
    dbname: Option<String>,
    password: Option<String>,
    passfile: Option<PathBuf>,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
    options: Option<String>,
    sslmode: SslMode,
    sslrootcert: Option<RootCert>,
    sslrootcert_explicit: bool,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    channel_binding: ChannelBindingMode,
    keepalives: Keepalives,
    tcp_user_timeout: Option<Duration>,
    tls13_only: bool,
}

impl ConnInfo {
    /// Parses a conninfo string or URI, completed from the process environment.
    pub fn parse(conninfo: &str) -> Result<ConnInfo> {
        ConnInfo::parse_with_env(conninfo, &Env::process())
    }

    /// Parses a conninfo string or URI, completed from `env`.
    pub fn parse_with_env(conninfo: &str, env: &Env) -> Result<ConnInfo> {
        let pairs = parse_pairs(conninfo)?;
        ConnInfo::from_pairs(pairs, env)
    }

    /// Builds from `(keyword, value)` pairs (later pairs win), completed from `env`.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        env: &Env,
    ) -> Result<ConnInfo> {
        let mut settings: BTreeMap<&'static str, String> = BTreeMap::new();
        for (key, value) in pairs {
            let Some((name, _, support)) = keyword(&key) else {
                return Err(Error::config(format!(
                    "invalid connection option \"{key}\""
                )));
            };
            if *support == Support::Unsupported {
                return Err(Error::config(format!(
                    "connection option \"{key}\" is not supported"
                )));
            }
            settings.insert(name, value);
        }
        for (name, var, _) in KEYWORDS {
            if let (Some(var), false) = (var, settings.contains_key(name)) {
                if let Some(value) = env.var(var) {
                    settings.insert(name, value.to_owned());
                }
            }
        }
        ConnInfo::validate(settings, env)
    }

    fn validate(settings: BTreeMap<&'static str, String>, env: &Env) -> Result<ConnInfo> {
        let get = |k: &str| settings.get(k).map(String::as_str);
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        let home_file = |rel: &str| env.home.as_ref().map(|h| h.join(rel));

        check_accepted(&settings)?;
        let targets = build_targets(get("host"), get("hostaddr"), get("port"))?;

        let user = match nonempty("user") {
            Some(u) => u.to_owned(),
            None => env.os_user.clone().ok_or_else(|| {
                Error::config("no user name given and the OS user name is unknown")
            })?,
        };
        let sslmode = match nonempty("sslmode") {
            Some(m) => SslMode::parse(m)?,
            None => SslMode::Prefer,
        };
        let sslrootcert_explicit = nonempty("sslrootcert").is_some();
        let sslrootcert = match nonempty("sslrootcert") {
            Some("system") => Some(RootCert::System),
            Some(path) => Some(RootCert::File(PathBuf::from(path))),
            None => home_file(".postgresql/root.crt").map(RootCert::File),
        };
        if sslrootcert == Some(RootCert::System) && sslmode != SslMode::VerifyFull {
            return Err(Error::config(format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
                sslmode.as_str()
            )));
        }
        let channel_binding = match nonempty("channel_binding") {
            Some(m) => ChannelBindingMode::parse(m)?,
            None => ChannelBindingMode::Prefer,
        };
        if channel_binding == ChannelBindingMode::Require && sslmode == SslMode::Disable {
            return Err(Error::config(
                "channel_binding=require needs TLS, but sslmode is \"disable\"",
            ));
        }
        let application_name = nonempty("application_name")
            .or_else(|| nonempty("fallback_application_name"))
            .map(str::to_owned);
        let connect_timeout = match nonempty("connect_timeout") {
            Some(v) => {
                let secs: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid_value("connect_timeout", v))?;
                // As libpq: 0 or less waits forever, and 1 second is rounded up to 2.
                match secs {
                    i64::MIN..=0 => None,
                    1 => Some(Duration::from_secs(2)),
                    s => Some(Duration::from_secs(s as u64)),
                }
            }
            None => None,
        };
        let keepalives = Keepalives {
            enabled: match nonempty("keepalives") {
                Some(v) => parse_int(v, "keepalives")? != 0,
                None => true,
            },
            idle: parse_secs(nonempty("keepalives_idle"), "keepalives_idle")?,
            interval: parse_secs(nonempty("keepalives_interval"), "keepalives_interval")?,
            count: nonempty("keepalives_count")
                .map(|v| {
                    u32::try_from(parse_int(v, "keepalives_count")?)
                        .map_err(|_| invalid_value("keepalives_count", v))
                })
                .transpose()?,
        };
        let tcp_user_timeout = match nonempty("tcp_user_timeout") {
            Some(v) => match parse_int(v, "tcp_user_timeout")? {
                ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
                _ => None,
            },
            None => None,
        };
        let passfile = nonempty("passfile")
            .map(PathBuf::from)
            .or_else(|| home_file(".pgpass"));
        Ok(ConnInfo {
            targets,
            dbname: nonempty("dbname").map(str::to_owned),
            password: get("password").map(str::to_owned),
            passfile,
            application_name,
            connect_timeout,
            options: nonempty("options").map(str::to_owned),
            sslmode,
            sslrootcert,
            sslrootcert_explicit,
            sslcert: nonempty("sslcert")
                .map(PathBuf::from)
                .or_else(|| home_file(".postgresql/postgresql.crt")),
            sslkey: nonempty("sslkey")
                .map(PathBuf::from)
                .or_else(|| home_file(".postgresql/postgresql.key")),
            channel_binding,
            keepalives,
            tcp_user_timeout,
            tls13_only: get("ssl_min_protocol_version") == Some("TLSv1.3"),
            user,
            settings,
        })
    }

    /// The hosts to try, in order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The user name (from the string, `PGUSER` or the OS user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database name, if one was given (`dbname` or `PGDATABASE`).
    pub fn dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }

    /// The database an ordinary connection uses: `dbname`, else the user name.
    pub fn effective_dbname(&self) -> &str {
        self.dbname.as_deref().unwrap_or(&self.user)
    }

    /// True when a password was given in the string or `PGPASSWORD`.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The password file consulted when no password was given.
    pub fn passfile(&self) -> Option<&Path> {
        self.passfile.as_deref()
    }

    /// `application_name` (or `fallback_application_name`).
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// Sets `application_name` unless one was given (how a program names itself).
    pub fn set_fallback_application_name(&mut self, name: &str) {
        if self.application_name.is_none() {
            self.application_name = Some(name.to_owned());
        }
    }

    /// `connect_timeout`, per host attempt.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// `options`: command-line options sent to the server.
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// `sslmode`.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// `sslrootcert` (or `~/.postgresql/root.crt`).
    pub fn sslrootcert(&self) -> Option<&RootCert> {
        self.sslrootcert.as_ref()
    }

    /// True when `sslrootcert` was set explicitly (it then also makes `require` verify the CA).
    pub fn sslrootcert_is_explicit(&self) -> bool {
        self.sslrootcert_explicit
    }

    /// `sslcert` (or `~/.postgresql/postgresql.crt`, used only if it exists).
    pub fn sslcert(&self) -> Option<&Path> {
        self.sslcert.as_deref()
    }

    /// `sslkey` (or `~/.postgresql/postgresql.key`).
    pub fn sslkey(&self) -> Option<&Path> {
        self.sslkey.as_deref()
    }

    /// `channel_binding`.
    pub fn channel_binding(&self) -> ChannelBindingMode {
        self.channel_binding
    }

    /// `keepalives*`.
    pub fn keepalives(&self) -> Keepalives {
        self.keepalives
    }

    /// `tcp_user_timeout`.
    pub fn tcp_user_timeout(&self) -> Option<Duration> {
        self.tcp_user_timeout
    }

    /// `ssl_min_protocol_version=TLSv1.3`.
    pub fn tls13_only(&self) -> bool {
        self.tls13_only
    }

    /// The password for `target` and database `dbname`: the explicit one, else the first
    /// matching line of the password file (as libpq: a file with group or world access, or
    /// that is not a plain file, is ignored). The source tells where it came from, or why
    /// there is none, for the error message if the server asks for a password.
    pub fn password_for(&self, target: &Target, dbname: &str) -> (Option<String>, PasswordSource) {
        if let Some(p) = &self.password {
            return (Some(p.clone()), PasswordSource::Explicit);
        }
        let Some(path) = &self.passfile else {
            return (
                None,
                PasswordSource::None("no password file (no home directory)".to_owned()),
            );
        };
        let host = target.pgpass_host();
        let port = target.port.to_string();
        match read_pgpass(path) {
            Ok(text) => match pgpass_lookup(&text, &host, &port, dbname, &self.user) {
                Some(p) => (Some(p), PasswordSource::File(path.clone())),
                None => (
                    None,
                    PasswordSource::None(format!(
                        "no entry for {host}:{port}:{dbname}:{} in \"{}\"",
                        self.user,
                        path.display()
                    )),
                ),
            },
            Err(why) => (None, PasswordSource::None(why)),
        }
    }

    /// The conninfo with the password replaced by `********`: safe for logs and errors.
    pub fn redacted(&self) -> String {
        self.to_string()
    }

    /// A `tokio_postgres::Config` for an ordinary SQL connection with the same settings.
    /// tokio-postgres has one password for all hosts: it is the explicit one or the password
    /// file's entry for the first host. Its `sslmode` has no `allow`/`verify-*`: `allow` maps to
    /// `prefer` and `verify-*` to `require`, the verification being done by the TLS connector
    /// of [`crate::conn::tls::MakeRustlsConnect`], built from the same settings.
    pub fn to_tokio_postgres(&self) -> Result<tokio_postgres::Config> {
        use tokio_postgres::config::{ChannelBinding, SslMode as TpSslMode};
        let mut config = tokio_postgres::Config::new();
        let with_addr = self.targets.iter().filter(|t| t.hostaddr.is_some()).count();
        if with_addr != 0 && with_addr != self.targets.len() {
            return Err(Error::config(
                "hostaddr must be given for every host or none for an ordinary connection",
            ));
        }
        for target in &self.targets {
            match &target.host {
                Host::Tcp(name) if name.is_empty() => {
                    let addr = target.hostaddr.map(|a| a.to_string()).unwrap_or_default();
                    config.host(&addr);
                }
                Host::Tcp(name) => {
                    config.host(name);
                }
                Host::Unix(dir) => {
                    config.host_path(dir);
                }
            }
            if let Some(addr) = target.hostaddr {
                config.hostaddr(addr);
            }
            config.port(target.port);
        }
        config.user(&self.user);
        config.dbname(self.effective_dbname());
        if let Some(first) = self.targets.first() {
            if let (Some(password), _) = self.password_for(first, self.effective_dbname()) {
                config.password(password);
            }
        }
        if let Some(options) = &self.options {
            config.options(options);
        }
        if let Some(name) = &self.application_name {
            config.application_name(name);
        }
        if let Some(timeout) = self.connect_timeout {
            config.connect_timeout(timeout);
        }
        if let Some(timeout) = self.tcp_user_timeout {
            config.tcp_user_timeout(timeout);
        }
        config.keepalives(self.keepalives.enabled);
        if let Some(idle) = self.keepalives.idle {
            config.keepalives_idle(idle);
        }
        if let Some(interval) = self.keepalives.interval {
            config.keepalives_interval(interval);
        }
        if let Some(count) = self.keepalives.count {
            config.keepalives_retries(count);
        }
        config.ssl_mode(match self.sslmode {
            SslMode::Disable => TpSslMode::Disable,
            SslMode::Allow | SslMode::Prefer => TpSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => TpSslMode::Require,
        });
        config.channel_binding(match self.channel_binding {
            ChannelBindingMode::Disable => ChannelBinding::Disable,
            ChannelBindingMode::Prefer => ChannelBinding::Prefer,
            ChannelBindingMode::Require => ChannelBinding::Require,
        });
        Ok(config)
    }
}

impl fmt::Display for ConnInfo {
    /// The settings in conninfo syntax (explicit and from the environment), password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (key, value) in &self.settings {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            if *key == "password" {
                write!(f, "{key}=********")?;
            } else {
                write!(f, "{key}={}", quote_value(value))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConnInfo").field(&self.to_string()).finish()
    }
}

/// A conninfo value, quoted when it must be.
fn quote_value(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn parse_int(value: &str, key: &str) -> Result<i64> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid_value(key, value))
}

fn parse_secs(value: Option<&str>, key: &str) -> Result<Option<Duration>> {
    match value {
        Some(v) => match parse_int(v, key)? {
            s if s > 0 => Ok(Some(Duration::from_secs(s as u64))),
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// Checks the keywords accepted for compatibility hold values this crate can honour.
fn check_accepted(settings: &BTreeMap<&'static str, String>) -> Result<()> {
    let get = |k: &str| {
        settings
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = get("gssencmode") {
        match v {
            "disable" | "prefer" | "allow" => {}
            "require" => {
                return Err(Error::config(
                    "gssencmode=require is not supported (no GSSAPI support)",
                ))
            }
            other => return Err(invalid_value("gssencmode", other)),
        }
    }
    if let Some(v) = get("target_session_attrs") {
        if v != "any" {
            return Err(Error::config(format!(
                "target_session_attrs=\"{v}\" is not supported (only \"any\")"
            )));
        }
    }
    if let Some(v) = get("load_balance_hosts") {
        if v != "disable" {
            return Err(Error::config(format!(
                "load_balance_hosts=\"{v}\" is not supported (only \"disable\")"
            )));
        }
    }
    if let Some(v) = get("sslnegotiation") {
        if v != "postgres" {
            return Err(Error::config(format!(
                "sslnegotiation=\"{v}\" is not supported (only \"postgres\")"
            )));
        }
    }
    if let Some(v) = get("client_encoding") {
        if !matches!(
            v.to_ascii_uppercase().as_str(),
            "UTF8" | "UTF-8" | "UNICODE" | "AUTO"
        ) {
            return Err(Error::config(format!(
                "client_encoding=\"{v}\" is not supported (only UTF8)"
            )));
        }
    }
    if let Some(v) = get("replication") {
        match v {
            "true" | "on" | "yes" | "1" | "false" | "off" | "no" | "0" | "database" => {}
            other => return Err(invalid_value("replication", other)),
        }
    }
    for key in ["ssl_min_protocol_version", "ssl_max_protocol_version"] {
        if let Some(v) = get(key) {
            if !matches!(v, "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3") {
                return Err(invalid_value(key, v));
            }
        }
    }
    for key in ["sslsni", "sslcompression"] {
        if let Some(v) = get(key) {
            if v != "0" && v != "1" {
                return Err(invalid_value(key, v));
            }
        }
    }
    Ok(())
}

/// Splits the comma-separated `host`, `hostaddr` and `port` lists into targets, as
/// `connectOptions2` does.
fn build_targets(
    host: Option<&str>,
    hostaddr: Option<&str>,
    port: Option<&str>,
) -> Result<Vec<Target>> {
    let split = |v: Option<&str>| -> Vec<String> {
        match v {
            Some(v) if !v.is_empty() => v.split(',').map(|s| s.trim().to_owned()).collect(),
            _ => Vec::new(),
        }
    };
    let hosts = split(host);
    let addrs = split(hostaddr);
    let ports = split(port);
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(Error::config(format!(
            "could not match {} host names to {} hostaddr values",
            hosts.len(),
            addrs.len()
        )));
    }
    let count = hosts.len().max(addrs.len()).max(1);
    if ports.len() > 1 && ports.len() != count {
        return Err(Error::config(format!(
            "could not match {} port numbers to {count} hosts",
            ports.len()
        )));
    }
    let mut targets = Vec::with_capacity(count);
    for i in 0..count {
        let hostaddr =
            match addrs.get(i).map(String::as_str) {
                Some("") | None => None,
                Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                    Error::config(format!("could not parse network address \"{a}\""))
                })?),
            };
        let name = hosts.get(i).map(String::as_str).unwrap_or("");
        let host = if name.starts_with('/') {
            Host::Unix(PathBuf::from(name))
        } else if name.is_empty() && hostaddr.is_none() {
            Host::Unix(default_socket_dir())
        } else {
            Host::Tcp(name.to_owned())
        };
        let port = match ports.get(i).or(ports.first()).map(String::as_str) {
            None | Some("") => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(Error::config(format!("invalid port number: \"{p}\""))),
            },
        };
        targets.push(Target {
            host,
            hostaddr,
            port,
        });
    }
    Ok(targets)
}

fn default_socket_dir() -> PathBuf {
    let found = DEFAULT_SOCKET_DIRS
        .iter()
        .find(|d| Path::new(d).is_dir())
        .unwrap_or(&DEFAULT_SOCKET_DIRS[DEFAULT_SOCKET_DIRS.len() - 1]);
    PathBuf::from(found)
}

/// Splits a conninfo string or URI into `(keyword, value)` pairs, without checking keywords.
pub fn parse_pairs(conninfo: &str) -> Result<Vec<(String, String)>> {
    for prefix in ["postgresql://", "postgres://"] {
        if let Some(rest) = conninfo.strip_prefix(prefix) {
            return parse_uri(rest);
        }
    }
    parse_keyword_value(conninfo)
}

/// `key = value` pairs separated by whitespace; values may be single-quoted; a backslash
/// escapes the next character (in and out of quotes).
fn parse_keyword_value(s: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(Error::config(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(Error::config(
                            "unterminated quoted string in connection info string",
                        ))
                    }
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(Error::config(
                                "unterminated quoted string in connection info string",
                            ))
                        }
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// `[user[:password]@][host[:port][,...]][/dbname][?key=value[&...]]`, percent-decoded.
fn parse_uri(rest: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.find('/') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    let (userinfo, hostlist) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            pairs.push(("user".to_owned(), percent_decode(user)?));
        }
        if let Some(p) = password {
            pairs.push(("password".to_owned(), percent_decode(p)?));
        }
    }
    if !hostlist.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostlist.split(',') {
            let (host, port) = if let Some(inner) = spec.strip_prefix('[') {
                let close = inner.find(']').ok_or_else(|| {
                    Error::config(format!(
                        "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{spec}\""
                    ))
                })?;
                let host = &inner[..close];
                let after = &inner[close + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => p,
                    None if after.is_empty() => "",
                    None => {
                        return Err(Error::config(format!(
                        "unexpected character \"{}\" after IPv6 host address in URI: \"{spec}\"",
                        after.chars().next().unwrap_or(' ')
                    )))
                    }
                };
                (host.to_owned(), port)
            } else {
                match spec.split_once(':') {
                    Some((h, p)) => (percent_decode(h)?, p),
                    None => (percent_decode(spec)?, ""),
                }
            };
            hosts.push(host);
            ports.push(percent_decode(port)?);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            pairs.push(("host".to_owned(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".to_owned(), ports.join(",")));
        }
    }
    if let Some(path) = path {
        if !path.is_empty() {
            pairs.push(("dbname".to_owned(), percent_decode(path)?));
        }
    }
    if let Some(query) = query {
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').ok_or_else(|| {
                Error::config(format!(
                    "missing key/value separator \"=\" in URI query parameter: \"{param}\""
                ))
            })?;
            let key = percent_decode(key)?;
            let value = percent_decode(value)?;
            // libpq's JDBC-compatible spelling.
            if key == "ssl" && value == "true" {
                pairs.push(("sslmode".to_owned(), "require".to_owned()));
                continue;
            }
            if keyword(&key).is_none() {
                return Err(Error::config(format!(
                    "invalid URI query parameter: \"{key}\""
                )));
            }
            pairs.push((key, value));
        }
    }
    Ok(pairs)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::config(format!("invalid percent-encoded token: \"{s}\"")))?;
            if hex == 0 {
                return Err(Error::config(format!(
                    "forbidden value %00 in percent-encoded value: \"{s}\""
                )));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::config(format!("percent-encoded value is not UTF-8: \"{s}\"")))
}

/// Reads a password file, refusing it as libpq does when it is not a plain file or has group
/// or world access. The error is the reason, for messages.
fn read_pgpass(path: &Path) -> std::result::Result<String, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "password file \"{}\" does not exist",
                path.display()
            ))
        }
        Err(e) => return Err(format!("password file \"{}\": {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!(
            "password file \"{}\" is not a plain file",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            path.display()
        ));
    }
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("password file \"{}\": {e}", path.display()))
}

/// The password of the first line of a password file matching the four fields: each is
/// `*` (anything) or the exact value, where `\` escapes `:` and `\`.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_pgpass_line(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = |field: &(String, bool), want: &str| field.1 || field.0 == want;
        if matches(&fields[0], host)
            && matches(&fields[1], port)
            && matches(&fields[2], dbname)
            && matches(&fields[3], user)
        {
            // Everything after the fourth separator is the password, colons included.
            let mut password = fields[4].0.clone();
            for extra in &fields[5..] {
                password.push(':');
                password.push_str(&extra.0);
            }
            return Some(password);
        }
    }
    None
}

/// Unescaped fields of a line, each with "is the bare wildcard `*`".
fn split_pgpass_line(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut raw_star = true;
    let mut raw_len = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                raw_star = false;
                raw_len += 2;
            }
            ':' => {
                fields.push((std::mem::take(&mut current), raw_star && raw_len == 1));
                raw_star = true;
                raw_len = 0;
            }
            c => {
                if c != '*' {
                    raw_star = false;
                }
                current.push(c);
                raw_len += 1;
            }
        }
    }
    fields.push((current, raw_star && raw_len == 1));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_vars([], Some(Path::new("/home/u")), Some("osuser"))
    }

    fn parse(s: &str) -> ConnInfo {
        ConnInfo::parse_with_env(s, &env()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn parse_err(s: &str) -> String {
        ConnInfo::parse_with_env(s, &env()).unwrap_err().to_string()
    }

    fn tcp(name: &str, port: u16) -> Target {
        Target {
            host: Host::Tcp(name.into()),
            hostaddr: None,
            port,
        }
    }

    #[test]
    fn keyword_value_with_quotes_and_escapes() {
        let pairs = parse_pairs(
            r"host = db1  password='it\'s \\ ok' user=a\ b dbname='x y' application_name=",
        )
        .unwrap();
        assert_eq!(
            pairs,
            vec![
                ("host".into(), "db1".into()),
                ("password".into(), r"it's \ ok".into()),
                ("user".into(), "a b".into()),
                ("dbname".into(), "x y".into()),
                ("application_name".into(), "".into()),
            ]
        );
        assert_eq!(
            parse_pairs("host").unwrap_err().to_string(),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert!(parse_pairs("host='abc")
            .unwrap_err()
            .to_string()
            .contains("unterminated quoted string"));
        assert!(parse_pairs("").unwrap().is_empty());
    }

    #[test]
    fn unknown_and_unsupported_keys_are_named() {
        assert_eq!(parse_err("hots=x"), "invalid connection option \"hots\"");
        assert_eq!(
            parse_err("service=x"),
            "connection option \"service\" is not supported"
        );
        assert_eq!(
            parse_err("sslmode=maybe"),
            "invalid sslmode value: \"maybe\""
        );
        assert!(parse_err("target_session_attrs=read-write").contains("not supported"));
    }

    #[test]
    fn defaults_and_environment() {
        let c = parse("host=db");
        assert_eq!(c.user(), "osuser");
        assert_eq!(c.effective_dbname(), "osuser");
        assert_eq!(c.targets(), &[tcp("db", 5432)]);
        assert_eq!(c.sslmode(), SslMode::Prefer);
        assert_eq!(c.channel_binding(), ChannelBindingMode::Prefer);
        assert_eq!(c.passfile(), Some(Path::new("/home/u/.pgpass")));
        assert!(c.keepalives().enabled);

        let env = Env::from_vars(
            [
                ("PGHOST", "envhost"),
                ("PGPORT", "6000"),
                ("PGUSER", "envuser"),
                ("PGDATABASE", "envdb"),
                ("PGPASSWORD", "envpw"),
                ("PGSSLMODE", "require"),
                ("PGAPPNAME", "envapp"),
                ("PGCONNECT_TIMEOUT", "1"),
                ("PGCHANNELBINDING", "disable"),
            ],
            None,
            Some("osuser"),
        );
        let c = ConnInfo::parse_with_env("user=explicit", &env).unwrap();
        assert_eq!(c.user(), "explicit", "explicit settings win over PG*");
        assert_eq!(c.targets(), &[tcp("envhost", 6000)]);
        assert_eq!(c.dbname(), Some("envdb"));
        assert!(c.has_password());
        assert_eq!(c.sslmode(), SslMode::Require);
        assert_eq!(c.application_name(), Some("envapp"));
        assert_eq!(c.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(c.channel_binding(), ChannelBindingMode::Disable);
        assert_eq!(c.passfile(), None);
    }

    #[test]
    fn host_lists_sockets_and_ports() {
        let c = parse("host=a,/run/pg,[::1] port=1,2,3");
        assert_eq!(c.targets()[0], tcp("a", 1));
        assert_eq!(c.targets()[1].host, Host::Unix("/run/pg".into()));
        assert_eq!(
            c.targets()[1].socket_path(),
            Some(PathBuf::from("/run/pg/.s.PGSQL.2"))
        );
        let c = parse("host=a,b port=7");
        assert_eq!(c.targets(), &[tcp("a", 7), tcp("b", 7)]);
        let c = parse("host=a,b port=,8");
        assert_eq!(c.targets(), &[tcp("a", 5432), tcp("b", 8)]);
        assert_eq!(
            parse_err("host=a,b port=1,2,3"),
            "could not match 3 port numbers to 2 hosts"
        );
        assert_eq!(parse_err("port=70000"), "invalid port number: \"70000\"");
        let c = parse("hostaddr=10.0.0.1 port=5");
        assert_eq!(c.targets()[0].hostaddr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(c.targets()[0].to_string(), "10.0.0.1:5");
        assert!(parse_err("hostaddr=nope").contains("could not parse network address"));
        assert!(parse_err("host=a,b hostaddr=1.2.3.4").contains("could not match 2 host names"));
        let c = parse("");
        assert!(matches!(c.targets()[0].host, Host::Unix(_)));
    }

    #[test]
    fn uris() {
        let c = parse("postgresql://us%40r:p%3Ass@h1:5433,[2001:db8::1]:5434,h3/my%20db?sslmode=verify-full&application_name=x&connect_timeout=10");
        assert_eq!(c.user(), "us@r");
        assert!(c.has_password());
        assert_eq!(c.targets()[0], tcp("h1", 5433));
        assert_eq!(c.targets()[1], tcp("2001:db8::1", 5434));
        assert_eq!(c.targets()[1].to_string(), "[2001:db8::1]:5434");
        assert_eq!(c.targets()[2], tcp("h3", 5432));
        assert_eq!(c.dbname(), Some("my db"));
        assert_eq!(c.sslmode(), SslMode::VerifyFull);
        assert_eq!(c.application_name(), Some("x"));
        assert_eq!(c.connect_timeout(), Some(Duration::from_secs(10)));

        let c = parse("postgres://%2Fvar%2Frun%2Fpg:5999/db");
        assert_eq!(c.targets()[0].host, Host::Unix("/var/run/pg".into()));
        let c = parse("postgresql:///db?host=/tmp/s&port=6");
        assert_eq!(
            c.targets()[0].socket_path(),
            Some(PathBuf::from("/tmp/s/.s.PGSQL.6"))
        );
        let c = parse("postgresql://h?ssl=true");
        assert_eq!(c.sslmode(), SslMode::Require);
        assert_eq!(
            parse_err("postgresql://h?bogus=1"),
            "invalid URI query parameter: \"bogus\""
        );
        assert!(parse_err("postgresql://h/%zz").contains("invalid percent-encoded token"));
        assert!(parse_err("postgresql://[::1").contains("IPv6"));
        assert!(parse_err("postgresql://h?x").contains("missing key/value separator"));
    }

    #[test]
    fn display_never_shows_the_password() {
        let c = parse("host=h password=s3cret user='a b'");
        let text = c.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(text.contains("password=********"), "{text}");
        assert!(text.contains("user='a b'"), "{text}");
        assert_eq!(c.redacted(), text);
        let err = parse_err("password=s3cret sslmode=bad");
        assert!(!err.contains("s3cret"));
        let err = ConnInfo::parse_with_env("postgresql://u:s3cret@h?x=y", &env())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn ssl_rules() {
        assert!(parse_err("sslrootcert=system sslmode=require").contains("weak sslmode"));
        let c = parse("sslrootcert=system sslmode=verify-full");
        assert_eq!(c.sslrootcert(), Some(&RootCert::System));
        assert!(parse_err("channel_binding=require sslmode=disable").contains("needs TLS"));
        let c = parse("sslmode=verify-ca");
        assert_eq!(
            c.sslrootcert(),
            Some(&RootCert::File("/home/u/.postgresql/root.crt".into()))
        );
        assert!(!c.sslrootcert_is_explicit());
    }

    #[test]
    fn pgpass_matching_rules() {
        let text = "# comment\n\
                    other:*:*:*:wrong\n\
                    db\\:1:5432:*:bob:first\n\
                    *:*:replication:bob:pa\\:ss\\\\word\r\n\
                    *:*:*:*:fallback:with:colons\n";
        assert_eq!(
            pgpass_lookup(text, "db:1", "5432", "x", "bob").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "h", "1", "replication", "bob").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            pgpass_lookup(text, "h", "1", "postgres", "bob").as_deref(),
            Some("fallback:with:colons")
        );
        assert_eq!(pgpass_lookup("a:b:c\n", "a", "b", "c", "d"), None);
        // A literal `\*` is not the wildcard.
        assert_eq!(pgpass_lookup("\\*:*:*:*:p\n", "h", "1", "d", "u"), None);
        assert_eq!(
            pgpass_lookup("\\*:*:*:*:p\n", "*", "1", "d", "u").as_deref(),
            Some("p")
        );
    }

    #[test]
    fn pgpass_file_permissions_and_sockets() {
        let dir = std::env::temp_dir().join(format!("pgpass-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "localhost:5432:replication:u:sock\nh:5432:*:u:tcp\n").unwrap();
        let c = ConnInfo::parse_with_env(&format!("user=u passfile={}", file.display()), &env())
            .unwrap();

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (pw, src) = c.password_for(&tcp("h", 5432), "db");
        assert_eq!(pw, None);
        match src {
            PasswordSource::None(why) => assert!(why.contains("group or world access"), "{why}"),
            other => panic!("{other:?}"),
        }

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (pw, src) = c.password_for(&tcp("h", 5432), "db");
        assert_eq!(pw.as_deref(), Some("tcp"));
        assert_eq!(src, PasswordSource::File(file.clone()));
        let default_socket = Target {
            host: Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIRS[0])),
            hostaddr: None,
            port: 5432,
        };
        assert_eq!(
            c.password_for(&default_socket, "replication").0.as_deref(),
            Some("sock")
        );
        let (pw, src) = c.password_for(&tcp("nohost", 5432), "db");
        assert_eq!(pw, None);
        assert!(
            matches!(src, PasswordSource::None(ref why) if why.contains("no entry for nohost:5432:db:u"))
        );

        let c = ConnInfo::parse_with_env(
            &format!("user=u passfile={}", dir.join("missing").display()),
            &env(),
        )
        .unwrap();
        assert!(
            matches!(c.password_for(&tcp("h", 5432), "db").1, PasswordSource::None(ref w) if w.contains("does not exist"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn converts_to_tokio_postgres() {
        let c = parse("host=h1,/sock port=1,2 user=u dbname=d password=p sslmode=verify-full application_name=a connect_timeout=5 keepalives_idle=30 channel_binding=require");
        let t = c.to_tokio_postgres().unwrap();
        assert_eq!(t.get_user(), Some("u"));
        assert_eq!(t.get_dbname(), Some("d"));
        assert_eq!(t.get_password(), Some(&b"p"[..]));
        assert_eq!(t.get_ports(), &[1, 2]);
        assert_eq!(t.get_hosts().len(), 2);
        assert_eq!(t.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(t.get_application_name(), Some("a"));
        assert_eq!(t.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(t.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(
            t.get_channel_binding(),
            tokio_postgres::config::ChannelBinding::Require
        );
    }
}
