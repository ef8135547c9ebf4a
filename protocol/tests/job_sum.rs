//! The leader adds each report's share into its job's sum as it prepares the report,
//! before the helpers have answered, and takes the share back out of the sum when the
//! report is rejected. These tests hold that the released sum is the accepted reports'
//! alone: for a report whose proof fails and one the helper cannot open, decided in
//! the same process, decided before a restart and committed after it (the sum is then
//! rebuilt from the stored reports and the recorded decision), and when the store fails
//! to record the decision or the commit (the job is prepared again from the store).
//! A decided job whose accepted report no longer prepares after a restart is refused,
//! not committed with that report's leader share missing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_mpc::secret::{SecretVec, Seed};
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver};
use cairn_protocol::helper::Helper;
use cairn_protocol::ids::ReportId;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message, UploadRequest};
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::store::{MemoryStore, StoreError, TaskStore};
use hooked_store::HookedStore;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 40;
const NOW: Time = Time(1_000);

/// The leader's job writes fail once at the step named here, if any.
type FailAt = Arc<Mutex<Option<&'static str>>>;

/// Reports whose stored bytes the leader's store answers truncated (a disk that
/// altered them).
type Corrupt = Arc<Mutex<Vec<ReportId>>>;

struct World {
    task: TaskConfig,
    leader: Leader<HookedStore>,
    fail_at: FailAt,
    corrupt: Corrupt,
    helper: Helper<MemoryStore>,
    collector: Collector,
    /// The sum of the honest reports' inputs.
    expected: Vec<i64>,
    honest: u64,
}

fn world(threads: usize, rng: &mut ChaCha20Rng) -> World {
    let header = format!(
        "name = \"job-sum\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = 1\n\
         max_clients = 1000\nround_duration_secs = 3600\n"
    );
    let (toml, collector_sk, helper_sk) =
        support::two_aggregator_task(rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    let parallelism = Parallelism::with_threads(NonZeroUsize::new(threads).unwrap());
    let fail_at: FailAt = Arc::new(Mutex::new(None));
    let hook_fail_at = Arc::clone(&fail_at);
    let store =
        HookedStore::new(Arc::new(MemoryStore::new())).with_job_write_hook(Box::new(move |step| {
            let mut at = hook_fail_at.lock().unwrap();
            if *at == Some(step) {
                *at = None;
                return Err(StoreError::NotFound("the disk (injected write failure)"));
            }
            Ok(())
        }));
    let corrupt: Corrupt = Arc::new(Mutex::new(Vec::new()));
    let hook_corrupt = Arc::clone(&corrupt);
    let store = store.with_report_bytes_hook(Box::new(move |report_id, mut bytes| {
        if hook_corrupt.lock().unwrap().contains(&report_id) {
            bytes.truncate(bytes.len() / 2);
        }
        bytes
    }));
    let leader = Leader::new(task.clone(), Seed::from_bytes([6; 32]), store)
        .unwrap()
        .with_parallelism(parallelism.clone());
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([6; 32]),
        helper_sk,
        MemoryStore::new(),
    )
    .unwrap()
    .with_parallelism(parallelism);
    let collector = Collector::new(task.clone(), collector_sk).unwrap();
    World {
        task,
        leader,
        fail_at,
        corrupt,
        helper,
        collector,
        expected: vec![0; DIM],
        honest: 0,
    }
}

impl World {
    /// A report of round 0 from a new client both aggregators know; honest ones are
    /// counted in the expected sum.
    fn report(&mut self, honest: bool, rng: &mut ChaCha20Rng) -> UploadRequest {
        let cred =
            support::register_client(&self.task, self.leader.store(), self.helper.store(), rng);
        let client = Client::new(self.task.clone(), cred).unwrap();
        let x: Vec<i64> = (0..DIM)
            .map(|_| i64::from(rng.next_u32() % 9) - 4)
            .collect();
        if honest {
            for (e, v) in self.expected.iter_mut().zip(&x) {
                *e += v;
            }
            self.honest += 1;
        }
        client.prepare_upload_quantised(0, &x, rng).unwrap()
    }

