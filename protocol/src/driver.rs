//! Sans-IO drivers of the leader's two exchanges with its helpers: an aggregation job
//! and the release of a round.
//!
//! A driver holds the state of one exchange, says which request goes to which helper
//! next, takes the answers, and makes every decision of the exchange by calling the
//! [`Leader`]: when to decide and commit a job, when to re-send a job to a helper that
//! lost it, when a release must wait for reports still in flight, and when to give up.
//! It owns no socket, no clock and no thread. The node, the lossy-network simulation
//! and the benchmark drive the same drivers and differ only in how bytes move (the
//! shape of quinn-proto's `Connection`).
//!
//! # Driving a job ([`JobDriver`])
//! 1. Obtain one: [`JobDriver::next_queued`] (a batch of queued reports),
//!    [`JobDriver::start`] (one round's), or [`JobDriver::resume_all`] (the jobs the
//!    store recorded before a restart).
//! 2. While [`JobDriver::poll_transmit`] returns a [`Transmit`], send its message to
//!    its helper and pass what came back to [`JobDriver::handle_answer`]: the helper's
//!    message, or a transport failure as a [`Reject`]. One request is outstanding at a
//!    time, and `poll_transmit` returns it again until its answer is handled, so a
//!    caller may re-send it after a lost answer (every helper request is idempotent).
//! 3. When `poll_transmit` returns `None` the job is committed:
//!    [`JobDriver::outcome`], and [`JobDriver::take_rejections`] for logs and metrics.
//!
//! An error from `handle_answer` ends the job. The leader then forgets the job's
//! in-memory state, and the store still holds it: the next [`JobDriver::resume_all`]
//! re-sends it, with the recorded decision if there was one.
//!
//! # Driving a release ([`CollectDriver`])
//! Call [`CollectDriver::poll`] until it returns [`CollectPoll::Done`]:
//! - [`CollectPoll::Transmit`]: send, and pass the answer to
//!   [`CollectDriver::handle_answer`] (a helper's refusal comes back from the next
//!   `poll`, as the leader judges it);
//! - [`CollectPoll::Retry`]: reports of the round are still queued or in a job. Run the
//!   queued jobs (with [`JobDriver`]s), wait `after`, and poll again. The driver gives
//!   up with [`ErrorCode::Mismatch`] once the patience passed to
//!   [`CollectDriver::new`] is spent (the caller passes the current instant to `poll`).

use std::time::{Duration, Instant};

use rand_core::CryptoRng;

use crate::clock::Time;
use crate::error::Reject;
use crate::helper::Helper;
use crate::ids::JobId;
use crate::leader::{CollectStep, HelperRefusal, Leader, Rejection};
use crate::messages::{
    AggregateShare, AggregateShareRequest, AggregateShareResponse, CollectRequest, CollectResponse,
    ErrorCode, JobContinue, JobContinueResponse, JobInit, JobResponse, Message,
};
use crate::store::{CommitOutcome, TaskStore};

/// How long a leader's collect waits for the round's reports in flight before it
/// answers [`ErrorCode::Mismatch`]: the patience a node passes to
/// [`CollectDriver::new`]. A collector must wait longer than this for its answer, or it
/// gives up on (and re-sends) a collect the leader is still working on.
pub const COLLECT_PATIENCE: Duration = Duration::from_secs(60);

/// A request for one helper.
#[derive(Debug)]
pub struct Transmit {
    /// The helper, counted from 0 in the task's order of helpers (aggregator `helper + 1`).
    pub helper: usize,
    /// The request.
    pub message: Message,
}

/// How a committed job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOutcome {
    /// Whether this commit added the contributions (or found them added before).
    pub commit: CommitOutcome,
    /// Reports the job accepted.
    pub accepted: usize,
}

/// One aggregation job, from its inits to its commit (module docs).
#[derive(Debug)]
pub struct JobDriver {
    job_id: JobId,
    inits: Vec<JobInit>,
    phase: JobPhase,
    rejections: Vec<Rejection>,
}

