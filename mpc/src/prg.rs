//! Domain-separated seed expansion with ChaCha20.
//!
//! A helper's share of a report is a 32-byte [`Seed`]; the share *vector* is the
//! seed's expansion. The same seed is expanded for several purposes (the `Z_q` input
//! share, the field share of the carries, proof shares, …), and the same code expands
//! seeds for different tasks, reports and parties. Two expansions must never share a
//! keystream, so each one is keyed by a key derived from the seed **and** its
//! [`Domain`]:
//!
//! ```text
//! key = SHA-256( "cairn/prg"            9 bytes, ASCII
//!              ‖ PROTOCOL_VERSION        1 byte
//!              ‖ seed                   32 bytes
//!              ‖ task_id                32 bytes
//!              ‖ report_id              16 bytes
//!              ‖ party                   1 byte
//!              ‖ usage                   1 byte  (Usage discriminant) )
//! ```
//!
//! Every field has a fixed length, so the encoding is injective and two different
//! `(seed, domain)` pairs hash different strings. Modelling SHA-256 as a random
//! oracle, the keys are independent uniform 256-bit strings, and the keystreams are
//! independent ChaCha20 streams.
//!
//! The keystream is ChaCha20 (20 rounds, 64-bit block counter, 64-bit nonce = 0)
//! keyed by `key`, i.e. exactly `rand_chacha::ChaCha20Rng::from_seed(key)`; the
//! implementation is the `chacha20` crate's, which zeroizes its state on drop and
//! selects its SIMD backend (AVX2/SSE2) at run time. A test checks that both crates
//! give the same stream.
//!
//! Expansion into a prime field uses rejection sampling on consecutive
//! `ENCODED_SIZE`-byte little-endian candidates (see
//! [`FieldElement::try_from_uniform_bytes`]), so field elements are exactly uniform.
//! Expansion into `Z_{2^b}` reads consecutive `b/8`-byte little-endian words (every
//! word is valid).
//!
//! **Chunking.** The keystream is consumed in whole 32-bit words; a fill whose byte
//! length is not a multiple of 4 discards the rest of its last word. So filling a
//! vector in pieces gives the same result as one fill whenever every piece but the
//! last has a byte length divisible by 4 — always true for field elements of 8 or
//! 16 bytes (every Cairn field: `ENCODED_SIZE` must be a multiple of 4), and for
//! `Z_q` pieces of a multiple of 4 elements. Sharing relies on this (tested).
//!
//! [`Prg`] also implements the `rand_core` traits, so samplers can
//! draw from it directly.

use core::convert::Infallible;
use core::fmt;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::field::FieldElement;
use crate::secret::Seed;
use crate::zq::ZqWord;

/// Version of the Cairn wire protocol and derivations; part of every PRG key.
pub const PROTOCOL_VERSION: u8 = 1;

/// The ASCII label that starts every PRG key derivation.
pub const PRG_LABEL: &[u8; 9] = b"cairn/prg";

/// Bytes in a task id.
pub const TASK_ID_LEN: usize = 32;
/// Bytes in a report id.
pub const REPORT_ID_LEN: usize = 16;

/// What an expanded stream is used for. Part of the key derivation, so each use of a
/// seed gets its own stream. The discriminants are part of the protocol: never
/// renumber, only append.
#[non_exhaustive]
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Usage {
    /// A helper's share of the input over `Z_{2^b}`.
    ZqShare = 1,
    /// A helper's share of a vector over the proof field (e.g. the carries).
    FieldShare = 2,
    /// A helper's share of a validity proof.
    ProofShare = 3,
    /// A part of the joint randomness (Fiat–Shamir over the shares).
    JointRandPart = 4,
    /// The seed of the joint randomness.
    JointRandSeed = 5,
    /// Query randomness of the verifiers.
    QueryRand = 6,
    /// Randomness for noise sampling.
    Noise = 7,
}

impl Usage {
    /// Every variant, in discriminant order.
    pub const ALL: [Usage; 7] = [
        Usage::ZqShare,
        Usage::FieldShare,
        Usage::ProofShare,
        Usage::JointRandPart,
        Usage::JointRandSeed,
        Usage::QueryRand,
        Usage::Noise,
    ];

