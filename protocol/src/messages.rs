//! Wire messages.
//!
//! Every message travels as one frame: `version (1 byte) ‖ type (1 byte) ‖ body`,
//! encoded with the shared codec of `cairn-mpc` (little-endian fixed-width integers,
//! `u32`-length-prefixed vectors). Decoding never panics and rejects trailing bytes.
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

use cairn_mpc::codec::{CodecError, Decode, Encode, Reader};
use cairn_mpc::secret::SecretVec;

use crate::auth::{ClientId, REPORT_TAG_LEN};
use crate::config::TaskId;
use crate::hpke::{HPKE_KEY_LEN, HPKE_TAG_LEN, HpkeCiphertext};
use crate::ids::{JobId, ReportId};
use crate::ledger::LedgerHead;

/// The wire version every frame starts with. Version 2 added client identities and
/// tags to reports and ledger heads to the release exchange.
pub const WIRE_VERSION: u8 = 2;
/// Longest error detail string, in bytes.
pub const MAX_ERROR_DETAIL: usize = 512;

/// Upper bounds on the lengths a decoder accepts, derived from the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a report's public share.
    pub public_share: usize,
    /// Bytes of a report's leader share.
    pub leader_share: usize,
    /// Bytes of one helper's input share of the validity scheme. What the client seals
    /// to the helper is this share followed by the helper's report tag
    /// ([`Limits::helper_plaintext`]).
    pub helper_share: usize,
    /// Number of helpers (aggregators − 1).
    pub helpers: usize,
    /// Reports in one aggregation job.
    pub reports_per_job: usize,
    /// Bytes of one verifier share.
    pub verifier_share: usize,
    /// Bytes of one plaintext aggregate share (sealed adds the HPKE tag).
    pub aggregate_share: usize,
}

impl Limits {
    /// Bytes a client seals to each helper: the helper's input share and its tag.
    pub fn helper_plaintext(&self) -> usize {
        self.helper_share.saturating_add(REPORT_TAG_LEN)
    }

    /// The largest frame any message may take under these limits. Saturates rather
    /// than overflowing. A transport should read no more than the frames its peer
    /// may send ([`Limits::max_inbound_frame_len`]).
    pub fn max_frame_len(&self) -> usize {
        [
            Inbound::LeaderFromClients,
            Inbound::LeaderFromHelpers,
            Inbound::HelperFromLeader,
            Inbound::ClientFromLeader,
            Inbound::CollectorFromLeader,
        ]
        .into_iter()
        .map(|i| self.max_inbound_frame_len(i))
        .max()
        .unwrap_or(1024)
    }

    /// The largest frame a party may receive from the peers of `inbound`: a client's
    /// upload is not a collect response, so a leader reading uploads does not accept
    /// frames the size of 64-report jobs.
    pub fn max_inbound_frame_len(&self, inbound: Inbound) -> usize {
        let sealed_helper = self
            .helper_plaintext()
            .saturating_add(HPKE_KEY_LEN + HPKE_TAG_LEN + 4);
        let report = 128usize
            .saturating_add(self.public_share)
            .saturating_add(self.leader_share)
            .saturating_add(sealed_helper.saturating_mul(self.helpers));
        let job_init = 64usize.saturating_add(
            self.reports_per_job.saturating_mul(
                96usize
                    .saturating_add(self.public_share)
                    .saturating_add(sealed_helper),
            ),
        );
        let job_resp = 64usize.saturating_add(
            self.reports_per_job
                .saturating_mul(self.verifier_share.saturating_add(32)),
        );
        let sealed_aggregate = self
            .aggregate_share
            .saturating_add(HPKE_KEY_LEN + HPKE_TAG_LEN + 192);
        let collect = 64usize.saturating_add(sealed_aggregate.saturating_mul(self.helpers + 1));
        let small = 1024;
        match inbound {
            Inbound::LeaderFromClients => report.max(small),
            Inbound::LeaderFromHelpers => job_resp.max(sealed_aggregate).max(small),
            Inbound::HelperFromLeader => job_init.max(small),
            Inbound::ClientFromLeader => small,
            Inbound::CollectorFromLeader => collect.max(small),
        }
    }
}

