//! The data holder's side: build a [`Client`], submit updates.

use super::*;
use cairn_mpc::secret::SecretVec;
use cairn_protocol::config::PrivacyUnit;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    task: TaskConfig,
    credential: Option<Credential>,
    state_dir: Option<PathBuf>,
    shared_leader: Option<Arc<Peer>>,
    connect: Connect,
}

impl ClientBuilder {
    /// Sends through `other`'s connection to the leader instead of a QUIC endpoint of
    /// its own (many clients in one process, as in load tests). A leader takes
    /// `client_streams` requests at once from one client connection (default 1): raise
    /// it in the leader's `node.toml`, or share fewer clients per connection.
    pub fn share_connection_of(mut self, other: &Client) -> Self {
        self.shared_leader = Some(Arc::clone(&other.leader));
        self
    }

    /// The client's credential (required; it must be for the builder's task).
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// A folder where prepared reports are kept until acknowledged (module docs). One
    /// folder may serve several clients and tasks: each gets a subfolder.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The retry policy for uploads (default: 6 attempts, 100 ms doubling to 5 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.connect.retry = retry;
        self
    }

    /// Transport limits and timeouts (default: frames sized from the task).
    pub fn transport_options(mut self, options: TransportOptions) -> Self {
        self.connect.options = Some(options);
        self
    }

    /// Builds the client (no connection is made until the first submission).
    pub async fn build(self) -> Result<Client, SdkError> {
        let credential = self.credential.ok_or(SdkError::Missing("credential"))?;
        credential.check_task(&self.task.id())?;
        let state_dir = self.state_dir.map(|d| {
            d.join(self.task.id().to_hex())
                .join(credential.client_id().to_hex())
        });
        if let Some(dir) = &state_dir {
            create_private_dir(dir)?;
        }
        let loaded = cairn_protocol::task::Task::new(self.task.clone())?;
        let limits = loaded.limits();
        let protocol = cairn_protocol::client::Client::from_task(loaded, credential)?;
        let leader = match self.shared_leader {
            Some(peer) => peer,
            None => Arc::new(self.connect.leader(
                &self.task,
                &limits,
                None,
                Inbound::ClientFromLeader,
            )?),
        };
        Ok(Client {
            preparer: Arc::new(Preparer {
                protocol,
                rng: Mutex::new(os_rng()?),
            }),
            leader,
            limits,
            retry: self.connect.retry,
            state_dir,
            skipped: Mutex::new(std::collections::BTreeMap::new()),
        })
    }
}

/// A data holder's client of one task.
pub struct Client {
    preparer: Arc<Preparer>,
    leader: Arc<Peer>,
    limits: Limits,
    retry: RetryPolicy,
    /// The client's subfolder of the state folder: its files of a round are read and
    /// written only under that round's lock (`submit_input`).
    state_dir: Option<PathBuf>,
    /// The rounds this `Client` saw skipped, their sample too large (round → records
    /// sampled); with a state folder, its `round-N.skipped` files say it to every
    /// `Client` of the folder as well.
    skipped: Mutex<std::collections::BTreeMap<u32, usize>>,
}

/// What prepares reports: shared with the blocking thread that runs the preparation.
struct Preparer {
    protocol: cairn_protocol::client::Client,
    rng: Mutex<ChaCha20Rng>,
}

/// Which report a submission sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// One prepared from this call's input.
    New,
    /// One prepared by an earlier attempt and kept in the state folder.
    Kept,
}

/// The input of one report.
/// The caller's values, copied: wiped when dropped.
enum Input {
    Update(Zeroizing<Vec<f32>>),
    Quantised(Zeroizing<Vec<i64>>),
    /// A Poisson sample's records: a sample too large skips the round for good
    /// ([`SdkError::RoundSkipped`]).
    Records(Zeroizing<Vec<f32>>),
}

