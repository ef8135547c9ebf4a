//! Collector → leader → helpers: the release of a round.

use cairn_mpc::codec::{CodecError, Encode, Reader};

use super::codec::{decode_bool, decode_ciphertext, encode_ciphertext, put_count};
use super::{Limits, MessageType, WireMessage};
use crate::hpke::HpkeCiphertext;
use crate::ids::TaskId;
use crate::ledger::LedgerHead;

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
    /// The leader's ledger head as of its own release of the round: a helper whose
    /// ledger would record less refuses ([`super::ErrorCode::LedgerBehind`]).
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
    /// ledger head are in its associated data ([`crate::aad::aggregate_aad`]),
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

impl WireMessage for AggregateShareRequest {
    const TYPE: MessageType = MessageType::AggregateShareRequest;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.task_id.0.encode(out);
        self.round.encode(out);
        self.report_count.encode(out);
        self.report_set_digest.encode(out);
        self.leader_ledger.encode_into(out);
        u8::from(self.leader_released_before).encode(out);
    }

    fn decode_body(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, CodecError> {
        Ok(AggregateShareRequest {
            task_id: TaskId(r.read_array()?),
            round: r.read_u32()?,
            report_count: r.read_u32()?,
            report_set_digest: r.read_array()?,
            leader_ledger: LedgerHead::decode_from(r)?,
            leader_released_before: decode_bool(r)?,
        })
    }
}

impl WireMessage for AggregateShareResponse {
    const TYPE: MessageType = MessageType::AggregateShareResponse;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.round.encode(out);
        encode_aggregate_share(&self.share, out);
        self.helper_ledger.encode_into(out);
        u8::from(self.released_before).encode(out);
    }

    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError> {
        Ok(AggregateShareResponse {
            round: r.read_u32()?,
            share: decode_aggregate_share(r, limits)?,
            helper_ledger: LedgerHead::decode_from(r)?,
            released_before: decode_bool(r)?,
        })
    }
}

impl WireMessage for CollectRequest {
    const TYPE: MessageType = MessageType::CollectRequest;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.task_id.0.encode(out);
        self.round.encode(out);
    }

    fn decode_body(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, CodecError> {
        Ok(CollectRequest {
            task_id: TaskId(r.read_array()?),
            round: r.read_u32()?,
        })
    }
}

impl WireMessage for CollectResponse {
    const TYPE: MessageType = MessageType::CollectResponse;

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.round.encode(out);
        self.report_count.encode(out);
        put_count(self.shares.len(), out);
        for s in &self.shares {
            encode_aggregate_share(s, out);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, CodecError> {
        let round = r.read_u32()?;
        let report_count = r.read_u32()?;
        let count = r.read_len_prefix(limits.helpers + 1)?;
        let mut shares = Vec::with_capacity(count);
        for _ in 0..count {
            shares.push(decode_aggregate_share(r, limits)?);
        }
        Ok(CollectResponse {
            round,
            report_count,
            shares,
        })
    }
}

/// Encodes one aggregator's sealed share (in a collect answer, and as stored).
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
