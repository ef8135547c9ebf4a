//! Joint randomness (Fiat–Shamir over the shares) and query randomness (from the
//! aggregators' verify key). Formats in the module docs of [`crate::carry_lift`].

use cairn_mpc::field::FieldElement;
use cairn_mpc::prg::{PROTOCOL_VERSION, Prg, Usage};
use cairn_mpc::secret::Seed;
use cairn_mpc::sharing::ShareContext;
use sha2::{Digest, Sha256};

use super::Field;

const PART_LABEL: &[u8] = b"cairn/carry-lift/joint-rand-part";
const SEED_LABEL: &[u8] = b"cairn/carry-lift/joint-rand-seed";

/// A helper's joint-randomness part: its share is the expansion of its seed, so the
/// seed commits to it.
pub(crate) fn helper_part(ctx: &ShareContext, party: u8, seed: &Seed) -> [u8; 32] {
    let mut h = part_hasher(ctx, party);
    h.update(seed.expose_secret());
    h.finalize().into()
}

/// The leader's joint-randomness part over its blind and explicit input share.
pub(crate) fn leader_part(
    ctx: &ShareContext,
    blind: &Seed,
    words: &[u32],
    word_bytes: usize,
    field_share: &[Field],
) -> [u8; 32] {
    const BUF: usize = 4096;
    let mut h = part_hasher(ctx, 0);
    h.update(blind.expose_secret());
    // The encodings go through a fixed buffer, written by index: the same bytes as the
    // wire encoding, without a growing vector per element.
    let mut buf = [0u8; BUF];
    let width = word_bytes.clamp(1, 4);
    for chunk in words.chunks(BUF / width) {
        let bytes = &mut buf[..chunk.len() * width];
        for (out, w) in bytes.chunks_exact_mut(width).zip(chunk) {
            out.copy_from_slice(&w.to_le_bytes()[..width]);
        }
        h.update(bytes);
    }
    const SIZE: usize = Field::ENCODED_SIZE;
    for chunk in field_share.chunks(BUF / SIZE) {
        let bytes = &mut buf[..chunk.len() * SIZE];
        for (out, v) in bytes.chunks_exact_mut(SIZE).zip(chunk) {
            out.copy_from_slice(&v.as_u64().to_le_bytes());
        }
        h.update(bytes);
    }
    zeroize::Zeroize::zeroize(&mut buf);
    h.finalize().into()
}

fn part_hasher(ctx: &ShareContext, party: u8) -> Sha256 {
    let mut h = Sha256::new();
    h.update(PART_LABEL);
    h.update([PROTOCOL_VERSION]);
    h.update(ctx.task_id);
    h.update(ctx.report_id);
    h.update([party]);
    h
}

/// The joint-randomness seed from all parts (in party order).
pub(crate) fn joint_rand_seed(ctx: &ShareContext, parts: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(SEED_LABEL);
    h.update([PROTOCOL_VERSION]);
    h.update(ctx.task_id);
    h.update(ctx.report_id);
    h.update([parts.len() as u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
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
