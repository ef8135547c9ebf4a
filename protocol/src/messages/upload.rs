//! Client ↔ leader: the upload of one report and its acknowledgement.

use cairn_mpc::codec::{CodecError, Decode, Encode, Reader};
use cairn_mpc::secret::SecretVec;

use super::codec::{decode_ciphertext, encode_ciphertext, put_bytes, put_count};
use super::{Limits, MessageType, WireMessage};
use crate::auth::{ClientId, REPORT_TAG_LEN};
use crate::hpke::HpkeCiphertext;
use crate::ids::ReportId;
use crate::ids::TaskId;

/// A client's report: its shares for every aggregator.
#[derive(Debug)]
pub struct Report {
    /// The client's random report id.
    pub report_id: ReportId,
    /// The round the report belongs to.
    pub round: u32,
    /// The submitting client ([`crate::auth`]).
    pub client_id: ClientId,
    /// The client's tag for the leader ([`crate::auth::ClientKey::tag`]).
    pub leader_tag: [u8; REPORT_TAG_LEN],
    /// Public data of the validity scheme (the joint-randomness parts).
    pub public_share: Vec<u8>,
    /// The leader's input share (secret: zeroized on drop).
    pub leader_share: SecretVec<u8>,
    /// One HPKE ciphertext per helper, in helper order; each seals the helper's input
    /// share followed by the client's tag for that helper.
    pub helper_shares: Vec<HpkeCiphertext>,
}

/// Client → leader: one report.
#[derive(Debug)]
pub struct UploadRequest {
    /// The task.
    pub task_id: TaskId,
    /// The report.
    pub report: Report,
}

/// Leader → client: the report is stored and will be counted exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadResponse {
    /// The acknowledged report.
    pub report_id: ReportId,
}

impl WireMessage for UploadRequest {
    const TYPE: MessageType = MessageType::UploadRequest;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.task_id.0.encode(out);
        encode_report(&self.report, out);
    }

    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError> {
        Ok(UploadRequest {
            task_id: TaskId(r.read_array()?),
            report: decode_report(r, limits)?,
        })
    }
}

impl WireMessage for UploadResponse {
    const TYPE: MessageType = MessageType::UploadResponse;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.report_id.encode(out);
    }

    fn decode_body(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, CodecError> {
        Ok(UploadResponse {
            report_id: ReportId::decode_from(r)?,
        })
    }
}

/// Encodes a report alone (what a leader stores until the report is verified).
pub fn encode_report(report: &Report, out: &mut Vec<u8>) {
    // One allocation of the final size: a report is mostly its ~1 MiB leader share,
    // and growing the buffer by doubling copied it several times.
    out.reserve(report.encoded_len());
    report.report_id.encode(out);
    report.round.encode(out);
    report.client_id.0.encode(out);
    report.leader_tag.encode(out);
    put_bytes(&report.public_share, out);
    put_bytes(report.leader_share.expose_secret(), out);
    put_count(report.helper_shares.len(), out);
    for c in &report.helper_shares {
        encode_ciphertext(c, out);
    }
}

impl Report {
    /// The length of [`encode_report`]'s encoding.
    pub fn encoded_len(&self) -> usize {
        let ciphertexts: usize = self
            .helper_shares
            .iter()
            .map(|c| c.encapsulated_key.len() + 4 + c.payload.len())
            .sum();
        self.report_id.0.len()
            + 4
            + self.client_id.0.len()
            + self.leader_tag.len()
            + 4
            + self.public_share.len()
            + 4
            + self.leader_share.len()
            + 4
            + ciphertexts
    }
}

/// Decodes a report stored with [`encode_report`], under `limits`.
pub fn decode_report(r: &mut Reader<'_>, limits: &Limits) -> Result<Report, CodecError> {
    let view = ReportView::decode(r, limits)?;
    Ok(Report {
        report_id: view.report_id,
        round: view.round,
        client_id: view.client_id,
        leader_tag: view.leader_tag,
        public_share: view.public_share.to_vec(),
        leader_share: SecretVec::new(view.leader_share.to_vec()),
        helper_shares: view.helper_shares,
    })
}