    /// The one-byte discriminant used in key derivations and encodings.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The variant with discriminant `byte`, if any.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_u8() == byte)
    }
}

/// Where an expanded stream is used: task, report, party and usage. Public data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    /// The task the report belongs to.
    pub task_id: [u8; TASK_ID_LEN],
    /// The report (unique per task).
    pub report_id: [u8; REPORT_ID_LEN],
    /// The party whose share this is (0 = leader, 1.. = helpers).
    pub party: u8,
    /// What the stream is for.
    pub usage: Usage,
}

/// A ChaCha20 stream keyed by `SHA-256(label ‖ version ‖ seed ‖ domain)` (module docs).
///
/// Not `Clone` (a copy would repeat the stream); the keystream state is zeroized on
/// drop; `Debug` is redacted.
pub struct Prg {
    stream: ChaCha20Rng,
}

/// Scratch bytes per `fill_bytes` call: large enough to amortise the call, small
/// enough to stay in L1.
const SCRATCH_BYTES: usize = 4096;

impl Prg {
    /// The stream for `seed` in `domain`.
    pub fn new(seed: &Seed, domain: &Domain) -> Self {
        let mut key = derive_key(seed, domain);
        let stream = ChaCha20Rng::from_seed(key);
        key.zeroize();
        Self { stream }
    }

    /// Fills `out` with independent uniform field elements (rejection sampling).
    pub fn fill_field<F: FieldElement>(&mut self, out: &mut [F]) {
        fill_by_rejection(self, out, F::ENCODED_SIZE, F::try_from_uniform_bytes);
    }

    /// One uniform field element.
    pub fn next_field<F: FieldElement>(&mut self) -> F {
        let mut one = [F::ZERO];
        self.fill_field(&mut one);
        one[0]
    }

    /// Fills `out` with independent uniform elements of `Z_{2^b}`.
    pub fn fill_zq<W: ZqWord>(&mut self, out: &mut [W]) {
        let mut scratch = [0u8; SCRATCH_BYTES];
        for dst in out.chunks_mut(SCRATCH_BYTES / W::BYTES) {
            let bytes = &mut scratch[..dst.len() * W::BYTES];
            self.stream.fill_bytes(bytes);
            let decoded = W::decode_le_into(bytes, dst);
            debug_assert!(decoded.is_ok(), "lengths match by construction");
        }
        scratch.zeroize();
    }

    /// One uniform element of `Z_{2^b}`.
    pub fn next_zq<W: ZqWord>(&mut self) -> W {
        let mut one = [W::ZERO];
        self.fill_zq(&mut one);
        one[0]
    }
}

/// Rejection sampling in bulk: draws candidates of `size` bytes from the stream and
/// writes the accepted ones to `out` **in stream order**, so the result equals
/// drawing candidates one at a time and skipping rejected ones.
///
/// Fast path: a scratch block almost never contains a rejected candidate
/// (probability ≈ 2^-32 per Field64 candidate), so a straight loop decodes the whole
/// block; only if something was rejected is the block compacted in a second pass.
fn fill_by_rejection<T: Copy + Default>(
    prg: &mut Prg,
    out: &mut [T],
    size: usize,
    accept: impl Fn(&[u8]) -> Option<T>,
) {
    if size == 0 || size > SCRATCH_BYTES {
        // Not a real field; nothing sensible to draw. Unreachable for our fields.
        return;
    }
    let per_block = SCRATCH_BYTES / size;
    let mut scratch = [0u8; SCRATCH_BYTES];
    let mut filled = 0;
    while filled < out.len() {
        let want = (out.len() - filled).min(per_block);
        let bytes = &mut scratch[..want * size];
        prg.stream.fill_bytes(bytes);
        let dst = &mut out[filled..filled + want];
        let mut all_accepted = true;
        for (o, candidate) in dst.iter_mut().zip(bytes.chunks_exact(size)) {
            let value = accept(candidate);
            all_accepted &= value.is_some();
            *o = value.unwrap_or_default();
        }
        if all_accepted {
            filled += want;
        } else {
            let mut accepted = 0;
            for candidate in bytes.chunks_exact(size) {
                if let Some(value) = accept(candidate) {
                    dst[accepted] = value;
                    accepted += 1;
                }
            }
            filled += accepted;
        }
    }
    scratch.zeroize();
}

