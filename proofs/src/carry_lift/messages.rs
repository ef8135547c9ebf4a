//! The carry-lift messages and their encodings.
//!
//! All lengths are fixed by the task parameters, so encodings carry no length
//! prefixes; decoding ([`CarryLift::decode_public_share`] and friends) checks the exact
//! length, rejects trailing bytes and non-canonical field elements, and never panics.
//!
//! | message | encoding |
//! |---|---|
//! | [`PublicShare`] | `n` joint-randomness parts, 32 bytes each |
//! | [`LeaderInputShare`] | blind (32) ‖ `x'_0` (`d` words of `b/8` bytes, LE) ‖ `(c, δ)` share (`d + L` × 8) ‖ proof share (`proof_len` × 8) |
//! | [`HelperInputShare`] | seed (32) |
//! | [`VerifierShare`] | joint-randomness seed (32) ‖ verifier (`verifier_len` × 8) |

use core::fmt;

use cairn_mpc::codec::{CodecError, Encode, Reader};
use cairn_mpc::field::FieldElement;
use cairn_mpc::secret::{SecretVec, Seed};

use super::{CarryLift, CarryLiftError, Field};

/// The public part of a report: every aggregator's joint-randomness part.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicShare {
    pub(crate) parts: Vec<[u8; 32]>,
}

impl PublicShare {
    /// The parts, in aggregator order.
    pub fn parts(&self) -> &[[u8; 32]] {
        &self.parts
    }
}

impl fmt::Debug for PublicShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicShare({} parts)", self.parts.len())
    }
}

/// The leader's input share: explicit `x'_0`, its share of `(c, δ)`, its proof share,
/// and the blind of its joint-randomness part. Secret: no `Clone`, zeroized on drop,
/// redacted `Debug`.
pub struct LeaderInputShare {
    pub(crate) blind: Seed,
    /// `x'_0`, words `< 2^b`.
    pub(crate) words: SecretVec<u32>,
    pub(crate) word_bytes: usize,
    pub(crate) field_share: SecretVec<Field>,
    pub(crate) proof_share: SecretVec<Field>,
}

impl fmt::Debug for LeaderInputShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LeaderInputShare(<redacted: {} words, {} field, {} proof>)",
            self.words.len(),
            self.field_share.len(),
            self.proof_share.len()
        )
    }
}

/// A helper's input share: one seed from which its `Z_q` share, its `F_p` share and
/// its proof share expand. Secret (the [`Seed`] type).
#[derive(Debug)]
pub struct HelperInputShare {
    pub(crate) seed: Seed,
}

impl HelperInputShare {
    /// Wraps a seed (e.g. after decryption).
    pub fn from_seed(seed: Seed) -> Self {
        Self { seed }
    }
}

/// One aggregator's input share.
#[derive(Debug)]
pub enum InputShare {
    /// Aggregator 0.
    Leader(LeaderInputShare),
    /// Aggregators `1..n`.
    Helper(HelperInputShare),
}

/// What [`CarryLift::shard`] produces: the public share, the leader's share and one
/// share per helper (helper `j` at index `j − 1`).
#[derive(Debug)]
pub struct Report {
    /// Sent to every aggregator.
    pub public_share: PublicShare,
    /// For aggregator 0.
    pub leader_share: LeaderInputShare,
    /// For aggregators `1..n`.
    pub helper_shares: Vec<HelperInputShare>,
}

impl Report {
    /// The public share and the `n` input shares in aggregator order.
    pub fn into_input_shares(self) -> (PublicShare, Vec<InputShare>) {
        let mut shares = Vec::with_capacity(1 + self.helper_shares.len());
        shares.push(InputShare::Leader(self.leader_share));
        shares.extend(self.helper_shares.into_iter().map(InputShare::Helper));
        (self.public_share, shares)
    }
}

/// One aggregator's verifier share, sent to the others; the shares are summed in
/// [`CarryLift::decide`]. The sum is zero-knowledge (module docs of [`crate::flp`]).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierShare {
    pub(crate) joint_rand_seed: [u8; 32],
    pub(crate) values: Vec<Field>,
}

impl VerifierShare {
    /// The verifier share's field elements.
    pub fn values(&self) -> &[Field] {
        &self.values
    }

