//! Known-answer vectors of the wire format (`protocol/testvectors/wire_v3.json`).
//!
//! One honest round of a tiny task runs with every random choice drawn from fixed
//! seeds: the task id, a PRG expansion, the client's carry-lift sharding and proof
//! (inside the upload), and every message of the round are recorded as hex, each
//! message also split field by field with a comment per field. The layouts below are a
//! second, independent description of `messages.rs`: the test fails when the encoding
//! of any message changes by one byte, or when a layout no longer covers its message
//! exactly. After a deliberate format change, regenerate with
//! `CAIRN_UPDATE_VECTORS=1 cargo test -p cairn-protocol --test known_answers` and
//! review the diff: it is the change to the specification.

#![allow(clippy::expect_used)]

mod support;

use std::path::PathBuf;

use cairn_mpc::prg::{Domain, Prg, Usage};
use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver};
use cairn_protocol::helper::Helper;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, ErrorMessage, Limits, Message, WIRE_VERSION};
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

const NOW: Time = Time(1_000);

/// One field of a layout.
enum F {
    /// `n` bytes.
    Fixed(&'static str, usize, &'static str),
    /// A u32 length, then that many bytes.
    Bytes(&'static str, &'static str),
    /// A u32 count, then that many groups.
    Repeated(&'static str, &'static str, Vec<F>),
    /// A one-byte tag choosing the group that follows.
    Tagged(&'static str, &'static str, Vec<(u8, Vec<F>)>),
}

use F::{Bytes, Fixed, Repeated, Tagged};

fn ciphertext(what: &'static str) -> Vec<F> {
    vec![
        Fixed("encapsulated_key", 32, "HPKE encapsulated key (X25519)"),
        Bytes("payload", what),
    ]
}

fn ledger_head(whose: &'static str) -> Vec<F> {
    vec![
        Fixed("entries", 8, whose),
        Fixed("rho_total", 8, "ρ spent in all, f64 bits"),
        Fixed("hash", 32, "hash of the last ledger entry"),
    ]
}

fn aggregate_share() -> Vec<F> {
    let mut f = vec![
        Fixed("aggregator_index", 1, "0 = leader, 1.. = helpers"),
        Fixed("report_count", 4, "reports in this share"),
        Fixed("rho_spent", 8, "receipt: ρ of this release, f64 bits"),
        Fixed("rho_total", 8, "receipt: ρ spent in all, f64 bits"),
        Fixed("epsilon_total", 8, "receipt: ε spent in all, f64 bits"),
        Fixed("epsilon_remaining", 8, "receipt: ε left, f64 bits"),
    ];
    f.extend(ledger_head("ledger entries after this release"));
    f.extend(ciphertext("the share, sealed to the collector"));
    f
}

/// The layout of the body (after version and type) of a message of type `ty`.
fn layout(ty: u8) -> Vec<F> {
    let task = || Fixed("task_id", 32, "SHA-256 of the canonical task config");
    let job = || Fixed("job_id", 16, "random job id");
    let round = || Fixed("round", 4, "round number");
    match ty {
        1 => {
            let mut f = vec![
                task(),
                Fixed("report_id", 16, "random report id"),
                round(),
                Fixed("client_id", 16, "the client's credential id"),
                Fixed(
                    "leader_tag",
                    32,
                    "report tag under the client's key for the leader",
                ),
                Bytes(
                    "public_share",
                    "carry-lift public share: joint-randomness parts",
                ),
                Bytes(
                    "leader_share",
                    "the leader's input and proof share (seed-compressed)",
                ),
            ];
            f.push(Repeated(
                "helper_shares",
                "one sealed share per helper",
                ciphertext("the helper's share and report tag, sealed to that helper"),
            ));
            f
        }
        2 => vec![Fixed("report_id", 16, "the acknowledged report")],
        3 => vec![
            task(),
            job(),
            round(),
            Repeated(
                "reports",
                "the job's reports",
                vec![
                    Fixed("report_id", 16, "report id"),
                    Fixed("client_id", 16, "client id (the helper checks the tag)"),
                    Bytes("public_share", "the report's public share"),
                    Fixed(
                        "encapsulated_key",
                        32,
                        "sealed share: HPKE encapsulated key",
                    ),
                    Bytes("payload", "sealed share: ciphertext"),
                ],
            ),
        ],
        4 => vec![
            job(),
            Repeated(
                "results",
                "one per report, in the job's order",
                vec![Tagged(
                    "kind",
                    "0 = verifier share, 1 = rejected",
                    vec![
                        (
                            0,
                            vec![
                                Fixed("report_id", 16, "report id"),
                                Bytes("verifier_share", "the helper's verifier share"),
                            ],
                        ),
                        (
                            1,
                            vec![
                                Fixed("report_id", 16, "report id"),
                                Fixed("code", 2, "error code"),
                            ],
                        ),
                    ],
                )],
            ),
        ],
        5 => vec![
            task(),
            job(),
            round(),
            Repeated(
                "accepted",
                "the reports every aggregator adds",
                vec![Fixed("report_id", 16, "report id")],
            ),
        ],
        6 => vec![
            job(),
            Fixed("accepted_count", 4, "reports the helper added"),
        ],
        7 => {
            let mut f = vec![
                task(),
                round(),
                Fixed("report_count", 4, "reports in the round"),
                Fixed(
                    "report_set_digest",
                    32,
                    "digest of the round's accepted report ids",
                ),
            ];
            f.extend(ledger_head("the leader's ledger entries"));
            f.push(Fixed(
                "leader_released_before",
                1,
                "1 if the leader released the round before",
            ));
            f
        }
        8 => {
            let mut f = vec![round()];
            f.extend(aggregate_share());
            f.extend(ledger_head("the helper's ledger entries"));
            f.push(Fixed(
                "released_before",
                1,
                "1 if the helper released the round before",
            ));
            f
        }
        9 => vec![task(), round()],
        10 => vec![
            round(),
            Fixed("report_count", 4, "reports in the sum"),
            Repeated("shares", "one per aggregator", aggregate_share()),
        ],
        11 => vec![
            Fixed("code", 2, "error code"),
            Bytes("detail", "UTF-8 detail, at most 512 bytes"),
            Fixed(
                "retry_after_ms",
                4,
                "milliseconds to wait before a retry (0: no advice)",
            ),
        ],
        other => panic!("no layout for message type {other}"),
    }
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    let b: [u8; 4] = bytes[at..at + 4].try_into().expect("4 bytes");
    u32::from_le_bytes(b) as usize
}

