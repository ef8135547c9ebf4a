//! `NoProof`: plain `Z_{2^b}` shares for semi-honest clients (DESIGN.md §5).
//!
//! The client writes each coordinate `x_i` (a signed integer, `|x_i| ≤ max_abs`) as a
//! `b`-bit two's-complement word and shares the vector additively over `Z_{2^b}`:
//! helper `j ≥ 1` expands its share from a 32-byte seed, the leader receives
//! `x − Σ_j x_j mod 2^b` explicitly (`b/8` bytes per coordinate). Aggregators add their
//! shares mod `2^b` ([`NoProof::accumulate`]); the collector adds the aggregate shares
//! and reads the result as a signed `b`-bit integer ([`NoProof::unshard`]), the modular
//! aggregation of the distributed discrete Gaussian mechanism of Kairouz, Liu and
//! Steinke (ICML 2021).
//!
//! **Exactness.** The true sum is at most `max_clients·max_abs` in absolute value;
//! construction requires `max_clients·max_abs < 2^(b−1)`
//! ([`NoProofError::SumDoesNotFit`]), so the sum never wraps and the centred decoding
//! is exact. Nothing is verified: a malicious client can send any `b`-bit words (that is
//! what [`crate::carry_lift`] is for), so use this only where clients are trusted to
//! follow the protocol.
//!
//! Sizes: leader share `d·b/8` bytes, helper share 32 bytes.

use core::fmt;

use cairn_mpc::codec::{CodecError, Encode, Reader};
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_mpc::sharing::{ShareContext, SharingError};
use rand_core::CryptoRng;

use crate::words::{encode_words, expand_words, read_words};

/// Errors of the `NoProof` encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoProofError {
    /// Invalid dimension, aggregator count or bits.
    #[error("invalid NoProof parameters: {0}")]
    InvalidParams(&'static str),
    /// `max_clients·max_abs ≥ 2^(b−1)`: the aggregate could wrap.
    #[error("max_clients·max_abs must be below 2^(b−1)")]
    SumDoesNotFit,
    /// The input has the wrong length.
    #[error("input has {got} coordinates, the task has {expected}")]
    WrongDimension {
        /// The task's dimension.
        expected: usize,
        /// The input's length.
        got: usize,
    },
    /// A coordinate exceeds `max_abs` in absolute value.
    #[error("coordinate {index} exceeds the task's max_abs")]
    CoordinateOutOfRange {
        /// Its index.
        index: usize,
    },
    /// Invalid aggregator id or share kind.
    #[error("invalid aggregator id {0}")]
    AggregatorId(usize),
    /// Aggregate shares of the wrong length.
    #[error("aggregate shares must have length d")]
    AggregateLength,
    /// A message could not be decoded.
    #[error("malformed message: {0}")]
    Decode(#[from] CodecError),
    /// Internal sharing error.
    #[error(transparent)]
    Sharing(#[from] SharingError),
}

/// Task parameters of `NoProof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoProofParams {
    /// `d`.
    pub dimension: usize,
    /// `n` (`2..=16`).
    pub num_aggregators: usize,
    /// `b ∈ {8, 16, 32}`.
    pub bits: u32,
    /// Most reports aggregated in one round.
    pub max_clients: u64,
    /// Largest `|x_i|` a client may send.
    pub max_abs: u64,
}

/// The `NoProof` encoding for one parameter set.
#[derive(Debug, Clone)]
pub struct NoProof {
    params: NoProofParams,
}

/// The leader's share: `d` words. Secret.
pub struct NoProofLeaderShare {
    words: SecretVec<u32>,
    word_bytes: usize,
}

impl fmt::Debug for NoProofLeaderShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoProofLeaderShare(<{} redacted words>)",
            self.words.len()
        )
    }
}

/// A helper's share: a seed.
#[derive(Debug)]
pub struct NoProofHelperShare {
    seed: Seed,
}

/// One aggregator's `NoProof` input share.
#[derive(Debug)]
pub enum NoProofInputShare {
    /// Aggregator 0.
    Leader(NoProofLeaderShare),
    /// Aggregators `1..n`.
    Helper(NoProofHelperShare),
}

impl Encode for NoProofLeaderShare {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_words(self.words.expose_secret(), self.word_bytes, out);
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(self.words.len() * self.word_bytes)
    }
}

impl Encode for NoProofHelperShare {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.seed.expose_secret());
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(32)
    }
}

