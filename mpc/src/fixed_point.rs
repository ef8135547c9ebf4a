//! Fixed-point encoding with unbiased randomised rounding.
//!
//! A real value `x` is encoded with `f` fractional bits as an integer `v ≈ x·2^f` that
//! must fit in `b` signed bits (`−2^(b−1) ≤ v < 2^(b−1)`). Rounding is randomised and
//! **unbiased**: with `y = x·2^f`,
//!
//! ```text
//! v = ⌊y⌋ + Bernoulli(y − ⌊y⌋),   so  E[v] = y,
//! ```
//!
//! (stochastic rounding, as used for the quantisation step of the distributed
//! discrete Gaussian mechanism, Kairouz, Liu and Steinke, "The Distributed Discrete
//! Gaussian Mechanism for Federated Learning with Secure Aggregation", ICML 2021,
//! Algorithm 1). The rounding is applied to `|y|` and the sign put back, which is the
//! same distribution.
//!
//! **Exactness.** No floating-point arithmetic touches the value. A finite `f64` is
//! exactly `m·2^e` with an integer `m < 2^53`, so `|y| = m·2^(e+f)`; its integer part
//! and its fractional part `r/2^k` are read off with shifts. The Bernoulli trial
//! compares a uniform real `U ∈ [0, 1)`, drawn 64 bits at a time from the injected
//! CSPRNG, with `r/2^k` bit by bit: the first 64-bit window where they differ decides
//! `U < r/2^k`; equal windows (probability `2^-64` each) draw the next 64 bits. So
//! `Pr[round up] = r/2^k` exactly, with no bias from converting random bits to a float.
//! `f32` inputs are widened to `f64` first, which is exact.
//!
//! **Range.** A value is accepted only if *both* possible roundings fit in `b` bits, so
//! whether encoding succeeds never depends on the random draw. NaN and ±∞ are errors,
//! as are values out of range: nothing is clamped.
//!
//! The running time depends on the input only through the rare extra windows; the
//! values encoded are the client's own.

use rand_core::CryptoRng;

/// Errors from fixed-point encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixedPointError {
    /// `bits` is outside `2..=63` or `frac_bits` outside `0..=62`.
    #[error(
        "invalid fixed-point parameters: {frac_bits} fractional bits, {bits} bits (need 2 ≤ bits ≤ 63, frac_bits ≤ 62)"
    )]
    InvalidParameters {
        /// Requested fractional bits.
        frac_bits: u32,
        /// Requested total bits.
        bits: u32,
    },
    /// The value at `index` is NaN or infinite.
    #[error("value at index {index} is not finite")]
    NotFinite {
        /// Position in the input.
        index: usize,
    },
    /// The value at `index`, scaled by `2^frac_bits`, does not fit in `bits` signed bits.
    #[error(
        "value at index {index} does not fit in {bits} signed bits after scaling by 2^{frac_bits}"
    )]
    OutOfRange {
        /// Position in the input.
        index: usize,
        /// Total bits of the encoding.
        bits: u32,
        /// Fractional bits of the encoding.
        frac_bits: u32,
    },
}

/// A fixed-point format: `frac_bits` fractional bits in a `bits`-bit signed integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedPoint {
    frac_bits: u32,
    bits: u32,
}

impl FixedPoint {
    /// The format with `frac_bits` fractional bits, `bits` total signed bits
    /// (`2 ≤ bits ≤ 63`, `frac_bits ≤ 62`).
    pub const fn new(frac_bits: u32, bits: u32) -> Result<Self, FixedPointError> {
        if bits < 2 || bits > 63 || frac_bits > 62 {
            return Err(FixedPointError::InvalidParameters { frac_bits, bits });
        }
        Ok(Self { frac_bits, bits })
    }

    /// Fractional bits `f`.
    pub const fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// Total signed bits `b`.
    pub const fn bits(&self) -> u32 {
        self.bits
    }

    /// The smallest encodable integer, `−2^(b−1)`.
    pub const fn min_encoded(&self) -> i64 {
        -(1i64 << (self.bits - 1))
    }