/// Who receives frames from whom, for [`Limits::max_inbound_frame_len`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// The leader's server: uploads from clients, collect requests from the collector.
    LeaderFromClients,
    /// The leader's answers from helpers: job responses and aggregate shares.
    LeaderFromHelpers,
    /// A helper's server: jobs and aggregate-share requests from the leader.
    HelperFromLeader,
    /// A client's answers: acknowledgements and errors.
    ClientFromLeader,
    /// The collector's answers: collect responses and errors.
    CollectorFromLeader,
}

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

    fn from_u16(v: u16) -> Option<Self> {
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
            _ => return None,
        })
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// One report's material for one helper inside a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportShare {
    /// The report id.
    pub report_id: ReportId,
    /// The submitting client.
    pub client_id: ClientId,
    /// The report's public share.
    pub public_share: Vec<u8>,
    /// The helper's sealed input share, exactly as the client sent it.
    pub sealed_share: HpkeCiphertext,
}

/// Leader → helper: verify these reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInit {
    /// The task.
    pub task_id: TaskId,
    /// The job.
    pub job_id: JobId,
    /// The round all reports belong to.
    pub round: u32,
    /// The reports.
    pub reports: Vec<ReportShare>,
}

/// A helper's outcome for one report of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareResult {
    /// The helper's verifier share, to be combined by the leader.
    Verifier {
        /// The report.
        report_id: ReportId,
        /// The helper's verifier share.
        verifier_share: Vec<u8>,
    },
    /// The helper refused the report before verification.
    Rejected {
        /// The report.
        report_id: ReportId,
        /// Why.
        code: ErrorCode,
    },
}

impl PrepareResult {
    /// The report this result is about.
    pub fn report_id(&self) -> ReportId {
        match self {
            PrepareResult::Verifier { report_id, .. }
            | PrepareResult::Rejected { report_id, .. } => *report_id,
        }
    }
}

/// Helper → leader: one result per report of the job, in the job's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResponse {
    /// The job.
    pub job_id: JobId,
    /// Results, one per report, in order.
    pub results: Vec<PrepareResult>,
}

/// Leader → helper: the joint decision; add exactly these reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContinue {
    /// The task.
    pub task_id: TaskId,
    /// The job.
    pub job_id: JobId,
    /// The round.
    pub round: u32,
    /// The reports all aggregators accepted; every other report of the job is dropped.
    pub accepted: Vec<ReportId>,
}

/// Helper → leader: the job's accepted reports are in the helper's aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContinueResponse {
    /// The job.
    pub job_id: JobId,
    /// How many reports the helper added (equal to the leader's count).
    pub accepted_count: u32,
}

/// Leader → helper: release your aggregate share of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateShareRequest {
    /// The task.
    pub task_id: TaskId,
    /// The round.
    pub round: u32,
    /// How many reports the leader counts in the round.
    pub report_count: u32,
    /// SHA-256 over the sorted accepted report ids: both sides must agree.
    pub report_set_digest: [u8; 32],
    /// The leader's current ledger head (after its own release of the round): a
    /// helper whose ledger records less refuses ([`ErrorCode::LedgerRollback`]).
    pub leader_ledger: LedgerHead,
    /// Whether the leader had released the round before this request (a retry): a
    /// helper that disagrees refuses ([`crate::aggregator::PeerLedger`]).
    pub leader_released_before: bool,
}

/// The privacy-budget state an aggregator reports with its share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetReceipt {
    /// ρ this release cost.
    pub rho_spent: f64,
    /// ρ spent by the task so far, this release included.
    pub rho_total: f64,
    /// ε (at the task's δ) spent so far.
    pub epsilon_total: f64,
    /// ε left in the budget.
    pub epsilon_remaining: f64,
}

/// An aggregator's sealed aggregate share of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateShare {
    /// Which aggregator (0 = leader).
    pub aggregator_index: u8,
    /// The reports the share covers.
    pub report_count: u32,
    /// The aggregator's own budget accounting after this release.
    pub receipt: BudgetReceipt,
    /// The aggregator's ledger head after this release.
    pub ledger: LedgerHead,
    /// The share, sealed to the collector. The index, the count, the receipt and the
    /// ledger head are in its associated data ([`crate::aggregator::aggregate_aad`]),
    /// so nobody on the way (the leader included) can rewrite them.
    pub sealed_share: HpkeCiphertext,
}

