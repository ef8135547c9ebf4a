//! Writing a ready local deployment (`cairn init`): keys, certificates, the task and
//! one configuration per aggregator.
//!
//! Layout of the folder (secrets are created with mode 0600 and never overwritten):
//!
//! ```text
//! task.toml            the task, shared by everyone (no secrets)
//! verify.key           the aggregators' shared verify key           (secret)
//! node-0.toml          the leader's configuration
//! node-1.toml …        the helpers' configurations
//! aggregator-I/        cert.pem, key.pem (secret), hpke.key (secret), data/
//! collector/           cert.pem, key.pem (secret), hpke.key (secret)
//! clients/client-K.toml  one credential per client                  (secret)
//! ```
//!
//! Every client is registered at every aggregator (in the aggregator's database under
//! `data/`) with the MAC key that aggregator checks ([`cairn_protocol::auth`]); more
//! clients can be added, or revoked, later with [`add_clients`] and [`revoke_client`]
//! (`cairn client add|revoke`).
//!
//! In a real deployment each operator generates its own keys and only public values
//! (certificate fingerprints, HPKE public keys) are exchanged; `cairn init` makes all of
//! them at once for a local trial.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cairn_protocol::auth::{ClientId, Credential};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::hpke::{HpkeSecretKey, generate_keypair};
use cairn_protocol::store::TaskStore;
use cairn_transport::Identity;
use rand_core::{CryptoRng, Rng};
use zeroize::Zeroizing;

use crate::node::read_secret_hex;
use crate::node_config::{MAX_CLIENT_CONNECTIONS_PER_ADDRESS, NodeConfig};
use crate::store::NodeStore;

/// What to deploy.
#[derive(Debug, Clone)]
pub struct InitParams {
    /// Number of aggregators (2..=16).
    pub aggregators: usize,
    /// Vector dimension.
    pub dimension: u32,
    /// L2 clipping norm of updates.
    pub clip: f64,
    /// Total ε budget (ignored with `noise = none`).
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// Rounds the budget is planned for (σ is calibrated so that many releases fit).
    pub rounds: u64,
    /// Where noise is added.
    pub noise: NoisePlacement,
    /// Fewest reports per released round.
    pub min_clients: u32,
    /// Most reports per round.
    pub max_clients: u32,
    /// Client credentials to write (each registered at every aggregator).
    pub clients: u32,
    /// Record level: `Some((sampling rate q, max records per report m))`; `None` for a
    /// client-level task.
    pub record_level: Option<(f64, u32)>,
    /// The leader's port; helper `i` listens on `base_port + i`.
    pub base_port: u16,
    /// Listen address of every node.
    pub host: std::net::IpAddr,
    /// Task name.
    pub name: String,
}

impl Default for InitParams {
    fn default() -> Self {
        Self {
            aggregators: 2,
            dimension: 100,
            clip: 1.0,
            epsilon: 4.0,
            delta: 1e-6,
            rounds: 10,
            noise: NoisePlacement::Aggregator,
            min_clients: 10,
            max_clients: 100_000,
            clients: 10,
            record_level: None,
            base_port: 7100,
            host: std::net::IpAddr::from([127, 0, 0, 1]),
            name: "cairn-task".into(),
        }
    }
}

/// The files of a deployment.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The folder.
    pub dir: PathBuf,
    /// `task.toml`.
    pub task: PathBuf,
    /// One `node-I.toml` per aggregator, leader first.
    pub nodes: Vec<PathBuf>,
    /// `clients/client-K.toml`, one credential per client.
    pub credentials: Vec<PathBuf>,
    /// `collector/`.
    pub collector_dir: PathBuf,
}

/// The collector's secrets in a deployment's `collector/` folder: its HPKE key (to
/// open the aggregate shares) and its TLS identity (the one the leader pins).
pub fn read_collector_keys(dir: &Path) -> anyhow::Result<(HpkeSecretKey, Identity)> {
    let key = HpkeSecretKey::from_bytes(
        read_secret_hex(&dir.join("hpke.key"))
            .with_context(|| format!("reading {}/hpke.key", dir.display()))?,
    );
    let identity = Identity::read_pem_files(&dir.join("cert.pem"), &dir.join("key.pem"))
        .with_context(|| format!("reading the collector's certificate in {}", dir.display()))?;
    Ok((key, identity))
}

