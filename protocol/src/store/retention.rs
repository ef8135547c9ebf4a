//! Retention: up to which round [`TaskStore::collect_garbage`] may delete.
//!
//! Garbage collection deletes what only aggregation needed of released rounds: report
//! payloads, jobs, and the ids of the aggregated reports. A round released by every
//! aggregator never needs them again: a repeated collect is answered from the stored
//! answer (leader) or the stored release (helper). But a leader that released a round
//! whose helpers have not answered yet (a helper down, the request lost) still needs
//! the round's report set: the next collect of it sends the helpers the count and the
//! digest of the ids ([`TaskStore::report_set_digest`]), and a digest recomputed from
//! deleted ids would never match a helper's again. The round could then never be
//! released, nor any later one (a helper behind the leader's ledger is told to wait
//! for it), with the leader's budget for it spent.
//!
//! So on a leader the cut-off stops before the oldest released round without a stored
//! collect answer. A helper has no such wait: a round it has not released is not
//! released in its store, and the store's deletion leaves it alone.

use crate::config::Role;
use crate::store::TaskStore;

/// Where garbage collection may stop, and why not later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    /// The newest round `collect_garbage` may be given (`None`: nothing to collect).
    pub through: Option<u32>,
    /// The oldest round the leader released but whose collect answer is not stored,
    /// which holds the cut-off before it (`None` on a helper, or when every release
    /// was collected).
    pub uncollected: Option<u32>,
}

/// The cut-off that keeps the newest `keep` released rounds of `store` (an
/// aggregator's, in `role`) and, on a leader, every round from the oldest release not
/// yet collected on.
///
/// # Errors
/// The store's, reading the ledger or the collect answers.
pub fn garbage_cutoff<S: TaskStore + ?Sized>(
    store: &S,
    role: Role,
    keep: u32,
) -> Result<Cutoff, S::Error> {
    let mut released: Vec<u32> = store.ledger()?.iter().map(|e| e.round).collect();
    released.sort_unstable();
    released.dedup();
    let mut through = released.last().and_then(|newest| newest.checked_sub(keep));
    let mut uncollected = None;
    if role == Role::Leader {
        // Oldest first, up to the cut-off: the first release without an answer holds it.
        for &round in released
            .iter()
            .take_while(|r| through.is_some_and(|t| **r <= t))
        {
            if !store.has_collect_response(round)? {
                uncollected = Some(round);
                through = round.checked_sub(1);
                break;
            }
        }
    }
    Ok(Cutoff {
        through,
        uncollected,
    })
}
