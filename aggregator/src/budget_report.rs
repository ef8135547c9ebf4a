//! Privacy-budget reports: where a task's budget went, read from one node's ledger.
//!
//! Every aggregator keeps its own hash-chained ledger of releases
//! ([`cairn_protocol::ledger`]). A report reads that ledger from the node's database
//! (read-only: the node may keep running), re-verifies the whole chain
//! ([`Ledger::verify_chain`]; a broken chain is an error naming the first bad entry),
//! and lists for every release the round, its time, the report count, the noise, the ρ
//! it cost and the running total, and the running ε at the task's δ:
//!
//! * **tight**: ε(ρ, δ) = inf_{α>1}[αρ + ln(1 − 1/α) − (ln α + ln δ)/(α − 1)]
//!   (Canonne–Kamath–Steinke 2020, Corollary 13), the conversion the ledger enforces;
//! * **simple**: ε = ρ + 2√(ρ ln 1/δ) (Bun–Steinke 2016, Proposition 1.3), for comparison.
//!
//! zCDP composes additively (Bun–Steinke 2016, Lemma 2.3), so the running ρ after k
//! releases is the sum of their ρ and ε is recomputed from it, never summed.
//!
//! Record-level tasks (`unit = "record"`) are accounted with Rényi DP instead: each
//! ledger entry carries the RDP curve of its release (the Poisson-subsampled discrete
//! Gaussian, [`cairn_dp::rdp`]); the running ε after k releases is the conversion of
//! the sum of their curves (Mironov 2017, Proposition 1; Balle et al. 2020,
//! Theorem 21), and the ρ columns stay 0.
//!
//! The header states the unit of privacy (each organisation's whole participation, or
//! each record), the accountant, and the trust assumption under which the numbers are a
//! guarantee:
//! with aggregator noise, one honest aggregator suffices; with client noise,
//! `min_honest_clients` honest clients are needed; without noise there is none.
//!
//! Rendering: [`BudgetReport::to_table`], [`BudgetReport::to_json`] and
//! [`BudgetReport::to_html`] (see [`crate::report_html`]).

use std::path::Path;

use cairn_dp::accountant::{epsilon_simple, epsilon_tight};
use cairn_dp::rdp::RdpCurve;
use cairn_protocol::config::{NoisePlacement, PrivacyUnit, TaskConfig};
use cairn_protocol::ledger::{Ledger, LedgerEntry, LedgerError};
use cairn_protocol::privacy::{Privacy, signal_sensitivity};
use cairn_protocol::store::TaskStore;
use serde::Serialize;

use crate::node_config::NodeConfig;
use crate::store::{NodeStore, SqliteStore, StoreError};

/// Errors of building a budget report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetReportError {
    /// The node's database cannot be opened or read.
    #[error("reading the ledger in {path}: {source}")]
    Store {
        /// The database file.
        path: String,
        /// Why.
        source: StoreError,
    },
    /// The task's privacy settings do not validate.
    #[error("the task's privacy settings: {0}")]
    Task(#[from] cairn_protocol::config::ConfigError),
    /// The hash chain breaks: the ledger was edited, truncated or reordered.
    #[error(
        "ledger entry {index} does not verify (the ledger was edited, reordered or \
         truncated there; entries from {index} on cannot be trusted)"
    )]
    Tampered {
        /// The first bad entry (0-based, as its `seq`).
        index: usize,
    },
    /// The ledger does not verify for another reason than a broken chain (another
    /// task's ledger, a gap in the sequence numbers).
    #[error("the ledger does not verify: {0}")]
    Ledger(LedgerError),
    /// A zCDP-to-(ε, δ) conversion failed (not expected for a verified ledger).
    #[error("accounting: {0}")]
    Accountant(#[from] cairn_dp::accountant::AccountantError),
    /// An RDP-to-(ε, δ) conversion failed (not expected for a verified ledger).
    #[error("accounting: {0}")]
    Rdp(#[from] cairn_dp::rdp::RdpError),
}

/// A task's privacy-budget report, as one node's ledger records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    /// The task's name.
    pub task_name: String,
    /// The task id, hex.
    pub task_id: String,
    /// The aggregator whose ledger this is (0 = leader).
    pub aggregator_index: u8,
    /// The number of aggregators of the task.
    pub aggregators: usize,
    /// Where noise is added: `none`, `aggregator`, `client` or `both`.
    pub noise: String,
    /// σ of the discrete Gaussian (quantised units) the accounting uses, if any.
    pub sigma: Option<f64>,
    /// The L2 sensitivity Δ of one release the accounting uses (quantised units).
    pub sensitivity: f64,
    /// The δ of the (ε, δ) guarantee (0 without noise).
    pub delta: f64,
    /// The task's ε budget (`None` without noise: there is no budget).
    pub epsilon_budget: Option<f64>,
    /// The task's ρ budget (`None` without noise).
    pub rho_budget: Option<f64>,
    /// The condition under which the ε figures are a guarantee.
    pub trust_assumption: String,
    /// What one unit of privacy is: `client` (each organisation's whole participation)
    /// or `record` (each record of each organisation).
    pub unit: String,
    /// The unit in words.
    pub unit_of_privacy: String,
    /// The accountant and its parameters, in words.
    pub accountant: String,
    /// Record level: the per-record Poisson sampling rate.
    pub sampling_rate: Option<f64>,
    /// The releases, oldest first.
    pub releases: Vec<ReleaseRow>,
}

