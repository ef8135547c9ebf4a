//! What the leader and the helpers share: a task's configuration, scheme, store and
//! ledger, and the release of an aggregate share.
//!
//! # Releasing a round (each aggregator on its own, DESIGN §3 "close")
//! 1. If this aggregator released the round before, return the stored release: a
//!    retried request never spends budget twice nor re-draws noise (fresh noise on a
//!    second release would let the collector average it away).
//! 2. Check the round's report count and report-set digest against the request (the
//!    aggregators must add the same reports) and the count against `min_clients`.
//! 3. Prepare the ledger entry; refuse with [`ErrorCode::BudgetExceeded`] if it would
//!    pass the budget, and with [`ErrorCode::LedgerBehind`] if the requesting peer's
//!    ledger records more releases than this one would after the entry (the peer
//!    released a round this one has not, or this ledger was restored from an old copy:
//!    see [`crate::ledger::LedgerHead`]; the leader tells which).
//! 4. Add this aggregator's discrete-Gaussian noise (if the task places noise at the
//!    aggregators) to a copy of the aggregate share
//!    ([`crate::scheme::Scheme::finalize_share`]) and seal it to the collector, with the
//!    report count, the budget receipt and the ledger head in the associated data so
//!    that nobody on the way can rewrite them.
//! 5. Store the ledger entry and the sealed release in one transaction; only then
//!    return it. A crash before step 5 releases nothing; after it, step 1 applies.

use cairn_mpc::secret::Seed;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::clock::Time;
use crate::config::TaskConfig;
use crate::hpke::{self, SealPurpose};
use crate::ids::TaskId;
use crate::ledger::{Ledger, LedgerError, LedgerHead};
use crate::messages::{AggregateShare, BudgetReceipt, ErrorCode, Limits};
use crate::privacy::Privacy;
use crate::scheme::Scheme;
use crate::store::{RoundRecord, TaskStore};

pub use crate::error::Reject;

/// A task that does not load, as the refusal of a party built over it.
pub(crate) fn task_reject(e: crate::config::ConfigError) -> Reject {
    Reject::new(ErrorCode::Internal, format!("task: {e}"))
}

/// The task-level state every aggregator holds.
pub struct AggregatorCore<S: TaskStore> {
    pub(crate) task: TaskConfig,
    pub(crate) scheme: Scheme,
    pub(crate) privacy: Privacy,
    pub(crate) verify_key: Seed,
    pub(crate) store: S,
    pub(crate) ledger: Ledger,
    pub(crate) index: u8,
    /// The threads a job's reports are verified and aggregated on.
    pub(crate) parallelism: crate::parallel::Parallelism,
}

impl<S: TaskStore> AggregatorCore<S> {
    /// The record of `round`, or [`ErrorCode::NotEnoughReports`] if no report reached it.
    pub(crate) fn round_with_reports(&self, round: u32) -> Result<RoundRecord, Reject> {
        self.store
            .round(round)
            .map_err(Reject::storage)?
            .ok_or_else(|| {
                Reject::new(
                    ErrorCode::NotEnoughReports,
                    format!("round {round} has no reports"),
                )
            })
    }

    /// Loads the task's state: validates the scheme and privacy parameters and reloads
    /// (and re-verifies) the ledger from the store.
    pub(crate) fn new(
        task: crate::task::Task,
        verify_key: Seed,
        store: S,
        index: u8,
    ) -> Result<Self, Reject> {
        let (task, scheme, privacy) = task.into_parts();
        let entries = store.ledger().map_err(Reject::storage)?;
        let ledger = Ledger::from_entries_with(task.id(), &privacy.ledger_budget(), entries)
            .map_err(|e| Reject::new(ErrorCode::Internal, format!("ledger: {e}")))?;
        Ok(Self {
            task,
            scheme,
            privacy,
            verify_key,
            store,
            ledger,
            index,
            parallelism: crate::parallel::Parallelism::sequential(),
        })
    }

    /// The task id.
    pub(crate) fn task_id(&self) -> TaskId {
        self.task.id()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.scheme.limits()
    }

    pub(crate) fn check_task(&self, task_id: &TaskId) -> Result<(), Reject> {
        if *task_id == self.task.id() {
            Ok(())
        } else {
            Err(Reject::new(
                ErrorCode::UnknownTask,
                format!("task {task_id} is not served here"),
            ))
        }
    }

