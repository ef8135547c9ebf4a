//! Cairn's own figures at one dimension, measured on the sans-I/O state machines
//! (no network): client prepare, upload size, each aggregator's verify+aggregate time
//! per report, leader↔helper bytes per report and the collector's decode time.
//!
//! The deployment (task, keys) comes from `cairn init`'s writer with noise off, so the
//! released sum can be checked exactly against the plaintext sum of the quantised
//! inputs (the `correct` flag in the output).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cairn_aggregator::deploy::{InitParams, init};
use cairn_aggregator::node::read_secret_hex;
use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::Message;
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::store::MemoryStore;
use cairn_protocol::store::TaskStore;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::timing::{median_time, ms};

/// Cairn's figures at one dimension.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CairnFigures {
    /// Dimension d.
    pub(crate) d: usize,
    /// Reports aggregated for the per-report figures.
    pub(crate) reports: usize,
    /// Threads each aggregator verifies and aggregates a job's reports on.
    pub(crate) threads: usize,
    /// `Client::prepare_upload` (clip → encode → share → prove → seal), median, ms.
    pub(crate) client_prepare_ms: f64,
    /// Encoded `UploadRequest` bytes.
    pub(crate) upload_bytes: usize,
    /// `upload_bytes / d`.
    pub(crate) upload_bytes_per_param: f64,
    /// Leader: prepare + decide + accumulate (`start_job` + `decide_job` + `commit_job`),
    /// per report, ms.
    pub(crate) leader_ms_per_report: f64,
    /// Helper: open + prepare + accumulate (`handle_job_init` + `handle_job_continue`),
    /// per report, ms.
    pub(crate) helper_ms_per_report: f64,
    /// The slower aggregator's per-report time, ms.
    pub(crate) aggregator_ms_per_report: f64,
    /// Encoded job init + response + continue + continue-response, per report.
    pub(crate) leader_helper_bytes_per_report: f64,
    /// Of which the job init (it forwards the helper's sealed share), per report.
    pub(crate) job_init_bytes_per_report: f64,
    /// Decoding the collect response and opening it (HPKE, unshard, fixed point), ms.
    pub(crate) collector_decode_ms: f64,
    /// The released sum equals the plaintext sum and every report was counted.
    pub(crate) correct: bool,
}

/// A random update of L2 norm about `clip / 2` (coordinates uniform in ±clip/√d).
pub(crate) fn random_update(rng: &mut ChaCha20Rng, d: usize, clip: f64) -> Vec<f32> {
    let a = clip / (d as f64).sqrt();
    (0..d)
        .map(|_| {
            let u = (rng.next_u32() as f64) / f64::from(u32::MAX);
            ((2.0 * u - 1.0) * a) as f32
        })
        .collect()
}

/// Reports to aggregate at dimension `d`: enough to average, bounded memory and time.
pub(crate) fn reports_for(d: usize, quick: bool) -> usize {
    let budget = if quick { 200_000 } else { 4_000_000 };
    (budget / d).clamp(3, 32)
}

