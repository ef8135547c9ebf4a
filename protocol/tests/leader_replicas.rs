//! Replicas of the leader sharing one store, each with the ledger it loaded at start:
//! what one replica released, another must see before it releases or answers.
//!
//! * A replica that dies mid-collect (the helper has released, the collector's answer
//!   is not stored) leaves the collect to another replica, which must forward the
//!   same round rather than see a helper "ahead" of its stale ledger and refuse.
//! * Two replicas that each hold the budget's last release must not both spend it:
//!   the stale one refuses, by its own re-read ledger, and the store refuses an entry
//!   that does not extend its chain.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;

use std::sync::Arc;

use cairn_mpc::secret::Seed;
use cairn_protocol::aggregator::Reject;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{
    CollectDriver, CollectPoll, aggregate_in_process, collect_in_process,
};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::leader::{CollectStep, Leader};
use cairn_protocol::messages::{CollectResponse, ErrorCode, UploadRequest};
use cairn_protocol::privacy::Privacy;
use cairn_protocol::store::{MemoryStore, TaskStore};
use hooked_store::{HookedStore, ReadPoint};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: usize = 4;
const NOW: Time = Time(1_000);

struct World {
    task: TaskConfig,
    store: Arc<MemoryStore>,
    helper: Helper<MemoryStore>,
    helper_sk: HpkeSecretKey,
    collector: Collector,
    rng: ChaCha20Rng,
}

fn helper_on(task: &TaskConfig, sk: &HpkeSecretKey, store: MemoryStore) -> Helper<MemoryStore> {
    let sk = HpkeSecretKey::from_hex(&sk.dangerous_to_hex()).unwrap();
    Helper::new(task.clone(), 1, Seed::from_bytes([3; 32]), sk, store).unwrap()
}

fn world(privacy: &str) -> World {
    let header = format!(
        "name = \"replicas\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\nclip_norm = 1.0\n\
         proof = \"carry-lift\"\nmin_clients = 2\nmax_clients = 100\nround_duration_secs = 3600\n"
    );
    let mut rng = ChaCha20Rng::from_seed([21; 32]);
    let (text, collector_sk, helper_sk) = support::two_aggregator_task(&mut rng, &header, privacy);
    let task = TaskConfig::from_toml(&text).unwrap();
    let helper = helper_on(&task, &helper_sk, MemoryStore::new());
    World {
        helper_sk,
        collector: Collector::new(task.clone(), collector_sk).unwrap(),
        task,
        store: Arc::new(MemoryStore::new()),
        helper,
        rng,
    }
}

impl World {
    /// The collector's request for `round`, released through `leader` with the helper.
    fn collect<S: TaskStore>(
        &mut self,
        leader: &mut Leader<S>,
        round: u32,
    ) -> Result<CollectResponse, Reject> {
        collect_in_process(
            leader,
            std::slice::from_mut(&mut self.helper),
            self.collector.request(round),
            NOW,
            &mut self.rng,
        )
    }

    /// A leader replica on the shared store, loading its ledger now.
    fn replica(&self) -> Leader<Arc<MemoryStore>> {
        Leader::new(
            self.task.clone(),
            Seed::from_bytes([3; 32]),
            Arc::clone(&self.store),
        )
        .unwrap()
    }

    /// Two fresh clients upload (1, 0, 0, 0)/256 each for `round` through `leader`, and
    /// the leader aggregates them with the helper.
    fn round_of_two(&mut self, leader: &mut Leader<Arc<MemoryStore>>, round: u32) {
        self.upload_two(leader, round);
        aggregate_in_process(
            leader,
            std::slice::from_mut(&mut self.helper),
            round,
            NOW,
            &mut self.rng,
        )
        .unwrap();
    }

    /// Two fresh clients upload (1, 0, 0, 0)/256 each for `round` through `leader`.
    fn upload_two(&mut self, leader: &mut Leader<Arc<MemoryStore>>, round: u32) {
        for _ in 0..2 {
            let upload = self.prepared_upload(round);
            leader.handle_upload(upload, NOW).unwrap();
        }
    }

    /// A fresh client, registered with both aggregators, and its upload of
    /// (1, 0, 0, 0)/256 for `round`.
    fn prepared_upload(&mut self, round: u32) -> UploadRequest {
        let cred =
            support::register_client(&self.task, &*self.store, self.helper.store(), &mut self.rng);
        Client::new(self.task.clone(), cred)
            .unwrap()
            .prepare_upload_quantised(round, &[1, 0, 0, 0], &mut self.rng)
            .unwrap()
    }

