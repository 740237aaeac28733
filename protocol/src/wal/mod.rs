//! The WAL format, without I/O: file names, timeline history files, page and record headers,
//! the streaming segment validator and the per-segment summary.
//!
//! Mirrors `src/include/access/xlog_internal.h`, `xlogrecord.h`, `xact.h` and
//! `src/backend/access/transam/xlogreader.c` / `timeline.c` of PostgreSQL 13 to 18, as
//! described in PROTOCOL.md §6 (file naming), §7 (page and record format, CRC, end of WAL) and
//! §9 (version differences, which live in [`crate::version`]).
//!
//! - [`names`]: `WalFileName` (segments, `.partial`, `.history`, `.backup`).
//! - [`history`]: timeline history files.
//! - [`page`], [`record`]: page and record headers, the record CRC.
//! - [`xact`]: transaction ends and restore points, `TransactionId`, `TimestampTz`.
//! - [`validator`]: `SegmentValidator`, fed bytes in any chunking.
//! - [`summary`]: `SegmentSummary` and its one-line form.
//! - `testkit` (with the `testkit` feature): builders of synthetic WAL for tests.

pub mod history;
pub mod names;
pub mod page;
pub mod record;
pub mod summary;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod validator;
pub mod xact;

pub use history::{TimelineHistory, TimelineHistoryEntry};
pub use names::WalFileName;
pub use summary::{SegmentHead, SegmentSummary, SegmentTail, XactSummary};
pub use validator::{validate_segment, CarryOver, SegmentKind, SegmentValidator, ValidatorOptions};
pub use xact::{RestorePoint, TimestampTz, TransactionId, XactEvent, XactKind};
