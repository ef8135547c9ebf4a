//! The leader adds each report's share into its job's sum as it prepares the report,
//! before the helpers have answered, and takes the share back out of the sum when the
//! report is rejected. These tests hold that the released sum is the accepted reports'
//! alone: for a report whose proof fails and one the helper cannot open, decided in
//! the same process, decided before a restart and committed after it (the sum is then
//! rebuilt from the stored reports and the recorded decision), and when the store fails
//! to record the decision or the commit (the job is prepared again from the store).
//! A decided job whose accepted report is lost, altered or no longer prepares after a
//! restart is refused on its own, not committed with that report's leader share missing
//! or altered; a report whose bytes are lost is set aside from its batch in a refused
//! job of its own, and counted once its bytes are back.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_mpc::codec::Reader;
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, JobDriver, collect_in_process};
use cairn_protocol::helper::Helper;
use cairn_protocol::ids::ReportId;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{
    ErrorCode, Limits, Message, UploadRequest, decode_report, encode_report,
};
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{MemoryStore, StoreError, TaskStore};
use hooked_store::HookedStore;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 40;
const NOW: Time = Time(1_000);

/// The leader's job writes fail once at the step named here, if any.
type FailAt = Arc<Mutex<Option<&'static str>>>;

/// How the leader's store alters a report's bytes when it reads them (a disk that
/// altered them).
#[derive(Clone)]
enum Damage {
    /// The bytes are lost while the store holds the report (its file deleted).
    Lose,
    /// Half the bytes are lost: the report no longer decodes.
    Truncate,
    /// One bit of this leader share flips where it is stored: the report still
    /// decodes and prepares, with another share.
    FlipLeaderShareBit(Vec<u8>),
    /// The report is stored again without its helpers' shares (decoded and encoded
    /// under these limits).
    DropHelperShares(Limits),
}

/// The reports whose stored bytes the leader's store alters, and how.
type Damaged = Arc<Mutex<Vec<(ReportId, Damage)>>>;

fn damage(mut bytes: Vec<u8>, how: &Damage) -> Result<Vec<u8>, StoreError> {
    match how {
        Damage::Lose => return Err(StoreError::NotFound(hooked_store::LOST)),
        Damage::Truncate => bytes.truncate(bytes.len() / 2),
        Damage::FlipLeaderShareBit(share) => {
            let at = bytes
                .windows(share.len())
                .position(|w| w == share.as_slice())
                .expect("the leader share is stored whole");
            bytes[at + 8] ^= 1;
        }
        Damage::DropHelperShares(limits) => {
            let mut report = decode_report(&mut Reader::new(&bytes), limits).unwrap();
            report.helper_shares.clear();
            bytes.clear();
            encode_report(&report, &mut bytes);
        }
    }
    Ok(bytes)
}

struct World {
    task: TaskConfig,
    threads: usize,
    /// The leader's store, which outlives a leader process.
    leader_store: Arc<MemoryStore>,
    leader: Leader<HookedStore>,
    fail_at: FailAt,
    damaged: Damaged,
    helper: Helper<MemoryStore>,
    collector: Collector,
    /// The sum of the honest reports' inputs.
    expected: Vec<i64>,
    honest: u64,
    /// Each honest report's leader share as uploaded.
    honest_reports: Vec<(ReportId, Vec<u8>)>,
}

/// A leader process of `task` on `store`, whose job writes fail at `fail_at` and whose
/// report reads are altered as `damaged` says.
fn leader_process(
    task: &TaskConfig,
    threads: usize,
    store: &Arc<MemoryStore>,
    fail_at: &FailAt,
    damaged: &Damaged,
) -> Leader<HookedStore> {
    let hook_fail_at = Arc::clone(fail_at);
    let hook_damaged = Arc::clone(damaged);
    let store = HookedStore::new(Arc::clone(store))
        .with_job_write_hook(Box::new(move |step| {
            let mut at = hook_fail_at.lock().unwrap();
            if *at == Some(step) {
                *at = None;
                return Err(StoreError::NotFound("the disk (injected write failure)"));
            }
            Ok(())
        }))
        .with_report_bytes_hook(Box::new(move |report_id, bytes| {
            match hook_damaged
                .lock()
                .unwrap()
                .iter()
                .find(|(id, _)| *id == report_id)
            {
                Some((_, how)) => damage(bytes, how),
                None => Ok(bytes),
            }
        }));
    Leader::new(task.clone(), Seed::from_bytes([6; 32]), store)
        .unwrap()
        .with_parallelism(Parallelism::with_threads(
            NonZeroUsize::new(threads).unwrap(),
        ))
}

