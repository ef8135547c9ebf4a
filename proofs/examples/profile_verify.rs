//! Each aggregator's verification of one report (`prepare_init`) at a given d,
//! repeated: a target for instruction counts, like `profile_shard`.
//!
//! ```sh
//! cargo build --release -p cairn-proofs --example profile_verify
//! valgrind --tool=callgrind target/release/examples/profile_verify 100000 0 1
//! valgrind --tool=callgrind target/release/examples/profile_verify 100000 0 3
//! ```
//!
//! The difference of the two totals, halved, is one verification's instructions by
//! aggregator `agg` (0 = the leader, decoding its share too; 1 = the helper); the shard and the set-up cancel
//! out. Arguments: d (default 100000), agg (default 0), repetitions (default 1), the
//! joint-randomness hash (`blake3`, what `cairn init` writes, or `sha256`; default blake3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_mpc::codec::Encode;
use cairn_mpc::secret::Seed;
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams, InputShare, JointRandHash};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn main() {
    let mut args = std::env::args().skip(1);
    let d: usize = args.next().map_or(100_000, |a| a.parse().expect("d"));
    let agg: usize = args.next().map_or(0, |a| a.parse().expect("agg"));
    let reps: usize = args.next().map_or(1, |a| a.parse().expect("repetitions"));
    let hash = match args.next().as_deref() {
        None | Some("blake3") => JointRandHash::Blake3,
        Some("sha256") => JointRandHash::Sha256,
        Some(other) => panic!("hash: blake3 or sha256, not {other}"),
    };
    // B = 2^15·√d/4, as in profile_shard.
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
    let (task, report) = ([1; 32], [2; 16]);
    let (public, shares) = cl
        .shard(&task, &report, &x, &mut rng)
        .unwrap()
        .into_input_shares();
    let key = Seed::from_bytes([7; 32]);
    // The leader decodes its share from the wire on every report; so does this loop.
    let leader_bytes = match &shares[0] {
        InputShare::Leader(share) => share.to_bytes(),
        InputShare::Helper(_) => unreachable!("share 0 is the leader's"),
    };
    for _ in 0..reps {
        let decoded;
        let share = if agg == 0 {
            decoded = InputShare::Leader(cl.decode_leader_share(&leader_bytes).unwrap());
            &decoded
        } else {
            &shares[agg]
        };
        let out = cl
            .prepare_init(agg, &key, &task, &report, &public, share)
            .unwrap();
        std::hint::black_box(out);
    }
}
