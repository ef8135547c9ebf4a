//! Two leader processes sharing one store, with job leases: a job is driven by the
//! process that leases it; when that process dies mid-job, the other takes the job
//! over once the lease has expired, and every report is counted exactly once. A process
//! still driving its job renews the lease at each recorded step; one that stalled past
//! its lease stops at its next step.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::{Clock, Time};
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{JobDriver, collect_in_process};
use cairn_protocol::helper::Helper;
use cairn_protocol::leader::{JobLeases, Leader};
use cairn_protocol::messages::ErrorCode;
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: usize = 4;
const NOW: Time = Time(1_000);
const LEASE: u64 = 30;

struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now(&self) -> Time {
        Time(self.0.load(Ordering::SeqCst))
    }
}

fn leader(
    task: &TaskConfig,
    store: &Arc<MemoryStore>,
    owner: u8,
    clock: &Arc<ManualClock>,
) -> Leader<Arc<MemoryStore>> {
    Leader::new(task.clone(), Seed::from_bytes([3; 32]), Arc::clone(store))
        .unwrap()
        .with_job_leases(JobLeases {
            owner: [owner; 16],
            duration_secs: LEASE,
            clock: Arc::clone(clock) as Arc<dyn Clock>,
        })
}

/// Two leader processes `a` and `b` sharing one store, one helper, and three uploads
/// queued in round 0.
struct World {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    helper: Helper<MemoryStore>,
    a: Leader<Arc<MemoryStore>>,
    b: Leader<Arc<MemoryStore>>,
    collector: Collector,
    expected: [i64; DIM],
    rng: ChaCha20Rng,
}

fn world() -> World {
    let header = format!(
        "name = \"leases\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\nclip_norm = 1.0\n\
         proof = \"carry-lift\"\nmin_clients = 3\nmax_clients = 100\nround_duration_secs = 3600\n"
    );
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let (text, collector_sk, helper_sk) =
        support::two_aggregator_task(&mut rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&text).unwrap();
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock(AtomicU64::new(NOW.0)));
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([3; 32]),
        helper_sk,
        MemoryStore::new(),
    )
    .unwrap();
    let mut a = leader(&task, &store, 0xaa, &clock);
    let mut b = leader(&task, &store, 0xbb, &clock);

    let mut expected = [0i64; DIM];
    for k in 0..3i64 {
        let cred = Credential::generate(task.id(), &mut rng);
        store
            .add_client(cred.client_id(), &cred.key_for(0))
            .unwrap();
        helper
            .store()
            .add_client(cred.client_id(), &cred.key_for(1))
            .unwrap();
        let client = Client::new(task.clone(), cred).unwrap();
        let update: Vec<f32> = (0..DIM)
            .map(|i| ((k + i as i64) % 3) as f32 / 8.0)
            .collect();
        for (e, v) in expected.iter_mut().zip(&update) {
            *e += (*v * 256.0) as i64;
        }
        // Uploads land on either process; they share the store.
        let target = if k % 2 == 0 { &mut a } else { &mut b };
        target
            .handle_upload(client.prepare_upload(0, &update, &mut rng).unwrap(), NOW)
            .unwrap();
    }
    let collector = Collector::new(task.clone(), collector_sk).unwrap();
    World {
        store,
        clock,
        helper,
        a,
        b,
        collector,
        expected,
        rng,
    }
}

impl World {
    fn set_clock(&self, secs_after_now: u64) {
        self.clock.0.store(NOW.0 + secs_after_now, Ordering::SeqCst);
    }

    /// Releases round 0 through `b` and checks every report once, the exact sum.
    fn release_through_b(mut self) {
        let helpers = std::slice::from_mut(&mut self.helper);
        let response = collect_in_process(
            &mut self.b,
            helpers,
            self.collector.request(0),
            NOW,
            &mut self.rng,
        )
        .unwrap();
        let released = self.collector.open(0, &response).unwrap();
        assert_eq!(released.count, 3);
        assert_eq!(released.sum_quantised, self.expected.to_vec());
    }
}

