//! The replication connection: a physical walsender session (`replication=true`) spoken
//! natively, without libpq.
//!
//! [`ReplicationConnection::connect`] opens it (hosts in order, TLS, authentication; see
//! `startup`). Simple commands return typed results decoded from their text columns, whatever
//! type each version declares (PROTOCOL.md §1.5, §2, §9). BASE_BACKUP and START_REPLICATION
//! return streams that borrow the connection ([`crate::stream`]). Notices are kept (the last
//! [`MAX_NOTICES`]) for the caller to take.

mod socket;
mod startup;
pub mod tls;

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::command::{BaseBackupOptions, ReplicationCommand, ServerVersion};
use crate::conninfo::{ConnInfo, Target};
use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};
use crate::message::backend::{DataRowBody, FieldDescription};
use crate::message::{frontend, BackendMessage, DbError};
use crate::stream::base_backup::BaseBackupStream;
use crate::stream::wal::{StartReplication, WalStream};

use socket::Framed;

/// How many notices are kept before the oldest are dropped.
pub const MAX_NOTICES: usize = 100;

/// The result of IDENTIFY_SYSTEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifySystem {
    /// The cluster's system identifier.
    pub system_id: u64,
    /// The current timeline (on a standby, the one being replayed).
    pub timeline: TimelineId,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
    /// The database (NULL for a physical connection).
    pub dbname: Option<String>,
}

/// The result of TIMELINE_HISTORY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistoryFile {
    /// The file name (`00000002.history`).
    pub filename: String,
    /// The file's bytes, as on the server.
    pub content: Bytes,
}

/// The result of CREATE_REPLICATION_SLOT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// The slot's name.
    pub slot_name: String,
    /// The position WAL is reserved from (physical slots with RESERVE_WAL), if any.
    pub consistent_point: Option<Lsn>,
}

/// The result of READ_REPLICATION_SLOT for an existing slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// `physical` or `logical`.
    pub slot_type: String,
    /// The oldest WAL the slot holds, if it holds any.
    pub restart_lsn: Option<Lsn>,
    /// The timeline of `restart_lsn`.
    pub restart_tli: Option<TimelineId>,
}

/// One result set of a simple query, values as the server's text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResult {
    columns: Vec<FieldDescription>,
    rows: Vec<DataRowBody>,
    tag: String,
}

impl QueryResult {
    /// The columns.
    pub fn columns(&self) -> &[FieldDescription] {
        &self.columns
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The CommandComplete tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                Error::protocol(format!("the {} result has no column \"{name}\"", self.tag))
            })
    }

    /// The raw bytes of column `name` in row `row` (`None` for NULL).
    pub fn value(&self, row: usize, name: &str) -> Result<Option<Bytes>> {
        let index = self.column_index(name)?;
        let row = self
            .rows
            .get(row)
            .ok_or_else(|| Error::protocol(format!("the {} result has no row {row}", self.tag)))?;
        Ok(row.get(index))
    }

    /// Column `name` of row `row` as text (`None` for NULL).
    pub fn text(&self, row: usize, name: &str) -> Result<Option<String>> {
        match self.value(row, name)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| {
                Error::protocol(format!("column \"{name}\" of {} is not UTF-8", self.tag))
            }),
        }
    }

    /// Column `name` of row `row`, which must not be NULL, parsed with `FromStr`.
    pub fn parse<T: std::str::FromStr>(&self, row: usize, name: &str) -> Result<T> {
        self.parse_opt(row, name)?
            .ok_or_else(|| Error::protocol(format!("column \"{name}\" of {} is NULL", self.tag)))
    }

    /// Column `name` of row `row` parsed with `FromStr`, `None` for NULL.
    pub fn parse_opt<T: std::str::FromStr>(&self, row: usize, name: &str) -> Result<Option<T>> {
        match self.text(row, name)? {
            None => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| {
                Error::protocol(format!(
                    "column \"{name}\" of {} has an invalid value \"{text}\"",
                    self.tag
                ))
            }),
        }
    }

    /// A timeline column (int4 or int8 depending on the version, PROTOCOL.md §9).
    pub(crate) fn timeline(&self, row: usize, name: &str) -> Result<Option<TimelineId>> {
        match self.parse_opt::<u32>(row, name)? {
            None => Ok(None),
            Some(0) => Err(Error::protocol(format!(
                "column \"{name}\" of {} is timeline 0",
                self.tag
            ))),
            Some(n) => TimelineId::new(n).map(Some),
        }
    }
}

