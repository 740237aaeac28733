//! The ordinary SQL connection to a PostgreSQL server (tokio-postgres), for what the
//! replication protocol does not offer: settings, `pg_switch_wal()`, restore points,
//! replication slots and `pg_stat_replication`.
//!
//! Connection strings are parsed once by `barman_protocol::ConnInfo` (libpq rules,
//! `.pgpass`, `PG*` variables) and TLS goes through the same rustls setup as the
//! replication connection. Errors name the server and never show the password.

use anyhow::{Context, Result};
use barman_protocol::conn::tls::MakeRustlsConnect;
use barman_protocol::ConnInfo;

/// A runtime for the async protocol code; commands are otherwise synchronous.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Parse a connection string, naming the server and option in errors (without the
/// password).
pub fn parse_conninfo(server: &str, option: &str, conninfo: &str) -> Result<ConnInfo> {
    ConnInfo::parse(conninfo)
        .map_err(|e| anyhow::anyhow!("invalid {option} of server '{server}': {e}"))
}

/// An open SQL connection; the connection task runs on the given runtime.
pub struct SqlClient {
    /// The tokio-postgres client.
    pub client: tokio_postgres::Client,
}

impl SqlClient {
    /// Connect with `conninfo` (`application_name` defaults to `application`).
    pub async fn connect(
        server: &str,
        conninfo: &ConnInfo,
        application: &str,
    ) -> Result<SqlClient> {
        let mut info = conninfo.clone();
        info.set_fallback_application_name(application);
        let config = info
            .to_tokio_postgres()
            .map_err(|e| anyhow::anyhow!("connect to PostgreSQL of server '{server}': {e}"))?;
        let tls = MakeRustlsConnect::new(&info)
            .map_err(|e| anyhow::anyhow!("connect to PostgreSQL of server '{server}': {e}"))?;
        let (client, connection) = config.connect(tls).await.map_err(|e| {
            // tokio-postgres says only "error connecting to server"; the cause follows.
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            anyhow::anyhow!(
                "connect to PostgreSQL of server '{server}' ({}): {e}{cause}",
                info.redacted()
            )
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("PostgreSQL connection closed: {e}");
            }
        });
        Ok(SqlClient { client })
    }

    /// The first column of the first row of `sql`, as text.
    pub async fn query_text(&self, sql: &str) -> Result<Option<String>> {
        Ok(self
            .query_row(sql)
            .await?
            .and_then(|row| row.into_iter().next().flatten()))
    }

    /// Every column of the first row of `sql`, as text (`None` for NULL); `None` when
    /// the query returns no row.
    pub async fn query_row(&self, sql: &str) -> Result<Option<Vec<Option<String>>>> {
        let rows = self
            .client
            .simple_query(sql)
            .await
            .with_context(|| format!("run {sql}"))?;
        for message in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                return Ok(Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ));
            }
        }
        Ok(None)
    }
}
