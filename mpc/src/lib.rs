//! `cairn-mpc`: the arithmetic and secret-sharing core of Cairn.
//!
//! This crate depends on no other Cairn crate. Its modules, bottom-up:
//!
//! - [`field`]: prime fields ([`field::Field64`], Goldilocks) behind the
//!   [`field::FieldElement`] trait.
//! - [`zq`]: the rings `Z_{2^b}`, `b ∈ {8, 16, 32}`, as machine words ([`zq::ZqWord`]).
//! - [`secret`]: secret types ([`secret::Seed`], [`secret::SecretVec`]): no `Clone`,
//!   zeroized on drop, redacted `Debug`, constant-time equality.
//! - [`prg`]: domain-separated ChaCha20 seed expansion ([`prg::Prg`], [`prg::Domain`]).
//! - [`vector`]: vector kernels (add, sub, scale, lazy-reduced inner product, `Z_q`
//!   accumulation).
//! - [`fixed_point`]: fixed-point encoding of `f32`/`f64` with unbiased randomised
//!   rounding.
//! - [`sharing`]: additive n-of-n sharing over fields and `Z_{2^b}`, helper shares
//!   compressed to seeds.
//! - [`codec`]: the [`codec::Encode`]/[`codec::Decode`] traits and the checked
//!   [`codec::Reader`] every Cairn crate uses for wire formats.

pub mod codec;
pub mod field;
pub mod fixed_point;
pub mod prg;
pub mod secret;
pub mod sharing;
pub mod vector;
pub mod zq;

pub use codec::{CodecError, Decode, Encode, Reader};
pub use field::{Field64, FieldElement};
pub use prg::{Domain, PROTOCOL_VERSION, Prg, Usage};
pub use secret::{SecretVec, Seed};
pub use sharing::{ShareContext, Sharing};
pub use zq::ZqWord;
