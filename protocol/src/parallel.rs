//! Data parallelism for the aggregators: a job's reports on several threads.
//!
//! Verifying a report (decoding it, opening the helper's HPKE share, checking the
//! client's tag, preparing the proof's verifier share, deciding it) and adding an
//! accepted report into the running aggregate are pure functions of that report and of
//! task-level data (scheme, verify key, HPKE key): no report depends on another. So the
//! leader and the helpers map their per-report work over a [`Parallelism`]'s workers,
//! and sum the reports' shares into one partial aggregate per worker, merged at the
//! end: the leader as it prepares them ([`Parallelism::map_and_sum`]), the helpers
//! once the leader's decision names the accepted ones ([`Parallelism::sum`]). A job's
//! preparation states, O(d) secrets wiped on drop, are dropped on the workers too (the
//! few a job rejects after preparing them, and those of a job given up on an error, on
//! the calling thread).
//!
//! What stays on the calling thread, in job order: every store write and the helper's
//! reads (the store's transactions and the durable "record before answering" step of
//! [`crate::helper`] keep their order and their single writer), and the assembly of
//! the messages. The leader reads each report of a job on the worker that prepares it,
//! so the reads overlap with the other workers' verification. So the outcome of a job — which reports are accepted, which rejected
//! and why, and the aggregate share — is the same byte for byte whatever the thread
//! count: `Parallelism::map` returns results in input order, and the aggregate is a
//! sum in Field64 (or of integers far below `p`, for the no-proof scheme), exact,
//! commutative and associative, so the grouping of the partial sums cannot change it.
//!
//! The workers are the calling thread and the persistent threads of a pool (rayon)
//! that the [`Parallelism`] owns; worker `k` of `w` takes the reports `k, k + w, …` of
//! the job. The fixed shares make every run of a job split the same way: with at least
//! two reports on two threads, both workers add some, which the tests rely on.
//! Persistent threads matter: with threads started afresh for each step (scoped
//! threads), two threads gave 1.25× one thread at d = 10^5 when both workers were
//! fresh and about 1.6× when one was, against about 1.7× with a persistent one
//! (BENCHMARKS.md); why a fresh thread is slower was not profiled.
//!
//! The thread count is the node's setting (`threads` in its configuration, by default
//! the machine's cores); this crate reads no environment and starts no thread unless
//! given a [`Parallelism`] of more than one thread.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use crate::messages::ErrorCode;
use crate::scheme::Aggregate;

/// How many threads a leader or helper verifies and aggregates a job's reports on.
/// Cloning shares the worker threads.
#[derive(Clone)]
pub struct Parallelism {
    /// The workers besides the calling thread; `None`: the calling thread alone.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Default for Parallelism {
    fn default() -> Self {
        Self::sequential()
    }
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

    /// `threads` workers: the calling thread and `threads − 1` persistent threads
    /// (`cairn-verify-<i>`). If the system refuses to start them, everything runs on
    /// the calling thread ([`Parallelism::threads`] then says 1).
    pub fn with_threads(threads: NonZeroUsize) -> Self {
        if threads.get() == 1 {
            return Self::sequential();
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.get() - 1)
            .thread_name(|i| format!("cairn-verify-{i}"))
            .build()
            .ok();
        Self {
            pool: pool.map(Arc::new),
        }
    }

