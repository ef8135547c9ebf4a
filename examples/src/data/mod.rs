//! Data: the KDD connection schema, loaders for the KEEL `.dat` and NSL-KDD text formats,
//! a pinned fetcher for the KEEL files, and a deduplicated stratified hold-out split.

pub mod dataset;
pub mod fetch;
pub mod keel;
pub mod nsl_kdd;
pub mod schema;
pub mod split;

pub use dataset::{Dataset, Organisation, Record};
pub use keel::{AttackClass, KEEL_FILES, load_keel_dir};
pub use nsl_kdd::{nsl_kdd_dataset, parse_nsl_kdd};
pub use schema::Connection;
