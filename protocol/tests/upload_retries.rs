//! A client whose acknowledgement was lost sends the same report again, perhaps after
//! the round closed or expired. The report is stored and will be counted: the retry
//! must be acknowledged, or the client takes a counted report for a refused one (and
//! may submit the same data again elsewhere). Anything else for that round is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use cairn_mpc::secret::Seed;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{aggregate_in_process, collect_in_process};
use cairn_protocol::helper::Helper;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message, UploadRequest};
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: usize = 4;
const NOW: Time = Time(1_000);
const DURATION: u64 = 60;

struct World {
    task: TaskConfig,
    leader: Leader<MemoryStore>,
    helper: Helper<MemoryStore>,
    collector: Collector,
    rng: ChaCha20Rng,
}

fn world() -> World {
    let header = format!(
        "name = \"retries\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\nclip_norm = 1.0\n\
         proof = \"carry-lift\"\nmin_clients = 1\nmax_clients = 100\n\
         round_duration_secs = {DURATION}\n"
    );
    let mut rng = ChaCha20Rng::from_seed([31; 32]);
    let (text, collector_sk, helper_sk) =
        support::two_aggregator_task(&mut rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&text).unwrap();
    World {
        leader: Leader::new(task.clone(), Seed::from_bytes([4; 32]), MemoryStore::new()).unwrap(),
        helper: Helper::new(
            task.clone(),
            1,
            Seed::from_bytes([4; 32]),
            helper_sk,
            MemoryStore::new(),
        )
        .unwrap(),
        collector: Collector::new(task.clone(), collector_sk).unwrap(),
        task,
        rng,
    }
}

impl World {
    /// A fresh client's upload for `round`, its frame kept to be sent again.
    fn upload(&mut self, round: u32) -> Vec<u8> {
        self.uploads(round, 1).remove(0)
    }

    /// `n` uploads of one fresh client for `round`.
    fn uploads(&mut self, round: u32, n: usize) -> Vec<Vec<u8>> {
        let cred = support::register_client(
            &self.task,
            self.leader.store(),
            self.helper.store(),
            &mut self.rng,
        );
        let client = Client::new(self.task.clone(), cred).unwrap();
        (0..n)
            .map(|_| {
                let req = client
                    .prepare_upload_quantised(round, &[1, 0, 0, 0], &mut self.rng)
                    .unwrap();
                Message::UploadRequest(req).encode()
            })
            .collect()
    }

    fn request(&self, frame: &[u8]) -> UploadRequest {
        match Message::decode(frame, &self.leader.limits()).unwrap() {
            Message::UploadRequest(req) => req,
            other => panic!("an upload: {other:?}"),
        }
    }

    fn send(&mut self, frame: &[u8], now: Time) -> Result<(), ErrorCode> {
        let req = self.request(frame);
        let id = req.report.report_id;
        match self.leader.handle_upload(req, now) {
            Ok(ack) => {
                assert_eq!(ack.report_id, id);
                Ok(())
            }
            Err(e) => Err(e.code),
        }
    }
}

#[test]
fn a_stored_report_sent_again_after_its_round_closed_is_acknowledged_again() {
    let mut w = world();
    let frame = w.upload(0);
    w.send(&frame, NOW).unwrap(); // stored; the acknowledgement is lost
    aggregate_in_process(
        &mut w.leader,
        std::slice::from_mut(&mut w.helper),
        0,
        NOW,
        &mut w.rng,
    )
    .unwrap();
    let response = collect_in_process(
        &mut w.leader,
        std::slice::from_mut(&mut w.helper),
        w.collector.request(0),
        NOW,
        &mut w.rng,
    )
    .unwrap();
    assert_eq!(w.collector.open(0, &response).unwrap().count, 1);

    // The retry, after the release: the same report, counted once, acknowledged.
    assert_eq!(w.send(&frame, NOW), Ok(()));
    // Another client's report for the released round is refused.
    let late = w.upload(0);
    assert_eq!(w.send(&late, NOW), Err(ErrorCode::RoundClosed));
    // And the retry changed nothing: still one report in the round.
    assert_eq!(w.leader.store().round(0).unwrap().unwrap().count, 1);
}

#[test]
fn a_stored_report_sent_again_after_its_round_expired_is_acknowledged_again() {
    let mut w = world();
    let frame = w.upload(0);
    w.send(&frame, NOW).unwrap(); // stored; the acknowledgement is lost
    let expired = Time(NOW.0 + DURATION);
    assert_eq!(w.send(&frame, expired), Ok(()));
    let late = w.upload(0);
    assert_eq!(w.send(&late, expired), Err(ErrorCode::RoundClosed));
    // A report with the stored id but another leader share (the client's tag does
    // not cover it) is not a retry: refused.
    let mut other = w.request(&frame);
    other.report.leader_share.expose_secret_mut()[0] ^= 1;
    w.leader.handle_upload(other, expired).unwrap_err();
    assert_eq!(w.leader.store().queued_reports(0, 10).unwrap().len(), 1);
}

/// A batch of uploads (what a node stores in one step, [`Leader::handle_upload_frames`])
/// is answered upload by upload, as if they came one after the other: a retry within
/// the batch is acknowledged, a replay of its id and a client's second report are
/// refused, a frame that does not decode is refused alone, and what is stored is
/// counted once.
#[test]
fn a_batch_of_uploads_is_answered_as_if_they_came_in_turn() {
    let mut w = world();
    let first = w.upload(0);
    let [second, again]: [Vec<u8>; 2] = w.uploads(0, 2).try_into().unwrap();
    let mut replay = w.request(&first);
    replay.report.leader_share.expose_secret_mut()[0] ^= 1;
    let replay = Message::UploadRequest(replay).encode();
    let garbage = vec![0u8; 7];
    let frames: Vec<&[u8]> = vec![&first, &first, &replay, &garbage, &second, &again];
    let answers = w.leader.handle_upload_frames(&frames, NOW);
    let codes: Vec<Option<ErrorCode>> = answers
        .iter()
        .map(|a| a.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(codes[0], None);
    assert_eq!(codes[1], None, "a retry within the batch");
    assert_eq!(codes[2], Some(ErrorCode::Replay));
    assert!(codes[3].is_some(), "a frame that does not decode");
    assert_eq!(codes[4], None);
    assert_eq!(
        codes[5],
        Some(ErrorCode::AlreadySubmitted),
        "the second client's other report for the round"
    );
    assert_eq!(
        answers[0].as_ref().unwrap().report_id,
        w.request(&first).report.report_id
    );
    assert_eq!(w.leader.store().queued_reports(0, 10).unwrap().len(), 2);
    // The same frames one at a time, on top: every stored one is a retry now.
    for (frame, code) in frames.iter().zip(&codes) {
        let alone = w
            .leader
            .handle_upload_frame(frame, NOW)
            .err()
            .map(|e| e.code);
        assert_eq!(&alone, code);
    }
    assert_eq!(w.leader.store().queued_reports(0, 10).unwrap().len(), 2);
    assert!(w.leader.handle_upload_frames(&[], NOW).is_empty());
}
