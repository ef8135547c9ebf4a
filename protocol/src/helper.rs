//! A helper's state machine.
//!
//! A helper never talks to clients. For each job from the leader it opens its sealed
//! input shares (HPKE, bound to task, report, round and helper index), refuses report
//! ids it has aggregated before, prepares its verifier shares, and — once the leader
//! sends the joint decision — adds exactly the accepted reports to its running
//! aggregate in one atomic store operation. Its preparation state lives only in memory
//! between the two messages: if the helper restarts in between, it answers
//! [`ErrorCode::UnknownJob`] and the leader re-sends the job, which prepares to the
//! same verifier shares.
//!
//! On the leader's request it releases its aggregate share of a round on its own
//! terms: same report count and report-set digest as the leader, enough reports, and
//! its **own** ledger's budget check (see [`crate::aggregator`]).

use std::collections::BTreeMap;

use cairn_mpc::secret::Seed;
use rand_core::CryptoRng;

use crate::aggregator::{AggregatorCore, Reject, input_share_aad};
use crate::clock::Time;
use crate::config::TaskConfig;
use crate::hpke::{self, HpkeSecretKey, SealPurpose};
use crate::ids::{JobId, ReportId};
use crate::messages::{
    AggregateShareRequest, AggregateShareResponse, ErrorCode, JobContinue, JobContinueResponse,
    JobInit, JobResponse, PrepareResult,
};
use crate::scheme::{Aggregate, Prepared};
use crate::store::{RoundStatus, TaskStore};

/// A helper of one task.
pub struct Helper<S: TaskStore> {
    core: AggregatorCore<S>,
    hpke_key: HpkeSecretKey,
    jobs: BTreeMap<JobId, PreparedJob>,
}

struct PreparedJob {
    round: u32,
    prepared: Vec<(ReportId, Prepared)>,
}

impl<S: TaskStore> Helper<S> {
    /// Helper number `index` (1-based: the leader is 0) of `task`, with the task's
    /// verify key, its HPKE secret key and its store (reloading its ledger).
    pub fn new(
        task: TaskConfig,
        index: u8,
        verify_key: Seed,
        hpke_key: HpkeSecretKey,
        store: S,
    ) -> Result<Self, Reject> {
        if index == 0 || usize::from(index) >= task.num_aggregators() {
            return Err(Reject::new(
                ErrorCode::Internal,
                format!("helper index {index} is not in the task"),
            ));
        }
        Ok(Self {
            core: AggregatorCore::new(task, verify_key, store, index)?,
            hpke_key,
            jobs: BTreeMap::new(),
        })
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        &self.core.task
    }

    /// The decoding limits of this task's messages.
    pub fn limits(&self) -> crate::messages::Limits {
        self.core.limits()
    }

    /// ρ spent so far according to this helper's own ledger.
    pub fn rho_spent(&self) -> f64 {
        self.core.ledger.rho_spent()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// Prepares every report of a job; one result per report, in order.
    pub fn handle_job_init(&mut self, init: &JobInit, now: Time) -> Result<JobResponse, Reject> {
        self.core.check_task(&init.task_id)?;
        let round = self
            .core
            .store
            .open_round(init.round, now, self.core.scheme.dimension())
            .map_err(Reject::storage)?;
        if round.status == RoundStatus::Released {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {} was released", init.round),
            ));
        }
        let task_id = self.core.task_id();
        let mut results = Vec::with_capacity(init.reports.len());
        let mut prepared = Vec::new();
        for share in &init.reports {
            let report_id = share.report_id;
            let outcome = (|| {
                if self
                    .core
                    .store
                    .is_aggregated(report_id)
                    .map_err(|_| ErrorCode::Internal)?
                {
                    return Err(ErrorCode::Replay);
                }
                let aad = input_share_aad(&task_id, &report_id, init.round, self.core.index);
                let plain = hpke::open(
                    &self.hpke_key,
                    SealPurpose::HelperInputShare,
                    &aad,
                    &share.sealed_share,
                )
                .map_err(|_| ErrorCode::DecryptFailed)?;
                self.core.scheme.prepare(
                    usize::from(self.core.index),
                    &self.core.verify_key,
                    &report_id,
                    &share.public_share,
                    &plain,
                )
            })();
            match outcome {
                Ok((state, verifier_share)) => {
                    prepared.push((report_id, state));
                    results.push(PrepareResult::Verifier {
                        report_id,
                        verifier_share,
                    });
                }
                Err(code) => results.push(PrepareResult::Rejected { report_id, code }),
            }
        }
        self.jobs.insert(
            init.job_id,
            PreparedJob {
                round: init.round,
                prepared,
            },
        );
        Ok(JobResponse {
            job_id: init.job_id,
            results,
        })
    }

    /// Adds the job's accepted reports to the aggregate, once. A retried continue for a
    /// committed job is answered from the store; one for a job this helper does not
    /// hold (it restarted) is [`ErrorCode::UnknownJob`], so the leader re-sends the job.
    pub fn handle_job_continue(
        &mut self,
        cont: &JobContinue,
    ) -> Result<JobContinueResponse, Reject> {
        self.core.check_task(&cont.task_id)?;
        if let Some(count) = self
            .core
            .store
            .job_committed(cont.job_id)
            .map_err(Reject::storage)?
        {
            self.jobs.remove(&cont.job_id);
            return Ok(JobContinueResponse {
                job_id: cont.job_id,
                accepted_count: count,
            });
        }
        let job = self.jobs.get(&cont.job_id).ok_or_else(|| {
            Reject::new(
                ErrorCode::UnknownJob,
                format!("job {} is not prepared here", cont.job_id.to_hex()),
            )
        })?;
        if job.round != cont.round {
            return Err(Reject::new(ErrorCode::BadMessage, "job round differs"));
        }
        let mut contribution = Aggregate::zero(self.core.scheme.dimension());
        for id in &cont.accepted {
            let (_, state) = job.prepared.iter().find(|(r, _)| r == id).ok_or_else(|| {
                Reject::new(
                    ErrorCode::BadMessage,
                    format!("report {id} was not prepared here"),
                )
            })?;
            self.core.scheme.accumulate(state, &mut contribution)?;
        }
        self.core
            .store
            .commit_job(cont.round, cont.job_id, &cont.accepted, &contribution)
            .map_err(Reject::storage)?;
        self.jobs.remove(&cont.job_id);
        Ok(JobContinueResponse {
            job_id: cont.job_id,
            accepted_count: u32::try_from(cont.accepted.len()).unwrap_or(u32::MAX),
        })
    }

    /// Releases this helper's share of a round (idempotent; see [`crate::aggregator`]).
    pub fn handle_aggregate_share_request<R: CryptoRng + ?Sized>(
        &mut self,
        req: &AggregateShareRequest,
        now: Time,
        rng: &mut R,
    ) -> Result<AggregateShareResponse, Reject> {
        self.core.check_task(&req.task_id)?;
        if self
            .core
            .store
            .round(req.round)
            .map_err(Reject::storage)?
            .is_some()
        {
            self.core
                .store
                .close_round(req.round)
                .map_err(Reject::storage)?;
        }
        let share = self.core.release(
            req.round,
            req.report_count,
            &req.report_set_digest,
            now,
            rng,
        )?;
        Ok(AggregateShareResponse {
            round: req.round,
            share,
        })
    }
}