    /// The number of threads work is spread over.
    pub fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or(1, |p| p.current_num_threads() + 1)
    }

    /// `items.map(f)`, on the workers, with the results in the order of `items`.
    pub(crate) fn map<T, U, F>(&self, items: Vec<T>, f: F) -> Vec<U>
    where
        T: Send,
        U: Send,
        F: Fn(T) -> U + Sync,
    {
        let n = items.len();
        let per_worker = self.run(items, Vec::new, |out: &mut Vec<(usize, U)>, (i, item)| {
            out.push((i, f(item)));
        });
        let mut slots: Vec<Option<U>> = (0..n).map(|_| None).collect();
        for (i, u) in per_worker.into_iter().flatten() {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(u);
            }
        }
        // Every index in 0..n was taken from the queue by exactly one worker.
        slots.into_iter().flatten().collect()
    }

    /// Drops `items` on the workers. A job's preparation states are O(d) secrets each,
    /// wiped on drop: dropped in turn on one thread they would be a sequential tail of
    /// every job.
    pub(crate) fn drop_all<T: Send>(&self, items: Vec<T>) {
        self.run(items, || (), |(), (_, item)| drop(item));
    }

    /// `items.map(f)` as [`Parallelism::map`], where `f` may also add into a partial
    /// aggregate of dimension `d` of its worker's own; returns the results in the order
    /// of `items` and the partial aggregates added together (module docs: the sum does
    /// not depend on the grouping). The leader adds each report's share as it prepares
    /// it: summed in a pass of their own after the decision, the shares took a
    /// parallel section that two threads barely shortened (5.9 against 5.3 ms per 60
    /// reports at d = 10^5, BENCHMARKS.md).
    pub(crate) fn map_and_sum<T, U, F>(
        &self,
        d: usize,
        items: Vec<T>,
        f: F,
    ) -> Result<(Vec<U>, Aggregate), ErrorCode>
    where
        T: Send,
        U: Send,
        F: Fn(T, &mut Aggregate) -> U + Sync,
    {
        let n = items.len();
        let per_worker = self.run(
            items,
            || (Vec::new(), Aggregate::zero(d)),
            |(out, sum): &mut (Vec<(usize, U)>, Aggregate), (i, item)| {
                out.push((i, f(item, sum)));
            },
        );
        let mut slots: Vec<Option<U>> = (0..n).map(|_| None).collect();
        let mut total: Option<Aggregate> = None;
        for (results, partial) in per_worker {
            for (i, u) in results {
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(u);
                }
            }
            // The first worker's sum is the total's start: no zeroed vector and one
            // addition fewer on the calling thread, which merges alone (merging on the
            // workers, each a range of the coordinates, was no faster at d = 10^5).
            match total.as_mut() {
                None => total = Some(partial),
                Some(total) => merge(total, &partial)?,
            }
        }
        let total = total.unwrap_or_else(|| Aggregate::zero(d));
        // Every index in 0..n was taken from the queue by exactly one worker.
        Ok((slots.into_iter().flatten().collect(), total))
    }

    /// The sum over `items` of what `add` adds to a zero aggregate of dimension `d`:
    /// each worker adds the items it takes into a partial aggregate of its own, and
    /// the partial aggregates are then added together (module docs: the result does
    /// not depend on the grouping). An error of any item is returned.
    pub(crate) fn sum<T, F>(&self, d: usize, items: &[T], add: F) -> Result<Aggregate, ErrorCode>
    where
        T: Sync,
        F: Fn(&T, &mut Aggregate) -> Result<(), ErrorCode> + Sync,
    {
        let partials = self.run(
            items.iter().collect(),
            || Ok(Aggregate::zero(d)),
            |partial: &mut Result<Aggregate, ErrorCode>, (_, item)| {
                if let Ok(sum) = partial
                    && let Err(e) = add(item, sum)
                {
                    *partial = Err(e);
                }
            },
        );
        // The first worker's sum is the total's start: no zeroed vector and one
        // addition fewer on the calling thread, which merges alone.
        let mut partials = partials.into_iter();
        let mut total = match partials.next() {
            Some(first) => first?,
            None => Aggregate::zero(d),
        };
        for partial in partials {
            merge(&mut total, &partial?)?;
        }
        Ok(total)
    }

    /// Runs `step` over `items` on the workers, each with its own state (started by
    /// `init`); returns the workers' states in worker order. Worker `k` of `w` takes
    /// items `k, k + w, k + 2w, …`: a fixed share, so every worker has work whenever
    /// there are at least `w` items, and interleaved, so that reports refused early
    /// (cheap) spread over the workers.
    fn run<T, W, I, S>(&self, items: Vec<T>, init: I, step: S) -> Vec<W>
    where
        T: Send,
        W: Send,
        I: Fn() -> W + Sync,
        S: Fn(&mut W, (usize, T)) + Sync,
    {
        let workers = self.threads().min(items.len()).max(1);
        let mut lanes: Vec<Lane<T>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, item) in items.into_iter().enumerate() {
            if let Some(lane) = lanes.get_mut(i % workers) {
                lane.push((i, item));
            }
        }
        // Each lane is taken once, by its worker (or by the calling thread, for a
        // worker whose thread the system refused to start).
        let lanes: Vec<Mutex<Option<Lane<T>>>> =
            lanes.into_iter().map(|l| Mutex::new(Some(l))).collect();
        let work = |k: usize| {
            let mut state = init();
            let lane = lanes
                .get(k)
                .and_then(|l| l.lock().unwrap_or_else(PoisonError::into_inner).take());
            for item in lane.into_iter().flatten() {
                step(&mut state, item);
            }
            state
        };
        let Some(pool) = self.pool.as_ref().filter(|_| workers > 1) else {
            return vec![work(0)];
        };
        let states: Vec<Mutex<Option<W>>> = (0..workers).map(|_| Mutex::new(None)).collect();
        let keep = |k: usize, state: W| {
            if let Some(slot) = states.get(k) {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
            }
        };
        // Worker 0 on the calling thread, the others on the pool's threads; a panic
        // of any is raised again here when the scope ends.
        pool.in_place_scope(|scope| {
            for k in 1..workers {
                scope.spawn(move |_| keep(k, work(k)));
            }
            keep(0, work(0));
        });
        states
            .into_iter()
            .filter_map(|s| s.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }
}

