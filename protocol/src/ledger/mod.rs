//! The privacy-budget ledger every aggregator keeps on its own.
//!
//! DESIGN §6: before an aggregator lets its aggregate share of a round leave, it
//! appends a ledger entry (round, ρ, time, report count) and makes it durable; it
//! refuses any release that would take the task's total ρ past its budget. Each
//! aggregator enforces this independently, so the guarantee holds as long as one
//! aggregator is honest, even if the others release everything.
//!
//! The ledger is append-only and **hash-chained**: entry `k` stores the hash of entry
//! `k − 1`, and its own hash covers the task id and all its fields. A ledger whose
//! entries were edited, deleted or reordered no longer verifies, and
//! [`Ledger::verify_chain`] names the first bad entry. This module is pure data; the
//! node persists entries (SQLite, `synchronous=FULL`) and reloads them with
//! [`Ledger::from_entries`] on restart, which re-verifies the chain, so a restart can
//! never forget spent budget.
//!
//! Budget arithmetic is `cairn-dp`'s [`Budget`]: exact in units of 2^−1074, so the
//! true sum of the recorded ρ values never passes the budget, while exact cases pass
//! (four releases of 0.25 exactly fill a budget of 1.0; ten releases of the `f64`
//! nearest 0.1 sum to slightly more than 1.0, so the tenth is refused). Each entry's
//! `rho_total` is that exact total rounded up to an `f64`.

use cairn_dp::rdp::RdpCurve;
use cairn_dp::{Budget, Rho};
use sha2::{Digest, Sha256};

use crate::clock::Time;
use crate::ids::TaskId;

/// Errors of the ledger.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The release would spend more than the remaining budget.
    #[error(
        "privacy budget exceeded: releasing ρ = {requested} would bring the total to \
         more than the budget ρ = {budget} (already spent {spent})"
    )]
    BudgetExceeded {
        /// ρ of the refused release.
        requested: f64,
        /// ρ spent before it.
        spent: f64,
        /// The task's ρ budget.
        budget: f64,
    },
    /// The round was released before; a round is released once.
    #[error("round {0} was already released")]
    AlreadyReleased(u32),
    /// A ρ that is negative, NaN or infinite.
    #[error("invalid ρ {0}")]
    InvalidRho(f64),
    /// The hash chain breaks at this entry (0-based): edited, removed or reordered.
    #[error("ledger hash chain broken at entry {index}")]
    BrokenChain {
        /// The first entry that does not verify.
        index: usize,
    },
    /// The release would bring the task's ε (RDP accounting) past its budget.
    #[error(
        "privacy budget exceeded: this release would bring ε to {would_be} at δ = {delta}, \
         above the budget ε = {budget} (already spent ε = {spent})"
    )]
    EpsilonExceeded {
        /// ε after the refused release.
        would_be: f64,
        /// ε spent before it.
        spent: f64,
        /// The budget.
        budget: f64,
        /// δ.
        delta: f64,
    },
    /// An entry of the other accountant (a zCDP cost in an RDP ledger or the reverse).
    #[error("a {0} release does not belong in this ledger")]
    WrongAccountant(&'static str),
}

/// What a ledger enforces: a ρ budget (zCDP: client-level tasks) or an (ε, δ) budget
/// on composed RDP curves (record-level tasks, [`cairn_dp::rdp`]).
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerBudget {
    /// zCDP: the total ρ may not pass this.
    Zcdp {
        /// The ρ budget.
        rho: f64,
    },
    /// RDP: ε(δ) of the composed curves may not pass `epsilon`.
    Rdp {
        /// The ε budget.
        epsilon: f64,
        /// δ.
        delta: f64,
    },
}

/// What one release costs.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseCost {
    /// zCDP ρ.
    Rho(f64),
    /// An RDP curve on the grid of [`cairn_dp::rdp`].
    Rdp(RdpCurve),
}

/// One release, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// Position in the ledger, from 0.
    pub seq: u64,
    /// The released round.
    pub round: u32,
    /// When it was released.
    pub time: Time,
    /// Reports in the released aggregate.
    pub report_count: u32,
    /// ρ this release cost (zCDP ledgers; 0 in RDP ledgers).
    pub rho: f64,
    /// ρ spent by the task after this release (zCDP ledgers; 0 in RDP ledgers).
    pub rho_total: f64,
    /// The release's RDP curve (RDP ledgers only): kept per entry, so the ledger can be
    /// re-composed and audited from its entries alone.
    pub rdp: Option<RdpCurve>,
    /// Hash of the previous entry (all zero for the first).
    pub prev_hash: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

