//! `cairn dp`: a zCDP budget calculator over `cairn-dp`'s accountant.
//!
//! - `cairn dp epsilon --sigma S --sensitivity D --rounds T --delta X`: the total ρ of T
//!   discrete-Gaussian releases (ρ = T·Δ²/(2σ²), Canonne–Kamath–Steinke 2020) and ε at δ,
//!   tight (CKS20 conversion, as OpenDP's `make_zCDP_to_approxDP`) and simple
//!   (ρ + 2√(ρ ln 1/δ), Bun–Steinke 2016).
//! - `cairn dp sigma --epsilon E --delta X --rounds T --sensitivity D`: the smallest σ whose
//!   T releases stay within (ε, δ) under the tight conversion.
//!
//! With `--sampling-rate Q < 1` (record-level DP-SGD: every record is Poisson-sampled
//! with probability Q each round) both commands use the RDP accountant of the
//! subsampled discrete Gaussian instead ([`cairn_dp::rdp`]: integer orders 2..=256,
//! the conversion of Balle et al. 2020, Theorem 21); there is then no ρ.
//!
//! `--noise client --min-honest-clients N --dim D` accounts noise added by the clients
//! instead (each adds σ/√N; the sum of at least N honest clients' discrete Gaussians,
//! Kairouz–Liu–Steinke 2021 Theorem 1, in the same subsampling bound: always the RDP
//! accountant, [`cairn_dp::rdp::RdpCurve::subsampled_distributed`]).
//!
//! `cairn dp cap --records N --sampling-rate Q --max-records M --rounds T --epsilon E`:
//! the δ a report's cap of M sampled records adds ([`cairn_dp::cap`]).
//!
//! `--format json` prints one object with the keys `rho` (null when sampled), `epsilon`,
//! `epsilon_simple` (null when sampled), `sigma` (the total σ; each client adds
//! σ/√N with client noise), `rounds`, `delta`, `sensitivity`, `sampling_rate`,
//! `accountant` (`zcdp` or `rdp`), `order` (the RDP order attaining ε, null for zCDP),
//! `noise` (`aggregator` or `client`), `min_honest_clients` and `dim` (null for
//! aggregator noise).

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
    /// Record level: the δ that capping a report at M sampled records adds (an
    /// organisation whose Poisson sample is larger skips the round, which depends on
    /// its data): (1 + e^ε)·T·Pr[Binomial(N + 1, Q) > M], with N the most records one
    /// organisation holds. The guarantee is then (ε, δ + this). Example: `cairn dp cap
    /// --records 1523 --sampling-rate 0.04 --max-records 127 --rounds 600 --epsilon 1`.
    Cap(CapArgs),
}

/// Arguments of `cairn dp cap`.
#[derive(Debug, Args)]
pub struct CapArgs {
    /// N: the most records any one organisation holds.
    #[arg(long)]
    pub records: u64,
    /// Per-record Poisson sampling rate Q in (0, 1].
    #[arg(long)]
    pub sampling_rate: f64,
    /// M: the most sampled records one report sums (the task's
    /// `max_records_per_report`). At least 1.
    #[arg(long)]
    pub max_records: u64,
    /// Number of releases (rounds) T.
    #[arg(long, default_value_t = 1)]
    pub rounds: u64,
    /// The total ε the accountant grants the T releases.
    #[arg(long)]
    pub epsilon: f64,
    /// Output format: a table, or one JSON object with `delta_cap`,
    /// `tail_per_round` (Pr[Binomial(N + 1, Q) > M]) and the inputs.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The result of `cairn dp cap` (also the JSON object printed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapReport {
    /// The δ the cap adds.
    pub delta_cap: f64,
    /// Pr[Binomial(records + 1, sampling_rate) > max_records]: one round's chance that
    /// the organisation's sample exceeds the cap.
    pub tail_per_round: f64,
    /// N.
    pub records: u64,
    /// Q.
    pub sampling_rate: f64,
    /// M.
    pub max_records: u64,
    /// T.
    pub rounds: u64,
    /// ε.
    pub epsilon: f64,
}

