//! The contract every [`TaskStore`] must keep, as one suite any implementation runs.
//!
//! The in-memory store runs it in this crate's tests and the SQLite store in the
//! aggregator's; a new store (PostgreSQL) is done when it passes too. Each check gets a
//! fresh, empty store of one task (dimension 3), and the checks of durability get the
//! store back through `reopen` — for a durable store, the same database opened again as
//! after a crash (a store that lives in memory returns itself). Error types differ
//! between stores, so a refusal is checked by its effect: nothing changed.
//!
//! ```text
//! cairn_protocol::store::conformance::run_all(TASK, || fresh_store(), |s| reopen(s));
//! ```

// A test suite: a failed expectation is a failed test, reported with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_mpc::field::{Field64, FieldElement};

use super::{
    Admission, CommitOutcome, GarbageScope, JobAdmission, JobRecord, NewReport, PutOutcome,
    RoundStatus, TaskStore, report_set_digest,
};
use crate::auth::{ClientId, ClientKey};
use crate::clock::Time;
use crate::ids::TaskId;
use crate::ids::{JobId, ReportId};
use crate::ledger::{Ledger, LedgerEntry};
use crate::scheme::Aggregate;

mod ledger;
pub use ledger::{
    a_release_must_extend_the_stored_chain,
    retention_deletes_only_what_released_rounds_no_longer_need,
    the_ledger_is_append_only_and_a_release_is_atomic,
};

/// The dimension of the aggregates the suite stores.
pub const DIMENSION: usize = 3;

/// Runs every check. `fresh` makes an empty store of task `task` with aggregates of
/// [`DIMENSION`]; `reopen` gives the same store back as after a restart.
pub fn run_all<S: TaskStore>(
    task: TaskId,
    mut fresh: impl FnMut() -> S,
    mut reopen: impl FnMut(S) -> S,
) {
    clients_are_registered_once_and_revoked_for_good(fresh());
    uploads_are_idempotent_and_one_per_client_per_round(fresh());
    a_batch_of_uploads_is_answered_as_if_put_in_turn(fresh());
    a_job_leaves_the_queue_and_commits_exactly_once(fresh());
    a_job_is_leased_to_one_owner_until_the_lease_expires(fresh());
    a_commit_naming_a_report_twice_or_a_replay_changes_nothing(fresh());
    a_helper_admits_a_report_in_one_job_and_a_client_once_per_round(fresh());
    rounds_open_once_close_and_are_listed(fresh());
    the_ledger_is_append_only_and_a_release_is_atomic(task, fresh());
    a_release_must_extend_the_stored_chain(task, fresh());
    the_collect_answer_is_kept(fresh());
    retention_deletes_only_what_released_rounds_no_longer_need(task, fresh());
    everything_acknowledged_survives_a_restart(task, fresh(), &mut reopen);
}

fn rid(b: u8) -> ReportId {
    ReportId([b; 16])
}

fn cid(b: u8) -> ClientId {
    ClientId([b; 16])
}

fn agg(v: [u64; DIMENSION]) -> Aggregate {
    let mut bytes = Vec::new();
    for x in v {
        bytes.extend_from_slice(&Field64::from_u64(x).as_u64().to_le_bytes());
    }
    Aggregate::decode(&bytes, DIMENSION).expect("an aggregate of the suite's dimension")
}

/// Registration keeps the first key; revocation is permanent.
pub fn clients_are_registered_once_and_revoked_for_good<S: TaskStore>(s: S) {
    let id = cid(4);
    assert!(s.client(id).unwrap().is_none());
    assert!(s.add_client(id, &ClientKey::from_bytes([5; 32])).unwrap());
    assert!(!s.add_client(id, &ClientKey::from_bytes([6; 32])).unwrap());
    let rec = s.client(id).unwrap().expect("registered");
    assert_eq!(
        rec.key,
        ClientKey::from_bytes([5; 32]),
        "the first key is kept"
    );
    assert!(!rec.revoked);
    assert!(s.revoke_client(id).unwrap());
    assert!(s.client(id).unwrap().expect("still known").revoked);
    assert!(!s.add_client(id, &ClientKey::from_bytes([5; 32])).unwrap());
    assert!(
        s.client(id).unwrap().expect("known").revoked,
        "re-adding does not un-revoke"
    );
    assert!(!s.revoke_client(cid(9)).unwrap(), "an unknown client");
}

