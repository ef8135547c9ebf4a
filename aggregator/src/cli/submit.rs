//! `cairn submit`: one client's update for one round (`--input`), or, for a record-level
//! task, the sum of its sampled records (`--records`: each record is clipped to the
//! task's `C` before the sum).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cairn_client::sdk::{Client, SdkError, read_credential};
use cairn_protocol::messages::ErrorCode;
use clap::Args;

use super::load_task;

/// Arguments of `cairn submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The task file.
    #[arg(long)]
    pub task: PathBuf,
    /// The round the update belongs to.
    #[arg(long)]
    pub round: u32,
    /// A JSON file holding one array of numbers (the update; its length is the task's
    /// dimension). For a client-level task.
    #[arg(long, required_unless_present = "records", conflicts_with = "records")]
    pub input: Option<PathBuf>,
    /// A JSON file holding an array of records, each an array of numbers of the task's
    /// dimension: this round's sampled records (Poisson sampling at the task's rate is
    /// the caller's). For a record-level task (`unit = "record"`).
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// This client's credential file (`clients/client-K.toml` written by `cairn init`
    /// or `cairn client add`). Every client has its own; each aggregator accepts one
    /// report per client per round.
    #[arg(long)]
    pub credential: PathBuf,
    /// Where the prepared report is kept until the leader acknowledges it, so that a
    /// retry after a crash re-sends the same report (default: `<credential>.state`
    /// beside the credential file).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Runs `cairn submit`.
pub fn run(args: SubmitArgs) -> anyhow::Result<String> {
    let task = load_task(&args.task)?;
    let credential = read_credential(&args.credential)
        .with_context(|| format!("reading the credential {}", args.credential.display()))?;
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| args.credential.with_extension("state"));
    let (update, records) = match (&args.input, &args.records) {
        (Some(path), _) => (read_update(path)?, false),
        (None, Some(path)) => (read_records(path, task.dimension())?, true),
        (None, None) => bail!("give --input (an update) or --records (sampled records)"),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        let client = Client::builder(task)
            .credential(credential)
            .state_dir(&state_dir)
            .build()
            .await?;
        if records {
            client.submit_records(args.round, &update).await
        } else {
            client.submit(args.round, &update).await
        }
    });
    let report_id = match outcome {
        Ok(id) => id,
        Err(SdkError::Refused {
            code: ErrorCode::AlreadySubmitted,
            detail,
            ..
        }) => bail!(
            "refused: this client already submitted a report for round {} ({detail})",
            args.round
        ),
        Err(e @ SdkError::AlreadySubmitted { .. }) => bail!("refused locally: {e}"),
        Err(e) => return Err(e.into()),
    };
    Ok(format!(
        "submitted report {report_id} for round {}",
        args.round
    ))
}

/// Reads a JSON array of numbers.
pub fn read_update(path: &Path) -> anyhow::Result<Vec<f32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let values: Vec<f64> = serde_json::from_str(&text)
        .with_context(|| format!("{} must hold one JSON array of numbers", path.display()))?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let f = v as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                bail!("value {i} of {} is not a finite f32", path.display())
            }
        })
        .collect()
}

/// Reads a JSON array of records (arrays of `d` numbers), flattened row-major.
pub fn read_records(path: &Path, d: usize) -> anyhow::Result<Vec<f32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<Vec<f64>> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} must hold one JSON array of records (arrays of numbers)",
            path.display()
        )
    })?;
    let mut out = Vec::with_capacity(rows.len() * d);
    for (r, row) in rows.iter().enumerate() {
        if row.len() != d {
            bail!(
                "record {r} of {} has {} values, the task's dimension is {d}",
                path.display(),
                row.len()
            );
        }
        for (i, v) in row.iter().enumerate() {
            let f = *v as f32;
            if !f.is_finite() {
                bail!(
                    "value {i} of record {r} of {} is not a finite f32",
                    path.display()
                );
            }
            out.push(f);
        }
    }
    Ok(out)
}

/// `name` in the folder of `file`.
pub fn sibling(file: &Path, name: &str) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(name)
}