#[test]
fn a_job_of_a_dead_leader_process_is_taken_over_when_its_lease_expires() {
    let World {
        store,
        clock,
        mut helper,
        mut a,
        mut b,
        collector,
        expected,
        mut rng,
    } = world();

    // Process A starts a job over every queued report (and leases it), sends its
    // inits… and dies before it commits.
    let started = JobDriver::next_queued(&mut a, &mut rng).unwrap().unwrap();
    let first = started.poll_transmit().unwrap();
    let helpers = std::slice::from_mut(&mut helper);
    let _answer = helpers[0].handle_message(first.message, NOW, &mut rng);
    drop(started);
    drop(a);

    // B sees the open job but does not touch it while A's lease runs…
    assert_eq!(store.open_jobs().unwrap().len(), 1);
    clock.0.store(NOW.0 + LEASE - 1, Ordering::SeqCst);
    assert!(JobDriver::resume_all(&mut b).unwrap().is_empty());
    assert!(
        JobDriver::next_queued(&mut b, &mut rng).unwrap().is_none(),
        "nothing queued"
    );
    // …and takes it over once the lease has expired.
    clock.0.store(NOW.0 + LEASE, Ordering::SeqCst);
    let resumed = JobDriver::resume_all(&mut b).unwrap();
    assert_eq!(resumed.len(), 1);
    for mut driver in resumed {
        while let Some(t) = driver.poll_transmit() {
            let answer = helpers[0].handle_message(t.message, NOW, &mut rng);
            driver.handle_answer(&mut b, answer).unwrap();
        }
        assert!(driver.take_rejections().is_empty());
    }
    assert!(store.open_jobs().unwrap().is_empty());

    // Released: every report exactly once, the exact sum.
    let response =
        collect_in_process(&mut b, helpers, collector.request(0), NOW, &mut rng).unwrap();
    let released = collector.open(0, &response).unwrap();
    assert_eq!(released.count, 3);
    assert_eq!(released.sum_quantised, expected.to_vec());
}

#[test]
fn a_job_being_driven_renews_its_lease_at_each_recorded_step() {
    let mut w = world();
    // A starts the job at NOW (lease until NOW + LEASE); the helper is slow to answer.
    let mut driver = JobDriver::next_queued(&mut w.a, &mut w.rng)
        .unwrap()
        .unwrap();
    let init = driver.poll_transmit().unwrap();
    let answer = w.helper.handle_message(init.message, NOW, &mut w.rng);
    // The answer arrives just before the lease expires: deciding renews it.
    w.set_clock(LEASE - 1);
    driver.handle_answer(&mut w.a, answer).unwrap();
    // Past the first lease's expiry, B must leave the job alone: A still drives it.
    w.set_clock(LEASE + 1);
    assert!(JobDriver::resume_all(&mut w.b).unwrap().is_empty());
    while let Some(t) = driver.poll_transmit() {
        let answer = w.helper.handle_message(t.message, NOW, &mut w.rng);
        driver.handle_answer(&mut w.a, answer).unwrap();
    }
    assert!(w.store.open_jobs().unwrap().is_empty());
    w.release_through_b();
}

#[test]
fn a_stalled_process_that_lost_its_lease_stops_and_the_new_owner_finishes() {
    let mut w = world();
    let mut stalled = JobDriver::next_queued(&mut w.a, &mut w.rng)
        .unwrap()
        .unwrap();
    let init = stalled.poll_transmit().unwrap();
    let late_answer = w.helper.handle_message(init.message, NOW, &mut w.rng);
    // A stalls past its lease; B takes the job over and drives it to its commit.
    w.set_clock(LEASE);
    let resumed = JobDriver::resume_all(&mut w.b).unwrap();
    assert_eq!(resumed.len(), 1);
    let contention = w.a.contention_counter();
    // A wakes up: its decision step finds the lease gone and ends the job there.
    let err = stalled.handle_answer(&mut w.a, late_answer).unwrap_err();
    assert_eq!(err.code, ErrorCode::Busy, "{err:?}");
    assert_eq!(contention.load(Ordering::Relaxed), 1);
    for mut driver in resumed {
        while let Some(t) = driver.poll_transmit() {
            let answer = w.helper.handle_message(t.message, NOW, &mut w.rng);
            driver.handle_answer(&mut w.b, answer).unwrap();
        }
    }
    assert!(w.store.open_jobs().unwrap().is_empty());
    w.release_through_b();
}

#[test]
fn a_process_that_stalled_after_renewing_cannot_overwrite_the_new_owners_decision() {
    let mut w = world();
    let mut stalled = JobDriver::next_queued(&mut w.a, &mut w.rng)
        .unwrap()
        .unwrap();
    let job_id = stalled.job_id();
    let init = stalled.poll_transmit().unwrap();
    let late_answer = w.helper.handle_message(init.message, NOW, &mut w.rng);
    // A renews its lease to decide and stalls before it writes; B takes the job over
    // and decides it first, from other helper answers (here: every report refused).
    w.store.decide_job(job_id, &[]).unwrap();
    // A's decision (every report accepted) must not replace B's.
    let err = stalled.handle_answer(&mut w.a, late_answer).unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal, "{err:?}");
    let open = w.store.open_jobs().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].accepted.as_deref(),
        Some(&[][..]),
        "B's decision stands"
    );
    // Resumed, the job carries the stored decision to the helper and commits it.
    let resumed = JobDriver::resume_all(&mut w.a).unwrap();
    assert_eq!(resumed.len(), 1);
    for mut driver in resumed {
        while let Some(t) = driver.poll_transmit() {
            let answer = w.helper.handle_message(t.message, NOW, &mut w.rng);
            driver.handle_answer(&mut w.a, answer).unwrap();
        }
    }
    assert!(w.store.open_jobs().unwrap().is_empty());
    assert_eq!(w.store.round(0).unwrap().unwrap().count, 0);
    assert_eq!(w.helper.store().round(0).unwrap().unwrap().count, 0);
}