/// Fixed-point bits used by `cairn init`: b = 16.
const BITS: u8 = 16;

/// Writes a deployment into `dir` (created; must be empty or absent).
pub fn init<R: CryptoRng + ?Sized>(
    dir: &Path,
    params: &InitParams,
    rng: &mut R,
) -> anyhow::Result<Deployment> {
    if !(2..=16).contains(&params.aggregators) {
        bail!("--aggregators must be between 2 and 16");
    }
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: refusing to overwrite a deployment",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let collector_dir = dir.join("collector");
    fs::create_dir_all(&collector_dir)?;
    let collector_identity = Identity::generate(rng, &["cairn-collector"])?;
    collector_identity.write_pem_files(
        &collector_dir.join("cert.pem"),
        &collector_dir.join("key.pem"),
    )?;
    let (collector_sk, collector_pk) = generate_keypair(rng);
    write_secret(
        &collector_dir.join("hpke.key"),
        &collector_sk.dangerous_to_hex(),
    )?;

    let mut verify = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(verify.as_mut());
    write_secret(
        &dir.join("verify.key"),
        &Zeroizing::new(hex::encode(verify.as_ref())),
    )?;

    let mut aggregators = String::new();
    let mut fingerprints = Vec::new();
    for i in 0..params.aggregators {
        let agg_dir = dir.join(format!("aggregator-{i}"));
        fs::create_dir_all(&agg_dir)?;
        let host = params.host.to_string();
        let identity = Identity::generate(rng, &[host.as_str(), "localhost"])?;
        identity.write_pem_files(&agg_dir.join("cert.pem"), &agg_dir.join("key.pem"))?;
        let (sk, pk) = generate_keypair(rng);
        write_secret(&agg_dir.join("hpke.key"), &sk.dangerous_to_hex())?;
        let port = params
            .base_port
            .checked_add(u16::try_from(i)?)
            .context("port out of range")?;
        let endpoint = SocketAddr::new(params.host, port);
        aggregators.push_str(&format!(
            "\n[[aggregators]]\nrole = \"{}\"\nendpoint = \"{endpoint}\"\ntls_cert_sha256 = \"{}\"\nhpke_public_key = \"{}\"\n",
            if i == 0 { "leader" } else { "helper" },
            hex::encode(identity.fingerprint()),
            pk.to_hex()
        ));
        fingerprints.push((endpoint, identity.fingerprint().to_owned()));
    }

    let task_text = task_toml(params, &collector_pk.to_hex(), &aggregators)?;
    let task_path = dir.join("task.toml");
    fs::write(&task_path, &task_text)?;

    let mut nodes = Vec::new();
    for (i, (endpoint, _)) in fingerprints.iter().enumerate() {
        let path = dir.join(format!("node-{i}.toml"));
        // A leader on a loopback address is reached by processes of this machine only:
        // one address is all of its clients, whose limits per address would only hold
        // them back (a load test, a local simulation of many clients).
        let local_clients = if i == 0 && endpoint.ip().is_loopback() {
            format!(
                "# Every client runs on this machine (the leader listens on a loopback address),\n\
                 # so one address is all of them: no limits per client address.\n\
                 client_connections_per_address = {MAX_CLIENT_CONNECTIONS_PER_ADDRESS}\n\
                 client_address_share_percent = 100\n"
            )
        } else {
            String::new()
        };
        fs::write(
            &path,
            format!(
                "# Aggregator {i} of task `{name}` ({role}). Paths are relative to this file.\n\
                 role = \"{role}\"\nindex = {i}\nlisten = \"{endpoint}\"\ntask = \"task.toml\"\n\
                 data_dir = \"aggregator-{i}/data\"\ntls_cert = \"aggregator-{i}/cert.pem\"\n\
                 tls_key = \"aggregator-{i}/key.pem\"\nhpke_key = \"aggregator-{i}/hpke.key\"\n\
                 verify_key = \"verify.key\"\ncollector_cert_sha256 = \"{collector}\"\n\
                 # Prometheus metrics on /metrics and a health check on /health (HTTP):\n\
                 # metrics_listen = \"127.0.0.1:{metrics_port}\"\n{local_clients}",
                metrics_port = 9100 + i,
                name = params.name,
                role = if i == 0 { "leader" } else { "helper" },
                collector = hex::encode(collector_identity.fingerprint()),
            ),
        )?;
        nodes.push(path);
    }
    let credentials = add_clients(dir, params.clients, rng)?;
    Ok(Deployment {
        dir: dir.to_owned(),
        task: task_path,
        nodes,
        credentials,
        collector_dir,
    })
}

