//! The leader's side of a release: close the round, release its own share, and
//! assemble the collector's answer from every helper's.

use super::*;

/// What the leader makes of a helper's refusal ([`Leader::judge_helper_refusal`]).
#[derive(Debug)]
pub enum HelperRefusal {
    /// The answer for the collector: this release attempt is over.
    Answer(Reject),
    /// Send the same request to the same helper once more.
    AskAgain,
}

/// What [`Leader::begin_collect`] needs next.
// One value per collect request: the size difference between the variants is
// irrelevant, and boxing would only add an allocation to the common path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CollectStep {
    /// Ask every helper for its share with this request, then call
    /// [`Leader::finish_collect`] with their answers and the leader's own share.
    AskHelpers {
        /// The request for every helper.
        request: AggregateShareRequest,
        /// The leader's released share.
        leader_share: AggregateShare,
    },
    /// The round was collected before: the stored answer, sent again as it was. No
    /// helper is asked again, so no helper can be made to release the round twice.
    Done(CollectResponse),
}

impl<S: TaskStore> Leader<S> {
    /// Starts releasing `round` for the collector: the round must have no report left
    /// in a queue or a job (else [`ErrorCode::Mismatch`], retriable) and enough valid
    /// reports; it is closed (no more uploads), the leader releases its own share and
    /// returns the request for the helpers.
    pub fn begin_collect<R: CryptoRng + ?Sized>(
        &mut self,
        req: &CollectRequest,
        now: Time,
        rng: &mut R,
    ) -> Result<CollectStep, Reject> {
        self.core.check_task(&req.task_id)?;
        let round = req.round;
        if let Some(bytes) = self
            .core
            .store
            .collect_response(round)
            .map_err(Reject::storage)?
        {
            return match Message::decode(&bytes, &self.core.limits()) {
                Ok(Message::CollectResponse(r)) if r.round == round => Ok(CollectStep::Done(r)),
                _ => Err(Reject::new(
                    ErrorCode::Internal,
                    "stored collect response does not decode",
                )),
            };
        }
        // Every count is read after a look for reports in flight found none: a job
        // (of another leader process sharing the store) may commit between any read
        // and the look. And a look proves nothing about uploads stored after it, so
        // the count that is released comes from a look made after the round was seen
        // closed (by this process or another).
        let mut record = self.core.round_with_reports(round)?;
        if record.status == RoundStatus::Open {
            record = self.counted_after_a_look(round)?;
            self.core
                .store
                .close_round(round)
                .map_err(Reject::storage)?;
        }
        if record.status != RoundStatus::Released {
            record = self.counted_after_a_look(round)?;
        }
        let digest = self
            .core
            .store
            .report_set_digest(round)
            .map_err(Reject::storage)?;
        let released = self
            .core
            .release(round, record.count, &digest, None, now, rng)?;
        let request = AggregateShareRequest {
            task_id: self.core.task_id(),
            round,
            report_count: record.count,
            report_set_digest: digest,
            // The head as of this round's release, not the current one: a helper that
            // missed this round (the leader died before asking it) catches up by
            // releasing it, even after the leader has released later rounds; compared
            // with the current head it would look rolled back for ever.
            leader_ledger: released.share.ledger,
            leader_released_before: released.released_before,
        };
        let leader_share = released.share;
        Ok(CollectStep::AskHelpers {
            request,
            leader_share,
        })
    }

    /// The round as read once a look for reports in flight found none, with enough
    /// valid reports ([`Leader::begin_collect`] says why the order matters).
    fn counted_after_a_look(&self, round: u32) -> Result<crate::store::RoundRecord, Reject> {
        self.wait_for_reports_in_flight(round)?;
        let record = self.core.round_with_reports(round)?;
        self.core.check_min_reports(&record)?;
        Ok(record)
    }

    /// Refuses ([`ErrorCode::Mismatch`], retriable) while `round` has reports queued or
    /// in an open job: the release must wait until they are aggregated or rejected.
    /// A job this process refused (`Leader::take_store_faults`) will not end without an
    /// operator: that is said at once ([`ErrorCode::Internal`]). Only by the process
    /// that refused it: another replica answers as for any job in flight.
    fn wait_for_reports_in_flight(&self, round: u32) -> Result<(), Reject> {
        let queued = !self
            .core
            .store
            .queued_reports(round, 1)
            .map_err(Reject::storage)?
            .is_empty();
        let open = self.core.store.open_jobs().map_err(Reject::storage)?;
        if let Some(job) = open
            .iter()
            .find(|j| j.round == round && self.refused.contains(&j.job_id))
        {
            return Err(Reject::new(
                ErrorCode::Internal,
                format!(
                    "round {round} cannot be released: this leader refused to aggregate \
                     its job {} (stored reports lost or damaged; the leader's log says \
                     which), which stays open until an operator restores them and restarts \
                     the leader",
                    job.job_id.to_hex()
                ),
            ));
        }
        let in_jobs = open.iter().any(|j| j.round == round);
        if queued || in_jobs {
            return Err(Reject::new(
                ErrorCode::Mismatch,
                format!("round {round} still has reports being verified; retry shortly"),
            ));
        }
        Ok(())
    }

