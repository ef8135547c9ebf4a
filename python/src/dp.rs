//! `cairn.dp.epsilon` and `cairn.dp.sigma`: the calculators of `cairn dp`, with the same
//! accountants (zCDP of the discrete Gaussian without sampling; RDP of the
//! Poisson-subsampled discrete Gaussian with `sampling_rate < 1`). The formulas and
//! their citations are in `cairn-dp` (`dp/src/zcdp.rs`, `dp/src/rdp.rs`).

use cairn_aggregator::cli::dp::{DpReport, NoiseArg, Target, client_noise, report};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::ints::Unsigned;
use crate::runtime::guarded;

fn to_dict<'py>(py: Python<'py>, r: &DpReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epsilon", r.epsilon)?;
    d.set_item("delta", r.delta)?;
    d.set_item("sigma", r.sigma)?;
    d.set_item("sensitivity", r.sensitivity)?;
    d.set_item("rounds", r.rounds)?;
    d.set_item("sampling_rate", r.sampling_rate)?;
    d.set_item("accountant", r.accountant)?;
    d.set_item("rho", r.rho)?;
    d.set_item("epsilon_simple", r.epsilon_simple)?;
    d.set_item("order", r.order)?;
    d.set_item("noise", r.noise)?;
    d.set_item("min_honest_clients", r.min_honest_clients)?;
    d.set_item("dim", r.dim)?;
    Ok(d)
}

/// `Some((n_min, d))` for client noise, as `cairn dp --noise` reads it.
fn placement(
    noise: &str,
    min_honest_clients: Option<u64>,
    dim: Option<u64>,
) -> anyhow::Result<Option<(u64, u64)>> {
    let noise = match noise {
        "aggregator" => NoiseArg::Aggregator,
        "client" => NoiseArg::Client,
        other => anyhow::bail!("noise must be \"aggregator\" or \"client\", got {other:?}"),
    };
    client_noise(noise, min_honest_clients, dim)
}

/// The report of `cairn dp` for `target`, as a dict; `ValueError` for invalid
/// parameters.
#[allow(clippy::too_many_arguments)]
fn calculate<'py>(
    py: Python<'py>,
    target: Target,
    sensitivity: f64,
    delta: f64,
    rounds: u64,
    sampling_rate: f64,
    noise: &str,
    min_honest_clients: Option<u64>,
    dim: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let report = guarded(|| {
        placement(noise, min_honest_clients, dim)
            .and_then(|client| report(target, sensitivity, rounds, delta, sampling_rate, client))
            .map_err(|e| PyValueError::new_err(format!("{e:#}")))
    })?;
    to_dict(py, &report)
}

/// ε (at ``delta``) of ``rounds`` releases of discrete Gaussian noise ``sigma`` with L2
/// sensitivity ``sensitivity`` (both in quantised units), each on a Poisson sample at
/// ``sampling_rate`` (1: no sampling).
///
/// With ``noise="client"`` (and ``min_honest_clients``, ``dim``) the noise is added by
/// at least ``min_honest_clients`` clients, ``sigma/√n`` each: the (subsampled)
/// distributed discrete Gaussian, always with the RDP accountant.
///
/// Returns a dict: ``epsilon``, ``accountant`` (``"zcdp"`` or ``"rdp"``), ``rho`` (zCDP),
/// ``order`` (RDP), ``epsilon_simple`` (the Bun–Steinke bound, zCDP), ``noise`` and the
/// inputs. Raises ``ValueError`` for invalid parameters.
#[pyfunction]
#[pyo3(signature = (*, sigma, sensitivity, delta, rounds = Unsigned(1), sampling_rate = 1.0, noise = "aggregator", min_honest_clients = None, dim = None))]
#[allow(clippy::too_many_arguments)]
pub fn epsilon<'py>(
    py: Python<'py>,
    sigma: f64,
    sensitivity: f64,
    delta: f64,
    rounds: Unsigned<u64>,
    sampling_rate: f64,
    noise: &str,
    min_honest_clients: Option<Unsigned<u64>>,
    dim: Option<Unsigned<u64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (rounds, min_honest_clients, dim) =
        (rounds.0, min_honest_clients.map(|v| v.0), dim.map(|v| v.0));
    calculate(
        py,
        Target::EpsilonOf { sigma },
        sensitivity,
        delta,
        rounds,
        sampling_rate,
        noise,
        min_honest_clients,
        dim,
    )
}

