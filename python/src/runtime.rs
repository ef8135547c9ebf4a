//! The async runtime every call runs on, and the guard that keeps Rust panics out of
//! Python.
//!
//! One multi-threaded tokio runtime per process, started on first use. A call releases
//! the GIL and blocks its own Python thread on the runtime (`block_on`), so Python
//! threads submit concurrently while the runtime's workers move the bytes. Nodes of a
//! [`crate::deployment::LocalDeployment`] run on the same runtime, in the background.
//! A call waiting on the network ([`wait`]) still answers Ctrl-C.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use pyo3::prelude::*;

use crate::errors::{forked, internal};

/// The runtime and the id of the process that started it.
static RUNTIME: OnceLock<Result<(tokio::runtime::Runtime, u32), String>> = OnceLock::new();

/// The process's runtime.
///
/// # Errors
/// `cairn.CairnError` if the runtime could not be started (no threads available), or
/// in a process forked from the one that started it: a fork copies neither the
/// runtime's threads (a call would wait for ever) nor anything fit to reuse (a client's
/// random generator, copied, would give the child the parent's next report seeds).
pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    let (runtime, started_by) = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("cairn-runtime")
                .build()
                .map(|rt| (rt, std::process::id()))
                .map_err(|e| format!("starting the async runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| internal(e.clone()))?;
    if *started_by != std::process::id() {
        return Err(forked(format!(
            "this process was forked from process {started_by}, which had started Cairn: \
             Cairn's network threads and its clients' random generators do not survive a \
             fork. Use Cairn in the parent only, or start the child with multiprocessing's \
             'spawn' or 'forkserver' method and create the Cairn objects there"
        )));
    }
    Ok(runtime)
}

/// How often a call waiting on the runtime looks for a Python signal (Ctrl-C).
const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `work` to its end on the process's runtime, from a thread that released the
/// GIL ([`detached`]), looking every 100 ms for a Python signal: when a handler raises
/// (`KeyboardInterrupt` for Ctrl-C), `work` is dropped and that exception raised.
/// (Python runs signal handlers on its main thread only; elsewhere the look finds
/// nothing.) Dropping is safe for every SDK call: a submission cut short keeps its
/// prepared report for the next attempt, and a collect is answered again as before.
///
/// # Errors
/// [`runtime`]'s, and the signal handler's exception.
pub fn wait<F: std::future::Future>(work: F) -> PyResult<F::Output> {
    runtime()?.block_on(async {
        let mut work = std::pin::pin!(work);
        let mut ticks = tokio::time::interval(SIGNAL_POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = ticks.tick() => Python::attach(|py| py.check_signals())?,
            }
        }
    })
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
