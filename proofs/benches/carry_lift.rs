//! Carry-lift benchmarks: client shard (encode + share + prove), per-aggregator
//! `prepare_init` (expand + lift + query), `decide`, and message sizes, for
//! d ∈ {10^3, 10^4, 10^5}, n = 2, b = 16.
//!
//! The anchor, in the same run: `prio` 0.17's `Prio3FixedPointBoundedL2VecSum` with
//! 16-bit fixed point (`FixedI16<U15>`), 2 aggregators: shard time, per-aggregator
//! `prepare_init` time and report size at the same dimensions. A summary table with
//! the ratios is printed at the end.
//!
//! Run: `cargo bench -p cairn-proofs --bench carry_lift -- --warm-up-time 1 --measurement-time 3`
//! (set `CAIRN_BENCH_SKIP_PRIO=1` to skip the anchor, which takes a few minutes).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_mpc::codec::Encode;
use cairn_mpc::secret::Seed;
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const TASK: [u8; 32] = [1; 32];
const REPORT: [u8; 16] = [2; 16];
const DIMENSIONS: [usize; 3] = [1_000, 10_000, 100_000];

/// Per dimension: (ours, prio) figures collected for the summary table.
#[derive(Default, Clone, Copy)]
struct Figures {
    shard: Duration,
    prepare: Duration,
    upload_bytes: usize,
    prep_message_bytes: usize,
}

static OURS: Mutex<Vec<(usize, Figures)>> = Mutex::new(Vec::new());
static PRIO: Mutex<Vec<(usize, Figures)>> = Mutex::new(Vec::new());

/// Median of `runs` timings of `f` (for the summary table; criterion prints its own).
fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

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
        let upload = cl.leader_share_len() + cl.helper_share_len() + cl.public_share_len();
        let ours = Figures {
            shard: median_time(5, || {
                black_box(cl.shard(&TASK, &REPORT, &x, &mut rng).unwrap());
            }),
            prepare: median_time(5, || {
                black_box(
                    cl.prepare_init(1, &key, &TASK, &REPORT, &public, &shares[1])
                        .unwrap(),
                );
            })
            .max(median_time(5, || {
                black_box(
                    cl.prepare_init(0, &key, &TASK, &REPORT, &public, &shares[0])
                        .unwrap(),
                );
            })),
            upload_bytes: upload,
            prep_message_bytes: cl.verifier_share_len(),
        };
        OURS.lock().unwrap().push((d, ours));
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

