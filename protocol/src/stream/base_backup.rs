//! BASE_BACKUP as a stream of [`BaseBackupEvent`]s, for both wire formats (PROTOCOL.md §3.3–3.5;
//! `src/backend/backup/basebackup.c`, `basebackup_copy.c`, and `ReceiveTarFile` /
//! `ReceiveBackupManifest` / `ReceiveArchiveStreamChunk` of `src/bin/pg_basebackup`).
//!
//! - 13–14: one CopyOutResponse per tablespace (user tablespaces first, the data directory
//!   last), then one for the manifest; the archives are not named by the server (we name them
//!   `<oid>.tar` and `base.tar` as pg_basebackup does) and lack the tar end-of-archive blocks,
//!   which this stream appends as a final `Data` event so that consumers see complete tar
//!   files from every version. Progress is reported once at the end of each archive, counted
//!   as bytes received.
//! - 15+: one CopyOutResponse; CopyData typed `n` (archive), `d` (data), `p` (progress), `m`
//!   (manifest follows).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::command::{BaseBackupOptions, Manifest, ReplicationCommand};
use crate::conn::{QueryResult, ReplicationConnection};
use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};
use crate::message::copy_data::BaseBackupMessage;
use crate::message::BackendMessage;

/// The two 512-byte zero blocks that end a tar archive.
const TAR_TRAILER: [u8; 1024] = [0; 1024];

/// One row of the tablespace list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    /// The tablespace OID; `None` for the main data directory.
    pub oid: Option<u32>,
    /// The tablespace's directory on the server; `None` for the main data directory.
    pub location: Option<String>,
    /// Its size in kB, when PROGRESS was requested.
    pub size_kb: Option<u64>,
}

impl Tablespace {
    /// True for the main data directory.
    pub fn is_base(&self) -> bool {
        self.oid.is_none()
    }
}

/// Where a backup starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupEnd {
    /// The start position (the checkpoint's REDO location).
    pub start_lsn: Lsn,
    /// Its timeline.
    pub start_timeline: TimelineId,
    /// The end position: WAL up to here must be replayed for consistency.
    pub end_lsn: Lsn,
    /// Its timeline.
    pub end_timeline: TimelineId,
}

/// What a BASE_BACKUP produces, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaseBackupEvent {
    /// First event: the start position and the tablespaces (data directory last).
    Begin {
        /// The backup's start position.
        start_lsn: Lsn,
        /// Its timeline.
        timeline: TimelineId,
        /// The tablespace list.
        tablespaces: Vec<Tablespace>,
    },
    /// A new archive starts; `Data` events until the next `Archive`, `Manifest` or `End`.
    Archive {
        /// `base.tar`, `16395.tar`, or with the compression suffix (`base.tar.gz`).
        name: String,
        /// The tablespace it holds.
        tablespace: Tablespace,
    },
    /// Bytes of the current archive (a tar stream, compressed if server compression is on).
    Data(Bytes),
    /// Cumulative archive bytes processed so far.
    Progress(u64),
    /// Bytes of the backup manifest (JSON), in order.
    Manifest(Bytes),
    /// Last event: the end position. The connection is usable again.
    End(BackupEnd),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the start position and tablespace list.
    Header,
    /// 13–14: between COPYs; the index of the next archive.
    LegacyBetween(usize),
    /// 13–14: inside the COPY of archive `index`.
    LegacyArchive(usize),
    /// 13–14: inside the manifest's COPY.
    LegacyManifest,
    /// 15+: waiting for the CopyOutResponse.
    BeforeCopy,
    /// 15+: inside the COPY; whether the manifest has started, whether an archive has.
    InCopy {
        manifest: bool,
        archive: bool,
    },
    /// After the archives: the end position.
    Trailer,
    Done,
}

/// The event stream of one BASE_BACKUP; see [`ReplicationConnection::base_backup`].
pub struct BaseBackupStream<'a> {
    conn: &'a mut ReplicationConnection,
    state: State,
    generic: bool,
    manifest: bool,
    start: Option<(Lsn, TimelineId)>,
    tablespaces: Vec<Tablespace>,
    pending: VecDeque<BaseBackupEvent>,
    received: u64,
}

impl std::fmt::Debug for BaseBackupStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseBackupStream")
            .field("state", &self.state)
            .field("received", &self.received)
            .finish()
    }
}

