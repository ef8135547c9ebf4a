//! The proof system's hot loops, with a generic definition and a fast path for
//! [`Field64`].
//!
//! [`ProofField`] extends [`FftFriendlyField`] with the few vector kernels that dominate
//! proving and verifying (the NTT butterflies, `acc += a·x`, the carry-lift lift).
//! Every method has a generic default written with the field operators (the lazy
//! sums of the verifier, [`ProofField::LazySum`], are the exception: each field
//! defines its own form); `Field64` overrides them with Goldilocks arithmetic on raw
//! `u64`s whose conditional corrections use [`core::hint::select_unpredictable`].
//! That matters: with uniformly random operands the carries and borrows of modular
//! addition are coin flips, and when the compiler turns the masks into branches about
//! half of them are mispredicted, which dominated the NTT in profiles. The selects compile to
//! conditional moves, so the fast path is also free of data-dependent branches.
//!
//! Both paths compute the same canonical results; tests compare them.

use core::hint::select_unpredictable;

#[cfg(target_arch = "x86_64")]
#[macro_use]
mod stages;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use cairn_mpc::field::{FftFriendlyField, Field64};

/// An FFT-friendly field with the proof system's vector kernels.
pub trait ProofField: FftFriendlyField {
    /// A running sum of products `Σ c·x` whose reduction is deferred until it is read
    /// ([`ProofField::lazy_value`]); `Self` in a field without a cheaper form. The
    /// verifier keeps one per wire and query point while the circuit runs.
    type LazySum: Copy + Send + Sync + 'static;

    /// The empty sum.
    const LAZY_ZERO: Self::LazySum;

    /// `sums[l·stride + j] += coefficients[l]·x[j]` for every `l < coefficients.len()`
    /// and `j < x.len()` (`x.len() ≤ stride`): one row added to `coefficients.len()`
    /// weighted sums at once. At most `2^64 − 1` rows may be added to one sum.
    fn add_weighted_row(
        sums: &mut [Self::LazySum],
        stride: usize,
        coefficients: &[Self],
        x: &[Self],
    );

    /// The field element a lazy sum stands for.
    fn lazy_value(sum: &Self::LazySum) -> Self;

    /// Radix-2 decimation-in-time butterflies over `values` (already in bit-reversed
    /// order, power-of-two length), with the per-stage twiddle tables of
    /// `crate::ntt::stage_twiddles` (`n − 1` values; stage `half` at offset
    /// `half − 1`). The first table value must be `w^0 = 1`: the fast paths skip
    /// that product.
    fn butterflies(values: &mut [Self], twiddles: &[Self]) {
        generic_butterflies(values, twiddles);
    }

    /// Radix-2 decimation-in-frequency (Gentleman–Sande) butterflies over `values` in
    /// natural order, leaving the transform in bit-reversed order; the same twiddle
    /// tables as [`ProofField::butterflies`]. Followed by `butterflies` on the other
    /// root, it needs no bit-reversal permutation at all.
    fn butterflies_dif(values: &mut [Self], twiddles: &[Self]) {
        generic_butterflies_dif(values, twiddles);
    }

    /// `values` ← [`ProofField::butterflies_dif`] with `inverse_twiddles`, then
    /// multiplied pointwise by `factors`, then [`ProofField::butterflies`] with
    /// `twiddles`: the values on a domain mapped, through coefficients in
    /// bit-reversed order scaled by `factors`, to the values on a shifted domain (a
    /// coset), in one pass over the caller's memory.
    fn dif_scale_dit(
        values: &mut [Self],
        inverse_twiddles: &[Self],
        factors: &[Self],
        twiddles: &[Self],
    ) {
        Self::butterflies_dif(values, inverse_twiddles);
        Self::mul_assign_slice(values, factors);
        Self::butterflies(values, twiddles);
    }

    /// `acc[i] += a·x[i]` (over the shorter length).
    fn axpy(acc: &mut [Self], a: Self, x: &[Self]) {
        for (s, v) in acc.iter_mut().zip(x) {
            *s += a * *v;
        }
    }

    /// `out[i] = Π_k (z[i] + negated_roots[k])` (a polynomial in product form).
    fn range_products(out: &mut [Self], z: &[Self], negated_roots: &[Self]) {
        for (o, v) in out.iter_mut().zip(z) {
            *o = negated_roots
                .iter()
                .fold(Self::ONE, |acc, r| acc * (*v + *r));
        }
    }

