//! START_REPLICATION (physical) as a stream of [`WalEvent`]s (PROTOCOL.md §5;
//! `src/backend/replication/walsender.c`, `src/bin/pg_basebackup/receivelog.c`).
//!
//! The stream answers keepalives that ask for a reply and sends a standby status update every
//! `status_interval`, both with the write/flush/apply positions the caller last set with
//! [`WalStream::set_positions`] (report as flushed only what is durable: a slot's restart_lsn
//! follows it). It ends with:
//! - [`WalEvent::EndOfTimeline`]: the server finished a historic timeline (CopyDone from the
//!   server, answered with ours, then the next timeline and its start position);
//! - [`WalEvent::Stopped`]: the caller asked to stop ([`WalStream::stop`]) and the server
//!   acknowledged; WAL still in flight is returned before it;
//! - [`WalEvent::ServerStopped`]: the server shut down the WAL sender (CommandComplete
//!   without CopyDone); the connection is then closed;
//! - an error: ErrorResponse, or a lost connection ([`crate::Error::is_closed`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::command::ReplicationCommand;
use crate::conn::{QueryResult, ReplicationConnection};
use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};
use crate::message::copy_data::{
    current_timestamp, standby_status_update, PrimaryKeepaliveBody, ReplicationMessage,
    XLogDataBody,
};
use crate::message::{frontend, BackendMessage};

/// What START_REPLICATION asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartReplication {
    /// The physical slot to stream from.
    pub slot_name: Option<String>,
    /// Where to start (by convention a segment boundary).
    pub start: Lsn,
    /// The timeline; `None` for the server's current one.
    pub timeline: Option<TimelineId>,
    /// How often to send a status update unasked (`None`: only when the server asks).
    pub status_interval: Option<Duration>,
}

impl StartReplication {
    /// From `start` on the current timeline, without a slot, with a status update every 10 s
    /// (pg_receivewal's default).
    pub fn new(start: Lsn) -> StartReplication {
        StartReplication {
            slot_name: None,
            start,
            timeline: None,
            status_interval: Some(Duration::from_secs(10)),
        }
    }

    /// Uses the physical slot `name`.
    pub fn slot(mut self, name: &str) -> StartReplication {
        self.slot_name = Some(name.to_owned());
        self
    }

    /// Streams `timeline`.
    pub fn timeline(mut self, timeline: TimelineId) -> StartReplication {
        self.timeline = Some(timeline);
        self
    }

    /// Sets the interval of unasked status updates (`None` to send them only when asked).
    pub fn status_interval(mut self, interval: Option<Duration>) -> StartReplication {
        self.status_interval = interval;
        self
    }
}

/// What a WAL stream produces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalEvent {
    /// WAL bytes; contiguous with the previous XLogData (checked).
    XLogData(XLogDataBody),
    /// A keepalive (already answered if it asked for a reply).
    Keepalive(PrimaryKeepaliveBody),
    /// The timeline ended: continue on `next_timeline` from `start` (its switch point).
    EndOfTimeline {
        /// The next timeline.
        next_timeline: TimelineId,
        /// Where it starts.
        start: Lsn,
    },
    /// The stream ended at the caller's request; the connection is usable again.
    Stopped,
    /// The server shut down its WAL sender; the connection is closed.
    ServerStopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Streaming,
    /// We sent CopyDone; draining until the server's.
    StopRequested,
    /// Both sides sent CopyDone; reading the result set and ReadyForQuery. Whether we asked.
    AfterCopy {
        client_stop: bool,
    },
    Done,
}

/// The WAL stream of one START_REPLICATION; see [`ReplicationConnection::start_replication`].
pub struct WalStream<'a> {
    conn: &'a mut ReplicationConnection,
    state: State,
    write: Lsn,
    flush: Lsn,
    apply: Lsn,
    interval: Option<Duration>,
    last_status: Instant,
    next_expected: Option<Lsn>,
    received: Lsn,
    pending_end: Option<WalEvent>,
}