/// A retry is told from a replay; one report per client per round; round capacity.
pub fn uploads_are_idempotent_and_one_per_client_per_round<S: TaskStore>(s: S) {
    let id = rid(5);
    assert_eq!(
        s.put_report(0, id, cid(1), b"abc", 2).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        s.put_report(0, id, cid(1), b"abc", 2).unwrap(),
        PutOutcome::Duplicate { identical: true }
    );
    assert_eq!(
        s.put_report(1, id, cid(1), b"xyz", 2).unwrap(),
        PutOutcome::Duplicate { identical: false },
        "the same id with other bytes, in any round, is a replay"
    );
    assert_eq!(
        s.put_report(0, rid(6), cid(1), b"def", 2).unwrap(),
        PutOutcome::ClientAlreadySubmitted
    );
    assert_eq!(
        s.put_report(1, rid(7), cid(1), b"ghi", 2).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        s.put_report(0, rid(8), cid(2), b"jkl", 2).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        s.put_report(0, rid(9), cid(3), b"mno", 2).unwrap(),
        PutOutcome::RoundFull
    );
    assert_eq!(s.report(id).unwrap().as_deref(), Some(&b"abc"[..]));
    assert!(
        s.report(rid(6)).unwrap().is_none(),
        "a refused report is not stored"
    );
    // The read-only probe a leader makes for a retry the round no longer takes.
    assert_eq!(s.stored_report_matches(id, b"abc").unwrap(), Some(true));
    assert_eq!(s.stored_report_matches(id, b"abd").unwrap(), Some(false));
    assert_eq!(s.stored_report_matches(rid(6), b"def").unwrap(), None);
    assert_eq!(s.stored_report_matches(rid(0x55), b"").unwrap(), None);
    let mut queued = s.queued_reports(0, 10).unwrap();
    queued.sort();
    assert_eq!(queued, vec![id, rid(8)]);
    assert_eq!(
        s.queued_reports(0, 1).unwrap().len(),
        1,
        "the limit is kept"
    );
    assert_eq!(s.queued_rounds().unwrap(), vec![0, 1]);
}

/// A batch of uploads ([`TaskStore::put_reports`]) is answered as if its uploads were
/// put in turn: they refuse each other (one id twice, one client's second report, the
/// round's last place), and a report stored before the batch answers its retry and
/// its replay within it. Returns the store, for a store's own checks of what is left
/// (the file-backed SQLite store's files).
pub fn a_batch_of_uploads_is_answered_as_if_put_in_turn<S: TaskStore>(s: S) -> S {
    let up = |round, r, c, report: &'static [u8]| NewReport {
        round,
        report_id: rid(r),
        client_id: cid(c),
        report,
    };
    assert_eq!(
        s.put_report(0, rid(1), cid(1), b"one", 4).unwrap(),
        PutOutcome::Stored
    );
    let put = |batch: &[NewReport<'_>]| -> Vec<PutOutcome> {
        s.put_reports(batch, 4)
            .into_iter()
            .map(Result::unwrap)
            .collect()
    };
    assert!(put(&[]).is_empty(), "an empty batch");
    let batch = [
        up(0, 1, 1, b"one"),
        up(0, 1, 9, b"uno"),
        up(0, 2, 2, b"two"),
        up(0, 2, 2, b"two"),
        up(1, 2, 2, b"dos"),
        up(0, 3, 2, b"three"),
        up(0, 4, 4, b"four"),
        up(0, 5, 5, b"five"),
        up(0, 6, 6, b"six"),
        up(1, 7, 1, b"seven"),
    ];
    let same = PutOutcome::Duplicate { identical: true };
    let replay = PutOutcome::Duplicate { identical: false };
    assert_eq!(
        put(&batch),
        vec![
            same,
            replay,
            PutOutcome::Stored,
            same,
            replay,
            PutOutcome::ClientAlreadySubmitted,
            PutOutcome::Stored,
            PutOutcome::Stored,
            PutOutcome::RoundFull,
            PutOutcome::Stored,
        ]
    );
    for (r, bytes) in [
        (1, &b"one"[..]),
        (2, b"two"),
        (4, b"four"),
        (5, b"five"),
        (7, b"seven"),
    ] {
        assert_eq!(s.report(rid(r)).unwrap().as_deref(), Some(bytes));
    }
    for r in [3, 6] {
        assert!(s.report(rid(r)).unwrap().is_none(), "refused, not stored");
    }
    let mut queued = s.queued_reports(0, 10).unwrap();
    queued.sort();
    assert_eq!(queued, vec![rid(1), rid(2), rid(4), rid(5)]);
    assert_eq!(s.queued_reports(1, 10).unwrap(), vec![rid(7)]);
    // A batch again, every upload of it a retry: answered, nothing stored twice.
    assert_eq!(put(&[batch[2], batch[6], batch[9]]), vec![same; 3]);
    assert_eq!(s.queued_reports(0, 10).unwrap().len(), 4);
    // An id first used within the batch, sent again by a client that already has a
    // report in the round: in turn, the id is seen first (a retry's answer), before
    // the client's second report.
    assert_eq!(
        put(&[up(1, 30, 30, b"thirty"), up(1, 30, 1, b"thirty")]),
        vec![PutOutcome::Stored, same]
    );
    assert_eq!(s.queued_reports(1, 10).unwrap().len(), 2);
    s
}

