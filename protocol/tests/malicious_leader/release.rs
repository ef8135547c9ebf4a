//! A dishonest leader at release time: rewritten figures, rolled-back ledgers,
//! repeated collects.

use super::*;

/// Runs the honest job to its commit and returns the helper's aggregate-share request
/// inputs (count, digest) for round 0.
fn aggregated_round(s: &mut Setup) {
    let (_, init) = s.honest_job();
    let resp = s.helper.handle_job_init(&init, NOW).unwrap();
    let (cont, _) = s.leader.decide_job(init.job_id, &[resp]).unwrap();
    let ack = s.helper.handle_job_continue(&cont).unwrap();
    s.leader.commit_job(init.job_id, &[ack]).unwrap();
}

fn collector_of(s: &Setup) -> cairn_protocol::collector::Collector {
    // The test task's collector key was generated first from the setup seed.
    let mut rng = ChaCha20Rng::from_seed([77; 32]);
    let (collector_sk, _) = generate_keypair(&mut rng);
    cairn_protocol::collector::Collector::new(s.task.clone(), collector_sk).unwrap()
}

/// The leader's first step of collecting round 0: the request for the helper and the
/// leader's own released share.
fn begin_collect(
    s: &mut Setup,
    collector: &cairn_protocol::collector::Collector,
) -> (
    cairn_protocol::messages::AggregateShareRequest,
    cairn_protocol::messages::AggregateShare,
) {
    match s
        .leader
        .begin_collect(&collector.request(0), NOW, &mut s.rng)
        .unwrap()
    {
        cairn_protocol::leader::CollectStep::AskHelpers {
            request,
            leader_share,
        } => (request, leader_share),
        cairn_protocol::leader::CollectStep::Done(_) => {
            panic!("the round was collected before")
        }
    }
}

/// Collects round 0 honestly: the leader asks the helper and assembles the answer.
fn collect_honestly(
    s: &mut Setup,
    collector: &cairn_protocol::collector::Collector,
) -> cairn_protocol::messages::CollectResponse {
    let (request, leader_share) = begin_collect(s, collector);
    let helper_share = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
    s.leader
        .finish_collect(&request, leader_share, vec![helper_share])
        .unwrap()
}

#[test]
fn a_leader_cannot_rewrite_a_helpers_count_or_budget_receipt() {
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let honest = collect_honestly(&mut s, &collector);
    assert_eq!(collector.open(0, &honest).unwrap().count, 1);

    // The leader rewrites the helper's figures on the way (and its own to match).
    let mut forged = honest.clone();
    forged.shares[1].receipt.epsilon_remaining = 1e9;
    assert!(matches!(
        collector.open(0, &forged),
        Err(cairn_protocol::collector::CollectorError::OpenFailed(1))
    ));
    let mut forged = honest.clone();
    forged.report_count = 7;
    for share in &mut forged.shares {
        share.report_count = 7;
    }
    assert!(matches!(
        collector.open(0, &forged),
        Err(cairn_protocol::collector::CollectorError::OpenFailed(0))
    ));
    let mut forged = honest;
    forged.shares[1].ledger.entries = 0;
    assert!(collector.open(0, &forged).is_err());
}

#[test]
fn a_helper_whose_ledger_is_behind_its_leaders_refuses_to_release() {
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let (mut request, _) = begin_collect(&mut s, &collector);
    // As if the helper's ledger had been restored from an old copy: the leader records
    // two more releases than the helper would after this one.
    let honest_head = request.leader_ledger;
    request.leader_ledger.entries += 2;
    request.leader_ledger.rho_total += 1.0;
    let err = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerBehind, "{}", err.detail);
    assert_eq!(s.helper.store().ledger().unwrap().len(), 0, "nothing spent");
    // With the leader's true head, the release goes through.
    request.leader_ledger = honest_head;
    s.helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
}

#[test]
fn a_leader_refuses_to_forward_when_a_helper_records_more_than_it_does() {
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let (request, leader_share) = begin_collect(&mut s, &collector);
    let helper_share = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
    let mut ahead = helper_share.clone();
    ahead.helper_ledger.entries += 3;
    let err = s
        .leader
        .finish_collect(&request, leader_share.clone(), vec![ahead])
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerRollback);
    // A helper saying it had released the round before, when the leader had not.
    let mut disagree = helper_share;
    disagree.released_before = true;
    let err = s
        .leader
        .finish_collect(&request, leader_share, vec![disagree])
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerRollback);
}