impl Preparer {
    /// Prepares and encodes one report.
    fn prepare(&self, round: u32, input: &Input) -> Result<(ReportId, SecretVec<u8>), ClientError> {
        // A generator of this report's own, seeded from the client's: the client's
        // stays locked for a moment, not for the whole proof.
        let mut rng = {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            self.rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fill_bytes(seed.as_mut());
            ChaCha20Rng::from_seed(*seed)
        };
        let req = match input {
            Input::Update(update) => self.protocol.prepare_upload(round, update, &mut rng),
            Input::Quantised(x) => self.protocol.prepare_upload_quantised(round, x, &mut rng),
            Input::Records(records) => self
                .protocol
                .prepare_upload_records(round, records, &mut rng),
        }?;
        let report_id = req.report.report_id;
        // The frame holds the leader's share in the clear: wiped when dropped.
        let frame = SecretVec::new(Message::UploadRequest(req).encode());
        Ok((report_id, frame))
    }
}

/// Runs `work` on the runtime's blocking threads. A panic in it is the caller's, as if
/// it had run inline; a runtime shutting down cancels it.
pub(super) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SdkError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(SdkError::PrepareCancelled),
    }
}

impl Client {
    /// A builder for `task`.
    pub fn builder(task: TaskConfig) -> ClientBuilder {
        ClientBuilder {
            task,
            credential: None,
            state_dir: None,
            shared_leader: None,
            connect: Connect::default(),
        }
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        self.preparer.protocol.task()
    }

    /// The client's id.
    pub fn client_id(&self) -> cairn_protocol::auth::ClientId {
        self.preparer.protocol.client_id()
    }

    /// Clips, quantises, noises (if the task says so), shares, proves, seals and
    /// uploads `update` for `round`; returns once the leader has stored it. Retries
    /// with backoff on network failures and retriable refusals. With a state folder, a
    /// report prepared for `round` before a crash is re-sent instead (module docs).
    pub async fn submit(&self, round: u32, update: &[f32]) -> Result<ReportId, SdkError> {
        self.submit_input(round, Input::Update(Zeroizing::new(update.to_vec())))
            .await
            .map(|(id, _)| id)
    }

    /// Uploads an already quantised vector (integers in the task's fixed-point units).
    pub async fn submit_quantised(&self, round: u32, x: &[i64]) -> Result<ReportId, SdkError> {
        self.submit_input(round, Input::Quantised(Zeroizing::new(x.to_vec())))
            .await
            .map(|(id, _)| id)
    }

    /// Record level: submits the sum of already sampled records (rows of `records`, `d`
    /// values each, row-major), each clipped to the task's `C` first
    /// ([`cairn_protocol::client::Client::prepare_upload_records`]). More records than
    /// the task's `max_records_per_report` skip the round for good, as for
    /// [`Client::sample_and_submit_records`]: the records are taken to be a Poisson
    /// sample, and a second sample for the round, sent only if it fits, would not be.
    pub async fn submit_records(&self, round: u32, records: &[f32]) -> Result<ReportId, SdkError> {
        self.submit_input(round, Input::Records(Zeroizing::new(records.to_vec())))
            .await
            .map(|(id, _)| id)
    }

    /// One submission: with a state folder, under the round's lock from the folder's
    /// checks to the acknowledgement's record, so that two submissions of one round by
    /// `Client`s of one credential and folder (in one process or two, or one `Client`
    /// called twice) cannot both prepare a report: the second waits, then finds the
    /// first's pending or acknowledged report. Submissions of other rounds go on
    /// meanwhile. Says whether the report sent is one kept from an earlier attempt
    /// ([`Sent::Kept`]).
    async fn submit_input(&self, round: u32, input: Input) -> Result<(ReportId, Sent), SdkError> {
        let locks = match &self.state_dir {
            Some(dir) => Some(Arc::new(RoundLocks::take(dir, round).await?)),
            None => None,
        };
        let (report_id, frame, sent) = self.prepared(round, input, locks.as_ref()).await?;
        let id = self
            .upload(round, report_id, frame.expose_secret(), locks.as_ref())
            .await?;
        Ok((id, sent))
    }

