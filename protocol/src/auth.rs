//! Per-client credentials: who may submit, and under which identity.
//!
//! Every client holds a [`Credential`]: a random [`ClientId`] and a 32-byte secret,
//! bound to one task. From the secret it derives one MAC key per aggregator,
//!
//! ```text
//! k_j = HMAC-SHA256(secret, "cairn/2 client key" ‖ task id ‖ j)
//! ```
//!
//! and aggregator `j` is registered with `(client id, k_j)` only. A report carries one
//! tag per aggregator,
//!
//! ```text
//! tag_j = HMAC-SHA256(k_j, "cairn/2 report" ‖ task id ‖ client id ‖ round ‖ report id
//!                          ‖ SHA-256(public share) ‖ j)
//! ```
//!
//! The leader's tag travels in the clear inside the (TLS-protected) upload; each
//! helper's tag travels **inside that helper's HPKE-sealed share**, so the leader
//! never sees it. A malicious leader therefore cannot make a helper accept a report
//! under a client identity whose key it does not hold, nor re-use a client's tag for
//! another round, report id or public share (all are in the MAC input and in the HPKE
//! associated data). Each aggregator, holding only its own `k_j`, can forge tags for
//! itself alone: every aggregator authenticates every client on its own, and the
//! one-report-per-client-per-round rule ([`crate::store::TaskStore::put_report`],
//! [`crate::store::TaskStore::record_prepared`]) holds at each of them.
//!
//! Tags are compared in constant time. Secrets (`ClientSecret`, [`ClientKey`]) are
//! zeroized on drop, cannot be cloned by accident and print redacted.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ids::ReportId;
use crate::ids::TaskId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a client id.
pub const CLIENT_ID_LEN: usize = 16;
/// Bytes of a report tag (HMAC-SHA256).
pub const REPORT_TAG_LEN: usize = 32;

/// Errors of credentials and keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A credential file does not parse.
    #[error("the credential does not parse: {0}")]
    Parse(String),
    /// A hex field has the wrong form.
    #[error("`{0}` must be {1} hex digits")]
    Hex(&'static str, usize),
    /// The credential belongs to another task.
    #[error("this credential is for task {credential}, not for task {task}")]
    WrongTask {
        /// The credential's task.
        credential: TaskId,
        /// The task it was used with.
        task: TaskId,
    },
}

/// A client's public identity within a task: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub [u8; CLIENT_ID_LEN]);

impl ClientId {
    /// A fresh random id.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; CLIENT_ID_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, AuthError> {
        let mut bytes = [0u8; CLIENT_ID_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| AuthError::Hex("client_id", 2 * CLIENT_ID_LEN))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.to_hex())
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A client's MAC key at one aggregator: what that aggregator stores to verify the
/// client. Secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ClientKey([u8; 32]);