/// One release of a [`BudgetReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseRow {
    /// Position in the ledger, from 0.
    pub seq: u64,
    /// The released round.
    pub round: u32,
    /// When it was released (RFC 3339, UTC).
    pub time: String,
    /// The same instant in seconds since the Unix epoch.
    pub time_unix: u64,
    /// Reports in the released aggregate.
    pub report_count: u32,
    /// Where noise is added (as in the header; repeated for row-wise consumers).
    pub noise: String,
    /// σ of the noise, if any.
    pub sigma: Option<f64>,
    /// ρ this release cost.
    pub rho: f64,
    /// ρ spent by the task after this release.
    pub rho_total: f64,
    /// ε at δ after this release, tight CKS20 conversion.
    pub epsilon: f64,
    /// ε at δ after this release, simple bound ρ + 2√(ρ ln 1/δ) (zCDP ledgers; the
    /// same as `epsilon` in RDP ledgers).
    pub epsilon_simple: f64,
    /// ε left in the budget after this release (`None` without noise).
    pub epsilon_remaining: Option<f64>,
}

impl BudgetReport {
    /// Reads the ledger of `task` from the node database at `db_path` (opened
    /// read-only), verifies it and builds the report for aggregator `aggregator_index`.
    pub fn from_database(
        task: &TaskConfig,
        aggregator_index: u8,
        db_path: &Path,
    ) -> Result<Self, BudgetReportError> {
        let store_error = |source| BudgetReportError::Store {
            path: db_path.display().to_string(),
            source,
        };
        let db = SqliteStore::open_read_only(db_path).map_err(store_error)?;
        let entries = db
            .task(task.id(), task.dimension())
            .ledger()
            .map_err(store_error)?;
        Self::from_entries(task, aggregator_index, &entries)
    }

    /// Reads the ledger of `task` from the store of the node configured by `node`
    /// (its SQLite file read-only, or its PostgreSQL database), verifies it and builds
    /// the report.
    pub fn from_node(task: &TaskConfig, node: &NodeConfig) -> anyhow::Result<Self> {
        let store = NodeStore::open_for_reading(node, task)?;
        let entries = store
            .ledger()
            .map_err(|e| anyhow::anyhow!("reading the ledger: {e}"))?;
        Ok(Self::from_entries(task, node.index, &entries)?)
    }