    /// The helper restarts after `restore` did what it does to its store.
    fn restart_helper(&mut self, restore: impl FnOnce(&MemoryStore)) {
        let placeholder = helper_on(&self.task, &self.helper_sk, MemoryStore::new());
        let store = std::mem::replace(&mut self.helper, placeholder).into_store();
        restore(&store);
        self.helper = helper_on(&self.task, &self.helper_sk, store);
    }

    /// `leader` starts releasing `round` for the collector: it releases its own share
    /// and returns the driver with its request for the helper, not yet sent.
    fn begin_collect<S: TaskStore>(
        &mut self,
        leader: &mut Leader<S>,
        round: u32,
    ) -> (CollectDriver, cairn_protocol::driver::Transmit) {
        let mut driver = CollectDriver::new(
            self.collector.request(round),
            NOW,
            std::time::Instant::now(),
            std::time::Duration::ZERO,
        );
        let CollectPoll::Transmit(t) = driver
            .poll(leader, &mut self.rng, std::time::Instant::now())
            .unwrap()
        else {
            panic!("the leader asks the helper");
        };
        (driver, t)
    }

    /// A leader replica on `store` (which shares this world's store).
    fn replica_on(&self, store: Arc<HookedStore>) -> Leader<Arc<HookedStore>> {
        Leader::new(self.task.clone(), Seed::from_bytes([3; 32]), store).unwrap()
    }
}

#[test]
fn a_collect_left_by_a_dead_replica_is_finished_by_another() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    let mut b = w.replica();
    w.round_of_two(&mut a, 0);

    // Replica A releases its share, the helper releases its own… and A dies before it
    // stores the collector's answer.
    let (driver, t) = w.begin_collect(&mut a, 0);
    w.helper.handle_message(t.message, NOW, &mut w.rng).unwrap();
    drop((driver, a));

    // The collector retries on replica B, which had loaded the ledger before A's release.
    let response = collect_in_process(
        &mut b,
        std::slice::from_mut(&mut w.helper),
        w.collector.request(0),
        NOW,
        &mut w.rng,
    )
    .expect("replica B forwards the round the helper released");
    let released = w.collector.open(0, &response).unwrap();
    assert_eq!(released.count, 2);
    assert_eq!(released.sum_quantised, vec![2, 0, 0, 0]);
    assert_eq!(w.store.ledger().unwrap().len(), 1, "released once");
    assert_eq!(w.helper.store().ledger().unwrap().len(), 1);
}

#[test]
fn a_collect_counts_the_job_another_replica_commits_while_it_looks() {
    let mut w = world("noise = \"none\"");
    let mut b = w.replica();
    w.upload_two(&mut b, 0);
    // Replica A reads the round (no valid report yet, both queued) and then looks for
    // reports in flight; in between, replica B aggregates both with the helper.
    let hooked = Arc::new(HookedStore::new(Arc::clone(&w.store)));
    let mut a = w.replica_on(Arc::clone(&hooked));
    let World {
        mut helper,
        collector,
        mut rng,
        ..
    } = w;
    let mut b_rng = ChaCha20Rng::from_seed([22; 32]);
    hooked.before_next(
        ReadPoint::Queue,
        Box::new(move || {
            aggregate_in_process(
                &mut b,
                std::slice::from_mut(&mut helper),
                0,
                NOW,
                &mut b_rng,
            )
            .unwrap();
        }),
    );
    // Nothing is in flight by the time A looks: A must count what B committed, not
    // refuse the round as empty by the count it read before.
    let step = a
        .begin_collect(&collector.request(0), NOW, &mut rng)
        .unwrap_or_else(|e| panic!("the round holds two valid reports: {e:?}"));
    let CollectStep::AskHelpers { request, .. } = step else {
        panic!("a first collect asks the helper");
    };
    assert_eq!(request.report_count, 2);
}

