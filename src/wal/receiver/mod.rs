//! The streaming WAL receiver behind `receive-wal`: START_REPLICATION on the server's
//! physical slot, written into `streaming/<segment>.partial`, validated as it arrives,
//! renamed to the segment's name once complete (ARCHITECTURE.md "Data flows",
//! PROTOCOL.md §5).
//!
//! What it guarantees, in the order the bytes flow:
//! - **Start point** as pg_receivewal chooses it (PROTOCOL.md §5.7): the newest segment
//!   or `.partial` of the streaming directory, else the slot's `restart_lsn`, else the
//!   server's current position, always from a segment start.
//! - **Every byte validated**: each segment goes through a [`SegmentValidator`] as it
//!   arrives (page headers, every record's CRC-32C, the system identifier), with the
//!   state of the previous segment carried over so records that cross segments are
//!   checked too. A segment that fails stops the receiver with the error and stays
//!   `.partial` for inspection; it is never renamed.
//! - **Flush means durable**: a status update reports as flushed only bytes that were
//!   fsynced. When `synchronous_standby_names` names our application (or `*`), the
//!   receiver fsyncs and reports as soon as it has caught up with the server, so a
//!   synchronous commit returns only once its WAL is on our disk. Otherwise it fsyncs at
//!   each segment end and at most a second after data arrives.
//! - **Complete means renamed**: a segment gets its final name only after its last byte
//!   was validated and fsynced (fsync, rename, fsync of the directory). The next segment
//!   is created (allocated to full size) right away, so `streaming/` always holds a
//!   `.partial` and `archive-wal` can archive the segment just finished.
//! - **Timelines** are followed: at the end of a timeline the segment in progress stays
//!   `.partial`, the new timeline's `<tli>.history` is fetched with TIMELINE_HISTORY and
//!   stored in `streaming/` (where `archive-wal` picks it up), and streaming resumes at
//!   the switch point's segment on the new timeline.
//! - **Errors**: lost connections, server shutdowns and local I/O errors (a full disk)
//!   are retried with exponential backoff (1 s to 30 s), one log line per retry,
//!   restarting the current segment from its beginning. Errors that retrying cannot fix
//!   (invalid WAL, another cluster, WAL the server no longer has, a missing slot) end
//!   the receiver. SIGTERM and SIGINT end it cleanly: what was received is fsynced and
//!   the segment stays `.partial`, which is where the next run resumes.

pub mod segment;
pub mod start;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use barman_protocol::conn::IdentifySystem;
use barman_protocol::stream::wal::{StartReplication, WalEvent, WalStream};
use barman_protocol::wal::names::history_file_name;
use barman_protocol::wal::{CarryOver, SegmentValidator, TimelineHistory, ValidatorOptions};
use barman_protocol::WalSegmentSize;
use barman_protocol::{ConnInfo, ErrorKind, Lsn, ReplicationConnection, TimelineId, WalSegNo};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use crate::error::HintedError;
use crate::fsutil;
use crate::output::Output;
use segment::SegmentFile;
use start::{names_synchronous_standby, newest_local, parse_size_setting};

/// How often a status update is sent when nothing else asks for one (pg_receivewal's
/// default `--status-interval`).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// Without synchronous replication, received data is fsynced at most this long after it
/// arrived (and at every segment end).
pub const ASYNC_FLUSH_DELAY: Duration = Duration::from_secs(1);

/// With synchronous replication, data is fsynced when the receiver has caught up with the
/// server, or when this much is waiting while it catches up.
pub const SYNC_FLUSH_BYTES: u64 = 1 << 20;

/// The longest wait between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the receiver needs to know.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// The server's name (for messages).
    pub server: String,
    /// The replication connection, with `application_name` set.
    pub conninfo: ConnInfo,
    /// The application name the server sees (`streaming_archiver_name`).
    pub application_name: String,
    /// `streaming_wals_directory`.
    pub directory: PathBuf,
    /// `wals_directory`, where `.history` files may already be archived.
    pub archive_directory: Option<PathBuf>,
    /// The physical slot to stream from.
    pub slot_name: Option<String>,
    /// The slot's `restart_lsn` read over SQL (13 and 14, which lack READ_REPLICATION_SLOT).
    pub slot_restart_lsn: Option<Lsn>,
    /// The system identifier the WAL must carry (from `identity.json` or the server).
    pub system_identifier: Option<u64>,
    /// How often to send unasked status updates.
    pub status_interval: Duration,
}