    /// The joint-randomness seed this aggregator derived.
    pub fn joint_rand_seed(&self) -> &[u8; 32] {
        &self.joint_rand_seed
    }
}

impl fmt::Debug for VerifierShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierShare({} elements)", self.values.len())
    }
}

impl Encode for PublicShare {
    fn encode(&self, out: &mut Vec<u8>) {
        for p in &self.parts {
            out.extend_from_slice(p);
        }
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(32 * self.parts.len())
    }
}

impl Encode for LeaderInputShare {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.blind.expose_secret());
        crate::words::encode_words(self.words.expose_secret(), self.word_bytes, out);
        for v in self.field_share.expose_secret() {
            v.encode_into(out);
        }
        for v in self.proof_share.expose_secret() {
            v.encode_into(out);
        }
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(
            32 + self.words.len() * self.word_bytes
                + 8 * (self.field_share.len() + self.proof_share.len()),
        )
    }
}

impl Encode for HelperInputShare {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.seed.expose_secret());
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(32)
    }
}

impl Encode for VerifierShare {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.joint_rand_seed);
        for v in &self.values {
            v.encode_into(out);
        }
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(32 + 8 * self.values.len())
    }
}

impl CarryLift {
    /// Decodes a [`PublicShare`] for this task.
    pub fn decode_public_share(&self, bytes: &[u8]) -> Result<PublicShare, CarryLiftError> {
        let mut r = Reader::new(bytes);
        let mut parts = Vec::with_capacity(self.params.num_aggregators);
        for _ in 0..self.params.num_aggregators {
            parts.push(r.read_array::<32>()?);
        }
        r.finish()?;
        Ok(PublicShare { parts })
    }

    /// Decodes a [`LeaderInputShare`] for this task.
    pub fn decode_leader_share(&self, bytes: &[u8]) -> Result<LeaderInputShare, CarryLiftError> {
        if bytes.len() != self.leader_share_len() {
            return Err(CodecError::InvalidValue {
                what: "leader share length",
            }
            .into());
        }
        let mut r = Reader::new(bytes);
        let blind = Seed::from_bytes(r.read_array::<32>()?);
        let word_bytes = self.word_bytes();
        let words = crate::words::read_words(&mut r, self.params.dimension, word_bytes)?;
        let field_share = read_field_vec(&mut r, self.circuit.range_entries())?;
        let proof_share = read_field_vec(&mut r, self.proof_len())?;
        r.finish()?;
        Ok(LeaderInputShare {
            blind,
            words,
            word_bytes,
            field_share,
            proof_share,
        })
    }

    /// Decodes a [`HelperInputShare`].
    pub fn decode_helper_share(&self, bytes: &[u8]) -> Result<HelperInputShare, CarryLiftError> {
        let mut r = Reader::new(bytes);
        let seed = Seed::from_bytes(r.read_array::<32>()?);
        r.finish()?;
        Ok(HelperInputShare { seed })
    }

    /// Decodes a [`VerifierShare`] for this task.
    pub fn decode_verifier_share(&self, bytes: &[u8]) -> Result<VerifierShare, CarryLiftError> {
        if bytes.len() != self.verifier_share_len() {
            return Err(CodecError::InvalidValue {
                what: "verifier share length",
            }
            .into());
        }
        let mut r = Reader::new(bytes);
        let joint_rand_seed = r.read_array::<32>()?;
        let mut values = Vec::with_capacity(self.verifier_len());
        for _ in 0..self.verifier_len() {
            values.push(r.read_field::<Field>()?);
        }
        r.finish()?;
        Ok(VerifierShare {
            joint_rand_seed,
            values,
        })
    }
}

fn read_field_vec(r: &mut Reader<'_>, len: usize) -> Result<SecretVec<Field>, CarryLiftError> {
    let bytes = len
        .checked_mul(Field::ENCODED_SIZE)
        .ok_or(CodecError::InvalidValue {
            what: "field count",
        })?;
    let raw = r.read_bytes(bytes)?;
    let mut out = SecretVec::<Field>::zeroed(len);
    Field::decode_all(raw, out.expose_secret_mut()).map_err(|_| CodecError::NotCanonical)?;
    Ok(out)
}