#[test]
fn rounds_far_ahead_of_the_known_ones_are_refused_before_anything_is_stored() {
    let mut s = setup();
    aggregated_round(&mut s); // round 0 exists at both aggregators
    let cred = s.register();
    let client = Client::new(s.task.clone(), cred).unwrap();
    let far = cairn_protocol::aggregator::ROUND_WINDOW + 1;
    let req = client
        .prepare_upload_quantised(far, &[1; DIM], &mut s.rng)
        .unwrap();
    let err = s.leader.handle_upload(req, NOW).unwrap_err();
    assert_eq!(err.code, ErrorCode::RoundClosed, "{}", err.detail);
    assert!(
        s.leader.store().round(far).unwrap().is_none(),
        "nothing written"
    );
    // The window's last round is still taken.
    let edge = client
        .prepare_upload_quantised(far - 1, &[1; DIM], &mut s.rng)
        .unwrap();
    s.leader.handle_upload(edge, NOW).unwrap();
    // The helper likewise, for a job the leader should not have sent.
    let (_, mut init) = {
        let cred = s.register();
        let client = Client::new(s.task.clone(), cred).unwrap();
        let req = client
            .prepare_upload_quantised(1, &[1; DIM], &mut s.rng)
            .unwrap();
        s.leader.handle_upload(req, NOW).unwrap();
        let (id, mut inits) = s.leader.start_job(1, &mut s.rng).unwrap().unwrap();
        (id, inits.remove(0))
    };
    init.round = u32::MAX;
    assert_eq!(
        s.helper.handle_job_init(&init, NOW).unwrap_err().code,
        ErrorCode::RoundClosed
    );
    assert!(s.helper.store().round(u32::MAX).unwrap().is_none());
    // An empty job is refused outright.
    init.reports.clear();
    init.round = 1;
    assert_eq!(
        s.helper.handle_job_init(&init, NOW).unwrap_err().code,
        ErrorCode::BadMessage
    );
}

#[test]
fn the_helper_holds_a_bounded_number_of_prepared_jobs() {
    let mut s = setup();
    let (_, init) = s.honest_job();
    for k in 0..(cairn_protocol::helper::MAX_OPEN_JOBS + 10) {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(k as u64).to_le_bytes());
        let mut job = init.clone();
        job.job_id = JobId(id);
        // Each job holds one report the helper cannot open: cheap, and still a job.
        job.reports[0].sealed_share.payload[0] ^= 1;
        s.helper.handle_job_init(&job, NOW).unwrap();
    }
    assert_eq!(s.helper.open_jobs(), cairn_protocol::helper::MAX_OPEN_JOBS);
}

#[test]
fn replaying_a_committed_job_does_not_change_which_prepared_job_is_dropped_first() {
    let mut s = setup();
    let (id, init) = s.honest_job();
    let task_id = s.task.id();
    let cont = |job: &JobInit, accepted: Vec<ReportId>| JobContinue {
        task_id,
        job_id: job.job_id,
        round: job.round,
        accepted,
    };
    // Job J, prepared and committed; then its init and continue resent as they were.
    for _ in 0..3 {
        s.helper.handle_job_init(&init, NOW).unwrap();
        s.helper
            .handle_job_continue(&cont(&init, vec![id]))
            .unwrap();
    }
    // A cheap job A; J prepared once more; cheap jobs up to one past the cap.
    let cheap = |k: u64| {
        let mut job = init.clone();
        let mut jid = [0xa0; 16];
        jid[..8].copy_from_slice(&k.to_le_bytes());
        job.job_id = JobId(jid);
        job.reports[0].sealed_share.payload[0] ^= 1;
        job
    };
    s.helper.handle_job_init(&cheap(0), NOW).unwrap();
    s.helper.handle_job_init(&init, NOW).unwrap();
    for k in 1..cairn_protocol::helper::MAX_OPEN_JOBS as u64 {
        s.helper.handle_job_init(&cheap(k), NOW).unwrap();
    }
    assert_eq!(s.helper.open_jobs(), cairn_protocol::helper::MAX_OPEN_JOBS);
    // The oldest, A, was dropped (its continue asks for a resend); the later ones stay.
    let err = s
        .helper
        .handle_job_continue(&cont(&cheap(0), vec![]))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownJob, "{err:?}");
    s.helper
        .handle_job_continue(&cont(&cheap(1), vec![]))
        .unwrap();
}