    /// What to do about a helper's refusal of `request`. Every refusal but one is
    /// passed on as it is. A helper whose ledger would be behind the leader's
    /// ([`ErrorCode::LedgerBehind`]) cannot tell a release of the leader that has not
    /// reached it yet from its own rollback; the leader can:
    /// - a round it released before this one has no collected answer: that collect is
    ///   in flight (another replica, another request) or was abandoned, so the
    ///   collector gets [`ErrorCode::Busy`], naming the round to collect first;
    /// - every earlier release was collected, so every helper released it. If the
    ///   helper refused before the last of those collects was stored (another replica
    ///   may have finished it meanwhile), its refusal proves nothing: ask it once more
    ///   (`asked_again` false). A helper that still refuses, asked after every earlier
    ///   answer was seen stored, was rolled back: [`ErrorCode::LedgerRollback`].
    ///
    /// Either way the helper released nothing.
    pub fn judge_helper_refusal(
        &mut self,
        request: &AggregateShareRequest,
        refusal: Reject,
        asked_again: bool,
    ) -> HelperRefusal {
        if refusal.code != ErrorCode::LedgerBehind {
            return HelperRefusal::Answer(refusal);
        }
        if let Err(e) = self.core.refresh_ledger() {
            return HelperRefusal::Answer(e);
        }
        // The releases before this round's own (its request carries the head as of
        // it), newest first: the first one not collected settles it.
        let before =
            usize::try_from(request.leader_ledger.entries.saturating_sub(1)).unwrap_or(usize::MAX);
        let entries = self.core.ledger.entries();
        let earlier = entries[..before.min(entries.len())]
            .iter()
            .rev()
            .filter(|e| e.round != request.round);
        for entry in earlier {
            match self.core.store.has_collect_response(entry.round) {
                Ok(true) => {}
                Ok(false) => {
                    return HelperRefusal::Answer(Reject::new(
                        ErrorCode::Busy,
                        format!(
                            "round {}: the helpers have not answered yet for round {}, which \
                             the leader released before it; retry once it is collected \
                             (collect it if nobody is; an earlier round may be named next) \
                             [{}]",
                            request.round, entry.round, refusal.detail
                        ),
                    ));
                }
                Err(e) => return HelperRefusal::Answer(Reject::storage(e)),
            }
        }
        if !asked_again {
            return HelperRefusal::AskAgain;
        }
        // The conclusion first: the detail is cut to the wire's limit from its end.
        HelperRefusal::Answer(Reject::new(
            ErrorCode::LedgerRollback,
            format!(
                "round {}: a helper's ledger was restored from an old copy (restore its newest \
                 copy): it records fewer releases than the leader, and every earlier release \
                 of the leader was collected; nothing is released until an operator resolves \
                 it [{}]",
                request.round, refusal.detail
            ),
        ))
    }

    /// Assembles the collector's answer from the leader's share and every helper's
    /// answer to `request`, and stores it: a repeated collect is answered from the store
    /// ([`CollectStep::Done`]) and never asks a helper again. Refuses
    /// ([`ErrorCode::LedgerRollback`]) when a helper's ledger records more releases
    /// than the leader's, or when a helper had released the round and the leader had
    /// not: the leader's ledger was rolled back, and forwarding would hand the
    /// collector two independently noised releases of one round.
    pub fn finish_collect(
        &mut self,
        request: &AggregateShareRequest,
        leader_share: AggregateShare,
        helper_responses: Vec<AggregateShareResponse>,
    ) -> Result<CollectResponse, Reject> {
        // Other processes sharing the store may have released rounds while the helpers
        // answered: compare with the ledger as it is now, not as this process saw it.
        self.core.refresh_ledger()?;
        let round = request.round;
        let n = self.core.scheme.num_aggregators();
        if helper_responses.len() != n - 1 {
            return Err(Reject::new(
                ErrorCode::BadMessage,
                "one share per helper is needed",
            ));
        }
        let report_count = leader_share.report_count;
        let own_ledger = self.core.ledger_head();
        let mut shares = vec![leader_share];
        for (i, r) in helper_responses.into_iter().enumerate() {
            if r.round != round
                || usize::from(r.share.aggregator_index) != i + 1
                || r.share.report_count != report_count
            {
                return Err(Reject::new(
                    ErrorCode::Mismatch,
                    "a helper's share does not match the round",
                ));
            }
            // A helper that released the round before, when the leader had not: the
            // leader's ledger lost that release, and its new share carries fresh noise.
            // (The reverse is a helper that was down when the leader released: fine.)
            if r.released_before && !request.leader_released_before {
                return Err(Reject::new(
                    ErrorCode::LedgerRollback,
                    format!(
                        "helper {} released round {round} before and the leader had not: the \
                         leader's ledger was rolled back (restore its newest copy); nothing is \
                         forwarded until an operator resolves it",
                        i + 1,
                    ),
                ));
            }
            if own_ledger.is_behind(&r.helper_ledger) {
                return Err(Reject::new(
                    ErrorCode::LedgerRollback,
                    format!(
                        "helper {} records {} releases (ρ = {}), the leader {} (ρ = {}): the \
                         leader's ledger may have been restored from an old copy; nothing is \
                         forwarded until an operator resolves it",
                        i + 1,
                        r.helper_ledger.entries,
                        r.helper_ledger.rho_total,
                        own_ledger.entries,
                        own_ledger.rho_total
                    ),
                ));
            }
            shares.push(r.share);
        }
        let response = CollectResponse {
            round,
            report_count,
            shares,
        };
        self.core
            .store
            .put_collect_response(round, &Message::CollectResponse(response.clone()).encode())
            .map_err(Reject::storage)?;
        Ok(response)
    }
}
