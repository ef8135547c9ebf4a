//! The ledger's part of the store contract: append-only, a release atomic with its
//! ledger entry, an entry accepted only if it extends the stored chain, and retention
//! that never touches what the ledger and anti-replay need.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// `commit_release` appends the entry, stores the release and marks the round released,
/// together; nothing can be added to a released round.
pub fn the_ledger_is_append_only_and_a_release_is_atomic<S: TaskStore>(task: TaskId, s: S) {
    let mut ledger = Ledger::new(task, 1.0).unwrap();
    assert!(s.ledger().unwrap().is_empty());
    for round in 0..2u32 {
        s.open_round(round, Time(1), DIMENSION).unwrap();
        s.commit_job(
            round,
            JobId([round as u8; 16]),
            &[rid(round as u8)],
            &agg([1, 2, 3]),
        )
        .unwrap();
        s.close_round(round).unwrap();
        let e = ledger.prepare_release(round, 0.25, 1, Time(2)).unwrap();
        s.commit_release(&e, &[round as u8; 4]).unwrap();
        ledger.commit(e).unwrap();
        assert_eq!(
            s.round(round).unwrap().expect("round").status,
            RoundStatus::Released
        );
        assert_eq!(
            s.release(round).unwrap().as_deref(),
            Some(&[round as u8; 4][..])
        );
    }
    let entries: Vec<LedgerEntry> = s.ledger().unwrap();
    assert_eq!(entries, ledger.entries(), "every entry, oldest first");
    assert_eq!(s.latest_released_round().unwrap(), Some(1));
    assert!(
        s.commit_job(0, JobId([7; 16]), &[rid(7)], &agg([9, 9, 9]))
            .is_err(),
        "a released round takes nothing more"
    );
    assert_eq!(s.round(0).unwrap().expect("round").count, 1);
    assert!(s.release(9).unwrap().is_none());
}

/// `commit_release` appends only an entry that extends the stored chain: two processes
/// that prepared entries on the same head (each from the ledger it read) append one,
/// and an entry with a gap, a foreign previous hash or an already released round
/// changes nothing.
pub fn a_release_must_extend_the_stored_chain<S: TaskStore>(task: TaskId, s: S) {
    for round in 0..4u32 {
        s.open_round(round, Time(1), DIMENSION).unwrap();
    }
    // Two replicas read the same (empty) ledger and prepare their releases.
    let replica_a = Ledger::new(task, 1.0).unwrap();
    let replica_b = Ledger::new(task, 1.0).unwrap();
    let a = replica_a.prepare_release(0, 0.25, 1, Time(2)).unwrap();
    let b = replica_b.prepare_release(1, 0.25, 1, Time(2)).unwrap();
    s.commit_release(&a, b"a").unwrap();
    assert!(
        s.commit_release(&b, b"b").is_err(),
        "an entry prepared on a stale head is refused"
    );
    assert_eq!(s.ledger().unwrap(), vec![a.clone()]);
    assert!(s.release(1).unwrap().is_none(), "nothing of it was stored");
    assert_ne!(
        s.round(1).unwrap().expect("round").status,
        RoundStatus::Released
    );
    // On the current head: accepted.
    let mut current = Ledger::from_entries(task, 1.0, s.ledger().unwrap()).unwrap();
    let next = current.prepare_release(1, 0.25, 1, Time(3)).unwrap();
    // A gap (seq + 1) and a foreign previous hash are refused.
    let mut gap = next.clone();
    gap.seq += 1;
    assert!(s.commit_release(&gap, b"gap").is_err());
    let mut foreign = next.clone();
    foreign.prev_hash = [7; 32];
    assert!(s.commit_release(&foreign, b"foreign").is_err());
    s.commit_release(&next, b"next").unwrap();
    current.commit(next).unwrap();
    // A second entry for a released round, even on the current head, is refused.
    let mut again = current.prepare_release(2, 0.25, 1, Time(4)).unwrap();
    again.round = 0;
    assert!(s.commit_release(&again, b"again").is_err());
    assert_eq!(s.ledger().unwrap().len(), 2);
}