impl NoProof {
    /// Validates the parameters.
    pub fn new(params: NoProofParams) -> Result<Self, NoProofError> {
        if params.dimension == 0 {
            return Err(NoProofError::InvalidParams("dimension must be positive"));
        }
        if !(2..=16).contains(&params.num_aggregators) {
            return Err(NoProofError::InvalidParams("aggregators must be 2..=16"));
        }
        if !matches!(params.bits, 8 | 16 | 32) {
            return Err(NoProofError::InvalidParams("bits must be 8, 16 or 32"));
        }
        let max_sum = u128::from(params.max_clients) * u128::from(params.max_abs);
        if max_sum >= 1u128 << (params.bits - 1) {
            return Err(NoProofError::SumDoesNotFit);
        }
        Ok(Self { params })
    }

    /// The parameters.
    pub fn params(&self) -> &NoProofParams {
        &self.params
    }

    /// Bytes of an encoded leader share.
    pub fn leader_share_len(&self) -> usize {
        self.params.dimension * self.word_bytes()
    }

    /// Shares `x` (each `|x_i| ≤ max_abs`): the leader's share and one seed per helper.
    pub fn shard<R: CryptoRng + ?Sized>(
        &self,
        task_id: &[u8; 32],
        report_id: &[u8; 16],
        x: &[i64],
        rng: &mut R,
    ) -> Result<(NoProofLeaderShare, Vec<NoProofHelperShare>), NoProofError> {
        let d = self.params.dimension;
        if x.len() != d {
            return Err(NoProofError::WrongDimension {
                expected: d,
                got: x.len(),
            });
        }
        if let Some(index) = x
            .iter()
            .position(|v| v.unsigned_abs() > self.params.max_abs)
        {
            return Err(NoProofError::CoordinateOutOfRange { index });
        }
        let ctx = ShareContext::new(*task_id, *report_id);
        let mask = self.mask();
        // Two's complement, truncated to b bits, is x mod 2^b.
        let mut words = SecretVec::new(x.iter().map(|v| (*v as u32) & mask).collect::<Vec<_>>());
        let mut helpers = Vec::with_capacity(self.params.num_aggregators - 1);
        for party in 1..self.params.num_aggregators as u8 {
            let seed = Seed::generate(rng);
            let share = expand_words(self.params.bits, &seed, &ctx, party, d)?;
            for (w, h) in words
                .expose_secret_mut()
                .iter_mut()
                .zip(share.expose_secret())
            {
                *w = w.wrapping_sub(*h) & mask;
            }
            helpers.push(NoProofHelperShare { seed });
        }
        Ok((
            NoProofLeaderShare {
                words,
                word_bytes: self.word_bytes(),
            },
            helpers,
        ))
    }

    /// Adds aggregator `agg_id`'s share of one report into its aggregate share
    /// (`d` words, mod `2^b`).
    pub fn accumulate(
        &self,
        agg_id: usize,
        task_id: &[u8; 32],
        report_id: &[u8; 16],
        share: &NoProofInputShare,
        aggregate: &mut [u32],
    ) -> Result<(), NoProofError> {
        let d = self.params.dimension;
        if aggregate.len() != d {
            return Err(NoProofError::AggregateLength);
        }
        let ctx = ShareContext::new(*task_id, *report_id);
        let expanded;
        let words = match (agg_id, share) {
            (0, NoProofInputShare::Leader(l)) if l.words.len() == d => l.words.expose_secret(),
            (j, NoProofInputShare::Helper(h)) if j > 0 && j < self.params.num_aggregators => {
                let party = u8::try_from(j).map_err(|_| NoProofError::AggregatorId(j))?;
                expanded = expand_words(self.params.bits, &h.seed, &ctx, party, d)?;
                expanded.expose_secret()
            }
            _ => return Err(NoProofError::AggregatorId(agg_id)),
        };
        let mask = self.mask();
        for (a, w) in aggregate.iter_mut().zip(words) {
            *a = a.wrapping_add(*w) & mask;
        }
        Ok(())
    }

    /// Adds the aggregators' aggregate shares mod `2^b` and decodes signed `b`-bit
    /// integers (exact by the construction check).
    pub fn unshard(&self, aggregate_shares: &[&[u32]]) -> Result<Vec<i64>, NoProofError> {
        let d = self.params.dimension;
        if aggregate_shares.is_empty() || aggregate_shares.iter().any(|s| s.len() != d) {
            return Err(NoProofError::AggregateLength);
        }
        let mask = self.mask();
        let bits = self.params.bits;
        Ok((0..d)
            .map(|i| {
                let sum = aggregate_shares
                    .iter()
                    .fold(0u32, |acc, s| acc.wrapping_add(s[i]))
                    & mask;
                // Sign-extend from b bits.
                let shift = 64 - bits;
                ((u64::from(sum) << shift) as i64) >> shift
            })
            .collect())
    }

