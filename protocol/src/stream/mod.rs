//! The two long-running replication commands as pull-based streams over a borrowed
//! [`ReplicationConnection`](crate::ReplicationConnection): each `next()` reads at most what
//! one event needs, so a slow consumer slows the socket instead of growing memory.
//!
//! - [`base_backup`]: BASE_BACKUP, both wire formats (13–14 and 15+);
//! - [`wal`]: START_REPLICATION, with status updates and the end of a timeline.

pub mod base_backup;
pub mod wal;