/// `collect_garbage` removes the reports, uploads, jobs and preparation records of
/// released rounds up to the given one, and nothing that refusing a replay, answering a
/// repeated collect or accounting needs; open rounds are untouched.
pub fn retention_deletes_only_what_released_rounds_no_longer_need<S: TaskStore>(
    task: TaskId,
    s: S,
) {
    // Report 4 is queued in round 0 and never joins a job: collection removes it too.
    for b in 1..=4u8 {
        s.put_report(if b == 3 { 1 } else { 0 }, rid(b), cid(b), &[b; 8], 10)
            .unwrap();
    }
    s.open_round(0, Time(1), DIMENSION).unwrap();
    s.open_round(1, Time(1), DIMENSION).unwrap();
    let job = JobRecord {
        job_id: JobId([1; 16]),
        round: 0,
        reports: vec![rid(1), rid(2)],
        accepted: None,
    };
    s.create_job(&job).unwrap();
    s.commit_job(0, job.job_id, &[rid(1), rid(2)], &agg([1, 1, 1]))
        .unwrap();
    // A helper's preparation records in both rounds.
    s.record_prepared(JobId([5; 16]), &[5; 32], 0, &[(rid(5), cid(5))], 10)
        .unwrap();
    s.record_prepared(JobId([6; 16]), &[6; 32], 1, &[(rid(6), cid(6))], 10)
        .unwrap();
    s.close_round(0).unwrap();
    let ledger = Ledger::new(task, 1.0).unwrap();
    let e = ledger.prepare_release(0, 0.25, 2, Time(2)).unwrap();
    s.commit_release(&e, b"released").unwrap();
    // A leader's round released but not collected keeps everything: its helpers'
    // request still needs the report set.
    let digest = s.report_set_digest(0).unwrap();
    assert_eq!(s.collect_garbage(0, GarbageScope::Collected).unwrap(), 0);
    assert_eq!(s.report_set_digest(0).unwrap(), digest);
    assert_eq!(s.report(rid(4)).unwrap().as_deref(), Some(&[4u8; 8][..]));
    s.put_collect_response(0, b"answer").unwrap();

    assert!(s.collect_garbage(0, GarbageScope::Collected).unwrap() > 0);
    // Gone: what only aggregation of round 0 needed.
    assert!(s.report(rid(1)).unwrap().is_none());
    assert!(s.report(rid(4)).unwrap().is_none());
    assert!(s.prepared_job_digest(JobId([5; 16])).unwrap().is_none());
    assert!(s.open_jobs().unwrap().is_empty());
    // Kept: the round, its release, the collect answer, the ledger, replay protection.
    let round = s.round(0).unwrap().expect("the round is kept");
    assert_eq!((round.status, round.count), (RoundStatus::Released, 2));
    assert_eq!(s.release(0).unwrap().as_deref(), Some(&b"released"[..]));
    assert_eq!(
        s.collect_response(0).unwrap().as_deref(),
        Some(&b"answer"[..])
    );
    assert_eq!(s.ledger().unwrap(), vec![e]);
    assert_eq!(
        s.put_report(0, rid(1), cid(1), &[1; 8], 10).unwrap(),
        PutOutcome::Duplicate { identical: true },
        "a retried upload is still recognised"
    );
    assert_eq!(
        s.put_report(0, rid(1), cid(1), &[9; 8], 10).unwrap(),
        PutOutcome::Duplicate { identical: false },
        "a replayed id is still refused"
    );
    assert_eq!(
        s.put_report(0, rid(7), cid(7), &[7; 8], 10).unwrap(),
        PutOutcome::RoundClosed
    );
    // The open round is untouched.
    assert_eq!(s.queued_reports(1, 10).unwrap(), vec![rid(3)]);
    assert_eq!(s.report(rid(3)).unwrap().as_deref(), Some(&[3u8; 8][..]));
    assert_eq!(
        s.prepared_job_digest(JobId([6; 16])).unwrap(),
        Some([6; 32])
    );
    assert_eq!(
        s.collect_garbage(5, GarbageScope::Released).unwrap(),
        0,
        "nothing left to collect"
    );
}
