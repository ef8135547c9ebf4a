//! `Z_{2^b}` share vectors as `u32` words (`b ∈ {8, 16, 32}` chosen at run time):
//! seed expansion with `cairn_mpc`'s typed words, and the `b/8`-byte wire encoding.

use cairn_mpc::codec::{CodecError, Reader};
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::prg::{Prg, Usage};
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_mpc::sharing::{self, ShareContext, SharingError};

/// Helper `party`'s `Z_{2^bits}` share: `len` words expanded from its seed (usage
/// `ZqShare`), widened to `u32`.
pub(crate) fn expand_words(
    bits: u32,
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    len: usize,
) -> Result<SecretVec<u32>, SharingError> {
    fn widen<W: Copy + zeroize::Zeroize + Into<u32>>(v: &SecretVec<W>) -> SecretVec<u32> {
        SecretVec::new(v.expose_secret().iter().map(|w| (*w).into()).collect())
    }
    Ok(match bits {
        8 => widen(&sharing::expand_zq_share::<u8>(
            seed,
            ctx,
            party,
            Usage::ZqShare,
            len,
        )?),
        16 => widen(&sharing::expand_zq_share::<u16>(
            seed,
            ctx,
            party,
            Usage::ZqShare,
            len,
        )?),
        _ => sharing::expand_zq_share::<u32>(seed, ctx, party, Usage::ZqShare, len)?,
    })
}

/// Appends `words` as `word_bytes`-byte little-endian integers.
pub(crate) fn encode_words(words: &[u32], word_bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + words.len() * word_bytes, 0);
    write_words(words, word_bytes, &mut out[start..]);
}

/// Writes `words` as `word_bytes`-byte little-endian integers into `out`, which holds
/// exactly `words.len() · word_bytes` bytes. One loop per width, so that every word is
/// a store of a known size: a copy of a run-time length is a `memcpy` call per word,
/// which cost the leader more than hashing the bytes.
pub(crate) fn write_words(words: &[u32], word_bytes: usize, out: &mut [u8]) {
    assert_eq!(
        Some(out.len()),
        words.len().checked_mul(word_bytes),
        "write_words: the output must hold every word"
    );
    match word_bytes {
        0 => {}
        1 => out
            .iter_mut()
            .zip(words)
            .for_each(|(o, w)| *o = w.to_le_bytes()[0]),
        2 => out
            .chunks_exact_mut(2)
            .zip(words)
            .for_each(|(o, w)| o.copy_from_slice(&w.to_le_bytes()[..2])),
        4 => out
            .chunks_exact_mut(4)
            .zip(words)
            .for_each(|(o, w)| o.copy_from_slice(&w.to_le_bytes())),
        _ => {
            let width = word_bytes.min(4);
            for (o, w) in out.chunks_exact_mut(word_bytes).zip(words) {
                o[..width].copy_from_slice(&w.to_le_bytes()[..width]);
            }
        }
    }
}

/// Reads `len` words of `word_bytes` bytes (every byte string is a valid word).
pub(crate) fn read_words(
    r: &mut Reader<'_>,
    len: usize,
    word_bytes: usize,
) -> Result<SecretVec<u32>, CodecError> {
    let bytes = len
        .checked_mul(word_bytes)
        .ok_or(CodecError::InvalidValue { what: "word count" })?;
    let raw = r.read_bytes(bytes)?;
    let mut words = SecretVec::<u32>::zeroed(len);
    // One slice read for the whole vector, and a loop per width that the compiler
    // unrolls (a bounds-checked read per word dominated decoding).
    let out = words.expose_secret_mut();
    match word_bytes {
        1 => out
            .iter_mut()
            .zip(raw)
            .for_each(|(w, b)| *w = u32::from(*b)),
        2 => out
            .iter_mut()
            .zip(raw.chunks_exact(2))
            .for_each(|(w, b)| *w = u32::from(u16::from_le_bytes([b[0], b[1]]))),
        _ => {
            for (w, b) in out.iter_mut().zip(raw.chunks_exact(word_bytes)) {
                let mut le = [0u8; 4];
                le[..word_bytes.min(4)].copy_from_slice(&b[..word_bytes.min(4)]);
                *w = u32::from_le_bytes(le);
            }
        }
    }
    Ok(words)
}