#[test]
fn a_collect_waits_for_an_upload_stored_before_a_close_it_did_not_see() {
    let mut w = world("noise = \"none\"");
    let mut b = w.replica();
    w.round_of_two(&mut b, 0);
    let late = w.prepared_upload(0);
    // Replica A reads the round (open, two valid reports) and looks for reports in
    // flight: none queued. Before it reads the open jobs, replica B stores and
    // acknowledges one more upload, and a collect on B closes the round.
    let hooked = Arc::new(HookedStore::new(Arc::clone(&w.store)));
    let mut a = w.replica_on(Arc::clone(&hooked));
    let store = Arc::clone(&w.store);
    hooked.before_next(
        ReadPoint::OpenJobs,
        Box::new(move || {
            b.handle_upload(late, NOW).unwrap();
            store.close_round(0).unwrap();
        }),
    );
    // A's first look proved nothing about uploads after it: releasing now would leave
    // the acknowledged upload out. A must look again, after the close it has seen.
    let request = w.collector.request(0);
    match a.begin_collect(&request, NOW, &mut w.rng) {
        Err(e) => assert_eq!(e.code, ErrorCode::Mismatch, "retriable: {e:?}"),
        Ok(step) => panic!("released without the acknowledged upload: {step:?}"),
    }
    assert!(w.store.ledger().unwrap().is_empty(), "nothing spent");
    // Once the upload is aggregated, the round is released with all three.
    aggregate_in_process(
        &mut a,
        std::slice::from_mut(&mut w.helper),
        0,
        NOW,
        &mut w.rng,
    )
    .unwrap();
    let response = w.collect(&mut a, 0).unwrap();
    let released = w.collector.open(0, &response).unwrap();
    assert_eq!(released.count, 3);
    assert_eq!(released.sum_quantised, vec![3, 0, 0, 0]);
}

#[test]
fn two_replicas_holding_the_last_release_of_the_budget_spend_it_once() {
    let mut w = world("noise = \"aggregator\"\nsigma = 1400.0\nepsilon = 1.0\ndelta = 1e-6");
    let privacy = Privacy::for_task(&w.task).unwrap();
    let allowed = (privacy.rho_budget() / privacy.rho_per_release()).floor();
    assert_eq!(allowed, 1.0, "the budget holds exactly one release");
    let mut a = w.replica();
    let mut b = w.replica();
    w.round_of_two(&mut a, 0);
    w.round_of_two(&mut b, 1);

    // A releases round 0: the budget is spent.
    let r0 = w.collect(&mut a, 0).unwrap();
    assert_eq!(w.collector.open(0, &r0).unwrap().count, 2);
    // B, whose ledger was loaded empty, is asked for round 1: refused on its own.
    let err = w.collect(&mut b, 1).unwrap_err();
    assert_eq!(err.code, ErrorCode::BudgetExceeded, "{err:?}");
    assert_eq!(w.store.ledger().unwrap().len(), 1);
    assert_eq!(w.helper.store().ledger().unwrap().len(), 1);
}

#[test]
fn a_helper_that_missed_a_release_catches_up_after_later_rounds() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    let mut b = w.replica();
    w.round_of_two(&mut a, 0);
    w.round_of_two(&mut a, 1);

    // Replica A releases its share of round 0 and dies before asking the helper.
    let (driver, _) = w.begin_collect(&mut a, 0);
    drop((driver, a));

    // The collector asks for round 1 first: the leader now records two releases, the
    // helper would record one. The helper cannot tell this from its own rollback and
    // refuses; the leader can, and says to collect round 0 first.
    let err = w.collect(&mut b, 1).unwrap_err();
    assert_eq!(err.code, ErrorCode::Busy, "{err:?}");
    assert!(err.detail.contains("for round 0"), "{}", err.detail);
    // Collecting round 0, then round 1, brings both ledgers level.
    for round in [0, 1] {
        let response = w
            .collect(&mut b, round)
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(w.collector.open(round, &response).unwrap().count, 2);
    }
    assert_eq!(w.store.ledger().unwrap().len(), 2);
    assert_eq!(w.helper.store().ledger().unwrap().len(), 2);
}

#[test]
fn a_replica_keeps_the_round_window_other_replicas_moved() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    let b = w.replica();
    w.round_of_two(&mut a, 40);
    w.collect(&mut a, 40).unwrap();
    // B has released nothing itself; round 2 is long past all the same (the window
    // starts 16 rounds below the newest release, whoever made it).
    let cred = Credential::generate(w.task.id(), &mut w.rng);
    w.store
        .add_client(cred.client_id(), &cred.key_for(0))
        .unwrap();
    let upload = Client::new(w.task.clone(), cred)
        .unwrap()
        .prepare_upload_quantised(2, &[1, 0, 0, 0], &mut w.rng)
        .unwrap();
    let err = b.handle_upload(upload, NOW).unwrap_err();
    assert_eq!(err.code, ErrorCode::RoundClosed, "{err:?}");
    assert!(
        w.store.round(2).unwrap().is_none(),
        "nothing stored for round 2"
    );
}

