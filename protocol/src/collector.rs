//! The collector: opens the aggregators' sealed shares and decodes the sum.
//!
//! Each aggregator sealed its (noisy) aggregate share to the collector's HPKE key,
//! bound to the task, the round, its own index, and the report count, budget receipt
//! and ledger head it states beside the share (so the leader, which forwards the
//! helpers' shares, cannot rewrite a helper's figures); the collector needs every share,
//! adds them in the field, reads the result as centred integers and divides by `2^f`.
//! Only the sum is ever visible: no single share reveals anything.

use cairn_mpc::fixed_point::FixedPoint;

use crate::aad::aggregate_aad;
use crate::config::TaskConfig;
use crate::hpke::{self, HpkeSecretKey, SealPurpose};
use crate::messages::{BudgetReceipt, CollectRequest, CollectResponse};
use crate::scheme::{Aggregate, Scheme};

/// Errors of the collector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The task does not load.
    #[error("task: {0}")]
    Task(#[from] crate::config::ConfigError),
    /// The secret key is not the one the task names for the collector.
    #[error("the collector key does not match the task's collector public key")]
    WrongKey,
    /// The response is for another round, or shares are missing, repeated or
    /// inconsistent.
    #[error("inconsistent collect response: {0}")]
    Inconsistent(&'static str),
    /// A share does not open with the collector's key (tampered or misdirected).
    #[error("aggregate share {0} does not open")]
    OpenFailed(u8),
    /// The summed aggregate does not decode.
    #[error("aggregate does not decode")]
    Decode,
}

/// A released round, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// The round.
    pub round: u32,
    /// Reports in the sum.
    pub count: u32,
    /// The (noisy) sum of the clients' clipped updates, in the update's units.
    pub sum: Vec<f64>,
    /// The raw integer sum, in quantised units.
    pub sum_quantised: Vec<i64>,
    /// Each aggregator's budget receipt, leader first.
    pub receipts: Vec<BudgetReceipt>,
}

impl Collection {
    /// Whether the aggregators' ledgers disagree on the ρ spent (each enforces its own
    /// ledger; a disagreement is worth a warning).
    pub fn ledgers_disagree(&self) -> bool {
        self.receipts.windows(2).any(|w| {
            (w[0].rho_total - w[1].rho_total).abs() > 1e-12 * w[0].rho_total.max(1.0)
                || (w[0].epsilon_total - w[1].epsilon_total).abs()
                    > 1e-12 * w[0].epsilon_total.max(1.0)
        })
    }

    /// The most conservative receipt (the largest ρ spent, then the largest ε: RDP
    /// ledgers of record-level tasks spend no ρ).
    pub fn receipt(&self) -> Option<BudgetReceipt> {
        self.receipts.iter().copied().max_by(|a, b| {
            a.rho_total
                .total_cmp(&b.rho_total)
                .then(a.epsilon_total.total_cmp(&b.epsilon_total))
        })
    }
}

/// The collector of one task.
pub struct Collector {
    task: TaskConfig,
    scheme: Scheme,
    key: HpkeSecretKey,
}

impl Collector {
    /// The collector of `task`, holding the secret key matching the task's collector
    /// public key.
    pub fn new(task: TaskConfig, key: HpkeSecretKey) -> Result<Self, CollectorError> {
        let task = crate::task::Task::new(task)?;
        Self::from_task(task, key)
    }

    /// The collector of a loaded task (see [`Collector::new`]).
    pub fn from_task(task: crate::task::Task, key: HpkeSecretKey) -> Result<Self, CollectorError> {
        if key.public_key() != *task.config().collector_hpke_key() {
            return Err(CollectorError::WrongKey);
        }
        let (task, scheme, _) = task.into_parts();
        Ok(Self { task, scheme, key })
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        &self.task
    }

    /// The request that releases `round`.
    pub fn request(&self, round: u32) -> CollectRequest {
        CollectRequest {
            task_id: self.task.id(),
            round,
        }
    }

    /// Opens every aggregator's share, sums and decodes.
    pub fn open(&self, round: u32, resp: &CollectResponse) -> Result<Collection, CollectorError> {
        let n = self.task.num_aggregators();
        if resp.round != round {
            return Err(CollectorError::Inconsistent(
                "response is for another round",
            ));
        }
        if resp.shares.len() != n {
            return Err(CollectorError::Inconsistent(
                "one share per aggregator is needed",
            ));
        }
        let d = self.task.dimension();
        let mut opened = Vec::with_capacity(n);
        let mut receipts = Vec::with_capacity(n);
        for (i, share) in resp.shares.iter().enumerate() {
            if usize::from(share.aggregator_index) != i {
                return Err(CollectorError::Inconsistent("shares out of order"));
            }
            if share.report_count != resp.report_count {
                return Err(CollectorError::Inconsistent(
                    "aggregators counted different reports",
                ));
            }
            let aad = aggregate_aad(
                &self.task.id(),
                round,
                share.aggregator_index,
                share.report_count,
                &share.receipt,
                &share.ledger,
            );
            let plain = hpke::open(
                &self.key,
                SealPurpose::AggregateShare,
                &aad,
                &share.sealed_share,
            )
            .map_err(|_| CollectorError::OpenFailed(share.aggregator_index))?;
            opened.push(Aggregate::decode(&plain, d).map_err(|_| CollectorError::Decode)?);
            receipts.push(share.receipt);
        }
        let sum_quantised = self
            .scheme
            .unshard(&opened)
            .map_err(|_| CollectorError::Decode)?;
        let fixed = FixedPoint::new(u32::from(self.task.frac_bits()), 63).map_err(|e| {
            CollectorError::Task(crate::config::ConfigError::invalid(
                "frac_bits",
                e.to_string(),
            ))
        })?;
        let sum = fixed.decode_all(&sum_quantised);
        Ok(Collection {
            round,
            count: resp.report_count,
            sum,
            sum_quantised,
            receipts,
        })
    }
}
