//! Field codecs shared by the messages: counts, byte strings, ciphertexts, booleans.

use cairn_mpc::codec::{CodecError, Encode, Reader};

use crate::hpke::{HPKE_TAG_LEN, HpkeCiphertext};

/// Writes a count as a u32. Every count Cairn encodes is bounded by a task limit far
/// below `u32::MAX`.
pub(super) fn put_count(n: usize, out: &mut Vec<u8>) {
    u32::try_from(n).unwrap_or(u32::MAX).encode(out);
}

/// Writes a u32 length and the bytes.
pub(super) fn put_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    put_count(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Writes an HPKE ciphertext: the encapsulated key, then the payload with its length.
pub(super) fn encode_ciphertext(c: &HpkeCiphertext, out: &mut Vec<u8>) {
    c.encapsulated_key.encode(out);
    put_bytes(&c.payload, out);
}

/// Reads an HPKE ciphertext whose plaintext is at most `max_plaintext` bytes.
pub(super) fn decode_ciphertext(
    r: &mut Reader<'_>,
    max_plaintext: usize,
) -> Result<HpkeCiphertext, CodecError> {
    Ok(HpkeCiphertext {
        encapsulated_key: r.read_array()?,
        payload: r
            .read_bytes_with_len_prefix(max_plaintext.saturating_add(HPKE_TAG_LEN))?
            .to_vec(),
    })
}

/// Reads a boolean byte: 0 or 1, nothing else.
pub(super) fn decode_bool(r: &mut Reader<'_>) -> Result<bool, CodecError> {
    match r.read_u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::InvalidValue { what: "boolean" }),
    }
}
