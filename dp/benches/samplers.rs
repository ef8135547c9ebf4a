//! Throughput of the exact samplers, ours beside OpenDP's (`cargo bench -p cairn-dp --bench
//! samplers`). Ours draw from ChaCha20 (rand_chacha); OpenDP draws from its own global RNG
//! (OpenSSL-free build: `rand`'s thread RNG) and works in arbitrary-precision rationals.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use cairn_dp::sample::{DiscreteGaussian, DiscreteLaplace, Ratio};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dashu::rational::RBig;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SIGMAS: [(u32, &str); 4] = [
    (1, "1"),
    (1 << 5, "2^5"),
    (1 << 10, "2^10"),
    (1 << 20, "2^20"),
];

/// Our sampler (`fill` 10,000 values) beside OpenDP's (`theirs`, 100 draws) at each
/// scale of [`SIGMAS`]. `ours` builds our sampler for a scale.
fn compare<S>(
    c: &mut Criterion,
    group: &str,
    seed: u8,
    ours: impl Fn(Ratio) -> S,
    fill: impl Fn(&S, &mut ChaCha20Rng, &mut [i64]),
    theirs: impl Fn(RBig),
) {
    let mut group = c.benchmark_group(group);
    for (scale, label) in SIGMAS {
        let sampler = ours(Ratio::from_integer(u64::from(scale)));
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let mut out = vec![0i64; 10_000];
        group.throughput(Throughput::Elements(out.len() as u64));
        group.bench_function(BenchmarkId::new("cairn", label), |b| {
            b.iter(|| {
                fill(&sampler, &mut rng, &mut out);
                black_box(&out);
            })
        });
        let rscale = RBig::from(scale);
        group.throughput(Throughput::Elements(100));
        group.bench_function(BenchmarkId::new("opendp", label), |b| {
            b.iter(|| {
                for _ in 0..100 {
                    theirs(rscale.clone());
                }
            })
        });
    }
    group.finish();
}

fn gaussian(c: &mut Criterion) {
    compare(
        c,
        "discrete_gaussian",
        1,
        |sigma| DiscreteGaussian::new(sigma).unwrap(),
        |s, rng, out| s.fill(rng, out),
        |scale| {
            black_box(opendp::traits::samplers::sample_discrete_gaussian(scale).unwrap());
        },
    );
}

fn laplace(c: &mut Criterion) {
    compare(
        c,
        "discrete_laplace",
        2,
        |scale| DiscreteLaplace::new(scale).unwrap(),
        |s, rng, out| s.fill(rng, out),
        |scale| {
            black_box(opendp::traits::samplers::sample_discrete_laplace(scale).unwrap());
        },
    );
}

fn setup(c: &mut Criterion) {
    c.bench_function("discrete_gaussian_setup/2^20", |b| {
        b.iter(|| DiscreteGaussian::new(Ratio::from_integer(1 << 20)).unwrap())
    });
}

criterion_group!(benches, gaussian, laplace, setup);
criterion_main!(benches);
