//! `cairn-aggregator`: the Cairn aggregator node and the `cairn` command-line tool.
//!
//! - [`allocator`]: a node process keeps the pages it frees and does without transparent
//!   huge pages (mimalloc's purge delay, `prctl(PR_SET_THP_DISABLE)`).
//! - [`budget_report`]: privacy-budget reports from a node's verified ledger.
//! - [`cli`]: the `cairn` command line (clap definitions and one function per command).
//! - [`deploy`]: writing a ready local deployment (`cairn init`).
//! - [`metrics`]: Prometheus metrics and the health endpoint of a node.
//! - [`node`]: the node: state machines behind QUIC endpoints, the job driver.
//! - [`node_config`]: the node's configuration file.
//! - [`report_html`]: the HTML page (table and SVG plot) of a budget report.
//! - [`store`]: the embedded SQLite store behind the protocol's `TaskStore`.

pub mod allocator;
pub mod budget_report;
pub mod cli;
pub mod deploy;
pub mod metrics;
pub mod node;
pub mod node_config;
pub mod report_html;
pub mod store;