/// Measures every Cairn figure at dimension `d` with `reports` reports, both
/// aggregators verifying and aggregating on `parallelism`'s threads (the caller keeps
/// it over its calls, as a node keeps its threads for its life).
pub(crate) fn measure(
    d: usize,
    reports: usize,
    runs: usize,
    dir: &Path,
    parallelism: &Parallelism,
) -> anyhow::Result<CairnFigures> {
    let mut rng = ChaCha20Rng::from_seed([d as u8 ^ 0x5a; 32]);
    let parallelism = parallelism.clone();
    // A fresh deployment folder per call (`init` refuses to overwrite one).
    let deploy_dir = (0..)
        .map(|k| dir.join(format!("inmem-{d}-{k}")))
        .find(|p| !p.exists())
        .context("a deployment folder")?;
    let params = InitParams {
        aggregators: 2,
        dimension: u32::try_from(d)?,
        noise: NoisePlacement::None,
        min_clients: u32::try_from(reports)?,
        ..InitParams::default()
    };
    let dep = init(&deploy_dir, &params, &mut rng)?;
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&dep.task)?)
        .map_err(|e| anyhow::anyhow!("task: {e}"))?;
    let credential = cairn_client::sdk::read_credential(&dep.credentials[0])?;
    let verify = read_secret_hex(&deploy_dir.join("verify.key"))?;
    let helper_key =
        HpkeSecretKey::from_bytes(read_secret_hex(&deploy_dir.join("aggregator-1/hpke.key"))?);
    let collector_key =
        HpkeSecretKey::from_bytes(read_secret_hex(&dep.collector_dir.join("hpke.key"))?);

    let mut leader = Leader::new(task.clone(), Seed::from_bytes(verify), MemoryStore::new())
        .map_err(|e| anyhow::anyhow!("leader: {e:?}"))?
        .with_parallelism(parallelism.clone());
    let mut helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes(verify),
        helper_key,
        MemoryStore::new(),
    )
    .map_err(|e| anyhow::anyhow!("helper: {e:?}"))?
    .with_parallelism(parallelism.clone());
    let collector = Collector::new(task.clone(), collector_key)
        .map_err(|e| anyhow::anyhow!("collector: {e}"))?;
    let client = register(&leader, &helper, &task, credential)?;
    let limits = leader.limits();
    let clip = task.clip_norm();

    // Client prepare: the whole pipeline from f32.
    let update = random_update(&mut rng, d, clip);
    let mut failure = None;
    let prepare = median_time(runs, || {
        if let Err(e) = client.prepare_upload(0, &update, &mut rng) {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        bail!("prepare_upload failed: {e}");
    }
    let upload_bytes = upload_len(&client, &update, &mut rng)?;

    // Reports from known quantised inputs, so the released sum can be checked.
    let now = Time(1_000);
    let mut expected = vec![0i64; d];
    for _ in 0..reports {
        // One client per report: each aggregator takes one report per client and round.
        let credential = Credential::generate(task.id(), &mut rng);
        let client = register(&leader, &helper, &task, credential)?;
        let u = random_update(&mut rng, d, clip);
        let x = client
            .quantise(&u, &mut rng)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (e, v) in expected.iter_mut().zip(&x) {
            *e += v;
        }
        let req = client
            .prepare_upload_quantised(0, &x, &mut rng)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Through the codec, as on the wire.
        let frame = Message::UploadRequest(req).encode();
        let Ok(Message::UploadRequest(req)) = Message::decode(&frame, &limits) else {
            bail!("upload frame does not decode");
        };
        leader
            .handle_upload(req, now)
            .map_err(|e| anyhow::anyhow!("upload refused: {e:?}"))?;
    }

    // Aggregation jobs until the queue is empty, through the leader's job driver.
    let (mut leader_time, mut helper_time) = (Duration::ZERO, Duration::ZERO);
    let (mut wire_bytes, mut init_bytes) = (0usize, 0usize);
    loop {
        let t = Instant::now();
        let job = JobDriver::start(&mut leader, 0, &mut rng)
            .map_err(|e| anyhow::anyhow!("start_job: {e:?}"))?;
        leader_time += t.elapsed();
        let Some(mut driver) = job else { break };
        while let Some(request) = driver.poll_transmit() {
            let frame = request.message.encode();
            wire_bytes += frame.len();
            if matches!(request.message, Message::JobInit(_)) {
                init_bytes += frame.len();
            }
            let t = Instant::now();
            let answer = helper
                .handle_message(request.message, now, &mut rng)
                .map_err(|e| anyhow::anyhow!("helper refused: {e:?}"))?;
            helper_time += t.elapsed();
            wire_bytes += answer.encode().len();
            let t = Instant::now();
            driver
                .handle_answer(&mut leader, Ok(answer))
                .map_err(|e| anyhow::anyhow!("job: {e:?}"))?;
            leader_time += t.elapsed();
        }
        if !driver.take_rejections().is_empty() {
            bail!("honest reports rejected");
        }
    }

    // Collect through the leader's collect driver; time the collector's decode + open.
    let mut driver = CollectDriver::new(collector.request(0), now, Instant::now(), Duration::ZERO);
    let resp = loop {
        match driver
            .poll(&mut leader, &mut rng, Instant::now())
            .map_err(|e| anyhow::anyhow!("collect: {e:?}"))?
        {
            CollectPoll::Transmit(request) => {
                let answer = helper
                    .handle_message(request.message, now, &mut rng)
                    .map_err(|e| anyhow::anyhow!("helper refused: {e:?}"))?;
                driver
                    .handle_answer(Ok(answer))
                    .map_err(|e| anyhow::anyhow!("collect: {e:?}"))?;
            }
            CollectPoll::Retry { .. } => bail!("reports left in flight after the jobs"),
            CollectPoll::Done(resp) => break resp,
        }
    };
    let frame = Message::CollectResponse(resp).encode();
    let mut opened = None;
    let decode = median_time(runs, || {
        if let Ok(Message::CollectResponse(resp)) = Message::decode(&frame, &limits) {
            opened = collector.open(0, &resp).ok();
        }
    });
    let collection = opened.context("the collect response does not open")?;
    let correct = collection.count as usize == reports && collection.sum_quantised == expected;

    let leader_ms = ms(leader_time) / reports as f64;
    let helper_ms = ms(helper_time) / reports as f64;
    Ok(CairnFigures {
        d,
        reports,
        threads: parallelism.threads(),
        client_prepare_ms: ms(prepare),
        upload_bytes,
        upload_bytes_per_param: upload_bytes as f64 / d as f64,
        leader_ms_per_report: leader_ms,
        helper_ms_per_report: helper_ms,
        aggregator_ms_per_report: leader_ms.max(helper_ms),
        leader_helper_bytes_per_report: wire_bytes as f64 / reports as f64,
        job_init_bytes_per_report: init_bytes as f64 / reports as f64,
        collector_decode_ms: ms(decode),
        correct,
    })
}

/// Registers a client's keys at both aggregators and returns the client.
fn register(
    leader: &Leader<MemoryStore>,
    helper: &Helper<MemoryStore>,
    task: &TaskConfig,
    credential: Credential,
) -> anyhow::Result<Client> {
    leader
        .store()
        .add_client(credential.client_id(), &credential.key_for(0))?;
    helper
        .store()
        .add_client(credential.client_id(), &credential.key_for(1))?;
    Client::new(task.clone(), credential).map_err(|e| anyhow::anyhow!("client: {e}"))
}

/// The encoded length of one upload of `update` (an `UploadRequest`, before transport
/// framing).
pub(crate) fn upload_len(
    client: &Client,
    update: &[f32],
    rng: &mut ChaCha20Rng,
) -> anyhow::Result<usize> {
    let request = client
        .prepare_upload(0, update, rng)
        .map_err(|e| anyhow::anyhow!("prepare_upload: {e}"))?;
    Ok(Message::UploadRequest(request).encode().len())
}
