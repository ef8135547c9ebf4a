//! One client's `prepare_upload` (clip → encode → share → prove → seal) at a given d,
//! repeated: the whole client-side cost of a report, for `perf` and callgrind.
//!
//! ```sh
//! cargo build --release -p cairn-protocol --example profile_prepare
//! perf record -g target/release/examples/profile_prepare 100000 200
//! valgrind --tool=callgrind target/release/examples/profile_prepare 100000 1
//! valgrind --tool=callgrind target/release/examples/profile_prepare 100000 3
//! ```
//!
//! With callgrind, the difference of the two totals, halved, is one prepare's
//! instructions (the set-up cancels out). Arguments: d (default 100000), prepares
//! (default 1). The task is `cairn init`'s: b = 16, clip 1.0, BLAKE3 joint
//! randomness, no client noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::hpke::generate_keypair;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// The allocator of the binaries that prepare reports (`cairn-bench`, the Python
/// module): with glibc's malloc, report-sized buffers may be returned to the kernel
/// and faulted in again on every prepare, depending on the order of allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let d: usize = args.next().map_or(100_000, |a| a.parse().expect("d"));
    let prepares: usize = args.next().map_or(1, |a| a.parse().expect("prepares"));
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let client = client(d, &mut rng);
    // Uniform in the cube inscribed in the clip ball, as cairn-bench draws updates.
    let a = 1.0 / (d as f64).sqrt();
    let update: Vec<f32> = (0..d)
        .map(|_| ((2.0 * f64::from(rng.next_u32()) / f64::from(u32::MAX) - 1.0) * a) as f32)
        .collect();
    for _ in 0..prepares {
        std::hint::black_box(client.prepare_upload(0, &update, &mut rng).unwrap());
    }
}

/// A client of a two-aggregator task with the largest `frac_bits` whose norm bound
/// fits, as `cairn init` chooses it.
fn client(d: usize, rng: &mut ChaCha20Rng) -> Client {
    let keys: Vec<String> = (0..3).map(|_| generate_keypair(rng).1.to_hex()).collect();
    for frac_bits in (0..=14u8).rev() {
        let text = format!(
            "name = \"profile\"\ndimension = {d}\nbits = 16\nfrac_bits = {frac_bits}\n\
             clip_norm = 1.0\nproof = \"carry-lift\"\njoint_rand_hash = \"blake3\"\nmin_clients = 1\nmax_clients = 1000\n\
             round_duration_secs = 3600\n\n[privacy]\nnoise = \"none\"\n\n\
             [collector]\nhpke_public_key = \"{}\"\n\n\
             [[aggregators]]\nrole = \"leader\"\nendpoint = \"127.0.0.1:7000\"\n\
             tls_cert_sha256 = \"{}\"\nhpke_public_key = \"{}\"\n\n\
             [[aggregators]]\nrole = \"helper\"\nendpoint = \"127.0.0.1:7001\"\n\
             tls_cert_sha256 = \"{}\"\nhpke_public_key = \"{}\"\n",
            keys[0],
            "01".repeat(32),
            keys[1],
            "02".repeat(32),
            keys[2],
        );
        let Ok(task) = TaskConfig::from_toml(&text) else {
            continue;
        };
        let credential = Credential::generate(task.id(), rng);
        if let Ok(client) = Client::new(task, credential) {
            return client;
        }
    }
    panic!("no frac_bits gives a valid task at d = {d}");
}