    /// The largest encodable integer, `2^(b−1) − 1`.
    pub const fn max_encoded(&self) -> i64 {
        (1i64 << (self.bits - 1)) - 1
    }

    /// Encodes `xs` with randomised rounding (module docs).
    pub fn encode_f64<R: CryptoRng + ?Sized>(
        &self,
        xs: &[f64],
        rng: &mut R,
    ) -> Result<Vec<i64>, FixedPointError> {
        self.encode_with(xs.len(), |i| xs[i], rng)
    }

    /// Encodes `xs` with randomised rounding (each value widened to `f64`, exactly).
    pub fn encode_f32<R: CryptoRng + ?Sized>(
        &self,
        xs: &[f32],
        rng: &mut R,
    ) -> Result<Vec<i64>, FixedPointError> {
        self.encode_with(xs.len(), |i| f64::from(xs[i]), rng)
    }

    /// Encodes `value(0) … value(len − 1)` in blocks: a block whose every value takes
    /// one 64-bit word ([`FixedPoint::one_word`]) draws its words in one
    /// `fill_bytes` and rounds without branches; any other block goes value by value
    /// through [`FixedPoint::encode_one`]. Either way the words are consumed in the
    /// order `next_u64` would return them, so the result does not depend on the path.
    fn encode_with<R: CryptoRng + ?Sized>(
        &self,
        len: usize,
        value: impl Fn(usize) -> f64,
        rng: &mut R,
    ) -> Result<Vec<i64>, FixedPointError> {
        const BLOCK: usize = 64;
        let mut out = Vec::with_capacity(len);
        // Random words and values derived from the client's input: wiped on every
        // return, the refusals included.
        let mut words = zeroize::Zeroizing::new([0u8; 8 * BLOCK]);
        let mut parts = zeroize::Zeroizing::new([OneWord::default(); BLOCK]);
        let mut start = 0;
        while start < len {
            let block = BLOCK.min(len - start);
            let mut fast = true;
            for (i, part) in parts[..block].iter_mut().enumerate() {
                let (p, ok) = self.one_word_lane(value(start + i));
                *part = p;
                fast &= ok;
            }
            if fast {
                let words = &mut words[..8 * block];
                rng.fill_bytes(words);
                out.extend(
                    parts[..block]
                        .iter()
                        .zip(words.chunks_exact(8))
                        .map(|(part, word)| {
                            let mut draw = [0u8; 8];
                            draw.copy_from_slice(word);
                            part.round(u64::from_le_bytes(draw))
                        }),
                );
            } else {
                for index in start..start + block {
                    out.push(self.encode_one(value(index), index, rng)?);
                }
            }
            start += block;
        }
        Ok(out)
    }

    /// `v / 2^f`, the real value an encoded integer stands for.
    pub fn decode(&self, v: i64) -> f64 {
        // v → f64 rounds to nearest for |v| > 2^53; scaling by 2^-f is exact.
        v as f64 * self.scale_inverse()
    }

    /// `v / 2^f` for a sum of encoded values (which may exceed 64 bits).
    pub fn decode_sum(&self, v: i128) -> f64 {
        v as f64 * self.scale_inverse()
    }

    /// Decodes a vector.
    pub fn decode_all(&self, vs: &[i64]) -> Vec<f64> {
        vs.iter().map(|&v| self.decode(v)).collect()
    }

    /// `2^-f` as an exact `f64` (`f ≤ 62`, so the exponent field is `1023 − f ≥ 961`).
    fn scale_inverse(&self) -> f64 {
        f64::from_bits(u64::from(1023 - self.frac_bits) << 52)
    }

    fn encode_one<R: CryptoRng + ?Sized>(
        &self,
        x: f64,
        index: usize,
        rng: &mut R,
    ) -> Result<i64, FixedPointError> {
        match self.one_word(x) {
            Some(part) => Ok(part.round(rng.next_u64())),
            None => self.encode_one_general(x, index, rng),
        }
    }

