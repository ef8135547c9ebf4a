//! The exception hierarchy of `cairn` and the mapping of Rust errors onto it.
//!
//! ```text
//! CairnError                 every error Cairn raises (besides ValueError/OSError below)
//! ├── ConfigError            a task, credential, key or node file is missing or invalid
//! ├── NetworkError           the aggregators could not be reached, after all retries
//! ├── Refused                an aggregator refused the request (`.code` says why)
//! │   └── BudgetExceeded     the release would exceed the task's privacy budget
//! └── InternalError          a bug in Cairn (a caught Rust panic among them)
//! ```
//!
//! An update the task cannot take (wrong dimension or dtype, NaN, too many records) is a
//! `ValueError`, raised before anything is sent; a file that cannot be read is an
//! `OSError` (`FileNotFoundError`, …). Every exception carries the Rust error's message.

use cairn_client::sdk::SdkError;
use cairn_protocol::client::ClientError;
use cairn_protocol::messages::ErrorCode;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    cairn,
    CairnError,
    PyException,
    "Every error Cairn raises, besides ValueError (a bad update) and OSError (a file)."
);
pyo3::create_exception!(
    cairn,
    ConfigError,
    CairnError,
    "A task, credential, key or node file is missing or invalid."
);
pyo3::create_exception!(
    cairn,
    NetworkError,
    CairnError,
    "The aggregators could not be reached, after all retries."
);
pyo3::create_exception!(
    cairn,
    Refused,
    CairnError,
    "An aggregator refused the request; `.code` is the protocol's reason (e.g. 'round_closed')."
);
pyo3::create_exception!(
    cairn,
    BudgetExceeded,
    Refused,
    "The release would exceed the task's privacy budget; nothing was released."
);
pyo3::create_exception!(
    cairn,
    InternalError,
    CairnError,
    "A bug in Cairn (a Rust panic is caught and raised as this); please report it."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CairnError", py.get_type::<CairnError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("Refused", py.get_type::<Refused>())?;
    m.add("BudgetExceeded", py.get_type::<BudgetExceeded>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// `cairn.InternalError(message)`.
pub fn internal(message: String) -> PyErr {
    InternalError::new_err(message)
}

/// `cairn.CairnError(message)`: Cairn used in a process forked after it started.
pub fn forked(message: String) -> PyErr {
    CairnError::new_err(message)
}

/// `cairn.ConfigError` with an error's whole chain of causes.
pub fn config(error: &anyhow::Error) -> PyErr {
    ConfigError::new_err(format!("{error:#}"))
}

/// `cairn.CairnError` with an error's whole chain of causes.
pub fn other(error: &anyhow::Error) -> PyErr {
    CairnError::new_err(format!("{error:#}"))
}

/// A refusal with its protocol code (`.code` on the exception).
fn refused(code: &str, message: String, budget: bool) -> PyErr {
    let err = if budget {
        BudgetExceeded::new_err(message)
    } else {
        Refused::new_err(message)
    };
    Python::attach(|py| {
        // Setting an attribute on a fresh exception instance cannot fail short of
        // memory exhaustion; the message alone still says everything.
        let _ = err.value(py).setattr("code", code);
    });
    err
}

/// Maps an SDK error onto the hierarchy (module docs).
pub fn sdk(error: SdkError) -> PyErr {
    let message = error.to_string();
    match error {
        SdkError::Task(_) | SdkError::Missing(_) | SdkError::Credential(_) => {
            ConfigError::new_err(message)
        }
        SdkError::Io(e) => PyOSError::new_err((e.raw_os_error().unwrap_or(0), message)),
        SdkError::Prepare(e) => match e {
            ClientError::WrongDimension { .. }
            | ClientError::NonFinite(_)
            | ClientError::WrongUnit(_)
            | ClientError::TooManyRecords { .. } => PyValueError::new_err(message),
            ClientError::Task(_) | ClientError::Credential(_) => ConfigError::new_err(message),
            _ => CairnError::new_err(message),
        },
        SdkError::Transport(_) => NetworkError::new_err(message),
        SdkError::Refused { code, .. } => {
            refused(code.as_str(), message, code == ErrorCode::BudgetExceeded)
        }
        SdkError::AlreadySubmitted { .. } => refused("already_submitted", message, false),
        // The same refusal as the sample's first `TooManyRecords`, remembered.
        SdkError::RoundSkipped { .. } => PyValueError::new_err(message),
        SdkError::Rng(_) => InternalError::new_err(message),
        _ => CairnError::new_err(message),
    }
}