    /// `out[i] = a[i]·b[i]`.
    fn mul_into(out: &mut [Self], a: &[Self], b: &[Self]) {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = *x * *y;
        }
    }

    /// `acc[i] *= x[i]`.
    fn mul_assign_slice(acc: &mut [Self], x: &[Self]) {
        for (a, v) in acc.iter_mut().zip(x) {
            *a *= *v;
        }
    }

    /// `out[i] = s·x[i]`.
    fn scale_into(out: &mut [Self], x: &[Self], s: Self) {
        for (o, v) in out.iter_mut().zip(x) {
            *o = s * *v;
        }
    }

    /// `out[j] = Σ_k coefficients[k]·rows[k][j]` (rows of equal length `out.len()`).
    fn weighted_row_sums(coefficients: &[Self], rows: &[&[Self]], out: &mut [Self]) {
        out.fill(Self::ZERO);
        for (c, row) in coefficients.iter().zip(rows) {
            Self::axpy(out, *c, row);
        }
    }

    /// The carry-lift gadget over many points (its `eval_batch`): for every point
    /// `j < out[c].len()`,
    /// `out[c][j] = Σ_σ weights[c][σ]·Π_k (entries[σ][j] + negated_roots[k])`, plus
    /// `Σ_σ squares[σ][j]²` for `c = 0`. `weights`, `entries` and `squares` have one
    /// row per slot `σ`; every column and output has the same length.
    fn range_square_sums(
        entries: &[Vec<Self>],
        squares: &[Vec<Self>],
        weights: [&[Self]; 3],
        negated_roots: &[Self],
        out: &mut [Vec<Self>],
    ) {
        generic_range_square_sums(entries, squares, weights, negated_roots, out);
    }

    /// `acc[j] += Σ_k rows[k][j]²`.
    fn add_row_square_sums(rows: &[&[Self]], acc: &mut [Self]) {
        for row in rows {
            Self::add_squares(acc, row);
        }
    }

    /// `acc[i] += x[i]·x[i]`.
    fn add_squares(acc: &mut [Self], x: &[Self]) {
        for (a, v) in acc.iter_mut().zip(x) {
            *a += *v * *v;
        }
    }

    /// `acc[i] −= x[i]`.
    fn sub_assign(acc: &mut [Self], x: &[Self]) {
        for (a, v) in acc.iter_mut().zip(x) {
            *a -= *v;
        }
    }

    /// `out[i] = words[i] − q·carries[i] − offset`: an aggregator's share of the
    /// lifted vector (carry-lift).
    fn lift<W: Copy + Into<u64>>(
        out: &mut [Self],
        words: &[W],
        carries: &[Self],
        q: Self,
        offset: Self,
    ) {
        for ((o, w), c) in out.iter_mut().zip(words).zip(carries) {
            *o = Self::from_u64((*w).into()) - q * *c - offset;
        }
    }
}

/// [`ProofField::range_square_sums`] with the other kernels: per block of points,
/// the residual rows, three weighted row sums, then the squares.
pub(crate) fn generic_range_square_sums<F: ProofField>(
    entries: &[Vec<F>],
    squares: &[Vec<F>],
    weights: [&[F]; 3],
    negated_roots: &[F],
    out: &mut [Vec<F>],
) {
    // Blocks of points keep the residual rows and the lazy accumulators in cache.
    const BLOCK: usize = 256;
    let m = entries.len();
    let points = out.first().map_or(0, Vec::len);
    let mut residuals = zeroize::Zeroizing::new(vec![F::ZERO; m * BLOCK]);
    let mut start = 0;
    while start < points {
        let len = BLOCK.min(points - start);
        let block = start..start + len;
        for (row, column) in residuals.chunks_exact_mut(BLOCK).zip(entries) {
            F::range_products(&mut row[..len], &column[block.clone()], negated_roots);
        }
        let rows: Vec<&[F]> = residuals.chunks_exact(BLOCK).map(|r| &r[..len]).collect();
        for (w, output) in weights.iter().zip(out.iter_mut()) {
            F::weighted_row_sums(w, &rows, &mut output[block.clone()]);
        }
        let squared: Vec<&[F]> = squares.iter().map(|c| &c[block.clone()]).collect();
        if let Some(first) = out.first_mut() {
            F::add_row_square_sums(&squared, &mut first[block]);
        }
        start += len;
    }
}

/// The butterflies with the field operators.
pub(crate) fn generic_butterflies<F: FftFriendlyField>(values: &mut [F], twiddles: &[F]) {
    let n = values.len();
    let mut half = 1;
    while half < n {
        let stage = &twiddles[half - 1..2 * half - 1];
        for block in values.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(stage) {
                let t = *v * *w;
                let a = *u;
                *u = a + t;
                *v = a - t;
            }
        }
        half *= 2;
    }
}

/// The decimation-in-frequency butterflies with the field operators: stages from
/// `half = n/2` down to 1, `(u, v) → (u + v, (u − v)·w^j)`.
pub(crate) fn generic_butterflies_dif<F: FftFriendlyField>(values: &mut [F], twiddles: &[F]) {
    let n = values.len();
    let mut half = n / 2;
    while half >= 1 {
        let stage = &twiddles[half - 1..2 * half - 1];
        for block in values.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(stage) {
                let (a, b) = (*u, *v);
                *u = a + b;
                *v = (a - b) * *w;
            }
        }
        half /= 2;
    }
}

