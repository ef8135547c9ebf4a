//! `cairn.LocalDeployment`: a whole deployment (as ``cairn init`` writes it) whose
//! aggregator nodes run inside this Python process, on loopback.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use cairn_aggregator::deploy::{self, Deployment, InitParams, free_base_port};
use cairn_aggregator::node::{NodeSetup, RunningNode, start};
use cairn_protocol::config::NoisePlacement;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::client::Client;
use crate::collector::Collector;
use crate::errors;
use crate::ints::Unsigned;
use crate::runtime::{detached, runtime};

/// `max_records` of a record-level deployment when none is given: a client whose
/// Poisson sample holds more records skips the round (never truncates).
const DEFAULT_MAX_RECORDS: u32 = 100;

/// How long in-flight requests may take to finish when the nodes stop.
const GRACE: Duration = Duration::from_secs(2);

/// A local deployment: keys, certificates, the task, one node configuration per
/// aggregator and one credential per client, written the way ``cairn init`` writes them
/// into ``directory`` (or a temporary folder, removed on exit), with every aggregator
/// node running in this process on loopback while the ``with`` block lasts.
///
/// The nodes listen on the ports in ``task_path``, so the ``cairn`` command line
/// (``cairn submit``, ``cairn collect``, ``cairn budget report``) reaches them too.
///
/// Example::
///
///     with cairn.LocalDeployment(dim=100, clients=5, min_clients=3, noise="none") as d:
///         for i in range(3):
///             cairn.Client.from_files(d.task_path, d.credentials[i]).submit(0, update)
///         release = d.collector().collect(0)
///
/// ``noise`` is ``"aggregator"`` (each aggregator adds discrete Gaussian noise: DP holds
/// if one aggregator is honest), ``"client"``, ``"both"`` or ``"none"`` (exact sums, no
/// DP). ``epsilon`` and ``delta`` are the task's whole budget, planned for ``rounds``
/// releases. ``unit="record"`` makes a record-level task (DP-SGD across silos): give
/// ``sampling_rate`` (per-record Poisson rate) and ``max_records`` (most records one
/// report may sum).
#[pyclass(module = "cairn", frozen)]
pub struct LocalDeployment {
    deployment: Deployment,
    /// The temporary folder, when no ``directory`` was given (removed on close).
    temporary: Mutex<Option<tempfile::TempDir>>,
    nodes: Mutex<Vec<RunningNode>>,
    /// Set by `close`: the files may be gone, every method refuses.
    closed: std::sync::atomic::AtomicBool,
    /// The process that made it: a process forked from it holds copies of the nodes'
    /// handles and of the temporary folder's guard, which are not its own to stop or
    /// remove.
    owner: u32,
}

