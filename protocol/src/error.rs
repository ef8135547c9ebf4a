//! The refusal every party answers with: a wire error code and a detail.

use crate::messages::ErrorCode;

/// A refusal: a wire error code and a human-readable detail for logs and the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Reject {
    /// The code sent to the peer.
    pub code: ErrorCode,
    /// What happened, without secrets.
    pub detail: String,
}

impl Reject {
    /// A refusal with `code` and `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// A storage failure: retriable [`ErrorCode::Internal`].
    pub fn storage(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, format!("storage: {e}"))
    }
}

impl From<ErrorCode> for Reject {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.as_str())
    }
}
