//! An aggregator's HPKE secret keys, and how they rotate.
//!
//! Clients seal each helper's input share to the key the task configuration names for
//! that helper (`hpke_public_key`). Rotating that key must not lose a report sealed by
//! a client that still holds the old configuration, and must not change the task: the
//! aggregators' HPKE keys are therefore *not* part of the task id (see
//! [`crate::config`]), so a rotation keeps the task's credentials and its ledger, and
//! cannot reset a privacy budget.
//!
//! A keyring holds one **active** key and up to [`MAX_HPKE_KEYS`]` − 1` others, each in
//! one of the states Janus uses for the same job (DAP's HPKE configurations):
//!
//! | state | in the task config? | opens shares? | why it exists |
//! |---|---|---|---|
//! | [`KeyState::Pending`] | not yet | yes | staged on every replica before any client can use it |
//! | [`KeyState::Active`] | yes | yes | the key clients seal to |
//! | [`KeyState::Expired`] | no longer | yes | clients holding the old config still succeed |
//!
//! A key that is removed from the ring no longer opens anything: that is the end of
//! the overlap. Nothing on the wire names the key; the helper tries the active key
//! first and then the others, so a share costs one extra X25519 operation per key tried
//! only while rotation overlaps, and at most [`MAX_HPKE_KEYS`] for a share that opens
//! under none (a report the job then rejects, as before). Which key opened a share
//! is not secret.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::hpke::{self, HpkeCiphertext, HpkeError, HpkePublicKey, HpkeSecretKey, SealPurpose};

/// The most keys a ring holds (one active, the rest pending or expired). It bounds the
/// work a share that opens under no key can cost.
pub const MAX_HPKE_KEYS: usize = 8;

/// Where a key is in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Staged: opens shares, not yet in the task configuration.
    Pending,
    /// The task configuration's key for this aggregator.
    Active,
    /// Retired: opens shares from clients holding an older task configuration.
    Expired,
}

impl KeyState {
    /// The lower-case name used in configuration files and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Expired => "expired",
        }
    }

    fn index(self) -> usize {
        match self {
            KeyState::Pending => 0,
            KeyState::Active => 1,
            KeyState::Expired => 2,
        }
    }
}

/// Errors of building a keyring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A second active key was added; a ring has exactly one.
    #[error("a keyring has exactly one active key; add others as pending or expired")]
    SecondActiveKey,
    /// The same key appears twice.
    #[error("the HPKE key {0:?} is in the keyring twice")]
    Duplicate(HpkePublicKey),
    /// More than [`MAX_HPKE_KEYS`] keys.
    #[error("a keyring holds at most {MAX_HPKE_KEYS} keys")]
    TooMany,
}

struct Entry {
    secret: HpkeSecretKey,
    public: HpkePublicKey,
    state: KeyState,
}

/// An aggregator's HPKE secret keys: one active, the others pending or expired.
///
/// Secret keys stay [`HpkeSecretKey`]s (zeroized on drop, never printed); `Debug`
/// shows only public keys and states.
pub struct HpkeKeyring {
    /// The active key first, then the others in the order they were added.
    entries: Vec<Entry>,
    /// Shares opened, by the state of the key that opened them (indexed by
    /// [`KeyState::index`]); shared, so a metrics exporter reads them while the ring
    /// is in use. The expired count is how an operator knows when clients have moved
    /// to the new configuration and the old key can leave the ring.
    opened: [Arc<AtomicU64>; 3],
}

impl HpkeKeyring {
    /// A ring of one key, `active`.
    pub fn new(active: HpkeSecretKey) -> Self {
        let public = active.public_key();
        Self {
            entries: vec![Entry {
                secret: active,
                public,
                state: KeyState::Active,
            }],
            opened: Default::default(),
        }
    }

    /// Adds a pending or an expired key.
    pub fn with(mut self, secret: HpkeSecretKey, state: KeyState) -> Result<Self, KeyringError> {
        if state == KeyState::Active {
            return Err(KeyringError::SecondActiveKey);
        }
        let public = secret.public_key();
        if self.entries.iter().any(|e| e.public == public) {
            return Err(KeyringError::Duplicate(public));
        }
        if self.entries.len() >= MAX_HPKE_KEYS {
            return Err(KeyringError::TooMany);
        }
        self.entries.push(Entry {
            secret,
            public,
            state,
        });
        Ok(self)
    }

    /// The active key's public half: what the task configuration must name.
    pub fn active_public_key(&self) -> HpkePublicKey {
        self.entries[0].public
    }

    /// Every key's public half and state, active first.
    pub fn keys(&self) -> impl Iterator<Item = (HpkePublicKey, KeyState)> + '_ {
        self.entries.iter().map(|e| (e.public, e.state))
    }

    /// How many shares keys in `state` have opened since the ring was built.
    pub fn opened_counter(&self, state: KeyState) -> Arc<AtomicU64> {
        Arc::clone(&self.opened[state.index()])
    }

    /// Opens `ciphertext` (see [`hpke::open`]) under the first key it opens under,
    /// trying the active key first, and says which state that key is in.
    pub fn open(
        &self,
        purpose: SealPurpose,
        aad: &[u8],
        ciphertext: &HpkeCiphertext,
    ) -> Result<(Zeroizing<Vec<u8>>, KeyState), HpkeError> {
        let mut error = HpkeError::OpenFailed;
        for entry in &self.entries {
            match hpke::open(&entry.secret, purpose, aad, ciphertext) {
                Ok(plain) => {
                    self.opened[entry.state.index()].fetch_add(1, Ordering::Relaxed);
                    return Ok((plain, entry.state));
                }
                // A malformed encapsulated key fails under every key alike.
                Err(HpkeError::MalformedKey) => return Err(HpkeError::MalformedKey),
                Err(e) => error = e,
            }
        }
        Err(error)
    }
}