    /// Record level, the whole client step of DP-SGD: Poisson-samples the rows of
    /// `all_records` (`d` values each) at the task's sampling rate with the OS-seeded
    /// CSPRNG, and submits the sum of the sampled ones, each clipped to `C`. Returns the
    /// report id and how many records the report sent sums: `None` when the state
    /// folder held a report prepared for `round` by an earlier attempt, which is sent
    /// instead (module docs) and whose sample this call did not draw; the new sample is
    /// then dropped unused.
    ///
    /// A sample of more than the task's `max_records_per_report` records skips the
    /// round ([`ClientError::TooManyRecords`]) and the skip is kept (in the state
    /// folder, or by this `Client` without one): a later call for the round, by either
    /// method, is refused ([`SdkError::RoundSkipped`]) without sampling again. Every
    /// record is checked for NaN and ±∞ before the sample is drawn.
    ///
    /// The sampled set stays with this client. Whoever turns the released sum into a
    /// mean should divide by the expected batch `q·N` with `N` the public total number
    /// of records, not by the (private) sampled count.
    pub async fn sample_and_submit_records(
        &self,
        round: u32,
        all_records: &[f32],
    ) -> Result<(ReportId, Option<usize>), SdkError> {
        let d = self.task().dimension();
        if !all_records.len().is_multiple_of(d) {
            return Err(SdkError::Prepare(ClientError::WrongDimension {
                expected: d,
                got: all_records.len() % d,
            }));
        }
        // Every record is checked, not only the sampled ones: an error that depends on
        // the sample would tell whoever sees it something about the sample.
        if let Some(i) = all_records.iter().position(|v| !v.is_finite()) {
            return Err(SdkError::Prepare(ClientError::NonFinite(i)));
        }
        let q = self.task().sampling_rate();
        let sampled = {
            let mut rng = self.preparer.rng.lock().unwrap_or_else(|e| e.into_inner());
            cairn_dp::sample::poisson_subsample(all_records.len() / d, q, &mut *rng)?
        };
        let mut rows = Zeroizing::new(Vec::with_capacity(sampled.len() * d));
        for i in &sampled {
            rows.extend_from_slice(&all_records[i * d..(i + 1) * d]);
        }
        let (id, sent) = self.submit_input(round, Input::Records(rows)).await?;
        Ok((id, (sent == Sent::New).then_some(sampled.len())))
    }

