//! The task id: a hash of the parameters every party must agree on.

use super::*;

/// SHA-256 over a canonical, unambiguous encoding (fixed-width integers, floats as
/// IEEE-754 bits, length-prefixed strings) of the parameters the id covers.
pub(super) fn canonical_id(raw: &RawTask, norm_bound: u64, fingerprints: &[[u8; 32]]) -> TaskId {
    let mut h = Sha256::new();
    h.update(b"cairn/1 task id");
    let put_str = |h: &mut Sha256, s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    let put_opt_f64 = |h: &mut Sha256, v: Option<f64>| match v {
        Some(v) => {
            h.update([1]);
            h.update(v.to_bits().to_le_bytes());
        }
        None => h.update([0]),
    };
    put_str(&mut h, &raw.name);
    h.update(raw.dimension.to_le_bytes());
    h.update([raw.bits, raw.frac_bits]);
    h.update(raw.clip_norm.to_bits().to_le_bytes());
    h.update(norm_bound.to_le_bytes());
    // One byte for the proof and its hash; SHA-256 keeps the byte the carry-lift
    // proof had before the hash was a choice, so those tasks keep their ids.
    h.update([match (raw.proof, raw.joint_rand_hash) {
        (ProofMode::None, _) => 0,
        (ProofMode::CarryLift, None | Some(JointRandHash::Sha256)) => 1,
        (ProofMode::CarryLift, Some(JointRandHash::Blake3)) => 2,
    }]);
    h.update(raw.min_clients.to_le_bytes());
    h.update(raw.max_clients.to_le_bytes());
    h.update([match raw.privacy.noise {
        NoisePlacement::None => 0,
        NoisePlacement::Aggregator => 1,
        NoisePlacement::Client => 2,
        NoisePlacement::Both => 3,
    }]);
    put_opt_f64(&mut h, raw.privacy.sigma);
    put_opt_f64(&mut h, raw.privacy.epsilon);
    put_opt_f64(&mut h, raw.privacy.delta);
    match raw.privacy.min_honest_clients {
        Some(k) => {
            h.update([1]);
            h.update(k.to_le_bytes());
        }
        None => h.update([0]),
    }
    // The unit of privacy and its sampling are part of the task: changing them makes
    // another task (and another ledger), never a silent change of an existing one.
    h.update([match raw.privacy.unit {
        PrivacyUnit::Client => 0,
        PrivacyUnit::Record => 1,
    }]);
    put_opt_f64(&mut h, raw.privacy.sampling_rate);
    match raw.privacy.max_records_per_report {
        Some(m) => {
            h.update([1]);
            h.update(m.to_le_bytes());
        }
        None => h.update([0]),
    }
    // Each aggregator's role and pinned certificate, but not its HPKE key: that key
    // rotates (see `crate::keyring`), and a rotation must keep the task, its
    // credentials and its ledger. The key reaches clients by the same authentic
    // channel as the rest of this file.
    h.update((fingerprints.len() as u64).to_le_bytes());
    for (i, fp) in fingerprints.iter().enumerate() {
        h.update([u8::from(i == 0)]);
        h.update(fp);
    }
    let mut collector = [0u8; 32];
    if let Ok(k) = HpkePublicKey::from_hex(&raw.collector.hpke_public_key) {
        collector = *k.as_bytes();
    }
    h.update(collector);
    TaskId(h.finalize().into())
}
