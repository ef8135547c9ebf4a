//! Goldilocks NTT stages on eight lanes at once (AVX-512F), for transforms of at least
//! eight points. The stages whose butterfly groups are at least eight wide pair lane
//! with lane across two vectors; the three narrower ones (`half = 1, 2, 4`) stay inside
//! one vector of eight values and meet their partners through a lane permutation.
//!
//! The arithmetic is the scalar `gl` module's, lane by lane, with mask registers in
//! place of its conditional moves (so it is as free of data-dependent branches):
//!
//! * `a + b`: add; a carry (the sum wrapped) is worth `2^64 ≡ ε = 2^32 − 1`; then one
//!   conditional subtraction of `p`.
//! * `a − b`: subtract; a borrow is corrected by subtracting `ε`.
//! * `a·b`: the 128-bit product from four 32×32-bit products
//!   (`_mm512_mul_epu32`), then the Goldilocks reduction `lo + 2^64·hi` with
//!   `2^64 ≡ ε` and `2^96 ≡ −1`.
//!
//! Both paths give the canonical result, so a transform is bit-identical with or
//! without this module; the tests compare them on every size up to 2^12.
//!
//! # Unsafe code
//! Two kinds, each with its reason at the site: the 64-byte unaligned loads and
//! stores (pointer arguments), which only ever read or write one `[u64; 8]`; and the
//! call into the `#[target_feature(enable = "avx512f")]` functions, made only after
//! `is_x86_feature_detected!("avx512f")` returned true on this CPU.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpge_epu64_mask, _mm512_cmplt_epu64_mask,
    _mm512_loadu_epi64, _mm512_mask_add_epi64, _mm512_mask_blend_epi64, _mm512_mask_sub_epi64,
    _mm512_mul_epu32, _mm512_or_si512, _mm512_permutexvar_epi64, _mm512_set1_epi64,
    _mm512_slli_epi64, _mm512_srli_epi64, _mm512_storeu_epi64, _mm512_sub_epi64,
};
use std::sync::OnceLock;

/// Lanes per vector: the narrowest butterfly group these stages handle.
pub(super) const LANES: usize = 8;

const P: u64 = 0xFFFF_FFFF_0000_0001;
const EPSILON: u64 = 0xFFFF_FFFF;

/// Whether this CPU has AVX-512F (checked once).
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

vector_stages!("avx512f");

/// The three stages inside each group of eight (`half = 1, 2, 4`), done within one
/// vector: each lane meets its partner `i ^ half` through a permutation, the lanes
/// with the `half` bit set take the `v` role, and every lane gets the twiddle of its
/// pair (`w_{i mod half}` of the stage's table).
struct SmallStages {
    /// Per stage (`half = 1, 2, 4`): the partner permutation, the mask of the `v`
    /// lanes and the lanes' twiddles.
    stages: [(__m512i, u8, __m512i); 3],
}

impl SmallStages {
    #[target_feature(enable = "avx512f")]
    fn new(tables: &[u64]) -> Self {
        let stage = |half: usize, v_lanes: u8| {
            let partner: [u64; LANES] = core::array::from_fn(|i| (i ^ half) as u64);
            let twiddles: [u64; LANES] = core::array::from_fn(|i| tables[half - 1 + i % half]);
            (load(&partner), v_lanes, load(&twiddles))
        };
        Self {
            stages: [stage(1, 0xAA), stage(2, 0xCC), stage(4, 0xF0)],
        }
    }

    /// `half = 1, 2, 4` of decimation in time on one group of eight.
    #[target_feature(enable = "avx512f")]
    fn dit(&self, x: __m512i, c: &Consts) -> __m512i {
        let mut x = x;
        for (partner, v_lanes, w) in &self.stages {
            let y = _mm512_permutexvar_epi64(*partner, x);
            let u = _mm512_mask_blend_epi64(*v_lanes, x, y);
            let v = _mm512_mask_blend_epi64(*v_lanes, y, x);
            let t = mul(v, *w, c);
            x = _mm512_mask_blend_epi64(*v_lanes, add(u, t, c), sub(u, t, c));
        }
        x
    }

    /// `half = 4, 2, 1` of decimation in frequency on one group of eight.
    #[target_feature(enable = "avx512f")]
    fn dif(&self, x: __m512i, c: &Consts) -> __m512i {
        let mut x = x;
        for (partner, v_lanes, w) in self.stages.iter().rev() {
            let y = _mm512_permutexvar_epi64(*partner, x);
            let u = _mm512_mask_blend_epi64(*v_lanes, x, y);
            let v = _mm512_mask_blend_epi64(*v_lanes, y, x);
            let d = mul(sub(u, v, c), *w, c);
            x = _mm512_mask_blend_epi64(*v_lanes, add(u, v, c), d);
        }
        x
    }
}

