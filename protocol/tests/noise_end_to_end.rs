//! The noise is really there, and of the right size, in what the collector receives.
//!
//! Seeded rounds through the sans-IO parties with client updates whose quantisation is
//! exact (binary fractions inside the clip norm), so the plaintext sum is known exactly
//! and `released − plaintext` is exactly the noise. Its coordinates must have mean 0 and
//! the variance of the placement:
//!
//! - `aggregator`: each of the n aggregators adds `N_Z(0, σ²)` → `n·σ²`;
//! - `client`: each of the N clients adds `N_Z(0, σ²/n_min)` (KLS21) → `N·σ²/n_min`;
//! - `both`: the sum of the two;
//! - record level: the same variances (the noise is added to the sum of sampled records).
//!
//! (`Var N_Z(0, σ²) = σ²(1 − O(e^{−2π²σ²}))`, equal to σ² in f64 for σ ≥ 5.)
//!
//! The test: with k samples, the sample variance is within `z·V·√(2/(k−1))` of `V`
//! and the mean within `z·√(V/k)` of 0, with `z = 5.5` (two-sided normal tail ≈ 4e−8
//! each; the sample variance of a sum of discrete Gaussians is close to normal at
//! k ≥ 2000). Deleting any noise step, or drawing it at the wrong scale, moves the
//! variance by ≥ 20%, far outside the bound (≤ 13% at k = 3000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{aggregate_in_process, collect_in_process};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::generate_keypair;
use cairn_protocol::leader::Leader;
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: usize = 1000;
const NOW: Time = Time(1_000);
const Z: f64 = 5.5;

/// Runs `rounds` rounds of `clients` clients with three aggregators under `privacy`;
/// returns every coordinate of `released − plaintext`.
fn noise_samples(privacy: &str, clients: usize, rounds: u32, records: bool) -> Vec<f64> {
    let mut rng = ChaCha20Rng::from_seed([17; 32]);
    let (collector_sk, collector_pk) = generate_keypair(&mut rng);
    let mut aggs = String::new();
    let mut helper_keys = Vec::new();
    for i in 0..3 {
        let (sk, pk) = generate_keypair(&mut rng);
        if i > 0 {
            helper_keys.push(sk);
        }
        aggs.push_str(&format!(
            "\n[[aggregators]]\nrole = \"{}\"\nendpoint = \"127.0.0.1:{}\"\ntls_cert_sha256 = \"{}\"\nhpke_public_key = \"{}\"\n",
            if i == 0 { "leader" } else { "helper" },
            7000 + i,
            format!("{:02x}", i + 1).repeat(32),
            pk.to_hex()
        ));
    }
    let toml = format!(
        "name = \"noise\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\nclip_norm = 1.0\n\
         proof = \"carry-lift\"\nmin_clients = 4\nmax_clients = 100\nround_duration_secs = 3600\n\n\
         [privacy]\n{privacy}\n\n[collector]\nhpke_public_key = \"{}\"\n{aggs}",
        collector_pk.to_hex()
    );
    let task = TaskConfig::from_toml(&toml).unwrap();
    let mut leader =
        Leader::new(task.clone(), Seed::from_bytes([1; 32]), MemoryStore::new()).unwrap();
    let mut helpers: Vec<Helper<MemoryStore>> = helper_keys
        .into_iter()
        .enumerate()
        .map(|(i, sk)| {
            Helper::new(
                task.clone(),
                (i + 1) as u8,
                Seed::from_bytes([1; 32]),
                sk,
                MemoryStore::new(),
            )
            .unwrap()
        })
        .collect();
    let collector = Collector::new(task.clone(), collector_sk).unwrap();
    let parties: Vec<Client> = (0..clients)
        .map(|_| {
            let cred = Credential::generate(task.id(), &mut rng);
            leader
                .store()
                .add_client(cred.client_id(), &cred.key_for(0))
                .unwrap();
            for (j, h) in helpers.iter().enumerate() {
                h.store()
                    .add_client(cred.client_id(), &cred.key_for((j + 1) as u8))
                    .unwrap();
            }
            Client::new(task.clone(), cred).unwrap()
        })
        .collect();
    let mut samples = Vec::new();
    for round in 0..rounds {
        let mut plaintext = vec![0i64; DIM];
        for (c, party) in parties.iter().enumerate() {
            // A multiple of 2^−8 in every coordinate, norm < 1: quantised exactly.
            let update: Vec<f32> = (0..DIM)
                .map(|i| (((i * 7 + c * 13 + round as usize * 5) % 5) as f32 - 2.0) / 256.0)
                .collect();
            for (p, u) in plaintext.iter_mut().zip(&update) {
                *p += (*u * 256.0) as i64;
            }
            let req = if records {
                party
                    .prepare_upload_records(round, &update, &mut rng)
                    .unwrap()
            } else {
                party.prepare_upload(round, &update, &mut rng).unwrap()
            };
            leader.handle_upload(req, NOW).unwrap();
        }
        let rejected =
            aggregate_in_process(&mut leader, &mut helpers, round, NOW, &mut rng).unwrap();
        assert!(rejected.is_empty());
        let resp = collect_in_process(
            &mut leader,
            &mut helpers,
            collector.request(round),
            NOW,
            &mut rng,
        )
        .unwrap();
        let released = collector.open(round, &resp).unwrap();
        assert_eq!(released.count as usize, clients);
        samples.extend(
            released
                .sum_quantised
                .iter()
                .zip(&plaintext)
                .map(|(r, p)| (r - p) as f64),
        );
    }
    samples
}

