//! Length-prefixed frames: one request and one response per QUIC bidirectional stream.
//!
//! On the wire, each direction of a stream carries exactly one frame and then ends:
//!
//! ```text
//! length: u32, little-endian (the byte order of Cairn's codec) ‖ frame: `length` bytes ‖ FIN
//! ```
//!
//! The frame is an encoded protocol message (`cairn_protocol::messages::Message`); the
//! transport does not look inside. [`read_frame`] checks the announced length against the
//! caller's limit (for a task, `Limits::max_frame_len()`) **before** allocating the
//! buffer, so a peer cannot make a node allocate more than the limit by lying in the
//! prefix; it then requires the stream to end (trailing bytes are an error). Both
//! directions run under a timeout, so a stalled peer cannot hold a task forever.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{TimeoutKind, TransportError, from_connection_error};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Reads one frame of at most `max_len` bytes, then the end of the stream.
///
/// Errors: [`TransportError::FrameTooLarge`] if the prefix announces more than `max_len`
/// (nothing is allocated and the body is not read), [`TransportError::UnexpectedEof`] if
/// the stream ends inside the prefix or the body, [`TransportError::TrailingBytes`] if
/// more bytes follow the frame, [`TransportError::Timeout`] (kind `Read`) if all this
/// takes longer than `timeout`, [`TransportError::Closed`] if the stream or connection is
/// reset or lost.
pub async fn read_frame<R: AsyncRead + Unpin + ?Sized>(
    recv: &mut R,
    max_len: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    tokio::time::timeout(timeout, read_frame_untimed(recv, max_len))
        .await
        .map_err(|_| TransportError::Timeout {
            kind: TimeoutKind::Read,
            after: timeout,
        })?
}

/// [`read_frame`] without its timeout (for a caller that times the read itself).
async fn read_frame_untimed<R: AsyncRead + Unpin + ?Sized>(
    recv: &mut R,
    max_len: usize,
) -> Result<Vec<u8>, TransportError> {
    let len = read_frame_len(recv, max_len).await?;
    read_frame_body(recv, len).await
}

/// Reads a frame's length prefix and checks it against `max_len`; nothing is allocated.
/// With [`read_frame_body`], the two halves of [`read_frame`] (without its timeout), for
/// a server that decides between them whether it has room for the frame.
pub async fn read_frame_len<R: AsyncRead + Unpin + ?Sized>(
    recv: &mut R,
    max_len: usize,
) -> Result<u32, TransportError> {
    let mut prefix = [0u8; LENGTH_PREFIX_LEN];
    recv.read_exact(&mut prefix).await.map_err(read_io_err)?;
    let len = u32::from_le_bytes(prefix);
    // u32 → usize is lossless on the 32- and 64-bit targets Cairn supports; compare as
    // u64 so the check holds on any width.
    if u64::from(len) > max_len as u64 {
        return Err(TransportError::FrameTooLarge {
            len: u64::from(len),
            max: max_len,
        });
    }
    Ok(len)
}

/// Reads the `len` bytes of a frame whose prefix [`read_frame_len`] checked, then the
/// end of the stream.
pub async fn read_frame_body<R: AsyncRead + Unpin + ?Sized>(
    recv: &mut R,
    len: u32,
) -> Result<Vec<u8>, TransportError> {
    // Read into spare capacity: zero-filling a ~1 MiB buffer that is about to be
    // overwritten showed in profiles. The spare capacity is exactly what is left of the
    // frame, so no read goes past it.
    let len = len as usize;
    let mut frame = Vec::with_capacity(len);
    while frame.len() < len {
        if recv.read_buf(&mut frame).await.map_err(read_io_err)? == 0 {
            return Err(TransportError::UnexpectedEof);
        }
    }
    let mut probe = [0u8; 1];
    if recv.read(&mut probe).await.map_err(read_io_err)? != 0 {
        return Err(TransportError::TrailingBytes);
    }
    Ok(frame)
}