/// A [`Report`] decoded without copying its shares: they stay slices of the bytes it
/// was decoded from (the helpers' ciphertexts, small, are copied).
pub struct ReportView<'a> {
    /// The client's random report id.
    pub report_id: ReportId,
    /// The round the report belongs to.
    pub round: u32,
    /// The submitting client.
    pub client_id: ClientId,
    /// The client's tag for the leader.
    pub leader_tag: [u8; REPORT_TAG_LEN],
    /// Public data of the validity scheme.
    pub public_share: &'a [u8],
    /// The leader's input share, in the clear (secret: the bytes it lies in must be
    /// wiped by their owner).
    pub leader_share: &'a [u8],
    /// One HPKE ciphertext per helper, in helper order.
    pub helper_shares: Vec<HpkeCiphertext>,
}

impl<'a> ReportView<'a> {
    /// Decodes a report ([`encode_report`]'s format) under `limits`.
    pub fn decode(r: &mut Reader<'a>, limits: &Limits) -> Result<Self, CodecError> {
        let report_id = ReportId::decode_from(r)?;
        let round = r.read_u32()?;
        let client_id = ClientId(r.read_array()?);
        let leader_tag = r.read_array()?;
        let public_share = r.read_bytes_with_len_prefix(limits.public_share)?;
        let leader_share = r.read_bytes_with_len_prefix(limits.leader_share)?;
        let count = r.read_len_prefix(limits.helpers)?;
        let mut helper_shares = Vec::with_capacity(count);
        for _ in 0..count {
            helper_shares.push(decode_ciphertext(r, limits.helper_plaintext())?);
        }
        Ok(Self {
            report_id,
            round,
            client_id,
            leader_tag,
            public_share,
            leader_share,
            helper_shares,
        })
    }
}

/// Leaves the leader's share out.
impl core::fmt::Debug for ReportView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReportView")
            .field("report_id", &self.report_id)
            .field("round", &self.round)
            .field("client_id", &self.client_id)
            .field("leader_share_len", &self.leader_share.len())
            .finish_non_exhaustive()
    }
}

/// An [`UploadRequest`] frame decoded without copying: the leader checks the report's
/// fields and stores `report_bytes`, the report's encoding ([`encode_report`]) as it
/// arrived, instead of copying its ~1 MiB share out of the frame and encoding it again.
pub struct UploadView<'a> {
    /// The task.
    pub task_id: TaskId,
    /// The report's fields.
    pub report: ReportView<'a>,
    /// The report's encoding: the frame after the header and the task id.
    pub report_bytes: &'a [u8],
}

/// Leaves the report's bytes out (they hold the leader's share).
impl core::fmt::Debug for UploadView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UploadView")
            .field("task_id", &self.task_id)
            .field("report", &self.report)
            .field("report_bytes_len", &self.report_bytes.len())
            .finish()
    }
}

impl<'a> UploadView<'a> {
    /// Decodes a whole frame (`version ‖ type ‖ body`) that must be an
    /// [`UploadRequest`], with the same checks as [`super::Message::decode`].
    pub fn decode(frame: &'a [u8], limits: &Limits) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame);
        if r.read_u8()? != super::WIRE_VERSION {
            return Err(CodecError::InvalidValue {
                what: "wire version",
            });
        }
        if r.read_u8()? != MessageType::UploadRequest as u8 {
            return Err(CodecError::InvalidValue {
                what: "message type",
            });
        }
        let task_id = TaskId(r.read_array()?);
        let mut span = r.clone();
        let report = ReportView::decode(&mut r, limits)?;
        r.finish()?;
        let report_bytes = span.read_bytes(span.remaining())?;
        Ok(Self {
            task_id,
            report,
            report_bytes,
        })
    }
}
