//! A task's differential-privacy parameters, turned into what the aggregators enforce.
//!
//! All accounting is zCDP (DESIGN §6), with the formulas of `cairn-dp`:
//!
//! * **Sensitivity.** Adding or removing one honest client changes the released sum by
//!   its quantised, clipped update: L2 norm at most `Δ = C·2^f + √d` (clipping to `C`,
//!   then randomised rounding moves each coordinate by less than 1). With noise only at
//!   the aggregators, the proof bounds *every* accepted report by `B`, and the task's
//!   `B` is what the accounting uses (`B ≥ Δ` by default; a smaller configured `B`
//!   rejects larger reports, so `B` is then the bound). With client noise, `B` also
//!   covers the noise, so the signal bound `Δ` is used. Without a proof
//!   (`proof = "none"`) nothing enforces `B`, so the aggregator noise is charged for
//!   `max(B, Δ)`: an honest client's update, however `B` was configured.
//! * **Aggregator noise.** Each aggregator adds `N_Z(0, σ²)` to its share. If one
//!   aggregator is honest the release is a discrete Gaussian mechanism:
//!   `ρ = Δ²/(2σ²)` (Canonne–Kamath–Steinke 2020, Theorem 14).
//! * **Client noise.** Each client adds `N_Z(0, σ_c²)` with `σ_c = σ/√n_min`; with at
//!   least `n_min` honest clients the sum of their noise is close to `N_Z(0, σ²)`, and
//!   Kairouz–Liu–Steinke 2021 (Theorem 1) bound the ρ including their τ correction
//!   ([`cairn_dp::calibrate::rho_distributed`]).
//! * **Both.** The guarantee holds under either assumption; the ledger charges the
//!   larger ρ of the two, so the accounting is valid whichever assumption holds.
//! * **Budget.** The task's (ε, δ) becomes the largest ρ whose tight CKS20 conversion
//!   (Corollary 13) is at most ε; the ledger enforces that ρ.
//! * **Record level** (`unit = "record"`). Each record is Poisson-sampled with rate `q`,
//!   clipped to `C` and summed with the client's other sampled records (at most `m`);
//!   the sum is rounded once (unbiased randomised rounding) and proven against
//!   `B = m·C·2^f + √d`. Adding or removing one record changes the rounded sum by at
//!   most `Δ = C·2^f + √d` in L2 under the coupling that rounds both sums with the
//!   same uniform variables (each coordinate moves by the record's value plus less
//!   than 1), and the mixture over that coupling cannot increase a Rényi divergence,
//!   so the release is the Poisson-subsampled discrete Gaussian with sensitivity `Δ`.
//!   Its cost is an RDP curve ([`cairn_dp::rdp`]); the ledger composes the curves and
//!   enforces ε at δ directly. With client noise the curve is that of the subsampled
//!   *distributed* discrete Gaussian (KLS21 Theorem 1's ρ in the subsampling bound,
//!   [`cairn_dp::rdp::RdpCurve::subsampled_distributed`]); with both, the larger curve
//!   at every order, valid under either assumption.

use cairn_dp::sample::DiscreteGaussian;

use cairn_dp::rdp::RdpCurve;

use crate::config::{ConfigError, NoisePlacement, PrivacyUnit, TaskConfig};
use crate::ledger::{LedgerBudget, ReleaseCost};

/// The DP parameters of a task, validated.
#[derive(Debug, Clone)]
pub struct Privacy {
    placement: NoisePlacement,
    unit: PrivacyUnit,
    rdp_per_release: Option<RdpCurve>,
    rho_per_release: f64,
    rho_budget: f64,
    epsilon_budget: f64,
    delta: f64,
    min_honest_clients: u32,
    aggregator_noise: Option<DiscreteGaussian>,
    client_noise: Option<DiscreteGaussian>,
}

