//! A leader on the embedded store whose report files are moved away outside cairn: a
//! decided job that accepted a lost report is refused on its own, a lost report of a
//! new batch is set aside in a refused job of its own while the batch goes on, and the
//! round's collect says why it waits; a missing reports folder is a failure that may
//! pass, not a loss; once the files are back, a restarted leader aggregates the refused
//! jobs and every acknowledged report is counted (the leader and a helper in this
//! process, driven as a node drives them, on SQLite with its report files). The store
//! tells a lost file apart (`TaskStore::is_report_lost`); were it not, every job would
//! fail at every try.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_aggregator::deploy::{InitParams, init};
use cairn_aggregator::node::read_secret_hex;
use cairn_aggregator::store::report_files::ReportFiles;
use cairn_aggregator::store::{NodeStore, SqliteStore};
use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver, collect_in_process};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::ids::ReportId;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message};
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 16;
const NOW: Time = Time(1_000);

struct World {
    task: TaskConfig,
    verify: [u8; 32],
    db: PathBuf,
    leader: Leader<NodeStore>,
    helper: Helper<MemoryStore>,
    collector: Collector,
    /// The credentials of the clients that have not uploaded yet.
    credentials: Vec<Credential>,
    /// The uploads so far: report id and input.
    uploads: Vec<(ReportId, Vec<i64>)>,
}

fn world(dir: &Path, rng: &mut ChaCha20Rng) -> World {
    let params = InitParams {
        aggregators: 2,
        dimension: u32::try_from(DIM).unwrap(),
        noise: NoisePlacement::None,
        min_clients: 2,
        clients: 10,
        ..InitParams::default()
    };
    let dep = init(&dir.join("deployment"), &params, rng).unwrap();
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&dep.task).unwrap()).unwrap();
    let verify = read_secret_hex(&dep.dir.join("verify.key")).unwrap();
    let helper_key =
        HpkeSecretKey::from_bytes(read_secret_hex(&dep.dir.join("aggregator-1/hpke.key")).unwrap());
    let collector_key =
        HpkeSecretKey::from_bytes(read_secret_hex(&dep.collector_dir.join("hpke.key")).unwrap());
    let db = dir.join("leader.sqlite");
    let store = NodeStore::Sqlite(SqliteStore::open(&db).unwrap().task(task.id(), DIM));
    let leader = Leader::new(task.clone(), Seed::from_bytes(verify), store).unwrap();
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes(verify),
        helper_key,
        MemoryStore::new(),
    )
    .unwrap();
    let collector = Collector::new(task.clone(), collector_key).unwrap();
    let credentials = dep
        .credentials
        .iter()
        .map(|path| cairn_client::sdk::read_credential(path).unwrap())
        .collect();
    World {
        task,
        verify,
        db,
        leader,
        helper,
        collector,
        credentials,
        uploads: Vec::new(),
    }
}

impl World {
    /// Uploads a report of round 0 from each of the next `n` clients.
    fn upload(&mut self, n: usize, rng: &mut ChaCha20Rng) {
        for _ in 0..n {
            let credential = self.credentials.remove(0);
            let id = credential.client_id();
            self.leader
                .store()
                .add_client(id, &credential.key_for(0))
                .unwrap();
            self.helper
                .store()
                .add_client(id, &credential.key_for(1))
                .unwrap();
            let client = Client::new(self.task.clone(), credential).unwrap();
            let x: Vec<i64> = (0..DIM)
                .map(|_| i64::from(rng.next_u32() % 9) - 4)
                .collect();
            let req = client.prepare_upload_quantised(0, &x, rng).unwrap();
            self.uploads.push((req.report.report_id, x));
            self.leader.handle_upload(req, NOW).unwrap();
        }
    }

    /// Moves the file holding report `id`'s bytes out of the store's folder, as an
    /// operator's mistake would; returns where it went and where it was.
    fn move_report_file_away(&self, id: ReportId) -> (PathBuf, PathBuf) {
        let files = ReportFiles::beside(&self.db);
        let prefix = id.to_hex();
        let name = std::fs::read_dir(files.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|name| name.starts_with(&prefix))
            .expect("the report has a file");
        let (from, to) = (files.dir().join(&name), self.db.with_file_name(&name));
        std::fs::rename(&from, &to).unwrap();
        (to, from)
    }

    /// The leader process stops and another starts on the same database.
    fn restart_leader(&mut self) {
        let store = NodeStore::Sqlite(
            SqliteStore::open(&self.db)
                .unwrap()
                .task(self.task.id(), DIM),
        );
        self.leader = Leader::new(self.task.clone(), Seed::from_bytes(self.verify), store).unwrap();
    }

    /// The released count and sum of round 0.
    fn released(&mut self, rng: &mut ChaCha20Rng) -> (u64, Vec<i64>) {
        let request = self.collector.request(0);
        let helpers = std::slice::from_mut(&mut self.helper);
        let resp = collect_in_process(&mut self.leader, helpers, request, NOW, rng)
            .expect("no report left in flight");
        let opened = self.collector.open(0, &resp).unwrap();
        (u64::from(opened.count), opened.sum_quantised)
    }

