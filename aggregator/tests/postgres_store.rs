//! The PostgreSQL store (`cargo test -p cairn-aggregator postgres` selects these): the
//! store conformance suite, migrations and their check, and concurrency between
//! "replicas" (several pools on one database).

#[path = "common/pg_cluster.rs"]
mod pg_cluster;

use cairn_aggregator::store::postgres::{PgConnect, PgStore, PgStoreError, schema};
use cairn_protocol::config::TaskId;
use pg_cluster::PgCluster;

fn connect(url: &str) -> PgConnect {
    PgConnect {
        url: url.to_owned(),
        password: None,
        pool_size: 4,
    }
}

#[test]
fn postgres_store_keeps_the_store_contract() {
    let cluster = PgCluster::start();
    let task = TaskId([1; 32]);
    let last = std::cell::RefCell::new(String::new());
    cairn_protocol::store::conformance::run_all(
        task,
        || {
            let url = cluster.create_database();
            *last.borrow_mut() = url.clone();
            PgStore::migrate(&connect(&url)).unwrap().0.task(task, 3)
        },
        |store| {
            // A restart: every connection closed, the database opened again.
            drop(store);
            PgStore::open(&connect(&last.borrow()))
                .unwrap()
                .task(task, 3)
        },
    );
}

#[test]
fn postgres_schema_is_migrated_once_and_checked_at_start() {
    let cluster = PgCluster::start();
    let url = cluster.create_database();
    match PgStore::open(&connect(&url)) {
        Err(PgStoreError::SchemaVersion { found: 0, expected }) => {
            assert_eq!(expected, schema::VERSION)
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a node must not run on an unmigrated database"),
    }
    let (_, applied) = PgStore::migrate(&connect(&url)).unwrap();
    assert_eq!(applied, vec![1, 2]);
    let (_, again) = PgStore::migrate(&connect(&url)).unwrap();
    assert!(again.is_empty(), "migrations are idempotent");
    assert!(PgStore::open(&connect(&url)).unwrap().ping());

    // A database migrated by a newer cairn is refused, not used.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute("INSERT INTO cairn_schema (version) VALUES (99)", &[])
        .unwrap();
    assert!(matches!(
        PgStore::open(&connect(&url)),
        Err(PgStoreError::SchemaVersion { found: 99, .. })
    ));
}

#[test]
fn postgres_concurrent_replicas_store_each_report_once() {
    let cluster = PgCluster::start();
    let url = cluster.create_database();
    let task = TaskId([2; 32]);
    PgStore::migrate(&connect(&url)).unwrap();
    // Four "replicas": four pools on one database, racing on the same uploads.
    let replicas: Vec<_> = (0..4)
        .map(|_| PgStore::open(&connect(&url)).unwrap().task(task, 3))
        .collect();
    let handles: Vec<_> = replicas.iter().collect();
    cairn_protocol::store::conformance::racing_uploads_store_each_report_once(&handles);
}

#[test]
fn postgres_two_replicas_releasing_one_round_release_it_once() {
    use cairn_protocol::clock::Time;
    use cairn_protocol::ledger::LedgerEntry;
    use cairn_protocol::store::TaskStore;

    let cluster = PgCluster::start();
    let url = cluster.create_database();
    let task = TaskId([3; 32]);
    PgStore::migrate(&connect(&url)).unwrap();
    let replicas: Vec<_> = (0..2)
        .map(|_| PgStore::open(&connect(&url)).unwrap().task(task, 3))
        .collect();
    let entry = |seq: u64, tag: u8| LedgerEntry {
        seq,
        round: 7,
        time: Time(1),
        report_count: 3,
        rho: 0.25,
        rho_total: 0.25 * (seq + 1) as f64,
        rdp: None,
        prev_hash: [0; 32],
        hash: [tag; 32],
    };
    for attempt in 0..5u8 {
        let url = cluster.create_database();
        PgStore::migrate(&connect(&url)).unwrap();
        let replicas: Vec<_> = (0..2)
            .map(|_| PgStore::open(&connect(&url)).unwrap().task(task, 3))
            .collect();
        // Both replicas decided to release round 7 as ledger entry 0 (each its own hash)
        // and commit at the same time: one wins, the other's commit fails.
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = replicas
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let e = entry(0, attempt * 2 + i as u8);
                    s.spawn(move || r.commit_release(&e, b"released").is_ok())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
        assert_eq!(replicas[0].ledger().unwrap().len(), 1);
        // A second entry for the same round (a later seq) is refused too.
        assert!(replicas[1].commit_release(&entry(1, 99), b"again").is_err());
        assert_eq!(replicas[1].ledger().unwrap().len(), 1);
    }
    drop(replicas);
}

#[test]
fn postgres_a_database_names_the_other_tasks_that_have_ledgers() {
    use cairn_protocol::clock::Time;
    use cairn_protocol::ledger::LedgerEntry;
    use cairn_protocol::store::TaskStore;

    // What `cairn node` checks at start: a database holding another task's ledger is
    // refused, so that a task file edited into another task id cannot start a fresh
    // budget beside the spent one.
    let cluster = PgCluster::start();
    let url = cluster.create_database();
    PgStore::migrate(&connect(&url)).unwrap();
    let (spent, fresh) = (TaskId([4; 32]), TaskId([5; 32]));
    let store = PgStore::open(&connect(&url)).unwrap();
    let a = store.task(spent, 3);
    let b = store.task(fresh, 3);
    assert!(a.other_ledger_tasks().unwrap().is_empty());
    assert!(b.other_ledger_tasks().unwrap().is_empty());
    let entry = LedgerEntry {
        seq: 0,
        round: 1,
        time: Time(1),
        report_count: 3,
        rho: 0.25,
        rho_total: 0.25,
        rdp: None,
        prev_hash: [0; 32],
        hash: [7; 32],
    };
    a.commit_release(&entry, b"released").unwrap();
    assert_eq!(b.other_ledger_tasks().unwrap(), vec![hex::encode(spent.0)]);
    assert!(a.other_ledger_tasks().unwrap().is_empty(), "its own ledger");
}

#[test]
fn postgres_the_readme_sample_config_parses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme.find("## Running on PostgreSQL").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let sample = &section[start..start + section[start..].find("```").unwrap()];
    let base = "role = \"leader\"\nindex = 0\nlisten = \"127.0.0.1:7100\"\ntask = \"task.toml\"\n\
                data_dir = \"d\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nhpke_key = \"h.key\"\n\
                verify_key = \"v.key\"\n";
    let text = format!(
        "{base}collector_cert_sha256 = \"{}\"\n{sample}",
        "ab".repeat(32)
    );
    let config = cairn_aggregator::node_config::NodeConfig::parse(
        &text,
        std::path::Path::new("/deploy/node-0.toml"),
    )
    .unwrap();
    assert_eq!(
        config.store,
        cairn_aggregator::node_config::StoreConfig::Postgres {
            url: "host=db.internal port=5432 user=cairn dbname=cairn_leader".into(),
            password_file: Some("/deploy/db.password".into()),
            pool_size: 8,
            job_lease_secs: 30,
        }
    );
}

