//! Wire messages.
//!
//! Every message travels as one frame: `version (1 byte) ‖ type (1 byte) ‖ body`,
//! encoded with the shared codec of `cairn-mpc` (little-endian fixed-width integers,
//! `u32`-length-prefixed vectors). Decoding never panics and rejects trailing bytes.
//! Each message is one struct with its own codec ([`WireMessage`]), in the module of
//! its exchange: [`upload`], [`job`], [`collect`], [`error`]. The byte-exact format is
//! specified by example in `protocol/testvectors/wire_v3.json` (DESIGN §12).
//!
//! Sizes come from the task. A decoder takes [`Limits`] (derived from the task's
//! dimension, aggregator count and validity scheme) and refuses any length above them
//! *before* allocating; the state machines then check exact sizes, so an oversize or
//! undersize report is refused with [`ErrorCode::WrongSize`].
//!
//! The flow of one round (DESIGN §3):
//!
//! ```text
//! client  ──UploadRequest──▶ leader                      (per report)
//! leader  ──JobInit────────▶ helper  ──JobResponse──▶    (verifier shares)
//! leader  ──JobContinue────▶ helper  ──JobContinueResponse──▶   (decisions)
//! collector ──CollectRequest──▶ leader ──AggregateShareRequest──▶ helpers
//!           ◀──CollectResponse── (one sealed aggregate share per aggregator)
//! ```

mod codec;
pub mod collect;
pub mod error;
pub mod job;
mod limits;
pub mod upload;

/// Why a frame does not decode ([`Message::decode`]).
pub use cairn_mpc::codec::CodecError;
use cairn_mpc::codec::Reader;

pub use collect::{
    AggregateShare, AggregateShareRequest, AggregateShareResponse, BudgetReceipt, CollectRequest,
    CollectResponse,
};
pub(crate) use collect::{decode_aggregate_share, encode_aggregate_share};
pub use error::{ErrorCode, ErrorMessage, MAX_ERROR_DETAIL};
pub use job::{JobContinue, JobContinueResponse, JobInit, JobResponse, PrepareResult, ReportShare};
pub use limits::{Inbound, Limits};
pub use upload::{
    Report, ReportView, UploadRequest, UploadResponse, UploadView, decode_report, encode_report,
};

/// The wire version every frame starts with. Version 2 added client identities and
/// tags to reports and ledger heads to the release exchange; version 3 a retry-after
/// advice to error messages, and task ids that leave the aggregators' HPKE keys out
/// (they rotate: `crate::keyring`).
pub const WIRE_VERSION: u8 = 3;

/// The type byte of each message, the second byte of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum MessageType {
    /// [`UploadRequest`].
    UploadRequest = 1,
    /// [`UploadResponse`].
    UploadResponse = 2,
    /// [`JobInit`].
    JobInit = 3,
    /// [`JobResponse`].
    JobResponse = 4,
    /// [`JobContinue`].
    JobContinue = 5,
    /// [`JobContinueResponse`].
    JobContinueResponse = 6,
    /// [`AggregateShareRequest`].
    AggregateShareRequest = 7,
    /// [`AggregateShareResponse`].
    AggregateShareResponse = 8,
    /// [`CollectRequest`].
    CollectRequest = 9,
    /// [`CollectResponse`].
    CollectResponse = 10,
    /// [`ErrorMessage`].
    Error = 11,
}

impl MessageType {
    /// Every type, in wire order.
    pub const ALL: [MessageType; 11] = [
        MessageType::UploadRequest,
        MessageType::UploadResponse,
        MessageType::JobInit,
        MessageType::JobResponse,
        MessageType::JobContinue,
        MessageType::JobContinueResponse,
        MessageType::AggregateShareRequest,
        MessageType::AggregateShareResponse,
        MessageType::CollectRequest,
        MessageType::CollectResponse,
        MessageType::Error,
    ];

    /// The type with wire value `byte`, if any.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as u8 == byte)
    }

    /// A short stable name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::UploadRequest => "upload_request",
            MessageType::UploadResponse => "upload_response",
            MessageType::JobInit => "job_init",
            MessageType::JobResponse => "job_response",
            MessageType::JobContinue => "job_continue",
            MessageType::JobContinueResponse => "job_continue_response",
            MessageType::AggregateShareRequest => "aggregate_share_request",
            MessageType::AggregateShareResponse => "aggregate_share_response",
            MessageType::CollectRequest => "collect_request",
            MessageType::CollectResponse => "collect_response",
            MessageType::Error => "error",
        }
    }
}

/// The codec of one message's body (what follows the version and type bytes).
pub trait WireMessage: Sized {
    /// The message's type byte.
    const TYPE: MessageType;