/// The smallest ``sigma`` whose ``rounds`` releases spend at most ``epsilon`` at
/// ``delta``, for L2 sensitivity ``sensitivity`` and Poisson ``sampling_rate``; returns
/// the same dict as ``epsilon`` (``noise``, ``min_honest_clients`` and ``dim`` as there).
/// Raises ``ValueError`` for invalid parameters.
#[pyfunction]
#[pyo3(signature = (*, epsilon, delta, sensitivity, rounds = Unsigned(1), sampling_rate = 1.0, noise = "aggregator", min_honest_clients = None, dim = None))]
#[allow(clippy::too_many_arguments)]
pub fn sigma<'py>(
    py: Python<'py>,
    epsilon: f64,
    delta: f64,
    sensitivity: f64,
    rounds: Unsigned<u64>,
    sampling_rate: f64,
    noise: &str,
    min_honest_clients: Option<Unsigned<u64>>,
    dim: Option<Unsigned<u64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (rounds, min_honest_clients, dim) =
        (rounds.0, min_honest_clients.map(|v| v.0), dim.map(|v| v.0));
    calculate(
        py,
        Target::SigmaFor { epsilon },
        sensitivity,
        delta,
        rounds,
        sampling_rate,
        noise,
        min_honest_clients,
        dim,
    )
}

/// The largest population `poisson_sample` takes (10^8 records: at rate 1 the
/// indices alone take 800 MB).
const MAX_POISSON_N: usize = 100_000_000;

/// A Poisson sample of ``range(n)`` at rate ``rate`` (each index kept independently with
/// probability ``rate``, by exact Bernoulli coins from a ChaCha20 CSPRNG seeded by the
/// operating system): the sampling that record-level accounting assumes. Returns the
/// kept indices, ascending, as a ``numpy.ndarray`` of ``int64``.
#[pyfunction]
pub fn poisson_sample<'py>(
    py: Python<'py>,
    n: usize,
    rate: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    // The sample's indices are kept in memory: bound n so that a mistaken huge value
    // is a ValueError, not an allocation failure that aborts the interpreter.
    if n > MAX_POISSON_N {
        return Err(PyValueError::new_err(format!(
            "poisson_sample: n = {n} is more than {MAX_POISSON_N} records"
        )));
    }
    let kept = crate::runtime::detached(py, || {
        let mut rng = cairn_client::os_rng().map_err(|e| crate::errors::internal(e.to_string()))?;
        cairn_dp::sample::poisson_subsample(n, rate, &mut rng)
            .map_err(|e| PyValueError::new_err(format!("poisson_sample: {e}")))
    })?;
    let kept: Vec<i64> = kept
        .into_iter()
        .map(|i| i64::try_from(i).unwrap_or(i64::MAX))
        .collect();
    Ok(numpy::IntoPyArray::into_pyarray(kept, py))
}

/// The δ that capping a report at ``max_records`` sampled records adds, when an
/// organisation whose Poisson sample is larger skips the round (which depends on its
/// data): ``(1 + e^epsilon) · rounds · P[Binomial(records + 1, rate) > max_records]``,
/// with ``records`` the most records one organisation holds and ``epsilon`` the total
/// the accountant grants. The guarantee is then (ε, δ + this); the proof is in
/// ``dp/src/cap.rs``. Raises ``ValueError`` for invalid parameters.
#[pyfunction]
#[pyo3(signature = (*, records, rate, max_records, rounds, epsilon))]
pub fn cap_delta(
    records: Unsigned<u64>,
    rate: f64,
    max_records: Unsigned<u64>,
    rounds: Unsigned<u64>,
    epsilon: f64,
) -> PyResult<f64> {
    cairn_dp::cap_delta(records.0, rate, max_records.0, rounds.0, epsilon)
        .map_err(|e| PyValueError::new_err(format!("cap_delta: {e}")))
}