impl std::fmt::Debug for WalStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalStream")
            .field("state", &self.state)
            .field("received", &self.received)
            .finish()
    }
}

impl<'a> WalStream<'a> {
    pub(crate) async fn start(
        conn: &'a mut ReplicationConnection,
        request: &StartReplication,
    ) -> Result<WalStream<'a>> {
        let command = ReplicationCommand::StartReplication {
            slot_name: request.slot_name.clone(),
            start: request.start,
            timeline: request.timeline,
        };
        let sql = command.to_sql(conn.server_version())?;
        conn.send_query(&sql).await?;
        let mut stream = WalStream {
            conn,
            state: State::Streaming,
            write: Lsn::INVALID,
            flush: Lsn::INVALID,
            apply: Lsn::INVALID,
            interval: request.status_interval,
            last_status: Instant::now(),
            next_expected: None,
            received: request.start,
            pending_end: None,
        };
        match stream.conn.read().await? {
            BackendMessage::CopyBothResponse(_) => Ok(stream),
            // A historic timeline asked for at its switch point: nothing to stream.
            m @ BackendMessage::RowDescription(_) => {
                stream.state = State::AfterCopy { client_stop: false };
                let event = stream.read_end(Some(m)).await?;
                stream.pending_end = Some(event);
                Ok(stream)
            }
            BackendMessage::ErrorResponse(e) => {
                stream.state = State::Done;
                Err(stream.conn.fail(e).await)
            }
            other => {
                stream.state = State::Done;
                Err(stream.conn.unexpected(&other, "START_REPLICATION"))
            }
        }
    }

    /// Sets the positions reported in status updates: last byte + 1 written, durably flushed
    /// and applied (`Lsn::INVALID` = not reported).
    pub fn set_positions(&mut self, write: Lsn, flush: Lsn, apply: Lsn) {
        self.write = write;
        self.flush = flush;
        self.apply = apply;
    }

    /// The end of the WAL received so far.
    pub fn received(&self) -> Lsn {
        self.received
    }

    /// Sends a status update now; `reply_requested` asks the server for a keepalive back.
    pub async fn send_status(&mut self, reply_requested: bool) -> Result<()> {
        if self.state != State::Streaming {
            return Ok(());
        }
        standby_status_update(
            self.write,
            self.flush,
            self.apply,
            current_timestamp(),
            reply_requested,
            self.conn.write_buf(),
        );
        self.last_status = Instant::now();
        self.conn.flush().await
    }

    /// Asks the server to stop (CopyDone). Keep calling [`next`](Self::next): WAL in flight
    /// comes first, then [`WalEvent::Stopped`].
    pub async fn stop(&mut self) -> Result<()> {
        if self.state != State::Streaming {
            return Ok(());
        }
        frontend::copy_done(self.conn.write_buf());
        self.state = State::StopRequested;
        self.conn.flush().await
    }

    /// The next event; `None` once the stream is over.
    pub async fn next(&mut self) -> Result<Option<WalEvent>> {
        match self.step().await {
            Ok(event) => Ok(event),
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    async fn read_or_tick(&mut self) -> Result<Option<BackendMessage>> {
        let deadline = match (self.state, self.interval) {
            (State::Streaming, Some(interval)) => Some(self.last_status + interval),
            _ => None,
        };
        match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, self.conn.read()).await {
                Ok(message) => message.map(Some),
                Err(_) => {
                    self.send_status(false).await?;
                    Ok(None)
                }
            },
            None => self.conn.read().await.map(Some),
        }
    }

    async fn step(&mut self) -> Result<Option<WalEvent>> {
        loop {
            match self.state {
                State::Done => return Ok(self.pending_end.take()),
                State::AfterCopy { .. } => {
                    let event = self.read_end(None).await?;
                    return Ok(Some(event));
                }
                State::Streaming | State::StopRequested => {}
            }
            let Some(message) = self.read_or_tick().await? else {
                continue;
            };
            match message {
                BackendMessage::CopyData(payload) => match ReplicationMessage::parse(&payload)? {
                    ReplicationMessage::XLogData(x) => {
                        if let Some(expected) = self.next_expected {
                            if x.wal_start() != expected {
                                self.conn.mark_broken("non-contiguous WAL");
                                return Err(Error::protocol(format!(
                                    "the server sent WAL from {} where {expected} was expected",
                                    x.wal_start()
                                )));
                            }
                        }
                        let end = x.data_end().ok_or_else(|| {
                            Error::protocol("XLogData runs past the largest WAL position")
                        })?;
                        self.next_expected = Some(end);
                        self.received = self.received.max(end);
                        return Ok(Some(WalEvent::XLogData(x)));
                    }
                    ReplicationMessage::PrimaryKeepalive(k) => {
                        if k.reply_requested() {
                            self.send_status(false).await?;
                        }
                        return Ok(Some(WalEvent::Keepalive(k)));
                    }
                },
                BackendMessage::CopyDone => {
                    let client_stop = self.state == State::StopRequested;
                    if !client_stop {
                        // End of a historic timeline: answer with our CopyDone.
                        frontend::copy_done(self.conn.write_buf());
                        self.conn.flush().await?;
                    }
                    self.state = State::AfterCopy { client_stop };
                }
                BackendMessage::CommandComplete(_) => {
                    // Server shutdown: CommandComplete without CopyDone, then the socket closes.
                    self.state = State::Done;
                    self.conn.mark_broken("the server shut down its WAL sender");
                    return Ok(Some(WalEvent::ServerStopped));
                }
                BackendMessage::ErrorResponse(e) => {
                    self.state = State::Done;
                    return Err(self.conn.fail(e).await);
                }
                other => return Err(self.conn.unexpected(&other, "START_REPLICATION")),
            }
        }
    }

    /// After both CopyDones: an optional next-timeline result set, tags, ReadyForQuery.
    async fn read_end(&mut self, first: Option<BackendMessage>) -> Result<WalEvent> {
        let client_stop = matches!(self.state, State::AfterCopy { client_stop: true });
        let mut next = first;
        let mut timeline_end = None;
        loop {
            let message = match next.take() {
                Some(m) => m,
                None => self.conn.read().await?,
            };
            match message {
                m @ BackendMessage::RowDescription(_) => {
                    let r = self
                        .conn
                        .read_result_set(Some(m), "START_REPLICATION")
                        .await?;
                    timeline_end = Some(next_timeline(&r)?);
                }
                BackendMessage::CommandComplete(_) => {}
                BackendMessage::ReadyForQuery(_) => break,
                BackendMessage::ErrorResponse(e) => return Err(self.conn.fail(e).await),
                other => return Err(self.conn.unexpected(&other, "START_REPLICATION")),
            }
        }
        self.state = State::Done;
        match (timeline_end, client_stop) {
            (Some((next_timeline, start)), _) => Ok(WalEvent::EndOfTimeline {
                next_timeline,
                start,
            }),
            (None, true) => Ok(WalEvent::Stopped),
            (None, false) => Err(Error::protocol(
                "the server ended START_REPLICATION without a next timeline",
            )),
        }
    }
}

impl Drop for WalStream<'_> {
    fn drop(&mut self) {
        if self.state != State::Done {
            self.conn
                .mark_broken("a START_REPLICATION stream was dropped before its end");
        }
    }
}

fn next_timeline(r: &QueryResult) -> Result<(TimelineId, Lsn)> {
    if r.len() != 1 {
        return Err(Error::protocol(format!(
            "the end-of-timeline result has {} rows instead of one",
            r.len()
        )));
    }
    let tli = r
        .timeline(0, "next_tli")?
        .ok_or_else(|| Error::protocol("the end-of-timeline result has no next timeline"))?;
    let start = r.parse(0, "next_tli_startpos")?;
    Ok((tli, start))
}
