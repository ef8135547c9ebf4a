//! `cairn._cairn`: the native module of the `cairn` Python package (PyO3).
//!
//! A thin layer: every call converts Python values, releases the GIL, runs the Rust SDK
//! (`cairn-client`) or the deployment and report code of `cairn-aggregator` on one
//! shared async runtime, and converts the result or the error back. Nothing here makes
//! a protocol decision.
//!
//! - [`runtime`]: the shared tokio runtime and the panic guard (no Rust panic crosses
//!   into Python).
//! - [`errors`]: the exception hierarchy (`cairn.CairnError` and its kinds) and the
//!   mapping of every Rust error onto it.
//! - [`arrays`]: NumPy arrays in (float32 borrowed without a copy, float64 converted).
//! - [`client`]: `cairn.Client` (submit updates and records).
//! - [`collector`]: `cairn.Collector` and `cairn.Release`.
//! - [`deployment`]: `cairn.LocalDeployment`, aggregator nodes in this process.
//! - [`dp`]: the privacy calculators `cairn.dp.epsilon` and `cairn.dp.sigma`.
//! - [`report`]: the function `cairn.budget_report`.

use pyo3::prelude::*;

/// mimalloc for the module's own allocations (the SDK's report buffers, the nodes of a
/// `LocalDeployment`): glibc's malloc returns report-sized buffers to the kernel and
/// faults them in again for every report (`Cargo.toml`). Python's objects keep
/// Python's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod arrays;
pub mod client;
pub mod collector;
pub mod deployment;
pub mod dp;
pub mod errors;
pub mod ints;
pub mod report;
pub mod runtime;

/// The module `cairn._cairn`; the package `cairn` re-exports it.
#[pymodule]
fn _cairn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<client::Client>()?;
    m.add_class::<collector::Collector>()?;
    m.add_class::<collector::Release>()?;
    m.add_class::<collector::Receipt>()?;
    m.add_class::<deployment::LocalDeployment>()?;
    m.add_function(wrap_pyfunction!(dp::epsilon, m)?)?;
    m.add_function(wrap_pyfunction!(dp::sigma, m)?)?;
    m.add_function(wrap_pyfunction!(dp::poisson_sample, m)?)?;
    m.add_function(wrap_pyfunction!(dp::cap_delta, m)?)?;
    m.add_function(wrap_pyfunction!(report::budget_report, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_panic_for_tests, m)?)?;
    Ok(())
}
