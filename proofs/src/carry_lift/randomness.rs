//! Joint randomness (Fiat–Shamir over the shares) and query randomness (from the
//! aggregators' verify key). Formats in the module docs of [`crate::carry_lift`].

use cairn_mpc::field::FieldElement;
use cairn_mpc::prg::{PROTOCOL_VERSION, Prg, Usage};
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_mpc::sharing::ShareContext;
use sha2::{Digest, Sha256};

use super::Field;

const PART_LABEL: &[u8] = b"cairn/carry-lift/joint-rand-part";
const SEED_LABEL: &[u8] = b"cairn/carry-lift/joint-rand-seed";

/// The hash of the joint-randomness parts and seed: a parameter of the task, so
/// every party of a task uses the same one and a task never changes it.
///
/// Both are collision-resistant 256-bit hashes, which is all the Fiat–Shamir argument
/// needs of them (module docs of [`crate::carry_lift`]). BLAKE3 hashes the leader's
/// share about four times as fast as SHA-256 with the SHA extensions; SHA-256 is the
/// default because task files written before the choice existed mean SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JointRandHash {
    /// SHA-256 (FIPS 180-4).
    #[default]
    Sha256,
    /// BLAKE3 (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, 2020), 256-bit output.
    Blake3,
}

/// One of the two hashes, fed incrementally. The BLAKE3 state is wiped when dropped
/// (`sha2`'s wipes itself): the leader's part hashes its secret share.
enum Hasher {
    Sha256(Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(hash: JointRandHash) -> Self {
        match hash {
            JointRandHash::Sha256 => Self::Sha256(Sha256::new()),
            JointRandHash::Blake3 => Self::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    fn finalize(mut self) -> [u8; 32] {
        match &mut self {
            Self::Sha256(h) => core::mem::take(h).finalize().into(),
            Self::Blake3(h) => h.finalize().into(),
        }
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        if let Self::Blake3(h) = self {
            zeroize::Zeroize::zeroize(h.as_mut());
        }
    }
}

/// A helper's joint-randomness part: its share is the expansion of its seed, so the
/// seed commits to it.
pub(crate) fn helper_part(
    hash: JointRandHash,
    ctx: &ShareContext,
    party: u8,
    seed: &Seed,
) -> [u8; 32] {
    let mut h = part_hasher(hash, ctx, party);
    h.update(seed.expose_secret());
    h.finalize()
}

/// The leader's joint-randomness part over its blind and explicit input share.
pub(crate) fn leader_part(
    hash: JointRandHash,
    ctx: &ShareContext,
    blind: &Seed,
    words: &[u32],
    word_bytes: usize,
    field_share: &[Field],
) -> [u8; 32] {
    // 64 KiB per update: BLAKE3 hashes whole 1 KiB chunks 16 at a time (AVX-512) only
    // within one update; small updates fall back to one chunk at a time.
    const BUF: usize = 1 << 16;
    let mut h = part_hasher(hash, ctx, 0);
    h.update(blind.expose_secret());
    // The encodings go through a fixed buffer, written by index: the same bytes as the
    // wire encoding, without a growing vector per element.
    let mut buf = SecretVec::<u8>::zeroed(BUF);
    let width = word_bytes.clamp(1, 4);
    for chunk in words.chunks(BUF / width) {
        let bytes = &mut buf.expose_secret_mut()[..chunk.len() * width];
        crate::words::write_words(chunk, width, bytes);
        h.update(bytes);
    }
    const SIZE: usize = Field::ENCODED_SIZE;
    for chunk in field_share.chunks(BUF / SIZE) {
        let bytes = &mut buf.expose_secret_mut()[..chunk.len() * SIZE];
        for (out, v) in bytes.chunks_exact_mut(SIZE).zip(chunk) {
            out.copy_from_slice(&v.as_u64().to_le_bytes());
        }
        h.update(bytes);
    }
    h.finalize()
}

fn part_hasher(hash: JointRandHash, ctx: &ShareContext, party: u8) -> Hasher {
    let mut h = Hasher::new(hash);
    h.update(PART_LABEL);
    h.update(&[PROTOCOL_VERSION]);
    h.update(&ctx.task_id);
    h.update(&ctx.report_id);
    h.update(&[party]);
    h
}

/// The joint-randomness seed from all parts (in party order).
pub(crate) fn joint_rand_seed(
    hash: JointRandHash,
    ctx: &ShareContext,
    parts: &[[u8; 32]],
) -> [u8; 32] {
    let mut h = Hasher::new(hash);
    h.update(SEED_LABEL);
    h.update(&[PROTOCOL_VERSION]);
    h.update(&ctx.task_id);
    h.update(&ctx.report_id);
    h.update(&[parts.len() as u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// `len` joint-randomness elements, uniform over `F^*` (zeros are skipped, in stream
/// order, so every party derives the same vector).
pub(crate) fn expand_joint_rand(ctx: &ShareContext, seed: &[u8; 32], len: usize) -> Vec<Field> {
    let mut prg = Prg::new(
        &Seed::from_bytes(*seed),
        &ctx.domain(0, Usage::JointRandSeed),
    );
    let mut out = vec![Field::ZERO; len];
    prg.fill_field(&mut out);
    for v in out.iter_mut() {
        while *v == Field::ZERO {
            *v = prg.next_field();
        }
    }
    out
}

/// The `count` query points: uniform, pairwise distinct, outside the domain of size
/// `domain_size` (`t^P ≠ 1`), derived from the verify key and the report.
pub(crate) fn query_points(
    ctx: &ShareContext,
    verify_key: &Seed,
    domain_size: usize,
    count: usize,
) -> Vec<Field> {
    let mut prg = Prg::new(verify_key, &ctx.domain(0, Usage::QueryRand));
    let mut out: Vec<Field> = Vec::with_capacity(count);
    while out.len() < count {
        let t: Field = prg.next_field();
        if t.pow(domain_size as u128) != Field::ONE && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}
