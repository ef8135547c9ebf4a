//! `cairn-proofs` (being built).
