//! `cairn submit`: one client's update for one round.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cairn_client::sdk::Client;
use cairn_protocol::ids::ClientToken;
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
    /// dimension).
    #[arg(long)]
    pub input: PathBuf,
    /// The client token file [default: client.token next to the task file].
    #[arg(long)]
    pub token: Option<PathBuf>,
}

/// Runs `cairn submit`.
pub fn run(args: SubmitArgs) -> anyhow::Result<String> {
    let task = load_task(&args.task)?;
    let token_path = args
        .token
        .unwrap_or_else(|| sibling(&args.task, "client.token"));
    let token_text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&token_path)
            .with_context(|| format!("reading {}", token_path.display()))?,
    );
    let Some(token) = ClientToken::from_hex(&token_text) else {
        bail!(
            "{} does not hold a token (64 hex digits)",
            token_path.display()
        );
    };
    let update = read_update(&args.input)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report_id = runtime.block_on(async {
        let client = Client::builder(task).token(token).build().await?;
        client.submit(args.round, &update).await
    })?;
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

/// `name` in the folder of `file`.
pub fn sibling(file: &Path, name: &str) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(name)
}
