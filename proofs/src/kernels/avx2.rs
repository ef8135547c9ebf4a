//! Goldilocks NTT stages on four lanes at once (AVX2), for CPUs without AVX-512F and
//! transforms of at least four points. The layout follows [`super::avx512`]: the
//! stages whose butterfly groups are at least four wide pair lane with lane across
//! two vectors; the two narrower ones (`half = 1, 2`) stay inside one vector of four
//! values and meet their partners through a lane permutation.
//!
//! The arithmetic is the scalar `gl` module's, lane by lane. AVX2 has neither mask
//! registers nor unsigned 64-bit comparisons, so:
//!
//! * `x < y` (unsigned) is the signed comparison of `x ⊕ 2^63` and `y ⊕ 2^63`
//!   (flipping the top bit maps the unsigned order onto the signed one), giving an
//!   all-ones lane where it holds;
//! * a conditional correction adds or subtracts `mask & constant`.
//!
//! No lane takes a data-dependent branch. `a·b` is built from four 32×32-bit products
//! (`_mm256_mul_epu32`) and reduced with `2^64 ≡ ε = 2^32 − 1` and `2^96 ≡ −1`, as in
//! the scalar code. Both paths give the canonical result, so a transform is
//! bit-identical with or without this module; the tests compare them on every size up
//! to 2^12, on any CPU with AVX2 (whether or not it would prefer AVX-512F).
//!
//! # Unsafe code
//! Two kinds, each with its reason at the site: the 32-byte unaligned loads and
//! stores, which only ever read or write one `[u64; 4]` behind a reference; and the
//! call into the `#[target_feature(enable = "avx2")]` functions, made only after
//! `is_x86_feature_detected!("avx2")` returned true on this CPU.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256, _mm256_blend_epi32,
    _mm256_cmpgt_epi64, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_or_si256,
    _mm256_permute4x64_epi64, _mm256_set1_epi64x, _mm256_slli_epi64, _mm256_srli_epi64,
    _mm256_storeu_si256, _mm256_sub_epi64, _mm256_xor_si256,
};
use std::sync::OnceLock;

use cairn_mpc::field::Field64;

/// Lanes per vector: the narrowest butterfly group these stages handle.
pub(super) const LANES: usize = 4;

const P: u64 = 0xFFFF_FFFF_0000_0001;
const EPSILON: u64 = 0xFFFF_FFFF;
const SIGN: u64 = 1 << 63;

/// Whether this CPU has AVX2 (checked once).
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
}

/// Runs every decimation-in-time stage on `raw` (length `n ≥ LANES`, a power of two;
/// `twiddles` the stage tables of [`crate::ntt::stage_twiddles`]). Returns `false`,
/// touching nothing, when the CPU lacks AVX2 or `n < LANES`.
pub(super) fn dit(raw: &mut [u64], twiddles: &[Field64]) -> bool {
    if !available() || raw.len() < LANES {
        return false;
    }
    debug_assert!(raw.len().is_power_of_two(), "NTT sizes are powers of two");
    let tables = raw_tables(twiddles);
    // SAFETY: the function needs AVX2, which `available()` has just confirmed on this
    // CPU; it has no other requirement.
    unsafe { dit_avx2(raw, &tables) };
    true
}

/// Runs every decimation-in-frequency stage on `raw`; `false`, touching nothing,
/// without AVX2 or when `n < LANES`.
pub(super) fn dif(raw: &mut [u64], twiddles: &[Field64]) -> bool {
    if !available() || raw.len() < LANES {
        return false;
    }
    debug_assert!(raw.len().is_power_of_two(), "NTT sizes are powers of two");
    let tables = raw_tables(twiddles);
    // SAFETY: as in `dit`: AVX2 is present on this CPU.
    unsafe { dif_avx2(raw, &tables) };
    true
}

/// The stage tables as plain `u64`s, at their usual offsets (`half − 1`).
fn raw_tables(twiddles: &[Field64]) -> Vec<u64> {
    twiddles.iter().map(|w| w.as_u64()).collect()
}

#[target_feature(enable = "avx2")]
fn dit_avx2(raw: &mut [u64], tables: &[u64]) {
    let c = Consts::new();
    let small = SmallStages::new(tables);
    let (groups, _) = raw.as_chunks_mut::<LANES>();
    for group in groups {
        store(group, small.dit(load(group), &c));
    }
    let n = raw.len();
    let mut half = LANES;
    while half < n {
        let stage = &tables[half - 1..2 * half - 1];
        for block in raw.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            let (lo, _) = lo.as_chunks_mut::<LANES>();
            let (hi, _) = hi.as_chunks_mut::<LANES>();
            let (stage, _) = stage.as_chunks::<LANES>();
            for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(stage) {
                let a = load(u);
                let t = mul(load(v), load(w), &c);
                store(u, add(a, t, &c));
                store(v, sub(a, t, &c));
            }
        }
        half *= 2;
    }
}