/// Uploads racing on one store from several threads, each `handles[k]` a thread's way
/// in (one store shared, or replicas on one database): the same 40 reports from every
/// thread, each also trying a second report of the same client, against a cap of 30.
/// Exactly 30 are stored, once each, and queued; the rest are refused. It needs a
/// store of its own (round 0 empty), as every check does.
pub fn racing_uploads_store_each_report_once<S: TaskStore + Sync>(handles: &[&S]) {
    let stored = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        for store in handles {
            let stored = &stored;
            scope.spawn(move || {
                for i in 0..40u8 {
                    let outcome = store.put_report(0, rid(i), cid(i), &[i; 3000], 30).unwrap();
                    if outcome == PutOutcome::Stored {
                        stored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    let other = store
                        .put_report(0, rid(i ^ 0x80), cid(i), &[1; 9], 30)
                        .unwrap();
                    assert_ne!(other, PutOutcome::Stored, "a second report of client {i}");
                }
            });
        }
    });
    assert_eq!(stored.load(std::sync::atomic::Ordering::SeqCst), 30);
    assert_eq!(handles[0].queued_reports(0, 1000).unwrap().len(), 30);
}

/// `create_job` takes reports out of the queue; the decision is kept; `commit_job`
/// applies once, drops the payloads and remembers the ids.
pub fn a_job_leaves_the_queue_and_commits_exactly_once<S: TaskStore>(s: S) {
    let ids = [rid(1), rid(2)];
    for (i, id) in ids.iter().enumerate() {
        s.put_report(4, *id, cid(i as u8), &id.0, 10).unwrap();
    }
    s.open_round(4, Time(10), DIMENSION).unwrap();
    let job = JobRecord {
        job_id: JobId([9; 16]),
        round: 4,
        reports: ids.to_vec(),
        accepted: None,
    };
    s.create_job(&job).unwrap();
    assert!(s.queued_reports(4, 10).unwrap().is_empty());
    assert!(s.queued_rounds().unwrap().is_empty());
    assert_eq!(s.open_jobs().unwrap(), vec![job.clone()]);
    // A second job naming a report already in a job (another leader process sharing
    // the store took the same batch) is refused whole: a report is in one job.
    s.put_report(4, rid(3), cid(3), &[3], 10).unwrap();
    let rival = JobRecord {
        job_id: JobId([8; 16]),
        round: 4,
        reports: vec![rid(2), rid(3)],
        accepted: None,
    };
    assert!(s.create_job(&rival).is_err());
    assert_eq!(s.queued_reports(4, 10).unwrap(), vec![rid(3)], "unchanged");
    assert_eq!(s.open_jobs().unwrap(), vec![job.clone()], "no rival job");
    let unknown = JobRecord {
        job_id: JobId([7; 16]),
        round: 4,
        reports: vec![rid(0x77)],
        accepted: None,
    };
    assert!(
        s.create_job(&unknown).is_err(),
        "an unknown report is not queued"
    );
    assert_eq!(s.open_jobs().unwrap(), vec![job.clone()]);
    assert_eq!(s.job_committed(job.job_id).unwrap(), None);
    s.decide_job(job.job_id, &ids[..1]).unwrap();
    assert_eq!(
        s.open_jobs().unwrap()[0].accepted.as_deref(),
        Some(&ids[..1])
    );
    // Decided once: the same decision again is a retry; another (a leader process that
    // stalled past its lease, deciding from other helper answers) changes nothing.
    s.decide_job(job.job_id, &ids[..1]).unwrap();
    assert!(s.decide_job(job.job_id, &ids).is_err());
    assert!(s.decide_job(job.job_id, &[]).is_err());
    assert_eq!(
        s.open_jobs().unwrap()[0].accepted.as_deref(),
        Some(&ids[..1]),
        "the first decision stands"
    );
    assert!(
        s.decide_job(JobId([0x66; 16]), &[]).is_err(),
        "an unknown job"
    );
    let contribution = agg([1, 2, 3]);
    assert_eq!(
        s.commit_job(4, job.job_id, &ids[..1], &contribution)
            .unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(
        s.commit_job(4, job.job_id, &ids[..1], &contribution)
            .unwrap(),
        CommitOutcome::AlreadyCommitted
    );
    let r = s.round(4).unwrap().expect("the round exists");
    assert_eq!(r.count, 1, "counted once");
    assert_eq!(r.aggregate, contribution, "added once");
    assert!(s.open_jobs().unwrap().is_empty());
    assert!(s.report(ids[0]).unwrap().is_none(), "payloads are dropped");
    assert!(s.is_aggregated(ids[0]).unwrap());
    assert!(
        !s.is_aggregated(ids[1]).unwrap(),
        "a rejected report is not aggregated"
    );
    assert_eq!(s.job_committed(job.job_id).unwrap(), Some(1));
    assert_eq!(
        s.report_set_digest(4).unwrap(),
        report_set_digest(&ids[..1])
    );
}

/// A job's lease: one owner at a time, renewable by its owner, taken over once expired,
/// gone with the commit.
pub fn a_job_is_leased_to_one_owner_until_the_lease_expires<S: TaskStore>(s: S) {
    let (a, b) = ([0xaa; 16], [0xbb; 16]);
    s.put_report(2, rid(1), cid(1), &[1], 10).unwrap();
    s.open_round(2, Time(0), DIMENSION).unwrap();
    let job = JobRecord {
        job_id: JobId([5; 16]),
        round: 2,
        reports: vec![rid(1)],
        accepted: None,
    };
    assert!(
        !s.lease_job(job.job_id, a, Time(0), Time(60)).unwrap(),
        "unknown job"
    );
    s.create_job(&job).unwrap();
    assert!(
        s.lease_job(job.job_id, a, Time(100), Time(160)).unwrap(),
        "a free job"
    );
    assert!(
        !s.lease_job(job.job_id, b, Time(120), Time(180)).unwrap(),
        "held by a"
    );
    assert!(
        s.lease_job(job.job_id, a, Time(150), Time(210)).unwrap(),
        "a renews"
    );
    assert!(
        !s.lease_job(job.job_id, b, Time(209), Time(269)).unwrap(),
        "still a's"
    );
    assert!(
        s.lease_job(job.job_id, b, Time(210), Time(270)).unwrap(),
        "expired: b takes it"
    );
    assert!(
        !s.lease_job(job.job_id, a, Time(220), Time(280)).unwrap(),
        "now b's"
    );
    s.decide_job(job.job_id, &[rid(1)]).unwrap();
    s.commit_job(2, job.job_id, &[rid(1)], &agg([1, 0, 0]))
        .unwrap();
    assert!(
        !s.lease_job(job.job_id, b, Time(230), Time(290)).unwrap(),
        "committed"
    );
    assert!(
        !s.lease_job(job.job_id, a, Time(999), Time(1059)).unwrap(),
        "committed"
    );
}

/// A job naming a report twice, or a report another job aggregated, is refused whole.
pub fn a_commit_naming_a_report_twice_or_a_replay_changes_nothing<S: TaskStore>(s: S) {
    s.open_round(0, Time(0), DIMENSION).unwrap();
    let id = rid(3);
    assert!(
        s.commit_job(0, JobId([1; 16]), &[id, id], &agg([1, 1, 1]))
            .is_err()
    );
    assert_eq!(s.round(0).unwrap().expect("round").count, 0);
    assert!(!s.is_aggregated(id).unwrap());
    assert_eq!(s.job_committed(JobId([1; 16])).unwrap(), None);
    s.commit_job(0, JobId([2; 16]), &[id], &agg([1, 1, 1]))
        .unwrap();
    assert!(
        s.commit_job(0, JobId([3; 16]), &[rid(4), id], &agg([5, 5, 5]))
            .is_err(),
        "a replay across jobs"
    );
    let r = s.round(0).unwrap().expect("round");
    assert_eq!(r.count, 1);
    assert_eq!(r.aggregate, agg([1, 1, 1]), "rolled back whole");
    assert!(!s.is_aggregated(rid(4)).unwrap());
    assert_eq!(s.job_committed(JobId([3; 16])).unwrap(), None);
    assert_eq!(s.report_set_digest(0).unwrap(), report_set_digest(&[id]));
}

/// The helper's anti-replay record (see [`TaskStore::record_prepared`]).
pub fn a_helper_admits_a_report_in_one_job_and_a_client_once_per_round<S: TaskStore>(s: S) {
    let (j1, j2) = (JobId([1; 16]), JobId([2; 16]));
    let c = cid(7);
    assert_eq!(s.prepared_job_digest(j1).unwrap(), None);
    assert_eq!(
        s.record_prepared(j1, &[1; 32], 0, &[(rid(1), c)], 10)
            .unwrap(),
        JobAdmission::Recorded(vec![Admission::Admitted])
    );
    assert_eq!(
        s.record_prepared(j1, &[1; 32], 0, &[(rid(1), c)], 10)
            .unwrap(),
        JobAdmission::Recorded(vec![Admission::Admitted]),
        "a resend of the same job"
    );
    assert_eq!(
        s.record_prepared(j1, &[2; 32], 0, &[(rid(1), c)], 10)
            .unwrap(),
        JobAdmission::Conflict,
        "the same job id with other content"
    );
    assert_eq!(
        s.record_prepared(j2, &[3; 32], 0, &[(rid(1), c), (rid(2), c)], 10)
            .unwrap(),
        JobAdmission::Recorded(vec![Admission::Replay, Admission::ClientAlreadySubmitted])
    );
    assert_eq!(
        s.record_prepared(JobId([3; 16]), &[4; 32], 1, &[(rid(5), cid(8))], 0)
            .unwrap(),
        JobAdmission::Recorded(vec![Admission::RoundFull])
    );
    assert_eq!(s.prepared_job_digest(j1).unwrap(), Some([1; 32]));
}

/// `open_round` creates once and returns the existing round's state after; `close_round`.
pub fn rounds_open_once_close_and_are_listed<S: TaskStore>(s: S) {
    assert!(s.round(2).unwrap().is_none());
    assert_eq!(s.latest_round().unwrap(), None);
    assert_eq!(s.latest_released_round().unwrap(), None);
    let first = s.open_round(2, Time(10), DIMENSION).unwrap();
    assert_eq!(first.status, RoundStatus::Open);
    assert_eq!(first.opened_at, Time(10));
    assert_eq!(first.count, 0);
    assert_eq!(
        s.round(2).unwrap().expect("round").aggregate,
        Aggregate::zero(DIMENSION)
    );
    let again = s.open_round(2, Time(99), DIMENSION).unwrap();
    assert_eq!(
        again.opened_at,
        Time(10),
        "opening again keeps the first record"
    );
    s.open_round(5, Time(11), DIMENSION).unwrap();
    assert_eq!(s.latest_round().unwrap(), Some(5));
    s.close_round(2).unwrap();
    assert_eq!(
        s.round(2).unwrap().expect("round").status,
        RoundStatus::Closed
    );
    // A closed round stores no more reports (its release may have begun elsewhere).
    assert_eq!(
        s.put_report(2, rid(40), cid(40), b"late", 100).unwrap(),
        PutOutcome::RoundClosed
    );
    assert!(s.queued_reports(2, 10).unwrap().is_empty());
}

/// The leader's stored answer to a collect.
pub fn the_collect_answer_is_kept<S: TaskStore>(s: S) {
    assert!(s.collect_response(3).unwrap().is_none());
    assert!(!s.has_collect_response(3).unwrap());
    s.put_collect_response(3, b"answer").unwrap();
    assert_eq!(
        s.collect_response(3).unwrap().as_deref(),
        Some(&b"answer"[..])
    );
    assert!(s.has_collect_response(3).unwrap());
    assert!(
        !s.has_collect_response(4).unwrap(),
        "another round's answer"
    );
}

/// Every acknowledged upload, recorded job and decision, helper record, commit and
/// ledger entry is there after a restart.
pub fn everything_acknowledged_survives_a_restart<S: TaskStore>(
    task: TaskId,
    s: S,
    reopen: &mut impl FnMut(S) -> S,
) {
    s.add_client(cid(1), &ClientKey::from_bytes([1; 32]))
        .unwrap();
    for b in 1..=3u8 {
        s.put_report(0, rid(b), cid(b), &[b; 8], 10).unwrap();
    }
    s.open_round(0, Time(5), DIMENSION).unwrap();
    let decided = JobRecord {
        job_id: JobId([1; 16]),
        round: 0,
        reports: vec![rid(1)],
        accepted: None,
    };
    s.create_job(&decided).unwrap();
    s.decide_job(decided.job_id, &[rid(1)]).unwrap();
    let committed = JobRecord {
        job_id: JobId([2; 16]),
        round: 0,
        reports: vec![rid(2)],
        accepted: None,
    };
    s.create_job(&committed).unwrap();
    s.commit_job(0, committed.job_id, &[rid(2)], &agg([4, 5, 6]))
        .unwrap();
    s.record_prepared(JobId([3; 16]), &[3; 32], 0, &[(rid(9), cid(9))], 10)
        .unwrap();
    s.open_round(1, Time(6), DIMENSION).unwrap();
    let mut ledger = Ledger::new(task, 1.0).unwrap();
    let e = ledger.prepare_release(1, 0.5, 0, Time(7)).unwrap();
    s.commit_release(&e, b"released").unwrap();
    ledger.commit(e).unwrap();
    s.put_collect_response(1, b"answer").unwrap();

    let s = reopen(s);
    assert!(s.client(cid(1)).unwrap().is_some());
    assert_eq!(s.report(rid(3)).unwrap().as_deref(), Some(&[3u8; 8][..]));
    assert_eq!(s.queued_reports(0, 10).unwrap(), vec![rid(3)]);
    let open = s.open_jobs().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].job_id, decided.job_id);
    assert_eq!(
        open[0].accepted.as_deref(),
        Some(&[rid(1)][..]),
        "the decision is kept"
    );
    assert_eq!(s.job_committed(committed.job_id).unwrap(), Some(1));
    assert_eq!(
        s.commit_job(0, committed.job_id, &[rid(2)], &agg([4, 5, 6]))
            .unwrap(),
        CommitOutcome::AlreadyCommitted,
        "a commit repeated after the restart changes nothing"
    );
    let r = s.round(0).unwrap().expect("round 0");
    assert_eq!((r.count, r.aggregate), (1, agg([4, 5, 6])));
    assert_eq!(r.opened_at, Time(5));
    assert_eq!(
        s.prepared_job_digest(JobId([3; 16])).unwrap(),
        Some([3; 32])
    );
    assert_eq!(
        s.record_prepared(JobId([4; 16]), &[4; 32], 0, &[(rid(9), cid(9))], 10)
            .unwrap(),
        JobAdmission::Recorded(vec![Admission::Replay]),
        "the helper's record survives"
    );
    assert_eq!(
        s.ledger().unwrap(),
        ledger.entries(),
        "the spent budget survives"
    );
    assert_eq!(s.release(1).unwrap().as_deref(), Some(&b"released"[..]));
    assert_eq!(
        s.collect_response(1).unwrap().as_deref(),
        Some(&b"answer"[..])
    );
}
