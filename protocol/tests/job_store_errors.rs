//! A store that fails while a job reads its reports: the job fails whole, with a
//! storage error, and every report stays queued for the next job. A read failure must
//! never turn into a refused report (the report is fine; the disk is not), and the
//! reads run on the leader's worker threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cairn_mpc::secret::Seed;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::JobDriver;
use cairn_protocol::helper::Helper;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message, UploadRequest};
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::store::{MemoryStore, StoreError, TaskStore};
use hooked_store::HookedStore;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 50;
const REPORTS: usize = 12;
const NOW: Time = Time(1_000);

/// The leader's disk: report reads fail while `fail` is set, or once `reads_left`
/// reaches zero.
struct Disk {
    fail: AtomicBool,
    reads_left: AtomicUsize,
}

impl Disk {
    fn read(&self) -> Result<(), StoreError> {
        let exhausted = self
            .reads_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err();
        if self.fail.load(Ordering::SeqCst) || exhausted {
            return Err(StoreError::NotFound("the disk (injected read failure)"));
        }
        Ok(())
    }
}

/// A task of dimension `DIM`, a leader on a store whose report reads go through
/// [`Disk`] and a helper, both on two threads.
fn aggregators(
    rng: &mut ChaCha20Rng,
) -> (
    TaskConfig,
    Leader<HookedStore>,
    Helper<MemoryStore>,
    Arc<Disk>,
) {
    let header = format!(
        "name = \"reads\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = 1\n\
         max_clients = 1000\nround_duration_secs = 3600\n"
    );
    let (toml, _collector_sk, helper_sk) =
        support::two_aggregator_task(rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    let parallelism = Parallelism::with_threads(NonZeroUsize::new(2).unwrap());
    let disk = Arc::new(Disk {
        fail: AtomicBool::new(false),
        reads_left: AtomicUsize::new(usize::MAX),
    });
    let reads = Arc::clone(&disk);
    let store = HookedStore::new(Arc::new(MemoryStore::new()))
        .with_report_read_hook(Box::new(move || reads.read()));
    let leader = Leader::new(task.clone(), Seed::from_bytes([5; 32]), store)
        .unwrap()
        .with_parallelism(parallelism.clone());
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([5; 32]),
        helper_sk,
        MemoryStore::new(),
    )
    .unwrap()
    .with_parallelism(parallelism);
    (task, leader, helper, disk)
}

/// Uploads `count` honest reports of round 0, each from a new client both aggregators
/// know.
fn upload(
    task: &TaskConfig,
    leader: &mut Leader<HookedStore>,
    helper: &Helper<MemoryStore>,
    count: usize,
    rng: &mut ChaCha20Rng,
) {
    for _ in 0..count {
        let req = prepared_upload(task, leader, helper, rng);
        leader.handle_upload(req, NOW).unwrap();
    }
}

/// An honest report of round 0 from a new client both aggregators know, prepared.
fn prepared_upload(
    task: &TaskConfig,
    leader: &Leader<HookedStore>,
    helper: &Helper<MemoryStore>,
    rng: &mut ChaCha20Rng,
) -> UploadRequest {
    let cred = support::register_client(task, leader.store(), helper.store(), rng);
    let client = Client::new(task.clone(), cred).unwrap();
    let x: Vec<i64> = (0..DIM)
        .map(|_| i64::from(rng.next_u32() % 9) - 4)
        .collect();
    client.prepare_upload_quantised(0, &x, rng).unwrap()
}

