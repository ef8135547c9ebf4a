//! Every kind of bad report, each with the error it must meet.

use cairn_protocol::auth::{Credential, TagContext};
use cairn_protocol::client::Client;
use cairn_protocol::messages::{ErrorCode, Message};
use rand_chacha::ChaCha20Rng;

use super::world::*;

/// Builds the bad reports: (name, frame, expected code, refused already at upload).
pub(crate) fn malicious_frames(
    w: &mut World,
    honest_client: &Client,
    round: u32,
    rng: &mut ChaCha20Rng,
    honest_frame: &[u8],
) -> Vec<(&'static str, Vec<u8>, ErrorCode, bool)> {
    let limits = w.limits;
    let task_id = w.task.id();
    // Each bad report comes from a client of its own (one report per client per round).
    let fresh = |w: &mut World, rng: &mut ChaCha20Rng| {
        w.client()
            .prepare_upload_quantised(round, &honest_vector(rng), rng)
            .unwrap()
    };
    let mut out = Vec::new();

    out.push((
        "malformed bytes",
        vec![1, 1, 0xde, 0xad],
        ErrorCode::BadMessage,
        true,
    ));

    let mut r = fresh(w, rng);
    r.task_id.0[0] ^= 1;
    out.push((
        "wrong task id",
        Message::UploadRequest(r).encode(),
        ErrorCode::UnknownTask,
        true,
    ));

    let unregistered = Client::new(w.task.clone(), Credential::generate(task_id, rng)).unwrap();
    let r = unregistered
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    out.push((
        "unregistered client",
        Message::UploadRequest(r).encode(),
        ErrorCode::Unauthorized,
        true,
    ));

    let mut r = fresh(w, rng);
    r.report.leader_tag[0] ^= 1;
    out.push((
        "wrong leader tag",
        Message::UploadRequest(r).encode(),
        ErrorCode::Unauthorized,
        true,
    ));

    // The honest client again, with another report for the same round.
    let r = honest_client
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    out.push((
        "second report of one client",
        Message::UploadRequest(r).encode(),
        ErrorCode::AlreadySubmitted,
        true,
    ));

    let mut r = fresh(w, rng);
    let mut longer = r.report.leader_share.expose_secret().to_vec();
    longer.push(0);
    r.report.leader_share = cairn_mpc::secret::SecretVec::new(longer);
    out.push((
        "oversize report",
        Message::UploadRequest(r).encode(),
        ErrorCode::WrongSize,
        true,
    ));

    let mut r = fresh(w, rng);
    let mut shorter = r.report.leader_share.expose_secret().to_vec();
    shorter.pop();
    r.report.leader_share = cairn_mpc::secret::SecretVec::new(shorter);
    out.push((
        "undersize report",
        Message::UploadRequest(r).encode(),
        ErrorCode::WrongSize,
        true,
    ));

    // A replay: an honest report's id with another (registered, correctly tagging)
    // client's content.
    let Message::UploadRequest(honest) = Message::decode(honest_frame, &limits).unwrap() else {
        unreachable!()
    };
    let cred = w.credential();
    let thief = Client::new(
        w.task.clone(),
        Credential::from_toml(&cred.dangerous_to_toml()).unwrap(),
    )
    .unwrap();
    let mut r = thief
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    r.report.report_id = honest.report.report_id;
    r.report.leader_tag = cred.key_for(0).tag(&TagContext {
        task_id: &task_id,
        client_id: &r.report.client_id,
        round,
        report_id: &r.report.report_id,
        public_share: &r.report.public_share,
        aggregator: 0,
    });
    out.push((
        "replayed id",
        Message::UploadRequest(r).encode(),
        ErrorCode::Replay,
        true,
    ));

    // Tampered leader share (changes x'_0 after the proof was made).
    let mut r = fresh(w, rng);
    let mut share = r.report.leader_share.expose_secret().to_vec();
    share[40] ^= 0x10;
    r.report.leader_share = cairn_mpc::secret::SecretVec::new(share);
    out.push((
        "tampered leader share",
        Message::UploadRequest(r).encode(),
        ErrorCode::ProofFailed,
        false,
    ));

    // Tampered helper ciphertext: the helper cannot open it.
    let mut r = fresh(w, rng);
    r.report.helper_shares[0].payload[3] ^= 1;
    out.push((
        "tampered helper share",
        Message::UploadRequest(r).encode(),
        ErrorCode::DecryptFailed,
        false,
    ));

    // A public share altered on the way: the leader's tag no longer verifies.
    let mut r = fresh(w, rng);
    r.report.public_share[0] ^= 1;
    out.push((
        "altered public share",
        Message::UploadRequest(r).encode(),
        ErrorCode::Unauthorized,
        true,
    ));

    // A malicious client forging its joint-randomness claim after sealing: it can
    // re-tag for the leader, but its joint randomness no longer matches its shares,
    // so the proof fails (and the helper's share, bound to the public share it was
    // sealed with, would not open either).
    let cred = w.credential();
    let client = Client::new(
        w.task.clone(),
        Credential::from_toml(&cred.dangerous_to_toml()).unwrap(),
    )
    .unwrap();
    let mut r = client
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    r.report.public_share[0] ^= 1;
    r.report.leader_tag = cred.key_for(0).tag(&TagContext {
        task_id: &task_id,
        client_id: &r.report.client_id,
        round,
        report_id: &r.report.report_id,
        public_share: &r.report.public_share,
        aggregator: 0,
    });
    out.push((
        "forged joint randomness",
        Message::UploadRequest(r).encode(),
        ErrorCode::ProofFailed,
        false,
    ));

    // A report sealed for another report id (cut and pasted): the helper cannot open it.
    let mut r = fresh(w, rng);
    let other = fresh(w, rng);
    r.report.helper_shares = other.report.helper_shares;
    out.push((
        "helper share from another report",
        Message::UploadRequest(r).encode(),
        ErrorCode::DecryptFailed,
        false,
    ));
    out
}