/// `SHA-256(label ‖ version ‖ seed ‖ task_id ‖ report_id ‖ party ‖ usage)`.
fn derive_key(seed: &Seed, domain: &Domain) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(PRG_LABEL);
    hasher.update([PROTOCOL_VERSION]);
    hasher.update(seed.expose_secret());
    hasher.update(domain.task_id);
    hasher.update(domain.report_id);
    hasher.update([domain.party]);
    hasher.update([domain.usage.as_u8()]);
    let mut digest = hasher.finalize();
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    digest.as_mut_slice().zeroize();
    key
}

impl fmt::Debug for Prg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prg(<redacted>)")
    }
}

impl TryRng for Prg {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.stream.next_u32())
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.stream.next_u64())
    }

    #[inline]
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.stream.fill_bytes(dst);
        Ok(())
    }
}

impl TryCryptoRng for Prg {}

/// The only field, the `chacha20` stream, zeroizes its key, counter and buffered
/// keystream on drop.
impl ZeroizeOnDrop for Prg {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Field64;

    fn domain(party: u8, usage: Usage) -> Domain {
        Domain {
            task_id: [0x11; 32],
            report_id: [0x22; 16],
            party,
            usage,
        }
    }

    /// The key derivation, written out as one explicit byte string.
    fn reference_key(seed: &[u8; 32], d: &Domain) -> [u8; 32] {
        let mut msg = Vec::new();
        msg.extend_from_slice(b"cairn/prg");
        msg.push(1);
        msg.extend_from_slice(seed);
        msg.extend_from_slice(&d.task_id);
        msg.extend_from_slice(&d.report_id);
        msg.push(d.party);
        msg.push(d.usage as u8);
        assert_eq!(msg.len(), 9 + 1 + 32 + 32 + 16 + 1 + 1);
        Sha256::digest(&msg).into()
    }

