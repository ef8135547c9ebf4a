//! Moving the protocol drivers' messages: each request a [`JobDriver`] or
//! [`CollectDriver`] names goes to its helper over QUIC, and the answer comes back to
//! the driver; every decision stays in the driver.

use super::leader::{LeaderShared, with_leader};
use super::*;

/// Sends a driver's request to its helper and decodes the answer; a transport failure
/// is a retriable [`ErrorCode::Busy`] reject (the job or release is retried later).
pub(super) async fn send(shared: &LeaderShared, t: &Transmit) -> Result<Message, Reject> {
    let peer = shared
        .helpers
        .get(t.helper)
        .ok_or_else(|| Reject::new(ErrorCode::Internal, "no such helper"))?;
    let (answer, used) = peer.request_on(&t.message.encode()).await;
    let answer = answer.map_err(|e| Reject::new(ErrorCode::Busy, e.to_string()))?;
    let message = Message::decode(&answer, &shared.limits)
        .map_err(|e| Reject::new(ErrorCode::BadMessage, format!("undecodable answer: {e}")))?;
    if let Message::Error(e) = &message
        && matches!(e.code, ErrorCode::Busy | ErrorCode::Internal)
        && let Some(used) = used
    {
        // This replica of the helper is full or failing: the retry goes to another
        // (the job is re-sent whole there if its preparation stayed behind). With two
        // jobs in flight both may hear so from one replica: it is left once.
        peer.move_on_from(used).await;
    }
    Ok(message)
}

/// Moves one job's messages until the driver has committed it or failed.
pub(super) async fn drive_job(
    shared: &Arc<LeaderShared>,
    mut driver: JobDriver,
) -> Result<(), Reject> {
    while let Some(t) = driver.poll_transmit() {
        let answer = send(shared, &t).await;
        driver = with_leader(shared, move |leader| {
            driver.handle_answer(leader, answer)?;
            Ok(driver)
        })
        .await?;
    }
    for r in driver.take_rejections() {
        shared.metrics.report_rejected(r.code);
        tracing::info!(report = %r.report_id, reason = %r.code, "report rejected");
    }
    if let Some(outcome) = driver.outcome()
        && outcome.commit == CommitOutcome::Applied
    {
        shared
            .metrics
            .reports_accepted(u64::try_from(outcome.accepted).unwrap_or(u64::MAX));
    }
    Ok(())
}

/// Logs as errors the jobs the leader refused because their stored reports are lost
/// or damaged (`Leader::take_store_faults`), each once.
fn log_store_faults(leader: &mut Leader<NodeStore>) {
    for fault in leader.take_store_faults() {
        tracing::error!(code = %fault.code, detail = %fault.detail, "stored reports damaged");
    }
}

/// Re-runs the jobs the store recorded but did not commit (after a restart, or whose
/// helper was unreachable); a job the leader refuses is logged once and left, the
/// others resumed all the same.
pub(super) async fn resume_jobs(shared: &Arc<LeaderShared>) -> Result<(), Reject> {
    let _guard = shared.jobs.lock().await;
    let drivers = with_leader(shared, |leader| {
        let drivers = JobDriver::resume_all(leader);
        log_store_faults(leader);
        drivers
    })
    .await?;
    let (outcome, undriven) = drive_each(
        drivers,
        |driver| async move {
            tracing::info!(job = %driver.job_id().to_hex(), "resuming aggregation job");
            drive_job(shared, driver).await
        },
        |e| e.code == ErrorCode::Busy,
    )
    .await;
    if !undriven.is_empty() {
        let ids: Vec<_> = undriven.iter().map(JobDriver::job_id).collect();
        with_leader(shared, move |leader| {
            for id in ids {
                leader.forget_job(id);
            }
            Ok(())
        })
        .await?;
    }
    outcome
}

