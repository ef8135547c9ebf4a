//! `cairn.budget_report`: where a task's privacy budget went, from one node's verified
//! ledger (the report of `cairn budget report`).

use std::path::{Path, PathBuf};

use cairn_aggregator::budget_report::BudgetReport;
use cairn_aggregator::node_config::NodeConfig;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;
use crate::runtime::detached;

/// The budget report of the task at ``task_path`` from one node's ledger, as text in
/// ``format`` (``"table"``, ``"json"`` or ``"html"``).
///
/// ``node`` is the node's configuration file (``node-I.toml``) or its data folder
/// (``aggregator-I/data``, holding ``cairn.sqlite``); by default the leader's
/// (``node-0.toml`` beside the task file). The ledger's hash chain is verified first:
/// a broken chain raises ``CairnError`` naming the first entry that does not verify.
/// The report states the unit of privacy and the trust assumption.
#[pyfunction]
#[pyo3(signature = (task_path, node = None, format = "table"))]
pub fn budget_report(
    py: Python<'_>,
    task_path: PathBuf,
    node: Option<PathBuf>,
    format: &str,
) -> PyResult<String> {
    let render: fn(&BudgetReport) -> String = match format {
        "table" => BudgetReport::to_table,
        "json" => BudgetReport::to_json,
        "html" => BudgetReport::to_html,
        other => {
            return Err(PyValueError::new_err(format!(
                "format must be 'table', 'json' or 'html', got {other:?}"
            )));
        }
    };
    detached(py, || {
        let task = cairn_aggregator::cli::load_task(&task_path).map_err(|e| errors::config(&e))?;
        let node = node
            .unwrap_or_else(|| cairn_aggregator::cli::submit::sibling(&task_path, "node-0.toml"));
        let config = node_config(&task_path, &node)?;
        if task
            .aggregator_fingerprint(usize::from(config.index))
            .is_none()
        {
            return Err(errors::ConfigError::new_err(format!(
                "{} is aggregator {}, which the task {} does not have",
                node.display(),
                config.index,
                task_path.display()
            )));
        }
        let report = BudgetReport::from_node(&task, &config).map_err(|e| errors::other(&e))?;
        Ok(render(&report))
    })
}

/// The configuration of `node`: a node configuration file, or the one of the node
/// configurations beside the task file whose data folder `node` is.
fn node_config(task_path: &Path, node: &Path) -> PyResult<NodeConfig> {
    if node.is_file() {
        return NodeConfig::load(node).map_err(|e| errors::config(&e.into()));
    }
    let wanted = node
        .canonicalize()
        .map_err(|e| errors::ConfigError::new_err(format!("{}: {e}", node.display())))?;
    let folder = task_path.parent().unwrap_or(Path::new("."));
    let configs = cairn_aggregator::deploy::node_configs(folder).map_err(|e| errors::config(&e))?;
    configs
        .into_iter()
        .find(|c| c.data_dir.canonicalize().is_ok_and(|d| d == wanted))
        .ok_or_else(|| {
            errors::ConfigError::new_err(format!(
                "{} is not the data folder of any node-I.toml beside {}: pass the node's \
                 configuration file instead",
                node.display(),
                task_path.display()
            ))
        })
}