/// Decimation-in-time stages on raw values: on the vector unit when `vector` and this
/// CPU has one (and `n` fills a vector), else scalar.
fn dit_raw(raw: &mut [u64], twiddles: &[Field64], vector: bool) {
    if vector && vector::dit(raw, twiddles) {
        return;
    }
    let n = raw.len();
    if n >= 2 {
        add_sub_pairs(raw);
    }
    let mut half = 2;
    while half < n {
        let stage = &twiddles[half - 1..2 * half - 1];
        for block in raw.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(stage) {
                let t = gl::mul(*v, w.as_u64());
                let a = *u;
                *u = gl::add(a, t);
                *v = gl::sub(a, t);
            }
        }
        half *= 2;
    }
}

/// Decimation-in-frequency stages on raw values, vector or scalar as [`dit_raw`].
fn dif_raw(raw: &mut [u64], twiddles: &[Field64], vector: bool) {
    if vector && vector::dif(raw, twiddles) {
        return;
    }
    let mut half = raw.len() / 2;
    while half > 1 {
        let stage = &twiddles[half - 1..2 * half - 1];
        for block in raw.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(stage) {
                let (a, b) = (*u, *v);
                *u = gl::add(a, b);
                *v = gl::mul(gl::sub(a, b), w.as_u64());
            }
        }
        half /= 2;
    }
    if half == 1 {
        add_sub_pairs(raw);
    }
}

/// The vector unit's NTT: on x86-64, AVX-512F where the CPU has it ([`avx512`]), else
/// AVX2 ([`avx2`]); none elsewhere (the scalar stages then run).
mod vector {
    #[cfg(target_arch = "x86_64")]
    use super::{avx2, avx512};