/// Drives `drivers` in turn and returns the first error, with the drivers left
/// undriven. After an error `stops` accepts (a helper unreachable or full: the others
/// would each wait out their own timeout, holding the jobs lock meanwhile) the rest
/// are returned undriven; after any other, the next is driven all the same. The
/// leader holds a resumed job as in progress until its driver finishes or fails, so
/// the caller must release the undriven ones (`Leader::forget_job`) for the next
/// resume: a driver merely dropped would leave its job so for good.
async fn drive_each<D, F, Fut>(
    drivers: Vec<D>,
    mut drive: F,
    stops: impl Fn(&Reject) -> bool,
) -> (Result<(), Reject>, Vec<D>)
where
    F: FnMut(D) -> Fut,
    Fut: std::future::Future<Output = Result<(), Reject>>,
{
    let mut first = Ok(());
    let mut drivers = drivers.into_iter();
    while let Some(driver) = drivers.next() {
        if let Err(e) = drive(driver).await {
            let stop = stops(&e);
            if first.is_ok() {
                first = Err(e);
            }
            if stop {
                return (first, drivers.collect());
            }
        }
    }
    (first, Vec::new())
}

/// Runs jobs until no report is queued, [`JOBS_IN_FLIGHT`] at a time
/// ([`drive_concurrently`]): while the helpers verify one job's reports, the leader
/// prepares the next job's.
pub(super) async fn run_queued_jobs(shared: &Arc<LeaderShared>) -> Result<(), Reject> {
    let _guard = shared.jobs.lock().await;
    drive_concurrently(
        JOBS_IN_FLIGHT,
        || {
            with_leader(shared, |leader| {
                let next = JobDriver::next_queued(leader, &mut os_rng()?);
                log_store_faults(leader);
                next
            })
        },
        |driver| {
            let shared = Arc::clone(shared);
            async move { drive_or_release(&shared, driver).await }
        },
    )
    .await
}

/// Drives one job; if it fails, even by a panic in this task or in a step of the
/// state machine, the leader lets go of it (`Leader::forget_job`, which a failed
/// driver has usually done already), so the next resume re-runs it from the store
/// instead of skipping it as still in progress. Every failure is logged here: only
/// the first of a batch of jobs reaches the caller.
async fn drive_or_release(shared: &Arc<LeaderShared>, driver: JobDriver) -> Result<(), Reject> {
    let job_id = driver.job_id();
    release_on_failure(drive_job(shared, driver), |e| async move {
        tracing::warn!(job = %job_id.to_hex(), code = %e.code, detail = %e.detail, "aggregation job failed; it will be resumed");
        let released = with_leader(shared, move |leader| {
            leader.forget_job(job_id);
            Ok(())
        })
        .await;
        if let Err(e) = released {
            tracing::warn!(job = %job_id.to_hex(), detail = %e.detail, "could not release a failed job");
        }
    })
    .await
}

/// Runs `work`; if it fails, or panics (a panic becomes [`ErrorCode::Internal`]), runs
/// `release` with the error before returning it. A panic must not skip the release: the
/// leader would hold the job as in progress for good.
async fn release_on_failure<W, R, RFut>(work: W, release: R) -> Result<(), Reject>
where
    W: std::future::Future<Output = Result<(), Reject>>,
    R: FnOnce(Reject) -> RFut,
    RFut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(Reject::new(
                ErrorCode::Internal,
                "the aggregation job's driver panicked",
            ))
        });
    if let Err(e) = &outcome {
        release(e.clone()).await;
    }
    outcome
}

