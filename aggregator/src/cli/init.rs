//! `cairn init DIR`: write a ready local deployment and say what to run next.

use std::path::PathBuf;

use anyhow::Context;
use cairn_protocol::config::NoisePlacement;
use clap::{Args, ValueEnum};

use crate::deploy::{self, InitParams};

/// Where differential-privacy noise is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Noise {
    /// Each aggregator adds discrete Gaussian noise: DP if one aggregator is honest.
    Aggregator,
    /// Each client adds its share of the noise: DP if `--min-clients` clients are honest.
    Client,
    /// Both of the above.
    Both,
    /// No noise: exact sums, no DP guarantee (for testing).
    None,
}

impl From<Noise> for NoisePlacement {
    fn from(n: Noise) -> Self {
        match n {
            Noise::Aggregator => NoisePlacement::Aggregator,
            Noise::Client => NoisePlacement::Client,
            Noise::Both => NoisePlacement::Both,
            Noise::None => NoisePlacement::None,
        }
    }
}

/// Arguments of `cairn init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write the deployment into (created; must be empty or absent).
    pub dir: PathBuf,
    /// Number of aggregators (2 to 16); the first is the leader.
    #[arg(long, default_value_t = 2)]
    pub aggregators: usize,
    /// Dimension of the vectors clients submit.
    #[arg(long, default_value_t = 100)]
    pub dim: u32,
    /// L2 norm every update is clipped to before quantisation.
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Total privacy budget ε over all rounds (at δ).
    #[arg(long, default_value_t = 4.0)]
    pub epsilon: f64,
    /// δ of the (ε, δ) guarantee.
    #[arg(long, default_value_t = 1e-6)]
    pub delta: f64,
    /// Rounds the budget must last: σ is chosen so that this many releases fit.
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// Where noise is added.
    #[arg(long, value_enum, default_value_t = Noise::Aggregator)]
    pub noise: Noise,
    /// Fewest valid reports (from distinct clients) a round needs before it can be
    /// released.
    #[arg(long, default_value_t = 10)]
    pub min_clients: u32,
    /// Client credentials to write (`DIR/clients/client-K.toml`), each registered at
    /// every aggregator; add more later with `cairn client add`.
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// The unit of privacy: `client` (each client's whole participation) or `record`
    /// (each record, with Poisson sampling: DP-SGD across silos; needs
    /// `--sampling-rate` and `--max-records`).
    #[arg(long, value_enum, default_value_t = Unit::Client)]
    pub unit: Unit,
    /// Record level: the per-record Poisson sampling rate per round, in (0, 1].
    #[arg(long)]
    pub sampling_rate: Option<f64>,
    /// Record level: the most sampled records one report may sum (a client with more
    /// skips the round).
    #[arg(long)]
    pub max_records: Option<u32>,
    /// The leader's UDP port on 127.0.0.1; helper i listens on port + i.
    #[arg(long, default_value_t = 7100)]
    pub port: u16,
}

/// The unit of privacy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Unit {
    /// Each client's whole participation.
    Client,
    /// Each record of each client (Poisson-sampled DP-SGD).
    Record,
}

/// Runs `cairn init`.
pub fn run(args: InitArgs) -> anyhow::Result<String> {
    let record_level = match (args.unit, args.sampling_rate, args.max_records) {
        (Unit::Client, None, None) => None,
        (Unit::Client, _, _) => {
            anyhow::bail!("--sampling-rate and --max-records go with --unit record")
        }
        (Unit::Record, Some(q), Some(m)) => {
            if !(q > 0.0 && q <= 1.0) {
                anyhow::bail!("--sampling-rate must be in (0, 1] (got {q})");
            }
            if m == 0 {
                anyhow::bail!("--max-records must be at least 1");
            }
            Some((q, m))
        }
        (Unit::Record, _, _) => {
            anyhow::bail!("--unit record needs --sampling-rate Q and --max-records M")
        }
    };
    let params = InitParams {
        aggregators: args.aggregators,
        dimension: args.dim,
        clip: args.clip,
        epsilon: args.epsilon,
        delta: args.delta,
        rounds: args.rounds,
        noise: args.noise.into(),
        min_clients: args.min_clients,
        clients: args.clients,
        record_level,
        base_port: args.port,
        ..InitParams::default()
    };
    let mut rng = cairn_client::os_rng()?;
    let d = deploy::init(&args.dir, &params, &mut rng).context("writing the deployment")?;
    let mut out = format!(
        "Wrote a {}-aggregator deployment to {}\n\nNext:\n",
        params.aggregators,
        d.dir.display()
    );
    for (i, node) in d.nodes.iter().enumerate() {
        out.push_str(&format!(
            "  cairn node --config {}    # {} (its own terminal)\n",
            node.display(),
            if i == 0 { "the leader" } else { "a helper" }
        ));
    }
    if let Some(first) = d.credentials.first() {
        out.push_str(&format!(
            "  cairn submit --task {} --credential {} --round 0 --input update.json   # a JSON array of {} numbers\n",
            d.task.display(),
            first.display(),
            params.dimension
        ));
    }
    out.push_str(&format!(
        "  cairn collect --task {} --round 0 --output sum.json\n",
        d.task.display()
    ));
    out.push_str(
        "\nSecrets (*.key, key.pem, clients/*.toml) are readable by you only; keep them so.\n\
         Each client needs its own credential: hand clients/client-K.toml to client K only.\n",
    );
    Ok(out)
}
