//! The client: from an `f32` update to an upload.
//!
//! DESIGN §3, client side: clip the update to L2 norm `C`; scale by `2^f` with
//! unbiased randomised rounding; add the client's share of distributed discrete
//! Gaussian noise if the task places noise at the clients; share and prove with the
//! task's scheme; tag the report for every aggregator with the client's credential
//! ([`crate::auth`]); seal each helper's share, followed by its tag, to that helper's
//! HPKE key, bound to the task, the report, the round, the helper index, the client
//! and the public share.

use cairn_mpc::fixed_point::FixedPoint;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::aad::input_share_aad;
use crate::auth::{Credential, TagContext};
use crate::config::TaskConfig;
use crate::hpke::{self, SealPurpose};
use crate::ids::ReportId;
use crate::messages::{Report, UploadRequest};
use crate::privacy::Privacy;
use crate::scheme::Scheme;

/// Errors of report preparation. None of them sends anything.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The task does not load.
    #[error("task: {0}")]
    Task(#[from] crate::config::ConfigError),
    /// The credential is not for this task.
    #[error("credential: {0}")]
    Credential(#[from] crate::auth::AuthError),
    /// The update has the wrong length (record level: a length that is not a multiple
    /// of the dimension; `got` is the whole length).
    #[error("the update has {got} values, the task's dimension is {expected}")]
    WrongDimension {
        /// The task's dimension.
        expected: usize,
        /// The update's length.
        got: usize,
    },
    /// The update contains NaN or an infinity.
    #[error("the update contains a non-finite value at index {0}")]
    NonFinite(usize),
    /// Clipping failed (a clip norm that is not positive and finite: impossible for a
    /// validated task).
    #[error("clipping failed: {0}")]
    Clip(#[from] cairn_dp::clip::ClipError),
    /// Fixed-point encoding failed (a value does not fit the range after clipping —
    /// impossible for a validated task, reported rather than clamped).
    #[error("fixed-point encoding failed: {0}")]
    Encoding(#[from] cairn_mpc::fixed_point::FixedPointError),
    /// Sharding or proving failed for a reason other than the norm bound (a length
    /// that does not match the task: impossible for a validated task).
    #[error("{0}")]
    Shard(crate::scheme::ShardError),
    /// The noisy quantised update exceeds the task's norm bound B (client noise larger
    /// than the bound's margin; retry with fresh noise, or raise `norm_bound`).
    #[error("the noisy update exceeds the task's norm bound; retry")]
    NormBoundExceeded,
    /// Sealing a helper's share failed.
    #[error("sealing a share failed: {0}")]
    Seal(#[from] crate::hpke::HpkeError),
    /// A record-level call on a client-level task, or the reverse.
    #[error("{0}")]
    WrongUnit(&'static str),
    /// More sampled records than the task allows in one report. The round is refused
    /// for this client rather than truncated silently (see `cairn_protocol::privacy`).
    #[error(
        "{sampled} records were sampled, the task allows {max} per report: this client \
         skips the round (raise max_records_per_report, or lower sampling_rate)"
    )]
    TooManyRecords {
        /// Records given.
        sampled: usize,
        /// The task's `max_records_per_report`.
        max: u32,
    },
}

/// A client of one task.
pub struct Client {
    task: TaskConfig,
    scheme: Scheme,
    privacy: Privacy,
    fixed: FixedPoint,
    credential: Credential,
}

impl Client {
    /// A client of `task` authenticating with `credential` (which must be for `task`).
    pub fn new(task: TaskConfig, credential: Credential) -> Result<Self, ClientError> {
        let task = crate::task::Task::new(task)?;
        Self::from_task(task, credential)
    }

    /// A client of a loaded task (see [`Client::new`]).
    pub fn from_task(task: crate::task::Task, credential: Credential) -> Result<Self, ClientError> {
        credential.check_task(&task.id())?;
        let (task, scheme, privacy) = task.into_parts();
        let fixed = FixedPoint::new(u32::from(task.frac_bits()), u32::from(task.bits()))
            .map_err(|e| crate::config::ConfigError::invalid("frac_bits", e.to_string()))?;
        Ok(Self {
            task,
            scheme,
            privacy,
            fixed,
            credential,
        })
    }

    /// The client's id.
    pub fn client_id(&self) -> crate::auth::ClientId {
        self.credential.client_id()
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        &self.task
    }

    /// Quantises an update: clip to `C`, scale by `2^f`, round randomly (unbiased).
    pub fn quantise<R: CryptoRng + ?Sized>(
        &self,
        update: &[f32],
        rng: &mut R,
    ) -> Result<Vec<i64>, ClientError> {
        let d = self.task.dimension();
        if update.len() != d {
            return Err(ClientError::WrongDimension {
                expected: d,
                got: update.len(),
            });
        }
        if let Some(i) = update.iter().position(|v| !v.is_finite()) {
            return Err(ClientError::NonFinite(i));
        }
        // The update's copies are wiped when dropped, like the shares made from them.
        let mut clipped: Zeroizing<Vec<f64>> =
            Zeroizing::new(update.iter().map(|v| f64::from(*v)).collect());
        cairn_dp::clip::clip_l2(&mut clipped, self.task.clip_norm())?;
        Ok(self.fixed.encode_f64(&clipped, rng)?)
    }

    /// Record level: clips each of the sampled records (rows of `records`, `d` values
    /// each, row-major) to `C`, sums them in `f64`, rounds the sum once (unbiased
    /// randomised rounding) and builds the upload. Sampling is the caller's
    /// ([`cairn_dp::sample::poisson_subsample`] with the task's rate); zero records is a
    /// valid report (the zero vector).
    pub fn prepare_upload_records<R: CryptoRng + ?Sized>(
        &self,
        round: u32,
        records: &[f32],
        rng: &mut R,
    ) -> Result<UploadRequest, ClientError> {
        if self.task.unit() != crate::config::PrivacyUnit::Record {
            return Err(ClientError::WrongUnit(
                "this task's unit of privacy is the client: submit one update per round",
            ));
        }
        let d = self.task.dimension();
        let n = self.count_records(records)?;
        let max = self.task.max_records_per_report();
        if n > max as usize {
            return Err(ClientError::TooManyRecords { sampled: n, max });
        }
        let mut sum = Zeroizing::new(vec![0f64; d]);
        let mut row = Zeroizing::new(vec![0f64; d]);
        for record in records.chunks_exact(d) {
            for (r, v) in row.iter_mut().zip(record) {
                *r = f64::from(*v);
            }
            cairn_dp::clip::clip_l2(&mut row, self.task.clip_norm())?;
            for (s, r) in sum.iter_mut().zip(row.iter()) {
                *s += r;
            }
        }
        let mut x = Zeroizing::new(self.fixed.encode_f64(&sum, rng)?);
        self.add_client_noise(&mut x, rng);
        self.prepare_upload_quantised(round, &x, rng)
    }

    /// How many records `records` holds (rows of `d` values), after the checks that
    /// depend on the records alone: a length that is a multiple of `d`, every value
    /// finite.
    pub fn count_records(&self, records: &[f32]) -> Result<usize, ClientError> {
        let d = self.task.dimension();
        if !records.len().is_multiple_of(d) {
            return Err(ClientError::WrongDimension {
                expected: d,
                got: records.len(),
            });
        }
        if let Some(i) = records.iter().position(|v| !v.is_finite()) {
            return Err(ClientError::NonFinite(i));
        }
        Ok(records.len() / d)
    }

    /// Adds this client's share of the noise, `N_Z(0, σ_c²)` per coordinate, when the
    /// task places noise at the clients.
    fn add_client_noise<R: CryptoRng + ?Sized>(&self, x: &mut [i64], rng: &mut R) {
        if let Some(noise) = self.privacy.client_noise() {
            // Known noise could be subtracted from the update: wiped too.
            let mut z = Zeroizing::new(vec![0i64; x.len()]);
            noise.fill(rng, &mut z);
            for (v, e) in x.iter_mut().zip(z.iter()) {
                *v = v.saturating_add(*e);
            }
        }
    }

    /// Builds the upload of `update` for `round` with a fresh random report id.
    pub fn prepare_upload<R: CryptoRng + ?Sized>(
        &self,
        round: u32,
        update: &[f32],
        rng: &mut R,
    ) -> Result<UploadRequest, ClientError> {
        if self.task.unit() == crate::config::PrivacyUnit::Record {
            return Err(ClientError::WrongUnit(
                "this task's unit of privacy is the record: submit the sampled records",
            ));
        }
        let mut x = Zeroizing::new(self.quantise(update, rng)?);
        self.add_client_noise(&mut x, rng);
        self.prepare_upload_quantised(round, &x, rng)
    }

    /// Builds the upload of an already quantised vector (used by tests and by callers
    /// that quantise themselves).
    pub fn prepare_upload_quantised<R: CryptoRng + ?Sized>(
        &self,
        round: u32,
        x: &[i64],
        rng: &mut R,
    ) -> Result<UploadRequest, ClientError> {
        let report_id = ReportId::random(rng);
        let sharded = self.scheme.shard(&report_id, x, rng).map_err(|e| {
            if e.is_out_of_bounds() {
                ClientError::NormBoundExceeded
            } else {
                ClientError::Shard(e)
            }
        })?;
        let task_id = self.task.id();
        let client_id = self.credential.client_id();
        let context = |aggregator: u8| TagContext {
            task_id: &task_id,
            client_id: &client_id,
            round,
            report_id: &report_id,
            public_share: &sharded.public_share,
            aggregator,
        };
        let leader_tag = self.credential.key_for(0).tag(&context(0));
        let mut helper_shares = Vec::with_capacity(sharded.helper_shares.len());
        for (j, share) in sharded.helper_shares.iter().enumerate() {
            let index = u8::try_from(j + 1).map_err(|_| {
                ClientError::Task(crate::config::ConfigError::invalid(
                    "aggregators",
                    "too many",
                ))
            })?;
            let key = self.task.aggregator_hpke_key(j + 1).ok_or_else(|| {
                ClientError::Task(crate::config::ConfigError::invalid(
                    "aggregators",
                    "a helper has no HPKE key",
                ))
            })?;
            let aad = input_share_aad(
                &task_id,
                &report_id,
                round,
                index,
                &client_id,
                &sharded.public_share,
            );
            let mut plaintext = Zeroizing::new(Vec::with_capacity(share.len() + 32));
            plaintext.extend_from_slice(share.expose_secret());
            plaintext.extend_from_slice(&self.credential.key_for(index).tag(&context(index)));
            helper_shares.push(hpke::seal(
                key,
                SealPurpose::HelperInputShare,
                &aad,
                &plaintext,
                rng,
            )?);
        }
        Ok(UploadRequest {
            task_id,
            report: Report {
                report_id,
                round,
                client_id,
                leader_tag,
                public_share: sharded.public_share,
                leader_share: sharded.leader_share,
                helper_shares,
            },
        })
    }
}