/// Checks mean 0 and variance `expected` within the module's bounds.
fn assert_noise(samples: &[f64], expected: f64, what: &str) {
    let k = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / k;
    let var = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (k - 1.0);
    let var_tol = Z * expected * (2.0 / (k - 1.0)).sqrt();
    let mean_tol = Z * (expected / k).sqrt();
    println!(
        "{what}: {k} samples, mean {mean:.3} (±{mean_tol:.3}), variance {var:.1} vs {expected:.1} (±{var_tol:.1})"
    );
    assert!(mean.abs() <= mean_tol, "{what}: mean {mean}");
    assert!(
        (var - expected).abs() <= var_tol,
        "{what}: variance {var} vs {expected}"
    );
}

const AGGREGATOR: &str = "noise = \"aggregator\"\nsigma = 30.0\nepsilon = 1000.0\ndelta = 1e-6";

#[test]
fn aggregator_noise_has_variance_n_sigma_squared() {
    let samples = noise_samples(AGGREGATOR, 4, 3, false);
    assert_noise(&samples, 3.0 * 900.0, "aggregator");
}

#[test]
fn client_noise_has_the_variance_of_the_kls21_sum() {
    // σ = 40, n_min = 4: each client adds N_Z(0, 400); 5 clients → 2000.
    let privacy =
        "noise = \"client\"\nsigma = 40.0\nepsilon = 1e7\ndelta = 1e-6\nmin_honest_clients = 4";
    let samples = noise_samples(privacy, 5, 3, false);
    assert_noise(&samples, 5.0 * 400.0, "client");
}

#[test]
fn both_placements_add_up() {
    let privacy =
        "noise = \"both\"\nsigma = 40.0\nepsilon = 1e7\ndelta = 1e-6\nmin_honest_clients = 4";
    let samples = noise_samples(privacy, 4, 3, false);
    assert_noise(&samples, 3.0 * 1600.0 + 4.0 * 400.0, "both");
}

#[test]
fn record_level_aggregator_noise_has_variance_n_sigma_squared() {
    let privacy = "noise = \"aggregator\"\nsigma = 30.0\nepsilon = 1000.0\ndelta = 1e-6\n\
                   unit = \"record\"\nsampling_rate = 0.5\nmax_records_per_report = 4";
    let samples = noise_samples(privacy, 4, 3, true);
    assert_noise(&samples, 3.0 * 900.0, "record level");
}

#[test]
fn record_level_client_noise_has_the_variance_of_the_kls21_sum() {
    // σ = 40, n_min = 4: each of the 5 clients adds N_Z(0, 400) to its records' sum.
    let privacy = "noise = \"client\"\nsigma = 40.0\nepsilon = 1e7\ndelta = 1e-6\n\
                   min_honest_clients = 4\nunit = \"record\"\nsampling_rate = 0.5\n\
                   max_records_per_report = 4";
    let samples = noise_samples(privacy, 5, 3, true);
    assert_noise(&samples, 5.0 * 400.0, "record level, client noise");
}

#[test]
fn record_level_both_placements_add_up() {
    let privacy = "noise = \"both\"\nsigma = 40.0\nepsilon = 1e7\ndelta = 1e-6\n\
                   min_honest_clients = 4\nunit = \"record\"\nsampling_rate = 0.5\n\
                   max_records_per_report = 4";
    let samples = noise_samples(privacy, 4, 3, true);
    assert_noise(&samples, 3.0 * 1600.0 + 4.0 * 400.0, "record level, both");
}