    /// Decodes a leader share.
    pub fn decode_leader_share(&self, bytes: &[u8]) -> Result<NoProofLeaderShare, NoProofError> {
        let mut r = Reader::new(bytes);
        let words = read_words(&mut r, self.params.dimension, self.word_bytes())?;
        r.finish()?;
        Ok(NoProofLeaderShare {
            words,
            word_bytes: self.word_bytes(),
        })
    }

    /// Decodes a helper share.
    pub fn decode_helper_share(&self, bytes: &[u8]) -> Result<NoProofHelperShare, NoProofError> {
        let mut r = Reader::new(bytes);
        let seed = Seed::from_bytes(r.read_array::<32>()?);
        r.finish()?;
        Ok(NoProofHelperShare { seed })
    }

    fn word_bytes(&self) -> usize {
        (self.params.bits / 8) as usize
    }

    fn mask(&self) -> u32 {
        if self.params.bits == 32 {
            u32::MAX
        } else {
            (1u32 << self.params.bits) - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    fn params(bits: u32, n: usize, max_clients: u64, max_abs: u64) -> NoProofParams {
        NoProofParams {
            dimension: 7,
            num_aggregators: n,
            bits,
            max_clients,
            max_abs,
        }
    }

    #[test]
    fn construction_checks_that_the_sum_fits() {
        assert!(NoProof::new(params(16, 2, 100, 327)).is_ok()); // 32 700 < 32 768
        assert_eq!(
            NoProof::new(params(16, 2, 100, 328)).err(),
            Some(NoProofError::SumDoesNotFit)
        );
        assert_eq!(
            NoProof::new(params(8, 2, 1, 128)).err(),
            Some(NoProofError::SumDoesNotFit)
        );
        assert!(NoProof::new(params(12, 2, 1, 1)).is_err());
        assert!(NoProof::new(params(16, 1, 1, 1)).is_err());
    }

    #[test]
    fn aggregate_of_many_clients_decodes_exactly_with_wrapping_shares() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        for (bits, n, max_abs) in [(8u32, 2usize, 12u64), (16, 3, 3000), (32, 2, 1 << 20)] {
            let clients = 10u64;
            let np = NoProof::new(params(bits, n, clients, max_abs)).unwrap();
            let mut aggregates = vec![vec![0u32; 7]; n];
            let mut expected = vec![0i64; 7];
            for c in 0..clients {
                let report_id = [c as u8; 16];
                // Extremes included: ±max_abs.
                let x: Vec<i64> = (0..7)
                    .map(|i| match (c + i) % 3 {
                        0 => max_abs as i64,
                        1 => -(max_abs as i64),
                        _ => (rng.next_u64() % (2 * max_abs + 1)) as i64 - max_abs as i64,
                    })
                    .collect();
                for (e, v) in expected.iter_mut().zip(&x) {
                    *e += v;
                }
                let (leader, helpers) = np.shard(&[5; 32], &report_id, &x, &mut rng).unwrap();
                let leader = np.decode_leader_share(&leader.to_bytes()).unwrap();
                np.accumulate(
                    0,
                    &[5; 32],
                    &report_id,
                    &NoProofInputShare::Leader(leader),
                    &mut aggregates[0],
                )
                .unwrap();
                for (j, h) in helpers.into_iter().enumerate() {
                    let h = np.decode_helper_share(&h.to_bytes()).unwrap();
                    np.accumulate(
                        j + 1,
                        &[5; 32],
                        &report_id,
                        &NoProofInputShare::Helper(h),
                        &mut aggregates[j + 1],
                    )
                    .unwrap();
                }
            }
            let refs: Vec<&[u32]> = aggregates.iter().map(|a| a.as_slice()).collect();
            assert_eq!(np.unshard(&refs).unwrap(), expected, "bits {bits}");
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let np = NoProof::new(params(16, 2, 10, 100)).unwrap();
        assert_eq!(
            np.shard(&[0; 32], &[0; 16], &[0; 6], &mut rng).err(),
            Some(NoProofError::WrongDimension {
                expected: 7,
                got: 6
            })
        );
        assert_eq!(
            np.shard(&[0; 32], &[0; 16], &[0, 0, 101, 0, 0, 0, 0], &mut rng)
                .err(),
            Some(NoProofError::CoordinateOutOfRange { index: 2 })
        );
        assert!(np.decode_leader_share(&[0; 13]).is_err());
        assert!(np.decode_leader_share(&[0; 15]).is_err());
        assert!(np.decode_helper_share(&[0; 33]).is_err());
        let (leader, _) = np.shard(&[0; 32], &[0; 16], &[0; 7], &mut rng).unwrap();
        let mut agg = vec![0u32; 7];
        assert_eq!(
            np.accumulate(
                1,
                &[0; 32],
                &[0; 16],
                &NoProofInputShare::Leader(leader),
                &mut agg
            ),
            Err(NoProofError::AggregatorId(1))
        );
    }
}
