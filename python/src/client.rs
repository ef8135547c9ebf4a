//! `cairn.Client`: one data holder's client of one task.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_client::sdk::{self, read_credential};
use cairn_protocol::config::PrivacyUnit;
use pyo3::prelude::*;

use crate::arrays;
use crate::errors;
use crate::ints::Unsigned;
use crate::runtime::{detached, runtime, wait};

/// A client of one task, holding its own credential.
///
/// Build it with ``Client.from_files(task_path, credential_path)``. ``submit`` clips
/// the update to the task's L2 norm ``C``, quantises it, secret-shares it among the
/// aggregators, proves it norm-bounded in zero knowledge and uploads it; it returns
/// the report id once the leader has stored the report. Each aggregator accepts one
/// report per client per round.
///
/// A prepared report is kept in ``state_dir`` (default: ``<credential>.state`` beside
/// the credential file, as ``cairn submit`` does) until it is acknowledged, so a process
/// that crashed mid-upload re-sends the very same report for that round.
///
/// Methods release the GIL while they prepare and send, so threads submit concurrently;
/// their uploads then share one connection to the leader, which takes one request at a
/// time from a client connection unless its `client_streams` allows more.
#[pyclass(module = "cairn", frozen)]
pub struct Client {
    inner: Arc<sdk::Client>,
    task_path: PathBuf,
}

#[pymethods]
impl Client {
    /// Loads a client from a task file and a credential file (``clients/client-K.toml``
    /// of ``cairn init``).
    ///
    /// Raises ``ConfigError`` (the task file is missing or invalid, or the credential
    /// is for another task) or ``OSError`` (the credential file cannot be read).
    #[staticmethod]
    #[pyo3(signature = (task_path, credential_path, state_dir = None))]
    fn from_files(
        py: Python<'_>,
        task_path: PathBuf,
        credential_path: PathBuf,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        Self::load(py, task_path, credential_path, state_dir)
    }

    /// Submits ``update`` (a 1-D ``float32`` or ``float64`` array of the task's
    /// dimension) for ``round``; returns the report id (hex).
    ///
    /// The values are copied once (under the GIL, so no other thread can change them
    /// mid-proof); ``float64`` values are rounded to ``float32``. Raises ``ValueError`` (wrong dtype, shape or dimension, NaN or infinity:
    /// nothing is sent), ``Refused`` (e.g. ``code == 'already_submitted'`` or
    /// ``'round_closed'``) or ``NetworkError``.
    fn submit(
        &self,
        py: Python<'_>,
        round: Unsigned<u32>,
        update: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let Unsigned(round) = round;
        let values = arrays::update(update, self.inner.task().dimension())?;
        let inner = &self.inner;
        detached(py, || {
            let id = wait(inner.submit(round, &values))?.map_err(errors::sdk)?;
            Ok(id.to_string())
        })
    }

    /// Record level: submits the sum of this round's sampled records (``per_record``:
    /// a 2-D array, one row of the task's dimension per record), each row clipped to the
    /// task's ``C`` first. Sampling is the caller's (Poisson at the task's
    /// ``sampling_rate``); ``sample_and_submit_records`` does both. Raises
    /// ``ValueError`` for more rows than ``max_records_per_report`` (the client skips the
    /// round, for good: a later call for it raises ``ValueError`` without sending) or a
    /// client-level task.
    fn submit_records(
        &self,
        py: Python<'_>,
        round: Unsigned<u32>,
        per_record: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let Unsigned(round) = round;
        let values = self.checked_records(per_record)?;
        let inner = &self.inner;
        detached(py, || {
            let id = wait(inner.submit_records(round, &values))?.map_err(errors::sdk)?;
            Ok(id.to_string())
        })
    }

