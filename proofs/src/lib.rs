//! `cairn-proofs`: validity proofs on secret-shared client inputs.
//!
//! Bottom-up:
//!
//! - [`kernels`]: the hot vector loops, generic with a fast `Field64` path.
//! - [`ntt`]: the radix-2 number-theoretic transform over an FFT-friendly field.
//! - [`polynomial`]: polynomial evaluation, multiplication, Lagrange coefficients and
//!   domain extension on roots-of-unity domains.
//! - [`flp`]: fully linear proofs (BBCGGI19, as in Prio3): gadgets, validity circuits,
//!   `prove` / `query` / `decide`.

pub mod carry_lift;
pub mod flp;
pub mod kernels;
pub mod ntt;
pub mod polynomial;
