//! Record-level DP (`unit = "record"`) through the sans-IO parties: clients clip and sum
//! their sampled records, the aggregators release the exact sum, every aggregator's
//! ledger enforces the RDP budget of the subsampled discrete Gaussian on its own (also
//! after a restart), and bad input is refused with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use cairn_dp::rdp::RdpCurve;
use cairn_mpc::secret::Seed;
use cairn_protocol::client::{Client, ClientError};
use cairn_protocol::clock::Time;
use cairn_protocol::collector::{Collection, Collector};
use cairn_protocol::config::{ConfigError, NoisePlacement, TaskConfig};
use cairn_protocol::driver::{aggregate_in_process, collect_in_process};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::ErrorCode;
use cairn_protocol::privacy::{Privacy, signal_sensitivity};
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: usize = 8;
const NOW: Time = Time(1_000);

struct World {
    task: TaskConfig,
    leader: Leader<MemoryStore>,
    helper: Helper<MemoryStore>,
    helper_key: [u8; 32],
    collector: Collector,
    rng: ChaCha20Rng,
}

fn toml(privacy: &str) -> (String, HpkeSecretKey, HpkeSecretKey) {
    let header = format!(
        "name = \"records\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 6\nclip_norm = 1.0\n\
         proof = \"carry-lift\"\nmin_clients = 2\nmax_clients = 100\nround_duration_secs = 3600\n"
    );
    support::two_aggregator_task(&mut ChaCha20Rng::from_seed([5; 32]), &header, privacy)
}

const RECORD_NONE: &str =
    "noise = \"none\"\nunit = \"record\"\nsampling_rate = 1.0\nmax_records_per_report = 20";

fn world(privacy: &str) -> World {
    let (text, collector_sk, helper_sk) = toml(privacy);
    let task = TaskConfig::from_toml(&text).unwrap();
    let mut helper_key = [0u8; 32];
    hex::decode_to_slice(helper_sk.dangerous_to_hex().as_str(), &mut helper_key).unwrap();
    World {
        leader: Leader::new(task.clone(), Seed::from_bytes([3; 32]), MemoryStore::new()).unwrap(),
        helper: Helper::new(
            task.clone(),
            1,
            Seed::from_bytes([3; 32]),
            helper_sk,
            MemoryStore::new(),
        )
        .unwrap(),
        helper_key,
        collector: Collector::new(task.clone(), collector_sk).unwrap(),
        task,
        rng: ChaCha20Rng::from_seed([6; 32]),
    }
}

impl World {
    fn client(&mut self) -> Client {
        let cred = support::register_client(
            &self.task,
            self.leader.store(),
            self.helper.store(),
            &mut self.rng,
        );
        Client::new(self.task.clone(), cred).unwrap()
    }

    fn aggregate(&mut self, round: u32) {
        let helpers = std::slice::from_mut(&mut self.helper);
        let rejected =
            aggregate_in_process(&mut self.leader, helpers, round, NOW, &mut self.rng).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
    }

    fn collect(&mut self, round: u32) -> Result<Collection, ErrorCode> {
        let request = self.collector.request(round);
        let helpers = std::slice::from_mut(&mut self.helper);
        let resp = collect_in_process(&mut self.leader, helpers, request, NOW, &mut self.rng)
            .map_err(|e| e.code)?;
        Ok(self.collector.open(round, &resp).unwrap())
    }

    fn restart_helper(&mut self) {
        let placeholder = Helper::new(
            self.task.clone(),
            1,
            Seed::from_bytes([0; 32]),
            HpkeSecretKey::from_bytes([1; 32]),
            MemoryStore::new(),
        )
        .unwrap();
        let store = std::mem::replace(&mut self.helper, placeholder).into_store();
        self.helper = Helper::new(
            self.task.clone(),
            1,
            Seed::from_bytes([3; 32]),
            HpkeSecretKey::from_bytes(self.helper_key),
            store,
        )
        .unwrap();
    }
}

/// A record whose coordinates are multiples of 2^−6 with norm ≤ 1: clipping and
/// rounding leave it exact, so the released sum can be compared exactly.
fn record(k: usize) -> Vec<f32> {
    (0..DIM)
        .map(|i| ((k * 7 + i * 3) % 9) as f32 / 64.0 - 4.0 / 64.0)
        .collect()
}

