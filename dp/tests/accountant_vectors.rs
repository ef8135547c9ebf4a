//! Reproduces every zCDP row of `shared/testvectors/accountant_refs.csv` (copied with
//! provenance into `dp/testvectors/cks20_zcdp.json`): ρ from (σ, Δ, T), the tight ε (OpenDP
//! 0.16's make_zCDP_to_approxDP and an independent numpy/scipy continuous-α minimisation) and
//! the Bun–Steinke ε, each to ≤ 1e−9 relative error; and the inverse ρ(ε, δ).
#![allow(missing_docs, clippy::unwrap_used)]

use cairn_dp::accountant::{
    compose_rounds, epsilon_simple, epsilon_tight, rho_discrete_gaussian, rho_for_epsilon,
};
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

fn vectors() -> Vec<Vector> {
    let file: File = serde_json::from_str(include_str!("../testvectors/cks20_zcdp.json")).unwrap();
    file.vectors
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn every_zcdp_row_is_reproduced() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 66);
    assert_eq!(
        vectors
            .iter()
            .filter(|v| v.section.starts_with("C_"))
            .count(),
        54
    );
    let mut worst: f64 = 0.0;
    for v in &vectors {
        let per_release = rho_discrete_gaussian(v.sensitivity, v.sigma).unwrap();
        let rho = compose_rounds(per_release, v.compositions).unwrap();
        assert!(rel(rho, v.rho) <= 1e-12, "ρ: {} vs {}", rho, v.rho);
        let eps = match v.method.as_str() {
            "zcdp_to_approxdp" | "zcdp_cks20_continuous_alpha" => {
                epsilon_tight(rho, v.delta).unwrap()
            }
            "zcdp_bun_steinke16" => epsilon_simple(rho, v.delta).unwrap(),
            other => panic!("unexpected method {other}"),
        };
        let err = rel(eps, v.epsilon);
        worst = worst.max(err);
        assert!(
            err <= 1e-9,
            "{} σ={} Δ={} T={}: ε = {eps} vs {} (rel {err:e})",
            v.method,
            v.sigma,
            v.sensitivity,
            v.compositions,
            v.epsilon
        );
    }
    eprintln!(
        "worst relative error over {} rows: {worst:e}",
        vectors.len()
    );
}

#[test]
fn inverse_recovers_rho_from_reference_epsilons() {
    for v in vectors().iter().filter(|v| v.method == "zcdp_to_approxdp") {
        let rho = rho_for_epsilon(v.epsilon, v.delta).unwrap();
        assert!(rho <= v.rho * (1.0 + 1e-12), "ρ = {rho} > {}", v.rho);
        assert!(rel(rho, v.rho) <= 1e-8, "ρ = {rho} vs {}", v.rho);
        assert!(epsilon_tight(rho, v.delta).unwrap() <= v.epsilon);
    }
}
