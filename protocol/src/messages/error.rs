//! Error codes and the error message.

use cairn_mpc::codec::{CodecError, Encode, Reader};

use super::codec::put_bytes;
use super::{Limits, MessageType, WireMessage};

/// Longest error detail string, in bytes.
pub const MAX_ERROR_DETAIL: usize = 512;

/// Error codes carried in [`ErrorMessage`] and per-report rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The bytes are not a well-formed message.
    BadMessage = 1,
    /// The task id is not one this node serves.
    UnknownTask = 2,
    /// The client (its credential and tag) or peer is not authorised for this task.
    Unauthorized = 3,
    /// The round no longer accepts reports (closed, released or expired).
    RoundClosed = 4,
    /// This report id was seen before.
    Replay = 5,
    /// A share, proof or ciphertext has the wrong length for the task.
    WrongSize = 6,
    /// The validity proof did not verify (one opaque reason by design).
    ProofFailed = 7,
    /// A sealed share did not open.
    DecryptFailed = 8,
    /// The release would exceed the task's privacy budget.
    BudgetExceeded = 9,
    /// The round has fewer valid reports than the task requires.
    NotEnoughReports = 10,
    /// The node is busy: retry later with the same report id.
    Busy = 11,
    /// The aggregators disagree on the round's report set (jobs still pending).
    Mismatch = 12,
    /// An unknown aggregation job or round.
    UnknownJob = 13,
    /// An internal error (storage); retry later.
    Internal = 14,
    /// This client already submitted another report for the round (one per round).
    AlreadySubmitted = 15,
    /// A peer's privacy ledger records more releases than this aggregator's: this
    /// ledger may have been rolled back, so nothing is released until it is resolved.
    LedgerRollback = 16,
    /// A helper's answer to its leader: the leader's ledger records more releases than
    /// the helper's would after this one. Either the leader released a round the helper
    /// has not (a collect in flight, or abandoned), or the helper's ledger was rolled
    /// back; only the leader can tell which, and it answers the collector with
    /// [`ErrorCode::Busy`] or [`ErrorCode::LedgerRollback`].
    LedgerBehind = 17,
}

impl ErrorCode {
    /// Whether a client or peer should retry the same request later.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::Busy | ErrorCode::Internal | ErrorCode::Mismatch
        )
    }

    /// A short stable name, used as a metrics label and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownTask => "unknown_task",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RoundClosed => "round_closed",
            ErrorCode::Replay => "replay",
            ErrorCode::WrongSize => "wrong_size",
            ErrorCode::ProofFailed => "proof_failed",
            ErrorCode::DecryptFailed => "decrypt_failed",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::NotEnoughReports => "not_enough_reports",
            ErrorCode::Busy => "busy",
            ErrorCode::Mismatch => "mismatch",
            ErrorCode::UnknownJob => "unknown_job",
            ErrorCode::Internal => "internal",
            ErrorCode::AlreadySubmitted => "already_submitted",
            ErrorCode::LedgerRollback => "ledger_rollback",
            ErrorCode::LedgerBehind => "ledger_behind",
        }
    }

    /// The code for a frame that does not decode: a length above the task's limits is
    /// [`ErrorCode::WrongSize`] (an oversize report), anything else
    /// [`ErrorCode::BadMessage`].
    pub fn for_decode_error(e: &CodecError) -> Self {
        match e {
            CodecError::LengthTooLarge { .. } => ErrorCode::WrongSize,
            _ => ErrorCode::BadMessage,
        }
    }

    /// The code with wire value `v`, if any.
    pub fn from_u16(v: u16) -> Option<Self> {
        use ErrorCode::*;
        Some(match v {
            1 => BadMessage,
            2 => UnknownTask,
            3 => Unauthorized,
            4 => RoundClosed,
            5 => Replay,
            6 => WrongSize,
            7 => ProofFailed,
            8 => DecryptFailed,
            9 => BudgetExceeded,
            10 => NotEnoughReports,
            11 => Busy,
            12 => Mismatch,
            13 => UnknownJob,
            14 => Internal,
            15 => AlreadySubmitted,
            16 => LedgerRollback,
            17 => LedgerBehind,
            _ => return None,
        })
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer to any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// What went wrong.
    pub code: ErrorCode,
    /// A human-readable detail (never secret material), at most
    /// [`MAX_ERROR_DETAIL`] bytes.
    pub detail: String,
    /// How long the sender asks to be left alone before a retry, in milliseconds (0:
    /// no advice). A leader answering [`ErrorCode::Busy`] sets it; a requester treats
    /// it as a lower bound on its own backoff, capped by its own policy, since a
    /// dishonest sender could ask for anything.
    pub retry_after_ms: u32,
}

impl ErrorMessage {
    /// An error with no retry advice.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after_ms: 0,
        }
    }
}

impl WireMessage for ErrorMessage {
    const TYPE: MessageType = MessageType::Error;

    fn encode_body(&self, out: &mut Vec<u8>) {
        (self.code as u16).encode(out);
        let detail = truncate_utf8(&self.detail, MAX_ERROR_DETAIL);
        put_bytes(detail.as_bytes(), out);
        self.retry_after_ms.encode(out);
    }

    fn decode_body(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, CodecError> {
        let code = decode_error_code(r)?;
        let detail = r.read_bytes_with_len_prefix(MAX_ERROR_DETAIL)?;
        let detail = core::str::from_utf8(detail)
            .map_err(|_| CodecError::InvalidValue {
                what: "error detail (not UTF-8)",
            })?
            .to_owned();
        let retry_after_ms = r.read_u32()?;
        Ok(ErrorMessage {
            code,
            detail,
            retry_after_ms,
        })
    }
}

/// Reads an error code; an unknown value is an error.
pub(super) fn decode_error_code(r: &mut Reader<'_>) -> Result<ErrorCode, CodecError> {
    ErrorCode::from_u16(r.read_u16()?).ok_or(CodecError::InvalidValue { what: "error code" })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