/// Takes drivers from `next` until it has none, keeping up to `limit` of them driven at
/// once (each on its own task), and returns the first error. After an error no new
/// driver is taken, and the ones in flight are driven to their end: the leader holds a
/// job as in progress until its driver finishes or fails, so one dropped half-way
/// would leave its job so until the node restarts. (Dropping this future aborts the
/// tasks in flight: the node does so only when it shuts down.)
async fn drive_concurrently<D, N, NextFut, F, DriveFut>(
    limit: usize,
    mut next: N,
    mut drive: F,
) -> Result<(), Reject>
where
    N: FnMut() -> NextFut,
    NextFut: std::future::Future<Output = Result<Option<D>, Reject>>,
    F: FnMut(D) -> DriveFut,
    DriveFut: std::future::Future<Output = Result<(), Reject>> + Send + 'static,
{
    let mut in_flight = tokio::task::JoinSet::new();
    let mut first = Ok(());
    loop {
        while first.is_ok() && in_flight.len() < limit.max(1) {
            match next().await {
                Ok(Some(driver)) => {
                    in_flight.spawn(drive(driver));
                }
                Ok(None) => break,
                Err(e) => first = Err(e),
            }
        }
        let Some(done) = in_flight.join_next().await else {
            return first;
        };
        let outcome = done.unwrap_or_else(|e| {
            Err(Reject::new(
                ErrorCode::Internal,
                format!("an aggregation job's task ended abnormally: {e}"),
            ))
        });
        if first.is_ok() {
            first = outcome;
        }
    }
}

