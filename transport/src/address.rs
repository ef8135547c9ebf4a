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
//! An address here is what costs an attacker one more address to own: an IPv4 address,
//! or an IPv6 /64 (one subscriber's prefix, RFC 6177; a host on it can take any of its
//! 2^64 addresses). An IPv4-mapped IPv6 address counts as its IPv4 address.
//!
//! Only connections whose handshake has completed are counted. A handshake completes
//! only for a peer that receives at its address, so a flood from spoofed addresses
//! cannot use up a victim address's connections (the server's Retry handles those
//! floods, `server`). Peers with a pinned certificate are not counted: they are
//! authenticated, and have their own limits (`PINNED_FULL_CONNECTIONS`).
//!
//! A botnet of many addresses is not stopped by this; `max_connections` and the
//! request limits still bound what it costs the server.

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
    share: Arc<AddressShare>,
}

/// The anonymous connections of every source address, and their shares.
#[derive(Debug)]
pub(crate) struct Addresses {
    entries: Mutex<HashMap<AddressKey, Entry>>,
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
            entries: Mutex::default(),
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
        let key = AddressKey::of(ip);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry(key).or_insert_with(|| Entry {
            connections: 0,
            share: Arc::new(AddressShare {
                requests: Arc::new(Semaphore::new(self.requests)),
                memory: Arc::new(Semaphore::new(self.memory_kib)),
            }),
        });
        if entry.connections >= self.max_connections {
            return None;
        }
        entry.connections += 1;
        Some(AddressSlot {
            addresses: Arc::clone(self),
            key,
            share: Arc::clone(&entry.share),
        })
    }

    /// Addresses with at least one counted connection.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One counted connection of an address; see [`Addresses::admit`].
#[derive(Debug)]
pub(crate) struct AddressSlot {
    addresses: Arc<Addresses>,
    key: AddressKey,
    share: Arc<AddressShare>,
}

impl AddressSlot {
    /// The address's share, which this connection's requests take from first.
    pub(crate) fn share(&self) -> &Arc<AddressShare> {
        &self.share
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut entries = self
            .addresses
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.connections -= 1;
            // The share goes with the address's last connection; requests still running
            // keep their permits (the semaphore lives on in their `Arc`s).
            if entry.connections == 0 {
                entries.remove(&self.key);
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
