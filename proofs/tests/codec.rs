//! Message encodings: round trips, exact lengths, and decoding never panics.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cairn_mpc::codec::Encode;
use cairn_mpc::secret::Seed;
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams, InputShare};
use cairn_proofs::no_proof::{NoProof, NoProofParams};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn lift() -> CarryLift {
    CarryLift::new(CarryLiftParams::new(5, 3, 100)).unwrap()
}

#[test]
fn encodings_round_trip_and_have_the_documented_lengths() {
    for bits in [8, 16] {
        round_trip(bits);
    }
}

fn round_trip(bits: u32) {
    let cl = CarryLift::new(CarryLiftParams {
        bits,
        ..CarryLiftParams::new(5, 3, 100)
    })
    .unwrap();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let report = cl
        .shard(&[1; 32], &[2; 16], &[1, -2, 3, -4, 5], &mut rng)
        .unwrap();
    let leader = report.leader_share.to_bytes();
    assert_eq!(leader.len(), cl.leader_share_len());
    assert_eq!(cl.decode_leader_share(&leader).unwrap().to_bytes(), leader);
    let public = report.public_share.to_bytes();
    assert_eq!(public.len(), cl.public_share_len());
    assert_eq!(
        cl.decode_public_share(&public).unwrap(),
        report.public_share
    );
    for h in &report.helper_shares {
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), cl.helper_share_len());
        assert_eq!(cl.decode_helper_share(&bytes).unwrap().to_bytes(), bytes);
    }
    let (public, shares) = report.into_input_shares();
    let key = Seed::from_bytes([3; 32]);
    let (_, v) = cl
        .prepare_init(0, &key, &[1; 32], &[2; 16], &public, &shares[0])
        .unwrap();
    let bytes = v.to_bytes();
    assert_eq!(bytes.len(), cl.verifier_share_len());
    assert_eq!(cl.decode_verifier_share(&bytes).unwrap(), v);

    // Truncated, extended and non-canonical encodings are refused.
    assert!(cl.decode_leader_share(&leader[..leader.len() - 1]).is_err());
    let mut longer = leader.clone();
    longer.push(0);
    assert!(cl.decode_leader_share(&longer).is_err());
    let mut non_canonical = leader.clone();
    let field_start = 32 + 5 * bits as usize / 8;
    non_canonical[field_start..field_start + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(cl.decode_leader_share(&non_canonical).is_err());
    assert!(cl.decode_public_share(&public.to_bytes()[1..]).is_err());
    assert!(cl.decode_verifier_share(&bytes[..bytes.len() - 8]).is_err());
}

#[test]
fn wrong_share_kind_or_index_is_an_error_not_a_panic() {
    let cl = lift();
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let report = cl.shard(&[1; 32], &[2; 16], &[0; 5], &mut rng).unwrap();
    let (public, shares) = report.into_input_shares();
    let key = Seed::from_bytes([3; 32]);
    let leader: &InputShare = &shares[0];
    assert!(
        cl.prepare_init(1, &key, &[1; 32], &[2; 16], &public, leader)
            .is_err()
    );
    assert!(
        cl.prepare_init(0, &key, &[1; 32], &[2; 16], &public, &shares[1])
            .is_err()
    );
    assert!(
        cl.prepare_init(3, &key, &[1; 32], &[2; 16], &public, &shares[1])
            .is_err()
    );
    let (state, _) = cl
        .prepare_init(1, &key, &[1; 32], &[2; 16], &public, &shares[1])
        .unwrap();
    assert!(cl.decide(&state, &[]).is_err());
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let cl = lift();
        let _ = cl.decode_public_share(&bytes);
        let _ = cl.decode_leader_share(&bytes);
        let _ = cl.decode_helper_share(&bytes);
        let _ = cl.decode_verifier_share(&bytes);
        let np = NoProof::new(NoProofParams {
            dimension: 5,
            num_aggregators: 2,
            bits: 16,
            max_clients: 10,
            max_abs: 100,
        })
        .unwrap();
        let _ = np.decode_leader_share(&bytes);
        let _ = np.decode_helper_share(&bytes);
    }

    #[test]
    fn decoding_right_length_garbage_never_panics(seed in any::<u64>()) {
        // Random bytes of exactly the expected lengths reach the field-element checks.
        let cl = lift();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut bytes = vec![0u8; cl.leader_share_len()];
        rand_core::Rng::fill_bytes(&mut rng, &mut bytes);
        let _ = cl.decode_leader_share(&bytes);
        let mut bytes = vec![0u8; cl.verifier_share_len()];
        rand_core::Rng::fill_bytes(&mut rng, &mut bytes);
        let _ = cl.decode_verifier_share(&bytes);
    }
}