#[test]
fn the_released_sum_is_the_sum_of_every_clients_records() {
    let mut w = world(RECORD_NONE);
    let mut expected = vec![0f64; DIM];
    for c in 0..4 {
        let client = w.client();
        let n = 3 + c * 5;
        let mut rows = Vec::new();
        for k in 0..n {
            let r = record(c * 100 + k);
            for (e, v) in expected.iter_mut().zip(&r) {
                *e += f64::from(*v);
            }
            rows.extend_from_slice(&r);
        }
        let req = client.prepare_upload_records(0, &rows, &mut w.rng).unwrap();
        w.leader.handle_upload(req, NOW).unwrap();
    }
    w.aggregate(0);
    let released = w.collect(0).unwrap();
    assert_eq!(released.count, 4);
    for (got, want) in released.sum.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}

#[test]
fn each_record_is_clipped_to_c_before_the_sum() {
    let mut w = world(RECORD_NONE);
    let client = w.client();
    // Two records of norm 8 and 4 along the first axis: clipped to 1 each.
    let mut rows = vec![0f32; 2 * DIM];
    rows[0] = 8.0;
    rows[DIM] = 4.0;
    let req = client.prepare_upload_records(0, &rows, &mut w.rng).unwrap();
    w.leader.handle_upload(req, NOW).unwrap();
    let other = w.client();
    let req = other.prepare_upload_records(0, &[], &mut w.rng).unwrap();
    w.leader.handle_upload(req, NOW).unwrap();
    w.aggregate(0);
    let released = w.collect(0).unwrap();
    assert_eq!(released.sum[0], 2.0);
    assert!(released.sum[1..].iter().all(|v| *v == 0.0));
}

#[test]
fn bad_record_input_is_refused_before_anything_is_sent() {
    let mut w = world(RECORD_NONE);
    let client = w.client();
    // Exactly the allowed number of records is a valid report.
    let most = vec![0.01f32; 20 * DIM];
    client
        .prepare_upload_records(0, &most, &mut w.rng)
        .expect("max_records_per_report records are allowed");
    let too_many = vec![0.01f32; 21 * DIM];
    assert!(matches!(
        client.prepare_upload_records(0, &too_many, &mut w.rng),
        Err(ClientError::TooManyRecords {
            sampled: 21,
            max: 20
        })
    ));
    assert!(matches!(
        client.prepare_upload_records(0, &[0.0; DIM + 1], &mut w.rng),
        Err(ClientError::WrongDimension { expected: DIM, got }) if got == DIM + 1
    ));
    let mut nan = vec![0.0f32; 2 * DIM];
    nan[DIM + 2] = f32::NAN;
    assert!(matches!(
        client.prepare_upload_records(0, &nan, &mut w.rng),
        Err(ClientError::NonFinite(10))
    ));
    assert!(matches!(
        client.prepare_upload(0, &[0.0; DIM], &mut w.rng),
        Err(ClientError::WrongUnit(_))
    ));
}

#[test]
fn every_aggregator_enforces_the_rdp_budget_on_its_own_across_restarts() {
    // σ/Δ ≈ 1.08 at q = 0.05: a handful of releases fit in ε = 2.
    let privacy = "noise = \"aggregator\"\nsigma = 72.0\nepsilon = 2.0\ndelta = 1e-6\n\
                   unit = \"record\"\nsampling_rate = 0.05\nmax_records_per_report = 20";
    let mut w = world(privacy);
    // The number of releases the budget allows, computed here from the accountant.
    let delta_q = signal_sensitivity(&w.task);
    let one = RdpCurve::subsampled_discrete_gaussian(delta_q, 72.0, 0.05).unwrap();
    let mut allowed = 0u32;
    while one.times(u64::from(allowed) + 1).epsilon(1e-6).unwrap().0 <= 2.0 {
        allowed += 1;
    }
    assert!(allowed >= 2, "the test needs a few releases, got {allowed}");
    let clients: Vec<Client> = (0..2).map(|_| w.client()).collect();
    let mut released = 0;
    for round in 0..=allowed {
        for c in &clients {
            let req = c
                .prepare_upload_records(round, &record(round as usize), &mut w.rng)
                .unwrap();
            w.leader.handle_upload(req, NOW).unwrap();
        }
        w.aggregate(round);
        if round == 1 {
            // A restart in between: the ledger is reloaded and keeps counting.
            w.restart_helper();
        }
        match w.collect(round) {
            Ok(c) => {
                released += 1;
                let receipt = c.receipt().unwrap();
                assert!(receipt.epsilon_total <= 2.0, "{receipt:?}");
                let spent = one.times(u64::from(released)).epsilon(1e-6).unwrap().0;
                assert!(
                    (receipt.epsilon_total - spent).abs() < 1e-9,
                    "{receipt:?}, expected ε {spent}"
                );
                assert_eq!(
                    receipt.epsilon_remaining,
                    2.0 - receipt.epsilon_total,
                    "{receipt:?}"
                );
                assert_eq!(receipt.rho_total, 0.0, "no zCDP at record level");
            }
            Err(code) => {
                assert_eq!(code, ErrorCode::BudgetExceeded);
                assert_eq!(round, allowed);
            }
        }
    }
    assert_eq!(released, allowed, "exactly the releases the budget allows");
    // The helper, asked directly for the refused round, refuses on its own.
    let record = w.helper.store().round(allowed).unwrap().unwrap();
    let req = cairn_protocol::messages::AggregateShareRequest {
        task_id: w.task.id(),
        round: allowed,
        report_count: record.count,
        report_set_digest: w.helper.store().report_set_digest(allowed).unwrap(),
        leader_ledger: cairn_protocol::ledger::LedgerHead {
            entries: u64::from(allowed),
            rho_total: 0.0,
            hash: [0; 32],
        },
        leader_released_before: false,
    };
    let err = w
        .helper
        .handle_aggregate_share_request(&req, NOW, &mut w.rng)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BudgetExceeded, "{}", err.detail);
    // The ledger entries carry the release's curve.
    let entries = w.helper.store().ledger().unwrap();
    assert_eq!(entries.len(), allowed as usize);
    assert!(
        entries
            .iter()
            .all(|e| e.rdp.as_ref() == Some(&one) && e.rho == 0.0)
    );
}

