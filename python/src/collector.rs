//! `cairn.Collector`, `cairn.Release` and `cairn.Receipt`.

use std::path::PathBuf;

use cairn_client::sdk;
use cairn_protocol::collector::Collection;
use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::prelude::*;

use crate::errors;
use crate::ints::Unsigned;
use crate::runtime::{detached, runtime, wait};

/// The collector of a task: closes a round and opens the released noisy sum.
///
/// Build it with ``Collector.from_files(task_path, collector_dir)`` (the ``collector/``
/// folder of ``cairn init``: its TLS identity, which the leader pins, and its HPKE key).
/// ``collect(round)`` asks the leader to finish the round's aggregation, waits while
/// jobs are pending, and returns a ``Release``. It raises ``Refused`` when the round has
/// fewer than ``min_clients`` valid reports (``code == 'not_enough_reports'``),
/// ``BudgetExceeded`` when any aggregator's ledger refuses the release, and
/// ``NetworkError`` when the leader cannot be reached after the retries. Collecting a
/// released round again returns the same release (no new budget is spent).
#[pyclass(module = "cairn", frozen)]
pub struct Collector {
    inner: sdk::Collector,
}

impl Collector {
    /// Loads the collector of the task at `task_path` from `collector_dir`.
    pub fn load(task_path: &std::path::Path, collector_dir: &std::path::Path) -> PyResult<Self> {
        let task = cairn_aggregator::cli::load_task(task_path).map_err(|e| errors::config(&e))?;
        let (key, identity) = cairn_aggregator::deploy::read_collector_keys(collector_dir)
            .map_err(|e| errors::config(&e))?;
        let inner = runtime()?
            .block_on(
                sdk::Collector::builder(task)
                    .hpke_key(key)
                    .identity(identity)
                    .build(),
            )
            .map_err(errors::sdk)?;
        Ok(Self { inner })
    }
}

#[pymethods]
impl Collector {
    /// Loads the collector from a task file and its key folder (default: ``collector/``
    /// beside the task file).
    #[staticmethod]
    #[pyo3(signature = (task_path, collector_dir = None))]
    fn from_files(
        py: Python<'_>,
        task_path: PathBuf,
        collector_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        detached(py, || {
            let dir = collector_dir
                .unwrap_or_else(|| cairn_aggregator::cli::submit::sibling(&task_path, "collector"));
            Self::load(&task_path, &dir)
        })
    }

    /// Closes and releases ``round``; returns the ``Release``.
    fn collect(&self, py: Python<'_>, round: Unsigned<u32>) -> PyResult<Release> {
        let Unsigned(round) = round;
        let collection = detached(py, || wait(self.inner.collect(round))?.map_err(errors::sdk))?;
        Release::from_collection(py, collection)
    }
}

/// A released round: the noisy sum and the budget the aggregators spent on it.
#[pyclass(module = "cairn", frozen, get_all)]
pub struct Release {
    /// The round.
    round: u32,
    /// Reports in the sum (distinct clients, at least the task's ``min_clients``).
    count: u32,
    /// The noisy sum of the clipped updates (``numpy.ndarray`` of ``float64``).
    sum: Py<PyArray1<f64>>,
    /// ρ (zCDP) this release cost, by the most conservative ledger (0 for record-level
    /// tasks, which account in RDP).
    rho_spent: f64,
    /// ε (at the task's δ) spent by the task so far, this release included.
    epsilon_spent: f64,
    /// ε left in the budget (``inf`` without noise).
    epsilon_remaining: f64,
    /// Each aggregator's own receipt, leader first (every aggregator enforces its ledger).
    receipts: Vec<Py<Receipt>>,
    /// Whether the aggregators' ledgers disagree (worth a warning and a budget report).
    ledgers_disagree: bool,
}

impl Release {
    fn from_collection(py: Python<'_>, c: Collection) -> PyResult<Self> {
        let receipt = c.receipt();
        let disagree = c.ledgers_disagree();
        let receipts = c
            .receipts
            .iter()
            .enumerate()
            .map(|(aggregator, r)| {
                Py::new(
                    py,
                    Receipt {
                        aggregator,
                        rho_spent: r.rho_spent,
                        rho_total: r.rho_total,
                        epsilon_total: r.epsilon_total,
                        epsilon_remaining: r.epsilon_remaining,
                    },
                )
            })
            .collect::<PyResult<_>>()?;
        Ok(Self {
            round: c.round,
            count: c.count,
            sum: c.sum.into_pyarray(py).unbind(),
            rho_spent: receipt.map_or(0.0, |r| r.rho_spent),
            epsilon_spent: receipt.map_or(0.0, |r| r.epsilon_total),
            epsilon_remaining: receipt.map_or(f64::INFINITY, |r| r.epsilon_remaining),
            receipts,
            ledgers_disagree: disagree,
        })
    }
}

#[pymethods]
impl Release {
    /// The released mean over the reports (``sum / count``). For record-level tasks
    /// divide the sum by the expected batch ``q·N`` instead (the counts are private).
    fn mean<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let n = f64::from(self.count.max(1));
        let sum = self.sum.bind(py).readonly();
        let mean: Vec<f64> = sum.as_array().iter().map(|v| v / n).collect();
        Ok(mean.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "cairn.Release(round={}, count={}, epsilon_spent={:.4}, epsilon_remaining={:.4})",
            self.round, self.count, self.epsilon_spent, self.epsilon_remaining
        )
    }
}

/// One aggregator's budget receipt for a release.
#[pyclass(module = "cairn", frozen, get_all)]
pub struct Receipt {
    /// The aggregator (0 = leader).
    aggregator: usize,
    /// ρ this release cost by its ledger.
    rho_spent: f64,
    /// ρ spent by the task so far by its ledger.
    rho_total: f64,
    /// ε spent so far by its ledger.
    epsilon_total: f64,
    /// ε left by its ledger (``inf`` without noise).
    epsilon_remaining: f64,
}

#[pymethods]
impl Receipt {
    fn __repr__(&self) -> String {
        format!(
            "cairn.Receipt(aggregator={}, rho_total={:.6}, epsilon_total={:.4}, epsilon_remaining={:.4})",
            self.aggregator, self.rho_total, self.epsilon_total, self.epsilon_remaining
        )
    }
}
