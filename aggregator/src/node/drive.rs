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
    let answer = peer
        .request(&t.message.encode())
        .await
        .map_err(|e| Reject::new(ErrorCode::Busy, e.to_string()))?;
    let message = Message::decode(&answer, &shared.limits)
        .map_err(|e| Reject::new(ErrorCode::BadMessage, format!("undecodable answer: {e}")))?;
    if let Message::Error(e) = &message
        && matches!(e.code, ErrorCode::Busy | ErrorCode::Internal)
    {
        // This replica of the helper is full or failing: the retry goes to another
        // (the job is re-sent whole there if its preparation stayed behind).
        peer.move_on().await;
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

/// Re-runs the jobs the store recorded but did not commit (after a restart, or whose
/// helper was unreachable).
pub(super) async fn resume_jobs(shared: &Arc<LeaderShared>) -> Result<(), Reject> {
    let _guard = shared.jobs.lock().await;
    let drivers = with_leader(shared, JobDriver::resume_all).await?;
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

/// Runs jobs until no report is queued.
pub(super) async fn run_queued_jobs(shared: &Arc<LeaderShared>) -> Result<(), Reject> {
    let _guard = shared.jobs.lock().await;
    loop {
        let next = with_leader(shared, |leader| {
            JobDriver::next_queued(leader, &mut os_rng()?)
        })
        .await?;
        let Some(driver) = next else {
            return Ok(());
        };
        drive_job(shared, driver).await?;
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
}
