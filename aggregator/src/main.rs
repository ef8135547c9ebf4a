//! The `cairn` command-line tool (being built).

fn main() {}