impl Privacy {
    /// Derives the accounting for `task`; refuses a budget too small for one release.
    pub fn for_task(task: &TaskConfig) -> Result<Self, ConfigError> {
        let p = task.privacy();
        if p.noise == NoisePlacement::None {
            return Ok(Self {
                placement: NoisePlacement::None,
                unit: p.unit,
                rdp_per_release: None,
                rho_per_release: 0.0,
                rho_budget: f64::MAX,
                epsilon_budget: f64::INFINITY,
                delta: 0.0,
                min_honest_clients: 0,
                aggregator_noise: None,
                client_noise: None,
            });
        }
        // Validated by TaskConfig: present, finite and in range.
        let sigma = p.sigma.unwrap_or(f64::NAN);
        let epsilon = p.epsilon.unwrap_or(f64::NAN);
        let delta = p.delta.unwrap_or(f64::NAN);
        let signal = signal_sensitivity(task);
        let n_min = p.min_honest_clients.unwrap_or(0);
        if p.unit == PrivacyUnit::Record {
            return Self::for_record_level(task, sigma, epsilon, delta);
        }

        let aggregator_sensitivity = aggregator_sensitivity(task);
        let rho_aggregator =
            cairn_dp::accountant::rho_discrete_gaussian(aggregator_sensitivity, sigma)
                .map_err(|e| ConfigError::invalid("privacy.sigma", e.to_string()))?;
        let sigma_client = sigma / f64::from(n_min.max(1)).sqrt();
        let rho_client = || {
            cairn_dp::calibrate::rho_distributed(
                signal,
                sigma_client,
                u64::from(n_min),
                task.dimension() as u64,
            )
            .map_err(|e| ConfigError::invalid("privacy.min_honest_clients", e.to_string()))
        };
        let rho_per_release = match p.noise {
            NoisePlacement::Aggregator => rho_aggregator,
            NoisePlacement::Client => rho_client()?,
            NoisePlacement::Both => rho_aggregator.max(rho_client()?),
            NoisePlacement::None => 0.0,
        };
        let rho_budget = cairn_dp::accountant::rho_for_epsilon(epsilon, delta)
            .map_err(|e| ConfigError::invalid("privacy.epsilon", e.to_string()))?;
        if rho_per_release > rho_budget {
            return Err(ConfigError::invalid(
                "privacy.epsilon",
                format!(
                    "the budget (ε = {epsilon}, δ = {delta}: ρ = {rho_budget:.6}) is too small for even \
                     one release, which costs ρ = {rho_per_release:.6}: raise sigma or epsilon"
                ),
            ));
        }
        let (aggregator_noise, client_noise) = noise_samplers(p.noise, sigma, sigma_client)?;
        Ok(Self {
            placement: p.noise,
            unit: p.unit,
            rdp_per_release: None,
            rho_per_release,
            rho_budget,
            epsilon_budget: epsilon,
            delta,
            min_honest_clients: n_min,
            aggregator_noise,
            client_noise,
        })
    }

    /// Record level (module docs): noise σ on a sum of Poisson-sampled records,
    /// sensitivity `Δ = C·2^f + √d` per record; at the aggregators (one discrete
    /// Gaussian), at the clients (the distributed discrete Gaussian of at least
    /// `n_min` honest clients), or both (the larger curve at every order).
    fn for_record_level(
        task: &TaskConfig,
        sigma: f64,
        epsilon: f64,
        delta: f64,
    ) -> Result<Self, ConfigError> {
        let p = task.privacy();
        let signal = signal_sensitivity(task);
        let q = task.sampling_rate();
        let n_min = p.min_honest_clients.unwrap_or(0);
        let sigma_client = sigma / f64::from(n_min.max(1)).sqrt();
        let central = || {
            RdpCurve::subsampled_discrete_gaussian(signal, sigma, q)
                .map_err(|e| ConfigError::invalid("privacy.sigma", e.to_string()))
        };
        let distributed = || {
            RdpCurve::subsampled_distributed(
                signal,
                sigma,
                u64::from(n_min),
                task.dimension() as u64,
                q,
            )
            .map_err(|e| ConfigError::invalid("privacy.min_honest_clients", e.to_string()))
        };
        let curve = match p.noise {
            NoisePlacement::Client => distributed()?,
            NoisePlacement::Both => central()?.max(&distributed()?),
            NoisePlacement::Aggregator | NoisePlacement::None => central()?,
        };
        let (one, _) = curve
            .epsilon(delta)
            .map_err(|e| ConfigError::invalid("privacy.delta", e.to_string()))?;
        if one > epsilon {
            return Err(ConfigError::invalid(
                "privacy.epsilon",
                format!(
                    "the budget ε = {epsilon} (δ = {delta}) is too small for even one release, \
                     which costs ε = {one:.6}: raise sigma or epsilon, or lower sampling_rate"
                ),
            ));
        }
        let (aggregator_noise, client_noise) = noise_samplers(p.noise, sigma, sigma_client)?;
        Ok(Self {
            placement: p.noise,
            unit: PrivacyUnit::Record,
            rdp_per_release: Some(curve),
            rho_per_release: 0.0,
            rho_budget: f64::MAX,
            epsilon_budget: epsilon,
            delta,
            min_honest_clients: n_min,
            aggregator_noise,
            client_noise,
        })
    }

