//! Tests of `config`.

use super::*;

const KEY_A: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const KEY_B: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

fn sample(extra_task: &str, privacy: &str) -> String {
    format!(
        r#"
name = "t"
dimension = 1000
bits = 16
frac_bits = 8
clip_norm = 1.0
proof = "carry-lift"
min_clients = 5
max_clients = 100
round_duration_secs = 60
{extra_task}

[privacy]
{privacy}

[collector]
hpke_public_key = "{KEY_B}"

[[aggregators]]
role = "leader"
endpoint = "127.0.0.1:7100"
tls_cert_sha256 = "{fp1}"
hpke_public_key = "{KEY_A}"

[[aggregators]]
role = "helper"
endpoint = "127.0.0.1:7101"
tls_cert_sha256 = "{fp2}"
hpke_public_key = "{KEY_B}"
"#,
        fp1 = "11".repeat(32),
        fp2 = "22".repeat(32),
    )
}

const AGG_NOISE: &str = "noise = \"aggregator\"\nsigma = 1000.0\nepsilon = 4.0\ndelta = 1e-6";

fn field_of(err: ConfigError) -> &'static str {
    match err {
        ConfigError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn parses_and_derives_defaults() {
    let task = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
    assert_eq!(task.dimension(), 1000);
    // ⌈256 + √1000⌉ = ⌈287.62⌉.
    assert_eq!(task.norm_bound(), 288);
    assert_eq!(task.num_aggregators(), 2);
    assert_eq!(task.aggregator_fingerprint(1), Some(&[0x22; 32]));
}

#[test]
fn task_id_is_stable_and_covers_parameters_but_not_endpoints() {
    let a = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
    let b = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
    assert_eq!(a.id(), b.id());
    let moved = sample("", AGG_NOISE).replace("127.0.0.1:7101", "127.0.0.1:9999");
    assert_eq!(TaskConfig::from_toml(&moved).unwrap().id(), a.id());
    let more_budget = sample("", &AGG_NOISE.replace("epsilon = 4.0", "epsilon = 4.5"));
    assert_ne!(TaskConfig::from_toml(&more_budget).unwrap().id(), a.id());
    let other_bound = sample("norm_bound = 300", AGG_NOISE);
    assert_ne!(TaskConfig::from_toml(&other_bound).unwrap().id(), a.id());
    // The canonical TOML round-trips to the same task.
    assert_eq!(TaskConfig::from_toml(&a.to_toml()).unwrap().id(), a.id());
}

#[test]
fn every_parameter_that_matters_changes_the_task_id() {
    let base = sample("", AGG_NOISE);
    let id = TaskConfig::from_toml(&base).unwrap().id();
    let changes: &[(&str, &str)] = &[
        ("name = \"t\"", "name = \"u\""),
        ("dimension = 1000", "dimension = 999"),
        ("bits = 16", "bits = 32"),
        ("frac_bits = 8", "frac_bits = 7"),
        ("clip_norm = 1.0", "clip_norm = 0.5"),
        ("min_clients = 5", "min_clients = 6"),
        ("max_clients = 100", "max_clients = 101"),
        ("sigma = 1000.0", "sigma = 1001.0"),
        ("epsilon = 4.0", "epsilon = 4.5"),
        ("delta = 1e-6", "delta = 1e-7"),
        (&"11".repeat(32), &"33".repeat(32)),
    ];
    for (from, to) in changes {
        let changed = base.replacen(from, to, 1);
        assert_ne!(changed, base, "{from} not in the sample");
        match TaskConfig::from_toml(&changed) {
            Ok(t) => assert_ne!(t.id(), id, "changing {from} kept the task id"),
            // bits = 32 breaks the carry-lift no-wrap bound: a different task anyway.
            Err(e) => assert_eq!(*from, "bits = 16", "{from}: {e}"),
        }
    }
    for (extra, privacy) in [
        ("norm_bound = 300", AGG_NOISE.to_owned()),
        (
            "",
            AGG_NOISE.to_owned()
                + "\nunit = \"record\"\nsampling_rate = 0.5\nmax_records_per_report = 2",
        ),
    ] {
        let t = TaskConfig::from_toml(&sample(extra, &privacy)).unwrap();
        assert_ne!(t.id(), id, "{extra} {privacy}");
    }
    // The noise placement (client vs both at the same parameters).
    let placement = |noise: &str| {
        let privacy = format!(
            "noise = \"{noise}\"\nsigma = 1000.0\nepsilon = 1e9\ndelta = 1e-6\nmin_honest_clients = 5"
        );
        TaskConfig::from_toml(&sample("", &privacy)).unwrap().id()
    };
    assert_ne!(placement("client"), placement("both"));
    // The collector's key too (replacing the collector key, not the helper's).
    let other = base.replacen(
        &format!("[collector]\nhpke_public_key = \"{KEY_B}\""),
        &format!("[collector]\nhpke_public_key = \"{KEY_A}\""),
        1,
    );
    assert_ne!(TaskConfig::from_toml(&other).unwrap().id(), id);
    // Operational settings do not: the round duration and the endpoints.
    let op = base.replace("round_duration_secs = 60", "round_duration_secs = 61");
    assert_eq!(TaskConfig::from_toml(&op).unwrap().id(), id);
    let replicas = base.replacen(
        "endpoint = \"127.0.0.1:7100\"",
        "endpoint = \"127.0.0.1:7100\"\nreplica_endpoints = [\"127.0.0.1:7200\", \"127.0.0.2:7300\"]",
        1,
    );
    let with_replicas = TaskConfig::from_toml(&replicas).unwrap();
    // Nor does an aggregator's HPKE key, which rotates (`crate::keyring`): a rotation
    // keeps the task, its credentials and its ledger. The new key is the one clients
    // seal to.
    let new_key = "0900000000000000000000000000000000000000000000000000000000000000";
    let rotated = TaskConfig::from_toml(&base.replacen(
        &format!("hpke_public_key = \"{KEY_A}\""),
        &format!("hpke_public_key = \"{new_key}\""),
        1,
    ))
    .unwrap();
    assert_eq!(rotated.id(), id);
    assert_eq!(
        rotated.aggregator_hpke_key(0),
        Some(&HpkePublicKey::from_hex(new_key).unwrap())
    );
    assert_eq!(with_replicas.id(), id);
    assert_eq!(
        with_replicas.aggregators()[0].endpoints(),
        ["127.0.0.1:7100", "127.0.0.1:7200", "127.0.0.2:7300"]
            .map(|e| e.parse::<std::net::SocketAddr>().unwrap())
    );
}

#[test]
fn replica_endpoints_are_bounded_and_repeats_are_dropped() {
    let list = |n: usize| {
        let all: Vec<String> = (0..n)
            .map(|i| format!("\"10.0.0.1:{}\"", 8000 + i))
            .collect();
        sample("", AGG_NOISE).replacen(
            "endpoint = \"127.0.0.1:7100\"",
            &format!(
                "endpoint = \"127.0.0.1:7100\"\nreplica_endpoints = [{}]",
                all.join(", ")
            ),
            1,
        )
    };
    assert!(TaskConfig::from_toml(&list(MAX_REPLICA_ENDPOINTS)).is_ok());
    let err = TaskConfig::from_toml(&list(MAX_REPLICA_ENDPOINTS + 1)).unwrap_err();
    assert!(err.to_string().contains("replica endpoints"), "{err}");
    let repeated = sample("", AGG_NOISE).replacen(
        "endpoint = \"127.0.0.1:7100\"",
        "endpoint = \"127.0.0.1:7100\"\nreplica_endpoints = [\"127.0.0.1:7100\", \"127.0.0.1:7200\", \"127.0.0.1:7200\"]",
        1,
    );
    let task = TaskConfig::from_toml(&repeated).unwrap();
    assert_eq!(task.aggregators()[0].endpoints().len(), 2);
    let mixed = sample("", AGG_NOISE).replacen(
        "endpoint = \"127.0.0.1:7100\"",
        "endpoint = \"127.0.0.1:7100\"\nreplica_endpoints = [\"[::1]:7200\"]",
        1,
    );
    let err = TaskConfig::from_toml(&mixed).unwrap_err();
    assert!(err.to_string().contains("IPv4"), "{err}");
}

#[test]
fn unknown_keys_are_rejected() {
    let err = TaskConfig::from_toml(&sample("colour = \"red\"", AGG_NOISE)).unwrap_err();
    assert!(matches!(err, ConfigError::Toml(_)), "{err:?}");
    let err = TaskConfig::from_toml(&sample("", &format!("{AGG_NOISE}\nextra = 1"))).unwrap_err();
    assert!(matches!(err, ConfigError::Toml(_)), "{err:?}");
}

#[test]
fn clip_that_does_not_fit_in_b_bits_is_rejected_with_a_clear_message() {
    let text = sample("", AGG_NOISE).replace("frac_bits = 8", "frac_bits = 15");
    let err = TaskConfig::from_toml(&text).unwrap_err();
    assert!(
        err.to_string().contains("does not fit in b = 16 bits"),
        "{err}"
    );
}

#[test]
fn carry_lift_no_wrap_condition_is_enforced() {
    // d·(2·2^32)² ≥ p for any d ≥ 1 with b = 32.
    let text = sample("", AGG_NOISE).replace("bits = 16", "bits = 32");
    let err = TaskConfig::from_toml(&text).unwrap_err();
    assert!(err.to_string().contains("d·(n·q)² < p"), "{err}");
    // b = 16, n = 2: d·2^34 < p ⇔ d < 2^30 − 2^−2 …: the largest allowed d is fine.
    let ok = sample("", "noise = \"none\"").replace("dimension = 1000", "dimension = 16777216");
    assert!(TaskConfig::from_toml(&ok).is_ok());
}

#[test]
fn no_proof_mode_needs_the_sum_to_fit() {
    let text = sample("", "noise = \"none\"").replace("proof = \"carry-lift\"", "proof = \"none\"");
    // max_clients · (256 + 1) = 25 700 < 2^15: fits.
    assert!(TaskConfig::from_toml(&text).is_ok());
    // max_clients · (256 + 1) = 51 400 ≥ 2^15: the sum would not fit in 16 bits.
    let too_many = text.replace("max_clients = 100", "max_clients = 200");
    assert_eq!(
        field_of(TaskConfig::from_toml(&too_many).unwrap_err()),
        "max_clients"
    );
}

#[test]
fn no_proof_mode_counts_the_aggregators_noise_tail_in_the_sum() {
    // 100 · 257 = 25 700 fits in 2^15 = 32 768 without noise; with σ = 200 at two
    // aggregators the tail adds 12 · 200 · 2 = 4 800 (fits), with σ = 400 it adds
    // 9 600 (does not).
    let with_sigma = |sigma: &str| {
        sample(
            "",
            &format!("noise = \"aggregator\"\nsigma = {sigma}\nepsilon = 1000.0\ndelta = 1e-6"),
        )
        .replace("proof = \"carry-lift\"", "proof = \"none\"")
    };
    assert!(TaskConfig::from_toml(&with_sigma("200.0")).is_ok());
    assert_eq!(
        field_of(TaskConfig::from_toml(&with_sigma("400.0")).unwrap_err()),
        "max_clients"
    );
}

#[test]
fn client_noise_below_one_half_per_client_is_refused() {
    // σ/√n_min = 2/√25 = 0.4 < 1/2 (KLS21 needs ≥ 1/2).
    let text = sample(
        "",
        "noise = \"client\"\nsigma = 2.0\nepsilon = 1000.0\ndelta = 1e-6\nmin_honest_clients = 5",
    )
    .replace("min_clients = 5", "min_clients = 25")
    .replace("min_honest_clients = 5", "min_honest_clients = 25");
    let err = TaskConfig::from_toml(&text).unwrap_err();
    assert_eq!(field_of(err.clone()), "privacy.sigma", "{err}");
    assert!(err.to_string().contains("1/2"), "{err}");
}

#[test]
fn without_a_proof_the_noise_is_charged_for_an_honest_update_whatever_b_says() {
    // A configured B of 10 is far below Δ = 256 + √1000 ≈ 287.6: with a proof the
    // accounting may use B (the proof enforces it), without one it must use Δ.
    let privacy = "noise = \"aggregator\"\nsigma = 200.0\nepsilon = 1000.0\ndelta = 1e-6";
    let proven = TaskConfig::from_toml(&sample("norm_bound = 10", privacy)).unwrap();
    let unproven = TaskConfig::from_toml(
        &sample("norm_bound = 10", privacy).replace("proof = \"carry-lift\"", "proof = \"none\""),
    )
    .unwrap();
    assert_eq!(crate::privacy::aggregator_sensitivity(&proven), 10.0);
    let delta = 256.0 + 1000f64.sqrt();
    assert_eq!(crate::privacy::aggregator_sensitivity(&unproven), delta);
    let rho = crate::privacy::Privacy::for_task(&unproven)
        .unwrap()
        .rho_per_release();
    // ρ = Δ²/(2σ²) (CKS20 Theorem 14).
    assert!((rho - delta * delta / (2.0 * 200.0 * 200.0)).abs() < 1e-12);
}

#[test]
fn bad_values_get_typed_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("dimension = 1000", "dimension = 0", "dimension"),
        ("bits = 16", "bits = 12", "bits"),
        ("clip_norm = 1.0", "clip_norm = -1.0", "clip_norm"),
        ("clip_norm = 1.0", "clip_norm = nan", "clip_norm"),
        ("min_clients = 5", "min_clients = 0", "min_clients"),
        ("min_clients = 5", "min_clients = 500", "min_clients"),
        (
            "round_duration_secs = 60",
            "round_duration_secs = 0",
            "round_duration_secs",
        ),
        ("sigma = 1000.0", "sigma = 0.0", "privacy.sigma"),
        ("epsilon = 4.0", "epsilon = -1.0", "privacy.epsilon"),
        ("delta = 1e-6", "delta = 1.0", "privacy.delta"),
        ("role = \"helper\"", "role = \"leader\"", "aggregators"),
        (KEY_A, "abcd", "aggregators.hpke_public_key"),
    ];
    for (from, to, field) in cases {
        let text = sample("", AGG_NOISE).replacen(from, to, 1);
        assert_ne!(text, sample("", AGG_NOISE), "case {to} did not apply");
        let err = TaskConfig::from_toml(&text).unwrap_err();
        assert_eq!(field_of(err), *field, "case {to}");
    }
}