#[test]
fn a_repeated_collect_is_answered_from_storage_and_never_asks_a_helper_again() {
    // Once the collector has every share of a round, the leader answers a repeated
    // collect from its store: no helper is asked again, so even a helper restored from
    // an old copy (which would draw fresh noise) is never asked for the round twice.
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let first = collect_honestly(&mut s, &collector);
    match s
        .leader
        .begin_collect(&collector.request(0), NOW, &mut s.rng)
        .unwrap()
    {
        cairn_protocol::leader::CollectStep::Done(again) => assert_eq!(again, first),
        other => panic!("a collected round must be answered from storage: {other:?}"),
    }
}

#[test]
fn a_helper_that_was_down_when_the_leader_released_catches_up() {
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    // The leader releases its share; the helper is down and never gets the request.
    let (request, _) = begin_collect(&mut s, &collector);
    assert!(!request.leader_released_before);
    // The collector retries: the leader's share is the stored one, the helper (which
    // never released the round) releases now, and the round completes once.
    let (request, leader_share) = begin_collect(&mut s, &collector);
    assert!(request.leader_released_before);
    let helper_share = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
    assert!(!helper_share.released_before);
    let resp = s
        .leader
        .finish_collect(&request, leader_share, vec![helper_share])
        .unwrap();
    assert_eq!(collector.open(0, &resp).unwrap().count, 1);
    assert_eq!(s.helper.store().ledger().unwrap().len(), 1);
}

#[test]
fn a_helper_refuses_a_leader_that_has_forgotten_a_release() {
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let (mut request, _) = begin_collect(&mut s, &collector);
    s.helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
    // The same request again (its answer was lost): answered as the same exchange.
    let resent = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
    assert!(!resent.released_before);
    // A leader restored from an old copy releases round 0 afresh: a new ledger entry
    // (another head) and no earlier release. The helper, which released the round
    // before, refuses to hand out its share again.
    let honest_head = request.leader_ledger;
    request.leader_ledger.hash = [0x77; 32];
    let err = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerRollback, "{}", err.detail);
    // On the retry that leader has its fresh release stored and says "released
    // before", still under its new head: refused too (its fresh share, beside this
    // helper's stored one, would give the collector a second leader noise draw).
    request.leader_released_before = true;
    let err = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LedgerRollback, "{}", err.detail);
    assert_eq!(s.helper.store().ledger().unwrap().len(), 1, "released once");
    // A retry under the head the helper answered (another leader replica, or the
    // same leader after a lost answer) is answered as before.
    request.leader_ledger = honest_head;
    let again = s
        .helper
        .handle_aggregate_share_request(&request, NOW, &mut s.rng)
        .unwrap();
    assert!(again.released_before);
}

#[test]
fn a_batch_the_leader_refuses_entirely_is_settled_without_the_helpers() {
    // A report whose leader share was tampered with fails the leader's own checks; in a
    // batch of its own, nothing is left for the helpers (which refuse empty jobs), so
    // the leader settles the job itself instead of retrying it forever.
    let mut s = setup();
    let cred = s.register();
    let client = Client::new(s.task.clone(), cred).unwrap();
    let mut req = client
        .prepare_upload_quantised(0, &[1; DIM], &mut s.rng)
        .unwrap();
    // After the 64 two-byte words, the first field element of the share: all ones is
    // not a canonical element (≥ p), so the leader cannot even decode the share.
    let mut share = req.report.leader_share.expose_secret().to_vec();
    share[2 * DIM..2 * DIM + 8].fill(0xff);
    req.report.leader_share = cairn_mpc::secret::SecretVec::new(share);
    s.leader.handle_upload(req, NOW).unwrap();
    assert!(s.leader.start_job(0, &mut s.rng).unwrap().is_none());
    assert!(s.leader.store().open_jobs().unwrap().is_empty());
    assert!(s.leader.store().queued_reports(0, 10).unwrap().is_empty());
    // The round goes on: an honest report is aggregated and released alone.
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let resp = collect_honestly(&mut s, &collector);
    assert_eq!(collector.open(0, &resp).unwrap().count, 1);
}

