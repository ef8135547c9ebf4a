//! What one source address may hold of a server: connections, request slots, request
//! memory.
//!
//! Anonymous peers (clients at a leader) are anyone. Without a bound per address, one
//! host could open `max_connections` connections, or hold every request slot and all of
//! the request memory with requests it sends slowly (a slow-loris), and every other
//! client would be answered `Busy` until the attacker's requests time out, again and
//! again. So an anonymous peer's connections are counted per source address, and its
//! requests take their slots and memory from its address's share first
//! ([`TransportOptions::max_connections_per_address`],
//! [`TransportOptions::address_share_percent`]).
//!
//! An address here is an IPv4 address or an IPv6 /64; an IPv4-mapped IPv6 address
//! counts as its IPv4 address. A host given a larger IPv6 prefix (a /56 or /48, as
//! RFC 6177 recommends for a site) has 2^8 or 2^16 such addresses, and so many shares:
//! these limits bound what one address takes, not one attacker.
//!
//! When a connection is counted:
//! - an attempt whose address is proved (it answered a Retry) is counted as it is
//!   accepted, so a host cannot hold slots with handshakes it stalls;
//! - any other attempt is counted when its handshake ends, which only a peer that
//!   receives at its address achieves: an off-path attacker spoofing a victim's address
//!   cannot use up the victim's count. (An on-path one that copies the victim's Retry
//!   token, valid 15 s for its address and port, can, while it keeps doing so.)
//! - a connection stays counted for `address_linger` (plus 15 round trips) after it
//!   closed, because quinn keeps a closed connection in its table (against
//!   `max_connections`) for three probe timeouts, which a peer can stretch to about
//!   50 s by advertising a long ack delay, and further by delaying its
//!   acknowledgements; a failed handshake stays counted as well (as a handshake in
//!   progress, and against its address if it had a place).
//!
//! An address at its limit gets no new connection: an unproved attempt is sent a Retry
//! (stateless), a proved one is refused, except that a server which also takes pinned
//! peers lets [`ON_PROBATION`] proved attempts at a time through their handshake, since
//! only it tells a pinned peer (the collector, on a host shared with clients) from a
//! client; a client let through is closed and keeps its probation for the linger.
//! Peers with a pinned certificate are not counted once known; but a client on the
//! collector's address that keeps it full and takes the probations keeps the collector
//! out while it does so.
//!
//! Many addresses (a botnet) are not stopped by this; `max_connections` and the
//! request limits still bound what they cost the server.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;

use crate::endpoint::TransportOptions;

/// The part of a source address that one peer is assumed to control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4([u8; 4]),
    /// The first 64 bits.
    V6Prefix([u8; 8]),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => AddressKey::V6Prefix(prefix64(&v6)),
            },
        }
    }
}

fn prefix64(v6: &Ipv6Addr) -> [u8; 8] {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&v6.octets()[..8]);
    prefix
}

/// An address's share of the request limits, held by each of its connections.
#[derive(Debug)]
pub(crate) struct AddressShare {
    /// Request slots the address's requests may hold at once.
    pub(crate) requests: Arc<Semaphore>,
    /// Request memory (KiB permits) the address's requests may hold at once.
    pub(crate) memory: Arc<Semaphore>,
}

#[derive(Debug)]
struct Entry {
    connections: usize,
    /// Attempts let in past the limit, to learn whether they are pinned peers
    /// ([`Addresses::admit_on_probation`]).
    on_probation: usize,
    share: Arc<AddressShare>,
}

impl Entry {
    /// Whether requests still hold (or wait for) permits of the share: requests may
    /// outlive their connection (waiting for memory up to `busy_after`, or in the
    /// handler), and the address must not get a fresh share meanwhile.
    fn unused(&self) -> bool {
        self.connections == 0 && self.on_probation == 0 && !self.share_in_use()
    }

    fn share_in_use(&self) -> bool {
        Arc::strong_count(&self.share.requests) > 1 || Arc::strong_count(&self.share.memory) > 1
    }
}

/// The entries, and when to next sweep out those left without connections.
#[derive(Debug)]
struct Table {
    entries: HashMap<AddressKey, Entry>,
    sweep_at: usize,
}

/// Entries kept before the first sweep of those without connections.
const FIRST_SWEEP: usize = 1024;