#[pymethods]
impl LocalDeployment {
    #[new]
    #[pyo3(signature = (
        dim,
        clients,
        aggregators = Unsigned(2),
        noise = "aggregator",
        epsilon = 4.0,
        delta = 1e-6,
        rounds = Unsigned(10),
        min_clients = None,
        clip = 1.0,
        unit = "client",
        sampling_rate = None,
        max_records = None,
        directory = None,
        max_clients = Unsigned(100_000),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        dim: Unsigned<u32>,
        clients: Unsigned<u32>,
        aggregators: Unsigned<usize>,
        noise: &str,
        epsilon: f64,
        delta: f64,
        rounds: Unsigned<u64>,
        min_clients: Option<Unsigned<u32>>,
        clip: f64,
        unit: &str,
        sampling_rate: Option<f64>,
        max_records: Option<Unsigned<u32>>,
        directory: Option<PathBuf>,
        max_clients: Unsigned<u32>,
    ) -> PyResult<Self> {
        let (Unsigned(dim), Unsigned(clients), Unsigned(aggregators)) = (dim, clients, aggregators);
        let (Unsigned(rounds), Unsigned(max_clients)) = (rounds, max_clients);
        let (min_clients, max_records) = (min_clients.map(|v| v.0), max_records.map(|v| v.0));
        let noise = match noise {
            "aggregator" => NoisePlacement::Aggregator,
            "client" => NoisePlacement::Client,
            "both" => NoisePlacement::Both,
            "none" => NoisePlacement::None,
            other => {
                return Err(PyValueError::new_err(format!(
                    "noise must be 'aggregator', 'client', 'both' or 'none', got {other:?}"
                )));
            }
        };
        let record_level = match (unit, sampling_rate, max_records) {
            ("client", None, None) => None,
            ("client", _, _) => {
                return Err(PyValueError::new_err(
                    "sampling_rate and max_records go with unit='record'",
                ));
            }
            ("record", Some(q), m) => Some((q, m.unwrap_or(DEFAULT_MAX_RECORDS))),
            ("record", None, _) => {
                return Err(PyValueError::new_err(
                    "unit='record' needs sampling_rate (the per-record Poisson rate, in (0, 1])",
                ));
            }
            (other, _, _) => {
                return Err(PyValueError::new_err(format!(
                    "unit must be 'client' or 'record', got {other:?}"
                )));
            }
        };
        if clients == 0 {
            return Err(PyValueError::new_err("clients must be at least 1"));
        }
        if !(2..=16).contains(&aggregators) {
            return Err(PyValueError::new_err(format!(
                "aggregators must be between 2 and 16, got {aggregators}"
            )));
        }
        if let Some(m) = min_clients
            && (m == 0 || m > clients)
        {
            return Err(PyValueError::new_err(format!(
                "min_clients must be between 1 and clients ({clients}), got {m}: a round \
                 needs that many distinct clients to be released"
            )));
        }
        detached(py, move || {
            let host = std::net::IpAddr::from([127, 0, 0, 1]);
            let (temporary, dir) = match directory {
                Some(dir) => (None, dir),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("cairn-deployment-")
                        .tempdir()
                        .map_err(|e| errors::other(&e.into()))?;
                    let dir = t.path().join("deployment");
                    (Some(t), dir)
                }
            };
            // Checked above: 2..=16.
            let aggregator_count = u16::try_from(aggregators).unwrap_or(16);
            let params = InitParams {
                aggregators,
                dimension: dim,
                clip,
                epsilon,
                delta,
                rounds,
                noise,
                min_clients: min_clients.unwrap_or(clients),
                max_clients,
                clients,
                record_level,
                base_port: free_base_port(host, aggregator_count).map_err(|e| errors::other(&e))?,
                host,
                name: "cairn-python".into(),
            };
            let mut rng = cairn_client::os_rng().map_err(|e| errors::internal(e.to_string()))?;
            let deployment =
                deploy::init(&dir, &params, &mut rng).map_err(|e| errors::config(&e))?;
            Ok(Self {
                deployment,
                temporary: Mutex::new(temporary),
                nodes: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
                owner: std::process::id(),
            })
        })
    }

    /// Starts the aggregator nodes (``__enter__`` does); a no-op if they run.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.check_open()?;
        detached(py, || {
            let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
            if !nodes.is_empty() {
                return Ok(());
            }
            let rt = runtime()?;
            for path in &self.deployment.nodes {
                let setup = NodeSetup::load(path).map_err(|e| errors::config(&e))?;
                let node = rt.block_on(start(setup)).map_err(|e| errors::other(&e))?;
                nodes.push(node);
            }
            Ok(())
        })
    }

    /// Stops the nodes (requests in flight finish first) and, for a temporary
    /// deployment, removes its folder. ``__exit__`` does this.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.let_go_if_forked() {
            return Ok(());
        }
        detached(py, || {
            // One lock across stopping and removing: a second `close` (another thread)
            // waits, then finds nothing left to do.
            let mut temporary = self.temporary.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            self.stop_nodes()?;
            if let Some(t) = temporary.take() {
                t.close().map_err(|e| errors::other(&e.into()))?;
            }
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>, py: Python<'_>) -> PyResult<Py<Self>> {
        slf.get().start(py)?;
        Ok(slf)
    }

    #[pyo3(signature = (exc_type, _exc, _tb))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let closed = self.close(py);
        // While an exception is on its way out, a cleanup error must not replace it.
        if exc_type.is_none() {
            closed?;
        }
        Ok(false)
    }

    /// The deployment folder.
    #[getter]
    fn directory(&self) -> PathBuf {
        self.deployment.dir.clone()
    }

    /// ``task.toml``: the task, shared by everyone (no secrets).
    #[getter]
    fn task_path(&self) -> PathBuf {
        self.deployment.task.clone()
    }

    /// One credential file per client (``clients/client-K.toml``), each for one client.
    #[getter]
    fn credentials(&self) -> Vec<PathBuf> {
        self.deployment.credentials.clone()
    }

    /// One node configuration per aggregator (``node-I.toml``), leader first; pass one to
    /// ``cairn.budget_report`` or ``cairn budget report --node``.
    #[getter]
    fn node_configs(&self) -> Vec<PathBuf> {
        self.deployment.nodes.clone()
    }

    /// The ``collector/`` key folder.
    #[getter]
    fn collector_dir(&self) -> PathBuf {
        self.deployment.collector_dir.clone()
    }

    /// The collector of this deployment.
    fn collector(&self, py: Python<'_>) -> PyResult<Collector> {
        self.check_open()?;
        detached(py, || {
            Collector::load(&self.deployment.task, &self.deployment.collector_dir)
        })
    }

    /// The client holding credential ``index`` (``Client.from_files`` on its files).
    fn client(&self, py: Python<'_>, index: Unsigned<usize>) -> PyResult<Client> {
        let Unsigned(index) = index;
        self.check_open()?;
        let credential = self.deployment.credentials.get(index).ok_or_else(|| {
            PyValueError::new_err(format!(
                "client {index} does not exist: the deployment has {} clients",
                self.deployment.credentials.len()
            ))
        })?;
        Client::load(py, self.deployment.task.clone(), credential.clone(), None)
    }

    fn __repr__(&self) -> String {
        format!(
            "cairn.LocalDeployment(directory={:?}, aggregators={}, clients={})",
            self.deployment.dir.display().to_string(),
            self.deployment.nodes.len(),
            self.deployment.credentials.len()
        )
    }
}