    /// Where noise is added.
    pub fn placement(&self) -> NoisePlacement {
        self.placement
    }

    /// The unit of privacy.
    pub fn unit(&self) -> PrivacyUnit {
        self.unit
    }

    /// What one release costs: ρ (zCDP) or an RDP curve (record level).
    pub fn release_cost(&self) -> ReleaseCost {
        match &self.rdp_per_release {
            Some(curve) => ReleaseCost::Rdp(curve.clone()),
            None => ReleaseCost::Rho(self.rho_per_release),
        }
    }

    /// The budget every aggregator's ledger enforces.
    pub fn ledger_budget(&self) -> LedgerBudget {
        match self.rdp_per_release {
            Some(_) => LedgerBudget::Rdp {
                epsilon: self.epsilon_budget,
                delta: self.delta,
            },
            None => LedgerBudget::Zcdp {
                rho: self.rho_budget,
            },
        }
    }

    /// The δ of the task's guarantee (0 without noise).
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// The RDP curve of one release (record level).
    pub fn rdp_per_release(&self) -> Option<&RdpCurve> {
        self.rdp_per_release.as_ref()
    }

    /// ρ charged per release.
    pub fn rho_per_release(&self) -> f64 {
        self.rho_per_release
    }

    /// The task's ρ budget.
    pub fn rho_budget(&self) -> f64 {
        self.rho_budget
    }

    /// The task's ε budget (at δ).
    pub fn epsilon_budget(&self) -> f64 {
        self.epsilon_budget
    }

    /// ε at the task's δ for a total ρ (tight CKS20 conversion); 0 without noise.
    pub fn epsilon_of_rho(&self, rho: f64) -> f64 {
        if self.placement == NoisePlacement::None || rho <= 0.0 {
            return 0.0;
        }
        cairn_dp::accountant::epsilon_tight(rho, self.delta).unwrap_or(f64::INFINITY)
    }

    /// Each aggregator's noise sampler, if the task places noise there.
    pub fn aggregator_noise(&self) -> Option<&DiscreteGaussian> {
        self.aggregator_noise.as_ref()
    }

    /// Each client's noise sampler, if the task places noise there.
    pub fn client_noise(&self) -> Option<&DiscreteGaussian> {
        self.client_noise.as_ref()
    }

    /// The fewest accepted reports a release needs.
    pub fn min_reports(&self, min_clients: u32) -> u32 {
        min_clients.max(self.min_honest_clients)
    }
}

/// The L2 sensitivity the aggregator noise is charged for: the proven bound `B`, or,
/// without a proof, `max(B, Δ)` (module docs).
pub fn aggregator_sensitivity(task: &TaskConfig) -> f64 {
    let bound = task.norm_bound() as f64;
    match task.proof() {
        crate::config::ProofMode::CarryLift => bound,
        crate::config::ProofMode::None => bound.max(signal_sensitivity(task)),
    }
}

/// The aggregators' and the clients' noise samplers, where the placement adds noise.
type Samplers = (Option<DiscreteGaussian>, Option<DiscreteGaussian>);

