//! `cairn dp`: a zCDP budget calculator over `cairn-dp`'s accountant.
//!
//! - `cairn dp epsilon --sigma S --sensitivity D --rounds T --delta X`: the total ρ of T
//!   discrete-Gaussian releases (ρ = T·Δ²/(2σ²), Canonne–Kamath–Steinke 2020) and ε at δ,
//!   tight (CKS20 conversion, as OpenDP's `make_zCDP_to_approxDP`) and simple
//!   (ρ + 2√(ρ ln 1/δ), Bun–Steinke 2016).
//! - `cairn dp sigma --epsilon E --delta X --rounds T --sensitivity D`: the smallest σ whose
//!   T releases stay within (ε, δ) under the tight conversion.
//!
//! `--format json` prints one object with the keys `rho`, `epsilon`, `epsilon_simple`,
//! `sigma`, `rounds`, `delta`, `sensitivity`.

use anyhow::Context;
use cairn_dp::accountant::{compose_rounds, epsilon_simple, epsilon_tight, rho_discrete_gaussian};
use cairn_dp::calibrate::sigma_for_epsilon;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

/// `cairn dp` subcommands.
#[derive(Debug, Subcommand)]
pub enum DpCommand {
    /// Privacy cost (ρ and ε) of T discrete-Gaussian releases with noise σ.
    Epsilon(EpsilonArgs),
    /// The noise σ to use so that T releases stay within a target (ε, δ).
    Sigma(SigmaArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A human-readable table.
    #[default]
    Table,
    /// One JSON object.
    Json,
}

/// Arguments of `cairn dp epsilon`.
#[derive(Debug, Args)]
pub struct EpsilonArgs {
    /// Scale σ of the discrete Gaussian noise N_Z(0, σ²) added to each coordinate, in the
    /// same (quantised) units as the sensitivity (its standard deviation is at most σ).
    /// Must be positive.
    #[arg(long)]
    pub sigma: f64,
    /// L2 sensitivity Δ of one release: the largest L2 distance one participant can move
    /// the released sum (the clipping norm bound, in quantised units). Must be positive.
    #[arg(long)]
    pub sensitivity: f64,
    /// Number of releases (rounds) T composed; ρ adds up over them.
    #[arg(long, default_value_t = 1)]
    pub rounds: u64,
    /// Target δ of the (ε, δ) guarantee, strictly between 0 and 1 (e.g. 1e-5).
    #[arg(long)]
    pub delta: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `cairn dp sigma`.
#[derive(Debug, Args)]
pub struct SigmaArgs {
    /// Total privacy budget ε over all rounds (at the given δ). Must be positive.
    #[arg(long)]
    pub epsilon: f64,
    /// Target δ of the (ε, δ) guarantee, strictly between 0 and 1 (e.g. 1e-5).
    #[arg(long)]
    pub delta: f64,
    /// Number of releases (rounds) T the budget must cover.
    #[arg(long, default_value_t = 1)]
    pub rounds: u64,
    /// L2 sensitivity Δ of one release (the clipping norm bound, in quantised units).
    #[arg(long)]
    pub sensitivity: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The result of either calculation (also the JSON object printed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpReport {
    /// Total ρ over all rounds.
    pub rho: f64,
    /// ε at δ, tight conversion.
    pub epsilon: f64,
    /// ε at δ, simple Bun–Steinke bound.
    pub epsilon_simple: f64,
    /// Noise σ per coordinate.
    pub sigma: f64,
    /// Number of releases.
    pub rounds: u64,
    /// δ.
    pub delta: f64,
    /// L2 sensitivity Δ.
    pub sensitivity: f64,
}

/// Runs a `cairn dp` subcommand and renders its output.
///
/// # Errors
/// Invalid parameters (σ ≤ 0, δ ∉ (0, 1), ε ≤ 0, T = 0, NaN …).
pub fn run(cmd: DpCommand) -> anyhow::Result<String> {
    let (report, format) = match cmd {
        DpCommand::Epsilon(a) => (
            epsilon_report(a.sigma, a.sensitivity, a.rounds, a.delta)?,
            a.format,
        ),
        DpCommand::Sigma(a) => (
            sigma_report(a.epsilon, a.delta, a.rounds, a.sensitivity)?,
            a.format,
        ),
    };
    render(&report, format)
}

/// ρ and ε of T releases with noise σ and sensitivity Δ at δ.
///
/// # Errors
/// Invalid parameters.
pub fn epsilon_report(
    sigma: f64,
    sensitivity: f64,
    rounds: u64,
    delta: f64,
) -> anyhow::Result<DpReport> {
    if !(sensitivity.is_finite() && sensitivity > 0.0) {
        anyhow::bail!("--sensitivity must be positive and finite (got {sensitivity})");
    }
    let per_round = rho_discrete_gaussian(sensitivity, sigma).context("invalid --sigma")?;
    let rho = compose_rounds(per_round, rounds).context("invalid --rounds")?;
    let epsilon = epsilon_tight(rho, delta).context("invalid --delta")?;
    let simple = epsilon_simple(rho, delta).context("invalid --delta")?;
    Ok(DpReport {
        rho,
        epsilon,
        epsilon_simple: simple,
        sigma,
        rounds,
        delta,
        sensitivity,
    })
}

/// The σ for a total (ε, δ) over T releases of sensitivity Δ, with the resulting ρ and ε.
///
/// # Errors
/// Invalid parameters.
pub fn sigma_report(
    epsilon: f64,
    delta: f64,
    rounds: u64,
    sensitivity: f64,
) -> anyhow::Result<DpReport> {
    let sigma =
        sigma_for_epsilon(epsilon, delta, sensitivity, rounds).context("cannot calibrate sigma")?;
    epsilon_report(sigma, sensitivity, rounds, delta)
}

/// Renders a report as a table or one JSON object.
///
/// # Errors
/// JSON serialisation failure (not expected for finite numbers).
pub fn render(report: &DpReport, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Json => Ok(serde_json::to_string(report).context("serialising the report")?),
        Format::Table => Ok(format!(
            "discrete Gaussian noise, zCDP accounting\n\
             {:<18}{}\n{:<18}{}\n{:<18}{}\n{:<18}{}\n{:<18}{}\n\
             {:<18}{}  (tight, CKS20 conversion)\n{:<18}{}  (rho + 2 sqrt(rho ln 1/delta))\n",
            "sigma",
            report.sigma,
            "sensitivity",
            report.sensitivity,
            "rounds",
            report.rounds,
            "delta",
            report.delta,
            "rho (total)",
            report.rho,
            "epsilon",
            report.epsilon,
            "epsilon (simple)",
            report.epsilon_simple,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row of shared/testvectors/accountant_refs.csv section C: σ = 2, Δ = 1, T = 10,
    /// δ = 1e−5 ⇒ ρ = 1.25, ε (OpenDP 0.16) = 8.07835954814445, simple 8.83713564692573.
    #[test]
    fn epsilon_report_matches_reference_row() {
        let r = epsilon_report(2.0, 1.0, 10, 1e-5).unwrap();
        assert_eq!(r.rho, 1.25);
        assert!((r.epsilon - 8.078_359_548_144_45).abs() < 1e-9 * 8.08);
        assert!((r.epsilon_simple - 8.837_135_646_925_73).abs() < 1e-9 * 8.84);
    }

    #[test]
    fn sigma_report_inverts_epsilon_report() {
        let r = sigma_report(8.078_359_548_144_45, 1e-5, 10, 1.0).unwrap();
        assert!(
            r.sigma >= 2.0 && r.sigma < 2.0 * (1.0 + 1e-8),
            "{}",
            r.sigma
        );
        assert!(r.epsilon <= 8.078_359_548_144_45);
    }

    #[test]
    fn bad_input_errors() {
        assert!(epsilon_report(0.0, 1.0, 1, 1e-5).is_err());
        assert!(epsilon_report(f64::NAN, 1.0, 1, 1e-5).is_err());
        assert!(epsilon_report(1.0, 0.0, 1, 1e-5).is_err());
        assert!(epsilon_report(1.0, 1.0, 0, 1e-5).is_err());
        assert!(epsilon_report(1.0, 1.0, 1, 1.0).is_err());
        assert!(sigma_report(0.0, 1e-5, 1, 1.0).is_err());
        assert!(sigma_report(1.0, 0.0, 1, 1.0).is_err());
    }
}