/// A physical replication connection.
pub struct ReplicationConnection {
    framed: Framed,
    parameters: HashMap<String, String>,
    process_id: Option<i32>,
    version: ServerVersion,
    target: Target,
    notices: VecDeque<DbError>,
    /// Set when the session is in an unknown state (a stream dropped mid-way, an I/O or
    /// protocol error): further commands are refused.
    broken: Option<String>,
}

impl std::fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationConnection")
            .field("target", &self.target.to_string())
            .field("version", &self.version)
            .field("process_id", &self.process_id)
            .finish()
    }
}

impl ReplicationConnection {
    /// Opens a physical replication connection (`replication=true`), trying each host of
    /// `info` in order.
    pub async fn connect(info: &ConnInfo) -> Result<ReplicationConnection> {
        let started = startup::connect(info, startup::SessionKind::PhysicalReplication).await?;
        let version_text = started
            .parameters
            .get("server_version")
            .ok_or_else(|| Error::protocol("the server did not report server_version"))?;
        let version = ServerVersion::parse(version_text)?;
        Ok(ReplicationConnection {
            framed: started.framed,
            version,
            process_id: started.process_id,
            target: started.target,
            notices: started.notices.into_iter().collect(),
            parameters: started.parameters,
            broken: None,
        })
    }

    /// The server's version, from its `server_version` parameter.
    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    /// A run-time parameter the server reported (`server_version`, `in_hot_standby`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// The walsender's process id.
    pub fn process_id(&self) -> Option<i32> {
        self.process_id
    }