/// Helper → leader: the helper's sealed aggregate share.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateShareResponse {
    /// The round.
    pub round: u32,
    /// The share.
    pub share: AggregateShare,
    /// The helper's current ledger head.
    pub helper_ledger: LedgerHead,
    /// Whether the helper had released the round before this request.
    pub released_before: bool,
}

/// Collector → leader: close and release a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectRequest {
    /// The task.
    pub task_id: TaskId,
    /// The round.
    pub round: u32,
}

/// Leader → collector: every aggregator's sealed share of the round.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectResponse {
    /// The round.
    pub round: u32,
    /// Reports in the aggregate.
    pub report_count: u32,
    /// One share per aggregator, leader first.
    pub shares: Vec<AggregateShare>,
}

/// An error answer to any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// What went wrong.
    pub code: ErrorCode,
    /// A human-readable detail (never secret material), at most
    /// [`MAX_ERROR_DETAIL`] bytes.
    pub detail: String,
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
        let mut out = vec![WIRE_VERSION, self.type_byte()];
        match self {
            Message::UploadRequest(m) => {
                m.task_id.0.encode(&mut out);
                encode_report(&m.report, &mut out);
            }
            Message::UploadResponse(m) => m.report_id.encode(&mut out),
            Message::JobInit(m) => {
                m.task_id.0.encode(&mut out);
                m.job_id.encode(&mut out);
                m.round.encode(&mut out);
                put_count(m.reports.len(), &mut out);
                for r in &m.reports {
                    r.report_id.encode(&mut out);
                    r.client_id.0.encode(&mut out);
                    put_bytes(&r.public_share, &mut out);
                    encode_ciphertext(&r.sealed_share, &mut out);
                }
            }
            Message::JobResponse(m) => {
                m.job_id.encode(&mut out);
                put_count(m.results.len(), &mut out);
                for r in &m.results {
                    match r {
                        PrepareResult::Verifier {
                            report_id,
                            verifier_share,
                        } => {
                            out.push(0);
                            report_id.encode(&mut out);
                            put_bytes(verifier_share, &mut out);
                        }
                        PrepareResult::Rejected { report_id, code } => {
                            out.push(1);
                            report_id.encode(&mut out);
                            (*code as u16).encode(&mut out);
                        }
                    }
                }
            }
            Message::JobContinue(m) => {
                m.task_id.0.encode(&mut out);
                m.job_id.encode(&mut out);
                m.round.encode(&mut out);
                put_count(m.accepted.len(), &mut out);
                for id in &m.accepted {
                    id.encode(&mut out);
                }
            }
            Message::JobContinueResponse(m) => {
                m.job_id.encode(&mut out);
                m.accepted_count.encode(&mut out);
            }
            Message::AggregateShareRequest(m) => {
                m.task_id.0.encode(&mut out);
                m.round.encode(&mut out);
                m.report_count.encode(&mut out);
                m.report_set_digest.encode(&mut out);
                m.leader_ledger.encode_into(&mut out);
                u8::from(m.leader_released_before).encode(&mut out);
            }
            Message::AggregateShareResponse(m) => {
                m.round.encode(&mut out);
                encode_aggregate_share(&m.share, &mut out);
                m.helper_ledger.encode_into(&mut out);
                u8::from(m.released_before).encode(&mut out);
            }
            Message::CollectRequest(m) => {
                m.task_id.0.encode(&mut out);
                m.round.encode(&mut out);
            }
            Message::CollectResponse(m) => {
                m.round.encode(&mut out);
                m.report_count.encode(&mut out);
                put_count(m.shares.len(), &mut out);
                for s in &m.shares {
                    encode_aggregate_share(s, &mut out);
                }
            }
            Message::Error(m) => {
                (m.code as u16).encode(&mut out);
                let detail = truncate_utf8(&m.detail, MAX_ERROR_DETAIL);
                put_bytes(detail.as_bytes(), &mut out);
            }
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
        let ty = r.read_u8()?;
        let message = match ty {
            1 => Message::UploadRequest(UploadRequest {
                task_id: TaskId(r.read_array()?),
                report: decode_report(&mut r, limits)?,
            }),
            2 => Message::UploadResponse(UploadResponse {
                report_id: ReportId::decode_from(&mut r)?,
            }),
            3 => {
                let task_id = TaskId(r.read_array()?);
                let job_id = JobId::decode_from(&mut r)?;
                let round = r.read_u32()?;
                let count = r.read_len_prefix(limits.reports_per_job)?;
                let mut reports = Vec::with_capacity(count.min(r.remaining() / 16));
                for _ in 0..count {
                    reports.push(ReportShare {
                        report_id: ReportId::decode_from(&mut r)?,
                        client_id: ClientId(r.read_array()?),
                        public_share: r.read_bytes_with_len_prefix(limits.public_share)?.to_vec(),
                        sealed_share: decode_ciphertext(&mut r, limits.helper_plaintext())?,
                    });
                }
                Message::JobInit(JobInit {
                    task_id,
                    job_id,
                    round,
                    reports,
                })
            }
            4 => {
                let job_id = JobId::decode_from(&mut r)?;
                let count = r.read_len_prefix(limits.reports_per_job)?;
                let mut results = Vec::with_capacity(count.min(r.remaining() / 17));
                for _ in 0..count {
                    let tag = r.read_u8()?;
                    let report_id = ReportId::decode_from(&mut r)?;
                    results.push(match tag {
                        0 => PrepareResult::Verifier {
                            report_id,
                            verifier_share: r
                                .read_bytes_with_len_prefix(limits.verifier_share)?
                                .to_vec(),
                        },
                        1 => PrepareResult::Rejected {
                            report_id,
                            code: decode_error_code(&mut r)?,
                        },
                        _ => {
                            return Err(CodecError::InvalidValue {
                                what: "prepare result",
                            });
                        }
                    });
                }
                Message::JobResponse(JobResponse { job_id, results })
            }
            5 => {
                let task_id = TaskId(r.read_array()?);
                let job_id = JobId::decode_from(&mut r)?;
                let round = r.read_u32()?;
                let accepted = r.read_vec_with_len_prefix(limits.reports_per_job)?;
                Message::JobContinue(JobContinue {
                    task_id,
                    job_id,
                    round,
                    accepted,
                })
            }
            6 => Message::JobContinueResponse(JobContinueResponse {
                job_id: JobId::decode_from(&mut r)?,
                accepted_count: r.read_u32()?,
            }),
            7 => Message::AggregateShareRequest(AggregateShareRequest {
                task_id: TaskId(r.read_array()?),
                round: r.read_u32()?,
                report_count: r.read_u32()?,
                report_set_digest: r.read_array()?,
                leader_ledger: LedgerHead::decode_from(&mut r)?,
                leader_released_before: decode_bool(&mut r)?,
            }),
            8 => Message::AggregateShareResponse(AggregateShareResponse {
                round: r.read_u32()?,
                share: decode_aggregate_share(&mut r, limits)?,
                helper_ledger: LedgerHead::decode_from(&mut r)?,
                released_before: decode_bool(&mut r)?,
            }),
            9 => Message::CollectRequest(CollectRequest {
                task_id: TaskId(r.read_array()?),
                round: r.read_u32()?,
            }),
            10 => {
                let round = r.read_u32()?;
                let report_count = r.read_u32()?;
                let count = r.read_len_prefix(limits.helpers + 1)?;
                let mut shares = Vec::with_capacity(count);
                for _ in 0..count {
                    shares.push(decode_aggregate_share(&mut r, limits)?);
                }
                Message::CollectResponse(CollectResponse {
                    round,
                    report_count,
                    shares,
                })
            }
            11 => {
                let code = decode_error_code(&mut r)?;
                let detail = r.read_bytes_with_len_prefix(MAX_ERROR_DETAIL)?;
                let detail = core::str::from_utf8(detail)
                    .map_err(|_| CodecError::InvalidValue {
                        what: "error detail (not UTF-8)",
                    })?
                    .to_owned();
                Message::Error(ErrorMessage { code, detail })
            }
            _ => {
                return Err(CodecError::InvalidValue {
                    what: "message type",
                });
            }
        };
        r.finish()?;
        Ok(message)
    }

    /// A short name of the message type, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::UploadRequest(_) => "upload_request",
            Message::UploadResponse(_) => "upload_response",
            Message::JobInit(_) => "job_init",
            Message::JobResponse(_) => "job_response",
            Message::JobContinue(_) => "job_continue",
            Message::JobContinueResponse(_) => "job_continue_response",
            Message::AggregateShareRequest(_) => "aggregate_share_request",
            Message::AggregateShareResponse(_) => "aggregate_share_response",
            Message::CollectRequest(_) => "collect_request",
            Message::CollectResponse(_) => "collect_response",
            Message::Error(_) => "error",
        }
    }

    fn type_byte(&self) -> u8 {
        match self {
            Message::UploadRequest(_) => 1,
            Message::UploadResponse(_) => 2,
            Message::JobInit(_) => 3,
            Message::JobResponse(_) => 4,
            Message::JobContinue(_) => 5,
            Message::JobContinueResponse(_) => 6,
            Message::AggregateShareRequest(_) => 7,
            Message::AggregateShareResponse(_) => 8,
            Message::CollectRequest(_) => 9,
            Message::CollectResponse(_) => 10,
            Message::Error(_) => 11,
        }
    }
}