/// Words per streamed chunk (a few KiB on the stack).
const CHUNK: usize = 1024;

/// Streams helper `party`'s `Z_{2^bits}` share (the same words as [`expand_words`], in
/// order) in chunks: `f(offset, words)` for consecutive slices, without allocating the
/// whole share.
pub(crate) fn for_each_word_chunk(
    bits: u32,
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    len: usize,
    mut f: impl FnMut(usize, &[u32]),
) {
    use zeroize::Zeroize;
    let mut prg = Prg::new(seed, &ctx.domain(party, Usage::ZqShare));
    let mut wide = [0u32; CHUNK];
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset);
        match bits {
            8 => {
                let mut raw = [0u8; CHUNK];
                prg.fill_zq(&mut raw[..n]);
                for (w, r) in wide.iter_mut().zip(&raw[..n]) {
                    *w = u32::from(*r);
                }
                raw.zeroize();
            }
            16 => {
                let mut raw = [0u16; CHUNK];
                prg.fill_zq(&mut raw[..n]);
                for (w, r) in wide.iter_mut().zip(&raw[..n]) {
                    *w = u32::from(*r);
                }
                raw.zeroize();
            }
            _ => prg.fill_zq(&mut wide[..n]),
        }
        f(offset, &wide[..n]);
        offset += n;
    }
    wide.zeroize();
}

/// Streams helper `party`'s field share for `usage` in chunks: `f(offset, values)`.
pub(crate) fn for_each_field_chunk(
    seed: &Seed,
    ctx: &ShareContext,
    party: u8,
    usage: Usage,
    len: usize,
    mut f: impl FnMut(usize, &[Field64]),
) {
    use zeroize::Zeroize;
    let mut prg = Prg::new(seed, &ctx.domain(party, usage));
    let mut buf = [Field64::ZERO; CHUNK];
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset);
        prg.fill_field(&mut buf[..n]);
        f(offset, &buf[..n]);
        offset += n;
    }
    buf.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::sharing::expand_field_share;

    #[test]
    fn words_are_written_as_their_low_bytes_little_endian_at_every_width() {
        let words = [0u32, 1, 0xff, 0x1234, 0xdead_beef, u32::MAX, 0x0100_0000];
        for width in [1usize, 2, 3, 4] {
            let expected: Vec<u8> = words
                .iter()
                .flat_map(|w| w.to_le_bytes()[..width].to_vec())
                .collect();
            let mut out = vec![0xaau8; words.len() * width];
            write_words(&words, width, &mut out);
            assert_eq!(out, expected, "width {width}");
            let mut appended = vec![7u8];
            encode_words(&words, width, &mut appended);
            assert_eq!(appended[0], 7);
            assert_eq!(&appended[1..], &expected[..], "width {width}");
            let read = read_words(&mut Reader::new(&appended[1..]), words.len(), width).unwrap();
            for (r, w) in read.expose_secret().iter().zip(words) {
                let mask = if width >= 4 {
                    u32::MAX
                } else {
                    (1u32 << (8 * width)) - 1
                };
                assert_eq!(*r, w & mask, "width {width}");
            }
        }
    }

    #[test]
    fn streamed_expansions_equal_whole_expansions() {
        let seed = Seed::from_bytes([4; 32]);
        let ctx = ShareContext::new([1; 32], [2; 16]);
        for bits in [8, 16, 32] {
            let whole = expand_words(bits, &seed, &ctx, 1, 2500).unwrap();
            let mut streamed = vec![0u32; 2500];
            for_each_word_chunk(bits, &seed, &ctx, 1, 2500, |o, w| {
                streamed[o..o + w.len()].copy_from_slice(w);
            });
            assert_eq!(whole.expose_secret(), &streamed[..]);
        }
        let whole = expand_field_share::<Field64>(&seed, &ctx, 2, Usage::FieldShare, 2500).unwrap();
        let mut streamed = vec![Field64::ZERO; 2500];
        for_each_field_chunk(&seed, &ctx, 2, Usage::FieldShare, 2500, |o, v| {
            streamed[o..o + v.len()].copy_from_slice(v);
        });
        assert_eq!(whole.expose_secret(), &streamed[..]);
    }
}
