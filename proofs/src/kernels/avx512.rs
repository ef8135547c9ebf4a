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

use cairn_mpc::field::Field64;

/// Lanes per vector: the narrowest butterfly group these stages handle.
pub(super) const LANES: usize = 8;

const P: u64 = 0xFFFF_FFFF_0000_0001;
const EPSILON: u64 = 0xFFFF_FFFF;

/// Whether this CPU has AVX-512F (checked once).
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

/// Runs every decimation-in-time stage on `raw` (length `n ≥ LANES`, a power of two;
/// `twiddles` the stage tables of [`crate::ntt::stage_twiddles`]). Returns `false`,
/// touching nothing, when the CPU lacks AVX-512F or `n < LANES`.
pub(super) fn dit(raw: &mut [u64], twiddles: &[Field64]) -> bool {
    transform(raw, twiddles, Direction::Time)
}

/// Runs every decimation-in-frequency stage on `raw`; `false`, touching nothing,
/// without AVX-512F or when `n < LANES`.
pub(super) fn dif(raw: &mut [u64], twiddles: &[Field64]) -> bool {
    transform(raw, twiddles, Direction::Frequency)
}

/// Which decimation a transform uses.
#[derive(Clone, Copy)]
enum Direction {
    Time,
    Frequency,
}

fn transform(raw: &mut [u64], twiddles: &[Field64], direction: Direction) -> bool {
    if !available() || raw.len() < LANES {
        return false;
    }
    debug_assert!(raw.len().is_power_of_two(), "NTT sizes are powers of two");
    let tables = raw_tables(twiddles);
    // SAFETY: both functions need AVX-512F, which `available()` has just confirmed on
    // this CPU; they have no other requirement.
    unsafe {
        match direction {
            Direction::Time => dit_avx512(raw, &tables),
            Direction::Frequency => dif_avx512(raw, &tables),
        }
    }
    true
}

/// The stage tables as plain `u64`s, at their usual offsets (`half − 1`).
fn raw_tables(twiddles: &[Field64]) -> Vec<u64> {
    twiddles.iter().map(|w| w.as_u64()).collect()
}

#[target_feature(enable = "avx512f")]
fn dit_avx512(raw: &mut [u64], tables: &[u64]) {
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

#[target_feature(enable = "avx512f")]
fn dif_avx512(raw: &mut [u64], tables: &[u64]) {
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
        #[target_feature(enable = "avx512f")]
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
        assert!(available(), "the caller checks for AVX-512F");
        // SAFETY: AVX-512F is present (asserted above).
        unsafe { run(op, &a, &b, &mut out) };
        out
    }

    proptest! {
        #[test]
        fn lane_arithmetic_matches_the_field(a in proptest::array::uniform8(lane()),
                                             b in proptest::array::uniform8(lane())) {
            if !available() {
                // Nothing to compare on this CPU: the scalar stages run everything
                // (`dit` and `dif` return false, as asserted here).
                prop_assert!(!dit(&mut [0; 16], &[Field64::ONE; 15]));
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
    }
}
