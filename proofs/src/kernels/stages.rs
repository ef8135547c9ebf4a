//! What every vector unit's NTT module shares, written once: the safe entry points
//! (`dit`, `dif`), the stage loops and the tests against the field and the scalar
//! stages. A module differs from another only in its lane arithmetic, so each one
//! defines that and invokes these macros:
//!
//! * `LANES`, the values in one vector, and `available()`, whether this CPU has the
//!   unit (checked once);
//! * `load` and `store` of a `[u64; LANES]`, and `add`, `sub`, `mul` on vectors of
//!   canonical Goldilocks values, each taking the module's `Consts`;
//! * `SmallStages::new(tables)` with `dit` and `dif` methods: the stages narrower
//!   than one vector (`half < LANES`), done inside it;
//! * for the tests, the constants `P` and `EPSILON`.
//!
//! Every function of the module that uses the unit carries
//! `#[target_feature(enable = FEATURE)]`, so that its intrinsics inline into the
//! stage loops; the loops are entered only after `available()` returned true.

/// The entry points and stage loops of a vector unit whose target feature is
/// `$feature` (e.g. `"avx2"`).
macro_rules! vector_stages {
    ($feature:literal) => {
        /// Runs every decimation-in-time stage on `raw` (length `n ≥ LANES`, a power of
        /// two; `twiddles` the stage tables of [`crate::ntt::stage_twiddles`]). Returns
        /// `false`, touching nothing, when the CPU lacks the unit or `n < LANES`.
        pub(super) fn dit(raw: &mut [u64], twiddles: &[cairn_mpc::field::Field64]) -> bool {
            transform(raw, twiddles, Direction::Time)
        }

        /// Runs every decimation-in-frequency stage on `raw`; `false`, touching
        /// nothing, without the unit or when `n < LANES`.
        pub(super) fn dif(raw: &mut [u64], twiddles: &[cairn_mpc::field::Field64]) -> bool {
            transform(raw, twiddles, Direction::Frequency)
        }

        /// `raw[i] ← raw[i]·by[i]` on canonical words, a vector at a time. Returns
        /// `false`, touching nothing, without the unit or unless both have the same
        /// length, a multiple of `LANES`.
        pub(super) fn mul_assign(raw: &mut [u64], by: &[u64]) -> bool {
            if !available() || raw.len() != by.len() || !raw.len().is_multiple_of(LANES) {
                return false;
            }
            // SAFETY: the function needs only the target feature, which `available()`
            // has just confirmed on this CPU.
            unsafe { mul_assign_lanes(raw, by) };
            true
        }

        #[target_feature(enable = $feature)]
        fn mul_assign_lanes(raw: &mut [u64], by: &[u64]) {
            let c = Consts::new();
            let (raw, _) = raw.as_chunks_mut::<LANES>();
            let (by, _) = by.as_chunks::<LANES>();
            for (x, y) in raw.iter_mut().zip(by) {
                store(x, mul(load(x), load(y), &c));
            }
        }

        /// Which decimation a transform uses.
        #[derive(Clone, Copy)]
        enum Direction {
            Time,
            Frequency,
        }

        fn transform(
            raw: &mut [u64],
            twiddles: &[cairn_mpc::field::Field64],
            direction: Direction,
        ) -> bool {
            if !available() || raw.len() < LANES {
                return false;
            }
            debug_assert!(raw.len().is_power_of_two(), "NTT sizes are powers of two");
            // The stage tables as plain `u64`s, at their usual offsets (`half − 1`).
            let tables = cairn_mpc::field::Field64::raw(twiddles);
            // SAFETY: both functions need only the target feature, which `available()`
            // has just confirmed on this CPU.
            unsafe {
                match direction {
                    Direction::Time => dit_stages(raw, tables),
                    Direction::Frequency => dif_stages(raw, tables),
                }
            }
            true
        }

        /// The small stages on each vector, then each wider stage pairing a vector of
        /// the lower half of a block with the vector across from it.
        #[target_feature(enable = $feature)]
        fn dit_stages(raw: &mut [u64], tables: &[u64]) {
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

        /// [`dit_stages`] in reverse: the wide stages from the widest, then the small
        /// ones.
        #[target_feature(enable = $feature)]
        fn dif_stages(raw: &mut [u64], tables: &[u64]) {
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
    };
}

/// The tests of a vector unit whose target feature is `$feature`: its lane arithmetic
/// against the field at the edge values, and both transforms, called directly (not
/// through the dispatch, which prefers the widest unit), against the scalar stages at
/// every size from one vector to 2^12. On a CPU without the unit, they check that
/// `dit` and `dif` decline and touch nothing.
macro_rules! vector_stage_tests {
    ($feature:literal) => {
        #[cfg(test)]
        mod tests {
            use super::*;
            use cairn_mpc::field::{Field64, FieldElement};
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
                    // Products whose reduction meets its extremes: (2^48 − 1)(2^48 + 1)
                    // = 2^96 − 1 has lo = 2^64 − 1 and hl = ε; ε(ε + 2) = 2^64 − 1.
                    Just((1 << 48) - 1),
                    Just((1 << 48) + 1),
                    Just(EPSILON + 2),
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
                #[target_feature(enable = $feature)]
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
                assert!(available(), "the caller checks for the unit");
                // SAFETY: the target feature is present (asserted above).
                unsafe { run(op, &a, &b, &mut out) };
                out
            }

            proptest! {
                #[test]
                fn lane_arithmetic_matches_the_field(
                    a in proptest::array::uniform::<_, LANES>(lane()),
                    b in proptest::array::uniform::<_, LANES>(lane()),
                ) {
                    if !available() {
                        // Nothing to compare on this CPU: `dit` and `dif` decline.
                        let mut raw = [0u64; 2 * LANES];
                        prop_assert!(!dit(&mut raw, &[Field64::ONE; 2 * LANES - 1]));
                        prop_assert!(!dif(&mut raw, &[Field64::ONE; 2 * LANES - 1]));
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

                #[test]
                fn the_extreme_reductions_are_canonical(_unit in Just(())) {
                    if !available() {
                        return Ok(());
                    }
                    let two_48 = 1u64 << 48;
                    let product = lanes(
                        Op::Mul,
                        [two_48 - 1, EPSILON, P - 1, two_48 + 1].repeat(LANES / 4).try_into().expect("lanes"),
                        [two_48 + 1, EPSILON + 2, P - 1, two_48 - 1].repeat(LANES / 4).try_into().expect("lanes"),
                    );
                    // 2^96 − 1 ≡ −2, 2^64 − 1 ≡ ε − 1, (−1)² = 1 (mod p).
                    let expected = [P - 2, EPSILON - 1, 1, P - 2].repeat(LANES / 4);
                    prop_assert_eq!(product.to_vec(), expected);
                }

                #[test]
                fn products_match_the_field(
                    a in proptest::collection::vec(lane(), 0..40),
                    seed in any::<u64>(),
                ) {
                    use rand_chacha::ChaCha20Rng;
                    use rand_core::Rng;
                    use rand_core::SeedableRng;
                    let mut rng = ChaCha20Rng::seed_from_u64(seed);
                    let b: Vec<u64> = a.iter().map(|_| rng.next_u64() % P).collect();
                    let mut vector = a.clone();
                    let ran = mul_assign(&mut vector, &b);
                    prop_assert_eq!(ran, available() && a.len() % LANES == 0);
                    if ran {
                        let field = |v: u64| Field64::new(v).expect("canonical");
                        for i in 0..a.len() {
                            prop_assert_eq!(vector[i], (field(a[i]) * field(b[i])).as_u64());
                        }
                    } else {
                        prop_assert_eq!(&vector, &a);
                    }
                }

                #[test]
                fn transforms_match_the_scalar_stages(seed in any::<u64>(), log_n in 1u32..=12) {
                    use rand_chacha::ChaCha20Rng;
                    use rand_core::SeedableRng;
                    let mut rng = ChaCha20Rng::seed_from_u64(seed);
                    let n = 1usize << log_n;
                    let raw: Vec<u64> =
                        (0..n).map(|_| Field64::random(&mut rng).as_u64()).collect();
                    let mut powers: Vec<Field64> =
                        (0..n / 2).map(|_| Field64::random(&mut rng)).collect();
                    powers[0] = Field64::ONE;
                    let tables = crate::ntt::stage_twiddles(&powers);
                    for frequency in [false, true] {
                        let mut scalar = raw.clone();
                        let mut vector = raw.clone();
                        let ran = if frequency {
                            crate::kernels::dif_raw(&mut scalar, &tables, false);
                            dif(&mut vector, &tables)
                        } else {
                            crate::kernels::dit_raw(&mut scalar, &tables, false);
                            dit(&mut vector, &tables)
                        };
                        prop_assert_eq!(ran, available() && n >= LANES);
                        if ran {
                            prop_assert_eq!(&vector, &scalar);
                        } else {
                            prop_assert_eq!(&vector, &raw);
                        }
                    }
                }
            }
        }
    };
}
