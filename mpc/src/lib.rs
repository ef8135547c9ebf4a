//! `cairn-mpc`: the arithmetic and secret-sharing core of Cairn.
//!
//! This crate depends on no other Cairn crate. It provides:
//!
//! - [`field`]: prime fields ([`field::Field64`], Goldilocks) behind the
//!   [`field::FieldElement`] trait.

pub mod field;
