//! Additive n-of-n secret sharing with seed-compressed helper shares.
//!
//! A vector `x` over a group `G` (a prime field, or `Z_{2^b}`) is split among `n`
//! parties, `2 ≤ n ≤ 16`: party 0 (the leader) and parties `1..n` (the helpers).
//!
//! * Helper `j` gets a fresh uniform 32-byte [`Seed`] `s_j`; its share is the
//!   expansion `x_j = Prg(s_j, (task, report, j, usage))` ∈ `G^d`
//!   ([`crate::prg`]), so a helper's share costs 32 bytes on the wire whatever `d`.
//! * The leader gets the explicit share `x_0 = x − Σ_{j≥1} x_j`.
//!
//! Then `Σ_{j=0}^{n−1} x_j = x` (reconstruction), and sharing is linear: adding the
//! shares of `x` and of `y` party by party gives shares of `x + y`, which is how the
//! aggregators sum reports without seeing them.
//!
//! **Privacy.** Any `n − 1` shares are independent and uniform on `G^d`, whatever `x`
//! is: if the missing share is a helper's, `x_1..x_{n−1}` minus one are uniform by the
//! PRG's security and the leader's share is masked by the missing helper stream; if
//! the missing share is the leader's, the helpers' streams are uniform and independent
//! of `x`. So privacy holds if at least one party is honest (DESIGN.md §2).
//!
//! The same helper seed is expanded once per [`Usage`] (e.g. the `Z_q` input share
//! and the field share of the carries, DESIGN.md §5): [`generate_helper_seeds`] once,
//! then [`leader_share_zq`] / [`leader_share_field`] for each vector with its usage.
//! [`share_zq`] and [`share_field`] do both steps for a single vector.

use core::marker::PhantomData;

use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::field::FieldElement;
use crate::prg::{Domain, Prg, REPORT_ID_LEN, TASK_ID_LEN, Usage};
use crate::secret::{SecretVec, Seed};
use crate::vector::{self, VectorError};
use crate::zq::ZqWord;

/// The smallest number of parties.
pub const MIN_PARTIES: usize = 2;
/// The largest number of parties.
pub const MAX_PARTIES: usize = 16;

/// Errors from sharing and reconstruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SharingError {
    /// The number of parties is outside `2..=16`.
    #[error("number of parties must be in {MIN_PARTIES}..={MAX_PARTIES}, got {0}")]
    PartyCount(usize),
    /// A helper's party index is outside `1..16` (0 is the leader, who has no seed).
    #[error("helper party index must be in 1..{MAX_PARTIES}, got {0}")]
    HelperIndex(u8),
    /// Reconstruction was given no shares.
    #[error("no shares to reconstruct from")]
    NoShares,
    /// Share vectors of different lengths.
    #[error(transparent)]
    Length(#[from] VectorError),
}

/// The public context of one report's sharing: which task and which report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShareContext {
    /// The task.
    pub task_id: [u8; TASK_ID_LEN],
    /// The report (unique within the task).
    pub report_id: [u8; REPORT_ID_LEN],
}

impl ShareContext {
    /// A context for `report_id` in `task_id`.
    pub const fn new(task_id: [u8; TASK_ID_LEN], report_id: [u8; REPORT_ID_LEN]) -> Self {
        Self { task_id, report_id }
    }

    /// The PRG domain of `party`'s stream for `usage` in this report.
    pub const fn domain(&self, party: u8, usage: Usage) -> Domain {
        Domain {
            task_id: self.task_id,
            report_id: self.report_id,
            party,
            usage,
        }
    }
}

/// The shares of one vector: the leader's explicit share and one seed per helper
/// (`helper_seeds[j − 1]` belongs to party `j`).
#[derive(Debug)]
pub struct Sharing<T: Zeroize + 'static> {
    /// Party 0's share `x − Σ_j x_j`.
    pub leader_share: SecretVec<T>,
    /// Parties `1..n`'s seeds, in party order.
    pub helper_seeds: Vec<Seed>,
}

/// Draws `n − 1` fresh helper seeds (parties `1..n`), after checking `n`.
pub fn generate_helper_seeds<R: CryptoRng + ?Sized>(
    n: usize,
    rng: &mut R,
) -> Result<Vec<Seed>, SharingError> {
    check_party_count(n)?;
    Ok((1..n).map(|_| Seed::generate(rng)).collect())
}

