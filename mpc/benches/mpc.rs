//! Criterion benches for cairn-mpc at d = 10^5 (issue 2 targets in comments).
//!
//! Run: `cargo bench -p cairn-mpc --bench mpc -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use cairn_mpc::codec::{Decode, Encode, Reader, encode_zq_slice};
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::prg::{Prg, Usage};
use cairn_mpc::secret::Seed;
use cairn_mpc::sharing::{
    ShareContext, add_expanded_field_share, expand_field_share, generate_helper_seeds,
    leader_share_field, leader_share_zq,
};
use cairn_mpc::vector;
use criterion::{Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const D: usize = 100_000;

fn ctx() -> ShareContext {
    ShareContext::new([1; 32], [2; 16])
}

fn random_field_vec(rng: &mut ChaCha20Rng) -> Vec<Field64> {
    (0..D).map(|_| Field64::random(rng)).collect()
}

fn expansion(c: &mut Criterion) {
    let seed = Seed::from_bytes([7; 32]);
    let domain = ctx().domain(1, Usage::FieldShare);
    let mut g = c.benchmark_group("expansion_d1e5");
    // Target: ≤ 0.6 ms.
    g.bench_function("prg_fill_field64", |b| {
        let mut out = vec![Field64::ZERO; D];
        b.iter(|| {
            Prg::new(&seed, &domain).fill_field(&mut out);
            black_box(&out);
        });
    });
    g.bench_function("expand_field_share_alloc", |b| {
        b.iter(|| {
            black_box(
                expand_field_share::<Field64>(&seed, &ctx(), 1, Usage::FieldShare, D).unwrap(),
            )
        });
    });
    g.bench_function("prg_fill_zq_u16", |b| {
        let mut out = vec![0u16; D];
        b.iter(|| {
            Prg::new(&seed, &domain).fill_zq(&mut out);
            black_box(&out);
        });
    });
    // Floors: raw keystream of 8·10^5 bytes from both ChaCha20 implementations.
    g.bench_function("raw_chacha20_crate_800kB", |b| {
        let mut out = vec![0u8; 8 * D];
        b.iter(|| {
            Prg::new(&seed, &domain).fill_bytes(&mut out);
            black_box(&out);
        });
    });
    g.bench_function("raw_rand_chacha_800kB", |b| {
        let mut out = vec![0u8; 8 * D];
        b.iter(|| {
            ChaCha20Rng::from_seed([7; 32]).fill_bytes(&mut out);
            black_box(&out);
        });
    });
    g.finish();
}

fn sharing(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let x: Vec<u16> = (0..D).map(|_| rng.next_u32() as u16).collect();
    let carries: Vec<Field64> = (0..D).map(|i| Field64::from_u64((i % 2) as u64)).collect();
    let mut g = c.benchmark_group("sharing_d1e5_n2");
    // Target: ≤ 1.5 ms for Z_{2^16} shares + Field64 shares with one helper seed.
    g.bench_function("client_zq16_plus_field64", |b| {
        b.iter(|| {
            let seeds = generate_helper_seeds(2, &mut rng).unwrap();
            let zq = leader_share_zq(&x, &ctx(), &seeds, Usage::ZqShare).unwrap();
            let field = leader_share_field(&carries, &ctx(), &seeds, Usage::FieldShare).unwrap();
            black_box((zq, field, seeds));
        });
    });
    g.bench_function("client_zq16_only", |b| {
        b.iter(|| {
            let seeds = generate_helper_seeds(2, &mut rng).unwrap();
            black_box(leader_share_zq(&x, &ctx(), &seeds, Usage::ZqShare).unwrap());
        });
    });
    g.bench_function("helper_add_expanded_field64_share", |b| {
        let seed = Seed::from_bytes([9; 32]);
        let mut acc = vec![Field64::ZERO; D];
        b.iter(|| {
            add_expanded_field_share(&mut acc, &seed, &ctx(), 1, Usage::FieldShare).unwrap();
            black_box(&acc);
        });
    });
    g.finish();
}

fn kernels(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let a = random_field_vec(&mut rng);
    let b_vec = random_field_vec(&mut rng);
    let zq: Vec<u16> = (0..D).map(|_| rng.next_u32() as u16).collect();
    let mut g = c.benchmark_group("kernels_d1e5");
    // Target: ≤ 0.1 ms.
    g.bench_function("field64_add_assign", |b| {
        let mut acc = a.clone();
        b.iter(|| {
            vector::add_assign(&mut acc, &b_vec).unwrap();
            black_box(&acc);
        });
    });
    g.bench_function("field64_inner_product", |b| {
        b.iter(|| black_box(vector::inner_product(&a, &b_vec).unwrap()));
    });
    g.bench_function("field64_inner_product_naive", |b| {
        b.iter(|| {
            black_box(
                a.iter()
                    .zip(&b_vec)
                    .fold(Field64::ZERO, |s, (&x, &y)| s + x * y),
            )
        });
    });
    g.bench_function("zq16_add_assign", |b| {
        let mut acc = zq.clone();
        b.iter(|| {
            vector::add_assign_zq(&mut acc, &zq).unwrap();
            black_box(&acc);
        });
    });
    g.bench_function("zq16_into_field64", |b| {
        let mut acc = a.clone();
        b.iter(|| {
            vector::accumulate_zq_into_field(&mut acc, &zq).unwrap();
            black_box(&acc);
        });
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let field = random_field_vec(&mut rng);
    let zq: Vec<u16> = (0..D).map(|_| rng.next_u32() as u16).collect();
    let field_bytes = field.to_bytes();
    let mut zq_bytes = Vec::new();
    encode_zq_slice(&zq, &mut zq_bytes);
    let mut g = c.benchmark_group("codec_d1e5");
    g.bench_function("decode_vec_field64_generic", |b| {
        b.iter(|| black_box(Vec::<Field64>::decode(&field_bytes).unwrap()));
    });
    g.bench_function("read_field_vec_bulk", |b| {
        b.iter(|| {
            black_box(
                Reader::new(&field_bytes[4..])
                    .read_field_vec::<Field64>(D)
                    .unwrap(),
            )
        });
    });
    g.bench_function("read_zq_vec_u16_bulk", |b| {
        b.iter(|| black_box(Reader::new(&zq_bytes).read_zq_vec::<u16>(D).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, expansion, sharing, kernels, codec);
criterion_main!(benches);