fn world(threads: usize, rng: &mut ChaCha20Rng) -> World {
    let header = format!(
        "name = \"job-sum\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = 1\n\
         max_clients = 2000\nround_duration_secs = 3600\n"
    );
    let (toml, collector_sk, helper_sk) =
        support::two_aggregator_task(rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    let parallelism = Parallelism::with_threads(NonZeroUsize::new(threads).unwrap());
    let fail_at: FailAt = Arc::new(Mutex::new(None));
    let damaged: Damaged = Arc::new(Mutex::new(Vec::new()));
    let leader_store = Arc::new(MemoryStore::new());
    let leader = leader_process(&task, threads, &leader_store, &fail_at, &damaged);
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
        threads,
        leader_store,
        leader,
        fail_at,
        damaged,
        helper,
        collector,
        expected: vec![0; DIM],
        honest: 0,
        honest_reports: Vec::new(),
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
        let req = client.prepare_upload_quantised(0, &x, rng).unwrap();
        if honest {
            for (e, v) in self.expected.iter_mut().zip(&x) {
                *e += v;
            }
            self.honest += 1;
            self.honest_reports.push((
                req.report.report_id,
                req.report.leader_share.expose_secret().to_vec(),
            ));
        }
        req
    }

    /// The leader process stops and another starts on its store (with its hooks).
    fn restart_leader(&mut self) {
        self.leader = leader_process(
            &self.task,
            self.threads,
            &self.leader_store,
            &self.fail_at,
            &self.damaged,
        );
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

    /// The leader's answer to a collect of round 0 with a refused job in it: at once,
    /// [`ErrorCode::Internal`], saying why (returned).
    fn collect_refusal(&mut self, rng: &mut ChaCha20Rng) -> String {
        let mut collect = CollectDriver::new(
            self.collector.request(0),
            NOW,
            Instant::now(),
            Duration::from_secs(60),
        );
        let Err(stuck) = collect.poll(&mut self.leader, rng, Instant::now()) else {
            panic!("the round's collect went on");
        };
        assert_eq!(stuck.code, ErrorCode::Internal, "{stuck}");
        assert!(stuck.detail.contains("refused"), "{stuck}");
        stuck.detail
    }

    /// Releases round 0 and opens it.
    fn released(&mut self, rng: &mut ChaCha20Rng) -> (u64, Vec<i64>) {
        let request = self.collector.request(0);
        let helpers = std::slice::from_mut(&mut self.helper);
        let resp = collect_in_process(&mut self.leader, helpers, request, NOW, rng)
            .expect("no report left in flight after the job");
        let opened = self.collector.open(0, &resp).unwrap();
        (u64::from(opened.count), opened.sum_quantised)
    }

    /// A refused job is said once: the next resume skips it without a word.
    fn assert_refused_once(&mut self) {
        assert!(JobDriver::resume_all(&mut self.leader).unwrap().is_empty());
        assert!(self.leader.take_store_faults().is_empty(), "said once");
    }

    /// The store repaired and the leader restarted: the one refused job is resumed and
    /// committed with no rejection, and the released sum is every honest report's.
    fn repair_and_release_everything(&mut self, rng: &mut ChaCha20Rng) {
        self.damaged.lock().unwrap().clear();
        self.restart_leader();
        let mut resumed = JobDriver::resume_all(&mut self.leader).unwrap();
        assert_eq!(resumed.len(), 1);
        assert!(self.drive(resumed.pop().unwrap(), false, rng).is_empty());
        let (count, sum) = self.released(rng);
        assert_eq!(count, self.honest);
        assert_eq!(sum, self.expected);
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

/// Which reports of a decided job the store alters after the decision.
#[derive(Clone, Copy, Debug)]
enum Altered {
    /// One accepted report's bytes are lost.
    OneLost,
    /// One bit of one accepted report's leader share flips: it still prepares.
    OneBitFlipped,
    /// Every report of the job, accepted or not, loses half its bytes.
    EveryTruncated,
}

/// Drives `job` until the leader has recorded its decision, and returns the accepted
/// reports; the decision is not sent (the leader forgets the job, as a restart would).
fn decide_then_crash(w: &mut World, mut job: JobDriver, rng: &mut ChaCha20Rng) -> Vec<ReportId> {
    loop {
        let request = job.poll_transmit().unwrap();
        if let Message::JobContinue(decision) = &request.message {
            w.leader.forget_job(job.job_id());
            return decision.accepted.clone();
        }
        let answer = w.helper.handle_message(request.message, NOW, rng).unwrap();
        job.handle_answer(&mut w.leader, Ok(answer)).unwrap();
    }
}

/// Decides a job of 5 honest and 2 rejected reports, then the leader crashes and the
/// store alters the job's reports as `altered` says. The resume must refuse the job,
/// not commit it with an accepted report's leader share missing or altered while the
/// helper adds its own; once, with why. A second job, started after the first was
/// decided, is resumed and committed all the same. Once the store is repaired, a new
/// leader process commits the refused job and the released sum is the honest
/// reports'.
fn a_decided_job_whose_reports_were_altered_is_refused(altered: Altered, seed: u8) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut w = world(2, &mut rng);
    w.upload(5, &mut rng);
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let refused_id = job.job_id();
    let accepted = decide_then_crash(&mut w, job, &mut rng);
    assert_eq!(accepted.len(), 5);
    let every_report = w.leader.store().open_jobs().unwrap()[0].reports.clone();
    assert_eq!(every_report.len(), 7);
    w.upload(3, &mut rng);
    let other = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let other_id = other.job_id();
    w.leader.forget_job(other_id);

    let victim = accepted[2];
    let share = w
        .honest_reports
        .iter()
        .find(|(id, _)| *id == victim)
        .map(|(_, share)| share.clone())
        .unwrap();
    *w.damaged.lock().unwrap() = match altered {
        Altered::OneLost => vec![(victim, Damage::Lose)],
        Altered::OneBitFlipped => vec![(victim, Damage::FlipLeaderShareBit(share))],
        Altered::EveryTruncated => every_report
            .iter()
            .map(|id| (*id, Damage::Truncate))
            .collect(),
    };
    let mut resumed = JobDriver::resume_all(&mut w.leader).unwrap();
    assert_eq!(resumed.len(), 1, "{altered:?}: the other job is resumed");
    assert_eq!(resumed[0].job_id(), other_id);
    let refusals = w.leader.take_store_faults();
    assert_eq!(refusals.len(), 1, "{altered:?}");
    let why = &refusals[0];
    assert_eq!(why.code, ErrorCode::Internal, "{why}");
    assert!(why.detail.contains(&refused_id.to_hex()), "{why}");
    assert!(why.detail.contains(&victim.to_hex()), "{why}");
    let (reason, reports) = match altered {
        Altered::OneLost => ("its stored bytes are lost", 1),
        Altered::OneBitFlipped => ("its stored bytes are not those uploaded", 1),
        Altered::EveryTruncated => ("its stored bytes are not those uploaded", 5),
    };
    assert_eq!(
        why.detail.matches(reason).count(),
        reports,
        "{altered:?}: {why}"
    );
    // The other job has 3 honest reports and 2 the joint verification rejects.
    assert_eq!(w.drive(resumed.pop().unwrap(), false, &mut rng).len(), 2);
    assert!(w.leader.store().job_committed(other_id).unwrap().is_some());
    // The refused job's round says at once why it cannot be released.
    let stuck = w.collect_refusal(&mut rng);
    assert!(stuck.contains(&refused_id.to_hex()), "{stuck}");
    w.assert_refused_once();
    assert_eq!(w.leader.store().job_committed(refused_id).unwrap(), None);
    w.repair_and_release_everything(&mut rng);
}

#[test]
fn a_resumed_decision_whose_accepted_report_is_lost_is_refused() {
    a_decided_job_whose_reports_were_altered_is_refused(Altered::OneLost, 101);
}

#[test]
fn a_resumed_decision_whose_accepted_report_was_altered_but_prepares_is_refused() {
    a_decided_job_whose_reports_were_altered_is_refused(Altered::OneBitFlipped, 102);
}

/// Every report fails, so the job has nothing for the helpers: the leader would commit
/// it locally as empty were it not refused (which the store's decide-once rule stops,
/// with an error that blames another leader process); the refusal names every
/// accepted report.
#[test]
fn a_resumed_decision_whose_every_report_was_truncated_is_refused_with_why() {
    a_decided_job_whose_reports_were_altered_is_refused(Altered::EveryTruncated, 103);
}

/// A replica that commits a decided job (deleting its reports) while this leader
/// process resumes it leaves this process nothing to do: the reports it finds gone
/// are not a reason to refuse the job.
#[test]
fn a_decided_job_another_process_commits_during_the_resume_is_not_refused() {
    let mut rng = ChaCha20Rng::from_seed([104; 32]);
    let mut w = world(2, &mut rng);
    w.upload(5, &mut rng);
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let job_id = job.job_id();
    let accepted = decide_then_crash(&mut w, job, &mut rng);
    let store = Arc::clone(&w.leader_store);
    let committed = std::sync::atomic::AtomicBool::new(false);
    let replica =
        HookedStore::new(Arc::clone(&w.leader_store)).with_report_read_hook(Box::new(move || {
            if !committed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let zero = Aggregate::zero(DIM);
                store.commit_job(0, job_id, &accepted, &zero).unwrap();
            }
            Ok(())
        }));
    let mut leader = Leader::new(w.task.clone(), Seed::from_bytes([6; 32]), replica).unwrap();
    assert!(JobDriver::resume_all(&mut leader).unwrap().is_empty());
    assert!(leader.take_store_faults().is_empty());
    assert!(w.leader_store.job_committed(job_id).unwrap().is_some());
}

/// A report whose stored bytes are lost (its file deleted outside the store) is set
/// aside in a job of its own, refused and said once, not aggregated without its bytes
/// nor counted as rejected; the rest of its batch goes on, the round's collect says why
/// it waits, and once the bytes are back a new leader process aggregates the set-aside
/// job: every honest report is counted.
#[test]
fn a_lost_report_is_set_aside_and_its_batch_goes_on() {
    let mut rng = ChaCha20Rng::from_seed([105; 32]);
    let mut w = world(2, &mut rng);
    w.upload(5, &mut rng);
    let victim = w.honest_reports[1].0;
    *w.damaged.lock().unwrap() = vec![(victim, Damage::Lose)];
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let faults = w.leader.take_store_faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(faults[0].detail.contains("set aside"), "{}", faults[0]);
    assert!(faults[0].detail.contains(&victim.to_hex()), "{}", faults[0]);
    assert_eq!(w.drive(job, false, &mut rng).len(), 2);
    w.collect_refusal(&mut rng);
    w.assert_refused_once();
    w.repair_and_release_everything(&mut rng);
}

/// A stored report altered to carry no share for the helper (checked at upload, so only
/// a damaged store holds one) is rejected by the leader's own checks when a new batch
/// takes it: sent without it, the helper's answer would never match the job, which
/// would fail at every try.
#[test]
fn a_stored_report_without_its_helper_share_is_rejected_in_a_new_batch() {
    let mut rng = ChaCha20Rng::from_seed([106; 32]);
    let mut w = world(2, &mut rng);
    w.upload(5, &mut rng);
    let victim = w.honest_reports[3].0;
    let limits = w.leader.limits();
    *w.damaged.lock().unwrap() = vec![(victim, Damage::DropHelperShares(limits))];
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let mut codes = w.drive(job, false, &mut rng);
    codes.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        codes,
        vec![
            ErrorCode::BadMessage,
            ErrorCode::DecryptFailed,
            ErrorCode::ProofFailed
        ]
    );
    let (count, _) = w.released(&mut rng);
    assert_eq!(count, w.honest - 1);
}

