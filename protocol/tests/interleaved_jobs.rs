//! Two jobs of one leader in flight at once, as the leader's node drives them: one
//! fails half-way while the other commits, and the failed one is resumed from the
//! store. Every report is counted exactly once at both aggregators, and the round ends
//! as it does when the same reports' jobs run one after the other.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::JobDriver;
use cairn_protocol::error::Reject;
use cairn_protocol::helper::Helper;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message};
use cairn_protocol::store::{CommitOutcome, MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 200;
/// Two jobs: a full one of 64 reports and one of 6.
const REPORTS: usize = 70;
const NOW: Time = Time(1_000);

/// A leader and a helper with `REPORTS` honest uploads queued, the same every time.
fn round_with_uploads() -> (Leader<MemoryStore>, Helper<MemoryStore>, ChaCha20Rng) {
    let header = format!(
        "name = \"interleaved\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = 1\n\
         max_clients = 1000\nround_duration_secs = 3600\n"
    );
    let mut rng = ChaCha20Rng::from_seed([43; 32]);
    let (toml, _collector_sk, helper_sk) =
        support::two_aggregator_task(&mut rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    let leader = Leader::new(task.clone(), Seed::from_bytes([6; 32]), MemoryStore::new()).unwrap();
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([6; 32]),
        helper_sk,
        MemoryStore::new(),
    )
    .unwrap();
    for _ in 0..REPORTS {
        let cred = Credential::generate(task.id(), &mut rng);
        leader
            .store()
            .add_client(cred.client_id(), &cred.key_for(0))
            .unwrap();
        helper
            .store()
            .add_client(cred.client_id(), &cred.key_for(1))
            .unwrap();
        let client = Client::new(task.clone(), cred).unwrap();
        let x: Vec<i64> = (0..DIM)
            .map(|_| i64::from(rng.next_u32() % 9) - 4)
            .collect();
        let req = client.prepare_upload_quantised(0, &x, &mut rng).unwrap();
        leader.handle_upload(req, NOW).unwrap();
    }
    (leader, helper, rng)
}

/// Passes `driver`'s requests to the helper until the job is committed.
fn drive(
    driver: &mut JobDriver,
    leader: &mut Leader<MemoryStore>,
    helper: &mut Helper<MemoryStore>,
    rng: &mut ChaCha20Rng,
) {
    while let Some(t) = driver.poll_transmit() {
        let answer = helper.handle_message(t.message, NOW, rng);
        driver.handle_answer(leader, answer).unwrap();
    }
    assert_eq!(driver.outcome().unwrap().commit, CommitOutcome::Applied);
}

/// Each aggregator's round aggregate, encoded, and its report count.
fn ends(
    leader: &Leader<MemoryStore>,
    helper: &Helper<MemoryStore>,
) -> (Vec<u8>, Vec<u8>, u32, u32) {
    let l = leader.store().round(0).unwrap().unwrap();
    let h = helper.store().round(0).unwrap().unwrap();
    (l.aggregate.encode(), h.aggregate.encode(), l.count, h.count)
}

#[test]
fn a_job_that_fails_while_another_commits_is_resumed_and_counted_once() {
    // The reference: the same uploads, their jobs one after the other.
    let (mut leader, mut helper, mut rng) = round_with_uploads();
    while let Some(mut driver) = JobDriver::start(&mut leader, 0, &mut rng).unwrap() {
        drive(&mut driver, &mut leader, &mut helper, &mut rng);
    }
    let sequential = ends(&leader, &helper);
    assert_eq!(
        (sequential.2, sequential.3),
        (REPORTS as u32, REPORTS as u32)
    );

    let (mut leader, mut helper, mut rng) = round_with_uploads();
    let mut a = JobDriver::start(&mut leader, 0, &mut rng).unwrap().unwrap();
    let mut b = JobDriver::start(&mut leader, 0, &mut rng).unwrap().unwrap();
    assert_ne!(a.job_id(), b.job_id());
    assert!(
        JobDriver::start(&mut leader, 0, &mut rng)
            .unwrap()
            .is_none(),
        "the two jobs took every queued report"
    );

    // A's init is answered: A is decided and its continue is next.
    let t = a.poll_transmit().unwrap();
    let answer = helper.handle_message(t.message, NOW, &mut rng);
    a.handle_answer(&mut leader, answer).unwrap();
    let t = a.poll_transmit().unwrap();
    assert!(matches!(t.message, Message::JobContinue(_)));

    // B runs to its commit meanwhile.
    drive(&mut b, &mut leader, &mut helper, &mut rng);

    // The helper commits A, but its answer is lost on the way back: A fails at the
    // leader, which has not counted it.
    helper.handle_message(t.message, NOW, &mut rng).unwrap();
    let lost = a.handle_answer(
        &mut leader,
        Err(Reject::new(ErrorCode::Busy, "answer lost")),
    );
    assert_eq!(lost.unwrap_err().code, ErrorCode::Busy);
    assert!(
        a.poll_transmit().is_none(),
        "a failed job sends nothing more"
    );
    let (_, _, leader_count, helper_count) = ends(&leader, &helper);
    assert_eq!((leader_count, helper_count), (6, REPORTS as u32));

    // The next resume re-sends A's recorded decision; the helper answers it as before
    // and does not count A again.
    let mut resumed = JobDriver::resume_all(&mut leader).unwrap();
    assert_eq!(resumed.len(), 1, "only the failed job is resumed");
    assert_eq!(resumed[0].job_id(), a.job_id());
    drive(&mut resumed[0], &mut leader, &mut helper, &mut rng);
    assert!(JobDriver::resume_all(&mut leader).unwrap().is_empty());

    assert_eq!(ends(&leader, &helper), sequential);
}