/// `cairn dp cap` ([`cairn_dp::cap`]).
fn cap(a: &CapArgs) -> anyhow::Result<String> {
    let tail_per_round =
        cairn_dp::binomial_tail_above(a.records.saturating_add(1), a.sampling_rate, a.max_records)
            .context("invalid cap parameters")?;
    let delta_cap = cairn_dp::cap_delta(
        a.records,
        a.sampling_rate,
        a.max_records,
        a.rounds,
        a.epsilon,
    )
    .context("invalid cap parameters")?;
    let report = CapReport {
        delta_cap,
        tail_per_round,
        records: a.records,
        sampling_rate: a.sampling_rate,
        max_records: a.max_records,
        rounds: a.rounds,
        epsilon: a.epsilon,
    };
    match a.format {
        Format::Json => Ok(serde_json::to_string(&report).context("serialising the report")?),
        Format::Table => Ok(format!(
            "{:<18}{:e}\n{:<18}{:e}\n{:<18}{}\n{:<18}{}\n{:<18}{}\n{:<18}{}\n{:<18}{}\n\
             The guarantee is (ε, δ + delta_cap): an organisation whose sample exceeds \
             max_records skips the round (cairn_dp::cap).\n",
            "delta_cap",
            report.delta_cap,
            "tail_per_round",
            report.tail_per_round,
            "records",
            report.records,
            "sampling_rate",
            report.sampling_rate,
            "max_records",
            report.max_records,
            "rounds",
            report.rounds,
            "epsilon",
            report.epsilon,
        )),
    }
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
    /// Sampling, noise placement and output format.
    #[command(flatten)]
    pub setting: Setting,
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
    /// Sampling, noise placement and output format.
    #[command(flatten)]
    pub setting: Setting,
}

/// The settings `cairn dp epsilon` and `cairn dp sigma` share.
#[derive(Debug, Args)]
pub struct Setting {
    /// Per-record Poisson sampling rate Q in (0, 1] (record-level DP-SGD); below 1 the
    /// RDP accountant of the subsampled discrete Gaussian is used.
    #[arg(long, default_value_t = 1.0)]
    pub sampling_rate: f64,
    /// Who adds the noise: `aggregator` (one discrete Gaussian of scale σ) or `client`
    /// (at least `--min-honest-clients` N clients each add σ/√N: the distributed
    /// discrete Gaussian, accounted with the RDP accountant).
    #[arg(long, value_enum, default_value_t = NoiseArg::Aggregator)]
    pub noise: NoiseArg,
    /// With `--noise client`: N, the clients whose noise is assumed honest.
    #[arg(long, value_name = "N")]
    pub min_honest_clients: Option<u64>,
    /// With `--noise client`: the dimension d of the sum (the KLS21 bound grows with it).
    #[arg(long, value_name = "D")]
    pub dim: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Who adds the noise (`--noise`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum NoiseArg {
    /// Each aggregator adds N_Z(0, σ²).
    #[default]
    Aggregator,
    /// Each of at least N honest clients adds N_Z(0, σ²/N).
    Client,
}

/// The result of either calculation (also the JSON object printed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpReport {
    /// Total ρ over all rounds (zCDP; `None` with sampling).
    pub rho: Option<f64>,
    /// ε at δ: tight zCDP conversion, or the RDP conversion with sampling.
    pub epsilon: f64,
    /// ε at δ, simple Bun–Steinke bound (zCDP only).
    pub epsilon_simple: Option<f64>,
    /// The per-record sampling rate (1: no sampling).
    pub sampling_rate: f64,
    /// `zcdp` or `rdp`.
    pub accountant: &'static str,
    /// The RDP order attaining ε (RDP only).
    pub order: Option<u32>,
    /// Noise σ per coordinate.
    pub sigma: f64,
    /// Number of releases.
    pub rounds: u64,
    /// δ.
    pub delta: f64,
    /// L2 sensitivity Δ.
    pub sensitivity: f64,
    /// `aggregator` or `client`.
    pub noise: &'static str,
    /// Clients assumed honest (client noise).
    pub min_honest_clients: Option<u64>,
    /// Dimension (client noise).
    pub dim: Option<u64>,
}

/// Runs a `cairn dp` subcommand and renders its output.
///
/// # Errors
/// Invalid parameters (σ ≤ 0, δ ∉ (0, 1), ε ≤ 0, T = 0, NaN …).
pub fn run(cmd: DpCommand) -> anyhow::Result<String> {
    let (target, sensitivity, rounds, delta, s) = match &cmd {
        DpCommand::Epsilon(a) => (
            Target::EpsilonOf { sigma: a.sigma },
            a.sensitivity,
            a.rounds,
            a.delta,
            &a.setting,
        ),
        DpCommand::Sigma(a) => (
            Target::SigmaFor { epsilon: a.epsilon },
            a.sensitivity,
            a.rounds,
            a.delta,
            &a.setting,
        ),
        DpCommand::Cap(a) => return cap(a),
    };
    let client = client_noise(s.noise, s.min_honest_clients, s.dim)?;
    let report = report(target, sensitivity, rounds, delta, s.sampling_rate, client)?;
    render(&report, s.format)
}

/// What a report is asked for: the ε that a σ spends, or the σ that a target ε needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// ε of noise σ (`cairn dp epsilon`).
    EpsilonOf {
        /// Total noise standard deviation.
        sigma: f64,
    },
    /// The smallest σ spending at most ε (`cairn dp sigma`).
    SigmaFor {
        /// Target ε.
        epsilon: f64,
    },
}