#[derive(Debug)]
enum JobPhase {
    /// Sending the inits; the responses so far, in helper order.
    Init(Vec<JobResponse>),
    /// Sending the decision; the confirmations so far, in helper order.
    Continue {
        decision: JobContinue,
        acks: Vec<JobContinueResponse>,
        /// The next helper lost the job: its init is being sent again.
        reinit: bool,
        /// Helpers whose init was sent again (once each at most).
        reinitialised: Vec<bool>,
    },
    Committed(JobOutcome),
    Failed,
}

impl JobDriver {
    /// A job over the next batch of `round`'s queued reports; `None` if none is queued.
    pub fn start<S: TaskStore, R: CryptoRng + ?Sized>(
        leader: &mut Leader<S>,
        round: u32,
        rng: &mut R,
    ) -> Result<Option<Self>, Reject> {
        Ok(leader
            .start_job(round, rng)?
            .map(|(job_id, inits)| Self::new(job_id, inits, None)))
    }

    /// A job over the next batch of queued reports of the earliest round that has any;
    /// `None` if no report is queued.
    pub fn next_queued<S: TaskStore, R: CryptoRng + ?Sized>(
        leader: &mut Leader<S>,
        rng: &mut R,
    ) -> Result<Option<Self>, Reject> {
        for round in leader.rounds_with_queued_reports()? {
            if let Some(driver) = Self::start(leader, round, rng)? {
                return Ok(Some(driver));
            }
        }
        Ok(None)
    }

    /// The jobs the store recorded and did not commit (after a restart), each resumed
    /// where its record says: re-sent from the inits, or with its recorded decision.
    pub fn resume_all<S: TaskStore>(leader: &mut Leader<S>) -> Result<Vec<Self>, Reject> {
        Ok(leader
            .resume_jobs()?
            .into_iter()
            .map(|job| Self::new(job.job_id, job.inits, job.decided))
            .collect())
    }

    fn new(job_id: JobId, inits: Vec<JobInit>, decided: Option<JobContinue>) -> Self {
        let helpers = inits.len();
        let phase = match decided {
            None => JobPhase::Init(Vec::with_capacity(helpers)),
            Some(decision) => JobPhase::Continue {
                decision,
                acks: Vec::with_capacity(helpers),
                reinit: false,
                reinitialised: vec![false; helpers],
            },
        };
        Self {
            job_id,
            inits,
            phase,
            rejections: Vec::new(),
        }
    }

    /// The job.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// The outstanding request, or `None` once the job is committed or failed.
    pub fn poll_transmit(&self) -> Option<Transmit> {
        let (helper, message) = match &self.phase {
            JobPhase::Init(responses) => {
                let j = responses.len();
                (j, Message::JobInit(self.inits.get(j)?.clone()))
            }
            JobPhase::Continue {
                decision,
                acks,
                reinit,
                ..
            } => {
                let j = acks.len();
                if *reinit {
                    (j, Message::JobInit(self.inits.get(j)?.clone()))
                } else {
                    (j, Message::JobContinue(decision.clone()))
                }
            }
            JobPhase::Committed(_) | JobPhase::Failed => return None,
        };
        Some(Transmit { helper, message })
    }

    /// Takes the answer to the outstanding request (module docs). On an error the job
    /// is over and the leader has forgotten it (the store keeps it for a resume).
    pub fn handle_answer<S: TaskStore>(
        &mut self,
        leader: &mut Leader<S>,
        answer: Result<Message, Reject>,
    ) -> Result<(), Reject> {
        let outcome = self.step(leader, answer);
        if outcome.is_err() {
            self.phase = JobPhase::Failed;
            leader.forget_job(self.job_id);
        }
        outcome
    }