/// When no queued report has anything for the helpers (every one lost in a bad
/// restore, or every one refused by the leader's own checks), one call uses up at most
/// 16 batches, then answers `Busy`, so the leader is not held for the whole queue; the
/// next call goes on where it stopped.
fn a_queue_with_nothing_for_the_helpers_is_worked_through_in_bounded_calls(how: Damage, seed: u8) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut w = world(1, &mut rng);
    let batch = w.leader.job_batch();
    w.upload(17 * batch - 2, &mut rng);
    let every: Vec<ReportId> = w.leader.store().queued_reports(0, usize::MAX).unwrap();
    assert_eq!(every.len(), 17 * batch);
    *w.damaged.lock().unwrap() = every.iter().map(|id| (*id, how.clone())).collect();
    let lost = matches!(how, Damage::Lose);
    let Err(busy) = JobDriver::start(&mut w.leader, 0, &mut rng) else {
        panic!("the whole queue was used up in one call");
    };
    assert_eq!(busy.code, ErrorCode::Busy, "{busy}");
    assert_eq!(
        w.leader
            .store()
            .queued_reports(0, usize::MAX)
            .unwrap()
            .len(),
        batch
    );
    assert_eq!(
        w.leader.take_store_faults().len(),
        if lost { 16 } else { 0 }
    );
    assert!(
        JobDriver::start(&mut w.leader, 0, &mut rng)
            .unwrap()
            .is_none()
    );
    assert_eq!(w.leader.take_store_faults().len(), usize::from(lost));
    assert!(w.leader.store().queued_reports(0, 1).unwrap().is_empty());
}

#[test]
fn setting_aside_lost_reports_holds_the_leader_for_a_bounded_number_of_batches() {
    a_queue_with_nothing_for_the_helpers_is_worked_through_in_bounded_calls(Damage::Lose, 107);
}

#[test]
fn refusing_malformed_reports_holds_the_leader_for_a_bounded_number_of_batches() {
    a_queue_with_nothing_for_the_helpers_is_worked_through_in_bounded_calls(Damage::Truncate, 108);
}