/// Appends the field `name` of `len` bytes at `*at` and moves past it.
fn push(
    bytes: &[u8],
    at: &mut usize,
    name: String,
    len: usize,
    comment: &str,
    out: &mut Vec<Value>,
) {
    assert!(
        *at + len <= bytes.len(),
        "{name}: the layout runs past the message"
    );
    out.push(json!({
        "field": name,
        "hex": hex::encode(&bytes[*at..*at + len]),
        "comment": comment,
    }));
    *at += len;
}

/// Splits `bytes` from `*at` by `fields`, appending one entry per field.
fn split(bytes: &[u8], at: &mut usize, fields: &[F], prefix: &str, out: &mut Vec<Value>) {
    for f in fields {
        match f {
            Fixed(name, len, comment) => {
                push(bytes, at, format!("{prefix}{name}"), *len, comment, out);
            }
            Bytes(name, comment) => {
                let len = u32_at(bytes, *at);
                push(
                    bytes,
                    at,
                    format!("{prefix}{name}.len"),
                    4,
                    "length, u32",
                    out,
                );
                push(bytes, at, format!("{prefix}{name}"), len, comment, out);
            }
            Repeated(name, comment, group) => {
                let n = u32_at(bytes, *at);
                push(bytes, at, format!("{prefix}{name}.count"), 4, comment, out);
                for i in 0..n {
                    split(bytes, at, group, &format!("{prefix}{name}[{i}]."), out);
                }
            }
            Tagged(name, comment, groups) => {
                let tag = bytes[*at];
                push(bytes, at, format!("{prefix}{name}"), 1, comment, out);
                let group = groups
                    .iter()
                    .find(|(t, _)| *t == tag)
                    .map(|(_, g)| g)
                    .unwrap_or_else(|| panic!("{name}: unknown tag {tag}"));
                split(bytes, at, group, prefix, out);
            }
        }
    }
}

fn vector(bytes: &[u8], limits: &Limits) -> Value {
    let m = Message::decode(bytes, limits).expect("every recorded frame decodes");
    let mut fields = vec![
        json!({"field": "version", "hex": hex::encode(&bytes[..1]), "comment": "wire version"}),
        json!({"field": "type", "hex": hex::encode(&bytes[1..2]), "comment": "message type"}),
    ];
    let mut at = 2;
    split(bytes, &mut at, &layout(bytes[1]), "", &mut fields);
    assert_eq!(
        at,
        bytes.len(),
        "{}: the layout leaves bytes over",
        m.name()
    );
    json!({"message": m.name(), "type": bytes[1], "hex": hex::encode(bytes), "fields": fields})
}