    /// Whether a vector unit took the transform (else `raw` is untouched).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn dit(raw: &mut [u64], twiddles: &[cairn_mpc::field::Field64]) -> bool {
        avx512::dit(raw, twiddles) || avx2::dit(raw, twiddles)
    }

    /// As [`dit`], decimation in frequency.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn dif(raw: &mut [u64], twiddles: &[cairn_mpc::field::Field64]) -> bool {
        avx512::dif(raw, twiddles) || avx2::dif(raw, twiddles)
    }

    /// Whether a vector unit took the products (else `raw` is untouched).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn mul_assign(raw: &mut [u64], by: &[u64]) -> bool {
        avx512::mul_assign(raw, by) || avx2::mul_assign(raw, by)
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn mul_assign(_: &mut [u64], _: &[u64]) -> bool {
        false
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn dit(_: &mut [u64], _: &[cairn_mpc::field::Field64]) -> bool {
        false
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn dif(_: &mut [u64], _: &[cairn_mpc::field::Field64]) -> bool {
        false
    }
}

/// The stage whose only twiddle is w^0 = 1: `(a, b) → (a + b, a − b)` on pairs.
fn add_sub_pairs(raw: &mut [u64]) {
    for pair in raw.chunks_exact_mut(2) {
        let (a, b) = (pair[0], pair[1]);
        pair[0] = gl::add(a, b);
        pair[1] = gl::sub(a, b);
    }
}

impl ProofField for Field64 {
    /// `(lo, hi)`: the sums of the 128-bit products' low and high 64-bit halves; the
    /// value is `lo + 2^64·hi mod p`. Neither can overflow before `2^64` rows.
    type LazySum = (u128, u128);

    const LAZY_ZERO: Self::LazySum = (0, 0);

    fn add_weighted_row(
        sums: &mut [Self::LazySum],
        stride: usize,
        coefficients: &[Self],
        x: &[Self],
    ) {
        #[inline(always)]
        fn add(sum: &mut (u128, u128), c: u128, v: u128) {
            let product = c * v;
            sum.0 += product & u128::from(u64::MAX);
            sum.1 += product >> 64;
        }
        debug_assert!(x.len() <= stride, "a row longer than the sums' stride");
        let width = x.len().min(stride);
        if let [c0, c1] = coefficients {
            // Two query points (the carry-lift proof): each value is read once.
            let (first, second) = sums.split_at_mut(stride);
            let (c0, c1) = (u128::from(c0.as_u64()), u128::from(c1.as_u64()));
            for ((a, b), v) in first[..width]
                .iter_mut()
                .zip(&mut second[..width])
                .zip(&x[..width])
            {
                let v = u128::from(v.as_u64());
                add(a, c0, v);
                add(b, c1, v);
            }
            return;
        }
        for (l, c) in coefficients.iter().enumerate() {
            let c = u128::from(c.as_u64());
            let row = &mut sums[l * stride..][..width];
            for (sum, v) in row.iter_mut().zip(x) {
                add(sum, c, u128::from(v.as_u64()));
            }
        }
    }

    fn lazy_value(sum: &Self::LazySum) -> Self {
        let two_64 = Field64::from_u64_reduced(0xFFFF_FFFF);
        Field64::reduce_u128(sum.0) + Field64::reduce_u128(sum.1) * two_64
    }

    fn butterflies_dif(values: &mut [Self], twiddles: &[Self]) {
        // In place on the words: every stage keeps them canonical.
        Field64::with_raw_mut(values, |raw| dif_raw(raw, twiddles, true));
    }

    fn butterflies(values: &mut [Self], twiddles: &[Self]) {
        Field64::with_raw_mut(values, |raw| dit_raw(raw, twiddles, true));
    }

    fn dif_scale_dit(
        values: &mut [Self],
        inverse_twiddles: &[Self],
        factors: &[Self],
        twiddles: &[Self],
    ) {
        // One view of the words for all three steps; each keeps them canonical.
        Field64::with_raw_mut(values, |raw| {
            dif_raw(raw, inverse_twiddles, true);
            let factors = Field64::raw(factors);
            if !vector::mul_assign(raw, factors) {
                for (v, f) in raw.iter_mut().zip(factors) {
                    *v = gl::mul(*v, *f);
                }
            }
            dit_raw(raw, twiddles, true);
        });
    }

    fn axpy(acc: &mut [Self], a: Self, x: &[Self]) {
        let a = a.as_u64();
        for (s, v) in acc.iter_mut().zip(x) {
            *s = Field64::from_u64_reduced(gl::add(s.as_u64(), gl::mul(a, v.as_u64())));
        }
    }

    fn range_products(out: &mut [Self], z: &[Self], negated_roots: &[Self]) {
        let negated_roots = Field64::raw(negated_roots);
        for (o, v) in out.iter_mut().zip(z) {
            *o = Field64::from_u64_reduced(gl::range_product(v.as_u64(), negated_roots));
        }
    }

    fn mul_into(out: &mut [Self], a: &[Self], b: &[Self]) {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = Field64::from_u64_reduced(gl::mul(x.as_u64(), y.as_u64()));
        }
    }

    fn mul_assign_slice(acc: &mut [Self], x: &[Self]) {
        for (a, v) in acc.iter_mut().zip(x) {
            *a = Field64::from_u64_reduced(gl::mul(a.as_u64(), v.as_u64()));
        }
    }

    fn scale_into(out: &mut [Self], x: &[Self], s: Self) {
        let s = s.as_u64();
        for (o, v) in out.iter_mut().zip(x) {
            *o = Field64::from_u64_reduced(gl::mul(s, v.as_u64()));
        }
    }

    fn weighted_row_sums(coefficients: &[Self], rows: &[&[Self]], out: &mut [Self]) {
        // Lazy reduction as in `add_weighted_row`.
        let width = out.len();
        let mut lo = vec![0u128; width];
        let mut hi = vec![0u128; width];
        for (c, row) in coefficients.iter().zip(rows) {
            let c = u128::from(c.as_u64());
            for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(row.iter()) {
                let product = c * u128::from(v.as_u64());
                *l += product & u128::from(u64::MAX);
                *h += product >> 64;
            }
        }
        finish_lazy(out, &lo, &hi, false);
    }

    fn add_row_square_sums(rows: &[&[Self]], acc: &mut [Self]) {
        let width = acc.len();
        let mut lo = vec![0u128; width];
        let mut hi = vec![0u128; width];
        for row in rows {
            for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(row.iter()) {
                let v = u128::from(v.as_u64());
                let product = v * v;
                *l += product & u128::from(u64::MAX);
                *h += product >> 64;
            }
        }
        finish_lazy(acc, &lo, &hi, true);
    }

    fn range_square_sums(
        entries: &[Vec<Self>],
        squares: &[Vec<Self>],
        weights: [&[Self]; 3],
        negated_roots: &[Self],
        out: &mut [Vec<Self>],
    ) {
        /// `acc + 2^128·overflows` holds a sum of 128-bit products.
        #[derive(Clone, Copy)]
        struct Wide {
            acc: u128,
            overflows: u64,
        }
        impl zeroize::Zeroize for Wide {
            fn zeroize(&mut self) {
                self.acc.zeroize();
                self.overflows.zeroize();
            }
        }
        #[inline(always)]
        fn add(sum: &mut Wide, product: u128) {
            let (acc, overflow) = sum.acc.overflowing_add(product);
            sum.acc = acc;
            sum.overflows += u64::from(overflow);
        }
        // The shapes `CarryLiftGadget::eval_batch` checks before calling.
        debug_assert_eq!(squares.len(), entries.len(), "one square column per slot");
        debug_assert!(
            weights.iter().all(|w| w.len() == entries.len()),
            "a weight per slot"
        );
        debug_assert!(
            out.len() == 3
                && entries
                    .iter()
                    .chain(squares)
                    .chain(out.iter())
                    .all(|c| c.len() == out[0].len()),
            "columns and outputs of one length"
        );
        // 2^128 ≡ ε² (mod p).
        let two_128 =
            Field64::from_u64_reduced(0xFFFF_FFFF) * Field64::from_u64_reduced(0xFFFF_FFFF);
        let points = out.first().map_or(0, Vec::len);
        let negated_roots = Field64::raw(negated_roots);
        // Per slot: its two columns and three weights, side by side.
        let slots: Vec<(&[u64], &[u64], [u64; 3])> = entries
            .iter()
            .zip(squares)
            .enumerate()
            .map(|(sigma, (e, y))| {
                let w = [0, 1, 2].map(|c| weights[c][sigma].as_u64());
                (&Field64::raw(e)[..points], &Field64::raw(y)[..points], w)
            })
            .collect();
        // Per block of points, one pass over each slot's two columns: its residuals,
        // their three weighted products and the squares go into the block's sums
        // (which stay in the L1 cache; the columns are read in order).
        const BLOCK: usize = 128;
        let zero = Wide {
            acc: 0,
            overflows: 0,
        };
        let mut sums = [[zero; BLOCK]; 3];
        let mut start = 0;
        while start < points {
            let len = BLOCK.min(points - start);
            for row in sums.iter_mut() {
                row.fill(zero);
            }
            let [s0, s1, s2] = &mut sums;
            for (e, y, w) in &slots {
                let e = &e[start..start + len];
                let y = &y[start..start + len];
                for ((((a0, a1), a2), e), y) in s0
                    .iter_mut()
                    .zip(s1.iter_mut())
                    .zip(s2.iter_mut())
                    .zip(e)
                    .zip(y)
                {
                    let residual = u128::from(gl::range_product(*e, negated_roots));
                    add(a0, u128::from(w[0]) * residual);
                    add(a1, u128::from(w[1]) * residual);
                    add(a2, u128::from(w[2]) * residual);
                    let y = u128::from(*y);
                    add(a0, y * y);
                }
            }
            for (row, output) in sums.iter().zip(out.iter_mut()) {
                for (sum, o) in row.iter().zip(&mut output[start..start + len]) {
                    *o = Field64::reduce_u128(sum.acc)
                        + Field64::from_u64_reduced(sum.overflows) * two_128;
                }
            }
            start += len;
        }
        // The sums are of the secret input's values.
        zeroize::Zeroize::zeroize(&mut sums);
    }

    fn add_squares(acc: &mut [Self], x: &[Self]) {
        for (a, v) in acc.iter_mut().zip(x) {
            let v = v.as_u64();
            *a = Field64::from_u64_reduced(gl::add(a.as_u64(), gl::mul(v, v)));
        }
    }

    fn sub_assign(acc: &mut [Self], x: &[Self]) {
        for (a, v) in acc.iter_mut().zip(x) {
            *a = Field64::from_u64_reduced(gl::sub(a.as_u64(), v.as_u64()));
        }
    }

    fn lift<W: Copy + Into<u64>>(
        out: &mut [Self],
        words: &[W],
        carries: &[Self],
        q: Self,
        offset: Self,
    ) {
        /// One loop, with the product `q·c` the caller picked.
        #[inline(always)]
        fn lift_by<W: Copy + Into<u64>>(
            out: &mut [Field64],
            words: &[W],
            carries: &[Field64],
            offset: u64,
            times_q: impl Fn(u64) -> u64,
        ) {
            for ((o, w), c) in out.iter_mut().zip(words).zip(carries) {
                let w = Field64::from_u64_reduced((*w).into()).as_u64();
                let v = gl::sub(gl::sub(w, times_q(c.as_u64())), offset);
                *o = Field64::from_u64_reduced(v);
            }
        }
        let (q, offset) = (q.as_u64(), offset.as_u64());
        let shift = q.trailing_zeros();
        if q.is_power_of_two() && (1..=32).contains(&shift) {
            // q = 2^b (every carry-lift task): q·c by shifts, no general product.
            lift_by(out, words, carries, offset, |c| gl::mul_pow2(c, shift));
        } else {
            lift_by(out, words, carries, offset, |c| gl::mul(q, c));
        }
    }
}

