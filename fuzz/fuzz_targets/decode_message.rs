//! Any byte string decodes as a wire frame or fails with a typed error; never panics,
//! and what decodes re-encodes to the same bytes.
#![no_main]

use cairn_protocol::messages::Message;
use libfuzzer_sys::fuzz_target;

mod limits;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data, &limits::limits()) {
        assert_eq!(message.encode(), data, "decoding is canonical");
    }
});
