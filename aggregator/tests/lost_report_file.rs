//! A leader on the embedded store, whose report files are deleted outside cairn: a lost
//! report is left out of the job that decides it, and a decided job that accepted a
//! lost report is refused on its own, while the other jobs go on (the leader and a
//! helper in this process, driven as a node drives them, on SQLite with its report
//! files). The store tells a lost file apart from a failure that may pass
//! (`TaskStore::is_report_lost`); were it not, every job the report is in would fail at
//! every try.
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
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver};
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
        clients: 8,
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

    /// Deletes the file holding report `id`'s bytes, as an operator's mistake would.
    fn delete_report_file(&self, id: ReportId) {
        let files = ReportFiles::beside(&self.db);
        let prefix = id.to_hex();
        let name = std::fs::read_dir(files.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|name| name.starts_with(&prefix))
            .expect("the report has a file");
        std::fs::remove_file(files.dir().join(name)).unwrap();
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
fn deleted_report_files_leave_their_reports_out_and_refuse_only_their_decided_job() {
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
    // Then 3 more reports, queued.
    w.upload(3, &mut rng);
    let (lost_queued, _) = w.uploads[4].clone();
    w.delete_report_file(accepted[1]);
    w.delete_report_file(lost_queued);

    // The decided job is refused on its own: nothing else to resume, no error.
    assert!(JobDriver::resume_all(&mut w.leader).unwrap().is_empty());
    let faults = w.leader.take_store_faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(
        faults[0].detail.contains(&decided_job.to_hex()),
        "{}",
        faults[0]
    );
    assert!(
        faults[0].detail.contains(&format!(
            "{}: its stored bytes are lost",
            accepted[1].to_hex()
        )),
        "{}",
        faults[0]
    );

    // The queued reports' job goes on without the lost one, and says so.
    let job = JobDriver::start(&mut w.leader, 0, &mut rng)
        .unwrap()
        .unwrap();
    let faults = w.leader.take_store_faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(
        faults[0].detail.contains(&lost_queued.to_hex()),
        "{}",
        faults[0]
    );
    let other_job = job.job_id();
    w.drive(job, false, &mut rng);
    assert_eq!(w.leader.store().job_committed(other_job).unwrap(), Some(2));

    // The round waits for the refused job, and says why.
    let refused = w.collect_refusal(&mut rng);
    assert!(refused.contains("refused"), "{refused}");
    assert!(refused.contains(&decided_job.to_hex()), "{refused}");
    assert!(
        JobDriver::resume_all(&mut w.leader).unwrap().is_empty(),
        "refused once"
    );
    assert!(w.leader.take_store_faults().is_empty());
    assert_eq!(w.leader.store().job_committed(decided_job).unwrap(), None);
}
