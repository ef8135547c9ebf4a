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

/// Lanes per vector: the narrowest butterfly group these stages handle.
pub(super) const LANES: usize = 4;

#[cfg(test)]
const P: u64 = 0xFFFF_FFFF_0000_0001;
const EPSILON: u64 = 0xFFFF_FFFF;
const SIGN: u64 = 1 << 63;

/// Whether this CPU has AVX2 (checked once).
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
}

vector_stages!("avx2");

/// The two stages inside each group of four (`half = 1, 2`), within one vector.
/// Lane `i` meets its partner `i ^ half` through a permutation (`PERM`: lanes
/// `[1, 0, 3, 2]` for `half = 1`, `[2, 3, 0, 1]` for `half = 2`); the lanes with the
/// `half` bit set take the `v` role (`V_LANES`: the 32-bit halves of lanes 1 and 3,
/// or of lanes 2 and 3); every lane gets its pair's twiddle `w_{i mod half}`.
struct SmallStages {
    /// The twiddles of `half = 2` (`w_0, w_1, w_0, w_1`); `half = 1` has only
    /// `w_0 = 1` and needs none.
    twiddles: __m256i,
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
        debug_assert_eq!(
            tables.first(),
            Some(&1),
            "the stage tables start with w^0 = 1"
        );
        let twos = [tables[1], tables[2], tables[1], tables[2]];
        Self {
            twiddles: load(&twos),
        }
    }

    /// `half = 1, 2` of decimation in time on one group of four.
    #[target_feature(enable = "avx2")]
    fn dit(&self, x: __m256i, c: &Consts) -> __m256i {
        let x = add_sub_stage::<SWAP_ONES, ODD_LANES>(x, c);
        dit_stage::<SWAP_TWOS, HIGH_LANES>(x, self.twiddles, c)
    }

    /// `half = 2, 1` of decimation in frequency on one group of four.
    #[target_feature(enable = "avx2")]
    fn dif(&self, x: __m256i, c: &Consts) -> __m256i {
        let x = dif_stage::<SWAP_TWOS, HIGH_LANES>(x, self.twiddles, c);
        add_sub_stage::<SWAP_ONES, ODD_LANES>(x, c)
    }
}

/// The stage `half = 1` either way: its only twiddle is `w^0 = 1` (as the scalar
/// stages assume), so `(u, v) → (u + v, u − v)` with no multiplication.
#[target_feature(enable = "avx2")]
fn add_sub_stage<const PERM: i32, const V_LANES: i32>(x: __m256i, c: &Consts) -> __m256i {
    let y = _mm256_permute4x64_epi64::<PERM>(x);
    let u = _mm256_blend_epi32::<V_LANES>(x, y);
    let v = _mm256_blend_epi32::<V_LANES>(y, x);
    _mm256_blend_epi32::<V_LANES>(add(u, v, c), sub(u, v, c))
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

/// `ε`, `2^63` and `ε + 2^63` in every lane.
struct Consts {
    epsilon: __m256i,
    sign: __m256i,
    epsilon_flipped: __m256i,
}

impl Consts {
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        Self {
            epsilon: _mm256_set1_epi64x(EPSILON as i64),
            sign: _mm256_set1_epi64x(SIGN as i64),
            epsilon_flipped: _mm256_set1_epi64x((EPSILON ^ SIGN) as i64),
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

/// `a + b mod p` for any `a < 2^64` and `b ≤ 2^64 − 2^33 + 1` (so any canonical `b`
/// when `a` is canonical too, and `hl·ε` in [`reduce`]), canonical.
///
/// With `b' = b + ε` (no wrap), `a + b' ≥ 2^64` exactly when `a + b ≥ p`: then the
/// wrapped sum is `a + b − p`, below `p` under the bounds; else `a + b = a + b' − ε`.
/// The sums are formed with the top bit flipped (adding `2^63` is flipping it), so the
/// unsigned test `a + b' < b'` is one signed comparison.
#[target_feature(enable = "avx2")]
fn add(a: __m256i, b: __m256i, c: &Consts) -> __m256i {
    let b_flipped = _mm256_add_epi64(b, c.epsilon_flipped);
    let sum_flipped = _mm256_add_epi64(a, b_flipped);
    let wrapped = _mm256_cmpgt_epi64(b_flipped, sum_flipped);
    let sum_flipped = _mm256_sub_epi64(sum_flipped, _mm256_andnot_si256(wrapped, c.epsilon));
    _mm256_xor_si256(sum_flipped, c.sign)
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
    let borrow = less_than(lo, hi_hi, c);
    let t0 = _mm256_sub_epi64(
        _mm256_sub_epi64(lo, hi_hi),
        _mm256_and_si256(borrow, c.epsilon),
    );
    // hl·ε ≤ (2^32 − 1)², as `add` needs: `mul_epu32` multiplies the low 32 bits of
    // each lane, which are hl's, by ε in one instruction.
    let t1 = _mm256_mul_epu32(hi, c.epsilon);
    add(t0, t1, c)
}

vector_stage_tests!("avx2");