    /// Record level, the client step of DP-SGD: Poisson-samples the rows of
    /// ``all_records`` at the task's rate (OS-seeded CSPRNG), clips each sampled row to
    /// ``C`` and submits their sum. Returns ``(report_id, sampled)``; the sampled count
    /// is private to this client (divide the released sum by ``q·N``, not by counts).
    /// ``sampled`` is ``None`` when the state folder held a report prepared for the
    /// round by an earlier attempt: that report is sent, and this call's sample dropped.
    /// A sample larger than ``max_records_per_report`` raises ``ValueError`` and skips
    /// the round for good (a later call for it raises ``ValueError`` without sampling
    /// again); NaN or infinite values in any row raise ``ValueError`` before sampling.
    fn sample_and_submit_records(
        &self,
        py: Python<'_>,
        round: Unsigned<u32>,
        all_records: &Bound<'_, PyAny>,
    ) -> PyResult<(String, Option<usize>)> {
        let Unsigned(round) = round;
        let values = self.checked_records(all_records)?;
        let inner = &self.inner;
        detached(py, || {
            let (id, sampled) =
                wait(inner.sample_and_submit_records(round, &values))?.map_err(errors::sdk)?;
            Ok((id.to_string(), sampled))
        })
    }

    /// For ``cairn.bench``: submits, for ``round``, the vector ``x[i] = (i % 7 − 3)·scale``
    /// built in Rust, through the same SDK call as ``submit`` — the baseline that
    /// measures what the Python layer adds.
    fn _submit_generated(
        &self,
        py: Python<'_>,
        round: Unsigned<u32>,
        scale: f32,
    ) -> PyResult<String> {
        let Unsigned(round) = round;
        let d = self.inner.task().dimension();
        let inner = &self.inner;
        detached(py, || {
            let update: Vec<f32> = (0..d)
                .map(|i| (f32::from(u8::try_from(i % 7).unwrap_or(0)) - 3.0) * scale)
                .collect();
            let id = wait(inner.submit(round, &update))?.map_err(errors::sdk)?;
            Ok(id.to_string())
        })
    }

    /// The task's vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.task().dimension()
    }

    /// The task's L2 clipping norm ``C`` (per update, or per record).
    #[getter]
    fn clip(&self) -> f64 {
        self.inner.task().clip_norm()
    }

    /// Fractional bits ``f`` of the fixed-point encoding: values are scaled by ``2**f``
    /// and rounded randomly (unbiased), so multiples of ``2**-f`` are encoded exactly.
    #[getter]
    fn frac_bits(&self) -> u8 {
        self.inner.task().frac_bits()
    }

    /// ``"client"`` or ``"record"``: the unit of privacy of the task.
    #[getter]
    fn unit(&self) -> &'static str {
        match self.inner.task().unit() {
            PrivacyUnit::Record => "record",
            _ => "client",
        }
    }

    /// This client's id (hex).
    #[getter]
    fn client_id(&self) -> String {
        self.inner.client_id().to_hex()
    }

    /// The task file this client was loaded from.
    #[getter]
    fn task_path(&self) -> PathBuf {
        self.task_path.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "cairn.Client(client_id={:?}, dim={}, unit={:?}, task={:?})",
            self.client_id(),
            self.dim(),
            self.unit(),
            self.task_path.display().to_string()
        )
    }
}

impl Client {
    /// Loads a client from its task and credential files (Python's
    /// `Client.from_files` and `Deployment.client`).
    pub fn load(
        py: Python<'_>,
        task_path: PathBuf,
        credential_path: PathBuf,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        detached(py, || {
            let task =
                cairn_aggregator::cli::load_task(&task_path).map_err(|e| errors::config(&e))?;
            let credential = read_credential(&credential_path).map_err(errors::sdk)?;
            let state_dir = state_dir.unwrap_or_else(|| credential_path.with_extension("state"));
            let rt = runtime()?;
            let inner = rt
                .block_on(
                    sdk::Client::builder(task)
                        .credential(credential)
                        .state_dir(state_dir)
                        .build(),
                )
                .map_err(errors::sdk)?;
            Ok(Client {
                inner: Arc::new(inner),
                task_path,
            })
        })
    }

    fn checked_records(&self, value: &Bound<'_, PyAny>) -> PyResult<zeroize::Zeroizing<Vec<f32>>> {
        arrays::records(value, self.inner.task().dimension())
    }
}