    /// Passes each request of `job` to the helper until `job` is committed, or, with
    /// `until_decided`, until the leader has recorded its decision (then the leader
    /// forgets the job, as a restart would, and the accepted reports are returned).
    fn drive(
        &mut self,
        mut job: JobDriver,
        until_decided: bool,
        rng: &mut ChaCha20Rng,
    ) -> Vec<ReportId> {
        while let Some(request) = job.poll_transmit() {
            if let Message::JobContinue(decision) = &request.message
                && until_decided
            {
                self.leader.forget_job(job.job_id());
                return decision.accepted.clone();
            }
            let answer = self
                .helper
                .handle_message(request.message, NOW, rng)
                .unwrap();
            job.handle_answer(&mut self.leader, Ok(answer)).unwrap();
        }
        Vec::new()
    }

    /// The leader's answer to a collect of round 0, which must be a refusal.
    fn collect_refusal(&mut self, rng: &mut ChaCha20Rng) -> String {
        let mut driver = CollectDriver::new(
            self.collector.request(0),
            NOW,
            Instant::now(),
            Duration::ZERO,
        );
        match driver.poll(&mut self.leader, rng, Instant::now()) {
            Err(e) => {
                assert_eq!(e.code, ErrorCode::Internal, "{e}");
                e.detail
            }
            Ok(CollectPoll::Transmit(_) | CollectPoll::Done(_)) => panic!("the round was released"),
            Ok(CollectPoll::Retry { .. }) => panic!("the round waits without saying why"),
        }
    }
}

#[test]
fn report_files_moved_away_refuse_only_their_jobs_and_nothing_is_lost_once_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::from_seed([61; 32]);
    let mut w = world(dir.path(), &mut rng);

    // A job of 3 reports, decided; the leader restarts before sending the decision.
    w.upload(3, &mut rng);
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let decided_job = job.job_id();
    let accepted = w.drive(job, true, &mut rng);
    assert_eq!(accepted.len(), 3);
    // Then 3 more reports, queued; a file of each batch goes.
    w.upload(3, &mut rng);
    let lost_queued = w.uploads[4].0;
    let moved = [
        w.move_report_file_away(accepted[1]),
        w.move_report_file_away(lost_queued),
    ];

    // The decided job is refused on its own, with why, once; the queued batch goes on
    // without its lost report, set aside in a refused job of its own.
    assert!(JobDriver::resume_all(&mut w.leader).unwrap().is_empty());
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let batch_job = job.job_id();
    w.drive(job, false, &mut rng);
    assert_eq!(w.leader.store().job_committed(batch_job).unwrap(), Some(2));
    let faults = w.leader.take_store_faults();
    assert_eq!(faults.len(), 2, "{faults:?}");
    let why = format!("{}: its stored bytes are lost", accepted[1].to_hex());
    assert!(faults[0].detail.contains(&why), "{}", faults[0]);
    assert!(
        faults[0].detail.contains(&decided_job.to_hex()),
        "{}",
        faults[0]
    );
    assert!(faults[1].detail.contains("set aside"), "{}", faults[1]);
    assert!(
        faults[1].detail.contains(&lost_queued.to_hex()),
        "{}",
        faults[1]
    );

    // The next reports' job goes on.
    w.upload(2, &mut rng);
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let next_job = job.job_id();
    w.drive(job, false, &mut rng);
    assert_eq!(w.leader.store().job_committed(next_job).unwrap(), Some(2));

    // The whole folder missing (a mount not up yet) is a failure that may pass: the
    // job fails, nothing is refused, and it goes on once the folder is back.
    w.upload(1, &mut rng);
    let folder = ReportFiles::beside(&w.db).dir().to_path_buf();
    let aside = w.db.with_extension("folder-aside");
    std::fs::rename(&folder, &aside).unwrap();
    assert!(JobDriver::start(&mut w.leader, 0, &mut rng).is_err());
    assert!(w.leader.take_store_faults().is_empty());
    std::fs::rename(&aside, &folder).unwrap();
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    w.drive(job, false, &mut rng);

    // The round waits for the refused jobs, and says why.
    let refused = w.collect_refusal(&mut rng);
    assert!(refused.contains("refused"), "{refused}");
    assert!(JobDriver::resume_all(&mut w.leader).unwrap().is_empty());
    assert!(w.leader.take_store_faults().is_empty(), "said once");
    assert_eq!(w.leader.store().job_committed(decided_job).unwrap(), None);

    // The files back and the leader restarted: every acknowledged report counts.
    for (now, was) in &moved {
        std::fs::rename(now, was).unwrap();
    }
    w.restart_leader();
    let resumed = JobDriver::resume_all(&mut w.leader).unwrap();
    assert_eq!(resumed.len(), 2);
    for job in resumed {
        w.drive(job, false, &mut rng);
    }
    let (count, sum) = w.released(&mut rng);
    assert_eq!(count, 9);
    let mut expected = vec![0; DIM];
    for (_, x) in &w.uploads {
        for (e, v) in expected.iter_mut().zip(x) {
            *e += v;
        }
    }
    assert_eq!(sum, expected);
}