/// Shares `x` over a field among `n` parties ([`Usage::FieldShare`] streams).
pub fn share_field<F: FieldElement, R: CryptoRng + ?Sized>(
    x: &[F],
    ctx: &ShareContext,
    n: usize,
    rng: &mut R,
) -> Result<Sharing<F>, SharingError> {
    share::<FieldGroup<F>, R>(x, ctx, n, Usage::FieldShare, rng)
}

/// Shares `x` over `Z_{2^b}` among `n` parties ([`Usage::ZqShare`] streams).
pub fn share_zq<W: ZqWord, R: CryptoRng + ?Sized>(
    x: &[W],
    ctx: &ShareContext,
    n: usize,
    rng: &mut R,
) -> Result<Sharing<W>, SharingError> {
    share::<ZqGroup<W>, R>(x, ctx, n, Usage::ZqShare, rng)
}

/// The leader's field share `x − Σ_j Prg(helper_seeds[j−1], (ctx, j, usage))`, for
/// given helper seeds (`1 ≤ helper_seeds.len() ≤ 15`).
pub fn leader_share_field<F: FieldElement>(
    x: &[F],
    ctx: &ShareContext,
    helper_seeds: &[Seed],
    usage: Usage,
) -> Result<SecretVec<F>, SharingError> {
    leader_share::<FieldGroup<F>>(x, ctx, helper_seeds, usage)
}

/// The leader's `Z_{2^b}` share `x − Σ_j Prg(helper_seeds[j−1], (ctx, j, usage))`.
pub fn leader_share_zq<W: ZqWord>(
    x: &[W],
    ctx: &ShareContext,
    helper_seeds: &[Seed],
    usage: Usage,
) -> Result<SecretVec<W>, SharingError> {
    leader_share::<ZqGroup<W>>(x, ctx, helper_seeds, usage)
}

/// Helper `party`'s field share of length `len`: the expansion of its seed.
pub fn expand_field_share<F: FieldElement>(
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
    len: usize,
) -> Result<SecretVec<F>, SharingError> {
    expand_share::<FieldGroup<F>>(seed, ctx, party, usage, len)
}

/// Helper `party`'s `Z_{2^b}` share of length `len`: the expansion of its seed.
pub fn expand_zq_share<W: ZqWord>(
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
    len: usize,
) -> Result<SecretVec<W>, SharingError> {
    expand_share::<ZqGroup<W>>(seed, ctx, party, usage, len)
}

/// `acc ← acc + (helper party's field share)`, without materialising the share
/// (what an aggregator does with each accepted report).
pub fn add_expanded_field_share<F: FieldElement>(
    acc: &mut [F],
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
) -> Result<(), SharingError> {
    add_expanded_share::<FieldGroup<F>>(acc, seed, ctx, party, usage)
}

/// `acc ← acc + (helper party's Z_{2^b} share) mod 2^b`, without materialising it.
pub fn add_expanded_zq_share<W: ZqWord>(
    acc: &mut [W],
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
) -> Result<(), SharingError> {
    add_expanded_share::<ZqGroup<W>>(acc, seed, ctx, party, usage)
}

/// `Σ_j shares[j]` over the field: the secret, given all `n` shares.
pub fn reconstruct_field<F: FieldElement>(shares: &[&[F]]) -> Result<Vec<F>, SharingError> {
    reconstruct::<FieldGroup<F>>(shares)
}

/// `Σ_j shares[j] mod 2^b`: the secret, given all `n` shares.
pub fn reconstruct_zq<W: ZqWord>(shares: &[&[W]]) -> Result<Vec<W>, SharingError> {
    reconstruct::<ZqGroup<W>>(shares)
}

/// The group `G` a vector is shared over: what the sharing steps below need of it.
/// Each step is written once for both groups; the `_field` and `_zq` functions above
/// are their public names. Static dispatch: the group operations inline into the
/// streaming loops, which are the aggregators' per-report hot path.
trait Group {
    type Elem: Copy + Default + Zeroize + 'static;
    const ZERO: Self::Elem;
    /// Fills `out` with the PRG's next uniform elements of `G`.
    fn fill(prg: &mut Prg, out: &mut [Self::Elem]);
    fn add(a: &mut Self::Elem, b: Self::Elem);
    fn sub(a: &mut Self::Elem, b: Self::Elem);
    /// `acc ← acc + x`, element-wise, for vectors of equal length.
    fn add_assign(acc: &mut [Self::Elem], x: &[Self::Elem]) -> Result<(), VectorError>;
}

/// A prime field `F`.
struct FieldGroup<F>(PhantomData<F>);