    /// Refuses a round outside the window of rounds this aggregator takes reports
    /// for: at most [`ROUND_WINDOW`] rounds after the highest round it has state for,
    /// and at most [`ROUND_WINDOW`] rounds before the highest released one (the first
    /// round of a task may be any number). Checked before anything is written for the
    /// round, so a peer cannot make an aggregator store state for arbitrarily many
    /// rounds at once: every new round needs one more accepted message.
    pub(crate) fn check_round_window(&self, round: u32) -> Result<(), Reject> {
        let latest = self.store.latest_round().map_err(Reject::storage)?;
        // From the store, not this process's ledger: another process sharing the store
        // (a replica) may have released later rounds since this one last released.
        let low = self
            .store
            .latest_released_round()
            .map_err(Reject::storage)?
            .map_or(0, |r| r.saturating_sub(ROUND_WINDOW));
        let high = latest.map_or(u32::MAX, |r| r.saturating_add(ROUND_WINDOW));
        if round < low {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {round} is long past (the window is {low}..={high})"),
            ));
        }
        if round > high {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!(
                    "round {round} is too far ahead (the window is {low}..={high}: \
                     release earlier rounds first)"
                ),
            ));
        }
        Ok(())
    }

    /// Releases this aggregator's share of `round` (module docs), checking that it
    /// covers `expected_count` reports with digest `expected_digest` and, if a peer
    /// asks, that the two ledgers agree ([`PeerLedger`]).
    pub(crate) fn release<R: CryptoRng + ?Sized>(
        &mut self,
        round: u32,
        expected_count: u32,
        expected_digest: &[u8; 32],
        peer: Option<&PeerLedger>,
        now: Time,
        rng: &mut R,
    ) -> Result<Released, Reject> {
        self.refresh_ledger()?;
        if let Some(bytes) = self.store.release(round).map_err(Reject::storage)? {
            let (share, answered) = decode_release(&bytes, &self.limits())?;
            if let Some(peer) = peer {
                // The same exchange again (the answer was lost on the way): the release
                // was made for this very peer head.
                if answered.as_ref() == Some(&peer.ledger) {
                    self.check_not_behind(&self.ledger.head(), &peer.ledger)?;
                    return Ok(Released {
                        share,
                        released_before: peer.released_before,
                    });
                }
                if !peer.released_before {
                    return Err(rollback(format!(
                        "aggregator {} released round {round} before, but its peer has no record \
                         of that release: the peer's ledger was rolled back (restore its newest \
                         copy); nothing is released until then",
                        self.index
                    )));
                }
                // A peer's head for a round is fixed by its own stored release of it, so
                // every honest request for the round (a retry, another replica) carries
                // the head answered here. Another head with "released before" is a peer
                // rolled back and releasing the round afresh, now on its retry: handing
                // out this share again would pair it with a second, freshly noised share
                // of the peer. (Releases stored by earlier versions kept no head.)
                if answered.is_some() {
                    return Err(rollback(format!(
                        "aggregator {} released round {round} for another ledger head of its \
                         peer than the one it now presents: the peer's ledger was rolled back \
                         and the round released again (restore its newest copy); nothing is \
                         released until then",
                        self.index
                    )));
                }
                self.check_not_behind(&self.ledger.head(), &peer.ledger)?;
            }
            return Ok(Released {
                share,
                released_before: true,
            });
        }

        let record = self.round_with_reports(round)?;
        let digest = self
            .store
            .report_set_digest(round)
            .map_err(Reject::storage)?;
        if record.count != expected_count || &digest != expected_digest {
            return Err(Reject::new(
                ErrorCode::Mismatch,
                format!(
                    "round {round}: this aggregator has {} reports (digest {}), the request \
                     says {expected_count} (digest {})",
                    record.count,
                    hex::encode(&digest[..8]),
                    hex::encode(&expected_digest[..8])
                ),
            ));
        }
        self.check_min_reports(&record)?;
        let entry = self
            .ledger
            .prepare(round, self.privacy.release_cost(), record.count, now)
            .map_err(|e| match e {
                LedgerError::BudgetExceeded { .. } | LedgerError::EpsilonExceeded { .. } => {
                    Reject::new(ErrorCode::BudgetExceeded, e.to_string())
                }
                other => Reject::new(ErrorCode::Internal, other.to_string()),
            })?;
        let head = self.ledger.head_after(&entry);
        if let Some(peer) = peer {
            self.check_not_behind(&head, &peer.ledger)?;
        }
        let mut aggregate = record.aggregate.clone();
        // The noise and the noisy share's plaintext are wiped when dropped: with the
        // released share, the noise would give this aggregator's share without it.
        let noise = self.privacy.aggregator_noise().map(|sampler| {
            let mut z = Zeroizing::new(vec![0i64; aggregate.as_slice().len()]);
            sampler.fill(rng, &mut z);
            z
        });
        self.scheme
            .finalize_share(&mut aggregate, noise.as_ref().map(|z| z.as_slice()));
        let receipt = self.receipt_after(&entry);
        let sealed = hpke::seal(
            self.task.collector_hpke_key(),
            SealPurpose::AggregateShare,
            &crate::aad::aggregate_aad(
                &self.task_id(),
                round,
                self.index,
                record.count,
                &receipt,
                &head,
            ),
            &Zeroizing::new(aggregate.encode()),
            rng,
        )
        .map_err(|e| Reject::new(ErrorCode::Internal, format!("seal: {e}")))?;
        let share = AggregateShare {
            aggregator_index: self.index,
            report_count: record.count,
            receipt,
            ledger: head,
            sealed_share: sealed,
        };
        if let Err(e) = self
            .store
            .commit_release(&entry, &encode_release(&share, peer.map(|p| &p.ledger)))
        {
            // Another process sharing the store appended first (the store refuses an
            // entry that does not extend its chain): nothing was spent here; the
            // request is retried against the new ledger.
            let before = self.ledger.head();
            self.refresh_ledger()?;
            if self.ledger.head() != before {
                return Err(Reject::new(
                    ErrorCode::Busy,
                    format!("round {round}: another replica released meanwhile; retry"),
                ));
            }
            return Err(Reject::storage(e));
        }
        self.ledger
            .commit(entry)
            .map_err(|e| Reject::new(ErrorCode::Internal, format!("ledger: {e}")))?;
        Ok(Released {
            share,
            released_before: false,
        })
    }

    /// Reloads the ledger when the store's holds more entries than this process has
    /// seen: other processes (replicas of this aggregator) sharing the store may have
    /// released meanwhile. One read of the ledger per release; the chain and the
    /// budget are re-verified on reload. A store ledger that is shorter than what this
    /// process saw, or that does not extend it, was rolled back (a restore from an old
    /// copy while the node ran): refused with [`ErrorCode::LedgerRollback`].
    pub(crate) fn refresh_ledger(&mut self) -> Result<(), Reject> {
        let entries = self.store.ledger().map_err(Reject::storage)?;
        let seen = self.ledger.head();
        let extends = usize::try_from(seen.entries)
            .ok()
            .and_then(|n| n.checked_sub(1).map(|last| (n, last)))
            .is_none_or(|(n, last)| {
                entries.len() >= n && entries.get(last).is_some_and(|e| e.hash == seen.hash)
            });
        if !extends {
            return Err(rollback(format!(
                "aggregator {}: the store's ledger ({} entries) does not extend the {} this                  process has seen: it was rolled back (restore its newest copy)",
                self.index,
                entries.len(),
                seen.entries
            )));
        }
        if entries.len() as u64 == seen.entries {
            return Ok(());
        }
        self.ledger =
            Ledger::from_entries_with(self.task.id(), &self.privacy.ledger_budget(), entries)
                .map_err(|e| Reject::new(ErrorCode::Internal, format!("ledger: {e}")))?;
        Ok(())
    }

    /// This aggregator's current ledger head.
    pub(crate) fn ledger_head(&self) -> LedgerHead {
        self.ledger.head()
    }

    /// Refuses when `own` (this ledger, after the release at hand) records fewer
    /// releases or less ρ than the peer's current ledger.
    /// ([`ErrorCode::LedgerBehind`]: this aggregator cannot tell a peer's release in
    /// flight from its own rollback; the leader, which knows its own releases, can.)
    fn check_not_behind(&self, own: &LedgerHead, peer: &LedgerHead) -> Result<(), Reject> {
        if own.is_behind(peer) {
            return Err(Reject::new(
                ErrorCode::LedgerBehind,
                format!(
                    "aggregator {} records {} releases (ρ = {}), its peer {} (ρ = {}): either \
                     the peer released a round this aggregator has not (collect that round \
                     first) or this ledger was restored from an old copy; nothing is \
                     released until then",
                    self.index, own.entries, own.rho_total, peer.entries, peer.rho_total
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a round below `min_clients` (or below `min_honest_clients` when the
    /// clients carry the noise: KLS21's guarantee needs that many noise shares).
    pub(crate) fn check_min_reports(&self, record: &RoundRecord) -> Result<(), Reject> {
        let needed = self.privacy.min_reports(self.task.min_clients());
        if record.count < needed {
            return Err(Reject::new(
                ErrorCode::NotEnoughReports,
                format!(
                    "round {} has {} valid reports, needs {needed}",
                    record.round, record.count
                ),
            ));
        }
        Ok(())
    }

    fn receipt_after(&self, entry: &crate::ledger::LedgerEntry) -> BudgetReceipt {
        let epsilon_total = match self.ledger.epsilon_after(entry) {
            Some(eps) => eps,
            None => self.privacy.epsilon_of_rho(entry.rho_total),
        };
        BudgetReceipt {
            rho_spent: entry.rho,
            rho_total: entry.rho_total,
            epsilon_total,
            epsilon_remaining: (self.privacy.epsilon_budget() - epsilon_total).max(0.0),
        }
    }
}

/// How many rounds an aggregator accepts beyond the highest round it has state for, and
/// before the highest released round (`AggregatorCore::check_round_window`).
pub const ROUND_WINDOW: u32 = 16;

/// What the aggregator asking for a release says about its own ledger: its current head
/// and whether it had released the round before. An aggregator refuses when the peer
/// records more releases than it would after this one, or when it released the round
/// before and the peer says it had not (the peer's ledger lost that release, and its
/// new share carries fresh noise the collector could average with the old one). A
/// peer that released the round when this aggregator did not is a helper that was
/// down: it releases now. The leader never asks a helper again for a round whose
/// shares the collector already has: it answers from its stored collect response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerLedger {
    /// The peer's current ledger head (after its own release of the round).
    pub ledger: LedgerHead,
    /// Whether the peer had released the round before this request.
    pub released_before: bool,
}

/// An aggregator's release of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// The sealed share.
    pub share: AggregateShare,
    /// Whether it was released before (this is the stored release, not a new one).
    pub released_before: bool,
}

fn rollback(detail: String) -> Reject {
    Reject::new(ErrorCode::LedgerRollback, detail)
}

/// Version tag of a stored release (its own storage format, not a wire message).
const STORED_RELEASE_V2: u8 = 2;

/// A stored release: the share, and the peer ledger head it answered (helpers), so
/// that a resent request is told from a peer that forgot the release.
fn encode_release(share: &AggregateShare, answered: Option<&LedgerHead>) -> Vec<u8> {
    let mut out = vec![STORED_RELEASE_V2];
    crate::messages::encode_aggregate_share(share, &mut out);
    match answered {
        Some(head) => {
            out.push(1);
            head.encode_into(&mut out);
        }
        None => out.push(0),
    }
    out
}

fn decode_release(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(AggregateShare, Option<LedgerHead>), Reject> {
    let corrupt = || Reject::new(ErrorCode::Internal, "stored release does not decode");
    let mut r = cairn_mpc::codec::Reader::new(bytes);
    if r.read_u8().map_err(|_| corrupt())? != STORED_RELEASE_V2 {
        return Err(corrupt());
    }
    let share = crate::messages::decode_aggregate_share(&mut r, limits).map_err(|_| corrupt())?;
    let answered = match r.read_u8().map_err(|_| corrupt())? {
        0 => None,
        1 => Some(LedgerHead::decode_from(&mut r).map_err(|_| corrupt())?),
        _ => return Err(corrupt()),
    };
    r.finish().map_err(|_| corrupt())?;
    Ok((share, answered))
}