#[target_feature(enable = "avx2")]
fn dif_avx2(raw: &mut [u64], tables: &[u64]) {
    let c = Consts::new();
    let mut half = raw.len() / 2;
    while half >= LANES {
        let stage = &tables[half - 1..2 * half - 1];
        for block in raw.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            let (lo, _) = lo.as_chunks_mut::<LANES>();
            let (hi, _) = hi.as_chunks_mut::<LANES>();
            let (stage, _) = stage.as_chunks::<LANES>();
            for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(stage) {
                let (a, b) = (load(u), load(v));
                store(u, add(a, b, &c));
                store(v, mul(sub(a, b, &c), load(w), &c));
            }
        }
        half /= 2;
    }
    let small = SmallStages::new(tables);
    let (groups, _) = raw.as_chunks_mut::<LANES>();
    for group in groups {
        store(group, small.dif(load(group), &c));
    }
}

/// The two stages inside each group of four (`half = 1, 2`), within one vector.
/// Lane `i` meets its partner `i ^ half` through a permutation (`PERM`: lanes
/// `[1, 0, 3, 2]` for `half = 1`, `[2, 3, 0, 1]` for `half = 2`); the lanes with the
/// `half` bit set take the `v` role (`V_LANES`: the 32-bit halves of lanes 1 and 3,
/// or of lanes 2 and 3); every lane gets its pair's twiddle `w_{i mod half}`.
struct SmallStages {
    /// The twiddles of `half = 1` (`w_0` in every lane) and `half = 2`
    /// (`w_0, w_1, w_0, w_1`).
    twiddles: [__m256i; 2],
}

/// `_mm256_permute4x64_epi64` selector of lanes `[1, 0, 3, 2]`.
const SWAP_ONES: i32 = 0b10_11_00_01;
/// `_mm256_permute4x64_epi64` selector of lanes `[2, 3, 0, 1]`.
const SWAP_TWOS: i32 = 0b01_00_11_10;
/// `_mm256_blend_epi32` mask of 64-bit lanes 1 and 3.
const ODD_LANES: i32 = 0b1100_1100;
/// `_mm256_blend_epi32` mask of 64-bit lanes 2 and 3.
const HIGH_LANES: i32 = 0b1111_0000;

impl SmallStages {
    #[target_feature(enable = "avx2")]
    fn new(tables: &[u64]) -> Self {
        let ones = [tables[0]; LANES];
        let twos = [tables[1], tables[2], tables[1], tables[2]];
        Self {
            twiddles: [load(&ones), load(&twos)],
        }
    }

    /// `half = 1, 2` of decimation in time on one group of four.
    #[target_feature(enable = "avx2")]
    fn dit(&self, x: __m256i, c: &Consts) -> __m256i {
        let x = dit_stage::<SWAP_ONES, ODD_LANES>(x, self.twiddles[0], c);
        dit_stage::<SWAP_TWOS, HIGH_LANES>(x, self.twiddles[1], c)
    }

    /// `half = 2, 1` of decimation in frequency on one group of four.
    #[target_feature(enable = "avx2")]
    fn dif(&self, x: __m256i, c: &Consts) -> __m256i {
        let x = dif_stage::<SWAP_TWOS, HIGH_LANES>(x, self.twiddles[1], c);
        dif_stage::<SWAP_ONES, ODD_LANES>(x, self.twiddles[0], c)
    }
}

/// One in-vector decimation-in-time stage: `(u, v) → (u + w·v, u − w·v)`.
#[target_feature(enable = "avx2")]
fn dit_stage<const PERM: i32, const V_LANES: i32>(x: __m256i, w: __m256i, c: &Consts) -> __m256i {
    let y = _mm256_permute4x64_epi64::<PERM>(x);
    let u = _mm256_blend_epi32::<V_LANES>(x, y);
    let v = _mm256_blend_epi32::<V_LANES>(y, x);
    let t = mul(v, w, c);
    _mm256_blend_epi32::<V_LANES>(add(u, t, c), sub(u, t, c))
}