/// The report for `target` with the accountant the setting calls for: zCDP without
/// sampling, the RDP of the subsampled discrete Gaussian with `q < 1`, and the RDP of
/// the (subsampled) distributed discrete Gaussian with client noise (`client` is
/// `Some((n_min, d))`, see [`client_noise`]). `cairn dp` and Python's `cairn.dp` both
/// answer through it.
///
/// # Errors
/// Invalid parameters.
pub fn report(
    target: Target,
    sensitivity: f64,
    rounds: u64,
    delta: f64,
    q: f64,
    client: Option<(u64, u64)>,
) -> anyhow::Result<DpReport> {
    match (target, client) {
        (Target::EpsilonOf { sigma }, None) => {
            sampled_epsilon_report(sigma, sensitivity, rounds, delta, q)
        }
        (Target::EpsilonOf { sigma }, Some((n, d))) => {
            distributed_epsilon_report(sigma, sensitivity, rounds, delta, q, n, d)
        }
        (Target::SigmaFor { epsilon }, None) => {
            sampled_sigma_report(epsilon, delta, rounds, sensitivity, q)
        }
        (Target::SigmaFor { epsilon }, Some((n, d))) => {
            distributed_sigma_report(epsilon, delta, rounds, sensitivity, q, n, d)
        }
    }
}

/// `Some((N, d))` for `--noise client`; refuses the client-noise flags without it.
///
/// # Errors
/// The client-noise settings given without `--noise client`, or missing with it.
pub fn client_noise(
    noise: NoiseArg,
    min_honest_clients: Option<u64>,
    dim: Option<u64>,
) -> anyhow::Result<Option<(u64, u64)>> {
    match (noise, min_honest_clients, dim) {
        (NoiseArg::Aggregator, None, None) => Ok(None),
        (NoiseArg::Aggregator, _, _) => {
            anyhow::bail!("--min-honest-clients and --dim go with --noise client")
        }
        (NoiseArg::Client, Some(n), Some(d)) if n >= 1 && d >= 1 => Ok(Some((n, d))),
        (NoiseArg::Client, _, _) => anyhow::bail!(
            "--noise client needs --min-honest-clients N (≥ 1) and --dim D (≥ 1), the clients \
             whose noise is assumed honest and the dimension of the sum"
        ),
    }
}