#[test]
fn record_level_settings_are_checked_when_the_task_loads() {
    let field = |privacy: &str| match TaskConfig::from_toml(&toml(privacy).0) {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("{privacy}: {other:?}"),
    };
    let base =
        "noise = \"aggregator\"\nsigma = 200.0\nepsilon = 2.0\ndelta = 1e-6\nunit = \"record\"";
    assert_eq!(
        field(&format!("{base}\nmax_records_per_report = 5")),
        "privacy.sampling_rate"
    );
    for q in ["0.0", "1.5", "-0.1", "nan"] {
        assert_eq!(
            field(&format!(
                "{base}\nsampling_rate = {q}\nmax_records_per_report = 5"
            )),
            "privacy.sampling_rate"
        );
    }
    assert_eq!(
        field(&format!(
            "{base}\nsampling_rate = 0.1\nmax_records_per_report = 0"
        )),
        "privacy.max_records_per_report"
    );
    assert_eq!(
        field(&format!("{base}\nsampling_rate = 0.1")),
        "privacy.max_records_per_report"
    );
    // σ far below what the budget needs.
    assert_eq!(
        field(
            "noise = \"aggregator\"\nsigma = 1.0\nepsilon = 1.0\ndelta = 1e-6\nunit = \"record\"\n\
             sampling_rate = 0.1\nmax_records_per_report = 5"
        ),
        "privacy.epsilon"
    );
    // m records of C·2^f must fit in 16 bits: 600 · 64 ≥ 2^15.
    assert_eq!(
        field(&format!(
            "{base}\nsampling_rate = 0.1\nmax_records_per_report = 600"
        )),
        "frac_bits"
    );
    // Client noise is accounted at record level (the subsampled distributed discrete
    // Gaussian), within what KLS21 covers: σ per client ≥ 1/2.
    let client = "noise = \"client\"\nsigma = 60.0\nepsilon = 20.0\ndelta = 1e-6\n\
                  min_honest_clients = 2\nunit = \"record\"\nsampling_rate = 0.1\n\
                  max_records_per_report = 5";
    let task = TaskConfig::from_toml(&toml(client).0).unwrap();
    assert_eq!(task.privacy().noise, NoisePlacement::Client);
    assert_eq!(
        field(&client.replace("sigma = 60.0", "sigma = 0.6")),
        "privacy.sigma"
    );
    // Sampling is only for records.
    assert_eq!(
        field(
            "noise = \"aggregator\"\nsigma = 60.0\nepsilon = 2.0\ndelta = 1e-6\nsampling_rate = 0.1"
        ),
        "privacy.sampling_rate"
    );
}

#[test]
fn the_unit_and_the_sampling_rate_are_part_of_the_task_id() {
    let base = "noise = \"aggregator\"\nsigma = 200.0\nepsilon = 2.0\ndelta = 1e-6";
    let record = |q: &str| {
        TaskConfig::from_toml(
            &toml(&format!(
                "{base}\nunit = \"record\"\nsampling_rate = {q}\nmax_records_per_report = 5"
            ))
            .0,
        )
        .unwrap()
    };
    let client = TaskConfig::from_toml(&toml(base).0).unwrap();
    let a = record("0.1");
    assert_ne!(a.id(), client.id());
    assert_ne!(a.id(), record("0.2").id());
    // A ledger written under one task cannot be loaded under another.
    let privacy = Privacy::for_task(&a).unwrap();
    assert!(privacy.rdp_per_release().is_some());
}