/// The fenced blocks of `lang` in the README section that starts with `heading`.
#[allow(clippy::unwrap_used)]
fn readme_blocks(heading: &str, lang: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find(heading).unwrap();
    let section = &readme[start..];
    let end = section[heading.len()..]
        .find("\n## ")
        .map_or(section.len(), |i| i + heading.len());
    let fence = format!("```{lang}\n");
    section[..end]
        .split(&fence)
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].to_owned())
        .collect()
}

#[test]
fn postgres_the_readme_replica_samples_parse() {
    let blocks = readme_blocks("## Running at scale", "toml");
    assert_eq!(blocks.len(), 2, "a task excerpt and a node excerpt");
    // The task excerpt, completed with a header, a collector and real keys.
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([4; 32]);
    let mut key = || cairn_protocol::hpke::generate_keypair(&mut rng).1.to_hex();
    let mut aggregators = blocks[0].clone();
    for (fp, pk) in [("01".repeat(32), key()), ("02".repeat(32), key())] {
        aggregators = aggregators
            .replacen(
                "tls_cert_sha256 = \"…\"",
                &format!("tls_cert_sha256 = \"{fp}\""),
                1,
            )
            .replacen(
                "hpke_public_key = \"…\"",
                &format!("hpke_public_key = \"{pk}\""),
                1,
            );
    }
    let task = format!(
        "name = \"scale\"\ndimension = 8\nbits = 16\nfrac_bits = 8\nclip_norm = 1.0\n\
         proof = \"carry-lift\"\nmin_clients = 3\nmax_clients = 1000\n\
         round_duration_secs = 60\n\n[privacy]\nnoise = \"none\"\n\n[collector]\n\
         hpke_public_key = \"{}\"\n\n{aggregators}",
        key()
    );
    let task = cairn_protocol::config::TaskConfig::from_toml(&task).unwrap();
    assert_eq!(task.aggregators()[0].endpoints().len(), 3);
    assert_eq!(task.aggregators()[1].endpoints().len(), 2);
    // The node excerpt.
    let base = "role = \"leader\"\nindex = 0\nlisten = \"10.0.1.2:7100\"\ntask = \"task.toml\"\n\
                data_dir = \"d\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nhpke_key = \"h.key\"\n\
                verify_key = \"v.key\"\n";
    let text = format!(
        "{base}collector_cert_sha256 = \"{}\"\n{}",
        "ab".repeat(32),
        blocks[1]
    );
    let config = cairn_aggregator::node_config::NodeConfig::parse(
        &text,
        std::path::Path::new("/deploy/node-0.toml"),
    )
    .unwrap();
    assert!(matches!(
        config.store,
        cairn_aggregator::node_config::StoreConfig::Postgres {
            job_lease_secs: 30,
            ..
        }
    ));
}

#[test]
fn postgres_a_report_digest_stored_as_sha256_still_recognises_its_retry() {
    use cairn_protocol::auth::ClientId;
    use cairn_protocol::ids::ReportId;
    use cairn_protocol::store::{PutOutcome, TaskStore};
    use sha2::Digest;

    // Databases written before reports were hashed with BLAKE3 hold SHA-256 digests: a
    // retry of such a report is still the same report, other bytes are still a replay.
    let cluster = PgCluster::start();
    let url = cluster.create_database();
    let store = PgStore::migrate(&connect(&url))
        .unwrap()
        .0
        .task(TaskId([8; 32]), 3);
    let (id, client, report) = (ReportId([1; 16]), ClientId([2; 16]), vec![5u8; 300]);
    assert_eq!(
        store.put_report(0, id, client, &report, 10).unwrap(),
        PutOutcome::Stored
    );
    let sha256 = sha2::Sha256::digest(&report).to_vec();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    assert_eq!(
        admin
            .execute("UPDATE seen_reports SET digest = $1", &[&sha256])
            .unwrap(),
        1
    );
    let again = |bytes: &[u8]| store.put_report(0, id, client, bytes, 10).unwrap();
    assert_eq!(again(&report), PutOutcome::Duplicate { identical: true });
    assert_eq!(
        again(&[6u8; 300]),
        PutOutcome::Duplicate { identical: false }
    );
}
