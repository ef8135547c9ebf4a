//! A walk through Cairn's secret sharing: three clients share small vectors among three
//! aggregators, no single share reveals anything, and the sum of the aggregators'
//! totals is the sum of the inputs.
//!
//! Run: `cargo run --release -p cairn-mpc --example share_demo`
#![allow(clippy::unwrap_used)]

use cairn_mpc::fixed_point::FixedPoint;
use cairn_mpc::prg::Usage;
use cairn_mpc::sharing::{
    ShareContext, add_expanded_field_share, add_expanded_zq_share, reconstruct_field,
    reconstruct_zq, share_field, share_zq,
};
use cairn_mpc::vector;
use cairn_mpc::{Field64, FieldElement, Seed};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PARTIES: usize = 3;
const FRAC_BITS: u32 = 8;
const BITS: u32 = 16;

fn main() {
    // A fixed seed makes the demo repeatable; real clients draw from the OS.
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let task_id = [0x7A; 32];
    let clients: [&[f32]; 3] = [
        &[0.50, -1.25, 2.00, 0.10],
        &[1.00, 0.75, -0.50, 0.20],
        &[-0.25, 0.25, 1.50, 0.30],
    ];
    let d = clients[0].len();
    let fp = FixedPoint::new(FRAC_BITS, BITS).unwrap();

    println!(
        "Cairn share demo: {} clients, {PARTIES} aggregators, d = {d}",
        clients.len()
    );
    println!("Each value is encoded with {FRAC_BITS} fractional bits in {BITS}-bit words");
    println!("(randomised rounding, so the encoding is unbiased).\n");

    // ---- Sharing over Z_{2^16}: 2 bytes per coordinate for the leader, 32 bytes in all
    //      for each helper (a seed).
    println!("== Sharing over Z_2^16 ==");
    let mut leader_total = vec![0u16; d];
    let mut helper_totals = vec![vec![0u16; d]; PARTIES - 1];
    let mut helper_inbox: Vec<Vec<(ShareContext, Seed)>> =
        (1..PARTIES).map(|_| Vec::new()).collect();
    let mut plain_sum = vec![0i64; d];
    for (c, input) in clients.iter().enumerate() {
        let encoded = fp.encode_f32(input, &mut rng).unwrap();
        for (s, v) in plain_sum.iter_mut().zip(&encoded) {
            *s += v;
        }
        // Two's complement wrap: a signed b-bit integer as an element of Z_{2^b}.
        let words: Vec<u16> = encoded.iter().map(|&v| v as u16).collect();
        let ctx = ShareContext::new(task_id, [c as u8 + 1; 16]);
        let sharing = share_zq(&words, &ctx, PARTIES, &mut rng).unwrap();
        if c == 0 {
            println!("client 0 input      : {input:?}");
            println!("client 0 encoded    : {words:?}");
            println!(
                "leader's share      : {:?}   <- uniformly random",
                sharing.leader_share.expose_secret()
            );
            for (j, seed) in sharing.helper_seeds.iter().enumerate() {
                let share = cairn_mpc::sharing::expand_zq_share::<u16>(
                    seed,
                    &ctx,
                    j as u8 + 1,
                    Usage::ZqShare,
                    d,
                )
                .unwrap();
                println!(
                    "helper {}'s share    : {:?}   <- expanded from a 32-byte seed {seed:?}",
                    j + 1,
                    share.expose_secret()
                );
            }
        }
        vector::add_assign_zq(&mut leader_total, sharing.leader_share.expose_secret()).unwrap();
        for (inbox, seed) in helper_inbox.iter_mut().zip(sharing.helper_seeds) {
            inbox.push((ctx, seed));
        }
    }
    // Each helper expands its seeds and adds them up, on its own.
    for (j, (inbox, total)) in helper_inbox
        .iter()
        .zip(helper_totals.iter_mut())
        .enumerate()
    {
        for (ctx, seed) in inbox {
            add_expanded_zq_share(total, seed, ctx, j as u8 + 1, Usage::ZqShare).unwrap();
        }
    }
    println!("\nper-aggregator totals (each alone is still uniformly random):");
    println!("  leader  : {leader_total:?}");
    for (j, t) in helper_totals.iter().enumerate() {
        println!("  helper {}: {t:?}", j + 1);
    }
    let mut totals: Vec<&[u16]> = vec![&leader_total];
    totals.extend(helper_totals.iter().map(Vec::as_slice));
    let sum = reconstruct_zq(&totals).unwrap();
    let decoded: Vec<f64> = sum
        .iter()
        .map(|&w| fp.decode(i64::from(w as i16)))
        .collect();
    let expected: Vec<f64> = plain_sum.iter().map(|&v| fp.decode(v)).collect();
    println!("\ncombined totals     : {sum:?}");
    println!("decoded sum         : {decoded:?}");
    println!("sum of the encodings: {expected:?}");
    assert_eq!(decoded, expected);
    let true_sum: Vec<f32> = (0..d).map(|i| clients.iter().map(|c| c[i]).sum()).collect();
    println!(
        "true real sum       : {true_sum:?}   (differs only by rounding, ≤ 2^-{FRAC_BITS} per client)"
    );

    // ---- The same over the Goldilocks field (what the validity proofs work in).
    println!("\n== Sharing over Field64 (p = 2^64 - 2^32 + 1) ==");
    let mut leader_total = vec![Field64::ZERO; d];
    let mut helper_totals = vec![vec![Field64::ZERO; d]; PARTIES - 1];
    let mut plain_sum = vec![0i64; d];
    for (c, input) in clients.iter().enumerate() {
        let encoded = fp.encode_f32(input, &mut rng).unwrap();
        for (s, v) in plain_sum.iter_mut().zip(&encoded) {
            *s += v;
        }
        let x: Vec<Field64> = encoded.iter().map(|&v| Field64::from_i64(v)).collect();
        let ctx = ShareContext::new(task_id, [c as u8 + 101; 16]);
        let sharing = share_field(&x, &ctx, PARTIES, &mut rng).unwrap();
        if c == 0 {
            println!("client 0 as field elements: {x:?}");
            println!(
                "leader's share            : {:?}",
                sharing.leader_share.expose_secret()
            );
        }
        vector::add_assign(&mut leader_total, sharing.leader_share.expose_secret()).unwrap();
        for (j, (seed, total)) in sharing
            .helper_seeds
            .iter()
            .zip(helper_totals.iter_mut())
            .enumerate()
        {
            add_expanded_field_share(total, seed, &ctx, j as u8 + 1, Usage::FieldShare).unwrap();
        }
    }
    let mut totals: Vec<&[Field64]> = vec![&leader_total];
    totals.extend(helper_totals.iter().map(Vec::as_slice));
    let sum = reconstruct_field(&totals).unwrap();
    let decoded: Vec<f64> = sum
        .iter()
        .map(|v| fp.decode_sum(v.to_centred_i128()))
        .collect();
    let expected: Vec<f64> = plain_sum.iter().map(|&v| fp.decode(v)).collect();
    println!("decoded sum               : {decoded:?}");
    println!("sum of the encodings      : {expected:?}");
    assert_eq!(decoded, expected);
    println!(
        "\nOK: any {} of the {PARTIES} shares are uniformly random; all {PARTIES} together give the sum.",
        PARTIES - 1
    );
}
