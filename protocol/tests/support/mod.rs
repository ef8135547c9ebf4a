//! What several protocol integration tests share: a two-aggregator task file.

use cairn_protocol::hpke::{HpkeSecretKey, generate_keypair};
use rand_chacha::ChaCha20Rng;

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
