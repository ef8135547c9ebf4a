//! Codec robustness: decoding random byte strings never panics, and each
//! kind of malformed input gets its own typed error.
#![allow(missing_docs, clippy::unwrap_used)]

use cairn_mpc::codec::{CodecError, Decode, Encode, Reader, encode_with_len_prefix};
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::prg::Usage;
use cairn_mpc::secret::{SecretVec, Seed};
use proptest::prelude::*;

/// A message shaped like a client upload, built from the codec's pieces.
#[derive(Debug, PartialEq, Eq)]
struct TestReport {
    version: u8,
    usage: Usage,
    report_id: [u8; 16],
    seed: Seed,
    leader: Vec<Field64>,
    zq: SecretVec<u16>,
    tail: u64,
}

const MAX_LEN: usize = 64;

impl Encode for TestReport {
    fn encode(&self, out: &mut Vec<u8>) {
        self.version.encode(out);
        self.usage.encode(out);
        self.report_id.encode(out);
        self.seed.encode(out);
        encode_with_len_prefix(&self.leader, out);
        self.zq.encode(out);
        self.tail.encode(out);
    }

    fn encoded_len(&self) -> Option<usize> {
        None
    }
}

impl Decode for TestReport {
    const MIN_ENCODED_LEN: usize = 1 + 1 + 16 + 32 + 4 + 4 + 8;

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            version: r.read_u8()?,
            usage: Usage::decode_from(r)?,
            report_id: r.read_array()?,
            seed: Seed::decode_from(r)?,
            leader: r.read_vec_with_len_prefix(MAX_LEN)?,
            zq: SecretVec::decode_from(r)?,
            tail: r.read_u64()?,
        })
    }
}

fn sample() -> TestReport {
    TestReport {
        version: 1,
        usage: Usage::ZqShare,
        report_id: [9; 16],
        seed: Seed::from_bytes([5; 32]),
        leader: vec![Field64::from_u64(1), Field64::from_u64(u64::MAX)],
        zq: SecretVec::new(vec![1, 2, 3]),
        tail: 77,
    }
}

/// Offsets into `sample()`'s encoding.
const USAGE_AT: usize = 1;
const LEADER_LEN_AT: usize = 1 + 1 + 16 + 32;
const LEADER_AT: usize = LEADER_LEN_AT + 4;

fn try_everything(bytes: &[u8]) {
    let _ = TestReport::decode(bytes);
    let _ = Vec::<Field64>::decode(bytes);
    let _ = SecretVec::<u32>::decode(bytes);
    let _ = Vec::<Vec<u8>>::decode(bytes);
    let _ = Seed::decode(bytes);
    let _ = <Field64 as Decode>::decode(bytes);
    let _ = Usage::decode(bytes);
    let _ = u64::decode(bytes);
    let mut r = Reader::new(bytes);
    let _ = r.read_bytes_with_len_prefix(16);
    // Bulk readers with counts taken from the input itself.
    let count = usize::from(bytes.first().copied().unwrap_or(0));
    let _ = Reader::new(bytes).read_zq_vec::<u16>(count);
    let _ = Reader::new(bytes).read_zq_vec::<u32>(bytes.len() / 4);
    let _ = Reader::new(bytes).read_field_vec::<Field64>(count);
    let _ = Reader::new(bytes).read_field_vec::<Field64>(bytes.len() / 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        try_everything(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn mutated_valid_encodings_never_panic(
        at in 0usize..200,
        byte in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut bytes = sample().to_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.max(1));
        try_everything(&bytes);
    }

    #[test]
    fn field_vectors_roundtrip(values in proptest::collection::vec(0..Field64::MODULUS_U64, 0..100)) {
        let v: Vec<Field64> = values.into_iter().map(|x| Field64::new(x).unwrap()).collect();
        prop_assert_eq!(Vec::<Field64>::decode(&v.to_bytes()), Ok(v.clone()));
        prop_assert_eq!(v.encoded_len(), Some(4 + 8 * v.len()));
    }
}

#[test]
fn valid_message_roundtrips() {
    let bytes = sample().to_bytes();
    assert_eq!(TestReport::decode(&bytes), Ok(sample()));
}

#[test]
fn every_truncation_is_unexpected_end() {
    let bytes = sample().to_bytes();
    for cut in 0..bytes.len() {
        match TestReport::decode(&bytes[..cut]) {
            Err(CodecError::UnexpectedEnd { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = sample().to_bytes();
    bytes.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        TestReport::decode(&bytes),
        Err(CodecError::TrailingBytes { remaining: 3 })
    );
}

#[test]
fn count_above_maximum_is_length_too_large() {
    let mut bytes = sample().to_bytes();
    bytes[LEADER_LEN_AT..LEADER_AT].copy_from_slice(&65u32.to_le_bytes());
    assert_eq!(
        TestReport::decode(&bytes),
        Err(CodecError::LengthTooLarge { len: 65, max: 64 })
    );
}

#[test]
fn huge_count_fails_before_allocating() {
    // 2^32 − 1 Field64 elements would need 32 GiB; the count is checked against the
    // 4 bytes that remain, so this returns at once instead of aborting on allocation.
    let bytes = [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4];
    assert_eq!(
        Vec::<Field64>::decode(&bytes),
        Err(CodecError::UnexpectedEnd {
            needed: 8 * (u32::MAX as usize),
            remaining: 4
        })
    );
    assert!(matches!(
        SecretVec::<u64>::decode(&bytes),
        Err(CodecError::UnexpectedEnd { .. })
    ));
}

#[test]
fn non_canonical_field_element_is_rejected() {
    let mut bytes = sample().to_bytes();
    bytes[LEADER_AT..LEADER_AT + 8].copy_from_slice(&Field64::MODULUS_U64.to_le_bytes());
    assert_eq!(TestReport::decode(&bytes), Err(CodecError::NotCanonical));
    assert_eq!(
        <Field64 as Decode>::decode(&u64::MAX.to_le_bytes()),
        Err(CodecError::NotCanonical)
    );
    assert_eq!(
        <Field64 as Decode>::decode(&(Field64::MODULUS_U64 - 1).to_le_bytes()),
        Ok(Field64::ZERO - Field64::ONE)
    );
}

#[test]
fn unknown_usage_tag_is_invalid_value() {
    let mut bytes = sample().to_bytes();
    for tag in [0u8, 8, 255] {
        bytes[USAGE_AT] = tag;
        assert_eq!(
            TestReport::decode(&bytes),
            Err(CodecError::InvalidValue { what: "usage" })
        );
    }
}

#[test]
fn decoded_seed_is_a_secret() {
    let seed = Seed::decode(&[4u8; 32]).unwrap();
    assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
    assert_eq!(seed.expose_secret(), &[4u8; 32]);
}
