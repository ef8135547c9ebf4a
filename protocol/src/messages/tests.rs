//! Codec tests of every message: round trips, truncation, limits, arbitrary bytes.

use cairn_mpc::codec::CodecError;
use cairn_mpc::secret::SecretVec;
use proptest::prelude::*;

use super::*;
use crate::auth::ClientId;
use crate::hpke::{HPKE_TAG_LEN, HpkeCiphertext};
use crate::ids::TaskId;
use crate::ids::{JobId, ReportId};
use crate::ledger::LedgerHead;

fn limits() -> Limits {
    Limits {
        public_share: 64,
        leader_share: 256,
        helper_share: 96,
        helpers: 2,
        reports_per_job: 8,
        verifier_share: 64,
        aggregate_share: 512,
    }
}

fn ct(len: usize, fill: u8) -> HpkeCiphertext {
    HpkeCiphertext {
        encapsulated_key: [fill; 32],
        payload: vec![fill; len],
    }
}

fn receipt() -> BudgetReceipt {
    BudgetReceipt {
        rho_spent: 0.125,
        rho_total: 0.25,
        epsilon_total: 1.5,
        epsilon_remaining: 2.5,
    }
}

fn head() -> LedgerHead {
    LedgerHead {
        entries: 2,
        rho_total: 0.25,
        hash: [6; 32],
    }
}

fn samples() -> Vec<Message> {
    let rid = ReportId([7; 16]);
    let share = AggregateShare {
        aggregator_index: 1,
        report_count: 3,
        receipt: receipt(),
        ledger: head(),
        sealed_share: ct(100, 4),
    };
    vec![
        Message::UploadRequest(UploadRequest {
            task_id: TaskId([1; 32]),
            report: Report {
                report_id: rid,
                round: 3,
                client_id: ClientId([9; 16]),
                leader_tag: [10; 32],
                public_share: vec![1, 2, 3],
                leader_share: SecretVec::new(vec![5; 200]),
                helper_shares: vec![ct(80, 1), ct(80, 2)],
            },
        }),
        Message::UploadResponse(UploadResponse { report_id: rid }),
        Message::JobInit(JobInit {
            task_id: TaskId([1; 32]),
            job_id: JobId([2; 16]),
            round: 3,
            reports: vec![ReportShare {
                report_id: rid,
                client_id: ClientId([9; 16]),
                public_share: vec![9; 10],
                sealed_share: ct(96, 3),
            }],
        }),
        Message::JobResponse(JobResponse {
            job_id: JobId([2; 16]),
            results: vec![
                PrepareResult::Verifier {
                    report_id: rid,
                    verifier_share: vec![1; 64],
                },
                PrepareResult::Rejected {
                    report_id: ReportId([8; 16]),
                    code: ErrorCode::DecryptFailed,
                },
            ],
        }),
        Message::JobContinue(JobContinue {
            task_id: TaskId([1; 32]),
            job_id: JobId([2; 16]),
            round: 3,
            accepted: vec![rid],
        }),
        Message::JobContinueResponse(JobContinueResponse {
            job_id: JobId([2; 16]),
            accepted_count: 1,
        }),
        Message::AggregateShareRequest(AggregateShareRequest {
            task_id: TaskId([1; 32]),
            round: 3,
            report_count: 10,
            report_set_digest: [5; 32],
            leader_ledger: head(),
            leader_released_before: true,
        }),
        Message::AggregateShareResponse(AggregateShareResponse {
            round: 3,
            share: share.clone(),
            helper_ledger: head(),
            released_before: false,
        }),
        Message::CollectRequest(CollectRequest {
            task_id: TaskId([1; 32]),
            round: 3,
        }),
        Message::CollectResponse(CollectResponse {
            round: 3,
            report_count: 3,
            shares: vec![share.clone(), share],
        }),
        Message::Error(ErrorMessage {
            code: ErrorCode::Busy,
            detail: "report seen before".into(),
            retry_after_ms: 1500,
        }),
    ]
}

#[test]
fn every_message_roundtrips() {
    for m in samples() {
        let bytes = m.encode();
        assert!(bytes.len() <= limits().max_frame_len(), "{}", m.name());
        let back = Message::decode(&bytes, &limits()).unwrap();
        assert_eq!(back.encode(), bytes, "{}", m.name());
        assert_eq!(back.name(), m.name());
    }
}

#[test]
fn truncations_and_trailing_bytes_are_rejected() {
    for m in samples() {
        let bytes = m.encode();
        for cut in 0..bytes.len() {
            assert!(
                Message::decode(&bytes[..cut], &limits()).is_err(),
                "{} cut at {cut}",
                m.name()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Message::decode(&longer, &limits()),
            Err(CodecError::TrailingBytes { remaining: 1 })
        ));
    }
}

#[test]
fn lengths_above_the_task_limits_are_refused() {
    let mut small = limits();
    small.leader_share = 100;
    let upload = &samples()[0];
    assert!(matches!(
        Message::decode(&upload.encode(), &small),
        Err(CodecError::LengthTooLarge { len: 200, max: 100 })
    ));
    let mut bad_version = upload.encode();
    bad_version[0] = 1;
    assert!(matches!(
        Message::decode(&bad_version, &limits()),
        Err(CodecError::InvalidValue { .. })
    ));
    let mut bad_type = upload.encode();
    bad_type[1] = 99;
    assert!(Message::decode(&bad_type, &limits()).is_err());
}

