//! One client's shard (encode, share, prove) at a given d, repeated: a target for
//! instruction counts, which stay repeatable on a shared machine where times do not.
//!
//! ```sh
//! cargo build --release -p cairn-proofs --example profile_shard
//! valgrind --tool=callgrind target/release/examples/profile_shard 100000 1
//! valgrind --tool=callgrind target/release/examples/profile_shard 100000 3
//! ```
//!
//! The difference of the two totals, halved, is one shard's instructions (the set-up
//! cancels out). Arguments: d (default 100000), shards (default 1), the joint-randomness
//! hash (`blake3`, what `cairn init` writes, or `sha256`; default blake3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams, JointRandHash};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn main() {
    let mut args = std::env::args().skip(1);
    let d: usize = args.next().map_or(100_000, |a| a.parse().expect("d"));
    let shards: usize = args.next().map_or(1, |a| a.parse().expect("shards"));
    let hash = match args.next().as_deref() {
        None | Some("blake3") => JointRandHash::Blake3,
        Some("sha256") => JointRandHash::Sha256,
        Some(other) => panic!("hash: blake3 or sha256, not {other}"),
    };
    // B = 2^15·√d/4, as in the carry_lift bench: a realistic clip for 16-bit values.
    let bound = ((1u64 << 15) as f64 * (d as f64).sqrt() / 4.0) as u64;
    let cl = CarryLift::new(CarryLiftParams {
        joint_rand_hash: hash,
        ..CarryLiftParams::new(d, 2, bound)
    })
    .unwrap();
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let max = ((bound as f64) / (d as f64).sqrt()).max(1.0) as u64;
    let x: Vec<i64> = (0..d)
        .map(|_| (rng.next_u64() % (2 * max + 1)) as i64 - max as i64)
        .collect();
    for _ in 0..shards {
        std::hint::black_box(cl.shard(&[1; 32], &[2; 16], &x, &mut rng).unwrap());
    }
}