impl<'a> BaseBackupStream<'a> {
    pub(crate) async fn start(
        conn: &'a mut ReplicationConnection,
        options: &BaseBackupOptions,
    ) -> Result<BaseBackupStream<'a>> {
        let version = conn.server_version();
        let sql = ReplicationCommand::BaseBackup(options.clone()).to_sql(version)?;
        conn.send_query(&sql).await?;
        Ok(BaseBackupStream {
            conn,
            state: State::Header,
            generic: version.has_generic_options(),
            manifest: options.manifest != Manifest::No,
            start: None,
            tablespaces: Vec::new(),
            pending: VecDeque::new(),
            received: 0,
        })
    }

    /// The next event; `None` after `End`. After an error the stream is over (the
    /// connection stays usable if the server sent a non-fatal ErrorResponse).
    pub async fn next(&mut self) -> Result<Option<BaseBackupEvent>> {
        match self.step().await {
            Ok(event) => Ok(event),
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    async fn step(&mut self) -> Result<Option<BaseBackupEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            match self.state {
                State::Done => return Ok(None),
                State::Header => return self.read_header().await.map(Some),
                State::Trailer => return self.read_trailer().await.map(Some),
                State::LegacyBetween(index) => match self.conn.read().await? {
                    BackendMessage::CopyOutResponse(_) if index < self.tablespaces.len() => {
                        let tablespace = self.tablespaces[index].clone();
                        let name = match tablespace.oid {
                            Some(oid) => format!("{oid}.tar"),
                            None => "base.tar".to_owned(),
                        };
                        self.state = State::LegacyArchive(index);
                        return Ok(Some(BaseBackupEvent::Archive { name, tablespace }));
                    }
                    BackendMessage::CopyOutResponse(_) if self.manifest => {
                        self.state = State::LegacyManifest;
                    }
                    m @ BackendMessage::RowDescription(_) => {
                        return self.finish(Some(m)).await.map(Some);
                    }
                    BackendMessage::ErrorResponse(e) => return Err(self.conn.fail(e).await),
                    other => return Err(self.conn.unexpected(&other, "BASE_BACKUP")),
                },
                State::LegacyArchive(index) => match self.conn.read().await? {
                    BackendMessage::CopyData(data) => {
                        self.received += data.len() as u64;
                        return Ok(Some(BaseBackupEvent::Data(data)));
                    }
                    BackendMessage::CopyDone => {
                        self.state = State::LegacyBetween(index + 1);
                        self.received += TAR_TRAILER.len() as u64;
                        self.pending
                            .push_back(BaseBackupEvent::Progress(self.received));
                        return Ok(Some(BaseBackupEvent::Data(Bytes::from_static(
                            &TAR_TRAILER,
                        ))));
                    }
                    BackendMessage::ErrorResponse(e) => return Err(self.conn.fail(e).await),
                    other => return Err(self.conn.unexpected(&other, "BASE_BACKUP")),
                },
                State::LegacyManifest => match self.conn.read().await? {
                    BackendMessage::CopyData(data) => {
                        return Ok(Some(BaseBackupEvent::Manifest(data)))
                    }
                    BackendMessage::CopyDone => {
                        self.manifest = false;
                        self.state = State::LegacyBetween(self.tablespaces.len());
                    }
                    BackendMessage::ErrorResponse(e) => return Err(self.conn.fail(e).await),
                    other => return Err(self.conn.unexpected(&other, "BASE_BACKUP")),
                },
                State::BeforeCopy => match self.conn.read().await? {
                    BackendMessage::CopyOutResponse(_) => {
                        self.state = State::InCopy {
                            manifest: false,
                            archive: false,
                        }
                    }
                    BackendMessage::ErrorResponse(e) => return Err(self.conn.fail(e).await),
                    other => return Err(self.conn.unexpected(&other, "BASE_BACKUP")),
                },
                State::InCopy { manifest, archive } => match self.conn.read().await? {
                    BackendMessage::CopyData(payload) => {
                        match BaseBackupMessage::parse(&payload)? {
                            BaseBackupMessage::NewArchive { name, location } => {
                                if manifest {
                                    return Err(Error::protocol(
                                        "BASE_BACKUP sent a new archive after the manifest",
                                    ));
                                }
                                self.state = State::InCopy {
                                    manifest,
                                    archive: true,
                                };
                                let tablespace = self.tablespace_at(&location);
                                return Ok(Some(BaseBackupEvent::Archive { name, tablespace }));
                            }
                            BaseBackupMessage::Data(data) if manifest => {
                                return Ok(Some(BaseBackupEvent::Manifest(data)))
                            }
                            BaseBackupMessage::Data(data) if archive => {
                                self.received += data.len() as u64;
                                return Ok(Some(BaseBackupEvent::Data(data)));
                            }
                            BaseBackupMessage::Data(_) => {
                                return Err(Error::protocol(
                                    "BASE_BACKUP sent data before the first archive",
                                ))
                            }
                            BaseBackupMessage::Progress(done) => {
                                return Ok(Some(BaseBackupEvent::Progress(done)))
                            }
                            BaseBackupMessage::Manifest => {
                                self.state = State::InCopy {
                                    manifest: true,
                                    archive,
                                };
                            }
                        }
                    }
                    BackendMessage::CopyDone => self.state = State::Trailer,
                    BackendMessage::ErrorResponse(e) => return Err(self.conn.fail(e).await),
                    other => return Err(self.conn.unexpected(&other, "BASE_BACKUP")),
                },
            }
        }
    }

    /// The tablespace whose location the server named (`""` = the data directory).
    fn tablespace_at(&self, location: &str) -> Tablespace {
        let found = self.tablespaces.iter().find(|t| match &t.location {
            Some(l) => l == location,
            None => location.is_empty(),
        });
        found.cloned().unwrap_or(Tablespace {
            oid: None,
            location: (!location.is_empty()).then(|| location.to_owned()),
            size_kb: None,
        })
    }

    async fn read_header(&mut self) -> Result<BaseBackupEvent> {
        let start = self.conn.read_result_set(None, "BASE_BACKUP").await?;
        let (start_lsn, timeline) = position(&start, "start")?;
        let list = self.conn.read_result_set(None, "BASE_BACKUP").await?;
        let mut tablespaces = Vec::with_capacity(list.len());
        for row in 0..list.len() {
            tablespaces.push(Tablespace {
                oid: list.parse_opt(row, "spcoid")?,
                location: list.text(row, "spclocation")?,
                size_kb: list.parse_opt(row, "size")?,
            });
        }
        self.start = Some((start_lsn, timeline));
        self.tablespaces = tablespaces.clone();
        self.state = if self.generic {
            State::BeforeCopy
        } else {
            State::LegacyBetween(0)
        };
        Ok(BaseBackupEvent::Begin {
            start_lsn,
            timeline,
            tablespaces,
        })
    }

    async fn read_trailer(&mut self) -> Result<BaseBackupEvent> {
        self.finish(None).await
    }

    async fn finish(&mut self, first: Option<BackendMessage>) -> Result<BaseBackupEvent> {
        let end = self.conn.read_result_set(first, "BASE_BACKUP").await?;
        let (end_lsn, end_timeline) = position(&end, "end")?;
        self.conn.read_ready("BASE_BACKUP").await?;
        self.state = State::Done;
        let (start_lsn, start_timeline) = self
            .start
            .ok_or_else(|| Error::protocol("BASE_BACKUP ended before its start position"))?;
        Ok(BaseBackupEvent::End(BackupEnd {
            start_lsn,
            start_timeline,
            end_lsn,
            end_timeline,
        }))
    }
}

impl Drop for BaseBackupStream<'_> {
    fn drop(&mut self) {
        if self.state != State::Done {
            self.conn
                .mark_broken("a BASE_BACKUP stream was dropped before its end");
        }
    }
}

/// `recptr`, `tli` of a start or end position result set.
fn position(r: &QueryResult, which: &str) -> Result<(Lsn, TimelineId)> {
    if r.len() != 1 {
        return Err(Error::protocol(format!(
            "BASE_BACKUP {which} position has {} rows instead of one",
            r.len()
        )));
    }
    let lsn = r.parse(0, "recptr")?;
    let tli = r
        .timeline(0, "tli")?
        .ok_or_else(|| Error::protocol(format!("BASE_BACKUP {which} position has no timeline")))?;
    Ok((lsn, tli))
}