    fn step<S: TaskStore>(
        &mut self,
        leader: &mut Leader<S>,
        answer: Result<Message, Reject>,
    ) -> Result<(), Reject> {
        let helpers = self.inits.len();
        match &mut self.phase {
            JobPhase::Init(responses) => {
                let j = responses.len();
                match helper_answer(j, answer)? {
                    Message::JobResponse(r) => responses.push(r),
                    other => return Err(unexpected(j, &other)),
                }
                if responses.len() == helpers {
                    let (decision, rejections) = leader.decide_job(self.job_id, responses)?;
                    self.rejections.extend(rejections);
                    self.phase = JobPhase::Continue {
                        decision,
                        acks: Vec::with_capacity(helpers),
                        reinit: false,
                        reinitialised: vec![false; helpers],
                    };
                }
                Ok(())
            }
            JobPhase::Continue {
                decision,
                acks,
                reinit,
                reinitialised,
            } => {
                let j = acks.len();
                if *reinit {
                    // The answer to the re-sent init; the decision goes next.
                    return match helper_answer(j, answer)? {
                        Message::JobResponse(_) => {
                            *reinit = false;
                            Ok(())
                        }
                        other => Err(unexpected(j, &other)),
                    };
                }
                match helper_answer(j, answer) {
                    Ok(Message::JobContinueResponse(ack)) => acks.push(ack),
                    Ok(other) => return Err(unexpected(j, &other)),
                    // The helper restarted between init and continue: prepare it again,
                    // once. It answers a repeated init as it did the first time.
                    Err(e) if e.code == ErrorCode::UnknownJob && !reinitialised[j] => {
                        reinitialised[j] = true;
                        *reinit = true;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                if acks.len() == helpers {
                    let commit = leader.commit_job(self.job_id, acks)?;
                    self.phase = JobPhase::Committed(JobOutcome {
                        commit,
                        accepted: decision.accepted.len(),
                    });
                }
                Ok(())
            }
            JobPhase::Committed(_) | JobPhase::Failed => Err(Reject::new(
                ErrorCode::Internal,
                "the job has no outstanding request",
            )),
        }
    }

    /// How the job ended, once committed.
    pub fn outcome(&self) -> Option<JobOutcome> {
        match self.phase {
            JobPhase::Committed(o) => Some(o),
            _ => None,
        }
    }

    /// The reports the leader rejected when it decided the job (once; empty after).
    pub fn take_rejections(&mut self) -> Vec<Rejection> {
        std::mem::take(&mut self.rejections)
    }
}

/// What a [`CollectDriver`] needs next.
// One value per poll; boxing the response would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CollectPoll {
    /// Send this request and pass the answer to [`CollectDriver::handle_answer`].
    Transmit(Transmit),
    /// Reports of the round are still queued or in a job: run the queued jobs, wait
    /// `after`, and poll again.
    Retry {
        /// How long to wait (zero the first time).
        after: Duration,
    },
    /// The round's release, for the collector.
    Done(CollectResponse),
}

/// One release of a round, from the collector's request to the response (module docs).
#[derive(Debug)]
pub struct CollectDriver {
    request: CollectRequest,
    now: Time,
    give_up_at: Instant,
    retried: bool,
    phase: CollectPhase,
}

// One value per release: boxing the share would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum CollectPhase {
    Begin,
    Shares {
        request: AggregateShareRequest,
        leader_share: AggregateShare,
        shares: Vec<AggregateShareResponse>,
        helpers: usize,
        /// The outstanding request's refusal, judged by the leader at the next poll.
        refusal: Option<Reject>,
        /// Whether a judgement found every earlier release of the leader collected:
        /// a refusal of any request sent after it is conclusive.
        earlier_seen_collected: bool,
    },
    Finished,
}

impl CollectDriver {
    /// Interval between attempts while reports of the round are in flight.
    pub const RETRY_INTERVAL: Duration = Duration::from_millis(200);

