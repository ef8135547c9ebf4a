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
//! - [`carry_lift`]: the carry-lift encoding with an exact L2-norm validity proof
//!   (DESIGN.md §5): client `shard`, aggregator `prepare_init` / `decide`, collector
//!   `unshard`.
//! - [`no_proof`]: plain `Z_{2^b}` shares for semi-honest clients.

pub mod carry_lift;
pub mod flp;
pub mod kernels;
pub mod no_proof;
pub mod ntt;
pub mod polynomial;
mod words;

pub use carry_lift::{CarryLift, CarryLiftError, CarryLiftParams};
pub use no_proof::{NoProof, NoProofError, NoProofParams};
