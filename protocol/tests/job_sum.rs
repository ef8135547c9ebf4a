//! The leader adds each report's share into its job's sum as it prepares the report,
//! before the helpers have answered, and takes the share back out of the sum when the
//! report is rejected. These tests hold that the released sum is the accepted reports'
//! alone: for a report whose proof fails and one the helper cannot open, decided in
//! the same process, and decided before a restart and committed after it (the sum is
//! then rebuilt from the stored reports and the recorded decision).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use cairn_mpc::secret::{SecretVec, Seed};
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver};
use cairn_protocol::helper::Helper;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message, UploadRequest};
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 40;
const NOW: Time = Time(1_000);

struct World {
    task: TaskConfig,
    leader: Leader<MemoryStore>,
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
    let leader = Leader::new(task.clone(), Seed::from_bytes([6; 32]), MemoryStore::new())
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
        let cred = Credential::generate(self.task.id(), rng);
        self.leader
            .store()
            .add_client(cred.client_id(), &cred.key_for(0))
            .unwrap();
        self.helper
            .store()
            .add_client(cred.client_id(), &cred.key_for(1))
            .unwrap();
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

    /// Drives `job` with the helper; returns the rejection codes, sorted. With
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
                let resumed = resumed.pop().unwrap();
                return {
                    let rest = self.drive(resumed, false, rng);
                    assert!(
                        rest.is_empty(),
                        "a resumed decision re-sends, never re-decides"
                    );
                    codes.sort_by_key(|c| format!("{c:?}"));
                    codes
                };
            }
            let answer = self
                .helper
                .handle_message(request.message, NOW, rng)
                .unwrap();
            job.handle_answer(&mut self.leader, Ok(answer)).unwrap();
        }
        codes.extend(job.take_rejections().into_iter().map(|r| r.code));
        codes.sort_by_key(|c| format!("{c:?}"));
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

fn rejected_reports_leave_the_sum(threads: usize, crash_after_decision: bool, seed: u8) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut w = world(threads, &mut rng);
    w.upload(5, &mut rng);
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let codes = w.drive(job, crash_after_decision, &mut rng);
    assert_eq!(
        codes,
        vec![ErrorCode::DecryptFailed, ErrorCode::ProofFailed]
    );
    assert!(
        JobDriver::start(&mut w.leader, 0, &mut rng)
            .unwrap()
            .is_none()
    );
    let (count, sum) = w.released(&mut rng);
    assert_eq!(count, w.honest);
    assert_eq!(sum, w.expected);
}

#[test]
fn reports_rejected_after_the_leader_prepared_them_are_not_in_the_sum() {
    for threads in [1, 2] {
        rejected_reports_leave_the_sum(threads, false, 71 + threads as u8);
    }
}

#[test]
fn a_decision_committed_after_a_restart_sums_the_accepted_reports_alone() {
    for threads in [1, 2] {
        rejected_reports_leave_the_sum(threads, true, 81 + threads as u8);
    }
}