/// Encodes a report alone (what a leader stores until the report is verified).
pub fn encode_report(report: &Report, out: &mut Vec<u8>) {
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

/// Decodes a report stored with [`encode_report`], under `limits`.
pub fn decode_report(r: &mut Reader<'_>, limits: &Limits) -> Result<Report, CodecError> {
    let report_id = ReportId::decode_from(r)?;
    let round = r.read_u32()?;
    let client_id = ClientId(r.read_array()?);
    let leader_tag = r.read_array()?;
    let public_share = r.read_bytes_with_len_prefix(limits.public_share)?.to_vec();
    let leader_share = SecretVec::new(r.read_bytes_with_len_prefix(limits.leader_share)?.to_vec());
    let count = r.read_len_prefix(limits.helpers)?;
    let mut helper_shares = Vec::with_capacity(count);
    for _ in 0..count {
        helper_shares.push(decode_ciphertext(r, limits.helper_plaintext())?);
    }
    Ok(Report {
        report_id,
        round,
        client_id,
        leader_tag,
        public_share,
        leader_share,
        helper_shares,
    })
}

fn put_count(n: usize, out: &mut Vec<u8>) {
    // Every count we encode is bounded by a task limit far below u32::MAX.
    u32::try_from(n).unwrap_or(u32::MAX).encode(out);
}

fn put_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    put_count(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn encode_ciphertext(c: &HpkeCiphertext, out: &mut Vec<u8>) {
    c.encapsulated_key.encode(out);
    put_bytes(&c.payload, out);
}

fn decode_ciphertext(
    r: &mut Reader<'_>,
    max_plaintext: usize,
) -> Result<HpkeCiphertext, CodecError> {
    Ok(HpkeCiphertext {
        encapsulated_key: r.read_array()?,
        payload: r
            .read_bytes_with_len_prefix(max_plaintext.saturating_add(HPKE_TAG_LEN))?
            .to_vec(),
    })
}

pub(crate) fn encode_aggregate_share(s: &AggregateShare, out: &mut Vec<u8>) {
    s.aggregator_index.encode(out);
    s.report_count.encode(out);
    for v in [
        s.receipt.rho_spent,
        s.receipt.rho_total,
        s.receipt.epsilon_total,
        s.receipt.epsilon_remaining,
    ] {
        v.to_bits().encode(out);
    }
    s.ledger.encode_into(out);
    encode_ciphertext(&s.sealed_share, out);
}

pub(crate) fn decode_aggregate_share(
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<AggregateShare, CodecError> {
    let aggregator_index = r.read_u8()?;
    if usize::from(aggregator_index) > limits.helpers {
        return Err(CodecError::InvalidValue {
            what: "aggregator index",
        });
    }
    let report_count = r.read_u32()?;
    let mut f = [0f64; 4];
    for v in &mut f {
        *v = f64::from_bits(r.read_u64()?);
        // +∞ is meaningful (no budget: a task without noise); NaN and negatives are not.
        if v.is_nan() || *v < 0.0 {
            return Err(CodecError::InvalidValue {
                what: "budget receipt (negative or NaN)",
            });
        }
    }
    Ok(AggregateShare {
        aggregator_index,
        report_count,
        receipt: BudgetReceipt {
            rho_spent: f[0],
            rho_total: f[1],
            epsilon_total: f[2],
            epsilon_remaining: f[3],
        },
        ledger: LedgerHead::decode_from(r)?,
        sealed_share: decode_ciphertext(r, limits.aggregate_share)?,
    })
}

fn decode_bool(r: &mut Reader<'_>) -> Result<bool, CodecError> {
    match r.read_u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::InvalidValue { what: "boolean" }),
    }
}

fn decode_error_code(r: &mut Reader<'_>) -> Result<ErrorCode, CodecError> {
    ErrorCode::from_u16(r.read_u16()?).ok_or(CodecError::InvalidValue { what: "error code" })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            public_share: 64,
            leader_share: 256,
            helper_share: 96,
            helpers: 2,
            reports_per_job: 8,
            verifier_share: 64,
            aggregate_share: 512,
        }
    }

    fn ct(len: usize, fill: u8) -> HpkeCiphertext {
        HpkeCiphertext {
            encapsulated_key: [fill; 32],
            payload: vec![fill; len],
        }
    }

    fn receipt() -> BudgetReceipt {
        BudgetReceipt {
            rho_spent: 0.125,
            rho_total: 0.25,
            epsilon_total: 1.5,
            epsilon_remaining: 2.5,
        }
    }

    fn head() -> LedgerHead {
        LedgerHead {
            entries: 2,
            rho_total: 0.25,
            hash: [6; 32],
        }
    }

    fn samples() -> Vec<Message> {
        let rid = ReportId([7; 16]);
        let share = AggregateShare {
            aggregator_index: 1,
            report_count: 3,
            receipt: receipt(),
            ledger: head(),
            sealed_share: ct(100, 4),
        };
        vec![
            Message::UploadRequest(UploadRequest {
                task_id: TaskId([1; 32]),
                report: Report {
                    report_id: rid,
                    round: 3,
                    client_id: ClientId([9; 16]),
                    leader_tag: [10; 32],
                    public_share: vec![1, 2, 3],
                    leader_share: SecretVec::new(vec![5; 200]),
                    helper_shares: vec![ct(80, 1), ct(80, 2)],
                },
            }),
            Message::UploadResponse(UploadResponse { report_id: rid }),
            Message::JobInit(JobInit {
                task_id: TaskId([1; 32]),
                job_id: JobId([2; 16]),
                round: 3,
                reports: vec![ReportShare {
                    report_id: rid,
                    client_id: ClientId([9; 16]),
                    public_share: vec![9; 10],
                    sealed_share: ct(96, 3),
                }],
            }),
            Message::JobResponse(JobResponse {
                job_id: JobId([2; 16]),
                results: vec![
                    PrepareResult::Verifier {
                        report_id: rid,
                        verifier_share: vec![1; 64],
                    },
                    PrepareResult::Rejected {
                        report_id: ReportId([8; 16]),
                        code: ErrorCode::DecryptFailed,
                    },
                ],
            }),
            Message::JobContinue(JobContinue {
                task_id: TaskId([1; 32]),
                job_id: JobId([2; 16]),
                round: 3,
                accepted: vec![rid],
            }),
            Message::JobContinueResponse(JobContinueResponse {
                job_id: JobId([2; 16]),
                accepted_count: 1,
            }),
            Message::AggregateShareRequest(AggregateShareRequest {
                task_id: TaskId([1; 32]),
                round: 3,
                report_count: 10,
                report_set_digest: [5; 32],
                leader_ledger: head(),
                leader_released_before: true,
            }),
            Message::AggregateShareResponse(AggregateShareResponse {
                round: 3,
                share: share.clone(),
                helper_ledger: head(),
                released_before: false,
            }),
            Message::CollectRequest(CollectRequest {
                task_id: TaskId([1; 32]),
                round: 3,
            }),
            Message::CollectResponse(CollectResponse {
                round: 3,
                report_count: 3,
                shares: vec![share.clone(), share],
            }),
            Message::Error(ErrorMessage {
                code: ErrorCode::Replay,
                detail: "report seen before".into(),
            }),
        ]
    }

    #[test]
    fn every_message_roundtrips() {
        for m in samples() {
            let bytes = m.encode();
            assert!(bytes.len() <= limits().max_frame_len(), "{}", m.name());
            let back = Message::decode(&bytes, &limits()).unwrap();
            assert_eq!(back.encode(), bytes, "{}", m.name());
            assert_eq!(back.name(), m.name());
        }
    }

    #[test]
    fn truncations_and_trailing_bytes_are_rejected() {
        for m in samples() {
            let bytes = m.encode();
            for cut in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..cut], &limits()).is_err(),
                    "{} cut at {cut}",
                    m.name()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(matches!(
                Message::decode(&longer, &limits()),
                Err(CodecError::TrailingBytes { remaining: 1 })
            ));
        }
    }

    #[test]
    fn lengths_above_the_task_limits_are_refused() {
        let mut small = limits();
        small.leader_share = 100;
        let upload = &samples()[0];
        assert!(matches!(
            Message::decode(&upload.encode(), &small),
            Err(CodecError::LengthTooLarge { len: 200, max: 100 })
        ));
        let mut bad_version = upload.encode();
        bad_version[0] = 1;
        assert!(matches!(
            Message::decode(&bad_version, &limits()),
            Err(CodecError::InvalidValue { .. })
        ));
        let mut bad_type = upload.encode();
        bad_type[1] = 99;
        assert!(Message::decode(&bad_type, &limits()).is_err());
    }

    #[test]
    fn a_huge_count_does_not_allocate() {
        // An upload claiming a 4 GiB public share fails on the limit, not on memory.
        let mut bytes = vec![WIRE_VERSION, 1];
        // task id, report id, round, client id, leader tag
        bytes.extend_from_slice(&[0; 32 + 16 + 4 + 16 + 32]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Message::decode(&bytes, &limits()),
            Err(CodecError::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn each_party_reads_only_frames_its_peers_may_send() {
        let l = limits();
        let upload = samples()[0].encode();
        let job = samples()[2].encode();
        assert!(upload.len() <= l.max_inbound_frame_len(Inbound::LeaderFromClients));
        assert!(job.len() <= l.max_inbound_frame_len(Inbound::HelperFromLeader));
        // A full job is far larger than anything a client may send the leader.
        let full_job = l.reports_per_job
            * (16 + 16 + 4 + l.public_share + 32 + 4 + l.helper_plaintext() + HPKE_TAG_LEN);
        assert!(full_job <= l.max_inbound_frame_len(Inbound::HelperFromLeader));
        assert!(full_job > l.max_inbound_frame_len(Inbound::LeaderFromClients));
        // An acknowledgement or error is small whatever the task.
        assert_eq!(l.max_inbound_frame_len(Inbound::ClientFromLeader), 1024);
    }

    #[test]
    fn error_detail_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(400);
        let m = Message::Error(ErrorMessage {
            code: ErrorCode::Internal,
            detail: long,
        });
        match Message::decode(&m.encode(), &limits()).unwrap() {
            Message::Error(e) => {
                assert!(e.detail.len() <= MAX_ERROR_DETAIL && !e.detail.is_empty())
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            // And whatever decodes is canonical: it re-encodes to the same bytes.
            if let Ok(m) = Message::decode(&bytes, &limits()) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }

        #[test]
        fn decoding_mutated_frames_never_panics(idx in 0usize..11, pos in any::<usize>(), val in any::<u8>()) {
            let mut bytes = samples()[idx].encode();
            let p = pos % bytes.len();
            bytes[p] = val;
            if let Ok(m) = Message::decode(&bytes, &limits()) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }
    }
}