/// `out[j] (+)= lo[j] + 2^64·hi[j] mod p` (`2^64 ≡ ε`), adding when `accumulate`.
fn finish_lazy(out: &mut [Field64], lo: &[u128], hi: &[u128], accumulate: bool) {
    for ((o, l), h) in out.iter_mut().zip(lo).zip(hi) {
        let v = Field64::lazy_value(&(*l, *h));
        *o = if accumulate { *o + v } else { v };
    }
}

/// Canonical Goldilocks arithmetic on `u64` (inputs and outputs in `[0, p)`), with
/// conditional moves instead of branches. Same reductions as `Field64` (see its docs:
/// `2^64 ≡ ε`, `2^96 ≡ −1` with `ε = 2^32 − 1`).
mod gl {
    use super::select_unpredictable;

    const P: u64 = 0xFFFF_FFFF_0000_0001;
    const EPSILON: u64 = 0xFFFF_FFFF;

    /// `c·2^k mod p` for canonical `c` and `1 ≤ k ≤ 32`. With `lo = c·2^k mod 2^64`
    /// and `hi = ⌊c·2^k / 2^64⌋ < 2^k`, the value is `lo + hi·ε` (`2^64 ≡ ε`), where
    /// `hi·ε ≤ (2^32 − 1)² < p`. Adding `hi·ε + ε` (no wrap: at most `2^64 − 2^32`)
    /// wraps exactly when `lo + hi·ε ≥ p`, leaving `lo + hi·ε − p < p` (the sum is
    /// below `2p`); otherwise subtracting `ε` back gives `lo + hi·ε < p`.
    /// `Π_k (e + negated_roots[k])` (canonical operands). The gadget's first root is
    /// 0, which needs no addition, and two aggregators' `R_2(z) = z·(z − 1)` one
    /// product.
    #[inline(always)]
    pub(super) fn range_product(e: u64, negated_roots: &[u64]) -> u64 {
        match negated_roots {
            [] => 1,
            [0, r] => mul(e, add(e, *r)),
            [0, others @ ..] => others.iter().fold(e, |acc, r| mul(acc, add(e, *r))),
            [first, others @ ..] => others
                .iter()
                .fold(add(e, *first), |acc, r| mul(acc, add(e, *r))),
        }
    }

