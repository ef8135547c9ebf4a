//! Leader ↔ helper: an aggregation job (verify these reports; add the accepted ones).

use cairn_mpc::codec::{CodecError, Decode, Encode, Reader};

use super::codec::{decode_ciphertext, encode_ciphertext, put_bytes, put_count};
use super::error::decode_error_code;
use super::{ErrorCode, Limits, MessageType, WireMessage};
use crate::auth::ClientId;
use crate::hpke::HpkeCiphertext;
use crate::ids::TaskId;
use crate::ids::{JobId, ReportId};

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

impl WireMessage for JobInit {
    const TYPE: MessageType = MessageType::JobInit;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.task_id.0.encode(out);
        self.job_id.encode(out);
        self.round.encode(out);
        put_count(self.reports.len(), out);
        for r in &self.reports {
            r.report_id.encode(out);
            r.client_id.0.encode(out);
            put_bytes(&r.public_share, out);
            encode_ciphertext(&r.sealed_share, out);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError> {
        let task_id = TaskId(r.read_array()?);
        let job_id = JobId::decode_from(r)?;
        let round = r.read_u32()?;
        let count = r.read_len_prefix(limits.reports_per_job)?;
        let mut reports = Vec::with_capacity(count.min(r.remaining() / 16));
        for _ in 0..count {
            reports.push(ReportShare {
                report_id: ReportId::decode_from(r)?,
                client_id: ClientId(r.read_array()?),
                public_share: r.read_bytes_with_len_prefix(limits.public_share)?.to_vec(),
                sealed_share: decode_ciphertext(r, limits.helper_plaintext())?,
            });
        }
        Ok(JobInit {
            task_id,
            job_id,
            round,
            reports,
        })
    }
}

impl WireMessage for JobResponse {
    const TYPE: MessageType = MessageType::JobResponse;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.job_id.encode(out);
        put_count(self.results.len(), out);
        for r in &self.results {
            match r {
                PrepareResult::Verifier {
                    report_id,
                    verifier_share,
                } => {
                    out.push(0);
                    report_id.encode(out);
                    put_bytes(verifier_share, out);
                }
                PrepareResult::Rejected { report_id, code } => {
                    out.push(1);
                    report_id.encode(out);
                    (*code as u16).encode(out);
                }
            }
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError> {
        let job_id = JobId::decode_from(r)?;
        let count = r.read_len_prefix(limits.reports_per_job)?;
        let mut results = Vec::with_capacity(count.min(r.remaining() / 17));
        for _ in 0..count {
            let tag = r.read_u8()?;
            let report_id = ReportId::decode_from(r)?;
            results.push(match tag {
                0 => PrepareResult::Verifier {
                    report_id,
                    verifier_share: r
                        .read_bytes_with_len_prefix(limits.verifier_share)?
                        .to_vec(),
                },
                1 => PrepareResult::Rejected {
                    report_id,
                    code: decode_error_code(r)?,
                },
                _ => {
                    return Err(CodecError::InvalidValue {
                        what: "prepare result",
                    });
                }
            });
        }
        Ok(JobResponse { job_id, results })
    }
}

impl WireMessage for JobContinue {
    const TYPE: MessageType = MessageType::JobContinue;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.task_id.0.encode(out);
        self.job_id.encode(out);
        self.round.encode(out);
        put_count(self.accepted.len(), out);
        for id in &self.accepted {
            id.encode(out);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError> {
        Ok(JobContinue {
            task_id: TaskId(r.read_array()?),
            job_id: JobId::decode_from(r)?,
            round: r.read_u32()?,
            accepted: r.read_vec_with_len_prefix(limits.reports_per_job)?,
        })
    }
}

impl WireMessage for JobContinueResponse {
    const TYPE: MessageType = MessageType::JobContinueResponse;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.job_id.encode(out);
        self.accepted_count.encode(out);
    }

    fn decode_body(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, CodecError> {
        Ok(JobContinueResponse {
            job_id: JobId::decode_from(r)?,
            accepted_count: r.read_u32()?,
        })
    }
}