    /// Any input, with the Bernoulli trial over as many 64-bit windows as it needs.
    fn encode_one_general<R: CryptoRng + ?Sized>(
        &self,
        x: f64,
        index: usize,
        rng: &mut R,
    ) -> Result<i64, FixedPointError> {
        if !x.is_finite() {
            return Err(FixedPointError::NotFinite { index });
        }
        let out_of_range = FixedPointError::OutOfRange {
            index,
            bits: self.bits,
            frac_bits: self.frac_bits,
        };
        let (mantissa, exponent) = decompose(x);
        // |y| = mantissa · 2^(exponent + f).
        // frac_bits ≤ 62 (checked in `new`), so the cast and the sum cannot overflow.
        let shift = exponent + self.frac_bits as i32;
        let (integer, fraction) = split_magnitude(mantissa, shift).ok_or(out_of_range.clone())?;
        // Largest magnitude allowed: 2^(b−1) − 1 for positive values, 2^(b−1) for
        // negative ones; both roundings (integer and integer + 1) must fit.
        let limit = if x.is_sign_negative() {
            1u128 << (self.bits - 1)
        } else {
            (1u128 << (self.bits - 1)) - 1
        };
        let ceiling = integer + u128::from(fraction.is_some());
        if ceiling > limit {
            return Err(out_of_range);
        }
        // Always draw at least one word, so the RNG use barely depends on the value.
        let round_up = match fraction {
            Some((numerator, frac_len)) => bernoulli_dyadic(numerator, frac_len, rng),
            None => {
                let _ = rng.next_u64();
                false
            }
        };
        let magnitude = integer + u128::from(round_up);
        // magnitude ≤ 2^62, so it fits in i64 either way round.
        let magnitude = i64::try_from(magnitude).map_err(|_| out_of_range)?;
        Ok(if x.is_sign_negative() {
            -magnitude
        } else {
            magnitude
        })
    }
}

/// A value whose randomised rounding takes exactly one 64-bit word `U·2^64`: its
/// magnitude is `integer + [U·2^64 < target]`.
#[derive(Clone, Copy, Default)]
struct OneWord {
    integer: u64,
    target: u64,
    negative: bool,
}

// The default is all zeros, so `zeroize` may overwrite with it.
impl zeroize::DefaultIsZeroes for OneWord {}

impl OneWord {
    #[inline(always)]
    fn round(&self, draw: u64) -> i64 {
        // integer + 1 ≤ 2^62 was checked, so the cast is exact.
        let magnitude = (self.integer + u64::from(draw < self.target)) as i64;
        if self.negative { -magnitude } else { magnitude }
    }
}

impl FixedPoint {
    /// The common case of [`FixedPoint::encode_one`] in straight-line code: zero, or a
    /// normal `x` whose scaled magnitude `|y| = m·2^(e+f)` has between 1 and 63
    /// fraction bits `r/2^k` and whose roundings both fit. The fraction then lies in
    /// the first 64-bit window, so the Bernoulli trial is one draw, `U·2^64 <
    /// r·2^(64−k)` (for zero and for `r = 0` the word is drawn and ignored, as on the
    /// general path): the same words drawn, the same result. `None` sends every other
    /// input (subnormals, NaN, ∞, integers too large for a fraction, values out of
    /// range) to the general path.
    #[inline(always)]
    fn one_word(&self, x: f64) -> Option<OneWord> {
        let (part, ok) = self.one_word_lane(x);
        ok.then_some(part)
    }

    /// [`FixedPoint::one_word`] without branches, so a block of values vectorises:
    /// the parts, and whether they are valid (when not, the parts are meaningless).
    #[inline(always)]
    fn one_word_lane(&self, x: f64) -> (OneWord, bool) {
        let bits = x.to_bits();
        let negative = bits >> 63 == 1;
        let zero = bits << 1 == 0;
        let exponent_field = ((bits >> 52) & 0x7FF) as i64;
        // k = −(e + f) with e = exponent_field − 1075; exponent 0 is zero or a
        // subnormal, 0x7FF NaN or ∞ (and k < 0 there).
        let k = 1075 - exponent_field - i64::from(self.frac_bits);
        let has_fraction = exponent_field != 0 && (1..64).contains(&k);
        // Out-of-range shifts only occur in lanes that are not valid: keep them legal.
        let shift = (k as u64 & 63) as u32;
        let m = if zero {
            0
        } else {
            (bits & ((1u64 << 52) - 1)) | (1u64 << 52)
        };
        let integer = m >> shift;
        let r = m & ((1u64 << shift) - 1);
        // 2^(b−1) for negative values, 2^(b−1) − 1 for positive ones.
        let limit = (1u64 << (self.bits - 1)) - u64::from(!negative);
        let fits = integer + u64::from(r != 0) <= limit;
        let part = OneWord {
            integer,
            target: r.wrapping_shl(64 - shift),
            negative,
        };
        (part, zero || (has_fraction && fits))
    }
}

