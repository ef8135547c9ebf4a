//! Data parallelism for the aggregators: a job's reports on a pool of worker threads.
//!
//! Verifying a report (decoding it, opening the helper's HPKE share, checking the
//! client's tag, preparing the proof's verifier share) and adding an accepted report
//! into the running aggregate are pure functions of that report and of task-level data
//! (scheme, verify key, HPKE key): no report depends on another. So the leader and the
//! helpers map their per-report work over a [`Parallelism`]'s threads, and sum the
//! accepted reports' shares into one partial aggregate per worker, merged at the end.
//!
//! What stays on the calling thread, in job order: every store read and write (the
//! store's transactions and the durable "record before answering" step of
//! [`crate::helper`] keep their order and their single writer), and the assembly of
//! the messages. So the outcome of a job — which reports are accepted, which rejected
//! and why, and the aggregate share — is the same byte for byte whatever the thread
//! count: [`Parallelism::map`] returns results in input order, and the aggregate is a
//! sum in Field64 (or of integers far below `p`, for the no-proof scheme), exact,
//! commutative and associative, so the grouping of the partial sums cannot change it.
//!
//! The thread count is the node's setting (`threads` in its configuration, by
//! default the machine's cores); this crate reads no environment and starts no thread
//! of its own unless given a [`Parallelism`] of more than one thread. Each
//! [`Parallelism`] of two or more threads owns a dedicated pool, so the aggregators'
//! verification does not compete with anything else that uses rayon's global pool.

use std::num::NonZeroUsize;
use std::sync::Arc;

use rayon::prelude::*;

use crate::messages::ErrorCode;
use crate::scheme::Aggregate;

/// How many threads a leader or helper verifies and aggregates a job's reports on.
/// Cloning shares the pool.
#[derive(Clone, Default)]
pub struct Parallelism {
    /// `None`: on the calling thread.
    pool: Option<Arc<rayon::ThreadPool>>,
}

/// Errors of setting up a [`Parallelism`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParallelismError {
    /// The operating system refused to start the worker threads.
    #[error("cannot start {threads} worker threads: {reason}")]
    Pool {
        /// The threads asked for.
        threads: usize,
        /// The pool builder's message.
        reason: String,
    },
}

impl core::fmt::Debug for Parallelism {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Parallelism")
            .field("threads", &self.threads())
            .finish()
    }
}

impl Parallelism {
    /// Everything on the calling thread (the default).
    pub fn sequential() -> Self {
        Self { pool: None }
    }

    /// A pool of `threads` worker threads (`cairn-verify-<i>`); one thread is
    /// [`Parallelism::sequential`].
    pub fn with_threads(threads: NonZeroUsize) -> Result<Self, ParallelismError> {
        if threads.get() == 1 {
            return Ok(Self::sequential());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.get())
            .thread_name(|i| format!("cairn-verify-{i}"))
            .build()
            .map_err(|e| ParallelismError::Pool {
                threads: threads.get(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool: Some(Arc::new(pool)),
        })
    }

    /// The number of threads work is spread over.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// `items.map(f)`, on the pool's threads, with the results in the order of `items`.
    pub(crate) fn map<T, U, F>(&self, items: Vec<T>, f: F) -> Vec<U>
    where
        T: Send,
        U: Send,
        F: Fn(T) -> U + Sync + Send,
    {
        match &self.pool {
            None => items.into_iter().map(f).collect(),
            Some(pool) => pool.install(|| items.into_par_iter().map(f).collect()),
        }
    }

    /// The sum over `items` of what `add` adds to a zero aggregate of dimension `d`:
    /// each worker adds its share of the items into a partial aggregate of its own,
    /// and the partial aggregates are then added together (module docs: the result
    /// does not depend on the grouping). The first error met is returned.
    pub(crate) fn sum<T, F>(&self, d: usize, items: &[T], add: F) -> Result<Aggregate, ErrorCode>
    where
        T: Sync,
        F: Fn(&T, &mut Aggregate) -> Result<(), ErrorCode> + Sync + Send,
    {
        let Some(pool) = &self.pool else {
            let mut total = Aggregate::zero(d);
            for item in items {
                add(item, &mut total)?;
            }
            return Ok(total);
        };
        pool.install(|| {
            items
                .par_iter()
                .try_fold(
                    || Aggregate::zero(d),
                    |mut partial, item| {
                        add(item, &mut partial)?;
                        Ok(partial)
                    },
                )
                .try_reduce_with(merge)
                .unwrap_or_else(|| Ok(Aggregate::zero(d)))
        })
    }
}

/// Adds one worker's partial aggregate into another's.
fn merge(mut into: Aggregate, partial: Aggregate) -> Result<Aggregate, ErrorCode> {
    into.add_assign(&partial).map_err(|_| ErrorCode::Internal)?;
    Ok(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parallelisms() -> Vec<Parallelism> {
        [1, 2, 3, 8]
            .into_iter()
            .map(|t| Parallelism::with_threads(NonZeroUsize::new(t).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn map_keeps_the_order_of_its_input() {
        let items: Vec<u64> = (0..1_000).collect();
        for p in parallelisms() {
            let out = p.map(items.clone(), |x| x * x + 1);
            assert_eq!(out, items.iter().map(|x| x * x + 1).collect::<Vec<_>>());
        }
    }

    #[test]
    fn sum_is_the_sequential_sum_whatever_the_thread_count() {
        let d = 17;
        // Values near p, so the sum wraps many times.
        let items: Vec<u64> = (0..200).map(|i| u64::MAX - 7919 * i).collect();
        let add = |x: &u64, acc: &mut Aggregate| {
            let row: Vec<i64> = (0..d as u64)
                .map(|j| x.wrapping_mul(j + 1) as i64)
                .collect();
            acc.add_noise(&row);
            Ok(())
        };
        let expected = Parallelism::sequential().sum(d, &items, add).unwrap();
        assert_ne!(expected, Aggregate::zero(d));
        for p in parallelisms() {
            assert_eq!(p.sum(d, &items, add).unwrap().encode(), expected.encode());
            assert_eq!(p.sum(d, &items[..0], add).unwrap(), Aggregate::zero(d));
        }
    }

    #[test]
    fn sum_reports_an_error_of_any_item() {
        let items: Vec<u32> = (0..100).collect();
        for p in parallelisms() {
            let r = p.sum(4, &items, |x, _| {
                if *x == 63 {
                    Err(ErrorCode::Internal)
                } else {
                    Ok(())
                }
            });
            assert_eq!(r, Err(ErrorCode::Internal));
        }
    }

    #[test]
    fn the_thread_count_is_what_was_asked() {
        for t in [1, 2, 5] {
            let p = Parallelism::with_threads(NonZeroUsize::new(t).unwrap()).unwrap();
            assert_eq!(p.threads(), t);
            assert_eq!(format!("{p:?}"), format!("Parallelism {{ threads: {t} }}"));
        }
        assert_eq!(Parallelism::default().threads(), 1);
    }
}
