//! The server's UDP socket, with a receive buffer sized for many uploads at once.
//!
//! quinn reads datagrams from one socket; between two reads the kernel queues them in
//! the socket's receive buffer, and drops what does not fit. Linux's default buffer
//! (`net.core.rmem_default`, 208 KiB) holds about 150 full-size datagrams, which a few
//! hundred clients uploading ~1 MiB reports at once overrun while the endpoint's
//! thread is busy: `cairn-bench`'s 1,000-client round lost one coalesced datagram in
//! thirteen there (`RcvbufErrors` in `/proc/net/snmp`). A lost datagram is sent again,
//! and QUIC's congestion control takes the loss as congestion and slows its sender.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds a UDP socket at `addr` and asks for a receive buffer of `bytes` (0: leave the
/// system's default). The kernel may give less (Linux caps the request at
/// `net.core.rmem_max`): that is logged, not an error. Returns the socket and the
/// buffer size the kernel reports.
pub(crate) fn bind_with_receive_buffer(
    addr: SocketAddr,
    bytes: usize,
) -> io::Result<(UdpSocket, usize)> {
    let socket = UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    if bytes > 0
        && let Err(e) = state.set_recv_buffer_size((&socket).into(), bytes)
    {
        tracing::warn!(error = %e, bytes, "could not set the UDP receive buffer");
    }
    let granted = state.recv_buffer_size((&socket).into())?;
    // Linux doubles the value it is given (its bookkeeping overhead) and reports that.
    if bytes > 0 && granted < bytes {
        tracing::info!(
            asked = bytes,
            granted,
            "the kernel gave a smaller UDP receive buffer than asked (raise \
             net.core.rmem_max for many concurrent uploads)"
        );
    }
    Ok((socket, granted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_receive_buffer_grows_as_far_as_the_kernel_allows() {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let (_, default) = bind_with_receive_buffer(local, 0).unwrap();
        let (_, small) = bind_with_receive_buffer(local, 64 << 10).unwrap();
        let (socket, large) = bind_with_receive_buffer(local, 8 << 20).unwrap();
        assert!(socket.local_addr().unwrap().port() != 0);
        // The kernel rounds and caps, but a larger request never gets less, and
        // (on Linux, whose cap is at least its default) 8 MiB gets at least the default.
        assert!(large >= small, "{large} < {small}");
        assert!(large >= default, "{large} < {default}");
        // Where the kernel allows more than its default, the request is honoured.
        let sysctl = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        if let (Some(max), Some(system_default)) = (sysctl("rmem_max"), sysctl("rmem_default"))
            && max > system_default
        {
            assert!(
                large > default,
                "asked 8 MiB, got {large} (default {default})"
            );
        }
    }
}