impl LedgerEntry {
    /// The hash this entry must carry, given its fields and its task.
    pub fn compute_hash(&self, task_id: &TaskId) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"cairn/1 ledger entry");
        h.update(task_id.0);
        h.update(self.seq.to_le_bytes());
        h.update(self.round.to_le_bytes());
        h.update(self.time.0.to_le_bytes());
        h.update(self.report_count.to_le_bytes());
        h.update(self.rho.to_bits().to_le_bytes());
        h.update(self.rho_total.to_bits().to_le_bytes());
        match &self.rdp {
            Some(curve) => {
                h.update([1]);
                h.update((curve.values().len() as u64).to_le_bytes());
                for v in curve.values() {
                    h.update(v.to_bits().to_le_bytes());
                }
            }
            None => h.update([0]),
        }
        h.update(self.prev_hash);
        h.finalize().into()
    }
}

/// The head of a ledger, as exchanged between aggregators and shown to the collector:
/// how many releases it records, their total ρ and the last entry's hash.
///
/// Aggregators compare heads at every release (see [`LedgerHead::is_behind`]): an
/// aggregator whose ledger was restored from an old backup or wiped records fewer
/// releases than its peers, and refuses to release until an operator resolves it.
/// Hashes differ between aggregators (entries carry each one's own clock), so only
/// the count and the total are compared; the hash lets an auditor match a receipt to
/// a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LedgerHead {
    /// Number of entries.
    pub entries: u64,
    /// ρ spent after the last entry (0 for an empty ledger).
    pub rho_total: f64,
    /// Hash of the last entry (all zero for an empty ledger).
    pub hash: [u8; 32],
}

impl LedgerHead {
    /// Bytes of the encoding.
    pub const ENCODED_LEN: usize = 48;

    /// Whether this ledger records fewer releases, or less ρ, than `peer`'s: then it
    /// may have been rolled back. Ledgers that agree hold the same ρ values in the same
    /// order, so their totals are equal; the relative slack of 1e-12 is far below any
    /// one release's ρ and so never hides a missing entry.
    pub fn is_behind(&self, peer: &LedgerHead) -> bool {
        self.entries < peer.entries || self.rho_total < peer.rho_total * (1.0 - 1e-12)
    }

    /// Appends the encoding (entries, ρ bits, hash; little-endian).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&self.rho_total.to_bits().to_le_bytes());
        out.extend_from_slice(&self.hash);
    }

    /// Reads the encoding; refuses a negative or NaN ρ.
    pub fn decode_from(
        r: &mut cairn_mpc::codec::Reader<'_>,
    ) -> Result<Self, cairn_mpc::codec::CodecError> {
        let entries = r.read_u64()?;
        let rho_total = f64::from_bits(r.read_u64()?);
        if rho_total.is_nan() || rho_total < 0.0 {
            return Err(cairn_mpc::codec::CodecError::InvalidValue {
                what: "ledger head ρ",
            });
        }
        Ok(Self {
            entries,
            rho_total,
            hash: r.read_array()?,
        })
    }
}

/// A task's ledger at one aggregator.
#[derive(Debug, Clone)]
pub struct Ledger {
    task_id: TaskId,
    budget: Budget,
    rdp: Option<RdpState>,
    entries: Vec<LedgerEntry>,
}

/// The RDP side of a ledger: the budget and the composition of every entry's curve.
#[derive(Debug, Clone)]
struct RdpState {
    epsilon: f64,
    delta: f64,
    spent: RdpCurve,
}

impl Ledger {
    /// An empty zCDP ledger for a task with ρ budget `rho_budget`.
    pub fn new(task_id: TaskId, rho_budget: f64) -> Result<Self, LedgerError> {
        let budget = Budget::new(rho_budget).map_err(|_| LedgerError::InvalidRho(rho_budget))?;
        Ok(Self {
            task_id,
            budget,
            rdp: None,
            entries: Vec::new(),
        })
    }