/// Writes one frame (length prefix and bytes) and flushes. The caller then ends the
/// stream (`SendStream::finish` for QUIC).
///
/// Errors: [`TransportError::FrameTooLarge`] if `frame` is longer than `u32::MAX` bytes,
/// [`TransportError::Timeout`] (kind `Write`) after `timeout`, [`TransportError::Closed`]
/// if the peer stopped the stream or the connection is lost.
pub async fn write_frame<W: AsyncWrite + Unpin + ?Sized>(
    send: &mut W,
    frame: &[u8],
    timeout: Duration,
) -> Result<(), TransportError> {
    let len = u32::try_from(frame.len()).map_err(|_| TransportError::FrameTooLarge {
        len: frame.len() as u64,
        max: u32::MAX as usize,
    })?;
    let write = async {
        send.write_all(&len.to_le_bytes()).await?;
        send.write_all(frame).await?;
        send.flush().await
    };
    tokio::time::timeout(timeout, write)
        .await
        .map_err(|_| TransportError::Timeout {
            kind: TimeoutKind::Write,
            after: timeout,
        })?
        .map_err(write_io_err)
}

/// The instant `after` from now; a duration too long to add (no timeout meant) gives
/// a deadline a century away instead of overflowing.
pub(crate) fn deadline_after(after: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// How [`exchange`] ended.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The response frame, or why there is none.
    pub response: Result<Vec<u8>, TransportError>,
    /// Whether the whole request was written (and `finish` called) before the
    /// response came; if not, the caller abandons the rest of the request.
    pub written: bool,
}