    /// Verifies `entries` as `task`'s ledger and builds the report.
    pub fn from_entries(
        task: &TaskConfig,
        aggregator_index: u8,
        entries: &[LedgerEntry],
    ) -> Result<Self, BudgetReportError> {
        Ledger::verify_chain(&task.id(), entries).map_err(|e| match e {
            LedgerError::BrokenChain { index } => BudgetReportError::Tampered { index },
            other => BudgetReportError::Ledger(other),
        })?;
        let privacy = Privacy::for_task(task)?;
        let placement = privacy.placement();
        let noise = placement_name(placement).to_owned();
        let has_noise = placement != NoisePlacement::None;
        let sigma = if has_noise {
            task.privacy().sigma
        } else {
            None
        };
        let delta = if has_noise {
            task.privacy().delta.unwrap_or(0.0)
        } else {
            0.0
        };
        let epsilon_budget = has_noise.then(|| privacy.epsilon_budget());
        let record_level = task.unit() == PrivacyUnit::Record;
        let mut composed = RdpCurve::zero();
        let mut releases = Vec::with_capacity(entries.len());
        for e in entries {
            let (epsilon, simple) = if let Some(curve) = &e.rdp {
                composed = composed.compose(curve);
                let eps = composed.epsilon(delta)?.0;
                (eps, eps)
            } else if has_noise && e.rho_total > 0.0 {
                (
                    epsilon_tight(e.rho_total, delta)?,
                    epsilon_simple(e.rho_total, delta)?,
                )
            } else {
                (0.0, 0.0)
            };
            releases.push(ReleaseRow {
                seq: e.seq,
                round: e.round,
                time: rfc3339_utc(e.time.0),
                time_unix: e.time.0,
                report_count: e.report_count,
                noise: noise.clone(),
                sigma,
                rho: e.rho,
                rho_total: e.rho_total,
                epsilon,
                epsilon_simple: simple,
                epsilon_remaining: epsilon_budget.map(|b| (b - epsilon).max(0.0)),
            });
        }
        Ok(Self {
            task_name: task.name().to_owned(),
            task_id: task.id().to_hex(),
            aggregator_index,
            aggregators: task.num_aggregators(),
            noise,
            sigma,
            sensitivity: sensitivity(task, placement),
            delta,
            epsilon_budget,
            rho_budget: (has_noise && !record_level).then(|| privacy.rho_budget()),
            trust_assumption: trust_assumption(task, placement),
            unit: if record_level { "record" } else { "client" }.to_owned(),
            unit_of_privacy: unit_of_privacy(task),
            accountant: accountant(task, placement),
            sampling_rate: record_level.then(|| task.sampling_rate()),
            releases,
        })
    }

    /// ρ spent so far (0 before the first release).
    pub fn rho_spent(&self) -> f64 {
        self.releases.last().map_or(0.0, |r| r.rho_total)
    }

    /// ε spent so far (tight conversion).
    pub fn epsilon_spent(&self) -> f64 {
        self.releases.last().map_or(0.0, |r| r.epsilon)
    }

    /// A human-readable table with a header.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Privacy budget of task `{}` ({}…), ledger of aggregator {} of {}\n",
            self.task_name,
            &self.task_id[..self.task_id.len().min(16)],
            self.aggregator_index,
            self.aggregators
        ));
        out.push_str(&format!("Unit of privacy: {}\n", self.unit_of_privacy));
        out.push_str(&format!("Trust assumption: {}\n", self.trust_assumption));
        out.push_str(&format!("Accountant: {}\n", self.accountant));
        match (self.epsilon_budget, self.rho_budget) {
            (Some(eps), None) => out.push_str(&format!(
                "Noise: {}, σ = {}, sensitivity Δ = {} per record; budget ε = {eps} at δ = {}\n",
                self.noise,
                fmt_opt(self.sigma, 3),
                self.sensitivity,
                crate::report_html::fmt_delta(self.delta)
            )),
            (Some(eps), Some(rho)) => out.push_str(&format!(
                "Noise: {}, σ = {}, sensitivity Δ = {}; budget ε = {eps} at δ = {} (ρ = {rho:.6}); \
                 zCDP accounting, ε by the tight CKS20 conversion (simple bound beside it)\n",
                self.noise,
                fmt_opt(self.sigma, 3),
                self.sensitivity,
                crate::report_html::fmt_delta(self.delta)
            )),
            _ => {
                out.push_str("Noise: none; the released sums are exact and carry no DP guarantee\n")
            }
        }
        out.push_str(&format!(
            "Hash chain: {} entries, verified\n\n",
            self.releases.len()
        ));
        let header = [
            "seq",
            "round",
            "time (UTC)",
            "reports",
            "noise",
            "sigma",
            "rho",
            "rho total",
            "epsilon",
            "eps simple",
            "eps left",
        ];
        let rows: Vec<[String; 11]> = self
            .releases
            .iter()
            .map(|r| {
                [
                    r.seq.to_string(),
                    r.round.to_string(),
                    r.time.clone(),
                    r.report_count.to_string(),
                    r.noise.clone(),
                    fmt_opt(r.sigma, 3),
                    format!("{:.6}", r.rho),
                    format!("{:.6}", r.rho_total),
                    format!("{:.4}", r.epsilon),
                    format!("{:.4}", r.epsilon_simple),
                    fmt_opt(r.epsilon_remaining, 4),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:>w$}"))
                .collect();
            padded.join("  ").trim_end().to_owned() + "\n"
        };
        out.push_str(&line(&header.map(str::to_owned)));
        for row in &rows {
            out.push_str(&line(row));
        }
        if rows.is_empty() {
            out.push_str("(no release yet)\n");
        }
        out
    }

    /// One JSON object: the header fields and the `releases` array.
    pub fn to_json(&self) -> String {
        // Every field is a string, an integer or a finite float (ε and ρ of a verified
        // ledger), so serialisation cannot fail; fall back to an error object anyway.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{}\"}}", e.to_string().replace('"', "'")))
    }

    /// One self-contained HTML page with the table and an SVG plot of ε over rounds.
    pub fn to_html(&self) -> String {
        crate::report_html::render(self)
    }
}