    /// An empty ledger enforcing `budget`.
    pub fn with_budget(task_id: TaskId, budget: &LedgerBudget) -> Result<Self, LedgerError> {
        match *budget {
            LedgerBudget::Zcdp { rho } => Self::new(task_id, rho),
            LedgerBudget::Rdp { epsilon, delta } => {
                if !(epsilon.is_finite() && epsilon > 0.0 && delta > 0.0 && delta < 1.0) {
                    return Err(LedgerError::InvalidRho(epsilon));
                }
                let mut ledger = Self::new(task_id, f64::MAX)?;
                ledger.rdp = Some(RdpState {
                    epsilon,
                    delta,
                    spent: RdpCurve::zero(),
                });
                Ok(ledger)
            }
        }
    }

    /// A zCDP ledger reloaded from storage: the chain must verify and fit the budget.
    pub fn from_entries(
        task_id: TaskId,
        rho_budget: f64,
        entries: Vec<LedgerEntry>,
    ) -> Result<Self, LedgerError> {
        Self::from_entries_with(task_id, &LedgerBudget::Zcdp { rho: rho_budget }, entries)
    }

    /// A ledger reloaded from storage under `budget`: the chain must verify, every entry
    /// must be of the budget's accountant, and the total must fit. The budget is part
    /// of the task id, so a stored ledger can only exceed it if it was tampered with:
    /// it is refused rather than guessed at.
    pub fn from_entries_with(
        task_id: TaskId,
        budget: &LedgerBudget,
        entries: Vec<LedgerEntry>,
    ) -> Result<Self, LedgerError> {
        let mut ledger = Self::with_budget(task_id, budget)?;
        Self::verify_chain(&task_id, &entries)?;
        for e in &entries {
            ledger.account(e)?;
        }
        ledger.entries = entries;
        Ok(ledger)
    }

    /// Adds an entry's cost to the running totals, refusing one of the wrong kind or
    /// past the budget.
    fn account(&mut self, e: &LedgerEntry) -> Result<(), LedgerError> {
        match (&mut self.rdp, &e.rdp) {
            (None, None) => self.spend(e.rho).map(|_| ()),
            (Some(state), Some(curve)) if e.rho == 0.0 => {
                let spent = state.spent.compose(curve);
                let (eps, _) = spent
                    .epsilon(state.delta)
                    .map_err(|_| LedgerError::InvalidRho(state.delta))?;
                if eps > state.epsilon {
                    return Err(LedgerError::EpsilonExceeded {
                        would_be: eps,
                        spent: state.spent.epsilon(state.delta).map_or(f64::NAN, |e| e.0),
                        budget: state.epsilon,
                        delta: state.delta,
                    });
                }
                state.spent = spent;
                Ok(())
            }
            (None, Some(_)) => Err(LedgerError::WrongAccountant("RDP")),
            (Some(_), _) => Err(LedgerError::WrongAccountant("zCDP")),
        }
    }

    /// A copy of the running totals without the entries (O(1) in the ledger's length).
    fn totals(&self) -> Ledger {
        Ledger {
            task_id: self.task_id,
            budget: self.budget.clone(),
            rdp: self.rdp.clone(),
            entries: Vec::new(),
        }
    }

    /// ε at the ledger's δ after `entry` (RDP ledgers; `None` for zCDP ledgers or an
    /// entry without a curve).
    pub fn epsilon_after(&self, entry: &LedgerEntry) -> Option<f64> {
        let s = self.rdp.as_ref()?;
        let curve = entry.rdp.as_ref()?;
        s.spent.compose(curve).epsilon(s.delta).ok().map(|e| e.0)
    }

    /// ε spent at the ledger's δ (RDP ledgers), with the order that attains it.
    pub fn rdp_epsilon_spent(&self) -> Option<(f64, u32)> {
        let s = self.rdp.as_ref()?;
        s.spent.epsilon(s.delta).ok()
    }