/// `p` and `ε` in every lane.
struct Consts {
    p: __m512i,
    epsilon: __m512i,
}

impl Consts {
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        Self {
            p: _mm512_set1_epi64(P as i64),
            epsilon: _mm512_set1_epi64(EPSILON as i64),
        }
    }
}

#[target_feature(enable = "avx512f")]
fn load(values: &[u64; LANES]) -> __m512i {
    // SAFETY: the pointer comes from a reference to exactly eight u64s (64 readable
    // bytes); the load has no alignment requirement.
    unsafe { _mm512_loadu_epi64(values.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f")]
fn store(values: &mut [u64; LANES], v: __m512i) {
    // SAFETY: the pointer comes from an exclusive reference to exactly eight u64s (64
    // writable bytes); the store has no alignment requirement.
    unsafe { _mm512_storeu_epi64(values.as_mut_ptr().cast(), v) }
}

/// `a + b mod p` on canonical lanes.
#[target_feature(enable = "avx512f")]
fn add(a: __m512i, b: __m512i, c: &Consts) -> __m512i {
    let s = _mm512_add_epi64(a, b);
    let carry = _mm512_cmplt_epu64_mask(s, a);
    // A carry is worth 2^64 ≡ ε; then s + ε < p cannot carry again.
    let s = _mm512_mask_add_epi64(s, carry, s, c.epsilon);
    let too_big = _mm512_cmpge_epu64_mask(s, c.p);
    _mm512_mask_sub_epi64(s, too_big, s, c.p)
}

/// `a − b mod p` on canonical lanes.
#[target_feature(enable = "avx512f")]
fn sub(a: __m512i, b: __m512i, c: &Consts) -> __m512i {
    let d = _mm512_sub_epi64(a, b);
    let borrow = _mm512_cmplt_epu64_mask(a, b);
    // On a borrow the wrapped value is too large by 2^64 − p = ε.
    _mm512_mask_sub_epi64(d, borrow, d, c.epsilon)
}

/// `a·b mod p` on canonical lanes.
#[target_feature(enable = "avx512f")]
fn mul(a: __m512i, b: __m512i, c: &Consts) -> __m512i {
    // a·b = hh·2^64 + (hl + lh)·2^32 + ll over the 32-bit halves, carried so that no
    // partial sum exceeds 64 bits.
    let (a_hi, b_hi) = (_mm512_srli_epi64::<32>(a), _mm512_srli_epi64::<32>(b));
    let ll = _mm512_mul_epu32(a, b);
    let lh = _mm512_mul_epu32(a, b_hi);
    let hl = _mm512_mul_epu32(a_hi, b);
    let hh = _mm512_mul_epu32(a_hi, b_hi);
    let t = _mm512_add_epi64(hl, _mm512_srli_epi64::<32>(ll));
    let u = _mm512_add_epi64(lh, _mm512_and_si512(t, c.epsilon));
    let lo = _mm512_or_si512(_mm512_slli_epi64::<32>(u), _mm512_and_si512(ll, c.epsilon));
    let hi = _mm512_add_epi64(
        hh,
        _mm512_add_epi64(_mm512_srli_epi64::<32>(t), _mm512_srli_epi64::<32>(u)),
    );
    reduce(lo, hi, c)
}

/// `lo + 2^64·hi mod p`, as the scalar `gl::mul` reduces: with `hi = hh·2^32 + hl`,
/// `2^96 ≡ −1` and `2^64 ≡ ε`, the value is `lo − hh + hl·ε`.
#[target_feature(enable = "avx512f")]
fn reduce(lo: __m512i, hi: __m512i, c: &Consts) -> __m512i {
    let hi_hi = _mm512_srli_epi64::<32>(hi);
    let hi_lo = _mm512_and_si512(hi, c.epsilon);
    let t0 = _mm512_sub_epi64(lo, hi_hi);
    let borrow = _mm512_cmplt_epu64_mask(lo, hi_hi);
    let t0 = _mm512_mask_sub_epi64(t0, borrow, t0, c.epsilon);
    // hl·ε = hl·2^32 − hl, below 2^64 since hl < 2^32.
    let t1 = _mm512_sub_epi64(_mm512_slli_epi64::<32>(hi_lo), hi_lo);
    let s = _mm512_add_epi64(t0, t1);
    let carry = _mm512_cmplt_epu64_mask(s, t0);
    let s = _mm512_mask_add_epi64(s, carry, s, c.epsilon);
    let too_big = _mm512_cmpge_epu64_mask(s, c.p);
    _mm512_mask_sub_epi64(s, too_big, s, c.p)
}

vector_stage_tests!("avx512f");