impl LocalDeployment {
    fn check_open(&self) -> PyResult<()> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(errors::CairnError::new_err(
                "this LocalDeployment is closed (its nodes are stopped, a temporary folder \
                 is removed): make a new one",
            ));
        }
        Ok(())
    }

    /// In a process forked from the owner: gives up the copied node handles and folder
    /// guard without stopping or removing anything (they are the parent's, and its
    /// nodes and files are still in use) and closes this copy. Says whether it did.
    fn let_go_if_forked(&self) -> bool {
        if std::process::id() == self.owner {
            return false;
        }
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let temporary = self
            .temporary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let nodes = std::mem::take(&mut *self.nodes.lock().unwrap_or_else(|e| e.into_inner()));
        std::mem::forget((temporary, nodes));
        true
    }

    fn stop_nodes(&self) -> PyResult<()> {
        let nodes: Vec<RunningNode> =
            std::mem::take(&mut *self.nodes.lock().unwrap_or_else(|e| e.into_inner()));
        if nodes.is_empty() {
            return Ok(());
        }
        let rt = runtime()?;
        rt.block_on(async {
            for node in nodes {
                node.shutdown(GRACE).await;
            }
        });
        Ok(())
    }
}

impl Drop for LocalDeployment {
    /// Nodes still running when the object is collected are stopped (``close`` was not
    /// called); the temporary folder goes with its `TempDir`.
    fn drop(&mut self) {
        if self.let_go_if_forked() {
            return;
        }
        // Collected with the GIL held: release it while the nodes finish (up to the
        // grace period each), so other Python threads go on.
        let this = &*self;
        Python::attach(|py| py.detach(|| this.stop_nodes().is_ok()));
    }
}