/// A client's half of one stream: writes the `request` frame, then `finish`es the
/// sending side, **while** reading the response of at most `max_response_len` bytes.
///
/// The response is read concurrently because a server may answer before it has read
/// the request: a server with no room for a request answers busy and stops reading
/// it, and the client's write then stays blocked on flow control. The answer must not
/// wait for that write to notice (under load, quinn was seen not to wake such a
/// writer before its timeout, 30 s later). A write refused with `STREAM_BUSY` counts as
/// written (the busy answer follows); any other write error is returned.
///
/// Timeouts: the write has `timeout`, and the response `timeout` from the end of the
/// write.
pub(crate) async fn exchange<W, R>(
    send: &mut W,
    recv: &mut R,
    request: &[u8],
    max_response_len: usize,
    timeout: Duration,
    finish: impl FnOnce(&mut W) -> Result<(), TransportError>,
) -> Exchange
where
    W: AsyncWrite + Unpin + ?Sized,
    R: AsyncRead + Unpin + ?Sized,
{
    let write = async {
        match write_frame(send, request, timeout).await {
            Ok(()) => finish(send),
            Err(TransportError::StreamRefused { code })
                if code == u64::from(crate::server::STREAM_BUSY) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    let read = read_frame_untimed(recv, max_response_len);
    let read_deadline = tokio::time::sleep_until(deadline_after(timeout));
    tokio::pin!(write, read, read_deadline);
    let mut written = false;
    loop {
        tokio::select! {
            response = &mut read => return Exchange { response, written },
            outcome = &mut write, if !written => {
                if let Err(e) = outcome {
                    return Exchange { response: Err(e), written };
                }
                written = true;
                read_deadline.as_mut().reset(deadline_after(timeout));
            }
            () = &mut read_deadline, if written => {
                let response = Err(TransportError::Timeout { kind: TimeoutKind::Read, after: timeout });
                return Exchange { response, written };
            }
        }
    }
}

fn read_io_err(e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => TransportError::UnexpectedEof,
        _ => stream_io_err(e),
    }
}

fn write_io_err(e: io::Error) -> TransportError {
    stream_io_err(e)
}

/// quinn reports stream resets and lost connections as `io::Error`s wrapping its own
/// error types in its tokio I/O impls: a reset or stop by the peer is
/// [`TransportError::StreamRefused`], a lost connection is mapped by its cause.
fn stream_io_err(e: io::Error) -> TransportError {
    if let Some(inner) = e.get_ref() {
        if let Some(read) = inner.downcast_ref::<quinn::ReadError>() {
            match read {
                quinn::ReadError::Reset(code) => {
                    return TransportError::StreamRefused {
                        code: code.into_inner(),
                    };
                }
                quinn::ReadError::ConnectionLost(lost) => {
                    return from_connection_error(lost.clone());
                }
                _ => {}
            }
        }
        if let Some(write) = inner.downcast_ref::<quinn::WriteError>() {
            match write {
                quinn::WriteError::Stopped(code) => {
                    return TransportError::StreamRefused {
                        code: code.into_inner(),
                    };
                }
                quinn::WriteError::ConnectionLost(lost) => {
                    return from_connection_error(lost.clone());
                }
                _ => {}
            }
        }
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::BrokenPipe => TransportError::Closed(e.to_string()),
        _ => TransportError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// A server end that reads only the request's length prefix, then answers `answer`
    /// without reading the body (as a server with no room for it does).
    async fn answer_unread<S: AsyncRead + AsyncWrite + Unpin>(mut server: S, answer: &[u8]) {
        read_frame_len(&mut server, usize::MAX).await.unwrap();
        write_frame(&mut server, answer, T).await.unwrap();
        server.shutdown().await.unwrap();
        // Keep the pipe open, unread, as a server waiting on its own timeout would.
        std::future::pending::<()>().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_before_the_request_is_read_arrives_while_the_write_is_blocked() {
        // 64-byte pipes: the 64 KiB request blocks the write after 64 bytes.
        let (mut client, server) = tokio::io::duplex(64);
        tokio::spawn(answer_unread(server, b"busy"));
        let (mut reader, mut writer) = tokio::io::split(&mut client);
        let started = tokio::time::Instant::now();
        let exchange = exchange(&mut writer, &mut reader, &[1; 65536], 16, T, |_| Ok(())).await;
        assert_eq!(exchange.response.unwrap(), b"busy");
        assert!(!exchange.written);
        assert!(
            started.elapsed() < T,
            "the answer waited for the write's timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_has_its_timeout_from_the_end_of_the_write() {
        // The server reads the whole request, then answers only after 1.5 timeouts:
        // more than the response's own timeout from the request's start, less from the
        // end of a write that took a timeout's 0.9.
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let len = read_frame_len(&mut server, usize::MAX).await.unwrap();
            let mut body = vec![0u8; len as usize];
            for chunk in body.chunks_mut(1024) {
                server.read_exact(chunk).await.unwrap();
                tokio::time::sleep(T * 9 / 10 / 64).await;
            }
            tokio::time::sleep(T * 6 / 10).await;
            write_frame(&mut server, b"done", T).await.unwrap();
            server.shutdown().await.unwrap();
        });
        let (mut reader, mut writer) = tokio::io::split(&mut client);
        let exchange = exchange(&mut writer, &mut reader, &[2; 65536], 16, T, |_| Ok(())).await;
        assert_eq!(exchange.response.unwrap(), b"done");
        assert!(exchange.written);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_that_never_comes_times_out_after_the_write() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let _ = read_frame(&mut server, usize::MAX, T * 10).await;
            std::future::pending::<()>().await;
        });
        let (mut reader, mut writer) = tokio::io::split(&mut client);
        let exchange = exchange(&mut writer, &mut reader, b"ping", 16, T, |_| Ok(())).await;
        assert!(exchange.written);
        assert!(
            matches!(
                exchange.response,
                Err(TransportError::Timeout {
                    kind: TimeoutKind::Read,
                    ..
                })
            ),
            "{:?}",
            exchange.response
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_long_to_add_to_the_clock_does_not_panic() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            read_frame_len(&mut server, usize::MAX).await.unwrap();
            write_frame(&mut server, b"pong", T).await.unwrap();
            server.shutdown().await.unwrap();
            std::future::pending::<()>().await;
        });
        let (mut reader, mut writer) = tokio::io::split(&mut client);
        let exchange = exchange(&mut writer, &mut reader, b"ping", 16, Duration::MAX, |_| {
            Ok(())
        })
        .await;
        assert!(exchange.written);
        assert_eq!(exchange.response.unwrap(), b"pong");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_error_other_than_busy_is_returned() {
        let (mut client, server) = tokio::io::duplex(64);
        drop(server);
        let (mut reader, mut writer) = tokio::io::split(&mut client);
        let exchange = exchange(&mut writer, &mut reader, &[3; 1024], 16, T, |_| Ok(())).await;
        assert!(exchange.response.is_err());
        assert!(!exchange.written);
    }

    #[tokio::test]
    async fn roundtrip_through_a_buffer() {
        for body in [&b""[..], b"x", &[7u8; 1000]] {
            let mut wire = Vec::new();
            write_frame(&mut wire, body, T).await.unwrap();
            assert_eq!(wire, framed(body));
            let got = read_frame(&mut wire.as_slice(), body.len(), T)
                .await
                .unwrap();
            assert_eq!(got, body);
        }
    }

    #[tokio::test]
    async fn oversize_prefix_is_refused_before_reading_the_body() {
        // The prefix announces 4 GiB − 1 and no body follows: a reader that allocated and
        // read the body would fail with UnexpectedEof instead; the prefix alone is consumed.
        let wire = u32::MAX.to_le_bytes();
        let mut reader = &wire[..];
        let err = read_frame(&mut reader, 1024, T).await.unwrap_err();
        assert!(
            matches!(err, TransportError::FrameTooLarge { len, max: 1024 } if len == u64::from(u32::MAX))
        );
        // One byte above the limit is refused too; exactly the limit is accepted.
        let wire = framed(&[1u8; 65]);
        let err = read_frame(&mut wire.as_slice(), 64, T).await.unwrap_err();
        assert!(matches!(
            err,
            TransportError::FrameTooLarge { len: 65, max: 64 }
        ));
        assert_eq!(
            read_frame(&mut wire.as_slice(), 65, T).await.unwrap().len(),
            65
        );
    }

    #[tokio::test]
    async fn a_frame_arriving_in_small_pieces_is_read_whole() {
        // A pipe of 3 bytes: the body comes in many partial reads.
        let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let (mut writer, mut reader) = tokio::io::duplex(3);
        let wire = framed(&body);
        let send = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            writer.write_all(&wire).await.unwrap();
        });
        assert_eq!(read_frame(&mut reader, 1000, T).await.unwrap(), body);
        send.await.unwrap();
    }

    #[tokio::test]
    async fn truncated_and_trailing_input_are_typed_errors() {
        let wire = framed(b"hello");
        for cut in 0..wire.len() {
            let err = read_frame(&mut &wire[..cut], 100, T).await.unwrap_err();
            assert!(
                matches!(err, TransportError::UnexpectedEof),
                "cut at {cut}: {err:?}"
            );
        }
        let mut long = wire.clone();
        long.push(0);
        let err = read_frame(&mut long.as_slice(), 100, T).await.unwrap_err();
        assert!(matches!(err, TransportError::TrailingBytes));
    }

    proptest::proptest! {
        /// Any byte string either yields a frame within the limit that re-encodes to
        /// exactly the input, or a typed error; never a panic.
        #[test]
        fn arbitrary_input_never_panics(
            wire in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            max in 0usize..48,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            match rt.block_on(read_frame(&mut wire.as_slice(), max, T)) {
                Ok(frame) => {
                    proptest::prop_assert!(frame.len() <= max);
                    proptest::prop_assert_eq!(framed(&frame), wire);
                }
                Err(e) => {
                    let typed = matches!(
                        e,
                        TransportError::FrameTooLarge { .. }
                            | TransportError::UnexpectedEof
                            | TransportError::TrailingBytes
                    );
                    proptest::prop_assert!(typed, "unexpected error {:?}", e);
                }
            }
        }
    }

    proptest::proptest! {
        /// A length prefix that may lie about the body: each case gets its exact error.
        #[test]
        fn lying_prefixes_get_the_matching_error(
            announced in 0u32..80,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            max in 0usize..80,
        ) {
            let mut wire = announced.to_le_bytes().to_vec();
            wire.extend_from_slice(&body);
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let result = rt.block_on(read_frame(&mut wire.as_slice(), max, T));
            let announced = announced as usize;
            let expected_ok = announced <= max && announced == body.len();
            match result {
                Ok(frame) => proptest::prop_assert!(expected_ok && frame == body),
                Err(TransportError::FrameTooLarge { .. }) => proptest::prop_assert!(announced > max),
                Err(TransportError::UnexpectedEof) => {
                    proptest::prop_assert!(announced <= max && announced > body.len())
                }
                Err(TransportError::TrailingBytes) => {
                    proptest::prop_assert!(announced <= max && announced < body.len())
                }
                Err(e) => proptest::prop_assert!(false, "unexpected error {:?}", e),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_peer_times_out() {
        let (mut near, mut far) = tokio::io::duplex(64);
        far.write_all(&[5, 0]).await.unwrap(); // half a prefix, then silence
        let err = read_frame(&mut near, 100, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Timeout {
                kind: TimeoutKind::Read,
                ..
            }
        ));
        drop(far);
    }
}