    /// Appends the body.
    fn encode_body(&self, out: &mut Vec<u8>);

    /// Reads the body, refusing lengths above `limits` before allocating.
    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError>;
}

/// Any frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// See [`UploadRequest`].
    UploadRequest(UploadRequest),
    /// See [`UploadResponse`].
    UploadResponse(UploadResponse),
    /// See [`JobInit`].
    JobInit(JobInit),
    /// See [`JobResponse`].
    JobResponse(JobResponse),
    /// See [`JobContinue`].
    JobContinue(JobContinue),
    /// See [`JobContinueResponse`].
    JobContinueResponse(JobContinueResponse),
    /// See [`AggregateShareRequest`].
    AggregateShareRequest(AggregateShareRequest),
    /// See [`AggregateShareResponse`].
    AggregateShareResponse(AggregateShareResponse),
    /// See [`CollectRequest`].
    CollectRequest(CollectRequest),
    /// See [`CollectResponse`].
    CollectResponse(CollectResponse),
    /// See [`ErrorMessage`].
    Error(ErrorMessage),
}

impl Message {
    /// Encodes the frame: version, type, body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![WIRE_VERSION, self.message_type() as u8];
        match self {
            Message::UploadRequest(m) => m.encode_body(&mut out),
            Message::UploadResponse(m) => m.encode_body(&mut out),
            Message::JobInit(m) => m.encode_body(&mut out),
            Message::JobResponse(m) => m.encode_body(&mut out),
            Message::JobContinue(m) => m.encode_body(&mut out),
            Message::JobContinueResponse(m) => m.encode_body(&mut out),
            Message::AggregateShareRequest(m) => m.encode_body(&mut out),
            Message::AggregateShareResponse(m) => m.encode_body(&mut out),
            Message::CollectRequest(m) => m.encode_body(&mut out),
            Message::CollectResponse(m) => m.encode_body(&mut out),
            Message::Error(m) => m.encode_body(&mut out),
        }
        out
    }

    /// Decodes one frame, refusing lengths above `limits` before allocating and
    /// rejecting trailing bytes. Never panics.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        if r.read_u8()? != WIRE_VERSION {
            return Err(CodecError::InvalidValue {
                what: "wire version",
            });
        }
        let ty = MessageType::from_u8(r.read_u8()?).ok_or(CodecError::InvalidValue {
            what: "message type",
        })?;
        let mut reader = r;
        let r = &mut reader;
        let message = match ty {
            MessageType::UploadRequest => {
                Message::UploadRequest(WireMessage::decode_body(r, limits)?)
            }
            MessageType::UploadResponse => {
                Message::UploadResponse(WireMessage::decode_body(r, limits)?)
            }
            MessageType::JobInit => Message::JobInit(WireMessage::decode_body(r, limits)?),
            MessageType::JobResponse => Message::JobResponse(WireMessage::decode_body(r, limits)?),
            MessageType::JobContinue => Message::JobContinue(WireMessage::decode_body(r, limits)?),
            MessageType::JobContinueResponse => {
                Message::JobContinueResponse(WireMessage::decode_body(r, limits)?)
            }
            MessageType::AggregateShareRequest => {
                Message::AggregateShareRequest(WireMessage::decode_body(r, limits)?)
            }
            MessageType::AggregateShareResponse => {
                Message::AggregateShareResponse(WireMessage::decode_body(r, limits)?)
            }
            MessageType::CollectRequest => {
                Message::CollectRequest(WireMessage::decode_body(r, limits)?)
            }
            MessageType::CollectResponse => {
                Message::CollectResponse(WireMessage::decode_body(r, limits)?)
            }
            MessageType::Error => Message::Error(WireMessage::decode_body(r, limits)?),
        };
        reader.finish()?;
        Ok(message)
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::UploadRequest(_) => MessageType::UploadRequest,
            Message::UploadResponse(_) => MessageType::UploadResponse,
            Message::JobInit(_) => MessageType::JobInit,
            Message::JobResponse(_) => MessageType::JobResponse,
            Message::JobContinue(_) => MessageType::JobContinue,
            Message::JobContinueResponse(_) => MessageType::JobContinueResponse,
            Message::AggregateShareRequest(_) => MessageType::AggregateShareRequest,
            Message::AggregateShareResponse(_) => MessageType::AggregateShareResponse,
            Message::CollectRequest(_) => MessageType::CollectRequest,
            Message::CollectResponse(_) => MessageType::CollectResponse,
            Message::Error(_) => MessageType::Error,
        }
    }

    /// A short name of the message type, for logs.
    pub fn name(&self) -> &'static str {
        self.message_type().name()
    }
}

#[cfg(test)]
mod tests;
