//! `cairn budget report` on a node ledger with several releases: the three formats, the
//! agreement of its ε with `cairn dp epsilon`, and the detection of a tampered ledger.
//!
//! The ledger is written as the node writes it: `Ledger::prepare_release`, then
//! `TaskStore::commit_release` into the node's own database file, then `commit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use cairn_aggregator::cli::{Cli, run};
use cairn_aggregator::deploy::{Deployment, InitParams, init};
use cairn_aggregator::node_config::NodeConfig;
use cairn_aggregator::store::SqliteStore;
use cairn_protocol::clock::Time;
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::ledger::Ledger;
use cairn_protocol::privacy::Privacy;
use cairn_protocol::store::TaskStore;
use clap::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const RELEASES: u32 = 4;
/// 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;

fn deployment(dir: &Path, noise: NoisePlacement) -> (Deployment, TaskConfig, PathBuf) {
    let params = InitParams {
        aggregators: 2,
        dimension: 16,
        noise,
        epsilon: 3.0,
        delta: 1e-6,
        rounds: 6,
        min_clients: 2,
        base_port: 47_000,
        name: "report <test>".into(),
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([21; 32]);
    let d = init(&dir.join("deploy"), &params, &mut rng).unwrap();
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
    let config = NodeConfig::load(&d.nodes[0]).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let db = config.data_dir.join("cairn.sqlite");
    (d, task, db)
}

/// Writes `RELEASES` releases into the node database, one hour apart; returns the open
/// store (a live node keeps it open).
fn write_releases(task: &TaskConfig, db: &Path) -> SqliteStore {
    let privacy = Privacy::for_task(task).unwrap();
    let store = SqliteStore::open(db).unwrap();
    let s = store.task(task.id(), task.dimension());
    let mut ledger = Ledger::new(task.id(), privacy.rho_budget()).unwrap();
    for round in 0..RELEASES {
        s.open_round(round, Time(T0), task.dimension()).unwrap();
        let e = ledger
            .prepare_release(
                round,
                privacy.rho_per_release(),
                10 + round,
                Time(T0 + 3600 * u64::from(round)),
            )
            .unwrap();
        s.commit_release(&e, b"sealed shares").unwrap();
        ledger.commit(e).unwrap();
    }
    store
}

fn cairn(args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["cairn"];
    argv.extend_from_slice(args);
    run(Cli::try_parse_from(argv).unwrap())
}

fn report(d: &Deployment, format: &str) -> anyhow::Result<String> {
    cairn(&[
        "budget",
        "report",
        "--task",
        d.task.to_str().unwrap(),
        "--format",
        format,
    ])
}

#[test]
fn the_report_in_three_formats_matches_the_accountant() {
    let dir = tempfile::tempdir().unwrap();
    let (d, task, db) = deployment(dir.path(), NoisePlacement::Aggregator);
    // The writer stays open while the report reads, as with a running node.
    let _live = write_releases(&task, &db);
    let sigma = task.privacy().sigma.unwrap();

    // JSON: header and one row per release, ε as `cairn dp epsilon` computes it for
    // the same σ, sensitivity (the norm bound B) and number of releases.
    let json: serde_json::Value = serde_json::from_str(&report(&d, "json").unwrap()).unwrap();
    assert_eq!(
        json["trust_assumption"],
        "DP holds if at least one of the 2 aggregators is honest"
    );
    assert_eq!(json["noise"], "aggregator");
    assert_eq!(json["aggregators"], 2);
    assert_eq!(json["epsilon_budget"], 3.0);
    assert_eq!(json["sensitivity"], task.norm_bound() as f64);
    let rows = json["releases"].as_array().unwrap();
    assert_eq!(rows.len(), RELEASES as usize);
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row["round"], k as u64);
        assert_eq!(row["seq"], k as u64);
        assert_eq!(row["report_count"], 10 + k as u64);
        assert_eq!(row["time_unix"], T0 + 3600 * k as u64);
        assert_eq!(row["sigma"], sigma);
        let dp: serde_json::Value = serde_json::from_str(
            &cairn(&[
                "dp",
                "epsilon",
                "--sigma",
                &sigma.to_string(),
                "--sensitivity",
                &task.norm_bound().to_string(),
                "--rounds",
                &(k + 1).to_string(),
                "--delta",
                "1e-6",
                "--format",
                "json",
            ])
            .unwrap(),
        )
        .unwrap();
        let close = |a: &serde_json::Value, b: &serde_json::Value| {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            // The ledger sums ρ exactly and rounds the total up; `dp epsilon`
            // multiplies T·ρ: the two may differ in the last bit.
            (a - b).abs() <= 4.0 * f64::EPSILON * b.abs()
        };
        assert!(close(&row["rho_total"], &dp["rho"]), "{row} vs {dp}");
        assert!(close(&row["epsilon"], &dp["epsilon"]), "{row} vs {dp}");
        assert!(
            close(&row["epsilon_simple"], &dp["epsilon_simple"]),
            "{row} vs {dp}"
        );
        let remaining = row["epsilon_remaining"].as_f64().unwrap();
        let eps = row["epsilon"].as_f64().unwrap();
        assert!((remaining - (3.0 - eps)).abs() < 1e-12);
    }
    assert_eq!(rows[1]["time"], "2023-11-14T23:13:20Z");
    // Every release of an equal-share budget fits: ε grows towards the budget.
    let last = rows.last().unwrap()["epsilon"].as_f64().unwrap();
    assert!(last > rows[0]["epsilon"].as_f64().unwrap() && last <= 3.0);

    // Table: the trust assumption and one line per round with its time.
    let table = report(&d, "table").unwrap();
    assert!(
        table.contains("DP holds if at least one of the 2 aggregators is honest"),
        "{table}"
    );
    assert!(table.contains("verified"), "{table}");
    for k in 0..RELEASES {
        let time = rows[k as usize]["time"].as_str().unwrap();
        assert!(table.lines().any(|l| l.contains(time)), "{table}");
    }

    // HTML: one self-contained page with the table and the plot.
    let html = report(&d, "html").unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<svg") && html.contains("</svg>"));
    assert!(html.contains("<polyline"));
    assert!(html.contains("budget ε = 3"));
    assert!(
        html.contains("report &lt;test&gt;"),
        "the task name is escaped"
    );
    assert_eq!(html.matches("<tr><td>").count(), RELEASES as usize);
    for needle in ["<script", "<link", "@import", "url(", "src=", "https://"] {
        assert!(
            !html.contains(needle),
            "external or active content: {needle}"
        );
    }
    // The one URL is the SVG namespace, which loads nothing.
    assert_eq!(html.matches("http://").count(), 1);

    // --output writes the file and says so.
    let out = dir.path().join("report.html");
    let said = cairn(&[
        "budget",
        "report",
        "--task",
        d.task.to_str().unwrap(),
        "--node",
        d.nodes[0].to_str().unwrap(),
        "--format",
        "html",
        "--output",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert!(said.contains("4 releases"), "{said}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), html);
}

#[test]
fn a_tampered_ledger_names_the_first_bad_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (d, task, db) = deployment(dir.path(), NoisePlacement::Aggregator);
    drop(write_releases(&task, &db));
    assert!(report(&d, "table").is_ok());

    // Lower the ρ recorded for the release at seq 2, as someone hiding spent budget would.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let changed = conn
        .execute(
            "UPDATE ledger SET rho_bits = ?1 WHERE seq = 2",
            [(0.001f64).to_bits() as i64],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    for format in ["table", "json", "html"] {
        let err = report(&d, format).unwrap_err().to_string();
        assert!(err.contains("ledger entry 2 does not verify"), "{err}");
    }
}

#[test]
fn without_noise_the_report_says_there_is_no_dp() {
    let dir = tempfile::tempdir().unwrap();
    let (d, task, db) = deployment(dir.path(), NoisePlacement::None);
    drop(write_releases(&task, &db));
    let json: serde_json::Value = serde_json::from_str(&report(&d, "json").unwrap()).unwrap();
    assert_eq!(json["trust_assumption"], "no DP: noise = none");
    assert!(json["epsilon_budget"].is_null());
    let rows = json["releases"].as_array().unwrap();
    assert_eq!(rows.len(), RELEASES as usize);
    assert!(rows.iter().all(|r| r["epsilon"] == 0.0));
    assert!(report(&d, "html").unwrap().contains("no ε to plot"));
}

#[test]
fn a_node_without_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _task, db) = deployment(dir.path(), NoisePlacement::Aggregator);
    // `cairn init` creates each node's database (it registers the clients there): a
    // fresh node reports no releases; a missing database is an error that says so.
    let fresh: serde_json::Value = serde_json::from_str(&report(&d, "json").unwrap()).unwrap();
    assert_eq!(fresh["releases"].as_array().unwrap().len(), 0);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let err = report(&d, "table").unwrap_err().to_string();
    assert!(err.contains("no database"), "{err}");
}