impl<F: FieldElement> Group for FieldGroup<F> {
    type Elem = F;
    const ZERO: F = F::ZERO;
    fn fill(prg: &mut Prg, out: &mut [F]) {
        prg.fill_field(out);
    }
    fn add(a: &mut F, b: F) {
        *a += b;
    }
    fn sub(a: &mut F, b: F) {
        *a -= b;
    }
    fn add_assign(acc: &mut [F], x: &[F]) -> Result<(), VectorError> {
        vector::add_assign(acc, x)
    }
}

/// `Z_{2^b}` in words `W` (wrapping arithmetic).
struct ZqGroup<W>(PhantomData<W>);

impl<W: ZqWord> Group for ZqGroup<W> {
    type Elem = W;
    const ZERO: W = W::ZERO;
    fn fill(prg: &mut Prg, out: &mut [W]) {
        prg.fill_zq(out);
    }
    fn add(a: &mut W, b: W) {
        *a = a.wrapping_add(b);
    }
    fn sub(a: &mut W, b: W) {
        *a = a.wrapping_sub(b);
    }
    fn add_assign(acc: &mut [W], x: &[W]) -> Result<(), VectorError> {
        vector::add_assign_zq(acc, x)
    }
}

fn share<G: Group, R: CryptoRng + ?Sized>(
    x: &[G::Elem],
    ctx: &ShareContext,
    n: usize,
    usage: Usage,
    rng: &mut R,
) -> Result<Sharing<G::Elem>, SharingError> {
    let helper_seeds = generate_helper_seeds(n, rng)?;
    let leader_share = leader_share::<G>(x, ctx, &helper_seeds, usage)?;
    Ok(Sharing {
        leader_share,
        helper_seeds,
    })
}

fn leader_share<G: Group>(
    x: &[G::Elem],
    ctx: &ShareContext,
    helper_seeds: &[Seed],
    usage: Usage,
) -> Result<SecretVec<G::Elem>, SharingError> {
    check_party_count(helper_seeds.len() + 1)?;
    let mut share = SecretVec::new(x.to_vec());
    for (party, seed) in (1u8..).zip(helper_seeds) {
        apply_stream::<G>(
            seed,
            &ctx.domain(party, usage),
            share.expose_secret_mut(),
            G::sub,
        );
    }
    Ok(share)
}

fn expand_share<G: Group>(
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
    len: usize,
) -> Result<SecretVec<G::Elem>, SharingError> {
    check_helper(party)?;
    let mut share = SecretVec::zeroed(len);
    G::fill(
        &mut Prg::new(seed, &ctx.domain(party, usage)),
        share.expose_secret_mut(),
    );
    Ok(share)
}

fn add_expanded_share<G: Group>(
    acc: &mut [G::Elem],
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
) -> Result<(), SharingError> {
    check_helper(party)?;
    apply_stream::<G>(seed, &ctx.domain(party, usage), acc, G::add);
    Ok(())
}

fn reconstruct<G: Group>(shares: &[&[G::Elem]]) -> Result<Vec<G::Elem>, SharingError> {
    let (first, rest) = shares.split_first().ok_or(SharingError::NoShares)?;
    let mut sum = first.to_vec();
    for share in rest {
        G::add_assign(&mut sum, share)?;
    }
    Ok(sum)
}

fn check_party_count(n: usize) -> Result<(), SharingError> {
    if (MIN_PARTIES..=MAX_PARTIES).contains(&n) {
        Ok(())
    } else {
        Err(SharingError::PartyCount(n))
    }
}

fn check_helper(party: u8) -> Result<(), SharingError> {
    if party >= 1 && usize::from(party) < MAX_PARTIES {
        Ok(())
    } else {
        Err(SharingError::HelperIndex(party))
    }
}

/// Elements expanded per PRG call when streaming into a target vector (L1-sized, and
/// a multiple of 4 so every call but the last consumes whole keystream words: the
/// chunked expansion equals the single fill by which [`expand_field_share`] and
/// [`expand_zq_share`] define a share; see [`crate::prg`] on chunking).
const CHUNK: usize = 1024;

