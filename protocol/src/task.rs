//! Loading a task: its configuration, checked against everything it implies.
//!
//! [`crate::config`] parses `task.toml` and validates each field and their arithmetic
//! (bounds, field sizes). Whether the proof system can run the task (no wrap-around,
//! soundness, the no-proof sum bound) and whether the privacy model admits it (a budget
//! that allows at least one release) is known only by building the [`Scheme`] and the
//! [`Privacy`] of the task, which themselves read the configuration; that check lives
//! here, above all three, so a task that loads is a task that runs.

use crate::config::{ConfigError, TaskConfig};
use crate::privacy::Privacy;
use crate::scheme::Scheme;

impl TaskConfig {
    /// Parses and validates a task file: its fields, then its scheme and privacy model.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let task = Self::parse_toml(text)?;
        Scheme::for_task(&task)?;
        Privacy::for_task(&task)?;
        Ok(task)
    }
}