/// Releases a round for the collector, running queued jobs while the driver waits for
/// reports in flight.
pub(super) async fn collect(
    shared: &Arc<LeaderShared>,
    req: CollectRequest,
    now: Time,
) -> Result<Message, Reject> {
    let mut driver = CollectDriver::new(req, now, std::time::Instant::now(), COLLECT_WAIT);
    loop {
        let (polled, step) = with_leader(shared, move |leader| {
            let step = driver.poll(leader, &mut os_rng()?, std::time::Instant::now());
            Ok((driver, step))
        })
        .await?;
        driver = polled;
        match step? {
            CollectPoll::Transmit(t) => {
                let answer = send(shared, &t).await;
                driver.handle_answer(answer)?;
            }
            CollectPoll::Retry { after } => {
                if let Err(e) = run_queued_jobs(shared).await {
                    tracing::warn!(code = %e.code, detail = %e.detail, "job failed while collecting");
                }
                tokio::time::sleep(after).await;
            }
            CollectPoll::Done(response) => return Ok(Message::CollectResponse(response)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(job: u32, code: ErrorCode) -> Result<(), Reject> {
        Err(Reject::new(code, format!("job {job}")))
    }

    /// What `release_on_failure` passed to its release, if it called it.
    async fn released_by(
        work: impl std::future::Future<Output = Result<(), Reject>>,
    ) -> (Result<(), Reject>, Option<Reject>) {
        let mut released = None;
        let outcome = release_on_failure(work, |e| {
            released = Some(e);
            async {}
        })
        .await;
        (outcome, released)
    }

    #[tokio::test]
    async fn a_job_that_panics_is_released_and_reported_as_internal() {
        let (outcome, released) = released_by(async {
            if true {
                panic!("a step of the state machine panicked");
            }
            Ok(())
        })
        .await;
        let e = outcome.unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(e.detail.contains("panicked"), "{}", e.detail);
        assert_eq!(released.map(|r| r.code), Some(ErrorCode::Internal));
    }

    #[tokio::test]
    async fn a_job_that_fails_is_released_with_its_error_and_one_that_succeeds_is_not() {
        let (outcome, released) = released_by(async { fails(7, ErrorCode::Busy) }).await;
        assert_eq!(outcome.unwrap_err().detail, "job 7");
        let released = released.expect("released");
        assert_eq!(
            (released.code, released.detail.as_str()),
            (ErrorCode::Busy, "job 7")
        );

        let (outcome, released) = released_by(async { Ok(()) }).await;
        assert!(outcome.is_ok());
        assert!(released.is_none());
    }

    #[tokio::test]
    async fn every_resumed_job_is_driven_when_one_fails_on_its_own() {
        let mut driven = Vec::new();
        let (outcome, undriven) = drive_each(
            vec![1, 2, 3],
            |job| {
                driven.push(job);
                async move {
                    if job == 2 {
                        Ok(())
                    } else {
                        fails(job, ErrorCode::BadMessage)
                    }
                }
            },
            |e| e.code == ErrorCode::Busy,
        )
        .await;
        assert_eq!(driven, [1, 2, 3]);
        assert!(undriven.is_empty());
        let err = outcome.unwrap_err();
        assert_eq!(err.detail, "job 1", "the first error");
    }

    #[tokio::test]
    async fn an_unreachable_helper_leaves_the_other_resumed_jobs_to_the_caller() {
        let mut driven = Vec::new();
        let (outcome, undriven) = drive_each(
            vec![1, 2, 3],
            |job| {
                driven.push(job);
                async move { fails(job, ErrorCode::Busy) }
            },
            |e| e.code == ErrorCode::Busy,
        )
        .await;
        assert_eq!(driven, [1]);
        assert_eq!(
            undriven,
            [2, 3],
            "returned, to be released for the next resume"
        );
        assert_eq!(outcome.unwrap_err().code, ErrorCode::Busy);
    }

    /// A stand-in for `next`: hands out jobs `1..=count`, then none.
    fn jobs(count: u32) -> impl FnMut() -> std::future::Ready<Result<Option<u32>, Reject>> {
        let mut issued = 0;
        move || {
            issued += 1;
            std::future::ready(Ok((issued <= count).then_some(issued)))
        }
    }

    #[tokio::test]
    async fn the_next_job_is_started_while_one_is_with_the_helpers() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let driven = Arc::new(std::sync::Mutex::new(Vec::new()));
        let outcome = drive_concurrently(2, jobs(5), |job| {
            let (running, most, driven) = (running.clone(), most.clone(), driven.clone());
            async move {
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                // A job "with the helpers" until a second one runs beside it (or 5 s,
                // which one-at-a-time driving would wait out, and then fail below).
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while most.load(SeqCst) < 2 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                driven.lock().unwrap().push(job);
                running.fetch_sub(1, SeqCst);
                Ok(())
            }
        })
        .await;
        assert!(outcome.is_ok());
        assert_eq!(most.load(SeqCst), 2, "two jobs at once, never more");
        let mut driven = driven.lock().unwrap().clone();
        driven.sort_unstable();
        assert_eq!(driven, [1, 2, 3, 4, 5], "every job driven once");
    }

    #[tokio::test]
    async fn after_a_failed_job_none_starts_and_the_one_in_flight_is_driven_to_its_end() {
        let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
        let outcome = drive_concurrently(2, jobs(5), |job| {
            let finished = finished.clone();
            async move {
                if job == 1 {
                    return fails(job, ErrorCode::Busy);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                finished.lock().unwrap().push(job);
                Ok(())
            }
        })
        .await;
        assert_eq!(outcome.unwrap_err().detail, "job 1", "the first error");
        assert_eq!(
            *finished.lock().unwrap(),
            [2],
            "job 2 finished, job 3 never started"
        );
    }

    #[tokio::test]
    async fn a_failure_to_start_a_job_waits_for_the_one_in_flight() {
        let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut calls = 0;
        let next = || {
            calls += 1;
            std::future::ready(if calls == 1 {
                Ok(Some(1u32))
            } else {
                Err(Reject::new(ErrorCode::Internal, "store unreadable"))
            })
        };
        let outcome = drive_concurrently(2, next, |job| {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                finished.lock().unwrap().push(job);
                Ok(())
            }
        })
        .await;
        assert_eq!(outcome.unwrap_err().detail, "store unreadable");
        assert_eq!(*finished.lock().unwrap(), [1]);
    }

    #[tokio::test]
    async fn a_job_whose_task_panics_is_an_internal_error() {
        let outcome = drive_concurrently(2, jobs(1), |_job| async move {
            if true {
                panic!("a bug in a driver");
            }
            Ok(())
        })
        .await;
        assert_eq!(outcome.unwrap_err().code, ErrorCode::Internal);
    }
}