#[test]
fn a_failed_report_read_fails_the_job_and_loses_no_report() {
    let mut rng = ChaCha20Rng::from_seed([43; 32]);
    let (task, mut leader, mut helper, disk) = aggregators(&mut rng);
    upload(&task, &mut leader, &helper, REPORTS, &mut rng);
    let queued = leader.store().queued_reports(0, usize::MAX).unwrap();
    assert_eq!(queued.len(), REPORTS);

    // The disk fails while the job reads: a storage error, no job, nothing refused.
    disk.fail.store(true, Ordering::SeqCst);
    let err = JobDriver::start(&mut leader, 0, &mut rng).unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal, "{err:?}");
    assert_eq!(
        leader.store().queued_reports(0, usize::MAX).unwrap(),
        queued
    );
    assert!(leader.store().open_jobs().unwrap().is_empty());

    // Once it reads again, the same reports are aggregated, each exactly once.
    disk.fail.store(false, Ordering::SeqCst);
    let mut accepted = 0;
    while let Some(mut driver) = JobDriver::start(&mut leader, 0, &mut rng).unwrap() {
        while let Some(request) = driver.poll_transmit() {
            let answer = helper.handle_message(request.message, NOW, &mut rng);
            driver.handle_answer(&mut leader, answer).unwrap();
        }
        assert!(driver.take_rejections().is_empty());
        accepted += 1;
    }
    assert!(accepted >= 1);
    assert_eq!(
        leader.store().round(0).unwrap().unwrap().count,
        REPORTS as u32
    );
    assert!(
        leader
            .store()
            .queued_reports(0, usize::MAX)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_failed_read_while_resuming_keeps_no_job_without_its_messages() {
    let mut rng = ChaCha20Rng::from_seed([44; 32]);
    let (task, mut leader, helper, disk) = aggregators(&mut rng);
    // Two jobs: a full batch and three reports.
    let reports = leader.job_batch() + 3;
    upload(&task, &mut leader, &helper, reports, &mut rng);
    let (first, _) = leader.start_job(0, &mut rng).unwrap().unwrap();
    let (second, _) = leader.start_job(0, &mut rng).unwrap().unwrap();
    // As after a restart: the jobs are recorded, nothing is in memory.
    leader.forget_job(first);
    leader.forget_job(second);

    // The disk fails after the first job to be resumed was read whole.
    let open = leader.store().open_jobs().unwrap();
    assert_eq!(open.len(), 2);
    let first_size = open[0].reports.len();
    disk.reads_left.store(first_size, Ordering::SeqCst);
    leader.resume_jobs().unwrap_err();

    // The next resume sends both jobs' messages again: none was kept without them.
    disk.reads_left.store(usize::MAX, Ordering::SeqCst);
    let resumed = leader.resume_jobs().unwrap();
    let mut ids: Vec<JobId> = resumed.iter().map(|r| r.job_id).collect();
    ids.sort_by_key(|id| id.0);
    let mut expected = vec![first, second];
    expected.sort_by_key(|id| id.0);
    assert_eq!(ids, expected);
    assert!(
        resumed
            .iter()
            .all(|r| r.inits.iter().any(|i| !i.reports.is_empty()))
    );
}

/// A store that fails one upload of a batch ([`Leader::handle_upload_frames`], as a
/// node stores what queued at once): that upload is answered with the storage error,
/// and the others of the batch are stored and acknowledged, each with its own answer.
#[test]
fn a_store_error_for_one_upload_of_a_batch_is_that_uploads_answer_alone() {
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let (task, _leader, helper, _disk) = aggregators(&mut rng);
    let failing = Arc::new(std::sync::Mutex::new(None::<ReportId>));
    let fails = Arc::clone(&failing);
    let store =
        HookedStore::new(Arc::new(MemoryStore::new())).with_put_hook(Box::new(
            move |id| match *fails.lock().unwrap() {
                Some(f) if f == id => {
                    Err(StoreError::NotFound("the disk (injected write failure)"))
                }
                _ => Ok(()),
            },
        ));
    let leader = Leader::new(task.clone(), Seed::from_bytes([5; 32]), store).unwrap();
    let frames: Vec<(ReportId, Vec<u8>)> = (0..3)
        .map(|_| {
            let req = prepared_upload(&task, &leader, &helper, &mut rng);
            (req.report.report_id, Message::UploadRequest(req).encode())
        })
        .collect();
    *failing.lock().unwrap() = Some(frames[1].0);
    let batch: Vec<&[u8]> = frames.iter().map(|(_, f)| f.as_slice()).collect();
    let answers = leader.handle_upload_frames(&batch, NOW);
    assert_eq!(answers[0].as_ref().unwrap().report_id, frames[0].0);
    assert_eq!(
        answers[1].as_ref().unwrap_err().code,
        ErrorCode::Internal,
        "the failed upload's own answer"
    );
    assert_eq!(answers[2].as_ref().unwrap().report_id, frames[2].0);
    let mut queued = leader.store().queued_reports(0, 10).unwrap();
    queued.sort();
    let mut expected = vec![frames[0].0, frames[2].0];
    expected.sort();
    assert_eq!(queued, expected);
    // Its retry, once the store works again, is stored and acknowledged.
    *failing.lock().unwrap() = None;
    assert!(leader.handle_upload_frame(&frames[1].1, NOW).is_ok());
    assert_eq!(leader.store().queued_reports(0, 10).unwrap().len(), 3);
}
