//! How a node process's allocator treats memory.
//!
//! The binaries that run a node (`cairn`, and `cairn-bench`'s node processes) allocate
//! with mimalloc. A node frees and allocates report-sized buffers (about 1 MiB each at
//! d = 10^5) all through a round, and the kernel zeroes every page it faults in, so
//! two of mimalloc's defaults cost a node CPU for nothing:
//!
//! - **Purging.** mimalloc hands pages that stay free for a second back to the kernel
//!   (its `purge_delay` option); the pages a node gave back were soon faulted in again.
//!   In a 100-client round at d = 10^5 that zeroing was a tenth of the leader's CPU
//!   time (`perf`, BENCHMARKS.md "Where the 100-client round's CPU goes").
//!   [`keep_freed_pages`] turns purging off.
//! - **Transparent huge pages.** With huge pages, the first touch of any byte of a
//!   2 MiB region makes the kernel zero all of it. Even with purging off, that zeroing
//!   was a fifth of the leader's and the helper's CPU in a 100-client round of freshly
//!   started nodes (`perf record -g`: every sample of `clear_page_erms` under
//!   `do_huge_pmd_anonymous_page`). It is the cost of a node's first rounds, while its
//!   memory is faulted in: on nodes that had run a round before, huge pages or not
//!   made no difference. mimalloc's default is to ask for them in its arenas
//!   (`madvise(MADV_HUGEPAGE)`, which Linux's default `madvise` mode honours); every
//!   Cairn binary builds it without that (the workspace's `mimalloc` dependency has
//!   the `no_thp` feature; `tests/allocator_huge_pages.rs`). A kernel in `always`
//!   mode gives huge pages unasked, so [`no_transparent_huge_pages`] also turns them
//!   off for a node's whole process (`prctl(PR_SET_THP_DISABLE)`).
//!
//! What that costs is the node's peak memory, held instead of given back: a node's
//! memory is bounded by its upload budget and its job size (`[limits]` in the node's
//! configuration), so the resident set stays at that bound rather than rising and
//! falling with the load. Without huge pages it is smaller: only the 4 KiB pages a node
//! touches are resident. The verification kernels lose nothing measurable to the extra
//! TLB misses (BENCHMARKS.md).
//!
//! An operator who wants mimalloc's own behaviour back sets its environment variables,
//! which both functions leave alone: `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ALLOW_THP`.

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

/// The environment variable through which an operator allows or forbids mimalloc's
/// transparent huge pages; when it is set, [`no_transparent_huge_pages`] leaves the
/// process alone (mimalloc itself turns them off for `0`).
pub const ALLOW_THP_ENV: &str = "MIMALLOC_ALLOW_THP";

/// Turns transparent huge pages off for the whole process, unless the operator set
/// [`ALLOW_THP_ENV`]. Call it first in `main`, before the process allocates much: the
/// huge pages already faulted in stay. Returns whether they are now off for the
/// process; an error if the kernel refused (the node runs either way, only slower).
///
/// Linux only: elsewhere it does nothing and returns `Ok(false)`.
pub fn no_transparent_huge_pages() -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        if std::env::var_os(ALLOW_THP_ENV).is_none() {
            rustix::thread::disable_transparent_huge_pages(true)?;
        }
        Ok(rustix::thread::transparent_huge_pages_are_disabled()?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(false)
    }
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

    /// The flag is the process's (the kernel's `MMF_DISABLE_THP`), read back from the
    /// kernel: off after the call, unless the operator chose through the environment.
    #[cfg(target_os = "linux")]
    #[test]
    fn transparent_huge_pages_are_off_unless_the_operator_chose() {
        let operator = std::env::var(ALLOW_THP_ENV).ok();
        let off = no_transparent_huge_pages().expect("prctl");
        match operator.as_deref().map(str::trim) {
            None => assert!(off, "the process must have THP off"),
            // mimalloc turned them off itself at start-up.
            Some("0") => assert!(off),
            Some(_) => {}
        }
        assert_eq!(
            off,
            rustix::thread::transparent_huge_pages_are_disabled().unwrap()
        );
    }
}