/// Every vector, computed now.
fn vectors() -> Value {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let header = "name = \"known-answers\"\ndimension = 4\nbits = 16\nfrac_bits = 8\n\
                  clip_norm = 2.0\nproof = \"carry-lift\"\nmin_clients = 1\nmax_clients = 10\n\
                  round_duration_secs = 3600\n";
    let (text, collector_sk, helper_sk) =
        support::two_aggregator_task(&mut rng, header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&text).expect("the task parses");
    let verify_key = [3u8; 32];
    let helper_sk_hex = helper_sk.dangerous_to_hex();
    let (mut leader, mut helper) = aggregators(&task, verify_key, helper_sk);
    let collector = Collector::new(task.clone(), collector_sk).expect("collector");
    let limits = leader.limits();

    // PRG expansion: 8 words of Z_{2^16} from a fixed seed in a fixed domain.
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let domain = Domain {
        task_id: task.id().0,
        report_id: [0x11; 16],
        party: 1,
        usage: Usage::ZqShare,
    };
    let mut words = [0u16; 8];
    Prg::new(&Seed::from_bytes(seed), &domain).fill_zq(&mut words);

    let client = registered_client(&task, &leader, &helper, &mut rng);
    let input = [100i64, -200, 300, -100];
    let upload = client
        .prepare_upload_quantised(0, &input, &mut rng)
        .expect("upload");
    let mut frames = vec![Message::UploadRequest(upload).encode()];
    let Ok(Message::UploadRequest(upload)) = Message::decode(&frames[0], &limits) else {
        panic!("the upload decodes");
    };
    let ack = leader.handle_upload(upload, NOW).expect("accepted");
    frames.push(Message::UploadResponse(ack).encode());

    let mut job = JobDriver::start(&mut leader, 0, &mut rng)
        .expect("job")
        .expect("a queued report");
    while let Some(t) = job.poll_transmit() {
        frames.push(t.message.encode());
        let answer = helper
            .handle_message(t.message, NOW, &mut rng)
            .expect("the helper answers");
        frames.push(answer.encode());
        job.handle_answer(&mut leader, Ok(answer))
            .expect("job step");
    }
    assert_eq!(job.outcome().expect("committed").accepted, 1);

    let request = collector.request(0);
    frames.push(Message::CollectRequest(request.clone()).encode());
    let started = std::time::Instant::now();
    let mut collect = CollectDriver::new(request, NOW, started, std::time::Duration::ZERO);
    loop {
        match collect
            .poll(&mut leader, &mut rng, started)
            .expect("collect")
        {
            CollectPoll::Transmit(t) => {
                frames.push(t.message.encode());
                let answer = helper
                    .handle_message(t.message, NOW, &mut rng)
                    .expect("the helper releases");
                frames.push(answer.encode());
                collect.handle_answer(Ok(answer)).expect("share");
            }
            CollectPoll::Retry { .. } => panic!("no report in flight"),
            CollectPoll::Done(response) => {
                let opened = collector.open(0, &response).expect("opens");
                assert_eq!(opened.sum_quantised, input);
                frames.push(Message::CollectResponse(response).encode());
                break;
            }
        }
    }
    frames.push(
        Message::Error(ErrorMessage::new(
            ErrorCode::BudgetExceeded,
            "the round would exceed the privacy budget",
        ))
        .encode(),
    );

    let blake3 = blake3_upload(&text, verify_key, &helper_sk_hex, &input, &mut rng);

    json!({
        "spec": "Cairn wire format; integers little-endian; see protocol/src/messages/ and docs/DESIGN.md",
        "wire_version": WIRE_VERSION,
        "seeds": "ChaCha20 seed [7; 32] for every random choice, verify key [3; 32]",
        "task_toml": text,
        "task_id": hex::encode(task.id().0),
        "prg": {
            "seed": hex::encode(seed),
            "domain": {
                "task_id": hex::encode(domain.task_id),
                "report_id": hex::encode(domain.report_id),
                "party": domain.party,
                "usage": domain.usage.as_u8(),
            },
            "zq16_words": words.to_vec(),
        },
        "client_input_quantised": input.to_vec(),
        "messages": frames.iter().map(|f| vector(f, &limits)).collect::<Vec<_>>(),
        "joint_rand_blake3": blake3,
    })
}

/// The task's leader and helper, on in-memory stores, with the given verify key.
fn aggregators(
    task: &TaskConfig,
    verify_key: [u8; 32],
    helper_sk: cairn_protocol::hpke::HpkeSecretKey,
) -> (Leader<MemoryStore>, Helper<MemoryStore>) {
    let leader = Leader::new(
        task.clone(),
        Seed::from_bytes(verify_key),
        MemoryStore::new(),
    )
    .expect("leader");
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes(verify_key),
        helper_sk,
        MemoryStore::new(),
    )
    .expect("helper");
    (leader, helper)
}