#[test]
fn the_header_states_the_trust_assumption_of_each_placement() {
    for (noise, expected) in [
        (
            "client",
            "DP holds if at least 5000 clients (min_honest_clients) are honest",
        ),
        (
            "both",
            "DP holds if at least one of the 2 aggregators is honest, or if at least 5000 \
             clients (min_honest_clients) are honest",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (d, _, db) = deployment(dir.path(), NoisePlacement::Aggregator);
        // The same task with client-side noise for 5000 honest clients (so that each
        // client's share of the noise fits the 16-bit encoding).
        let text = std::fs::read_to_string(&d.task).unwrap();
        let text = text
            .replace("noise = \"aggregator\"", &format!("noise = \"{noise}\""))
            .replace("\n[collector]", "min_honest_clients = 5000\n\n[collector]")
            .replace("min_clients = 2\n", "min_clients = 5000\n")
            .replace("epsilon = 3.0\n", "epsilon = 30.0\n");
        std::fs::write(&d.task, text).unwrap();
        let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
        drop(write_releases(&task, &db));
        let json: serde_json::Value = serde_json::from_str(&report(&d, "json").unwrap()).unwrap();
        assert_eq!(json["trust_assumption"], expected);
        assert_eq!(json["noise"], noise);
        assert_eq!(
            json["releases"].as_array().unwrap().len(),
            RELEASES as usize
        );
    }
}
