//! How a node process's allocator treats the memory it frees.
//!
//! The binaries that run a node (`cairn`, and `cairn-bench`'s node processes) allocate
//! with mimalloc. By default mimalloc hands pages that stay free for a second back to
//! the kernel ("purging", its `purge_delay` option). A node frees and allocates
//! report-sized buffers (about 1 MiB each at d = 10^5) all through a round, so the
//! pages it gave back were soon faulted in again, and the kernel zeroes every page it
//! faults in. In a 100-client round at d = 10^5 the kernel's page zeroing was a tenth
//! of the leader's CPU time (`perf`, BENCHMARKS.md "Where the leader's time goes").
//!
//! [`keep_freed_pages`] turns purging off. What that costs is the node's peak memory,
//! held instead of given back: a node's memory is bounded by its upload budget and its
//! job size (`[limits]` in the node's configuration), so the resident set stays at
//! that bound rather than rising and falling with the load.

use std::ffi::c_long;

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// mimalloc's `mi_option_purge_delay` (`mi_option_e` in `mimalloc.h`, the same index
/// in its versions 2 and 3; `libmimalloc-sys` names the options around it, 14 and 16,
/// but not this one). Milliseconds a free page waits before it is purged; −1: never.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// The environment variable through which an operator sets the same option; when it
/// is set, [`keep_freed_pages`] leaves the operator's value alone.
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Stops mimalloc from handing freed pages back to the kernel, unless the operator set
/// [`PURGE_DELAY_ENV`]. Call it first in `main`, before the process starts threads.
/// Returns the purge delay now in force (milliseconds, −1 for never).
///
/// It only matters in a process whose global allocator is mimalloc; elsewhere it sets
/// an option of an allocator nothing uses.
pub fn keep_freed_pages() -> i64 {
    if std::env::var_os(PURGE_DELAY_ENV).is_none() {
        // SAFETY: `mi_option_set` takes two integers and stores them in mimalloc's
        // static option table after checking the index against the table's length; no
        // pointer crosses the call. mimalloc reads its options with plain loads from
        // any thread (it even fills them in lazily, from whichever thread reads one
        // first), and this is called before the node starts its threads.
        #[allow(unsafe_code)]
        unsafe {
            mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
    purge_delay()
}

/// mimalloc's purge delay in force (milliseconds, −1 for never).
pub fn purge_delay() -> i64 {
    // SAFETY: `mi_option_get` takes an index it checks against its table and returns
    // an integer; reading an option is what mimalloc itself does on every free.
    #[allow(unsafe_code)]
    let value: c_long = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
    // `c_long` is 64 bits here but 32 on Windows.
    #[allow(clippy::useless_conversion)]
    i64::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index 15 is the purge delay: before the call it holds that option's default
    /// (1,000 ms in mimalloc 3, the version `libmimalloc-sys` builds by default), or
    /// the operator's value from the environment, and no other option of mimalloc
    /// defaults to 1,000. After the call it is −1, unless the operator chose.
    #[test]
    fn freed_pages_are_kept_unless_the_operator_chose() {
        let operator: Option<i64> = std::env::var(PURGE_DELAY_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        assert_eq!(purge_delay(), operator.unwrap_or(1000));
        let now = keep_freed_pages();
        assert_eq!(now, operator.unwrap_or(-1));
        assert_eq!(purge_delay(), now);
    }
}