impl From<HpkeSecretKey> for HpkeKeyring {
    fn from(active: HpkeSecretKey) -> Self {
        Self::new(active)
    }
}

impl core::fmt::Debug for HpkeKeyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (e.state, e.public)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn seal_to(pk: &HpkePublicKey, rng: &mut ChaCha20Rng) -> HpkeCiphertext {
        hpke::seal(pk, SealPurpose::HelperInputShare, b"aad", b"share", rng).unwrap()
    }

    #[test]
    fn every_key_in_the_ring_opens_and_says_its_state() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let (old, old_pk) = hpke::generate_keypair(&mut rng);
        let (new, new_pk) = hpke::generate_keypair(&mut rng);
        let (next, next_pk) = hpke::generate_keypair(&mut rng);
        let (_, stranger_pk) = hpke::generate_keypair(&mut rng);
        let ring = HpkeKeyring::new(new)
            .with(old, KeyState::Expired)
            .unwrap()
            .with(next, KeyState::Pending)
            .unwrap();
        assert_eq!(ring.active_public_key(), new_pk);
        for (pk, state) in [
            (new_pk, KeyState::Active),
            (old_pk, KeyState::Expired),
            (next_pk, KeyState::Pending),
        ] {
            let ct = seal_to(&pk, &mut rng);
            let (plain, opened_by) = ring
                .open(SealPurpose::HelperInputShare, b"aad", &ct)
                .unwrap();
            assert_eq!(plain.as_slice(), b"share");
            assert_eq!(opened_by, state);
            // The binding to purpose and associated data holds under every key.
            assert_eq!(
                ring.open(SealPurpose::HelperInputShare, b"other", &ct),
                Err(HpkeError::OpenFailed)
            );
            assert_eq!(
                ring.open(SealPurpose::AggregateShare, b"aad", &ct),
                Err(HpkeError::OpenFailed)
            );
        }
        for state in [KeyState::Pending, KeyState::Active, KeyState::Expired] {
            assert_eq!(ring.opened_counter(state).load(Ordering::Relaxed), 1);
        }
        let ct = seal_to(&stranger_pk, &mut rng);
        assert_eq!(
            ring.open(SealPurpose::HelperInputShare, b"aad", &ct),
            Err(HpkeError::OpenFailed)
        );
    }

    #[test]
    fn a_removed_key_opens_nothing() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let (old, old_pk) = hpke::generate_keypair(&mut rng);
        let (new, _) = hpke::generate_keypair(&mut rng);
        let old_copy = HpkeSecretKey::from_hex(&old.dangerous_to_hex()).unwrap();
        let ct = seal_to(&old_pk, &mut rng);
        let during = HpkeKeyring::new(HpkeSecretKey::from_hex(&new.dangerous_to_hex()).unwrap())
            .with(old_copy, KeyState::Expired)
            .unwrap();
        assert!(
            during
                .open(SealPurpose::HelperInputShare, b"aad", &ct)
                .is_ok()
        );
        let after = HpkeKeyring::new(new);
        assert_eq!(
            after.open(SealPurpose::HelperInputShare, b"aad", &ct),
            Err(HpkeError::OpenFailed)
        );
    }

    #[test]
    fn a_ring_has_one_active_key_no_duplicate_and_a_bound() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let (a, _) = hpke::generate_keypair(&mut rng);
        let (b, _) = hpke::generate_keypair(&mut rng);
        let a_again = HpkeSecretKey::from_hex(&a.dangerous_to_hex()).unwrap();
        let ring = HpkeKeyring::new(a);
        assert_eq!(
            HpkeKeyring::new(HpkeSecretKey::from_hex(&b.dangerous_to_hex()).unwrap())
                .with(b, KeyState::Active)
                .unwrap_err(),
            KeyringError::SecondActiveKey
        );
        let pk = a_again.public_key();
        assert_eq!(
            ring.with(a_again, KeyState::Expired).unwrap_err(),
            KeyringError::Duplicate(pk)
        );
        let mut full = HpkeKeyring::new(hpke::generate_keypair(&mut rng).0);
        for _ in 1..MAX_HPKE_KEYS {
            full = full
                .with(hpke::generate_keypair(&mut rng).0, KeyState::Expired)
                .unwrap();
        }
        assert_eq!(
            full.with(hpke::generate_keypair(&mut rng).0, KeyState::Pending)
                .unwrap_err(),
            KeyringError::TooMany
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let (sk, pk) = hpke::generate_keypair(&mut rng);
        let secret_hex = sk.dangerous_to_hex();
        let printed = format!("{:?}", HpkeKeyring::new(sk));
        assert!(printed.contains(&pk.to_hex()));
        assert!(!printed.contains(&secret_hex[..16]));
    }
}