    /// The upload for `round`: the one kept from an earlier, unacknowledged attempt if
    /// there is one, else a new one (kept before it is first sent).
    async fn prepared(
        &self,
        round: u32,
        input: Input,
        locks: Option<&Arc<RoundLocks>>,
    ) -> Result<(ReportId, SecretVec<u8>, Sent), SdkError> {
        let max = self.task().max_records_per_report();
        let too_many = match &input {
            // (A task of another unit refuses the records when they are prepared.) The
            // records' own faults first: they do not depend on the sample.
            Input::Records(rows) if self.task().unit() == PrivacyUnit::Record => {
                Some(self.preparer.protocol.count_records(rows)?).filter(|n| *n > max as usize)
            }
            _ => None,
        };
        // A round this `Client` saw skipped (with a folder, the folder's record below
        // says so as well, to every `Client` of it).
        if let Some(&sampled) = self
            .skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&round)
        {
            return Err(SdkError::RoundSkipped {
                round,
                sampled,
                max,
            });
        }
        let (Some(dir), Some(locks)) = (&self.state_dir, locks) else {
            if let Some(sampled) = too_many {
                self.remember_skipped(round, sampled);
                return Err(SdkError::Prepare(ClientError::TooManyRecords {
                    sampled,
                    max,
                }));
            }
            let (id, frame) = self.prepare(round, input).await?;
            return Ok((id, frame, Sent::New));
        };
        let pending = dir.join(format!("round-{round}.pending"));
        let (folder, task_id, client_id, limits) =
            (dir.clone(), self.task().id(), self.client_id(), self.limits);
        // The folder is read off the runtime (the pending report is ~1 MiB).
        let kept =
            off_runtime(move || kept_report(&folder, round, task_id, client_id, max, &limits))
                .await??;
        if let Some((report_id, frame)) = kept {
            return Ok((report_id, frame, Sent::Kept));
        }
        if let Some(sampled) = too_many {
            // Recorded before the refusal is returned, under the round's locks: a retry
            // of the round finds it and draws no second sample. Remembered by this
            // `Client` first, so that a record that cannot be written (a full disk)
            // still leaves the round refused here.
            self.remember_skipped(round, sampled);
            let (skipped, locks) = (
                dir.join(format!("round-{round}.skipped")),
                Arc::clone(locks),
            );
            off_runtime(move || {
                let _locks = locks;
                write_private_file(&skipped, sampled.to_string().as_bytes())
            })
            .await??;
            return Err(SdkError::Prepare(ClientError::TooManyRecords {
                sampled,
                max,
            }));
        }
        let (report_id, frame) = self.prepare(round, input).await?;
        // Written (and synced) off the runtime too, holding the round's locks until the
        // write is over even if this submission is dropped meanwhile: a retry of the
        // round then waits for the file instead of writing beside it.
        let locks = Arc::clone(locks);
        let frame = off_runtime(move || {
            let _locks = locks;
            write_private_file(&pending, frame.expose_secret()).map(|()| frame)
        })
        .await??;
        Ok((report_id, frame, Sent::New))
    }

    /// Remembers that `round` was skipped for a sample of `sampled` records.
    fn remember_skipped(&self, round: u32, sampled: usize) {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(round, sampled);
    }

    /// Prepares and encodes a report on one of the process's prepare threads
    /// ([`super::prepare_threads`]).
    async fn prepare(
        &self,
        round: u32,
        input: Input,
    ) -> Result<(ReportId, SecretVec<u8>), SdkError> {
        let preparer = Arc::clone(&self.preparer);
        Ok(super::prepare_threads::run(move || preparer.prepare(round, &input)).await??)
    }

    async fn upload(
        &self,
        round: u32,
        report_id: ReportId,
        frame: &[u8],
        locks: Option<&Arc<RoundLocks>>,
    ) -> Result<ReportId, SdkError> {
        request_with_retry(
            &self.leader,
            &self.limits,
            &self.retry,
            frame,
            |m, attempt| match m {
                Message::UploadResponse(ack) if ack.report_id == report_id => Ok(report_id),
                // Only this client knows the id: on a retry, "used before" means an
                // earlier attempt of ours was stored.
                Message::Error(e) if e.code == ErrorCode::Replay && attempt > 1 => Ok(report_id),
                other => Err(refused(other)),
            },
        )
        .await?;
        if let (Some(dir), Some(locks)) = (&self.state_dir, locks) {
            // The leader has stored the report: from here on the answer is Ok. A record
            // that cannot be written leaves the pending report, which the next submit
            // of the round sends again and the leader acknowledges again. Written off
            // the runtime, under the round's locks until it is over.
            let (dir, locks) = (dir.clone(), Arc::clone(locks));
            let recorded = off_runtime(move || {
                let _locks = locks;
                write_private_file(
                    &dir.join(format!("round-{round}.acked")),
                    report_id.to_hex().as_bytes(),
                )
                .and_then(|()| remove_if_present(&dir.join(format!("round-{round}.pending"))))
            })
            .await;
            match recorded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(
                    round,
                    report = %report_id,
                    error = %e,
                    "the report was acknowledged but its record could not be written"
                ),
                Err(e) => tracing::warn!(
                    round,
                    report = %report_id,
                    error = %e,
                    "the report was acknowledged but its record was not written"
                ),
            }
        }
        Ok(report_id)
    }
}

