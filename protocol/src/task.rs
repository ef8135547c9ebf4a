//! A loaded task: its configuration with the scheme and privacy model it implies,
//! built once.
//!
//! [`crate::config`] parses `task.toml` and validates each field and their arithmetic
//! (bounds, field sizes). Whether the proof system can run the task (no wrap-around,
//! soundness, the no-proof sum bound) and whether the privacy model admits it (a budget
//! that allows at least one release) is known only by building the [`Scheme`] and the
//! [`Privacy`] of the task, which themselves read the configuration. A [`Task`] holds
//! all three: it is built once when a task is loaded, and every party takes it
//! (`Leader::from_task`, `Helper::from_task`, `Client::from_task`,
//! `Collector::from_task`) instead of rebuilding the scheme and privacy model itself.

use crate::config::{ConfigError, TaskConfig};
use crate::ids::TaskId;
use crate::messages::Limits;
use crate::privacy::Privacy;
use crate::scheme::Scheme;

/// A task's configuration, validity scheme and privacy model.
#[derive(Debug, Clone)]
pub struct Task {
    config: TaskConfig,
    scheme: Scheme,
    privacy: Privacy,
}

impl Task {
    /// Builds the scheme and privacy model of `config`, refusing a task that cannot run.
    pub fn new(config: TaskConfig) -> Result<Self, ConfigError> {
        let scheme = Scheme::for_task(&config)?;
        let privacy = Privacy::for_task(&config)?;
        Ok(Self {
            config,
            scheme,
            privacy,
        })
    }

    /// Parses and loads a task file.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::new(TaskConfig::parse_toml(text)?)
    }

    /// The configuration.
    pub fn config(&self) -> &TaskConfig {
        &self.config
    }

    /// The validity scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The privacy model.
    pub fn privacy(&self) -> &Privacy {
        &self.privacy
    }

    /// The task id.
    pub fn id(&self) -> TaskId {
        self.config.id()
    }

    /// The decoding limits of the task's messages.
    pub fn limits(&self) -> Limits {
        self.scheme.limits()
    }

    /// The three parts.
    pub fn into_parts(self) -> (TaskConfig, Scheme, Privacy) {
        (self.config, self.scheme, self.privacy)
    }
}

impl TaskConfig {
    /// Parses and validates a task file: its fields, then its scheme and privacy model
    /// (which [`Task::from_toml`] keeps instead of dropping).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Task::from_toml(text).map(|t| t.config)
    }
}