#[test]
fn a_huge_count_does_not_allocate() {
    // An upload claiming a 4 GiB public share fails on the limit, not on memory.
    let mut bytes = vec![WIRE_VERSION, 1];
    // task id, report id, round, client id, leader tag
    bytes.extend_from_slice(&[0; 32 + 16 + 4 + 16 + 32]);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Message::decode(&bytes, &limits()),
        Err(CodecError::LengthTooLarge { .. })
    ));
}

#[test]
fn each_party_reads_only_frames_its_peers_may_send() {
    let l = limits();
    let upload = samples()[0].encode();
    let job = samples()[2].encode();
    assert!(upload.len() <= l.max_inbound_frame_len(Inbound::LeaderFromClients));
    assert!(job.len() <= l.max_inbound_frame_len(Inbound::HelperFromLeader));
    // A full job is far larger than anything a client may send the leader.
    let full_job = l.reports_per_job
        * (16 + 16 + 4 + l.public_share + 32 + 4 + l.helper_plaintext() + HPKE_TAG_LEN);
    assert!(full_job <= l.max_inbound_frame_len(Inbound::HelperFromLeader));
    assert!(full_job > l.max_inbound_frame_len(Inbound::LeaderFromClients));
    // An acknowledgement or error is small whatever the task.
    assert_eq!(l.max_inbound_frame_len(Inbound::ClientFromLeader), 1024);
}

#[test]
fn error_detail_is_truncated_on_a_char_boundary() {
    let long = "é".repeat(400);
    let m = Message::Error(ErrorMessage::new(ErrorCode::Internal, long));
    match Message::decode(&m.encode(), &limits()).unwrap() {
        Message::Error(e) => {
            assert!(e.detail.len() <= MAX_ERROR_DETAIL && !e.detail.is_empty())
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // And whatever decodes is canonical: it re-encodes to the same bytes.
        if let Ok(m) = Message::decode(&bytes, &limits()) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn decoding_mutated_frames_never_panics(idx in 0usize..11, pos in any::<usize>(), val in any::<u8>()) {
        let mut bytes = samples()[idx].encode();
        let p = pos % bytes.len();
        bytes[p] = val;
        if let Ok(m) = Message::decode(&bytes, &limits()) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }
}

#[test]
fn a_report_knows_its_encoded_length() {
    for m in samples() {
        if let Message::UploadRequest(req) = m {
            let mut bytes = Vec::new();
            encode_report(&req.report, &mut bytes);
            assert_eq!(req.report.encoded_len(), bytes.len());
            // The buffer was sized once, at the start.
            assert_eq!(bytes.capacity(), bytes.len());
        }
    }
}

#[test]
fn an_upload_view_reads_what_the_owned_decoding_reads_and_spans_the_report() {
    let Message::UploadRequest(req) = &samples()[0] else {
        panic!("the first sample is an upload");
    };
    let frame = Message::UploadRequest(UploadRequest {
        task_id: req.task_id,
        report: decode_report(
            &mut cairn_mpc::codec::Reader::new(&report_bytes(req)),
            &limits(),
        )
        .unwrap(),
    })
    .encode();
    let view = UploadView::decode(&frame, &limits()).unwrap();
    assert_eq!(view.task_id, req.task_id);
    assert_eq!(view.report.report_id, req.report.report_id);
    assert_eq!(view.report.round, req.report.round);
    assert_eq!(view.report.client_id, req.report.client_id);
    assert_eq!(view.report.leader_tag, req.report.leader_tag);
    assert_eq!(view.report.public_share, &req.report.public_share[..]);
    assert_eq!(
        view.report.leader_share,
        req.report.leader_share.expose_secret()
    );
    assert_eq!(view.report.helper_shares, req.report.helper_shares);
    // What the leader stores is exactly what encoding the report gives.
    assert_eq!(view.report_bytes, &report_bytes(req)[..]);
    // Debug shows no byte of the leader's share (in any form the derive would print).
    let shown = format!("{view:?}");
    let share = req.report.leader_share.expose_secret();
    let as_list = |bytes: &[u8]| {
        bytes
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        !shown.contains(&as_list(&share[..8])),
        "the share is printed"
    );
    assert!(
        !shown.contains(&as_list(&view.report_bytes[..8])),
        "the report is printed"
    );
    assert!(shown.contains("report_bytes_len"));

    // Every truncation, trailing bytes and another message type are refused.
    for len in 0..frame.len() {
        assert!(
            UploadView::decode(&frame[..len], &limits()).is_err(),
            "{len}"
        );
    }
    let mut longer = frame.clone();
    longer.push(0);
    assert!(UploadView::decode(&longer, &limits()).is_err());
    let other = samples()[1].encode();
    assert!(UploadView::decode(&other, &limits()).is_err());
}

fn report_bytes(req: &UploadRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_report(&req.report, &mut bytes);
    bytes
}

proptest! {
    #[test]
    fn upload_views_of_mutated_frames_agree_with_the_owned_decoding(
        pos in any::<usize>(),
        val in any::<u8>(),
    ) {
        let mut bytes = samples()[0].encode();
        let p = pos % bytes.len();
        bytes[p] = val;
        let view = UploadView::decode(&bytes, &limits());
        match Message::decode(&bytes, &limits()) {
            Ok(Message::UploadRequest(req)) => {
                let view = view.expect("the view decodes what the owned decoding does");
                prop_assert_eq!(view.report_bytes, &report_bytes(&req)[..]);
            }
            _ => prop_assert!(view.is_err()),
        }
    }
}