    /// A release of `request.round`, requested at protocol time `now`. Attempts stop
    /// with [`ErrorCode::Mismatch`] after `patience` from `started`.
    pub fn new(request: CollectRequest, now: Time, started: Instant, patience: Duration) -> Self {
        Self {
            request,
            now,
            give_up_at: started + patience,
            retried: false,
            phase: CollectPhase::Begin,
        }
    }

    /// The next step (module docs); `at` is the current instant.
    pub fn poll<S: TaskStore, R: CryptoRng + ?Sized>(
        &mut self,
        leader: &mut Leader<S>,
        rng: &mut R,
        at: Instant,
    ) -> Result<CollectPoll, Reject> {
        if let CollectPhase::Begin = self.phase {
            match leader.begin_collect(&self.request, self.now, rng) {
                Ok(CollectStep::Done(response)) => {
                    // Collected before: the stored answer, no helper asked again.
                    self.phase = CollectPhase::Finished;
                    return Ok(CollectPoll::Done(response));
                }
                Ok(CollectStep::AskHelpers {
                    request,
                    leader_share,
                }) => {
                    let helpers = leader.task().num_aggregators() - 1;
                    self.phase = CollectPhase::Shares {
                        request,
                        leader_share,
                        shares: Vec::with_capacity(helpers),
                        helpers,
                        refusal: None,
                        earlier_seen_collected: false,
                    };
                }
                Err(e) if e.code == ErrorCode::Mismatch && at < self.give_up_at => {
                    let after = if self.retried {
                        Self::RETRY_INTERVAL
                    } else {
                        Duration::ZERO
                    };
                    self.retried = true;
                    return Ok(CollectPoll::Retry { after });
                }
                Err(e) => {
                    self.phase = CollectPhase::Finished;
                    return Err(e);
                }
            }
        }
        if let CollectPhase::Shares {
            request,
            refusal,
            earlier_seen_collected,
            ..
        } = &mut self.phase
            && let Some(refusal) = refusal.take()
        {
            match leader.judge_helper_refusal(request, refusal, *earlier_seen_collected) {
                // The same request again, below.
                HelperRefusal::AskAgain => *earlier_seen_collected = true,
                HelperRefusal::Answer(e) => {
                    self.phase = CollectPhase::Finished;
                    return Err(e);
                }
            }
        }
        if let CollectPhase::Shares {
            request,
            shares,
            helpers,
            ..
        } = &self.phase
            && shares.len() < *helpers
        {
            return Ok(CollectPoll::Transmit(Transmit {
                helper: shares.len(),
                message: Message::AggregateShareRequest(request.clone()),
            }));
        }
        match std::mem::replace(&mut self.phase, CollectPhase::Finished) {
            CollectPhase::Shares {
                request,
                leader_share,
                shares,
                ..
            } => Ok(CollectPoll::Done(leader.finish_collect(
                &request,
                leader_share,
                shares,
            )?)),
            CollectPhase::Begin | CollectPhase::Finished => {
                Err(Reject::new(ErrorCode::Internal, "the release is over"))
            }
        }
    }

    /// Takes a helper's answer to the outstanding request. A helper's refusal (or a
    /// transport failure) goes to the leader at the next [`CollectDriver::poll`]
    /// ([`Leader::judge_helper_refusal`]: a helper behind the leader's ledger is either
    /// waiting for another collect or rolled back), which either asks the helper once
    /// more or ends the release attempt with the leader's answer. The collector may
    /// ask again: the leader's share is released once and kept, and every helper
    /// answers a repeated request as the first time.
    pub fn handle_answer(&mut self, answer: Result<Message, Reject>) -> Result<(), Reject> {
        let CollectPhase::Shares {
            shares,
            helpers,
            refusal,
            ..
        } = &mut self.phase
        else {
            return Err(Reject::new(
                ErrorCode::Internal,
                "the release has no outstanding request",
            ));
        };
        let j = shares.len();
        if j >= *helpers || refusal.is_some() {
            return Err(Reject::new(
                ErrorCode::Internal,
                "the release has no outstanding request",
            ));
        }
        match helper_answer(j, answer) {
            Ok(Message::AggregateShareResponse(r)) => {
                shares.push(r);
                Ok(())
            }
            Ok(other) => {
                self.phase = CollectPhase::Finished;
                Err(unexpected(j, &other))
            }
            Err(e) => {
                *refusal = Some(e);
                Ok(())
            }
        }
    }
}

