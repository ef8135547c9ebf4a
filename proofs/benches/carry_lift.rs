//! Carry-lift benchmarks: client shard (encode + share + prove), per-aggregator
//! `prepare_init` (expand + lift + query), `decide`, and message sizes, for
//! d ∈ {10^3, 10^4, 10^5}, n = 2, b = 16.
//!
//! Run: `cargo bench -p cairn-proofs --bench carry_lift -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use cairn_mpc::codec::Encode;
use cairn_mpc::secret::Seed;
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const TASK: [u8; 32] = [1; 32];
const REPORT: [u8; 16] = [2; 16];
const DIMENSIONS: [usize; 3] = [1_000, 10_000, 100_000];

/// A random input of norm about B/2 (coordinates in ±2·B/√d, clamped to the range).
fn input(rng: &mut ChaCha20Rng, d: usize, bound: u64) -> Vec<i64> {
    let max = ((bound as f64) / (d as f64).sqrt()).max(1.0) as u64;
    (0..d)
        .map(|_| (rng.next_u64() % (2 * max + 1)) as i64 - max as i64)
        .collect()
}

fn setup(d: usize) -> (CarryLift, u64) {
    // B = 2^15·√d/4: a realistic clip for 16-bit quantisation.
    let bound = ((1u64 << 15) as f64 * (d as f64).sqrt() / 4.0) as u64;
    let cl = CarryLift::new(CarryLiftParams::new(d, 2, bound)).unwrap();
    (cl, bound)
}

fn print_sizes() {
    eprintln!();
    eprintln!(
        "{:>8} {:>6} {:>6} {:>12} {:>8} {:>8} {:>10} {:>10} {:>12}",
        "d", "m", "P", "leader B", "helper B", "public B", "upload B", "B/param", "verifier B"
    );
    for d in DIMENSIONS {
        let (cl, bound) = setup(d);
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let x = input(&mut rng, d, bound);
        let report = cl.shard(&TASK, &REPORT, &x, &mut rng).unwrap();
        let leader = report.leader_share.to_bytes().len();
        assert_eq!(leader, cl.leader_share_len());
        let helper: usize = report
            .helper_shares
            .iter()
            .map(|h| h.to_bytes().len())
            .sum();
        let public = report.public_share.to_bytes().len();
        let upload = leader + helper + public;
        eprintln!(
            "{:>8} {:>6} {:>6} {:>12} {:>8} {:>8} {:>10} {:>10.3} {:>12}",
            d,
            cl.chunk(),
            cl.domain_size(),
            leader,
            helper,
            public,
            upload,
            upload as f64 / d as f64,
            cl.verifier_share_len()
        );
        eprintln!(
            "         soundness bound: 2^{:.1} (no grinding), 2^{:.1} (2^100 Fiat-Shamir attempts)",
            cl.soundness_error_log2(0),
            cl.soundness_error_log2(100)
        );
    }
}

fn bench(c: &mut Criterion) {
    print_sizes();
    let mut group = c.benchmark_group("carry_lift");
    group.sample_size(10);
    for d in DIMENSIONS {
        let (cl, bound) = setup(d);
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let x = input(&mut rng, d, bound);
        let key = Seed::from_bytes([5; 32]);

        group.bench_with_input(BenchmarkId::new("shard", d), &d, |b, _| {
            b.iter(|| black_box(cl.shard(&TASK, &REPORT, &x, &mut rng).unwrap()))
        });

        let report = cl.shard(&TASK, &REPORT, &x, &mut rng).unwrap();
        let (public, shares) = report.into_input_shares();
        for (agg, name) in [(0usize, "prepare_leader"), (1, "prepare_helper")] {
            group.bench_with_input(BenchmarkId::new(name, d), &d, |b, _| {
                b.iter(|| {
                    black_box(
                        cl.prepare_init(agg, &key, &TASK, &REPORT, &public, &shares[agg])
                            .unwrap(),
                    )
                })
            });
        }
        let (state, v0) = cl
            .prepare_init(0, &key, &TASK, &REPORT, &public, &shares[0])
            .unwrap();
        let (_, v1) = cl
            .prepare_init(1, &key, &TASK, &REPORT, &public, &shares[1])
            .unwrap();
        let verifiers = [v0, v1];
        group.bench_with_input(BenchmarkId::new("decide", d), &d, |b, _| {
            b.iter(|| cl.decide(&state, black_box(&verifiers)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