/// Receives WAL until a signal (`Ok`) or an error that retrying cannot fix (`Err`).
pub async fn receive(settings: &ReceiverSettings, out: &mut Output) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    let mut state = StreamState::new(settings.system_identifier);
    let mut attempt: u32 = 0;
    loop {
        state.progressed = false;
        let ended = tokio::select! {
            r = session(settings, &mut state, out) => Ended::Session(r),
            _ = term.recv() => Ended::Signal("SIGTERM"),
            _ = int.recv() => Ended::Signal("SIGINT"),
        };
        // Whatever happened, what was received is made durable and stays `.partial`.
        let suspended = state.suspend(settings, out, false);
        let outcome = match ended {
            Ended::Signal(name) => {
                suspended?;
                out.info(&format!("{name} received. Terminate gracefully."));
                return Ok(());
            }
            Ended::Session(r) => suspended.and(r),
        };
        if state.progressed {
            attempt = 0;
        }
        let reason = match outcome {
            Ok(SessionEnd::ServerStopped) => "the server stopped streaming".to_string(),
            Err(e) if is_transient(&e) => format!("{e:#}"),
            Err(e) => return Err(explain(e, settings)),
        };
        attempt = attempt.saturating_add(1);
        let delay = backoff(attempt);
        out.warning(&format!(
            "receive-wal of server {}: {reason}; reconnecting in {} seconds (attempt {attempt})",
            settings.server,
            delay.as_secs()
        ));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = term.recv() => { out.info("SIGTERM received. Terminate gracefully."); return Ok(()); }
            _ = int.recv() => { out.info("SIGINT received. Terminate gracefully."); return Ok(()); }
        }
    }
}