/// The leader's honest request for round 0 after one aggregated report.
fn honest_request(s: &mut Setup) -> cairn_protocol::messages::AggregateShareRequest {
    cairn_protocol::messages::AggregateShareRequest {
        task_id: s.task.id(),
        round: 0,
        report_count: 1,
        report_set_digest: s.helper.store().report_set_digest(0).unwrap(),
        leader_ledger: cairn_protocol::ledger::LedgerHead {
            entries: 1,
            rho_total: 0.0,
            hash: [3; 32],
        },
        leader_released_before: false,
    }
}

#[test]
fn the_helper_holds_its_own_line_against_a_dishonest_leaders_release_requests() {
    // min_clients = 2 and one report: the helper refuses whatever the leader claims.
    let mut s = setup_with_min_clients(2);
    aggregated_round(&mut s);
    let req = honest_request(&mut s);
    let code = |s: &mut Setup, r: &cairn_protocol::messages::AggregateShareRequest| {
        s.helper
            .handle_aggregate_share_request(r, NOW, &mut s.rng)
            .unwrap_err()
            .code
    };
    assert_eq!(code(&mut s, &req), ErrorCode::NotEnoughReports);
    // A wrong count or digest: the aggregators would not add the same reports.
    let mut wrong = req.clone();
    wrong.report_count = 2;
    assert_eq!(code(&mut s, &wrong), ErrorCode::Mismatch);
    let mut wrong = req.clone();
    wrong.report_set_digest[0] ^= 1;
    assert_eq!(code(&mut s, &wrong), ErrorCode::Mismatch);
    assert!(
        s.helper.store().ledger().unwrap().is_empty(),
        "nothing spent"
    );
}

#[test]
fn the_helper_refuses_jobs_for_released_and_expired_rounds() {
    let mut s = setup();
    aggregated_round(&mut s);
    let req = honest_request(&mut s);
    s.helper
        .handle_aggregate_share_request(&req, NOW, &mut s.rng)
        .unwrap();
    // A job for the released round.
    let (_, init) = s.honest_job();
    assert_eq!(
        s.helper.handle_job_init(&init, NOW).unwrap_err().code,
        ErrorCode::RoundClosed
    );
    // A job for a round opened an hour ago (round_duration_secs = 3600), then expired.
    let cred = s.register();
    let client = Client::new(s.task.clone(), cred).unwrap();
    let req = client
        .prepare_upload_quantised(1, &[1; DIM], &mut s.rng)
        .unwrap();
    s.leader.handle_upload(req, NOW).unwrap();
    let (_, mut inits) = s.leader.start_job(1, &mut s.rng).unwrap().unwrap();
    let mut late = inits.remove(0);
    // The helper opens round 1 at NOW with a first (other) job...
    let first = late.clone();
    let mut first = first;
    first.job_id = JobId([0xaa; 16]);
    first.reports[0].sealed_share.payload[0] ^= 1; // cannot open: nothing recorded
    s.helper.handle_job_init(&first, NOW).unwrap();
    // ...and refuses a new job after the round's duration.
    late.job_id = JobId([0xbb; 16]);
    assert_eq!(
        s.helper
            .handle_job_init(&late, NOW.plus_secs(3600))
            .unwrap_err()
            .code,
        ErrorCode::RoundClosed
    );
}

#[test]
fn the_collector_refuses_shares_swapped_reordered_or_missing() {
    let mut s = setup();
    aggregated_round(&mut s);
    let collector = collector_of(&s);
    let honest = collect_honestly(&mut s, &collector);
    assert!(collector.open(0, &honest).is_ok());
    use cairn_protocol::collector::CollectorError;
    // Opened as another round: the AAD binds the round.
    let mut other_round = honest.clone();
    other_round.round = 1;
    assert!(matches!(
        collector.open(1, &other_round),
        Err(CollectorError::OpenFailed(0))
    ));
    // The shares swapped between aggregator indices (the labels follow the order).
    let mut swapped = honest.clone();
    swapped.shares.swap(0, 1);
    swapped.shares[0].aggregator_index = 0;
    swapped.shares[1].aggregator_index = 1;
    assert!(matches!(
        collector.open(0, &swapped),
        Err(CollectorError::OpenFailed(_))
    ));
    // Out of order, labels kept: refused as inconsistent.
    let mut reordered = honest.clone();
    reordered.shares.swap(0, 1);
    assert!(matches!(
        collector.open(0, &reordered),
        Err(CollectorError::Inconsistent(_))
    ));
    // One share dropped.
    let mut missing = honest;
    missing.shares.pop();
    assert!(matches!(
        collector.open(0, &missing),
        Err(CollectorError::Inconsistent(_))
    ));
}