/// `|x| = m·2^e` exactly, with `m < 2^53` (IEEE 754 binary64 fields).
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let exponent_field = ((bits >> 52) & 0x7FF) as i32;
    let fraction_field = bits & ((1u64 << 52) - 1);
    if exponent_field == 0 {
        // Zero or subnormal: m·2^-1074.
        (fraction_field, -1074)
    } else {
        (fraction_field | (1u64 << 52), exponent_field - 1075)
    }
}

/// Splits `m·2^shift` into its integer part and, if non-zero, its fractional part as
/// `(r, k)` meaning `r/2^k` with `0 < r < 2^k`. `None` if the integer part is at least
/// `2^64` (out of every range we accept).
fn split_magnitude(m: u64, shift: i32) -> Option<(u128, Option<(u64, u32)>)> {
    if m == 0 {
        return Some((0, None));
    }
    if shift >= 0 {
        if shift > 63 {
            return None;
        }
        return Some((u128::from(m) << shift, None));
    }
    let k = shift.unsigned_abs();
    if k >= 64 {
        // m < 2^53 ≤ 2^k: no integer part.
        return Some((0, Some((m, k))));
    }
    let integer = u128::from(m >> k);
    let r = m & ((1u64 << k) - 1);
    Some((integer, (r != 0).then_some((r, k))))
}

/// `Bernoulli(r/2^k)` exactly, for `0 < r < 2^k`, `r < 2^64`: compares a uniform
/// `U ∈ [0,1)` with `r/2^k` in 64-bit windows (module docs).
fn bernoulli_dyadic<R: CryptoRng + ?Sized>(r: u64, k: u32, rng: &mut R) -> bool {
    let mut window_index: u32 = 0;
    // Window j holds fraction bits 64j+1 ..= 64j+64; beyond bit k all are zero.
    while u64::from(window_index) * 64 < u64::from(k) {
        let target = fraction_window(r, k, window_index);
        let draw = rng.next_u64();
        if draw != target {
            return draw < target;
        }
        window_index += 1;
    }
    // U agreed with r/2^k on every non-zero bit; U ≥ r/2^k.
    false
}

