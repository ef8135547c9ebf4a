//! Retention: which released rounds [`TaskStore::collect_garbage`] may empty.
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
//! So a leader collects garbage with [`GarbageScope::Collected`]: only rounds whose
//! collect answer is stored lose their records, and the store decides that in the
//! deleting transaction (a round released, or collected, after [`garbage_cutoff`] read
//! the ledger is judged as it is then). A helper uses [`GarbageScope::Released`]: a
//! round it has not released is not released in its store.

use crate::config::Role;
use crate::store::{GarbageScope, TaskStore};

/// How far garbage collection may go, for one aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutoff {
    /// The newest round `collect_garbage` may be given (`None`: nothing to collect):
    /// the newest `keep` released rounds are kept whole.
    pub through: Option<u32>,
    /// Which released rounds up to `through` may go.
    pub scope: GarbageScope,
    /// On a leader, the released rounds up to `through` whose collect answer is not
    /// stored (as the ledger and the answers stood when read): they are kept.
    pub uncollected: Vec<u32>,
}

/// The cut-off that keeps the newest `keep` released rounds of `store` (an
/// aggregator's, in `role`), and the scope of the deletion.
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
    // Counted in released rounds, not in round numbers (rounds need not be
    // consecutive): the one just older than the newest `keep`.
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let through = released
        .len()
        .checked_sub(keep.saturating_add(1))
        .map(|i| released[i]);
    let scope = match role {
        Role::Leader => GarbageScope::Collected,
        Role::Helper => GarbageScope::Released,
    };
    let mut uncollected = Vec::new();
    if scope == GarbageScope::Collected {
        for &round in released
            .iter()
            .take_while(|r| through.is_some_and(|t| **r <= t))
        {
            if !store.has_collect_response(round)? {
                uncollected.push(round);
            }
        }
    }
    Ok(Cutoff {
        through,
        scope,
        uncollected,
    })
}