/// ε of T releases with noise added by at least `clients` honest clients (σ in all,
/// σ/√clients each), on Poisson samples at rate `q` (1: none): the RDP of the
/// subsampled distributed discrete Gaussian.
///
/// # Errors
/// Invalid parameters, σ per client below 1/2 among them.
pub fn distributed_epsilon_report(
    sigma: f64,
    sensitivity: f64,
    rounds: u64,
    delta: f64,
    q: f64,
    clients: u64,
    dim: u64,
) -> anyhow::Result<DpReport> {
    check_rdp_inputs(q, rounds)?;
    let curve =
        cairn_dp::rdp::RdpCurve::subsampled_distributed(sensitivity, sigma, clients, dim, q)
            .context("invalid --sigma, --sensitivity, --min-honest-clients or --dim")?;
    rdp_report(
        &curve,
        sigma,
        sensitivity,
        rounds,
        delta,
        q,
        Some((clients, dim)),
    )
}

/// [`distributed_epsilon_report`] for the smallest total σ meeting a target (ε, δ).
///
/// # Errors
/// Invalid parameters.
pub fn distributed_sigma_report(
    epsilon: f64,
    delta: f64,
    rounds: u64,
    sensitivity: f64,
    q: f64,
    clients: u64,
    dim: u64,
) -> anyhow::Result<DpReport> {
    check_rdp_inputs(q, rounds)?;
    let sigma = cairn_dp::rdp::sigma_for_epsilon_subsampled_distributed(
        epsilon,
        delta,
        sensitivity,
        clients,
        dim,
        q,
        rounds,
    )
    .context("cannot calibrate sigma")?;
    distributed_epsilon_report(sigma, sensitivity, rounds, delta, q, clients, dim)
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
        rho: Some(rho),
        epsilon,
        epsilon_simple: Some(simple),
        sampling_rate: 1.0,
        accountant: "zcdp",
        order: None,
        sigma,
        rounds,
        delta,
        sensitivity,
        noise: "aggregator",
        min_honest_clients: None,
        dim: None,
    })
}

/// [`epsilon_report`] with per-record Poisson sampling at rate `q`: the RDP accountant
/// of the subsampled discrete Gaussian when `q < 1`, zCDP when `q = 1`.
///
/// # Errors
/// Invalid parameters (`q ∉ (0, 1]` among them).
pub fn sampled_epsilon_report(
    sigma: f64,
    sensitivity: f64,
    rounds: u64,
    delta: f64,
    q: f64,
) -> anyhow::Result<DpReport> {
    if q == 1.0 {
        return epsilon_report(sigma, sensitivity, rounds, delta);
    }
    check_rdp_inputs(q, rounds)?;
    let curve = cairn_dp::rdp::RdpCurve::subsampled_discrete_gaussian(sensitivity, sigma, q)
        .context("invalid --sigma, --sensitivity or --sampling-rate")?;
    rdp_report(&curve, sigma, sensitivity, rounds, delta, q, None)
}

/// Checks the inputs of the RDP accountant: `--sampling-rate` in (0, 1] and at least
/// one round.
fn check_rdp_inputs(q: f64, rounds: u64) -> anyhow::Result<()> {
    if !(q > 0.0 && q <= 1.0) {
        anyhow::bail!("--sampling-rate must be in (0, 1] (got {q})");
    }
    if rounds == 0 {
        anyhow::bail!("--rounds must be at least 1");
    }
    Ok(())
}

/// The report of `rounds` releases of `curve` (RDP accountant); `client` is
/// `Some((n_min, d))` for client noise.
fn rdp_report(
    curve: &cairn_dp::rdp::RdpCurve,
    sigma: f64,
    sensitivity: f64,
    rounds: u64,
    delta: f64,
    q: f64,
    client: Option<(u64, u64)>,
) -> anyhow::Result<DpReport> {
    let (epsilon, order) = curve
        .times(rounds)
        .epsilon(delta)
        .context("invalid --delta")?;
    Ok(DpReport {
        rho: None,
        epsilon,
        epsilon_simple: None,
        sampling_rate: q,
        accountant: "rdp",
        order: Some(order),
        sigma,
        rounds,
        delta,
        sensitivity,
        noise: if client.is_some() {
            "client"
        } else {
            "aggregator"
        },
        min_honest_clients: client.map(|(n, _)| n),
        dim: client.map(|(_, d)| d),
    })
}