/// `⌊r·2^(64(j+1) − k)⌋ mod 2^64`: bits `64j+1 ..= 64j+64` after the binary point of
/// `r/2^k`.
fn fraction_window(r: u64, k: u32, j: u32) -> u64 {
    let s = i64::from(j + 1) * 64 - i64::from(k);
    if s >= 0 {
        if s >= 128 {
            0
        } else {
            // Keep the low 64 bits: higher bits belong to earlier windows.
            (u128::from(r) << s) as u64
        }
    } else if s <= -64 {
        0
    } else {
        r >> s.unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::convert::Infallible;
    use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

    /// An "RNG" replaying fixed words, to drive the Bernoulli trial down chosen paths.
    struct Replay(Vec<u64>);

    impl TryRng for Replay {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(self.0.remove(0))
        }
        fn try_fill_bytes(&mut self, _dst: &mut [u8]) -> Result<(), Infallible> {
            unimplemented!("not used")
        }
    }
    impl TryCryptoRng for Replay {}

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed([11; 32])
    }

    #[test]
    fn parameters_are_checked() {
        assert!(FixedPoint::new(0, 1).is_err());
        assert!(FixedPoint::new(0, 64).is_err());
        assert!(FixedPoint::new(63, 32).is_err());
        let fp = FixedPoint::new(62, 63).unwrap();
        assert_eq!(fp.min_encoded(), i64::MIN / 2);
        assert_eq!(fp.max_encoded(), i64::MAX / 2);
    }

    #[test]
    fn exact_values_are_not_rounded() {
        let fp = FixedPoint::new(4, 16).unwrap();
        let xs = [0.0, -0.0, 1.5, -1.5, 0.0625, -2047.9375, 2047.9375, -2048.0];
        let v = fp.encode_f64(&xs, &mut rng()).unwrap();
        assert_eq!(v, vec![0, 0, 24, -24, 1, -32767, 32767, -32768]);
        assert_eq!(fp.decode_all(&v), xs.to_vec());
    }

    #[test]
    fn non_finite_and_out_of_range_are_errors() {
        let fp = FixedPoint::new(4, 16).unwrap();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                fp.encode_f64(&[1.0, bad], &mut rng()),
                Err(FixedPointError::NotFinite { index: 1 })
            );
        }
        let oor = |index| FixedPointError::OutOfRange {
            index,
            bits: 16,
            frac_bits: 4,
        };
        // 2048·16 = 2^15 does not fit; 2047.95 could round up to 2^15: rejected too.
        for (x, ok) in [
            (2048.0, false),
            (2047.95, false),
            (2047.9375, true),
            (-2048.0, true),
            (-2048.01, false),
            (-2047.99, true),
            (1e300, false),
            (-1e300, false),
            (f64::MAX, false),
        ] {
            let got = fp.encode_f64(&[x], &mut rng());
            assert_eq!(got.is_ok(), ok, "{x}: {got:?}");
            if !ok {
                assert_eq!(got, Err(oor(0)));
            }
        }
        assert_eq!(fp.encode_f32(&[0.5, 3.0e38], &mut rng()), Err(oor(1)));
    }

    #[test]
    fn rounding_is_unbiased() {
        // E[v] = x·2^f; with 10^5 draws the mean is within 5σ (σ ≤ 0.5/√10^5).
        let fp = FixedPoint::new(2, 16).unwrap();
        let n = 100_000;
        for x in [0.3f64, -0.3, 12.345, -7.1, 0.01] {
            let v = fp.encode_f64(&vec![x; n], &mut rng()).unwrap();
            let y = x * 4.0;
            assert!(
                v.iter()
                    .all(|&vi| vi == y.floor() as i64 || vi == y.ceil() as i64)
            );
            let mean = v.iter().map(|&vi| vi as f64).sum::<f64>() / n as f64;
            let sigma = 0.5 / (n as f64).sqrt();
            assert!(
                (mean - y).abs() < 5.0 * sigma,
                "x={x}: mean {mean}, want {y}"
            );
        }
        let v = fp.encode_f32(&vec![-0.3f32; n], &mut rng()).unwrap();
        let mean = v.iter().map(|&vi| vi as f64).sum::<f64>() / n as f64;
        assert!((mean - f64::from(-0.3f32) * 4.0).abs() < 5.0 * 0.5 / (n as f64).sqrt());
    }

    #[test]
    fn bernoulli_compares_bits_exactly() {
        // r/2^k with r = 2^53 − 1, k = 100: fraction bits 48..=100 are ones, so
        // window 0 (bits 1..=64) is 2^17 − 1 and window 1 (bits 65..=128) holds 36
        // ones at its top: 2^64 − 2^28.
        let (r, k) = ((1u64 << 53) - 1, 100u32);
        let w0 = (1u64 << 17) - 1;
        let w1 = u64::MAX - ((1u64 << 28) - 1);
        assert_eq!(fraction_window(r, k, 0), w0);
        assert_eq!(fraction_window(r, k, 1), w1);
        assert_eq!(fraction_window(r, k, 2), 0);
        // Draws below / above / equal-then-below / equal-equal (then U ≥ frac).
        assert!(bernoulli_dyadic(r, k, &mut Replay(vec![w0 - 1])));
        assert!(!bernoulli_dyadic(r, k, &mut Replay(vec![w0 + 1])));
        assert!(bernoulli_dyadic(r, k, &mut Replay(vec![w0, w1 - 1])));
        assert!(!bernoulli_dyadic(r, k, &mut Replay(vec![w0, w1])));
        // A subnormal: frac = 2^-1074 → almost surely 0, but exactly 1 if U = 0…0.
        let (m, e) = decompose(f64::from_bits(1));
        assert_eq!((m, e), (1, -1074));
        let mut zeros = Replay(vec![0; 17]);
        assert!(bernoulli_dyadic(1, 1074, &mut zeros));
    }

    #[test]
    fn one_word_path_matches_the_general_one() {
        // Every exponent around the fast path's edges (k = 0, 1, 63, 64), both signs,
        // values at and past the range limits, and random mantissas: same value, same
        // words drawn (the two RNGs stay in step), same refusals.
        let mut inputs = vec![0.0, -0.0, 1.0, -1.0, 2047.9375, -2048.0, 2047.95, -2048.01];
        let mut pick = rng();
        for exponent in -80..16 {
            for _ in 0..20 {
                let m = (pick.next_u64() >> 11) as f64 / (1u64 << 53) as f64 + 1.0;
                let x = m * 2f64.powi(exponent);
                inputs.extend([x, -x]);
            }
        }
        for fp in [
            FixedPoint::new(4, 16).unwrap(),
            FixedPoint::new(14, 16).unwrap(),
        ] {
            let (mut a, mut b) = (rng(), rng());
            let mut fast = 0;
            for (index, &x) in inputs.iter().enumerate() {
                let general = fp.encode_one_general(x, index, &mut b);
                if let Some(part) = fp.one_word(x) {
                    fast += 1;
                    assert_eq!(Ok(part.round(a.next_u64())), general, "{x}");
                } else {
                    assert_eq!(fp.encode_one_general(x, index, &mut a), general, "{x}");
                }
                assert_eq!(a.next_u64(), b.next_u64(), "{x}: the RNGs drifted apart");
            }
            assert!(fast > inputs.len() / 4, "{fast} of {}", inputs.len());
        }
    }

    #[test]
    fn blocks_encode_as_value_by_value() {
        // Vectors whose blocks of 64 are all one-word values, or hold one value that is
        // not (a subnormal, a tiny value needing several windows, an integer): the
        // encoding and the words consumed equal the value-by-value general path's.
        let fp = FixedPoint::new(8, 16).unwrap();
        let mut pick = rng();
        let mut xs: Vec<f64> = (0..1_000)
            .map(|_| (pick.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0)
            .collect();
        xs[3] = 0.0;
        xs[70] = 1e-300;
        xs[200] = f64::from_bits(7);
        xs[650] = -42.0;
        xs[999] = 3e-30;
        let (mut a, mut b) = (rng(), rng());
        let blocks = fp.encode_f64(&xs, &mut a).unwrap();
        let single: Vec<i64> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| fp.encode_one_general(x, i, &mut b).unwrap())
            .collect();
        assert_eq!(blocks, single);
        assert_eq!(a.next_u64(), b.next_u64());
        // A refusal inside a block names its own index.
        xs[130] = 1e6;
        assert_eq!(
            fp.encode_f64(&xs, &mut rng()),
            Err(FixedPointError::OutOfRange {
                index: 130,
                bits: 16,
                frac_bits: 8
            })
        );
        xs[129] = f64::NAN;
        assert_eq!(
            fp.encode_f64(&xs, &mut rng()),
            Err(FixedPointError::NotFinite { index: 129 })
        );
    }

    #[test]
    fn decompose_is_exact() {
        // 2^e for a normal exponent, built from its bits (exact).
        let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
        for x in [
            1.0f64,
            0.1,
            -3.75,
            1e-310,
            123456789.123,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let (m, e) = decompose(x);
            assert!(m < 1 << 53);
            // Two exact power-of-two scalings (each factor is a normal number).
            let rebuilt = m as f64 * pow2(e / 2) * pow2(e - e / 2);
            assert_eq!(rebuilt, x.abs(), "{x}");
        }
    }
}