/// One worker's items, with their places in the input.
type Lane<T> = Vec<(usize, T)>;

/// Adds one worker's partial aggregate into the total.
fn merge(total: &mut Aggregate, partial: &Aggregate) -> Result<(), ErrorCode> {
    total.add_assign(partial).map_err(|_| ErrorCode::Internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parallelisms() -> Vec<Parallelism> {
        [1, 2, 3, 8]
            .into_iter()
            .map(|t| Parallelism::with_threads(NonZeroUsize::new(t).unwrap()))
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
    fn map_and_sum_is_the_sequential_map_and_sum_whatever_the_thread_count() {
        let d = 17;
        // Values near p, so the sum wraps many times; every third item adds nothing.
        let items: Vec<u64> = (0..200).map(|i| u64::MAX - 7919 * i).collect();
        let f = |x: u64, acc: &mut Aggregate| {
            if !x.is_multiple_of(3) {
                let row: Vec<i64> = (0..d as u64)
                    .map(|j| x.wrapping_mul(j + 1) as i64)
                    .collect();
                acc.add_noise(&row);
            }
            x / 2
        };
        let (out, expected) = Parallelism::sequential()
            .map_and_sum(d, items.clone(), f)
            .unwrap();
        assert_eq!(out, items.iter().map(|x| x / 2).collect::<Vec<_>>());
        assert_ne!(expected, Aggregate::zero(d));
        for p in parallelisms() {
            let (o, sum) = p.map_and_sum(d, items.clone(), f).unwrap();
            assert_eq!(o, out);
            assert_eq!(sum.encode(), expected.encode());
            let (o, sum) = p.map_and_sum(d, Vec::new(), f).unwrap();
            assert!(o.is_empty());
            assert_eq!(sum, Aggregate::zero(d));
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
    fn the_work_is_spread_over_the_threads() {
        // Each worker's share is fixed; the pool may run two shares on one thread.
        for (t, at_least) in [(2, 2), (3, 2)] {
            let p = Parallelism::with_threads(NonZeroUsize::new(t).unwrap());
            let ran_on = p.map((0..10).collect(), |_: u32| std::thread::current().id());
            let threads: std::collections::BTreeSet<String> =
                ran_on.iter().map(|id| format!("{id:?}")).collect();
            assert!(threads.len() >= at_least, "{t} threads: {threads:?}");
            assert!(threads.len() <= t);
        }
    }

    #[test]
    fn drop_all_drops_every_item() {
        let counter = std::sync::Arc::new(());
        for p in parallelisms() {
            p.drop_all(vec![std::sync::Arc::clone(&counter); 100]);
            assert_eq!(std::sync::Arc::strong_count(&counter), 1);
        }
    }

    #[test]
    fn the_thread_count_is_what_was_asked() {
        for t in [1, 2, 5] {
            let p = Parallelism::with_threads(NonZeroUsize::new(t).unwrap());
            assert_eq!(p.threads(), t);
            assert_eq!(format!("{p:?}"), format!("Parallelism {{ threads: {t} }}"));
        }
        assert_eq!(Parallelism::default().threads(), 1);
    }
}