/// The anonymous connections of every source address, and their shares.
#[derive(Debug)]
pub(crate) struct Addresses {
    table: Mutex<Table>,
    max_connections: usize,
    requests: usize,
    memory_kib: usize,
}

impl Addresses {
    /// An address may keep `options.max_connections_per_address` connections, and hold
    /// `address_share_percent` of the `anonymous_requests` slots (at least one) and of
    /// the `anonymous_memory_kib` (at least one largest frame, `frame_kib`, if that
    /// fits at all).
    pub(crate) fn new(
        options: &TransportOptions,
        anonymous_requests: usize,
        anonymous_memory_kib: usize,
        frame_kib: usize,
    ) -> Self {
        let share = |whole: usize| whole.saturating_mul(options.address_share_percent.into()) / 100;
        Self {
            table: Mutex::new(Table {
                entries: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
            max_connections: options.max_connections_per_address,
            requests: share(anonymous_requests).max(1),
            memory_kib: share(anonymous_memory_kib)
                .max(frame_kib.min(anonymous_memory_kib))
                .max(1),
        }
    }

    /// Counts a connection from `ip`, if its address has fewer than the limit; the
    /// returned slot uncounts it when dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        self.take(ip, false)
    }

    /// Lets in an attempt from `ip` whose address is at its limit, if fewer than
    /// [`ON_PROBATION`] are: on a server that also takes pinned peers, the attempt may
    /// be one (the collector on a host shared with clients), which only its handshake
    /// tells. An anonymous one is then closed; its slot should be kept for the linger,
    /// like a closed connection's, so that a host cannot churn through probations.
    pub(crate) fn admit_on_probation(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        self.take(ip, true)
    }

    fn take(self: &Arc<Self>, ip: IpAddr, probation: bool) -> Option<AddressSlot> {
        let key = AddressKey::of(ip);
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        // Entries whose last connection closed while requests still held their share
        // stay until swept here, amortised over the entries added since the last sweep.
        if table.entries.len() >= table.sweep_at {
            table.entries.retain(|_, entry| !entry.unused());
            table.sweep_at = (2 * table.entries.len()).max(FIRST_SWEEP);
        }
        let entry = table.entries.entry(key).or_insert_with(|| Entry {
            connections: 0,
            on_probation: 0,
            share: Arc::new(AddressShare {
                requests: Arc::new(Semaphore::new(self.requests)),
                memory: Arc::new(Semaphore::new(self.memory_kib)),
            }),
        });
        if probation {
            if entry.on_probation >= ON_PROBATION {
                return None;
            }
            entry.on_probation += 1;
        } else {
            if entry.connections >= self.max_connections {
                return None;
            }
            entry.connections += 1;
        }
        Some(AddressSlot {
            addresses: Arc::clone(self),
            key,
            probation,
            share: Arc::clone(&entry.share),
        })
    }

    /// Whether `ip`'s address has its limit of connections.
    pub(crate) fn is_full(&self, ip: IpAddr) -> bool {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .entries
            .get(&AddressKey::of(ip))
            .is_some_and(|entry| entry.connections >= self.max_connections)
    }

    /// Addresses with an entry.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

/// Attempts from one address let in past its limit at once (or lingering after), to
/// tell pinned peers from anonymous ones ([`Addresses::admit_on_probation`]).
pub(crate) const ON_PROBATION: usize = 8;

/// One counted connection of an address; see [`Addresses::admit`].
#[derive(Debug)]
pub(crate) struct AddressSlot {
    addresses: Arc<Addresses>,
    key: AddressKey,
    probation: bool,
    share: Arc<AddressShare>,
}

impl AddressSlot {
    /// Whether this is a slot on probation, past the address's limit.
    pub(crate) fn on_probation(&self) -> bool {
        self.probation
    }

    /// The address's share, which this connection's requests take from first.
    pub(crate) fn share(&self) -> &Arc<AddressShare> {
        &self.share
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut table = self
            .addresses
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = table.entries.get_mut(&self.key) {
            if self.probation {
                entry.on_probation -= 1;
            } else {
                entry.connections -= 1;
            }
            // The share goes with the address's last connection, unless requests still
            // hold it (then a later sweep removes it).
            if entry.unused() {
                table.entries.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(max_connections: usize) -> Arc<Addresses> {
        let options = TransportOptions {
            max_connections_per_address: max_connections,
            address_share_percent: 25,
            ..TransportOptions::default()
        };
        Arc::new(Addresses::new(&options, 200, 100_000, 3_072))
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address_and_a_mapped_ipv4_its_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::of(a), AddressKey::of(b));
        assert_ne!(AddressKey::of(a), AddressKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(AddressKey::of(mapped), AddressKey::of(v4));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_ne!(AddressKey::of(other), AddressKey::of(v4));
    }

    #[test]
    fn an_address_keeps_its_limit_of_connections_and_gets_them_back_when_closed() {
        let addresses = addresses(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = addresses.admit(ip).expect("first");
        let second = addresses.admit(ip).expect("second");
        assert!(
            addresses.admit(ip).is_none(),
            "a third connection was admitted"
        );
        // Another address is not affected.
        let elsewhere = addresses.admit("192.0.2.2".parse().unwrap());
        assert!(elsewhere.is_some());
        // The connections of one address share one share.
        assert!(Arc::ptr_eq(first.share(), second.share()));
        drop(first);
        assert!(
            addresses.admit(ip).is_some(),
            "a closed connection's slot stayed taken"
        );
        drop((second, elsewhere));
        assert_eq!(addresses.len(), 0, "addresses without connections are kept");
    }

    #[test]
    fn a_share_still_held_by_requests_outlives_the_last_connection() {
        let addresses = addresses(4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let slot = addresses.admit(ip).unwrap();
        // A request of the connection holds the whole share of slots, and outlives it.
        let held = Arc::clone(&slot.share().requests)
            .try_acquire_many_owned(50)
            .unwrap();
        drop(slot);
        assert!(!addresses.is_full(ip));
        // A new connection of the address gets the same share, not a fresh one.
        let again = addresses.admit(ip).unwrap();
        assert_eq!(again.share().requests.available_permits(), 0);
        drop((again, held));
        // Once released and closed, the entry goes (at the next sweep, if not at once).
        let slot = addresses.admit(ip).unwrap();
        drop(slot);
        assert_eq!(addresses.len(), 0);
    }

    #[test]
    fn entries_left_by_requests_are_swept() {
        let addresses = addresses(4);
        let mut held = Vec::new();
        for i in 0..FIRST_SWEEP as u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let slot = addresses.admit(ip).unwrap();
            held.push(
                Arc::clone(&slot.share().memory)
                    .try_acquire_owned()
                    .unwrap(),
            );
        }
        assert_eq!(addresses.len(), FIRST_SWEEP);
        drop(held);
        // The next admission sweeps the entries nothing holds any more.
        let _slot = addresses.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(addresses.len(), 1);
    }

    #[test]
    fn a_full_address_gets_a_few_attempts_on_probation() {
        let addresses = addresses(1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _connection = addresses.admit(ip).unwrap();
        let probations: Vec<_> = (0..ON_PROBATION)
            .map(|_| addresses.admit_on_probation(ip).expect("on probation"))
            .collect();
        assert!(probations.iter().all(AddressSlot::on_probation));
        assert!(addresses.admit_on_probation(ip).is_none());
        assert!(
            addresses.admit(ip).is_none(),
            "probation took a connection's place"
        );
        drop(probations);
        assert!(addresses.admit_on_probation(ip).is_some());
    }

    #[test]
    fn an_address_is_full_at_its_limit() {
        let addresses = addresses(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!addresses.is_full(ip));
        let _first = addresses.admit(ip).unwrap();
        assert!(!addresses.is_full(ip));
        let _second = addresses.admit(ip).unwrap();
        assert!(addresses.is_full(ip));
        assert!(!addresses.is_full("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn an_address_share_is_a_percentage_with_room_for_one_request_of_the_largest_frame() {
        let addresses = addresses(4);
        let slot = addresses.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(slot.share().requests.available_permits(), 50);
        assert_eq!(slot.share().memory.available_permits(), 25_000);
        // A tiny share still takes one largest frame (when the whole takes it).
        let options = TransportOptions {
            address_share_percent: 1,
            ..TransportOptions::default()
        };
        let small = Arc::new(Addresses::new(&options, 10, 10_000, 3_072));
        let slot = small.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(slot.share().requests.available_permits(), 1);
        assert_eq!(slot.share().memory.available_permits(), 3_072);
    }
}