/// One in-vector decimation-in-frequency stage: `(u, v) → (u + v, (u − v)·w)`.
#[target_feature(enable = "avx2")]
fn dif_stage<const PERM: i32, const V_LANES: i32>(x: __m256i, w: __m256i, c: &Consts) -> __m256i {
    let y = _mm256_permute4x64_epi64::<PERM>(x);
    let u = _mm256_blend_epi32::<V_LANES>(x, y);
    let v = _mm256_blend_epi32::<V_LANES>(y, x);
    let d = mul(sub(u, v, c), w, c);
    _mm256_blend_epi32::<V_LANES>(add(u, v, c), d)
}

/// `p`, `ε`, `2^63` and `p ⊕ 2^63` in every lane.
struct Consts {
    p: __m256i,
    epsilon: __m256i,
    sign: __m256i,
    p_flipped: __m256i,
}

impl Consts {
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        Self {
            p: _mm256_set1_epi64x(P as i64),
            epsilon: _mm256_set1_epi64x(EPSILON as i64),
            sign: _mm256_set1_epi64x(SIGN as i64),
            p_flipped: _mm256_set1_epi64x((P ^ SIGN) as i64),
        }
    }
}

#[target_feature(enable = "avx2")]
fn load(values: &[u64; LANES]) -> __m256i {
    // SAFETY: the pointer comes from a reference to exactly four u64s (32 readable
    // bytes); `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(values.as_ptr().cast()) }
}

#[target_feature(enable = "avx2")]
fn store(values: &mut [u64; LANES], v: __m256i) {
    // SAFETY: the pointer comes from an exclusive reference to exactly four u64s (32
    // writable bytes); `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_si256(values.as_mut_ptr().cast(), v) }
}

/// All ones in the lanes where `x < y` as unsigned numbers.
#[target_feature(enable = "avx2")]
fn less_than(x: __m256i, y: __m256i, c: &Consts) -> __m256i {
    _mm256_cmpgt_epi64(_mm256_xor_si256(y, c.sign), _mm256_xor_si256(x, c.sign))
}

/// `s − p` in the lanes where `s ≥ p`, `s` elsewhere.
#[target_feature(enable = "avx2")]
fn reduce_once(s: __m256i, c: &Consts) -> __m256i {
    let below_p = _mm256_cmpgt_epi64(c.p_flipped, _mm256_xor_si256(s, c.sign));
    _mm256_sub_epi64(s, _mm256_andnot_si256(below_p, c.p))
}

/// `a + b mod p` on canonical lanes.
#[target_feature(enable = "avx2")]
fn add(a: __m256i, b: __m256i, c: &Consts) -> __m256i {
    let s = _mm256_add_epi64(a, b);
    let carry = less_than(s, a, c);
    // A carry is worth 2^64 ≡ ε; then s + ε < p cannot carry again.
    let s = _mm256_add_epi64(s, _mm256_and_si256(carry, c.epsilon));
    reduce_once(s, c)
}

/// `a − b mod p` on canonical lanes.
#[target_feature(enable = "avx2")]
fn sub(a: __m256i, b: __m256i, c: &Consts) -> __m256i {
    let d = _mm256_sub_epi64(a, b);
    let borrow = less_than(a, b, c);
    // On a borrow the wrapped value is too large by 2^64 − p = ε.
    _mm256_sub_epi64(d, _mm256_and_si256(borrow, c.epsilon))
}

/// `a·b mod p` on canonical lanes.
#[target_feature(enable = "avx2")]
fn mul(a: __m256i, b: __m256i, c: &Consts) -> __m256i {
    // a·b = hh·2^64 + (hl + lh)·2^32 + ll over the 32-bit halves, carried so that no
    // partial sum exceeds 64 bits.
    let (a_hi, b_hi) = (_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(b));
    let ll = _mm256_mul_epu32(a, b);
    let lh = _mm256_mul_epu32(a, b_hi);
    let hl = _mm256_mul_epu32(a_hi, b);
    let hh = _mm256_mul_epu32(a_hi, b_hi);
    let t = _mm256_add_epi64(hl, _mm256_srli_epi64::<32>(ll));
    let u = _mm256_add_epi64(lh, _mm256_and_si256(t, c.epsilon));
    let lo = _mm256_or_si256(_mm256_slli_epi64::<32>(u), _mm256_and_si256(ll, c.epsilon));
    let hi = _mm256_add_epi64(
        hh,
        _mm256_add_epi64(_mm256_srli_epi64::<32>(t), _mm256_srli_epi64::<32>(u)),
    );
    reduce(lo, hi, c)
}