    fn reference_stream(seed: &[u8; 32], d: &Domain) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed(reference_key(seed, d))
    }

    #[test]
    fn stream_is_chacha20_under_the_documented_key() {
        let seed_bytes = [0x5A; 32];
        let d = domain(3, Usage::FieldShare);
        let mut prg = Prg::new(&Seed::from_bytes(seed_bytes), &d);
        let mut reference = reference_stream(&seed_bytes, &d);
        for _ in 0..1000 {
            assert_eq!(prg.next_u64(), reference.next_u64());
        }
        let mut a = [0u8; 777];
        let mut b = [0u8; 777];
        prg.fill_bytes(&mut a);
        reference.fill_bytes(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn fill_field_is_sequential_rejection_sampling() {
        let seed_bytes = [1; 32];
        let d = domain(1, Usage::FieldShare);
        let mut prg = Prg::new(&Seed::from_bytes(seed_bytes), &d);
        let mut got = vec![Field64::ZERO; 10_001];
        prg.fill_field(&mut got);
        let mut reference = reference_stream(&seed_bytes, &d);
        let expected: Vec<Field64> = (0..got.len())
            .map(|_| {
                loop {
                    let w = reference.next_u64();
                    if u128::from(w) < Field64::MODULUS {
                        break Field64::new(w).unwrap();
                    }
                }
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn bulk_rejection_keeps_stream_order() {
        // A toy acceptance rule that rejects half of the candidates exercises the
        // compaction path, which Field64 (rejection ≈ 2^-32) practically never hits.
        let seed_bytes = [2; 32];
        let d = domain(1, Usage::ProofShare);
        let accept = |c: &[u8]| (c[0] < 128).then(|| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let mut prg = Prg::new(&Seed::from_bytes(seed_bytes), &d);
        let mut got = vec![0u32; 5000];
        fill_by_rejection(&mut prg, &mut got, 4, accept);
        let mut reference = reference_stream(&seed_bytes, &d);
        let mut expected = Vec::new();
        while expected.len() < got.len() {
            if let Some(v) = accept(&reference.next_u32().to_le_bytes()) {
                expected.push(v);
            }
        }
        expected.truncate(got.len());
        assert_eq!(got, expected);
    }

    #[test]
    fn fill_zq_reads_little_endian_words() {
        let seed_bytes = [3; 32];
        let d = domain(2, Usage::ZqShare);
        let mut prg = Prg::new(&Seed::from_bytes(seed_bytes), &d);
        let mut got = vec![0u16; 5000];
        prg.fill_zq(&mut got);
        let mut bytes = vec![0u8; 10_000];
        reference_stream(&seed_bytes, &d).fill_bytes(&mut bytes);
        let expected: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn field64_expansion_does_not_depend_on_chunking() {
        let seed_bytes = [4; 32];
        let d = domain(1, Usage::FieldShare);
        let mut whole = vec![Field64::ZERO; 9000];
        Prg::new(&Seed::from_bytes(seed_bytes), &d).fill_field(&mut whole);
        let mut pieces = vec![Field64::ZERO; 9000];
        let mut prg = Prg::new(&Seed::from_bytes(seed_bytes), &d);
        let (a, rest) = pieces.split_at_mut(3);
        let (b, c) = rest.split_at_mut(5000);
        prg.fill_field(a);
        prg.fill_field(b);
        prg.fill_field(c);
        assert_eq!(whole, pieces);
    }

    /// Fraction of equal bits between two 8192-bit outputs: ≈ 1/2 for unrelated
    /// streams (standard deviation 1/(2·√8192) ≈ 0.0055).
    fn agreement(a: &Seed, da: &Domain, b: &Seed, db: &Domain) -> f64 {
        let mut x = [0u8; 1024];
        let mut y = [0u8; 1024];
        Prg::new(a, da).fill_bytes(&mut x);
        Prg::new(b, db).fill_bytes(&mut y);
        let differing: u32 = x.iter().zip(&y).map(|(p, q)| (p ^ q).count_ones()).sum();
        1.0 - f64::from(differing) / 8192.0
    }

    #[test]
    fn every_domain_field_separates_streams() {
        let s = Seed::from_bytes([9; 32]);
        let base = domain(1, Usage::ZqShare);
        let mut variants = vec![
            Domain {
                task_id: [0x12; 32],
                ..base
            },
            Domain {
                report_id: [0x23; 16],
                ..base
            },
            Domain { party: 2, ..base },
            Domain {
                usage: Usage::FieldShare,
                ..base
            },
        ];
        let mut rid = base.report_id;
        rid[15] ^= 1; // one bit of the report id
        variants.push(Domain {
            report_id: rid,
            ..base
        });
        assert!((agreement(&s, &base, &s, &base) - 1.0).abs() < f64::EPSILON);
        for v in &variants {
            let a = agreement(&s, &base, &s, v);
            assert!((a - 0.5).abs() < 0.03, "{v:?}: agreement {a}");
        }
        let mut other = [9; 32];
        other[0] = 8;
        let a = agreement(&s, &base, &Seed::from_bytes(other), &base);
        assert!((a - 0.5).abs() < 0.03, "seed: agreement {a}");
    }

    #[test]
    fn usage_discriminants_roundtrip() {
        for (i, u) in Usage::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(u.as_u8()), i + 1);
            assert_eq!(Usage::from_u8(u.as_u8()), Some(u));
        }
        assert_eq!(Usage::from_u8(0), None);
        assert_eq!(Usage::from_u8(8), None);
    }

    #[test]
    fn stream_state_is_zeroized_on_drop() {
        // Compiles only while the chacha20 crate's `zeroize` feature is on, which is
        // what makes `impl ZeroizeOnDrop for Prg` true.
        fn zeroizes_on_drop<T: ZeroizeOnDrop>() {}
        zeroizes_on_drop::<ChaCha20Rng>();
        zeroizes_on_drop::<Prg>();
        zeroizes_on_drop::<Seed>();
    }

    #[test]
    fn debug_is_redacted() {
        let prg = Prg::new(&Seed::from_bytes([1; 32]), &domain(0, Usage::Noise));
        assert_eq!(format!("{prg:?}"), "Prg(<redacted>)");
    }
}
