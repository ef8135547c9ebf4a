//! What the SQLite and the PostgreSQL stores share whatever their SQL dialect. They
//! keep the same rows under the same rules, so they refuse the same things for the
//! same reasons ([`Refusal`]; each store's error adds only its database's own
//! failures) and update a round the same way ([`absorb_job`]).

use cairn_protocol::ids::ReportId;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::RoundRecord;

/// A refusal of either store: the request contradicts the stored state, or the stored
/// state does not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A stored value does not decode (the database was edited or is corrupt).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A referenced job or round does not exist.
    #[error("unknown {0}")]
    NotFound(&'static str),
    /// A report id was aggregated before (replay across jobs).
    #[error("report {0} was already aggregated")]
    AlreadyAggregated(ReportId),
    /// The round was released; nothing more can be added.
    #[error("round {0} was released")]
    RoundReleased(u32),
    /// A job names one report more than once.
    #[error("report {0} appears twice in one job")]
    DuplicateInJob(ReportId),
    /// A job names a report that is not queued (unknown, or in another job).
    #[error("report {0} is not queued")]
    NotQueued(ReportId),
    /// A job's decision differs from the one stored (another leader process decided
    /// it first, from other helper answers): a job is decided once.
    #[error("the job was decided otherwise by another leader process; its decision stands")]
    DecidedOtherwise,
    /// A ledger entry does not extend the stored chain: its sequence number or previous
    /// hash is not the stored head's (another process sharing the store released
    /// meanwhile), or its round was released before.
    #[error("ledger entry {seq} does not extend the stored ledger (released meanwhile?)")]
    LedgerConflict {
        /// The refused entry's sequence number.
        seq: u64,
    },
}

/// Adds a committed job to its round's record: the job's `contribution` (the sum of
/// its `accepted` reports' shares) into the running aggregate, and `accepted` to the
/// count. Both stores call it inside the transaction that commits the job.
///
/// # Errors
/// [`Refusal::Corrupt`] when the contribution's length is not the round's or the count
/// overflows (neither happens with a store this crate wrote).
pub(crate) fn absorb_job(
    record: &mut RoundRecord,
    contribution: &Aggregate,
    accepted: usize,
) -> Result<(), Refusal> {
    record
        .aggregate
        .add_assign(contribution)
        .map_err(|_| Refusal::Corrupt("contribution length".into()))?;
    record.count = u32::try_from(accepted)
        .ok()
        .and_then(|n| record.count.checked_add(n))
        .ok_or_else(|| Refusal::Corrupt("count overflow".into()))?;
    Ok(())
}