/// A client with a fresh credential from `rng`, registered with both aggregators.
fn registered_client(
    task: &TaskConfig,
    leader: &Leader<MemoryStore>,
    helper: &Helper<MemoryStore>,
    rng: &mut ChaCha20Rng,
) -> Client {
    let credential = Credential::generate(task.id(), rng);
    leader
        .store()
        .add_client(credential.client_id(), &credential.key_for(0))
        .expect("register");
    helper
        .store()
        .add_client(credential.client_id(), &credential.key_for(1))
        .expect("register");
    Client::new(task.clone(), credential).expect("client")
}

/// The same task with `joint_rand_hash = "blake3"` (what `cairn init` writes): its id
/// and an upload of the same input, which the aggregators verify and accept. Drawn
/// after the round above, so the SHA-256 vectors stay as they were.
fn blake3_upload(
    text: &str,
    verify_key: [u8; 32],
    helper_sk_hex: &str,
    input: &[i64],
    rng: &mut ChaCha20Rng,
) -> Value {
    let text = text.replacen(
        "proof = \"carry-lift\"\n",
        "proof = \"carry-lift\"\njoint_rand_hash = \"blake3\"\n",
        1,
    );
    let task = TaskConfig::from_toml(&text).expect("the BLAKE3 task parses");
    let helper_sk =
        cairn_protocol::hpke::HpkeSecretKey::from_hex(helper_sk_hex).expect("the helper's key");
    let (mut leader, mut helper) = aggregators(&task, verify_key, helper_sk);
    let client = registered_client(&task, &leader, &helper, rng);
    let upload = client
        .prepare_upload_quantised(0, input, rng)
        .expect("upload");
    let frame = Message::UploadRequest(upload).encode();
    let Ok(Message::UploadRequest(upload)) = Message::decode(&frame, &leader.limits()) else {
        panic!("the upload decodes");
    };
    leader.handle_upload(upload, NOW).expect("accepted");
    let mut job = JobDriver::start(&mut leader, 0, rng)
        .expect("job")
        .expect("a queued report");
    while let Some(t) = job.poll_transmit() {
        let answer = helper
            .handle_message(t.message, NOW, rng)
            .expect("the helper answers");
        job.handle_answer(&mut leader, Ok(answer))
            .expect("job step");
    }
    assert_eq!(job.outcome().expect("committed").accepted, 1);
    json!({
        "task_id": hex::encode(task.id().0),
        "upload": vector(&frame, &leader.limits()),
    })
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testvectors/wire_v3.json")
}

#[test]
fn the_wire_format_matches_the_known_answers() {
    let now = serde_json::to_string_pretty(&vectors()).expect("json") + "\n";
    let path = vectors_path();
    if std::env::var_os("CAIRN_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &now).expect("writing the vectors");
    }
    let stored = std::fs::read_to_string(&path).expect("protocol/testvectors/wire_v3.json");
    let stored: Value = serde_json::from_str(&stored).expect("the stored vectors parse");
    let now: Value = serde_json::from_str(&now).expect("json");
    for (s, n) in stored["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .zip(now["messages"].as_array().expect("messages"))
    {
        assert_eq!(s["hex"], n["hex"], "{} changed", s["message"]);
    }
    assert_eq!(stored, now, "the vectors changed (see the module docs)");
}

#[test]
fn every_message_type_has_a_vector() {
    let v = vectors();
    let names: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message"].as_str().expect("name"))
        .collect();
    for ty in 1..=11u8 {
        assert!(
            v["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .any(|m| m["type"] == ty),
            "no vector of type {ty} (have {names:?})"
        );
    }
}

#[test]
fn the_stored_vectors_decode_to_their_messages() {
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path()).expect("vectors"))
            .expect("json");
    let task = TaskConfig::from_toml(stored["task_toml"].as_str().expect("toml")).expect("task");
    assert_eq!(hex::encode(task.id().0), stored["task_id"]);
    let limits = Leader::new(task, Seed::from_bytes([3; 32]), MemoryStore::new())
        .expect("leader")
        .limits();
    for m in stored["messages"].as_array().expect("messages") {
        let bytes = hex::decode(m["hex"].as_str().expect("hex")).expect("hex");
        let decoded = Message::decode(&bytes, &limits).expect("a stored vector decodes");
        assert_eq!(decoded.name(), m["message"]);
        assert_eq!(
            decoded.encode(),
            bytes,
            "{} re-encodes byte for byte",
            m["message"]
        );
        let joined: String = m["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["hex"].as_str().expect("field hex"))
            .collect();
        assert_eq!(
            joined, m["hex"],
            "{}: the fields concatenate to the message",
            m["message"]
        );
    }
}