    /// Uploads `honest` honest reports, one whose leader share was altered after the
    /// proof was made (the joint decision fails) and one whose helper share does not
    /// open (the helper rejects it): the leader's own checks pass both, so both are
    /// prepared, and their shares added to the job's sum, before they are rejected.
    fn upload(&mut self, honest: usize, rng: &mut ChaCha20Rng) {
        for i in 0..honest + 2 {
            let mut req = self.report(i >= 2, rng);
            if i == 0 {
                let mut share = req.report.leader_share.expose_secret().to_vec();
                share[40] ^= 0x10;
                req.report.leader_share = SecretVec::new(share);
            } else if i == 1 {
                req.report.helper_shares[0].payload[3] ^= 1;
            }
            self.leader.handle_upload(req, NOW).unwrap();
        }
    }

    /// Drives `job` with the helper; returns the rejection codes. With
    /// `crash_after_decision`, the leader forgets the job once it has sent its decision
    /// (as a restart would), resumes it from the store and drives it to its commit.
    fn drive(
        &mut self,
        mut job: JobDriver,
        crash_after_decision: bool,
        rng: &mut ChaCha20Rng,
    ) -> Vec<ErrorCode> {
        let mut codes = Vec::new();
        while let Some(request) = job.poll_transmit() {
            let is_continue = matches!(request.message, Message::JobContinue(_));
            if is_continue && crash_after_decision {
                codes.extend(job.take_rejections().into_iter().map(|r| r.code));
                self.leader.forget_job(job.job_id());
                let mut resumed = JobDriver::resume_all(&mut self.leader).unwrap();
                assert_eq!(resumed.len(), 1);
                let rest = self.drive(resumed.pop().unwrap(), false, rng);
                assert!(
                    rest.is_empty(),
                    "a resumed decision re-sends, never re-decides"
                );
                return codes;
            }
            let answer = self
                .helper
                .handle_message(request.message, NOW, rng)
                .unwrap();
            job.handle_answer(&mut self.leader, Ok(answer)).unwrap();
        }
        codes.extend(job.take_rejections().into_iter().map(|r| r.code));
        codes
    }

    /// Drives `job` with the helper while the store fails the leader's write at `step`
    /// once: the job fails, and the leader, as a node does, resumes it from the store
    /// and drives it to its commit. Returns the rejection codes of both attempts.
    fn drive_through_a_failed_write(
        &mut self,
        mut job: JobDriver,
        step: &'static str,
        rng: &mut ChaCha20Rng,
    ) -> Vec<ErrorCode> {
        *self.fail_at.lock().unwrap() = Some(step);
        let mut failed = false;
        while let Some(request) = job.poll_transmit() {
            let answer = self
                .helper
                .handle_message(request.message, NOW, rng)
                .unwrap();
            if job.handle_answer(&mut self.leader, Ok(answer)).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the injected {step} failure fails the job");
        assert!(self.fail_at.lock().unwrap().is_none());
        let mut codes: Vec<ErrorCode> = job.take_rejections().into_iter().map(|r| r.code).collect();
        let mut resumed = JobDriver::resume_all(&mut self.leader).unwrap();
        assert_eq!(resumed.len(), 1);
        codes.extend(self.drive(resumed.pop().unwrap(), false, rng));
        codes
    }

    /// Releases round 0 and opens it.
    fn released(&mut self, rng: &mut ChaCha20Rng) -> (u64, Vec<i64>) {
        let mut driver = CollectDriver::new(
            self.collector.request(0),
            NOW,
            Instant::now(),
            Duration::ZERO,
        );
        let resp = loop {
            match driver.poll(&mut self.leader, rng, Instant::now()).unwrap() {
                CollectPoll::Transmit(request) => {
                    let answer = self
                        .helper
                        .handle_message(request.message, NOW, rng)
                        .unwrap();
                    driver.handle_answer(Ok(answer)).unwrap();
                }
                CollectPoll::Retry { .. } => panic!("reports left in flight after the job"),
                CollectPoll::Done(resp) => break resp,
            }
        };
        let opened = self.collector.open(0, &resp).unwrap();
        (u64::from(opened.count), opened.sum_quantised)
    }
}

/// How a test's job reaches its commit.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// Decided and committed by one leader process.
    InOneProcess,
    /// Decided, then the leader forgets it (a restart), resumes it and commits.
    RestartAfterDecision,
    /// The store fails the leader's write at this step once; the job is resumed.
    FailedWrite(&'static str),
}

fn rejected_reports_leave_the_sum(threads: usize, path: Path, seed: u8) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut w = world(threads, &mut rng);
    w.upload(5, &mut rng);
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let mut codes = match path {
        Path::InOneProcess => w.drive(job, false, &mut rng),
        Path::RestartAfterDecision => w.drive(job, true, &mut rng),
        Path::FailedWrite(step) => w.drive_through_a_failed_write(job, step, &mut rng),
    };
    // Each rejection is reported once: a failed decision answers an error, not its
    // rejections, and the decision made again after the resume reports them; a failed
    // commit re-sends the recorded decision, whose rejections were reported the first
    // time.
    codes.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        codes,
        vec![ErrorCode::DecryptFailed, ErrorCode::ProofFailed],
        "{threads} threads, {path:?}"
    );
    assert!(
        JobDriver::start(&mut w.leader, 0, &mut rng)
            .unwrap()
            .is_none()
    );
    let (count, sum) = w.released(&mut rng);
    assert_eq!(count, w.honest, "{threads} threads, {path:?}");
    assert_eq!(sum, w.expected, "{threads} threads, {path:?}");
}

