//! Loopback QUIC transport costs: one small request/response, one 1 MiB echo (both on
//! an open connection), and a fresh connection (QUIC + TLS 1.3 handshake, Ed25519,
//! pinned certificate).
//!
//! `cargo bench -p cairn-transport --bench transport -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use cairn_transport::{ClientAuth, ClientEndpoint, Identity, ServerEndpoint, TransportOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn transport(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = TransportOptions {
        max_frame_len: 4 << 20,
        ..TransportOptions::default()
    };
    let node = Identity::generate(&mut ChaCha20Rng::from_seed([1; 32]), &["localhost"]).unwrap();
    let (client, conn, addr) = rt.block_on(async {
        let server = ServerEndpoint::bind(
            "127.0.0.1:0".parse().unwrap(),
            &node,
            &ClientAuth::Anonymous,
            options.clone(),
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        let serving = server.clone();
        tokio::spawn(async move { serving.serve(|_peer, request| async move { request }).await });
        let client =
            ClientEndpoint::bind("127.0.0.1:0".parse().unwrap(), None, options.clone()).unwrap();
        let conn = client.connect(addr, node.fingerprint()).await.unwrap();
        (client, conn, addr)
    });

    let mut group = c.benchmark_group("transport");
    let small = vec![7u8; 64];
    group.throughput(Throughput::Elements(1));
    group.bench_function("request_64B", |b| {
        b.iter(|| rt.block_on(conn.request(black_box(&small))).unwrap())
    });

    let large = vec![7u8; 1 << 20];
    // Bytes moved per iteration: the request and its echo.
    group.throughput(Throughput::Bytes(2 << 20));
    group.bench_function("echo_1MiB", |b| {
        b.iter(|| rt.block_on(conn.request(black_box(&large))).unwrap())
    });

    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("connect_handshake", |b| {
        b.iter(|| {
            rt.block_on(async {
                let conn = client.connect(addr, node.fingerprint()).await.unwrap();
                conn.close();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, transport);
criterion_main!(benches);
