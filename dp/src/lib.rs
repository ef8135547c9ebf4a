//! `cairn-dp` (being built).
