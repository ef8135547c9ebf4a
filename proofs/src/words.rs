//! `Z_{2^b}` share vectors as `u32` words (`b ∈ {8, 16, 32}` chosen at run time):
//! seed expansion with `cairn_mpc`'s typed words, and the `b/8`-byte wire encoding.

use cairn_mpc::codec::{CodecError, Reader};
use cairn_mpc::prg::Usage;
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
    for w in words {
        out.extend_from_slice(&w.to_le_bytes()[..word_bytes]);
    }
}

/// Reads `len` words of `word_bytes` bytes (every byte string is a valid word).
pub(crate) fn read_words(
    r: &mut Reader<'_>,
    len: usize,
    word_bytes: usize,
) -> Result<SecretVec<u32>, CodecError> {
    let mut words = SecretVec::<u32>::zeroed(len);
    for w in words.expose_secret_mut() {
        let raw = r.read_bytes(word_bytes)?;
        let mut le = [0u8; 4];
        le[..word_bytes].copy_from_slice(raw);
        *w = u32::from_le_bytes(le);
    }
    Ok(words)
}