#[test]
fn a_replica_refuses_a_store_ledger_rewritten_behind_it() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    let mut b = w.replica();
    w.round_of_two(&mut a, 0);
    w.round_of_two(&mut a, 1);
    w.round_of_two(&mut a, 2);
    w.collect(&mut a, 0).unwrap();
    let seen = w.store.ledger().unwrap();
    assert_eq!(seen.len(), 1);

    // The store's ledger is restored from a backup taken before that release, and
    // replica B releases round 1 on top of it: a chain as long as the one A saw, but
    // another one (B's collect itself fails at the helper, which is ahead).
    w.store.restore_ledger(Vec::new());
    let _ = w.collect(&mut b, 1);
    let rewritten = w.store.ledger().unwrap();
    assert_eq!(rewritten.len(), 1);
    assert_ne!(rewritten[0].hash, seen[0].hash);

    // A must not take that chain for the one it saw: the release of round 0 would be
    // forgotten. It refuses to release anything until the newest ledger is restored.
    let err = w.collect(&mut a, 2).unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerRollback, "{err:?}");
}

#[test]
fn two_replicas_collecting_two_rounds_at_once_are_told_to_wait_not_that_a_ledger_rolled_back() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    let mut b = w.replica();
    w.round_of_two(&mut a, 0);
    w.round_of_two(&mut a, 1);

    // Replica A has released its share of round 0; its request to the helper is still
    // on the way when replica B releases round 1 and asks the helper first. The helper
    // would record one release, the leader records two: the helper cannot tell this
    // from its own rollback, but the leader can (round 0 has no collected answer yet).
    let (mut driver, t) = w.begin_collect(&mut a, 0);
    let err = w.collect(&mut b, 1).unwrap_err();
    assert_eq!(err.code, ErrorCode::Busy, "{err:?}");
    assert!(err.detail.contains("round 0"), "{}", err.detail);
    assert!(err.code.is_retriable());
    assert_eq!(w.helper.store().ledger().unwrap().len(), 0, "nothing spent");

    // A's request arrives and round 0 completes; B's retry of round 1 then goes through.
    let answer = w.helper.handle_message(t.message, NOW, &mut w.rng);
    driver.handle_answer(answer).unwrap();
    let CollectPoll::Done(r0) = driver
        .poll(&mut a, &mut w.rng, std::time::Instant::now())
        .unwrap()
    else {
        panic!("round 0 is collected");
    };
    assert_eq!(w.collector.open(0, &r0).unwrap().count, 2);
    let r1 = w.collect(&mut b, 1).unwrap();
    assert_eq!(w.collector.open(1, &r1).unwrap().count, 2);
    assert_eq!(w.store.ledger().unwrap().len(), 2);
    assert_eq!(w.helper.store().ledger().unwrap().len(), 2);
}

#[test]
fn a_helper_restarted_on_an_old_copy_of_its_ledger_is_still_called_a_rollback() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    for round in 0..3 {
        w.round_of_two(&mut a, round);
    }
    w.collect(&mut a, 0).unwrap();
    w.collect(&mut a, 1).unwrap();
    // The helper's database is restored from a copy taken before either release.
    w.restart_helper(|store| store.restore_ledger(Vec::new()));

    // Every earlier release of the leader was collected, so the helper's missing
    // releases are not in flight: its ledger was rolled back.
    let err = w.collect(&mut a, 2).unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerRollback, "{err:?}");
    assert!(err.detail.contains("helper 1"), "{}", err.detail);
    assert!(err.detail.contains("restore"), "{}", err.detail);
    assert!(
        w.helper.store().ledger().unwrap().is_empty(),
        "nothing spent"
    );
}