enum Ended {
    Session(Result<SessionEnd>),
    Signal(&'static str),
}

/// How a session ended without an error.
enum SessionEnd {
    /// The server shut its WAL sender down (or ended a stream we did not stop).
    ServerStopped,
}

/// The wait before connection attempt `attempt` (1, 2, 4, ... up to [`MAX_BACKOFF`]).
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(5);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// Whether an error is worth retrying: connections lost or refused, servers shutting
/// down or busy, a slot still held by our previous session, local I/O errors (a full
/// disk). Invalid WAL, another cluster, missing WAL or slots, and authentication or
/// configuration problems are not.
pub fn is_transient(error: &anyhow::Error) -> bool {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<barman_protocol::Error>() {
            return match e.kind() {
                ErrorKind::Closed | ErrorKind::Io | ErrorKind::Timeout | ErrorKind::Protocol => {
                    true
                }
                ErrorKind::Db => e.code().is_some_and(|code| {
                    // object in use (the slot of a session that is still ending), admin
                    // shutdown / crash / cannot connect now, insufficient resources,
                    // connection exceptions.
                    code == "55006"
                        || code.starts_with("57P")
                        || code.starts_with("53")
                        || code.starts_with("08")
                }),
                _ => false,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
    }
    false
}

/// The server's errors that only the DBA can resolve, said with what to do: the slot was
/// dropped while streaming, or the server removed WAL the receiver still needs. Others
/// are returned as they are.
pub fn explain(error: anyhow::Error, settings: &ReceiverSettings) -> anyhow::Error {
    let server = &settings.server;
    let Some(db) = error
        .chain()
        .find_map(|c| c.downcast_ref::<barman_protocol::Error>())
        .and_then(|e| e.as_db_error())
    else {
        return error;
    };
    match (db.code(), &settings.slot_name) {
        // undefined_object: START_REPLICATION names a slot that is gone.
        ("42704", Some(slot)) if db.message().contains("replication slot") => HintedError::new(
            format!("replication slot '{slot}' does not exist on server '{server}'"),
            format!(
                "it was dropped while receive-wal was running: create it again with \
                     'barman receive-wal --create-slot {server}' and restart receive-wal; if \
                     the server has meanwhile removed WAL that receive-wal still needs, \
                     'barman receive-wal --reset {server}' moves it to the slot's position"
            ),
        )
        .into(),
        // undefined_file: the walsender's "requested WAL segment ... has already been
        // removed".
        ("58P01", _) if db.message().contains("has already been removed") => HintedError::new(
            format!(
                "server '{server}' has removed WAL that receive-wal still needs: {}",
                db.message()
            ),
            format!(
                "'barman receive-wal --reset {server}' moves receive-wal to the slot's (or \
                 the server's) current position; the WAL in between is lost to the archive, \
                 so take a new backup"
            ),
        )
        .into(),
        _ => error,
    }
}

/// An open segment with its validator.
struct OpenSegment {
    file: SegmentFile,
    validator: SegmentValidator,
    /// The carried-over state it started with, to restart it from its beginning.
    start_carry: Option<CarryOver>,
}

/// What survives reconnections: where to resume, the validator state, the open file.
struct StreamState {
    system_identifier: Option<u64>,
    seg_size: Option<WalSegmentSize>,
    /// Timeline and segment the next START_REPLICATION starts at.
    position: Option<(TimelineId, WalSegNo)>,
    /// Validator state for the segment at `position` (when the previous one was complete).
    carry: Option<CarryOver>,
    current: Option<OpenSegment>,
    written: Lsn,
    flushed: Lsn,
    /// Whether the current session received WAL (resets the backoff).
    progressed: bool,
}

impl StreamState {
    fn new(system_identifier: Option<u64>) -> StreamState {
        StreamState {
            system_identifier,
            seg_size: None,
            position: None,
            carry: None,
            current: None,
            written: Lsn::INVALID,
            flushed: Lsn::INVALID,
            progressed: false,
        }
    }

    fn seg_size(&self) -> Result<WalSegmentSize> {
        self.seg_size
            .ok_or_else(|| anyhow::anyhow!("the WAL segment size is not known yet"))
    }

    /// Closes the open segment, durable and `.partial`; streaming resumes at its start.
    /// With `remove_empty`, a segment created ahead of data that never came is removed
    /// (at the end of a timeline); otherwise it stays, marking where to resume.
    fn suspend(
        &mut self,
        settings: &ReceiverSettings,
        out: &mut Output,
        remove_empty: bool,
    ) -> Result<()> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        let timeline = open.file.timeline;
        let segno = open.file.segno;
        let written = open.file.written();
        let name = open.file.name().to_string();
        open.file.close(remove_empty)?;
        if written > 0 {
            out.info(&format!(
                "{}: receive-wal: not renaming \"{name}.partial\", segment is not complete",
                settings.server
            ));
        }
        self.position = Some((timeline, segno));
        self.carry = open.start_carry;
        Ok(())
    }

    /// Opens segment `segno` of the current timeline for writing from its beginning.
    fn open_segment(&mut self, settings: &ReceiverSettings, segno: WalSegNo) -> Result<()> {
        let seg_size = self.seg_size()?;
        let (timeline, _) = self
            .position
            .ok_or_else(|| anyhow::anyhow!("the stream position is not known"))?;
        let file = SegmentFile::open(&settings.directory, timeline, segno, seg_size)?;
        let carry = self.carry.take().filter(|c| c.next_segno() == segno);
        let mut options = ValidatorOptions::new(timeline, segno, seg_size)
            .system_identifier(self.system_identifier);
        if let Some(c) = &carry {
            options = options.carry_over(c.clone());
        }
        let validator = SegmentValidator::new(options)?;
        self.position = Some((timeline, segno));
        self.current = Some(OpenSegment {
            file,
            validator,
            start_carry: carry,
        });
        Ok(())
    }

    /// Writes and validates WAL from `start`, splitting it at segment boundaries.
    fn write(
        &mut self,
        settings: &ReceiverSettings,
        start: Lsn,
        data: &[u8],
        out: &mut Output,
    ) -> Result<()> {
        let seg_size = self.seg_size()?;
        let mut pos = start;
        let mut rest = data;
        while !rest.is_empty() {
            let segno = pos.segment_number(seg_size);
            let offset = pos.segment_offset(seg_size);
            let n = rest.len().min((seg_size.bytes() - offset) as usize);
            let (chunk, tail) = rest.split_at(n);
            if self.current.is_none() {
                anyhow::ensure!(
                    offset == 0,
                    "the server sent WAL from {pos}, in the middle of a segment, where a segment start was expected"
                );
                self.open_segment(settings, segno)?;
            }
            let open = self
                .current
                .as_mut()
                .expect("a segment was opened just above when none was");
            anyhow::ensure!(
                open.file.segno == segno,
                "the server sent WAL of segment {} while segment {} is being written",
                segno,
                open.file.segno
            );
            open.file.write_at(offset, chunk)?;
            match open.validator.feed(chunk) {
                Ok(None) => {}
                Ok(Some(_summary)) => self.finish_segment(settings, out)?,
                Err(e) => {
                    let path = open.file.partial_path();
                    let _ = open.file.sync();
                    return Err(anyhow::Error::new(e).context(format!(
                        "the WAL streamed from server '{}' failed validation; {} is kept for inspection and was not archived",
                        settings.server,
                        path.display()
                    )));
                }
            }
            pos = Lsn::new(pos.as_u64() + n as u64);
            rest = tail;
        }
        self.written = pos;
        self.progressed = true;
        Ok(())
    }

    /// The open segment is complete and valid: fsync, rename, and open the next one.
    fn finish_segment(&mut self, settings: &ReceiverSettings, out: &mut Output) -> Result<()> {
        let seg_size = self.seg_size()?;
        let open = self
            .current
            .take()
            .expect("finish_segment is called with an open segment");
        let timeline = open.file.timeline;
        let segno = open.file.segno;
        open.file.complete()?;
        let end = segno
            .end_lsn(seg_size)
            .ok_or_else(|| anyhow::anyhow!("segment {segno} ends past the WAL address space"))?;
        self.flushed = end;
        self.carry = open.validator.into_carry_over().ok();
        out.info(&format!(
            "{}: receive-wal: finished segment at {end} (timeline {timeline})",
            settings.server
        ));
        let Some(next) = segno.checked_add(1) else {
            return Ok(());
        };
        self.position = Some((timeline, next));
        // Create the next segment now: streaming/ always holds a `.partial`, so archive-wal
        // can archive the segment just finished.
        self.open_segment(settings, next)
    }

    /// fsyncs what was written.
    fn sync(&mut self) -> Result<()> {
        let Some(seg_size) = self.seg_size else {
            return Ok(());
        };
        if let Some(open) = &mut self.current {
            open.file.sync()?;
            if let Some(start) = open.file.segno.start_lsn(seg_size) {
                let durable = Lsn::new(start.as_u64() + u64::from(open.file.synced()));
                self.flushed = self.flushed.max(durable);
            }
        }
        Ok(())
    }

    fn unflushed(&self) -> u64 {
        self.written.as_u64().saturating_sub(self.flushed.as_u64())
    }
}

/// One connection: identify, find the start, stream timeline after timeline.
async fn session(
    settings: &ReceiverSettings,
    state: &mut StreamState,
    out: &mut Output,
) -> Result<SessionEnd> {
    let mut conn = ReplicationConnection::connect(&settings.conninfo)
        .await
        .with_context(|| format!("connect to server '{}' for streaming", settings.server))?;
    let id = conn.identify_system().await?;
    match state.system_identifier {
        Some(expected) if expected != id.system_id => anyhow::bail!(
            "server '{}' has system identifier {}, but the WAL of this server comes from system {expected}: refusing to mix clusters",
            settings.server,
            id.system_id
        ),
        _ => state.system_identifier = Some(id.system_id),
    }
    let seg_text = conn.show("wal_segment_size").await?;
    let seg_size = parse_size_setting(&seg_text)
        .and_then(|n| u32::try_from(n).ok())
        .and_then(|n| WalSegmentSize::new(n).ok())
        .ok_or_else(|| {
            anyhow::anyhow!("the server reported an invalid wal_segment_size {seg_text}")
        })?;
    if state.seg_size.is_some_and(|s| s != seg_size) {
        anyhow::bail!("the server's wal_segment_size changed to {seg_text}");
    }
    state.seg_size = Some(seg_size);
    let synchronous = names_synchronous_standby(
        &conn.show("synchronous_standby_names").await?,
        &settings.application_name,
    );
    if state.position.is_none() {
        state.position = Some(find_start(settings, &mut conn, &id, seg_size, out).await?);
    }
    let (timeline, _) = state.position.expect("the position was just set");
    anyhow::ensure!(
        timeline <= id.timeline,
        "starting timeline {timeline} is not present in server '{}' (its timeline is {})",
        settings.server,
        id.timeline
    );
    loop {
        let (timeline, segno) = state
            .position
            .expect("the position is set before streaming");
        if timeline.get() > 1 {
            store_history(settings, &mut conn, timeline, out).await?;
        }
        let start = segno
            .start_lsn(seg_size)
            .ok_or_else(|| anyhow::anyhow!("segment {segno} is past the WAL address space"))?;
        out.info(&format!(
            "{}: receive-wal: starting log streaming at {start} (timeline {timeline}){}",
            settings.server,
            if synchronous { ", synchronous" } else { "" }
        ));
        let mut request = StartReplication::new(start)
            .timeline(timeline)
            .status_interval(Some(settings.status_interval));
        if let Some(slot) = &settings.slot_name {
            request = request.slot(slot);
        }
        let mut stream = conn.start_replication(&request).await?;
        // Everything before the start is ours; stream_wal reports it as soon as the server
        // has shown it can send from there.
        state.written = state.written.max(start);
        state.flushed = state.flushed.max(start);
        stream.set_positions(start, start, Lsn::INVALID);
        let end = stream_wal(settings, state, &mut stream, synchronous, out).await?;
        drop(stream);
        match end {
            StreamEnd::EndOfTimeline {
                next_timeline,
                start,
            } => {
                anyhow::ensure!(
                    next_timeline > timeline,
                    "the server switched from timeline {timeline} to the older timeline {next_timeline}"
                );
                state.suspend(settings, out, true)?;
                // What was received past the switch point is not WAL of the new timeline.
                state.written = start;
                state.flushed = start;
                state.position = Some((next_timeline, start.segment_number(seg_size)));
                out.info(&format!(
                    "{}: receive-wal: switched to timeline {next_timeline} at {start}",
                    settings.server
                ));
            }
            StreamEnd::ServerStopped => return Ok(SessionEnd::ServerStopped),
        }
    }
}

enum StreamEnd {
    EndOfTimeline {
        next_timeline: TimelineId,
        start: Lsn,
    },
    ServerStopped,
}

/// The start point, as pg_receivewal chooses it.
async fn find_start(
    settings: &ReceiverSettings,
    conn: &mut ReplicationConnection,
    id: &IdentifySystem,
    seg_size: WalSegmentSize,
    out: &mut Output,
) -> Result<(TimelineId, WalSegNo)> {
    let files = list_files(&settings.directory)?;
    let (local, skipped) = newest_local(&files, seg_size);
    for file in skipped {
        out.warning(&format!(
            "segment file \"{}\" has incorrect size {}, skipping",
            file.name, file.size
        ));
    }
    if let Some(local) = local {
        if let Some(segno) = local.resume_segno() {
            return Ok((local.timeline, segno));
        }
    }
    if let Some(slot) = &settings.slot_name {
        let restart = if conn.server_version().major() >= 15 {
            match conn.read_slot(slot).await? {
                Some(info) => info
                    .restart_lsn
                    .map(|lsn| (info.restart_tli.unwrap_or(id.timeline), lsn)),
                None => None,
            }
        } else {
            settings.slot_restart_lsn.map(|lsn| (id.timeline, lsn))
        };
        if let Some((timeline, lsn)) = restart {
            return Ok((timeline, lsn.segment_number(seg_size)));
        }
    }
    Ok((id.timeline, id.xlogpos.segment_number(seg_size)))
}

/// The names and sizes of the regular files of a directory.
pub fn list_files(dir: &std::path::Path) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            files.push((entry.file_name().to_string_lossy().into_owned(), meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// Stores `<timeline>.history` in the streaming directory unless it is there or archived.
async fn store_history(
    settings: &ReceiverSettings,
    conn: &mut ReplicationConnection,
    timeline: TimelineId,
    out: &mut Output,
) -> Result<()> {
    let name = history_file_name(timeline);
    let local = settings.directory.join(&name);
    let archived = settings.archive_directory.as_ref().map(|d| d.join(&name));
    if local.exists() || archived.is_some_and(|p| p.exists()) {
        return Ok(());
    }
    let file = conn.timeline_history(timeline).await?;
    anyhow::ensure!(
        file.filename == name,
        "the server sent history file \"{}\" for timeline {timeline}",
        file.filename
    );
    let text = std::str::from_utf8(&file.content)
        .with_context(|| format!("the server's {name} is not text"))?;
    TimelineHistory::parse(timeline, text)
        .with_context(|| format!("the server's {name} is not a valid history file"))?;
    fsutil::write_durably(&local, &file.content)?;
    out.info(&format!(
        "{}: receive-wal: stored timeline history file {name}",
        settings.server
    ));
    Ok(())
}

/// Runs one START_REPLICATION until the stream ends.
async fn stream_wal(
    settings: &ReceiverSettings,
    state: &mut StreamState,
    stream: &mut WalStream<'_>,
    synchronous: bool,
    out: &mut Output,
) -> Result<StreamEnd> {
    let mut flush_at: Option<Instant> = None;
    let mut reported = false;
    loop {
        let event = tokio::select! {
            biased;
            event = stream.next() => event?,
            _ = sleep_until(flush_at) => {
                flush_at = None;
                state.sync()?;
                stream.set_positions(state.written, state.flushed, Lsn::INVALID);
                stream.send_status(false).await?;
                continue;
            }
        };
        // The first report (the start as flushed) waits for the server's first message,
        // unlike pg_receivewal's. A physical slot's restart_lsn follows what is reported,
        // backwards too: had the server already removed the WAL at the start, a report sent
        // with START_REPLICATION would move the slot back to WAL that no longer exists, and
        // `receive-wal --reset` would then find nothing to do.
        if !reported && matches!(event, Some(WalEvent::XLogData(_) | WalEvent::Keepalive(_))) {
            reported = true;
            stream.send_status(false).await?;
        }
        match event {
            Some(WalEvent::XLogData(x)) => {
                state.write(settings, x.wal_start(), x.data(), out)?;
                let caught_up = state.written >= x.wal_end();
                if synchronous && (caught_up || state.unflushed() >= SYNC_FLUSH_BYTES) {
                    state.sync()?;
                    flush_at = None;
                    stream.set_positions(state.written, state.flushed, Lsn::INVALID);
                    stream.send_status(false).await?;
                } else {
                    stream.set_positions(state.written, state.flushed, Lsn::INVALID);
                    if state.unflushed() > 0 && flush_at.is_none() {
                        flush_at = Some(Instant::now() + ASYNC_FLUSH_DELAY);
                    }
                }
            }
            Some(WalEvent::Keepalive(k)) => {
                if state.unflushed() > 0 && (synchronous || k.reply_requested()) {
                    state.sync()?;
                    flush_at = None;
                    stream.set_positions(state.written, state.flushed, Lsn::INVALID);
                    stream.send_status(false).await?;
                }
            }
            Some(WalEvent::EndOfTimeline {
                next_timeline,
                start,
            }) => {
                return Ok(StreamEnd::EndOfTimeline {
                    next_timeline,
                    start,
                })
            }
            Some(WalEvent::ServerStopped) | Some(WalEvent::Stopped) | None => {
                return Ok(StreamEnd::ServerStopped)
            }
            Some(_) => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn local_io_errors_are_retried_and_validation_errors_are_not() {
        let io = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("write streaming/000000010000000000000001.partial");
        assert!(is_transient(&io));
        let plain = anyhow::anyhow!("server 'pg' has system identifier 1");
        assert!(!is_transient(&plain));
    }
}