#[test]
fn a_budget_too_small_for_one_release_is_refused_at_load() {
    // B = 288 and σ = 1: one release costs ρ = 288²/2 ≈ 41 472, far above ε = 4.
    let tiny = AGG_NOISE.replace("sigma = 1000.0", "sigma = 1.0");
    let err = TaskConfig::from_toml(&sample("", &tiny)).unwrap_err();
    assert_eq!(field_of(err.clone()), "privacy.epsilon");
    assert!(
        err.to_string().contains("too small for even one release"),
        "{err}"
    );
}

#[test]
fn client_noise_needs_min_honest_clients() {
    let client = AGG_NOISE.replace("\"aggregator\"", "\"client\"");
    let err = TaskConfig::from_toml(&sample("", &client)).unwrap_err();
    assert_eq!(field_of(err), "privacy.min_honest_clients");
    let ok = format!("{client}\nmin_honest_clients = 5");
    assert!(TaskConfig::from_toml(&sample("", &ok)).is_ok());
}

#[test]
fn a_secret_file_loaded_as_a_task_is_not_quoted_in_the_error() {
    // A hex secret (an HPKE key file, the verify key) passed where a task belongs.
    let secret = "4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee12\n";
    let err = TaskConfig::from_toml(secret).unwrap_err().to_string();
    assert!(!err.contains("4f1c0ffee"), "{err}");
    assert!(err.contains("at byte"), "{err}");
}

