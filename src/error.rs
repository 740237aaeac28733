//! Exit codes and the errors that choose them.
//!
//! Barman's conventions (BARMAN.md §1.8): 0 success, 1 when the operation failed
//! (any `ERROR:` line), 2 for bad usage or a bad configuration. The codes are stable:
//! scripts and monitoring depend on them.

use std::fmt;

use crate::config::ConfigError;

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// The operation failed.
    Failure,
    /// Bad usage or configuration.
    Usage,
    /// A command-specific code (`get-wal` uses 3 for a bad WAL name or destination,
    /// as Barman does).
    Code(u8),
}

impl ExitStatus {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Code(n) => n,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// A problem with how barman was invoked or set up (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl UsageError {
    /// A usage error with a hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

impl From<ConfigError> for UsageError {
    fn from(e: ConfigError) -> Self {
        UsageError {
            message: e.message,
            hint: e.hint,
        }
    }
}

/// An operation that failed (exit code 1) for a reason the user has to act on, with
/// what to do next: printed as the error, then a `HINT:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintedError {
    /// What failed.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl HintedError {
    /// A failure with a hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> HintedError {
        HintedError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for HintedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HintedError {}

/// The exit status for an error that ended a run, and its hint.
pub fn classify(error: &anyhow::Error) -> (ExitStatus, Option<String>) {
    if let Some(e) = error.downcast_ref::<UsageError>() {
        return (ExitStatus::Usage, e.hint.clone());
    }
    if let Some(e) = error.downcast_ref::<ConfigError>() {
        return (ExitStatus::Usage, e.hint.clone());
    }
    if let Some(e) = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<HintedError>())
    {
        return (ExitStatus::Failure, Some(e.hint.clone()));
    }
    (ExitStatus::Failure, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hinted_failure_exits_1_with_its_hint_under_any_context() {
        let e = anyhow::Error::new(HintedError::new("slot gone", "create it"))
            .context("receive-wal of server pg stopped");
        assert_eq!(
            classify(&e),
            (ExitStatus::Failure, Some("create it".to_string()))
        );
        assert_eq!(
            format!("{e:#}"),
            "receive-wal of server pg stopped: slot gone"
        );
        assert_eq!(
            classify(&anyhow::anyhow!("plain")),
            (ExitStatus::Failure, None)
        );
    }
}
