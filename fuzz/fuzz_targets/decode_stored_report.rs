//! A report as the leader stores it (and reads back for jobs) never panics the decoder.
#![no_main]

use cairn_mpc::codec::Reader;
use cairn_protocol::messages::decode_report;
use libfuzzer_sys::fuzz_target;

mod limits;

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::new(data);
    let _ = decode_report(&mut reader, &limits::limits());
});