/// The anchor: prio 0.17 `Prio3FixedPointBoundedL2VecSum<FixedI16<U15>>`, 2 aggregators.
fn bench_prio(c: &mut Criterion) {
    if std::env::var_os("CAIRN_BENCH_SKIP_PRIO").is_some() {
        eprintln!("prio anchor skipped (CAIRN_BENCH_SKIP_PRIO is set)");
        return;
    }
    use fixed::types::{I1F15, extra::U15};
    use prio::codec::Encode as _;
    use prio::vdaf::prio3::Prio3FixedPointBoundedL2VecSum;
    use prio::vdaf::{Aggregator, Client};

    let mut group = c.benchmark_group("prio3_fixedpoint_l2");
    group.sample_size(10);
    for d in DIMENSIONS {
        let vdaf =
            Prio3FixedPointBoundedL2VecSum::<fixed::FixedI16<U15>>::new_fixedpoint_boundedl2_vec_sum(2, d)
                .unwrap();
        // ‖x‖ = 1/2 < 1 (the type's norm bound), spread over the coordinates.
        let v = 0.5 / (d as f64).sqrt();
        let x: Vec<I1F15> = (0..d)
            .map(|i| I1F15::from_num(if i % 2 == 0 { v } else { -v }))
            .collect();
        let ctx = b"cairn-bench";
        let nonce = [7u8; 16];
        let key = [9u8; 32];

        let start = Instant::now();
        let (public, inputs) = vdaf.shard(ctx, &x, &nonce).unwrap();
        let one_shard = start.elapsed();
        if one_shard > Duration::from_secs(60) {
            eprintln!("prio: d = {d}: one shard took {one_shard:?} > 60 s; skipping this d");
            continue;
        }
        let upload = public.get_encoded().unwrap().len()
            + inputs
                .iter()
                .map(|s| s.get_encoded().unwrap().len())
                .sum::<usize>();
        let (_, prep_share) = vdaf
            .prepare_init(&key, ctx, 1, &(), &nonce, &public, &inputs[1])
            .unwrap();
        let prep_bytes = prep_share.get_encoded().unwrap().len();

        group.bench_with_input(BenchmarkId::new("shard", d), &d, |b, _| {
            b.iter(|| black_box(vdaf.shard(ctx, &x, &nonce).unwrap()))
        });
        for (agg, name) in [(0usize, "prepare_leader"), (1, "prepare_helper")] {
            group.bench_with_input(BenchmarkId::new(name, d), &d, |b, _| {
                b.iter(|| {
                    black_box(
                        vdaf.prepare_init(&key, ctx, agg, &(), &nonce, &public, &inputs[agg])
                            .unwrap(),
                    )
                })
            });
        }
        let figures = Figures {
            shard: median_time(3, || {
                black_box(vdaf.shard(ctx, &x, &nonce).unwrap());
            }),
            prepare: median_time(3, || {
                black_box(
                    vdaf.prepare_init(&key, ctx, 1, &(), &nonce, &public, &inputs[1])
                        .unwrap(),
                );
            })
            .max(median_time(3, || {
                black_box(
                    vdaf.prepare_init(&key, ctx, 0, &(), &nonce, &public, &inputs[0])
                        .unwrap(),
                );
            })),
            upload_bytes: upload,
            prep_message_bytes: prep_bytes,
        };
        PRIO.lock().unwrap().push((d, figures));
    }
    group.finish();
}

/// One table with both systems and the ratios (prio / ours).
fn summary(_: &mut Criterion) {
    let ours = OURS.lock().unwrap().clone();
    let prio = PRIO.lock().unwrap().clone();
    let ms = |t: Duration| t.as_secs_f64() * 1e3;
    eprintln!();
    eprintln!(
        "Summary (median of a few runs each; n = 2, 16-bit; prepare = slower aggregator's prepare_init)"
    );
    eprintln!(
        "{:>7} | {:>10} {:>10} {:>9} {:>9} | {:>10} {:>10} {:>9} {:>9} | {:>7} {:>7} {:>7}",
        "d",
        "ours shard",
        "ours prep",
        "ours B/p",
        "ours vrf",
        "prio shard",
        "prio prep",
        "prio B/p",
        "prio vrf",
        "shard×",
        "prep×",
        "bytes×"
    );
    for (d, o) in &ours {
        let p = prio.iter().find(|(pd, _)| pd == d).map(|(_, f)| *f);
        match p {
            Some(p) => eprintln!(
                "{:>7} | {:>8.2}ms {:>8.2}ms {:>9.2} {:>8}B | {:>8.1}ms {:>8.1}ms {:>9.1} {:>8}B | {:>7.0} {:>7.0} {:>7.1}",
                d,
                ms(o.shard),
                ms(o.prepare),
                o.upload_bytes as f64 / *d as f64,
                o.prep_message_bytes,
                ms(p.shard),
                ms(p.prepare),
                p.upload_bytes as f64 / *d as f64,
                p.prep_message_bytes,
                p.shard.as_secs_f64() / o.shard.as_secs_f64(),
                p.prepare.as_secs_f64() / o.prepare.as_secs_f64(),
                p.upload_bytes as f64 / o.upload_bytes as f64,
            ),
            None => eprintln!(
                "{:>7} | {:>8.2}ms {:>8.2}ms {:>9.2} {:>8}B | (prio skipped)",
                d,
                ms(o.shard),
                ms(o.prepare),
                o.upload_bytes as f64 / *d as f64,
                o.prep_message_bytes
            ),
        }
    }
}

criterion_group!(benches, bench, bench_prio, summary);
criterion_main!(benches);