    #[inline(always)]
    pub(super) fn mul_pow2(c: u64, k: u32) -> u64 {
        let lo = c << k;
        let hi = c >> (64 - k);
        let (s, wrapped) = lo.overflowing_add(hi * EPSILON + EPSILON);
        select_unpredictable(wrapped, s, s.wrapping_sub(EPSILON))
    }

    #[inline(always)]
    pub(super) fn add(a: u64, b: u64) -> u64 {
        let (s, carry) = a.overflowing_add(b);
        // A carry is worth 2^64 ≡ ε; then s + ε < p cannot carry again.
        let s = s.wrapping_add(select_unpredictable(carry, EPSILON, 0));
        let (r, borrow) = s.overflowing_sub(P);
        select_unpredictable(borrow, s, r)
    }

    #[inline(always)]
    pub(super) fn sub(a: u64, b: u64) -> u64 {
        let (d, borrow) = a.overflowing_sub(b);
        // On borrow the wrapped value is too large by 2^64 − p = ε.
        d.wrapping_sub(select_unpredictable(borrow, EPSILON, 0))
    }

    #[inline(always)]
    pub(super) fn mul(a: u64, b: u64) -> u64 {
        let x = u128::from(a) * u128::from(b);
        let x_lo = x as u64;
        let x_hi = (x >> 64) as u64;
        let x_hi_hi = x_hi >> 32;
        let x_hi_lo = x_hi & EPSILON;
        let (t0, borrow) = x_lo.overflowing_sub(x_hi_hi);
        let t0 = t0.wrapping_sub(select_unpredictable(borrow, EPSILON, 0));
        let t1 = x_hi_lo * EPSILON;
        let (s, carry) = t0.overflowing_add(t1);
        let s = s.wrapping_add(select_unpredictable(carry, EPSILON, 0));
        let (r, borrow) = s.overflowing_sub(P);
        select_unpredictable(borrow, s, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::field::FieldElement;
    use proptest::prelude::*;

    fn generic_weighted_row_sums(c: &[Field64], rows: &[&[Field64]], out: &mut [Field64]) {
        out.fill(Field64::ZERO);
        for (c, row) in c.iter().zip(rows) {
            for (o, v) in out.iter_mut().zip(row.iter()) {
                *o += *c * *v;
            }
        }
    }

    fn arb() -> impl Strategy<Value = Field64> {
        prop_oneof![
            (0..Field64::MODULUS_U64).prop_map(|v| Field64::new(v).unwrap()),
            (0u64..3).prop_map(|k| Field64::new(Field64::MODULUS_U64 - 1 - k).unwrap()),
            (0u64..3).prop_map(Field64::from_u64),
            (0u64..3).prop_map(|k| Field64::from_u64(0xFFFF_FFFF - 1 + k)),
        ]
    }

    proptest! {
        #[test]
        fn raw_ops_match_field_ops(a in arb(), b in arb()) {
            prop_assert_eq!(gl::add(a.as_u64(), b.as_u64()), (a + b).as_u64());
            prop_assert_eq!(gl::sub(a.as_u64(), b.as_u64()), (a - b).as_u64());
            prop_assert_eq!(gl::mul(a.as_u64(), b.as_u64()), (a * b).as_u64());
        }

        #[test]
        fn lazy_weighted_rows_match_field_ops(rows in proptest::collection::vec(arb(), 5 * 6),
                                              coefficients in proptest::collection::vec(arb(), 5 * 3),
                                              width in 0usize..=6) {
            // Five rows of up to 6 values, each added with 1, 2 (the fused path) or 3
            // weights into sums of stride 6; only the first `width` values take part.
            for points in 1..=3 {
                let mut lazy = vec![Field64::LAZY_ZERO; points * 6];
                let mut exact = vec![Field64::ZERO; points * 6];
                for (k, row) in rows.chunks_exact(6).enumerate() {
                    let weights = &coefficients[3 * k..3 * k + points];
                    Field64::add_weighted_row(&mut lazy, 6, weights, &row[..width]);
                    for (l, c) in weights.iter().enumerate() {
                        for (j, v) in row[..width].iter().enumerate() {
                            exact[l * 6 + j] += *c * *v;
                        }
                    }
                }
                let values: Vec<Field64> = lazy.iter().map(Field64::lazy_value).collect();
                prop_assert_eq!(values, exact);
            }
        }

        #[test]
        fn fused_range_square_sums_match_generic(
            m in 1usize..12,
            points in prop_oneof![1usize..10, 120usize..300],
            roots in 0u64..5,
            seed in any::<u64>(),
            top in any::<bool>(),
            shifted in any::<bool>(),
        ) {
            // Random values, or all p − 1 (the largest products, so the 128-bit sums
            // overflow as often as they can), over more than one block of points.
            use rand_chacha::ChaCha20Rng;
            use rand_core::SeedableRng;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut value = || if top { -Field64::ONE } else { Field64::random(&mut rng) };
            let weights: Vec<Vec<Field64>> =
                (0..3).map(|_| (0..m).map(|_| value()).collect()).collect();
            let mut column = || (0..points).map(|_| value()).collect::<Vec<_>>();
            let entries: Vec<Vec<Field64>> = (0..m).map(|_| column()).collect();
            let squares: Vec<Vec<Field64>> = (0..m).map(|_| column()).collect();
            // The gadget's roots are 0, 1, …; shifted ones exercise the general path.
            let negated_roots: Vec<Field64> =
                (0..roots).map(|i| -Field64::from_u64(i + u64::from(shifted))).collect();
            let weights = [&weights[0][..], &weights[1][..], &weights[2][..]];
            let mut fast = vec![vec![Field64::ONE; points]; 3];
            Field64::range_square_sums(&entries, &squares, weights, &negated_roots, &mut fast);
            let mut slow = vec![vec![Field64::ZERO; points]; 3];
            generic_range_square_sums(&entries, &squares, weights, &negated_roots, &mut slow);
            prop_assert_eq!(&fast, &slow);
            // And pointwise, with the field operators alone.
            for j in [0, points / 2, points - 1] {
                for (c, row) in fast.iter().enumerate() {
                    let mut expected = Field64::ZERO;
                    for sigma in 0..m {
                        let e = entries[sigma][j];
                        let residual = negated_roots.iter().fold(Field64::ONE, |acc, r| acc * (e + *r));
                        expected += weights[c][sigma] * residual;
                        if c == 0 {
                            expected += squares[sigma][j] * squares[sigma][j];
                        }
                    }
                    prop_assert_eq!(row[j], expected);
                }
            }
        }

        #[test]
        fn the_largest_products_sum_exactly(count in 1usize..2000) {
            // (p − 1)² is the largest product; `count` of them, in one row each.
            let top = -Field64::ONE;
            let mut lazy = vec![Field64::LAZY_ZERO; 2];
            for _ in 0..count {
                Field64::add_weighted_row(&mut lazy, 1, &[top, top], &[top]);
            }
            let expected = Field64::from_u64(count as u64);
            prop_assert_eq!(Field64::lazy_value(&lazy[0]), expected);
            prop_assert_eq!(Field64::lazy_value(&lazy[1]), expected);
        }

        #[test]
        fn vector_and_scalar_transforms_match_generic(seed in any::<u64>(), log_n in 1u32..=12) {
            // Random values and random "twiddles" (any table exercises the arithmetic;
            // w^0 = 1 as in real tables), at every size the proof uses and beyond:
            // the vector stages (if this CPU has them), the scalar ones alone, and the
            // generic definition agree exactly.
            use rand_chacha::ChaCha20Rng;
            use rand_core::SeedableRng;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let n = 1usize << log_n;
            let values: Vec<Field64> = (0..n).map(|_| Field64::random(&mut rng)).collect();
            let mut powers: Vec<Field64> =
                (0..(n / 2).max(1)).map(|_| Field64::random(&mut rng)).collect();
            powers[0] = Field64::ONE;
            let tables = crate::ntt::stage_twiddles(&powers);
            let raw: Vec<u64> = values.iter().map(|v| v.as_u64()).collect();

            let mut generic = values.clone();
            generic_butterflies(&mut generic, &tables);
            let mut fast = values.clone();
            Field64::butterflies(&mut fast, &tables);
            prop_assert_eq!(&fast, &generic);
            let mut scalar = raw.clone();
            dit_raw(&mut scalar, &tables, false);
            prop_assert_eq!(scalar, generic.iter().map(|v| v.as_u64()).collect::<Vec<_>>());

            let mut generic = values.clone();
            generic_butterflies_dif(&mut generic, &tables);
            let mut fast = values.clone();
            Field64::butterflies_dif(&mut fast, &tables);
            prop_assert_eq!(&fast, &generic);
            let mut scalar = raw;
            dif_raw(&mut scalar, &tables, false);
            prop_assert_eq!(scalar, generic.iter().map(|v| v.as_u64()).collect::<Vec<_>>());

            // The fused inverse–scale–forward against its three steps, generically.
            let factors: Vec<Field64> = (0..n).map(|_| Field64::random(&mut rng)).collect();
            let mut inverse_powers: Vec<Field64> =
                (0..(n / 2).max(1)).map(|_| Field64::random(&mut rng)).collect();
            inverse_powers[0] = Field64::ONE;
            let inverse_tables = crate::ntt::stage_twiddles(&inverse_powers);
            let mut generic = values.clone();
            generic_butterflies_dif(&mut generic, &inverse_tables);
            for (g, f) in generic.iter_mut().zip(&factors) {
                *g *= *f;
            }
            generic_butterflies(&mut generic, &tables);
            let mut fast = values.clone();
            Field64::dif_scale_dit(&mut fast, &inverse_tables, &factors, &tables);
            prop_assert_eq!(&fast, &generic);
        }

        #[test]
        fn fast_kernels_match_generic(values in proptest::collection::vec(arb(), 16),
                                      a in arb(), q in arb(), offset in arb(),
                                      words in proptest::collection::vec(any::<u32>(), 16)) {
            // Real twiddle tables start with w^0 = 1 (the fast path skips that product).
            let mut twiddles: Vec<Field64> = values[..8].to_vec();
            twiddles[0] = Field64::ONE;
            let mut fast = values.clone();
            let mut slow = values.clone();
            let tables = crate::ntt::stage_twiddles(&twiddles);
            Field64::butterflies(&mut fast, &tables);
            generic_butterflies(&mut slow, &tables);
            prop_assert_eq!(&fast, &slow);
            let mut fast = values.clone();
            let mut slow = values.clone();
            Field64::butterflies_dif(&mut fast, &tables);
            generic_butterflies_dif(&mut slow, &tables);
            prop_assert_eq!(&fast, &slow);

            let mut fast = values.clone();
            Field64::axpy(&mut fast, a, &twiddles);
            let mut slow = values.clone();
            for (s, v) in slow.iter_mut().zip(&twiddles) {
                *s += a * *v;
            }
            prop_assert_eq!(&fast, &slow);

            let roots = [Field64::ZERO, -Field64::ONE, -q];
            let mut fast = vec![Field64::ZERO; 16];
            Field64::range_products(&mut fast, &values, &roots);
            for (f, v) in fast.iter().zip(&values) {
                prop_assert_eq!(*f, *v * (*v - Field64::ONE) * (*v - q));
            }
            Field64::mul_into(&mut fast, &values, &words.iter().map(|w| Field64::from_u64(u64::from(*w))).collect::<Vec<_>>());
            for ((f, v), w) in fast.iter().zip(&values).zip(&words) {
                prop_assert_eq!(*f, *v * Field64::from_u64(u64::from(*w)));
            }
            let mut product = values.clone();
            Field64::mul_assign_slice(&mut product, &twiddles);
            for ((f, v), t) in product.iter().zip(&values).zip(&twiddles) {
                prop_assert_eq!(*f, *v * *t);
            }
            Field64::scale_into(&mut fast, &values, a);
            for (f, v) in fast.iter().zip(&values) {
                prop_assert_eq!(*f, a * *v);
            }
            let rows: Vec<&[Field64]> = values.chunks(4).collect();
            let mut fast = vec![Field64::ZERO; 4];
            Field64::weighted_row_sums(&twiddles[..4], &rows, &mut fast);
            let mut slow = vec![Field64::ZERO; 4];
            generic_weighted_row_sums(&twiddles[..4], &rows, &mut slow);
            prop_assert_eq!(&fast, &slow);
            let mut fast = twiddles[..4].to_vec();
            Field64::add_row_square_sums(&rows, &mut fast);
            let mut slow = twiddles[..4].to_vec();
            for row in &rows {
                for (s, v) in slow.iter_mut().zip(row.iter()) {
                    *s += *v * *v;
                }
            }
            prop_assert_eq!(&fast, &slow);
            let mut acc = values.clone();
            Field64::add_squares(&mut acc, &twiddles);
            for ((f, v), t) in acc.iter().zip(&values).zip(&twiddles) {
                prop_assert_eq!(*f, *v + *t * *t);
            }
            let mut acc = values.clone();
            Field64::sub_assign(&mut acc, &twiddles);
            for ((f, v), t) in acc.iter().zip(&values).zip(&twiddles) {
                prop_assert_eq!(*f, *v - *t);
            }
            Field64::lift(&mut fast, &words, &values, q, offset);
            for ((f, w), c) in fast.iter().zip(&words).zip(&values) {
                prop_assert_eq!(*f, Field64::from_u64(u64::from(*w)) - q * *c - offset);
            }
            // The tasks' q = 2^b takes the shifts.
            for b in [1u32, 8, 16, 31, 32] {
                let q = Field64::from_u64(1 << b);
                let mut out = vec![Field64::ZERO; words.len()];
                Field64::lift(&mut out, &words, &values, q, offset);
                for ((f, w), c) in out.iter().zip(&words).zip(&values) {
                    prop_assert_eq!(*f, Field64::from_u64(u64::from(*w)) - q * *c - offset);
                }
            }
        }

        #[test]
        fn products_by_powers_of_two_match_the_field(c in arb(), k in 1u32..=32) {
            let expected = c * Field64::from_u64(1 << k);
            prop_assert_eq!(gl::mul_pow2(c.as_u64(), k), expected.as_u64());
            let top = -Field64::ONE;
            prop_assert_eq!(gl::mul_pow2(top.as_u64(), k), (top * Field64::from_u64(1 << k)).as_u64());
        }
    }
}
