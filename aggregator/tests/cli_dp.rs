//! Runs the `cairn` binary's `dp` calculator: JSON values against the reference rows of
//! shared/testvectors/accountant_refs.csv (section C, copied with provenance into
//! dp/testvectors/cks20_zcdp.json), and error exits for bad input.
#![allow(missing_docs, clippy::unwrap_used)]

use std::process::{Command, Output};

use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    section: String,
    sigma: f64,
    sensitivity: f64,
    compositions: u64,
    delta: f64,
    rho: f64,
    method: String,
    epsilon: f64,
}

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = cairn(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn reference_rows() -> Vec<Vector> {
    let file: File =
        serde_json::from_str(include_str!("../../dp/testvectors/cks20_zcdp.json")).unwrap();
    file.vectors
        .into_iter()
        .filter(|v| v.section.starts_with("C_"))
        .collect()
}

#[test]
fn epsilon_json_matches_reference_rows() {
    let rows = reference_rows();
    let simple = |v: &Vector| {
        rows.iter()
            .find(|w| {
                w.method == "zcdp_bun_steinke16"
                    && w.sigma == v.sigma
                    && w.sensitivity == v.sensitivity
                    && w.compositions == v.compositions
            })
            .unwrap()
            .epsilon
    };
    let opendp: Vec<&Vector> = rows
        .iter()
        .filter(|v| v.method == "zcdp_to_approxdp")
        .collect();
    assert_eq!(opendp.len(), 18);
    for v in opendp {
        let (s, d, t, x) = (
            v.sigma.to_string(),
            v.sensitivity.to_string(),
            v.compositions.to_string(),
            v.delta.to_string(),
        );
        let out = json(&[
            "dp",
            "epsilon",
            "--sigma",
            &s,
            "--sensitivity",
            &d,
            "--rounds",
            &t,
            "--delta",
            &x,
            "--format",
            "json",
        ]);
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in ["rho", "epsilon", "sigma", "rounds", "delta", "sensitivity"] {
            assert!(keys.contains(&key), "missing {key}");
        }
        assert!(rel(out["rho"].as_f64().unwrap(), v.rho) < 1e-12);
        assert!(rel(out["epsilon"].as_f64().unwrap(), v.epsilon) <= 1e-9);
        assert!(rel(out["epsilon_simple"].as_f64().unwrap(), simple(v)) <= 1e-9);
        assert_eq!(out["rounds"].as_u64().unwrap(), v.compositions);
        assert_eq!(out["sigma"].as_f64().unwrap(), v.sigma);
        assert_eq!(out["delta"].as_f64().unwrap(), v.delta);
        assert_eq!(out["sensitivity"].as_f64().unwrap(), v.sensitivity);
    }
}

#[test]
fn sigma_json_inverts_reference_rows() {
    for v in reference_rows()
        .iter()
        .filter(|v| v.method == "zcdp_to_approxdp")
    {
        let (e, d, t, x) = (
            v.epsilon.to_string(),
            v.sensitivity.to_string(),
            v.compositions.to_string(),
            v.delta.to_string(),
        );
        let out = json(&[
            "dp",
            "sigma",
            "--epsilon",
            &e,
            "--delta",
            &x,
            "--rounds",
            &t,
            "--sensitivity",
            &d,
            "--format",
            "json",
        ]);
        let sigma = out["sigma"].as_f64().unwrap();
        // The reference σ spends exactly ε, so ours is σ up to the conservative margin.
        assert!(
            sigma >= v.sigma * (1.0 - 1e-12) && rel(sigma, v.sigma) < 1e-8,
            "{sigma}"
        );
        assert!(out["epsilon"].as_f64().unwrap() <= v.epsilon);
    }
}

#[test]
fn table_output_and_help() {
    let out = cairn(&[
        "dp",
        "epsilon",
        "--sigma",
        "2",
        "--sensitivity",
        "1",
        "--delta",
        "1e-5",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("rho (total)") && text.contains("0.125"));
    assert!(text.contains("2.16571554517548"));
    for sub in ["epsilon", "sigma"] {
        let help = cairn(&["dp", sub, "--help"]);
        assert!(help.status.success());
        let help = String::from_utf8(help.stdout).unwrap();
        for flag in ["--delta", "--rounds", "--sensitivity", "--format"] {
            assert!(help.contains(flag), "{sub} --help lacks {flag}");
        }
    }
}

#[test]
fn bad_input_exits_with_an_error() {
    let cases: &[&[&str]] = &[
        &[
            "dp",
            "epsilon",
            "--sigma",
            "0",
            "--sensitivity",
            "1",
            "--delta",
            "1e-5",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma=-1",
            "--sensitivity",
            "1",
            "--delta",
            "1e-5",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma",
            "NaN",
            "--sensitivity",
            "1",
            "--delta",
            "1e-5",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma",
            "1",
            "--sensitivity",
            "0",
            "--delta",
            "1e-5",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma",
            "1",
            "--sensitivity",
            "1",
            "--delta",
            "1.5",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma",
            "1",
            "--sensitivity",
            "1",
            "--delta",
            "0",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma",
            "1",
            "--sensitivity",
            "1",
            "--delta",
            "1e-5",
            "--rounds",
            "0",
        ],
        &[
            "dp",
            "sigma",
            "--epsilon",
            "0",
            "--delta",
            "1e-5",
            "--sensitivity",
            "1",
        ],
        &[
            "dp",
            "sigma",
            "--epsilon=-2",
            "--delta",
            "1e-5",
            "--sensitivity",
            "1",
        ],
        &[
            "dp",
            "sigma",
            "--epsilon",
            "1",
            "--delta",
            "1",
            "--sensitivity",
            "1",
        ],
        &[
            "dp",
            "sigma",
            "--epsilon",
            "1",
            "--delta",
            "1e-5",
            "--sensitivity",
            "inf",
        ],
        &[
            "dp",
            "epsilon",
            "--sigma",
            "abc",
            "--sensitivity",
            "1",
            "--delta",
            "1e-5",
        ],
        &["dp", "epsilon", "--sensitivity", "1", "--delta", "1e-5"],
    ];
    for args in cases {
        let out = cairn(args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        assert!(!out.stderr.is_empty());
    }
}

/// `--sampling-rate`: the RDP accountant of the subsampled discrete Gaussian, against
/// the canonical DP-SGD row of section B2 (Opacus 1.6.0: ε = 2.59656 at best order 8.1;
/// the integer grid gives order 8, within 0.1%).
#[test]
fn sampled_epsilon_and_sigma_json() {
    let q = (256.0f64 / 60_000.0).to_string();
    let out = json(&[
        "dp",
        "epsilon",
        "--sigma",
        "1.1",
        "--sensitivity",
        "1",
        "--rounds",
        "14062",
        "--delta",
        "1e-5",
        "--sampling-rate",
        &q,
        "--format",
        "json",
    ]);
    let eps = out["epsilon"].as_f64().unwrap();
    assert!((2.596_555..=2.596_555 * 1.001).contains(&eps), "{eps}");
    assert!(out["rho"].is_null() && out["epsilon_simple"].is_null());
    assert_eq!(out["accountant"], "rdp");
    assert_eq!(out["order"], 8);
    let back = json(&[
        "dp",
        "sigma",
        "--epsilon",
        &eps.to_string(),
        "--delta",
        "1e-5",
        "--rounds",
        "14062",
        "--sensitivity",
        "1",
        "--sampling-rate",
        &q,
        "--format",
        "json",
    ]);
    let sigma = back["sigma"].as_f64().unwrap();
    assert!(sigma <= 1.1 * (1.0 + 1e-5) && sigma > 1.09, "{sigma}");
    for bad in ["0", "1.5", "-1", "nan"] {
        let flag = format!("--sampling-rate={bad}");
        let out = cairn(&[
            "dp",
            "epsilon",
            "--sigma",
            "1",
            "--sensitivity",
            "1",
            "--delta",
            "1e-5",
            &flag,
        ]);
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("sampling"),
            "{bad}"
        );
    }
}

/// `--noise client`: the subsampled distributed discrete Gaussian. With σ per client far
/// above 1/2, KLS21's correction vanishes and ε is the central one (never below it); at
/// σ per client near 1/2 it is visibly larger. The client-noise flags go together.
#[test]
fn client_noise_is_accounted_with_the_distributed_curve() {
    let run = |sigma: &str, extra: &[&str]| {
        let mut args = vec![
            "dp",
            "epsilon",
            "--sigma",
            sigma,
            "--sensitivity",
            "1",
            "--rounds",
            "100",
            "--delta",
            "1e-6",
            "--sampling-rate",
            "0.05",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        json(&args)
    };
    let client = [
        "--noise",
        "client",
        "--min-honest-clients",
        "5",
        "--dim",
        "1000",
    ];
    for (sigma, close) in [("30", true), ("1.2", false)] {
        let central = run(sigma, &[])["epsilon"].as_f64().unwrap();
        let out = run(sigma, &client);
        let spread = out["epsilon"].as_f64().unwrap();
        assert_eq!(out["noise"], "client");
        assert_eq!(out["min_honest_clients"], 5);
        assert_eq!(out["accountant"], "rdp");
        assert!(spread >= central, "σ {sigma}: {spread} < {central}");
        assert_eq!(
            spread <= central * (1.0 + 1e-9),
            close,
            "σ {sigma}: {spread} vs {central}"
        );
    }
    // σ back from that ε: the same σ, to the calibration's precision.
    let eps = run("30", &client)["epsilon"].as_f64().unwrap().to_string();
    let back = json(&[
        "dp",
        "sigma",
        "--epsilon",
        &eps,
        "--delta",
        "1e-6",
        "--rounds",
        "100",
        "--sensitivity",
        "1",
        "--sampling-rate",
        "0.05",
        "--noise",
        "client",
        "--min-honest-clients",
        "5",
        "--dim",
        "1000",
        "--format",
        "json",
    ]);
    let sigma = back["sigma"].as_f64().unwrap();
    assert!(sigma <= 30.0 * (1.0 + 1e-5) && sigma > 29.9, "{sigma}");
    let base = [
        "dp",
        "epsilon",
        "--sigma",
        "1",
        "--sensitivity",
        "1",
        "--delta",
        "1e-6",
    ];
    for (extra, says) in [
        (
            &["--noise", "client", "--dim", "10"][..],
            "--min-honest-clients",
        ),
        (
            &["--noise", "client", "--min-honest-clients", "2"][..],
            "--dim",
        ),
        (&["--dim", "10"][..], "--noise client"),
        (
            &[
                "--noise",
                "client",
                "--min-honest-clients",
                "9",
                "--dim",
                "10",
            ][..],
            "1/2",
        ),
    ] {
        let out = cairn(&[&base[..], extra].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{extra:?}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}

/// `cairn init --unit record` writes a record-level task whose budget report states
/// the unit of privacy and the RDP accountant.
#[test]
fn init_writes_a_record_level_task_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = dir.path().join("d");
    let d = deploy.to_str().unwrap();
    let out = cairn(&[
        "init",
        d,
        "--dim",
        "20",
        "--clients",
        "3",
        "--min-clients",
        "2",
        "--unit",
        "record",
        "--sampling-rate",
        "0.1",
        "--max-records",
        "50",
        "--epsilon",
        "2",
        "--rounds",
        "20",
        "--port",
        "47400",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let task = std::fs::read_to_string(deploy.join("task.toml")).unwrap();
    assert!(task.contains("unit = \"record\"") && task.contains("sampling_rate = 0.1"));
    let report = json(&[
        "budget",
        "report",
        "--task",
        deploy.join("task.toml").to_str().unwrap(),
        "--node",
        deploy.join("node-1.toml").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(report["unit"], "record");
    assert!(
        report["unit_of_privacy"]
            .as_str()
            .unwrap()
            .contains("each record")
    );
    assert!(report["accountant"].as_str().unwrap().contains("Rényi"));
    assert_eq!(report["sampling_rate"], 0.1);
    // The table and the HTML say the same: the unit, the cap's cost, the accountant.
    for format in ["table", "html"] {
        let out = cairn(&[
            "budget",
            "report",
            "--task",
            deploy.join("task.toml").to_str().unwrap(),
            "--node",
            deploy.join("node-1.toml").to_str().unwrap(),
            "--format",
            format,
        ]);
        assert!(out.status.success(), "{format}");
        let text = String::from_utf8_lossy(&out.stdout);
        for says in [
            "each record of each organisation",
            "cairn dp cap",
            "Rényi DP",
        ] {
            assert!(text.contains(says), "{format} lacks {says:?}");
        }
    }
    // Out-of-range record-level settings are refused with a clear message.
    for (flag, value, says) in [
        ("--sampling-rate", "0", "sampling-rate must be in (0, 1]"),
        ("--sampling-rate", "1.5", "sampling-rate must be in (0, 1]"),
        ("--max-records", "0", "max-records"),
    ] {
        let mut args = vec![
            "init",
            "",
            "--dim",
            "20",
            "--clients",
            "3",
            "--min-clients",
            "2",
            "--unit",
            "record",
            "--sampling-rate",
            "0.1",
            "--max-records",
            "50",
            "--port",
            "47420",
        ];
        let target = dir.path().join(format!("bad{}{value}", flag.len()));
        let target = target.to_str().unwrap().to_owned();
        args[1] = &target;
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = value;
        let out = cairn(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{flag} {value}: {err}"
        );
    }
    // Inconsistent flags are refused with a clear message.
    let out = cairn(&[
        "init",
        dir.path().join("e").to_str().unwrap(),
        "--unit",
        "record",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sampling-rate"));
    let out = cairn(&[
        "init",
        dir.path().join("f").to_str().unwrap(),
        "--sampling-rate",
        "0.1",
    ]);
    assert!(!out.status.success());
}

/// `cairn dp cap`: the δ a cap of M records adds, for the KDD'99 example's largest
/// organisation (1,523 training records, q = 0.04, 600 steps at ε = 1), from the exact
/// tail Pr[Binomial(1524, 0.04) > M]; a cap of 100 would add far more than δ = 1e-6,
/// one of 127 almost nothing. Bad input is a clear error.
#[test]
fn the_cap_of_a_record_level_report_costs_delta() {
    let cap = |m: &str| {
        json(&[
            "dp",
            "cap",
            "--records",
            "1523",
            "--sampling-rate",
            "0.04",
            "--max-records",
            m,
            "--rounds",
            "600",
            "--epsilon",
            "1",
            "--format",
            "json",
        ])
    };
    let loose = cap("100");
    let tight = cap("127");
    let (d100, d127) = (
        loose["delta_cap"].as_f64().unwrap(),
        tight["delta_cap"].as_f64().unwrap(),
    );
    assert!(d100 > 1e-3, "{d100}");
    assert!(d127 > 0.0 && d127 < 1e-10, "{d127}");
    let tail = tight["tail_per_round"].as_f64().unwrap();
    assert!(rel(d127, (1.0 + 1f64.exp()) * 600.0 * tail) < 1e-12);
    let table = cairn(&[
        "dp",
        "cap",
        "--records",
        "1523",
        "--sampling-rate",
        "0.04",
        "--max-records",
        "127",
        "--rounds",
        "600",
        "--epsilon",
        "1",
    ]);
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("delta_cap"));
    for bad in [
        ["--sampling-rate", "1.5"],
        ["--max-records", "0"],
        ["--epsilon", "nan"],
    ] {
        let mut args = vec![
            "dp",
            "cap",
            "--records",
            "10",
            "--sampling-rate",
            "0.1",
            "--max-records",
            "3",
            "--epsilon",
            "1",
        ];
        let at = args.iter().position(|a| *a == bad[0]).unwrap();
        args[at + 1] = bad[1];
        let out = cairn(&args);
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("invalid cap parameters") && !err.contains("panicked"),
            "{err}"
        );
    }
}