#[test]
fn a_refusal_judged_after_the_earlier_round_was_collected_is_not_called_a_rollback() {
    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    let mut b = w.replica();
    w.round_of_two(&mut a, 0);
    w.round_of_two(&mut a, 1);
    // A has released round 0 and B round 1; B's request reaches the helper first and
    // is refused (the helper is behind)…
    let (mut driver_a, t0) = w.begin_collect(&mut a, 0);
    let (mut driver_b, t1) = w.begin_collect(&mut b, 1);
    let refusal = w.helper.handle_message(t1.message, NOW, &mut w.rng);
    assert_eq!(
        refusal.as_ref().unwrap_err().code,
        ErrorCode::LedgerBehind,
        "{refusal:?}"
    );
    driver_b.handle_answer(refusal).unwrap();
    // …and round 0 is collected before B judges that refusal.
    let answer = w.helper.handle_message(t0.message, NOW, &mut w.rng);
    driver_a.handle_answer(answer).unwrap();
    assert!(matches!(
        driver_a
            .poll(&mut a, &mut w.rng, std::time::Instant::now())
            .unwrap(),
        CollectPoll::Done(_)
    ));

    // Every earlier round is collected now, but the helper said "behind" before that:
    // B asks it once more instead of calling it rolled back, and round 1 is released.
    let response = loop {
        match driver_b
            .poll(&mut b, &mut w.rng, std::time::Instant::now())
            .unwrap_or_else(|e| panic!("{e:?}"))
        {
            CollectPoll::Transmit(t) => {
                let answer = w.helper.handle_message(t.message, NOW, &mut w.rng);
                driver_b.handle_answer(answer).unwrap();
            }
            CollectPoll::Retry { .. } => panic!("no report in flight"),
            CollectPoll::Done(response) => break response,
        }
    };
    assert_eq!(w.collector.open(1, &response).unwrap().count, 2);
    assert_eq!(w.helper.store().ledger().unwrap().len(), 2);
}

#[test]
fn garbage_collection_keeps_a_release_the_helper_has_not_answered() {
    use cairn_protocol::config::Role;
    use cairn_protocol::store::GarbageScope;
    use cairn_protocol::store::retention::garbage_cutoff;

    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    w.round_of_two(&mut a, 0);
    // The leader releases round 0, and its request to the helper is lost.
    drop(w.begin_collect(&mut a, 0));

    // `cairn db gc --keep-rounds 0` on the leader: round 0 is released, but its report
    // set is still needed to ask the helper.
    let cutoff = garbage_cutoff(&*w.store, Role::Leader, 0).unwrap();
    assert_eq!(
        (cutoff.through, cutoff.scope, cutoff.uncollected.as_slice()),
        (Some(0), GarbageScope::Collected, &[0][..])
    );
    assert_eq!(w.store.collect_garbage(0, cutoff.scope).unwrap(), 0);

    // The helper comes back: round 0 is released as the leader counted it.
    let response = w.collect(&mut a, 0).expect("round 0 is still collectable");
    let released = w.collector.open(0, &response).unwrap();
    assert_eq!(
        (released.count, released.sum_quantised),
        (2, vec![2, 0, 0, 0])
    );

    // Collected: now it may go, and a repeated collect is answered as before.
    let cutoff = garbage_cutoff(&*w.store, Role::Leader, 0).unwrap();
    assert_eq!((cutoff.through, cutoff.uncollected.len()), (Some(0), 0));
    assert!(w.store.collect_garbage(0, cutoff.scope).unwrap() > 0);
    let again = w.collect(&mut a, 0).unwrap();
    assert_eq!(again, response);
    // A helper never waits for a collect answer of its own.
    let helper_cutoff = garbage_cutoff(w.helper.store(), Role::Helper, 0).unwrap();
    assert_eq!(
        (helper_cutoff.through, helper_cutoff.scope),
        (Some(0), GarbageScope::Released)
    );
}

#[test]
fn garbage_collection_keeps_the_newest_released_rounds_counted_as_rounds() {
    use cairn_protocol::config::Role;
    use cairn_protocol::store::retention::garbage_cutoff;

    let mut w = world("noise = \"none\"");
    let mut a = w.replica();
    // Released rounds 0, 5 and 9 (not consecutive).
    for round in [0, 5, 9] {
        w.round_of_two(&mut a, round);
        w.collect(&mut a, round).unwrap();
    }
    let through = |keep| {
        garbage_cutoff(&*w.store, Role::Leader, keep)
            .unwrap()
            .through
    };
    assert_eq!(through(0), Some(9));
    assert_eq!(through(1), Some(5), "the newest released round is kept");
    assert_eq!(through(2), Some(0));
    assert_eq!(through(3), None, "three released rounds, three kept");
}