/// Runs every queued report of `round` through jobs with helpers in the same process
/// (tests, benchmarks, a deployment in one process): the drivers above over direct
/// calls instead of a network. Returns the rejected reports.
pub fn aggregate_in_process<S: TaskStore, H: TaskStore, R: CryptoRng + ?Sized>(
    leader: &mut Leader<S>,
    helpers: &mut [Helper<H>],
    round: u32,
    now: Time,
    rng: &mut R,
) -> Result<Vec<Rejection>, Reject> {
    let mut rejected = Vec::new();
    loop {
        let mut driver = match JobDriver::start(leader, round, rng) {
            Ok(Some(driver)) => driver,
            Ok(None) => break,
            // Many batches used up with nothing for the helpers (or lost to another
            // process sharing the store): each such answer leaves the queue shorter.
            Err(e) if e.code == ErrorCode::Busy => continue,
            Err(e) => return Err(e),
        };
        while let Some(t) = driver.poll_transmit() {
            let answer = in_process(helpers, t, now, rng);
            driver.handle_answer(leader, answer)?;
        }
        rejected.extend(driver.take_rejections());
    }
    Ok(rejected)
}

/// Releases `round` with helpers in the same process (see [`aggregate_in_process`]).
pub fn collect_in_process<S: TaskStore, H: TaskStore, R: CryptoRng + ?Sized>(
    leader: &mut Leader<S>,
    helpers: &mut [Helper<H>],
    request: CollectRequest,
    now: Time,
    rng: &mut R,
) -> Result<CollectResponse, Reject> {
    let started = Instant::now();
    let mut driver = CollectDriver::new(request, now, started, Duration::ZERO);
    loop {
        match driver.poll(leader, rng, started)? {
            CollectPoll::Transmit(t) => {
                let answer = in_process(helpers, t, now, rng);
                driver.handle_answer(answer)?;
            }
            // Unreachable with zero patience: a Mismatch is returned as an error.
            CollectPoll::Retry { .. } => {
                return Err(Reject::new(
                    ErrorCode::Mismatch,
                    "reports of the round are still in flight",
                ));
            }
            CollectPoll::Done(response) => return Ok(response),
        }
    }
}

fn in_process<H: TaskStore, R: CryptoRng + ?Sized>(
    helpers: &mut [Helper<H>],
    t: Transmit,
    now: Time,
    rng: &mut R,
) -> Result<Message, Reject> {
    helpers
        .get_mut(t.helper)
        .ok_or_else(|| Reject::new(ErrorCode::Internal, "no such helper"))?
        .handle_message(t.message, now, rng)
}

/// A helper's answer with its error message turned into a [`Reject`] naming the helper.
fn helper_answer(j: usize, answer: Result<Message, Reject>) -> Result<Message, Reject> {
    match answer {
        Ok(Message::Error(e)) => Err(Reject::new(
            e.code,
            format!("helper {}: {}", j + 1, e.detail),
        )),
        Ok(m) => Ok(m),
        Err(e) => Err(Reject::new(
            e.code,
            format!("helper {}: {}", j + 1, e.detail),
        )),
    }
}

/// A helper's answer of the wrong kind.
fn unexpected(j: usize, answer: &Message) -> Reject {
    Reject::new(
        ErrorCode::BadMessage,
        format!("helper {} sent {}", j + 1, answer.name()),
    )
}