/// The report kept for `round` in the client's folder `dir`, if one is pending; an
/// error if the round was acknowledged ([`SdkError::AlreadySubmitted`]) or the pending
/// report is not this client's for this round and task.
fn kept_report(
    dir: &std::path::Path,
    round: u32,
    task_id: cairn_protocol::ids::TaskId,
    client_id: cairn_protocol::auth::ClientId,
    max: u32,
    limits: &Limits,
) -> Result<Option<(ReportId, SecretVec<u8>)>, SdkError> {
    let pending = dir.join(format!("round-{round}.pending"));
    // Only a missing record means "not acknowledged": an unreadable one must not lead
    // to a second report for the round.
    match std::fs::read_to_string(dir.join(format!("round-{round}.acked"))) {
        Ok(id) => {
            // A crash between the record and the pending report's removal left the
            // latter (the leader's share in the clear): remove it.
            remove_if_present(&pending)?;
            return Err(SdkError::AlreadySubmitted {
                round,
                report_id: id.trim().to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::read_to_string(dir.join(format!("round-{round}.skipped"))) {
        Ok(count) => {
            let sampled = count.trim().parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("round-{round}.skipped does not hold a record count"),
                )
            })?;
            return Err(SdkError::RoundSkipped {
                round,
                sampled,
                max,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::read(&pending) {
        Ok(frame) => {
            let frame = SecretVec::new(frame);
            let Ok(Message::UploadRequest(req)) = Message::decode(frame.expose_secret(), limits)
            else {
                return Err(SdkError::ForeignPendingUpload(pending));
            };
            if req.task_id != task_id
                || req.report.round != round
                || req.report.client_id != client_id
            {
                return Err(SdkError::ForeignPendingUpload(pending));
            }
            tracing::warn!(
                round,
                report = %req.report.report_id,
                "re-sending the report prepared before a restart (not the new update)"
            );
            Ok(Some((req.report.report_id, frame)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What a submission of one round holds in the state folder, from its checks to the
/// acknowledgement's record: the folder's `lock` shared (earlier versions of the SDK
/// take it exclusively for any round, so they and this one exclude each other) and
/// the round's own lock file exclusively, `lock-{round mod 64}` (a fixed set of
/// files, so they do not pile up; two rounds 64 apart wait for each other). Released
/// when dropped.
struct RoundLocks {
    _folder: std::fs::File,
    _round: std::fs::File,
}

/// Lock files of rounds (`lock-0` … `lock-63`).
const ROUND_LOCK_FILES: u32 = 64;

impl RoundLocks {
    async fn take(dir: &std::path::Path, round: u32) -> Result<Self, SdkError> {
        let folder = lock_file(dir.join("lock"), LockKind::Shared).await?;
        let name = format!("lock-{}", round % ROUND_LOCK_FILES);
        let round = lock_file(dir.join(name), LockKind::Exclusive).await?;
        Ok(Self {
            _folder: folder,
            _round: round,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum LockKind {
    Shared,
    Exclusive,
}

/// Removes `path`; a missing file is fine.
fn remove_if_present(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Takes an advisory lock on `path` (created if missing). While another holder has
/// it, this task sleeps and tries again: a waiter holds no thread, so any number of
/// submissions may wait. Released when the file closes. (An open file description of
/// its own per call: two calls in one process exclude each other as two processes
/// do.)
async fn lock_file(path: PathBuf, kind: LockKind) -> Result<std::fs::File, SdkError> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(20);
    let file = off_runtime(move || {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(&path)
    })
    .await??;
    loop {
        let attempt = match kind {
            LockKind::Shared => file.try_lock_shared(),
            LockKind::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => tokio::time::sleep(POLL).await,
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}