/// `N_Z(0, σ²)` for each aggregator and `N_Z(0, σ_c²)` for each client, where the
/// placement adds them.
fn noise_samplers(
    placement: NoisePlacement,
    sigma: f64,
    sigma_client: f64,
) -> Result<Samplers, ConfigError> {
    let gaussian = |s: f64| {
        DiscreteGaussian::from_f64(s)
            .map_err(|e| ConfigError::invalid("privacy.sigma", e.to_string()))
    };
    let aggregator = match placement {
        NoisePlacement::Aggregator | NoisePlacement::Both => Some(gaussian(sigma)?),
        _ => None,
    };
    let client = match placement {
        NoisePlacement::Client | NoisePlacement::Both => Some(gaussian(sigma_client)?),
        _ => None,
    };
    Ok((aggregator, client))
}

/// `Δ = C·2^f + √d`: the L2 norm of an honest client's quantised update.
pub fn signal_sensitivity(task: &TaskConfig) -> f64 {
    task.clip_norm() * 2f64.powi(i32::from(task.frac_bits())) + (task.dimension() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d = 100, b = 16, f = 10, C = 1: Δ = 1024 + 10 = 1034 = B by default.
    fn task(privacy: &str) -> TaskConfig {
        let text = format!(
            "name = \"p\"\ndimension = 100\nbits = 16\nfrac_bits = 10\nclip_norm = 1.0\n\
             proof = \"carry-lift\"\nmin_clients = 8\nmax_clients = 100\nround_duration_secs = 60\n\
             [privacy]\n{privacy}\n[collector]\n\
             hpke_public_key = \"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f\"\n\
             [[aggregators]]\nrole = \"leader\"\nendpoint = \"127.0.0.1:1\"\n\
             tls_cert_sha256 = \"{a}\"\nhpke_public_key = \"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a\"\n\
             [[aggregators]]\nrole = \"helper\"\nendpoint = \"127.0.0.1:2\"\n\
             tls_cert_sha256 = \"{b}\"\nhpke_public_key = \"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f\"\n",
            a = "11".repeat(32),
            b = "22".repeat(32),
        );
        TaskConfig::from_toml(&text).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
    }

    #[test]
    fn aggregator_noise_costs_b_squared_over_two_sigma_squared() {
        let t = task("noise = \"aggregator\"\nsigma = 2000.0\nepsilon = 10.0\ndelta = 1e-6");
        assert_eq!(t.norm_bound(), 1034);
        let p = Privacy::for_task(&t).unwrap();
        // 1034² / (2 · 2000²) = 1069156 / 8000000.
        assert!(close(p.rho_per_release(), 1_069_156.0 / 8_000_000.0));
        assert_eq!(p.placement(), NoisePlacement::Aggregator);
        assert!(p.aggregator_noise().is_some() && p.client_noise().is_none());
        assert_eq!(p.release_cost(), ReleaseCost::Rho(p.rho_per_release()));
    }

    #[test]
    fn client_noise_costs_the_kls21_bound_with_the_signal_sensitivity() {
        let t = task(
            "noise = \"client\"\nsigma = 2000.0\nepsilon = 100.0\ndelta = 1e-6\nmin_honest_clients = 8",
        );
        let p = Privacy::for_task(&t).unwrap();
        // KLS21 Theorem 1 with Δ = 1034, σ_c = 2000/√8, n = 8, d = 100:
        // τ = 10 Σ_{k=1}^{7} exp(−2π²σ_c² k/(k+1)) = 0 in f64 (σ_c ≈ 707),
        // ρ = ½ min{Δ²/(n σ_c²), (Δ/(√n σ_c))²} = Δ²/(2 · 8 · 500000) = Δ²/(2σ²).
        assert!(close(
            p.rho_per_release(),
            1034.0f64.powi(2) / (2.0 * 2000.0f64.powi(2))
        ));
        assert!(p.client_noise().is_some() && p.aggregator_noise().is_none());
        assert_eq!(p.min_reports(3), 8, "min_honest_clients raises the floor");
    }

    #[test]
    fn both_placements_charge_the_larger_cost() {
        // With client noise B covers the noise too (B = ⌈1024 + 10 + 12·σ_c·10⌉), so the
        // aggregator side, charged for B, is the larger.
        let t = task(
            "noise = \"both\"\nsigma = 40.0\nepsilon = 1e6\ndelta = 1e-6\nmin_honest_clients = 4",
        );
        let b = t.norm_bound() as f64;
        assert_eq!(b, (1034.0f64 + 12.0 * 20.0 * 10.0).ceil());
        let p = Privacy::for_task(&t).unwrap();
        let aggregator = b * b / (2.0 * 1600.0);
        let client = cairn_dp::calibrate::rho_distributed(1034.0, 20.0, 4, 100).unwrap();
        assert!(aggregator > client);
        assert!(close(p.rho_per_release(), aggregator));
    }

    #[test]
    fn record_level_client_noise_costs_the_subsampled_distributed_curve() {
        let record = "\nunit = \"record\"\nsampling_rate = 0.1\nmax_records_per_report = 20";
        // Δ = 1024 + 10 = 1034 per record whatever B is (B covers the clients' noise).
        let client = task(&format!(
            "noise = \"client\"\nsigma = 2.0\nepsilon = 1e9\ndelta = 1e-6\n\
             min_honest_clients = 4{record}"
        ));
        let p = Privacy::for_task(&client).unwrap();
        let distributed = RdpCurve::subsampled_distributed(1034.0, 2.0, 4, 100, 0.1).unwrap();
        assert_eq!(p.rdp_per_release(), Some(&distributed));
        // σ_c = 1: KLS21's τ makes the distributed curve (slightly) the larger.
        let central = RdpCurve::subsampled_discrete_gaussian(1034.0, 2.0, 0.1).unwrap();
        assert_ne!(distributed, central);
        assert!(p.client_noise().is_some() && p.aggregator_noise().is_none());
        assert_eq!(p.min_reports(3), 4, "min_honest_clients raises the floor");
        // Both: valid under either assumption, so the larger curve at every order.
        let both = task(&format!(
            "noise = \"both\"\nsigma = 2.0\nepsilon = 1e9\ndelta = 1e-6\n\
             min_honest_clients = 4{record}"
        ));
        let p = Privacy::for_task(&both).unwrap();
        assert_eq!(p.rdp_per_release(), Some(&central.max(&distributed)));
        assert!(p.aggregator_noise().is_some() && p.client_noise().is_some());
    }

    /// What receipts and reports read: δ, the unit and ε of a total ρ at that δ
    /// (survivors of the mutation run, RELIABILITY.md).
    #[test]
    fn the_reported_guarantee_is_the_tasks() {
        let t = task("noise = \"aggregator\"\nsigma = 2000.0\nepsilon = 10.0\ndelta = 1e-6");
        let p = Privacy::for_task(&t).unwrap();
        assert_eq!(p.delta(), 1e-6);
        assert_eq!(p.unit(), PrivacyUnit::Client);
        let expected = cairn_dp::accountant::epsilon_tight(0.5, 1e-6).unwrap();
        assert!(expected > 0.0);
        assert_eq!(p.epsilon_of_rho(0.5), expected);
        assert_eq!(p.epsilon_of_rho(0.0), 0.0);
        let record = task(
            "noise = \"aggregator\"\nsigma = 5000.0\nepsilon = 2.0\ndelta = 1e-6\n\
             unit = \"record\"\nsampling_rate = 0.1\nmax_records_per_report = 20",
        );
        assert_eq!(
            Privacy::for_task(&record).unwrap().unit(),
            PrivacyUnit::Record
        );
    }

    #[test]
    fn no_noise_costs_nothing_and_record_level_costs_a_curve() {
        let none = Privacy::for_task(&task("noise = \"none\"")).unwrap();
        assert_eq!(none.rho_per_release(), 0.0);
        assert_eq!(none.epsilon_of_rho(1.0), 0.0);
        let t = task(
            "noise = \"aggregator\"\nsigma = 5000.0\nepsilon = 2.0\ndelta = 1e-6\n\
             unit = \"record\"\nsampling_rate = 0.1\nmax_records_per_report = 20",
        );
        let p = Privacy::for_task(&t).unwrap();
        let expected = RdpCurve::subsampled_discrete_gaussian(1034.0, 5000.0, 0.1).unwrap();
        assert_eq!(p.rdp_per_release(), Some(&expected));
        assert_eq!(p.release_cost(), ReleaseCost::Rdp(expected));
        assert_eq!(
            p.ledger_budget(),
            LedgerBudget::Rdp {
                epsilon: 2.0,
                delta: 1e-6
            }
        );
    }
}