/// `lo + 2^64·hi mod p`, as the scalar `gl::mul` reduces: with `hi = hh·2^32 + hl`,
/// `2^96 ≡ −1` and `2^64 ≡ ε`, the value is `lo − hh + hl·ε`.
#[target_feature(enable = "avx2")]
fn reduce(lo: __m256i, hi: __m256i, c: &Consts) -> __m256i {
    let hi_hi = _mm256_srli_epi64::<32>(hi);
    let hi_lo = _mm256_and_si256(hi, c.epsilon);
    let borrow = less_than(lo, hi_hi, c);
    let t0 = _mm256_sub_epi64(
        _mm256_sub_epi64(lo, hi_hi),
        _mm256_and_si256(borrow, c.epsilon),
    );
    // hl·ε = hl·2^32 − hl, below 2^64 since hl < 2^32.
    let t1 = _mm256_sub_epi64(_mm256_slli_epi64::<32>(hi_lo), hi_lo);
    let s = _mm256_add_epi64(t0, t1);
    let carry = less_than(s, t0, c);
    let s = _mm256_add_epi64(s, _mm256_and_si256(carry, c.epsilon));
    reduce_once(s, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::field::FieldElement;
    use proptest::prelude::*;

    /// The edge lanes: 0, 1, ε, ε ± 1, p − 1, p − 2, 2^63 and random values.
    fn lane() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(EPSILON - 1),
            Just(EPSILON),
            Just(EPSILON + 1),
            Just(P - 1),
            Just(P - 2),
            Just(1 << 63),
            0..P,
        ]
    }

    #[derive(Clone, Copy)]
    enum Op {
        Add,
        Sub,
        Mul,
    }

    /// One lane-wise operation on the vector unit.
    fn lanes(op: Op, a: [u64; LANES], b: [u64; LANES]) -> [u64; LANES] {
        #[target_feature(enable = "avx2")]
        fn run(op: Op, a: &[u64; LANES], b: &[u64; LANES], out: &mut [u64; LANES]) {
            let c = Consts::new();
            let (a, b) = (load(a), load(b));
            let v = match op {
                Op::Add => add(a, b, &c),
                Op::Sub => sub(a, b, &c),
                Op::Mul => mul(a, b, &c),
            };
            store(out, v);
        }
        let mut out = [0u64; LANES];
        assert!(available(), "the caller checks for AVX2");
        // SAFETY: AVX2 is present (asserted above).
        unsafe { run(op, &a, &b, &mut out) };
        out
    }

    proptest! {
        #[test]
        fn lane_arithmetic_matches_the_field(a in proptest::array::uniform4(lane()),
                                             b in proptest::array::uniform4(lane())) {
            if !available() {
                // Nothing to compare on this CPU: `dit` and `dif` decline (asserted).
                prop_assert!(!dit(&mut [0; 8], &[Field64::ONE; 7]));
                return Ok(());
            }
            let field = |v: u64| Field64::new(v).expect("canonical");
            let sum = lanes(Op::Add, a, b);
            let difference = lanes(Op::Sub, a, b);
            let product = lanes(Op::Mul, a, b);
            for i in 0..LANES {
                prop_assert_eq!(sum[i], (field(a[i]) + field(b[i])).as_u64());
                prop_assert_eq!(difference[i], (field(a[i]) - field(b[i])).as_u64());
                prop_assert_eq!(product[i], (field(a[i]) * field(b[i])).as_u64());
            }
        }

        /// Called directly (not through the dispatch, which prefers AVX-512F where it
        /// exists), both transforms equal the scalar stages at every size from one
        /// vector to 2^12.
        #[test]
        fn transforms_match_the_scalar_stages(seed in any::<u64>(), log_n in 2u32..=12) {
            use rand_chacha::ChaCha20Rng;
            use rand_core::SeedableRng;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let n = 1usize << log_n;
            let raw: Vec<u64> = (0..n).map(|_| Field64::random(&mut rng).as_u64()).collect();
            let mut powers: Vec<Field64> = (0..n / 2).map(|_| Field64::random(&mut rng)).collect();
            powers[0] = Field64::ONE;
            let tables = crate::ntt::stage_twiddles(&powers);
            for frequency in [false, true] {
                let mut scalar = raw.clone();
                let mut vector = raw.clone();
                let ran = if frequency {
                    super::super::dif_raw(&mut scalar, &tables, false);
                    dif(&mut vector, &tables)
                } else {
                    super::super::dit_raw(&mut scalar, &tables, false);
                    dit(&mut vector, &tables)
                };
                prop_assert_eq!(ran, available());
                if ran {
                    prop_assert_eq!(&vector, &scalar);
                } else {
                    prop_assert_eq!(&vector, &raw);
                }
            }
        }
    }
}