#[test]
fn reports_rejected_after_the_leader_prepared_them_are_not_in_the_sum() {
    for threads in [1, 2] {
        rejected_reports_leave_the_sum(threads, Path::InOneProcess, 71 + threads as u8);
    }
}

#[test]
fn a_decision_committed_after_a_restart_sums_the_accepted_reports_alone() {
    for threads in [1, 2] {
        rejected_reports_leave_the_sum(threads, Path::RestartAfterDecision, 81 + threads as u8);
    }
}

#[test]
fn a_decision_or_commit_the_store_failed_to_record_is_redone_with_the_accepted_reports_alone() {
    for (threads, step, seed) in [
        (1, "decide_job", 91),
        (2, "decide_job", 92),
        (1, "commit_job", 93),
        (2, "commit_job", 94),
    ] {
        rejected_reports_leave_the_sum(threads, Path::FailedWrite(step), seed);
    }
}

/// Decides a job of 5 honest and 2 rejected reports and, as a restart would, forgets
/// it before sending the decision; the store then alters the bytes of the accepted
/// report at `corrupt_accepted` (or, with `None`, of every report of the job). The
/// resume must refuse, not commit the job with those reports' leader shares missing
/// while the helper adds its own; once the store is repaired, the job commits and
/// the released sum is the honest reports'.
fn an_accepted_report_that_no_longer_prepares_is_not_committed(
    corrupt_accepted: Option<usize>,
    seed: u8,
) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut w = world(2, &mut rng);
    w.upload(5, &mut rng);
    let mut job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let accepted = loop {
        let request = job.poll_transmit().unwrap();
        if let Message::JobContinue(decision) = &request.message {
            break decision.accepted.clone();
        }
        let answer = w
            .helper
            .handle_message(request.message, NOW, &mut rng)
            .unwrap();
        job.handle_answer(&mut w.leader, Ok(answer)).unwrap();
    };
    assert_eq!(accepted.len(), 5);
    let open = w.leader.store().open_jobs().unwrap();
    assert_eq!(open.len(), 1);
    let every_report = open[0].reports.clone();
    assert_eq!(every_report.len(), 7);
    w.leader.forget_job(job.job_id());
    *w.corrupt.lock().unwrap() = match corrupt_accepted {
        Some(i) => vec![accepted[i]],
        None => every_report,
    };
    for _ in 0..2 {
        let Err(refusal) = JobDriver::resume_all(&mut w.leader) else {
            panic!("a decided job missing an accepted report is resumed");
        };
        assert_eq!(refusal.code, ErrorCode::Internal, "{refusal}");
        assert!(refusal.detail.contains("no longer prepares"), "{refusal}");
    }
    w.corrupt.lock().unwrap().clear();
    let mut resumed = JobDriver::resume_all(&mut w.leader).unwrap();
    assert_eq!(resumed.len(), 1);
    assert!(w.drive(resumed.pop().unwrap(), false, &mut rng).is_empty());
    let (count, sum) = w.released(&mut rng);
    assert_eq!(count, w.honest);
    assert_eq!(sum, w.expected);
}

#[test]
fn a_resumed_decision_whose_accepted_report_no_longer_prepares_is_refused() {
    an_accepted_report_that_no_longer_prepares_is_not_committed(Some(2), 101);
}

#[test]
fn a_resumed_decision_whose_every_report_no_longer_prepares_is_not_committed_empty() {
    an_accepted_report_that_no_longer_prepares_is_not_committed(None, 102);
}
