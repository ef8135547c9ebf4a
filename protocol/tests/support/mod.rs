//! What several protocol integration tests share: a two-aggregator task file, and a
//! client registered with both aggregators.

use cairn_protocol::auth::Credential;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::hpke::{HpkeSecretKey, generate_keypair};
use cairn_protocol::store::TaskStore;
use rand_chacha::ChaCha20Rng;

/// A fresh client credential for `task`, registered with the leader's store (its key
/// for aggregator 0) and the helper's (for aggregator 1).
#[allow(
    dead_code,
    reason = "not every test that includes this file registers clients"
)]
pub(crate) fn register_client(
    task: &TaskConfig,
    leader: &(impl TaskStore + ?Sized),
    helper: &(impl TaskStore + ?Sized),
    rng: &mut ChaCha20Rng,
) -> Credential {
    let cred = Credential::generate(task.id(), rng);
    leader
        .add_client(cred.client_id(), &cred.key_for(0))
        .expect("the leader's store registers the client");
    helper
        .add_client(cred.client_id(), &cred.key_for(1))
        .expect("the helper's store registers the client");
    cred
}

/// A task of one leader and one helper, with fresh keys drawn from `rng` (collector,
/// leader, helper, in that order): `header` holds the task's own lines (name through
/// `round_duration_secs`, newline-terminated), `privacy` the `[privacy]` section's body.
/// Returns the TOML, the collector's key and the helper's key.
pub(crate) fn two_aggregator_task(
    rng: &mut ChaCha20Rng,
    header: &str,
    privacy: &str,
) -> (String, HpkeSecretKey, HpkeSecretKey) {
    let (collector_sk, collector_pk) = generate_keypair(rng);
    let (_leader_sk, leader_pk) = generate_keypair(rng);
    let (helper_sk, helper_pk) = generate_keypair(rng);
    let text = format!(
        r#"{header}
[privacy]
{privacy}

[collector]
hpke_public_key = "{}"

[[aggregators]]
role = "leader"
endpoint = "127.0.0.1:7000"
tls_cert_sha256 = "{}"
hpke_public_key = "{}"

[[aggregators]]
role = "helper"
endpoint = "127.0.0.1:7001"
tls_cert_sha256 = "{}"
hpke_public_key = "{}"
"#,
        collector_pk.to_hex(),
        "01".repeat(32),
        leader_pk.to_hex(),
        "02".repeat(32),
        helper_pk.to_hex()
    );
    (text, collector_sk, helper_sk)
}