/// The noise placement as the task file spells it.
pub fn placement_name(placement: NoisePlacement) -> &'static str {
    match placement {
        NoisePlacement::None => "none",
        NoisePlacement::Aggregator => "aggregator",
        NoisePlacement::Client => "client",
        NoisePlacement::Both => "both",
    }
}

/// The condition under which a task's DP guarantee holds (DESIGN §2).
pub fn trust_assumption(task: &TaskConfig, placement: NoisePlacement) -> String {
    let n = task.num_aggregators();
    let clients = task.privacy().min_honest_clients.unwrap_or(0);
    match placement {
        NoisePlacement::Aggregator => {
            format!("DP holds if at least one of the {n} aggregators is honest")
        }
        NoisePlacement::Client => {
            format!("DP holds if at least {clients} clients (min_honest_clients) are honest")
        }
        NoisePlacement::Both => format!(
            "DP holds if at least one of the {n} aggregators is honest, or if at least \
             {clients} clients (min_honest_clients) are honest"
        ),
        NoisePlacement::None => "no DP: noise = none".to_owned(),
    }
}

/// The sensitivity the task's accounting uses ([`cairn_protocol::privacy`]): per record
/// Δ = C·2^f + √d at record level; at client level the norm bound B with aggregator
/// noise (the proof bounds every report by B, or max(B, Δ) without a proof), the signal
/// bound Δ with client noise only.
fn sensitivity(task: &TaskConfig, placement: NoisePlacement) -> f64 {
    match (task.unit(), placement) {
        (PrivacyUnit::Record, _) | (_, NoisePlacement::Client) => signal_sensitivity(task),
        _ => cairn_protocol::privacy::aggregator_sensitivity(task),
    }
}

/// The unit of privacy in words.
pub fn unit_of_privacy(task: &TaskConfig) -> String {
    match task.unit() {
        PrivacyUnit::Client => "each organisation's whole participation (one report per \
                                 client and round; the ε bounds what the releases reveal \
                                 about any one client's data as a whole)"
            .to_owned(),
        PrivacyUnit::Record => format!(
            "each record of each organisation (records Poisson-sampled at q = {} per round, \
             at most {} per report; the ε bounds what the releases reveal about any one \
             record; an organisation whose sample exceeds the cap skips the round, which \
             adds (1 + e^ε)·T·Pr[Binomial(N + 1, q) > {}] to δ over T releases, N being \
             its records, which the aggregators do not know: `cairn dp cap`)",
            task.sampling_rate(),
            task.max_records_per_report(),
            task.max_records_per_report()
        ),
    }
}

/// The accountant in words.
pub fn accountant(task: &TaskConfig, placement: NoisePlacement) -> String {
    match (task.unit(), placement) {
        (_, NoisePlacement::None) => "none (no noise, no guarantee)".to_owned(),
        (PrivacyUnit::Record, _) => format!(
            "Rényi DP of the Poisson-subsampled {} (q = {}), integer orders \
             {}..={}, curves composed by addition, ε by the conversion of Balle et al. 2020 \
             (Theorem 21)",
            if matches!(placement, NoisePlacement::Client) {
                "distributed discrete Gaussian (the clients' shares summed; \
                 Kairouz–Liu–Steinke 2021, Theorem 1)"
            } else {
                "discrete Gaussian"
            },
            task.sampling_rate(),
            cairn_dp::rdp::MIN_ORDER,
            cairn_dp::rdp::MAX_ORDER
        ),
        (PrivacyUnit::Client, _) => {
            "zCDP (ρ adds up), ε by the tight conversion of Canonne–Kamath–Steinke 2020 \
             (Corollary 13)"
                .to_owned()
        }
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
///
/// The civil date comes from the day count by Hinnant's `civil_from_days` algorithm
/// ("chrono-Compatible Low-Level Date Algorithms", 2013), exact for the proleptic
/// Gregorian calendar.
pub fn rfc3339_utc(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        // Reference instants from `date -u -d @N +%FT%TZ` (GNU coreutils).
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339_utc(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