    /// Checks every entry's position, hash, link and running total; returns the first
    /// bad entry.
    pub fn verify_chain(task_id: &TaskId, entries: &[LedgerEntry]) -> Result<(), LedgerError> {
        let mut prev = [0u8; 32];
        // An unbounded budget, to recompute each running total exactly.
        let mut totals = Budget::new(f64::MAX).map_err(|_| LedgerError::InvalidRho(f64::MAX))?;
        for (index, e) in entries.iter().enumerate() {
            let total = Rho::new(e.rho)
                .ok()
                .and_then(|r| totals.try_spend(r).ok())
                .map(|receipt| receipt.spent);
            let ok = e.seq == index as u64
                && e.prev_hash == prev
                && e.hash == e.compute_hash(task_id)
                && total == Some(e.rho_total);
            if !ok {
                return Err(LedgerError::BrokenChain { index });
            }
            prev = e.hash;
        }
        Ok(())
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// The ledger's head.
    pub fn head(&self) -> LedgerHead {
        LedgerHead {
            entries: self.entries.len() as u64,
            rho_total: self.rho_spent(),
            hash: self.entries.last().map_or([0; 32], |e| e.hash),
        }
    }

    /// The head this ledger would have after appending `entry`.
    pub fn head_after(&self, entry: &LedgerEntry) -> LedgerHead {
        LedgerHead {
            entries: entry.seq + 1,
            rho_total: entry.rho_total,
            hash: entry.hash,
        }
    }

    /// ρ spent so far.
    pub fn rho_spent(&self) -> f64 {
        self.entries.last().map_or(0.0, |e| e.rho_total)
    }

    /// Whether `round` has been released.
    pub fn is_released(&self, round: u32) -> bool {
        self.entries.iter().any(|e| e.round == round)
    }

    /// Checks that releasing `round` at cost `rho` fits, and returns the entry to make
    /// durable **before** the aggregate share leaves. The ledger itself is unchanged
    /// until [`Ledger::commit`] is called with that entry (after it is stored).
    pub fn prepare_release(
        &self,
        round: u32,
        rho: f64,
        report_count: u32,
        now: Time,
    ) -> Result<LedgerEntry, LedgerError> {
        self.prepare(round, ReleaseCost::Rho(rho), report_count, now)
    }

    /// [`Ledger::prepare_release`] for a release of any cost: a ρ in a zCDP ledger, an
    /// RDP curve in an RDP ledger.
    pub fn prepare(
        &self,
        round: u32,
        cost: ReleaseCost,
        report_count: u32,
        now: Time,
    ) -> Result<LedgerEntry, LedgerError> {
        if self.is_released(round) {
            return Err(LedgerError::AlreadyReleased(round));
        }
        let (rho, rdp) = match cost {
            ReleaseCost::Rho(rho) => (rho, None),
            ReleaseCost::Rdp(curve) => (0.0, Some(curve)),
        };
        let prev_hash = self.entries.last().map_or([0u8; 32], |e| e.hash);
        let mut entry = LedgerEntry {
            seq: self.entries.len() as u64,
            round,
            time: now,
            report_count,
            rho,
            rho_total: 0.0,
            rdp,
            prev_hash,
            hash: [0; 32],
        };
        // Trial spend on a copy of the totals: the ledger changes only in `commit`.
        let mut trial = self.totals();
        trial.account(&entry)?;
        entry.rho_total = trial.budget.spent();
        if trial.rdp.is_some() {
            entry.rho_total = 0.0;
        }
        entry.hash = entry.compute_hash(&self.task_id);
        Ok(entry)
    }

    /// Appends an entry made by [`Ledger::prepare_release`] once it is durable.
    pub fn commit(&mut self, entry: LedgerEntry) -> Result<(), LedgerError> {
        let index = self.entries.len();
        let prev = self.entries.last().map_or([0u8; 32], |e| e.hash);
        if entry.seq != index as u64
            || entry.prev_hash != prev
            || entry.hash != entry.compute_hash(&self.task_id)
        {
            return Err(LedgerError::BrokenChain { index });
        }
        let mut after = self.totals();
        after.account(&entry)?;
        let total = if after.rdp.is_some() {
            0.0
        } else {
            after.budget.spent()
        };
        if total != entry.rho_total {
            return Err(LedgerError::BrokenChain { index });
        }
        self.budget = after.budget;
        self.rdp = after.rdp;
        self.entries.push(entry);
        Ok(())
    }

    /// Spends `rho` from the budget; the new exact total, rounded up.
    fn spend(&mut self, rho: f64) -> Result<f64, LedgerError> {
        let spend = Rho::new(rho).map_err(|_| LedgerError::InvalidRho(rho))?;
        let spent = self.budget.spent();
        self.budget
            .try_spend(spend)
            .map(|receipt| receipt.spent)
            .map_err(|_| LedgerError::BudgetExceeded {
                requested: rho,
                spent,
                budget: self.budget.limit(),
            })
    }
}

#[cfg(test)]
mod tests;