/// Streams the expansion of `seed` in `domain` into `target`, combining element-wise
/// with `op(target_i, stream_i)`. The single definition of a helper's share.
fn apply_stream<G: Group>(
    seed: &Seed,
    domain: &Domain,
    target: &mut [G::Elem],
    op: impl Fn(&mut G::Elem, G::Elem),
) {
    let mut prg = Prg::new(seed, domain);
    let mut scratch = [G::ZERO; CHUNK];
    for t in target.chunks_mut(CHUNK) {
        let s = &mut scratch[..t.len()];
        G::fill(&mut prg, s);
        for (a, &r) in t.iter_mut().zip(s.iter()) {
            op(a, r);
        }
    }
    scratch.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Field64;
    use rand_core::SeedableRng;

    fn ctx() -> ShareContext {
        ShareContext::new([1; 32], [2; 16])
    }

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed([42; 32])
    }

    #[test]
    fn party_count_is_checked() {
        let x = [Field64::ONE; 4];
        for n in [0usize, 1, 17, 100] {
            assert_eq!(
                share_field(&x, &ctx(), n, &mut rng()).unwrap_err(),
                SharingError::PartyCount(n)
            );
            assert_eq!(
                share_zq(&[1u16; 4], &ctx(), n, &mut rng()).unwrap_err(),
                SharingError::PartyCount(n)
            );
        }
        assert!(leader_share_field(&x, &ctx(), &[], Usage::FieldShare).is_err());
    }

    #[test]
    fn helper_index_is_checked() {
        let seed = Seed::from_bytes([3; 32]);
        for party in [0u8, 16, 255] {
            assert_eq!(
                expand_field_share::<Field64>(&seed, &ctx(), party, Usage::FieldShare, 3)
                    .unwrap_err(),
                SharingError::HelperIndex(party)
            );
            assert_eq!(
                expand_zq_share::<u8>(&seed, &ctx(), party, Usage::ZqShare, 3).unwrap_err(),
                SharingError::HelperIndex(party)
            );
        }
        assert!(expand_zq_share::<u8>(&seed, &ctx(), 15, Usage::ZqShare, 3).is_ok());
    }

    #[test]
    fn reconstruct_errors() {
        assert_eq!(
            reconstruct_field::<Field64>(&[]),
            Err(SharingError::NoShares)
        );
        assert_eq!(reconstruct_zq::<u16>(&[]), Err(SharingError::NoShares));
        assert_eq!(
            reconstruct_zq::<u16>(&[&[1, 2], &[3]]),
            Err(SharingError::Length(VectorError::LengthMismatch {
                left: 2,
                right: 1
            }))
        );
    }

    #[test]
    fn chunked_expansion_equals_one_fill() {
        // The definition of a helper's share is "one fill of length d"; the chunked
        // streaming must agree with it, also for lengths that are not multiples of 4.
        let seed = Seed::from_bytes([5; 32]);
        for len in [0usize, 1, 3, 1023, 1024, 1025, 3001] {
            let streamed: SecretVec<u8> =
                expand_zq_share(&seed, &ctx(), 1, Usage::ZqShare, len).unwrap();
            let mut whole = vec![0u8; len];
            Prg::new(&seed, &ctx().domain(1, Usage::ZqShare)).fill_zq(&mut whole);
            assert_eq!(streamed.expose_secret(), &whole[..], "len {len}");

            let streamed: SecretVec<Field64> =
                expand_field_share(&seed, &ctx(), 1, Usage::FieldShare, len).unwrap();
            let mut whole = vec![Field64::ZERO; len];
            Prg::new(&seed, &ctx().domain(1, Usage::FieldShare)).fill_field(&mut whole);
            assert_eq!(streamed.expose_secret(), &whole[..], "len {len}");
        }
    }

    #[test]
    fn add_expanded_equals_adding_the_expanded_share() {
        let seed = Seed::from_bytes([6; 32]);
        let mut acc = vec![Field64::from_u64(7); 2000];
        add_expanded_field_share(&mut acc, &seed, &ctx(), 2, Usage::FieldShare).unwrap();
        let share: SecretVec<Field64> =
            expand_field_share(&seed, &ctx(), 2, Usage::FieldShare, 2000).unwrap();
        for (a, s) in acc.iter().zip(share.expose_secret()) {
            assert_eq!(*a, Field64::from_u64(7) + *s);
        }
        let mut acc = vec![9u32; 2000];
        add_expanded_zq_share(&mut acc, &seed, &ctx(), 2, Usage::ZqShare).unwrap();
        let share: SecretVec<u32> =
            expand_zq_share(&seed, &ctx(), 2, Usage::ZqShare, 2000).unwrap();
        for (a, s) in acc.iter().zip(share.expose_secret()) {
            assert_eq!(*a, 9u32.wrapping_add(*s));
        }
    }
}
