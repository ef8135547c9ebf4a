//! `cairn-client`: the Cairn client SDK, over the network transport of
//! `cairn-transport`.
//!
//! - [`os_rng()`]: a CSPRNG seeded from the operating system.
//! - [`sdk`]: [`sdk::Client`] (submit updates) and [`sdk::Collector`] (release sums).

pub mod os_rng;
pub mod sdk;

pub use os_rng::os_rng;