impl PartialEq for ClientKey {
    /// Constant time: keys are secrets.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ClientKey {}

impl ClientKey {
    /// A key from its bytes (as stored).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for storing.
    pub fn dangerous_as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, AuthError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| AuthError::Hex("key", 64))?;
        let key = Self(bytes);
        bytes.zeroize();
        Ok(key)
    }

    /// A copy; explicit, because keys are not `Clone`.
    pub fn duplicate(&self) -> Self {
        Self(self.0)
    }

    /// Tag of one report for the aggregator holding this key (module docs).
    pub fn tag(&self, ctx: &TagContext<'_>) -> [u8; REPORT_TAG_LEN] {
        // Invariant: HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"cairn/2 report");
        mac.update(&ctx.task_id.0);
        mac.update(&ctx.client_id.0);
        mac.update(&ctx.round.to_le_bytes());
        mac.update(&ctx.report_id.0);
        mac.update(&public_share_digest(ctx.public_share));
        mac.update(&[ctx.aggregator]);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is this key's tag of the report, compared in constant time.
    pub fn verify(&self, ctx: &TagContext<'_>, tag: &[u8]) -> bool {
        let expected = Zeroizing::new(self.tag(ctx));
        tag.len() == REPORT_TAG_LEN && bool::from(expected.as_slice().ct_eq(tag))
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

/// What a report tag binds.
#[derive(Debug, Clone, Copy)]
pub struct TagContext<'a> {
    /// The task.
    pub task_id: &'a TaskId,
    /// The client.
    pub client_id: &'a ClientId,
    /// The round.
    pub round: u32,
    /// The report.
    pub report_id: &'a ReportId,
    /// The report's public share (hashed into the tag).
    pub public_share: &'a [u8],
    /// The aggregator the tag is for.
    pub aggregator: u8,
}

/// SHA-256 of a report's public share, as bound into tags and HPKE associated data.
pub fn public_share_digest(public_share: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/2 public share");
    h.update((public_share.len() as u64).to_le_bytes());
    h.update(public_share);
    h.finalize().into()
}

/// A client's whole credential for one task. Secret: keep it in a file only its owner
/// can read.
pub struct Credential {
    task_id: TaskId,
    client_id: ClientId,
    secret: Zeroizing<[u8; 32]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    task_id: String,
    client_id: String,
    secret: SecretText,
}

/// A string read from a credential file, wiped when dropped.
#[derive(Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Credential {
    /// A fresh credential for `task_id`.
    pub fn generate<R: CryptoRng + ?Sized>(task_id: TaskId, rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self {
            task_id,
            client_id: ClientId::random(rng),
            secret,
        }
    }

    /// The task this credential is for.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// The client's id.
    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// The MAC key aggregator `index` registers for this client.
    pub fn key_for(&self, index: u8) -> ClientKey {
        // Invariant: HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(self.secret.as_ref()).expect("any key length");
        mac.update(b"cairn/2 client key");
        mac.update(&self.task_id.0);
        mac.update(&[index]);
        ClientKey(mac.finalize().into_bytes().into())
    }

    /// Checks that the credential is for `task_id`.
    pub fn check_task(&self, task_id: &TaskId) -> Result<(), AuthError> {
        if self.task_id == *task_id {
            Ok(())
        } else {
            Err(AuthError::WrongTask {
                credential: self.task_id,
                task: *task_id,
            })
        }
    }

    /// The credential file's text (TOML). It holds the secret.
    pub fn dangerous_to_toml(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# A Cairn client credential. Secret: readable by its owner only.\n\
             task_id = \"{}\"\nclient_id = \"{}\"\nsecret = \"{}\"\n",
            self.task_id.to_hex(),
            self.client_id.to_hex(),
            hex::encode(self.secret.as_ref())
        ))
    }

    /// Parses a credential file's text.
    pub fn from_toml(text: &str) -> Result<Self, AuthError> {
        let raw: RawCredential = toml::from_str(text).map_err(|e| {
            // toml's message may quote the offending line, which may hold the secret.
            AuthError::Parse(e.message().to_owned())
        })?;
        let mut task = [0u8; 32];
        hex::decode_to_slice(raw.task_id.trim(), &mut task)
            .map_err(|_| AuthError::Hex("task_id", 64))?;
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(raw.secret.0.trim(), secret.as_mut())
            .map_err(|_| AuthError::Hex("secret", 64))?;
        Ok(Self {
            task_id: TaskId(task),
            client_id: ClientId::from_hex(&raw.client_id)?,
            secret,
        })
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("task_id", &self.task_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An aggregator's record of a registered client.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client's MAC key at this aggregator.
    pub key: ClientKey,
    /// Whether the client was revoked (its reports are refused).
    pub revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ctx<'a>(
        task: &'a TaskId,
        client: &'a ClientId,
        report: &'a ReportId,
        public: &'a [u8],
        round: u32,
        aggregator: u8,
    ) -> TagContext<'a> {
        TagContext {
            task_id: task,
            client_id: client,
            round,
            report_id: report,
            public_share: public,
            aggregator,
        }
    }

    #[test]
    fn a_tag_verifies_only_for_its_aggregator_round_report_and_public_share() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let task = TaskId([1; 32]);
        let cred = Credential::generate(task, &mut rng);
        let id = cred.client_id();
        let report = ReportId([2; 16]);
        let other_report = ReportId([3; 16]);
        let public = [5u8; 40];
        let k1 = cred.key_for(1);
        let tag = k1.tag(&ctx(&task, &id, &report, &public, 7, 1));
        assert!(k1.verify(&ctx(&task, &id, &report, &public, 7, 1), &tag));
        // Anything else in the context changes the tag.
        assert!(!k1.verify(&ctx(&task, &id, &report, &public, 8, 1), &tag));
        assert!(!k1.verify(&ctx(&task, &id, &other_report, &public, 7, 1), &tag));
        assert!(!k1.verify(&ctx(&task, &id, &report, &[6u8; 40], 7, 1), &tag));
        assert!(!k1.verify(&ctx(&task, &id, &report, &public, 7, 2), &tag));
        let other_task = TaskId([4; 32]);
        assert!(!k1.verify(&ctx(&other_task, &id, &report, &public, 7, 1), &tag));
        let other_id = ClientId([8; 16]);
        assert!(!k1.verify(&ctx(&task, &other_id, &report, &public, 7, 1), &tag));
        // Another aggregator's key does not verify it; a short tag never does.
        assert!(
            !cred
                .key_for(0)
                .verify(&ctx(&task, &id, &report, &public, 7, 1), &tag)
        );
        assert!(!k1.verify(&ctx(&task, &id, &report, &public, 7, 1), &tag[..31]));
    }

    #[test]
    fn keys_are_bound_to_the_task_and_the_aggregator() {
        let mut rng = ChaCha20Rng::from_seed([10; 32]);
        let cred = Credential::generate(TaskId([1; 32]), &mut rng);
        assert_ne!(cred.key_for(0), cred.key_for(1));
        // The same secret bytes under another task id give other keys.
        let text = cred.dangerous_to_toml();
        let moved = text.replace(&TaskId([1; 32]).to_hex(), &TaskId([2; 32]).to_hex());
        let other = Credential::from_toml(&moved).unwrap();
        assert_eq!(other.client_id(), cred.client_id());
        assert_ne!(other.key_for(0), cred.key_for(0));
        assert!(other.check_task(&TaskId([1; 32])).is_err());
    }

    #[test]
    fn credential_files_round_trip_and_print_redacted() {
        let mut rng = ChaCha20Rng::from_seed([11; 32]);
        let cred = Credential::generate(TaskId([3; 32]), &mut rng);
        let back = Credential::from_toml(&cred.dangerous_to_toml()).unwrap();
        assert_eq!(back.client_id(), cred.client_id());
        assert_eq!(back.key_for(1), cred.key_for(1));
        let secret_hex = hex::encode(cred.secret.as_ref());
        assert!(!format!("{cred:?}").contains(&secret_hex));
        assert_eq!(format!("{:?}", cred.key_for(0)), "ClientKey(<redacted>)");
        // Bad files are refused with a message that does not echo the secret.
        let bad = cred.dangerous_to_toml().replace("secret", "secrte");
        let err = Credential::from_toml(&bad).unwrap_err().to_string();
        assert!(!err.contains(&secret_hex), "{err}");
        let short = cred.dangerous_to_toml().replace(&secret_hex, "abcd");
        assert_eq!(
            Credential::from_toml(&short).unwrap_err(),
            AuthError::Hex("secret", 64)
        );
    }
}