#[test]
fn joint_rand_hash_defaults_to_sha256_and_blake3_makes_another_task() {
    let base = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
    assert_eq!(base.joint_rand_hash(), JointRandHash::Sha256);
    // Task files without the key keep their canonical form and their id.
    assert!(!base.to_toml().contains("joint_rand_hash"));
    let sha = TaskConfig::from_toml(&sample("joint_rand_hash = \"sha256\"", AGG_NOISE)).unwrap();
    assert_eq!(sha.id(), base.id());
    let blake = TaskConfig::from_toml(&sample("joint_rand_hash = \"blake3\"", AGG_NOISE)).unwrap();
    assert_eq!(blake.joint_rand_hash(), JointRandHash::Blake3);
    assert_ne!(blake.id(), base.id());
    let again = TaskConfig::from_toml(&blake.to_toml()).unwrap();
    assert_eq!(
        (again.id(), again.joint_rand_hash()),
        (blake.id(), JointRandHash::Blake3)
    );
    let unknown = TaskConfig::from_toml(&sample("joint_rand_hash = \"md5\"", AGG_NOISE))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("`sha256` or `blake3`"), "{unknown}");
    // Without a proof there is no joint randomness to hash.
    let no_proof = sample("joint_rand_hash = \"blake3\"", "noise = \"none\"")
        .replace("proof = \"carry-lift\"", "proof = \"none\"");
    assert_eq!(
        field_of(TaskConfig::from_toml(&no_proof).unwrap_err()),
        "joint_rand_hash"
    );
}