/// The node configurations of a deployment folder, in aggregator order.
pub fn node_configs(dir: &Path) -> anyhow::Result<Vec<NodeConfig>> {
    let mut nodes = Vec::new();
    for i in 0.. {
        let path = dir.join(format!("node-{i}.toml"));
        if !path.exists() {
            break;
        }
        nodes.push(NodeConfig::load(&path)?);
    }
    if nodes.len() < 2 {
        bail!(
            "{} holds no deployment (node-0.toml, node-1.toml, … written by `cairn init`)",
            dir.display()
        );
    }
    Ok(nodes)
}

/// Writes `count` new client credentials into `DIR/clients/` (numbered after the
/// existing ones) and registers each at every aggregator of the deployment. Safe while
/// the nodes run: registration is one SQLite transaction per client and aggregator.
pub fn add_clients<R: CryptoRng + ?Sized>(
    dir: &Path,
    count: u32,
    rng: &mut R,
) -> anyhow::Result<Vec<PathBuf>> {
    let nodes = node_configs(dir)?;
    let task = load_task(&nodes[0].task)?;
    let clients_dir = dir.join("clients");
    fs::create_dir_all(&clients_dir)?;
    let mut next = 0u32;
    for entry in fs::read_dir(&clients_dir)? {
        let name = entry?.file_name();
        if let Some(k) = name
            .to_str()
            .and_then(|n| n.strip_prefix("client-"))
            .and_then(|n| n.strip_suffix(".toml"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            next = next.max(k + 1);
        }
    }
    let stores = nodes
        .iter()
        .map(|n| open_store(n, &task))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut written = Vec::new();
    for k in next..next + count {
        let credential = Credential::generate(task.id(), rng);
        let path = clients_dir.join(format!("client-{k}.toml"));
        write_secret(&path, &credential.dangerous_to_toml())?;
        for (node, store) in nodes.iter().zip(&stores) {
            store
                .add_client(credential.client_id(), &credential.key_for(node.index))
                .with_context(|| format!("registering a client at aggregator {}", node.index))?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Revokes a client at every aggregator of the deployment. `client` is a credential
/// file or a client id (32 hex digits). Returns the id.
pub fn revoke_client(dir: &Path, client: &str) -> anyhow::Result<ClientId> {
    let id = match ClientId::from_hex(client) {
        Ok(id) => id,
        Err(_) => {
            let text = Zeroizing::new(
                fs::read_to_string(client)
                    .with_context(|| format!("{client} is neither a client id nor a file"))?,
            );
            Credential::from_toml(&text)
                .with_context(|| format!("reading {client}"))?
                .client_id()
        }
    };
    let nodes = node_configs(dir)?;
    let task = load_task(&nodes[0].task)?;
    let mut known = false;
    for node in &nodes {
        known |= open_store(node, &task)?.revoke_client(id)?;
    }
    if !known {
        bail!("client {id} is not registered in this deployment");
    }
    Ok(id)
}

fn load_task(path: &Path) -> anyhow::Result<TaskConfig> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    TaskConfig::from_toml(&text).with_context(|| format!("loading {}", path.display()))
}

fn open_store(node: &NodeConfig, task: &TaskConfig) -> anyhow::Result<NodeStore> {
    NodeStore::open(node, task)
}

/// The task file: the largest fractional precision that validates, and σ calibrated
/// so that `rounds` releases fit the (ε, δ) budget.
fn task_toml(params: &InitParams, collector_pk: &str, aggregators: &str) -> anyhow::Result<String> {
    let noise = match params.noise {
        NoisePlacement::None => "none",
        NoisePlacement::Aggregator => "aggregator",
        NoisePlacement::Client => "client",
        NoisePlacement::Both => "both",
    };
    let mut last_error = None;
    for frac_bits in (0..=14u8).rev() {
        let base = format!(
            "name = \"{name}\"\ndimension = {d}\nbits = {BITS}\nfrac_bits = {frac_bits}\nclip_norm = {clip:?}\n\
             proof = \"carry-lift\"\njoint_rand_hash = \"blake3\"\nmin_clients = {min}\nmax_clients = {max}\nround_duration_secs = 3600\n",
            name = params.name,
            d = params.dimension,
            clip = params.clip,
            min = params.min_clients,
            max = params.max_clients,
        );
        let unit = match params.record_level {
            Some((q, m)) => {
                format!("unit = \"record\"\nsampling_rate = {q:?}\nmax_records_per_report = {m}\n")
            }
            None => String::new(),
        };
        let privacy = if params.noise == NoisePlacement::None {
            format!("[privacy]\nnoise = \"none\"\n{unit}")
        } else {
            // Sensitivity is the task's norm bound (client level) or the per-record
            // bound (record level), known only once the task parses: first parse
            // without noise to learn it, then calibrate σ.
            let probe = format!(
                "{base}\n[privacy]\nnoise = \"none\"\n{unit}\n[collector]\nhpke_public_key = \"{collector_pk}\"\n{aggregators}"
            );
            let probe = match TaskConfig::from_toml(&probe) {
                Ok(t) => t,
                Err(e) => {
                    last_error = Some(e.to_string());
                    continue;
                }
            };
            let sigma = match params.record_level {
                Some((q, _)) => record_level_sigma(params, &probe, q)?,
                None => cairn_dp::calibrate::sigma_for_epsilon(
                    params.epsilon,
                    params.delta,
                    probe.norm_bound() as f64,
                    params.rounds,
                )
                .context("calibrating σ for the budget")?,
            };
            let honest = if matches!(params.noise, NoisePlacement::Client | NoisePlacement::Both) {
                format!("min_honest_clients = {}\n", params.min_clients)
            } else {
                String::new()
            };
            format!(
                "[privacy]\nnoise = \"{noise}\"\nsigma = {sigma:?}\nepsilon = {:?}\ndelta = {:?}\n{honest}{unit}",
                params.epsilon, params.delta
            )
        };
        let text = format!(
            "# Written by `cairn init`. Every party of the task uses this file unchanged.\n{base}\n{privacy}\n\
             [collector]\nhpke_public_key = \"{collector_pk}\"\n{aggregators}"
        );
        match TaskConfig::from_toml(&text) {
            Ok(_) => return Ok(text),
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    bail!(
        "no fixed-point precision fits these parameters: {}",
        last_error.unwrap_or_default()
    )
}

/// σ for a record-level task: the subsampled discrete Gaussian's curve for aggregator
/// noise, the subsampled distributed discrete Gaussian's (KLS21, with `min_clients`
/// honest clients) for client noise, the larger σ of the two for both (each curve
/// falls as σ grows, so that σ meets both).
fn record_level_sigma(params: &InitParams, probe: &TaskConfig, q: f64) -> anyhow::Result<f64> {
    let sensitivity = cairn_protocol::privacy::signal_sensitivity(probe);
    let central = || {
        cairn_dp::rdp::sigma_for_epsilon_subsampled(
            params.epsilon,
            params.delta,
            sensitivity,
            q,
            params.rounds,
        )
        .context("calibrating σ for the budget")
    };
    let distributed = || {
        cairn_dp::rdp::sigma_for_epsilon_subsampled_distributed(
            params.epsilon,
            params.delta,
            sensitivity,
            u64::from(params.min_clients),
            u64::from(params.dimension),
            q,
            params.rounds,
        )
        .context("calibrating σ for the budget (client noise)")
    };
    match params.noise {
        NoisePlacement::Client => distributed(),
        NoisePlacement::Both => Ok(central()?.max(distributed()?)),
        _ => central(),
    }
}

/// A base port `p` such that UDP ports `p .. p + count` on `host` are free right now
/// (for tests, examples and `cairn demo`).
///
/// The ports are chosen *below* the kernel's ephemeral range (Linux:
/// `/proc/sys/net/ipv4/ip_local_port_range`, else the IANA range 49152–65535): every
/// socket bound to port 0 (each QUIC client endpoint, every probe) takes its port
/// from that range, so a port picked inside it could be handed to some client socket
/// between this check and the node's bind. Below it, only a process that binds an
/// explicit port can still take one first, which the node then reports as a bind
/// error.
///
/// A process does not hand out a port twice: the ports are free between this check
/// and the node's bind (and while a node restarts), so without that two deployments
/// made at once in one process (tests running in parallel, a notebook) could both be
/// given them. The reservation lasts as long as the process (a few bytes per port;
/// about twenty thousand ports to choose from); a process that has taken most of them
/// gets free ports it handed out before. Separate processes choosing ports at the
/// same moment can still meet; the loser's node then fails to bind.
pub fn free_base_port(host: std::net::IpAddr, count: u16) -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    // A poisoned lock only means a panic elsewhere while holding it; the set is intact.
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (low, _) = ephemeral_port_range();
    let floor = 10_000u16;
    let ceiling = low.saturating_sub(count);
    if count == 0 || ceiling <= floor {
        bail!("no room for {count} ports below the ephemeral range (which starts at {low})");
    }
    let mut rng = cairn_client::os_rng()?;
    let span = u32::from(ceiling - floor);
    // Ports handed out before are skipped, unless a long-lived process has taken so
    // many that 200 draws find none: then any free ports will do, as without the set.
    for attempt in 0..400 {
        // Uniform enough for spreading attempts (the modulo bias is below 2^-16).
        let base = floor + (rng.next_u32() % span) as u16;
        if attempt < 200 && handed_out.range(base..base + count).next().is_some() {
            continue;
        }
        let held: Result<Vec<_>, _> = (0..count)
            .map(|i| std::net::UdpSocket::bind(SocketAddr::new(host, base + i)))
            .collect();
        if held.is_ok() {
            handed_out.extend(base..base + count);
            return Ok(base);
        }
    }
    bail!("no {count} consecutive free UDP ports found below port {low}")
}

/// The kernel's range of ports for sockets bound to port 0, `(first, last)`.
fn ephemeral_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(str::parse::<u16>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .filter(|(low, high)| low <= high)
        .unwrap_or((49_152, 65_535))
}

/// Writes a secret file: created new (never overwriting), mode 0600 on Unix.
pub(crate) fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// A port a client socket may get from the kernel (port 0) is never chosen, so a
    /// client endpoint bound between the choice and the node's bind cannot take it.
    #[test]
    fn free_ports_lie_below_the_ephemeral_range() {
        let host = std::net::IpAddr::from([127, 0, 0, 1]);
        let (low, _) = ephemeral_port_range();
        for count in [1u16, 3, 8] {
            for _ in 0..20 {
                let base = free_base_port(host, count).unwrap();
                assert!(
                    base >= 10_000 && base + count <= low,
                    "{base}+{count} vs {low}"
                );
                for i in 0..count {
                    std::net::UdpSocket::bind(SocketAddr::new(host, base + i)).unwrap();
                }
            }
        }
        assert!(free_base_port(host, 0).is_err());
    }

    /// Two tests of one process that each take ports and start their nodes a little
    /// later must never be given the same port: between the check and the bind, the
    /// ports are free, so the check alone cannot tell (a node then failed to start
    /// with "Address already in use" in CI). Nothing is bound between the calls here,
    /// exactly that window.
    #[test]
    fn ports_handed_out_in_one_process_never_overlap() {
        let host = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut taken = std::collections::HashSet::new();
        // A quarter of the room below the ephemeral range, whatever this host's is.
        let (low, _) = ephemeral_port_range();
        let rounds = usize::from(low.saturating_sub(10_003)) / 12;
        for _ in 0..rounds {
            let base = free_base_port(host, 3).unwrap();
            for port in base..base + 3 {
                assert!(taken.insert(port), "port {port} handed out twice");
            }
        }
    }

    /// A record-level task with noise at the clients (or both) gets the σ whose
    /// subsampled distributed discrete Gaussian curve meets the budget, and not much
    /// more.
    #[test]
    fn record_level_client_noise_is_calibrated_on_the_distributed_curve() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let mut sigmas = Vec::new();
        for noise in [
            NoisePlacement::Aggregator,
            NoisePlacement::Client,
            NoisePlacement::Both,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let params = InitParams {
                noise,
                record_level: Some((0.05, 4)),
                min_clients: 3,
                rounds: 200,
                ..InitParams::default()
            };
            let d = init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
            let task = TaskConfig::from_toml(&fs::read_to_string(&d.task).unwrap()).unwrap();
            let privacy = cairn_protocol::privacy::Privacy::for_task(&task).unwrap();
            assert_eq!(privacy.placement(), noise);
            let curve = privacy.rdp_per_release().unwrap();
            let (spent, _) = curve.times(200).epsilon(1e-6).unwrap();
            assert!(spent <= 4.0 && spent > 3.99, "{noise:?}: ε = {spent}");
            // In units of the per-record sensitivity (client noise must fit in b bits
            // beside the records, so its task may have a smaller f).
            let per_delta =
                task.privacy().sigma.unwrap() / cairn_protocol::privacy::signal_sensitivity(&task);
            sigmas.push(per_delta);
        }
        // KLS21's correction only adds (here it is negligible): client noise needs the
        // central σ/Δ, up to the calibration's relative precision of 1e−6.
        assert!(sigmas[1] >= sigmas[0] * (1.0 - 2e-6), "{sigmas:?}");
        assert!(sigmas[2] >= sigmas[1] * (1.0 - 2e-6), "{sigmas:?}");
        assert!(sigmas[2] <= sigmas[0] * 1.001, "{sigmas:?}");
    }

    #[test]
    fn writes_a_deployment_whose_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("deploy");
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let params = InitParams {
            aggregators: 3,
            ..InitParams::default()
        };
        let d = init(&target, &params, &mut rng).unwrap();
        let task = TaskConfig::from_toml(&fs::read_to_string(&d.task).unwrap()).unwrap();
        assert_eq!(task.num_aggregators(), 3);
        assert!(task.privacy().sigma.unwrap() > 0.0);
        // New tasks hash the joint randomness with BLAKE3 (a fifth of SHA-256's time
        // on the leader's share).
        assert_eq!(
            task.joint_rand_hash(),
            cairn_protocol::config::JointRandHash::Blake3
        );
        for node in &d.nodes {
            crate::node::NodeSetup::load(node).unwrap();
        }
        // A leader on a loopback address serves this machine's processes only: no
        // limits per client address. On another address, the defaults hold.
        let leader = crate::node_config::NodeConfig::load(&d.nodes[0]).unwrap();
        assert_eq!(
            leader.client_connections_per_address,
            MAX_CLIENT_CONNECTIONS_PER_ADDRESS
        );
        assert_eq!(leader.client_address_share_percent, 100);
        let public = InitParams {
            host: std::net::IpAddr::from([192, 0, 2, 10]),
            ..params.clone()
        };
        let elsewhere = init(&dir.path().join("public"), &public, &mut rng).unwrap();
        let leader = fs::read_to_string(&elsewhere.nodes[0]).unwrap();
        assert!(
            !leader.contains("client_connections_per_address"),
            "{leader}"
        );
        // A second init into the same folder refuses.
        assert!(init(&target, &params, &mut rng).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for c in &d.credentials {
                let mode = fs::metadata(c).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "secrets are private to their owner");
            }
        }
    }
}
