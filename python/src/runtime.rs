//! The async runtime every call runs on, and the guard that keeps Rust panics out of
//! Python.
//!
//! One multi-threaded tokio runtime per process, started on first use. A call releases
//! the GIL and blocks its own Python thread on the runtime (`block_on`), so Python
//! threads submit concurrently while the runtime's workers move the bytes. Nodes of a
//! [`crate::deployment::LocalDeployment`] run on the same runtime, in the background.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use pyo3::prelude::*;

use crate::errors::internal;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The process's runtime.
///
/// # Errors
/// `cairn.CairnError` if the runtime could not be started (no threads available).
pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("cairn-runtime")
                .build()
                .map_err(|e| format!("starting the async runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| internal(e.clone()))
}

/// Runs `work` without the GIL and with panics caught: a panic becomes
/// `cairn.InternalError` (a bug in Cairn, reported with its message) instead of
/// unwinding into the interpreter.
pub fn detached<T: Send>(py: Python<'_>, work: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    py.detach(|| guarded(work))
}

/// Runs `work` (holding the GIL) with panics caught, as [`detached`] does.
pub fn guarded<T>(work: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(internal(format!(
                "internal error (a bug in Cairn, please report it): {message}"
            )))
        }
    }
}

/// Panics inside the guard, so that the tests can check a panic arrives as
/// `cairn.InternalError` and the interpreter carries on.
#[pyfunction]
pub fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    detached(py, || -> PyResult<()> {
        panic!("deliberate panic for the tests");
    })
}
