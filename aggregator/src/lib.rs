//! `cairn-aggregator` (being built).