    /// The host this connection reached.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// True when the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.framed.socket.is_tls()
    }

    /// Takes the notices and warnings received so far.
    pub fn take_notices(&mut self) -> Vec<DbError> {
        self.notices.drain(..).collect()
    }

    pub(crate) fn push_notice(&mut self, notice: DbError) {
        if self.notices.len() == MAX_NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(notice);
    }

    pub(crate) fn mark_broken(&mut self, why: &str) {
        if self.broken.is_none() {
            self.broken = Some(why.to_owned());
        }
    }

    fn check_usable(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(Error::usage(format!(
                "the replication connection cannot be used any more: {why}"
            ))),
            None => Ok(()),
        }
    }

    /// The next message, with notices and parameter changes handled on the way. An I/O or
    /// protocol error leaves the connection unusable.
    pub(crate) async fn read(&mut self) -> Result<BackendMessage> {
        loop {
            let message = match self.framed.read().await {
                Ok(m) => m,
                Err(e) => {
                    self.mark_broken(&e.to_string());
                    return Err(e);
                }
            };
            match message {
                BackendMessage::NoticeResponse(n) => self.push_notice(n),
                BackendMessage::ParameterStatus(p) => {
                    self.parameters
                        .insert(p.name().to_owned(), p.value().to_owned());
                }
                BackendMessage::NotificationResponse(_) => {}
                other => return Ok(other),
            }
        }
    }

    /// Writes a frontend message into the send buffer (sent by [`flush`](Self::flush)).
    pub(crate) fn write_buf(&mut self) -> &mut bytes::BytesMut {
        &mut self.framed.write_buf
    }

    pub(crate) async fn flush(&mut self) -> Result<()> {
        let result = self.framed.flush().await;
        if let Err(e) = &result {
            self.mark_broken(&e.to_string());
        }
        result
    }

    /// The server reported an error: read up to ReadyForQuery (unless it was FATAL) so the
    /// session stays usable, and return it.
    pub(crate) async fn fail(&mut self, db: DbError) -> Error {
        if db.is_fatal() {
            self.mark_broken(&db.to_string());
            return Error::db(db);
        }
        loop {
            match self.read().await {
                Ok(BackendMessage::ReadyForQuery(_)) => return Error::db(db),
                Ok(_) => continue,
                Err(_) => return Error::db(db),
            }
        }
    }

    pub(crate) fn unexpected(&mut self, message: &BackendMessage, during: &str) -> Error {
        let e = Error::protocol(format!(
            "unexpected {} message from the server during {during}",
            message.name()
        ));
        self.mark_broken(&e.to_string());
        e
    }

    /// Sends one command (simple query protocol).
    pub(crate) async fn send_query(&mut self, sql: &str) -> Result<()> {
        self.check_usable()?;
        frontend::query(sql, &mut self.framed.write_buf)?;
        self.flush().await
    }

    /// Reads one result set: optional RowDescription, DataRows, CommandComplete. `first` is a
    /// message already read.
    pub(crate) async fn read_result_set(
        &mut self,
        first: Option<BackendMessage>,
        during: &str,
    ) -> Result<QueryResult> {
        let mut result = QueryResult::default();
        let mut next = first;
        loop {
            let message = match next.take() {
                Some(m) => m,
                None => self.read().await?,
            };
            match message {
                BackendMessage::RowDescription(r) => result.columns = r.fields().to_vec(),
                BackendMessage::DataRow(row) => {
                    if row.len() != result.columns.len() {
                        return Err(Error::protocol(format!(
                            "a row of {} has {} values for {} columns",
                            during,
                            row.len(),
                            result.columns.len()
                        )));
                    }
                    result.rows.push(row)
                }
                BackendMessage::CommandComplete(c) => {
                    result.tag = c.tag().to_owned();
                    return Ok(result);
                }
                BackendMessage::ErrorResponse(e) => return Err(self.fail(e).await),
                other => return Err(self.unexpected(&other, during)),
            }
        }
    }

    /// Waits for ReadyForQuery.
    pub(crate) async fn read_ready(&mut self, during: &str) -> Result<()> {
        loop {
            match self.read().await? {
                BackendMessage::ReadyForQuery(_) => return Ok(()),
                BackendMessage::ErrorResponse(e) => return Err(self.fail(e).await),
                // The tag of START_REPLICATION after START_STREAMING, for instance.
                BackendMessage::CommandComplete(_) => continue,
                other => return Err(self.unexpected(&other, during)),
            }
        }
    }

    /// Runs a query (replication command or, on a `replication=database` session, SQL) and
    /// returns its result sets. Statements that COPY are refused.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.send_query(sql).await?;
        let mut results = Vec::new();
        let mut pending_error = None;
        loop {
            match self.read().await? {
                BackendMessage::ReadyForQuery(_) => break,
                BackendMessage::EmptyQueryResponse => {}
                BackendMessage::ErrorResponse(e) => {
                    if e.is_fatal() {
                        self.mark_broken(&e.to_string());
                        return Err(Error::db(e));
                    }
                    pending_error = Some(e);
                }
                m @ (BackendMessage::RowDescription(_)
                | BackendMessage::DataRow(_)
                | BackendMessage::CommandComplete(_)) => {
                    results.push(self.read_result_set(Some(m), "a query").await?);
                }
                other => return Err(self.unexpected(&other, "a simple query")),
            }
        }
        match pending_error {
            Some(e) => Err(Error::db(e)),
            None => Ok(results),
        }
    }

    /// Runs a command that returns at most one result set.
    pub async fn execute(&mut self, command: &ReplicationCommand) -> Result<QueryResult> {
        let sql = command.to_sql(self.version)?;
        let mut results = self.simple_query(&sql).await?;
        match results.len() {
            0 => Ok(QueryResult::default()),
            1 => Ok(results.remove(0)),
            n => Err(Error::protocol(format!(
                "{} returned {n} result sets instead of one",
                command.tag()
            ))),
        }
    }

    /// `UPLOAD_MANIFEST` (17+): send the `backup_manifest` of the backup that the next
    /// `BASE_BACKUP (INCREMENTAL)` of this session builds on. The server checks the manifest
    /// (and that WAL summaries cover the time since that backup) when the incremental
    /// backup starts.
    pub async fn upload_manifest(&mut self, manifest: &[u8]) -> Result<()> {
        let sql = ReplicationCommand::UploadManifest.to_sql(self.version)?;
        self.send_query(&sql).await?;
        match self.read().await? {
            BackendMessage::CopyInResponse(_) => {}
            BackendMessage::ErrorResponse(e) => return Err(self.fail(e).await),
            other => return Err(self.unexpected(&other, "UPLOAD_MANIFEST")),
        }
        for chunk in manifest.chunks(64 * 1024) {
            frontend::copy_data(chunk, self.write_buf());
            self.flush().await?;
        }
        frontend::copy_done(self.write_buf());
        self.flush().await?;
        self.read_ready("UPLOAD_MANIFEST").await
    }

    /// IDENTIFY_SYSTEM.
    pub async fn identify_system(&mut self) -> Result<IdentifySystem> {
        let r = self.execute(&ReplicationCommand::IdentifySystem).await?;
        one_row(&r)?;
        Ok(IdentifySystem {
            system_id: r.parse(0, "systemid")?,
            timeline: r
                .timeline(0, "timeline")?
                .ok_or_else(|| Error::protocol("IDENTIFY_SYSTEM returned no timeline"))?,
            xlogpos: r.parse(0, "xlogpos")?,
            dbname: r.text(0, "dbname")?,
        })
    }

    /// `SHOW name`: the setting's value as text, with its unit (`16MB`).
    pub async fn show(&mut self, name: &str) -> Result<String> {
        let r = self
            .execute(&ReplicationCommand::Show {
                name: name.to_owned(),
            })
            .await?;
        one_row(&r)?;
        let column = r
            .columns()
            .first()
            .map(|c| c.name.clone())
            .ok_or_else(|| Error::protocol("SHOW returned no column"))?;
        r.text(0, &column)?
            .ok_or_else(|| Error::protocol(format!("SHOW {name} returned NULL")))
    }

    /// TIMELINE_HISTORY: the history file of `timeline`. Its content is taken as raw bytes on
    /// every version (13–14 declare it bytea but send the file as is).
    pub async fn timeline_history(&mut self, timeline: TimelineId) -> Result<TimelineHistoryFile> {
        let r = self
            .execute(&ReplicationCommand::TimelineHistory { timeline })
            .await?;
        one_row(&r)?;
        Ok(TimelineHistoryFile {
            filename: r
                .text(0, "filename")?
                .ok_or_else(|| Error::protocol("TIMELINE_HISTORY returned no file name"))?,
            content: r
                .value(0, "content")?
                .ok_or_else(|| Error::protocol("TIMELINE_HISTORY returned no content"))?,
        })
    }

    /// CREATE_REPLICATION_SLOT ... PHYSICAL, in the syntax of the server's version.
    pub async fn create_physical_slot(
        &mut self,
        slot_name: &str,
        temporary: bool,
        reserve_wal: bool,
    ) -> Result<CreatedSlot> {
        let r = self
            .execute(&ReplicationCommand::CreatePhysicalSlot {
                slot_name: slot_name.to_owned(),
                temporary,
                reserve_wal,
            })
            .await?;
        one_row(&r)?;
        let consistent_point: Option<Lsn> = r.parse_opt(0, "consistent_point")?;
        Ok(CreatedSlot {
            slot_name: r
                .text(0, "slot_name")?
                .unwrap_or_else(|| slot_name.to_owned()),
            consistent_point: consistent_point.filter(|l| l.is_valid()),
        })
    }

    /// DROP_REPLICATION_SLOT, with WAIT when `wait` is true.
    pub async fn drop_slot(&mut self, slot_name: &str, wait: bool) -> Result<()> {
        self.execute(&ReplicationCommand::DropSlot {
            slot_name: slot_name.to_owned(),
            wait,
        })
        .await?;
        Ok(())
    }

    /// READ_REPLICATION_SLOT (15+): `None` when the slot does not exist. On 13 and 14 this
    /// command does not exist and a usage error is returned: read `pg_replication_slots` over
    /// an ordinary SQL connection instead.
    pub async fn read_slot(&mut self, slot_name: &str) -> Result<Option<SlotInfo>> {
        let r = self
            .execute(&ReplicationCommand::ReadSlot {
                slot_name: slot_name.to_owned(),
            })
            .await?;
        one_row(&r)?;
        let Some(slot_type) = r.text(0, "slot_type")? else {
            return Ok(None);
        };
        Ok(Some(SlotInfo {
            slot_type,
            restart_lsn: r.parse_opt(0, "restart_lsn")?,
            restart_tli: r.timeline(0, "restart_tli")?,
        }))
    }

    /// Starts BASE_BACKUP and returns its event stream; the connection is usable again once
    /// the stream has returned its `End` event.
    pub async fn base_backup(
        &mut self,
        options: &BaseBackupOptions,
    ) -> Result<BaseBackupStream<'_>> {
        BaseBackupStream::start(self, options).await
    }

    /// Starts START_REPLICATION and returns its stream of WAL; the connection is usable again
    /// once the stream has ended (end of timeline or client stop).
    pub async fn start_replication(&mut self, request: &StartReplication) -> Result<WalStream<'_>> {
        WalStream::start(self, request).await
    }

    /// Sends Terminate and closes the connection.
    pub async fn close(mut self) -> Result<()> {
        frontend::terminate(&mut self.framed.write_buf);
        let result = self.framed.flush().await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.framed.socket).await;
        result
    }
}

fn one_row(r: &QueryResult) -> Result<()> {
    if r.len() == 1 {
        Ok(())
    } else {
        Err(Error::protocol(format!(
            "{} returned {} rows instead of one",
            if r.tag().is_empty() {
                "the command"
            } else {
                r.tag()
            },
            r.len()
        )))
    }
}