/// [`sigma_report`] with per-record Poisson sampling at rate `q`.
///
/// # Errors
/// Invalid parameters.
pub fn sampled_sigma_report(
    epsilon: f64,
    delta: f64,
    rounds: u64,
    sensitivity: f64,
    q: f64,
) -> anyhow::Result<DpReport> {
    if q == 1.0 {
        return sigma_report(epsilon, delta, rounds, sensitivity);
    }
    check_rdp_inputs(q, rounds)?;
    let sigma = cairn_dp::rdp::sigma_for_epsilon_subsampled(epsilon, delta, sensitivity, q, rounds)
        .context("cannot calibrate sigma")?;
    sampled_epsilon_report(sigma, sensitivity, rounds, delta, q)
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
        Format::Table => {
            let row = |k: &str, v: String| format!("{k:<18}{v}\n");
            let mut out = String::new();
            out.push_str(&row("sigma", report.sigma.to_string()));
            out.push_str(&row("sensitivity", report.sensitivity.to_string()));
            out.push_str(&row("rounds", report.rounds.to_string()));
            out.push_str(&row("delta", report.delta.to_string()));
            match (report.rho, report.epsilon_simple, report.order) {
                (Some(rho), Some(simple), _) => {
                    out.push_str(&row("rho (total)", rho.to_string()));
                    out.push_str(&row(
                        "epsilon",
                        format!("{}  (tight, CKS20 conversion)", report.epsilon),
                    ));
                    out.push_str(&row(
                        "epsilon (simple)",
                        format!("{simple}  (rho + 2 sqrt(rho ln 1/delta))"),
                    ));
                }
                (_, _, order) => {
                    out.push_str(&row("sampling rate", report.sampling_rate.to_string()));
                    let mechanism = match (report.min_honest_clients, report.dim) {
                        (Some(n), Some(d)) => {
                            out.push_str(&row(
                                "noise",
                                format!("client: sigma/sqrt({n}) from each of >= {n} honest clients, d = {d}"),
                            ));
                            "distributed discrete Gaussian (KLS21)"
                        }
                        _ => "discrete Gaussian",
                    };
                    out.push_str(&row(
                        "epsilon",
                        format!(
                            "{}  (RDP of the subsampled {mechanism}, order {}; Balle et al. 2020 conversion)",
                            report.epsilon,
                            order.map_or("-".to_owned(), |o| o.to_string())
                        ),
                    ));
                }
            }
            Ok(out)
        }
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
        assert_eq!(r.rho, Some(1.25));
        assert!((r.epsilon - 8.078_359_548_144_45).abs() < 1e-9 * 8.08);
        assert!((r.epsilon_simple.unwrap() - 8.837_135_646_925_73).abs() < 1e-9 * 8.84);
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

    /// Row of section B2 (Opacus 1.6.0): σ = 1.1, q = 256/60000, T = 14062, δ = 1e−5,
    /// ε = 2.5966 (best order 8.1; integer 8 here).
    #[test]
    fn the_sampled_accountant_matches_the_dp_sgd_reference_row() {
        let r = sampled_epsilon_report(1.1, 1.0, 14_062, 1e-5, 256.0 / 60_000.0).unwrap();
        assert_eq!((r.accountant, r.rho, r.order), ("rdp", None, Some(8)));
        assert!(
            r.epsilon >= 2.596_555 && r.epsilon <= 2.596_555 * 1.001,
            "{}",
            r.epsilon
        );
        let s = sampled_sigma_report(r.epsilon, 1e-5, 14_062, 1.0, 256.0 / 60_000.0).unwrap();
        assert!(
            s.sigma <= 1.1 * (1.0 + 1e-5) && s.epsilon <= r.epsilon,
            "{}",
            s.sigma
        );
        assert!(sampled_epsilon_report(1.1, 1.0, 10, 1e-5, 0.0).is_err());
        assert!(sampled_epsilon_report(1.1, 1.0, 10, 1e-5, 1.5).is_err());
        assert!(sampled_epsilon_report(1.1, 1.0, 0, 1e-5, 0.5).is_err());
        // q = 1 is the zCDP calculator.
        assert_eq!(
            sampled_epsilon_report(2.0, 1.0, 10, 1e-5, 1.0).unwrap().rho,
            Some(1.25)
        );
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
