//! Transport (docs to come).
pub mod cert;
pub mod endpoint;
pub mod error;
pub mod frame;
pub mod retry;
pub mod server;
pub mod tls;
