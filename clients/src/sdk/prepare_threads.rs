//! The threads that prepare reports: one per core, shared by every client of the
//! process, started on the first prepare.
//!
//! Preparing a report (proving, mainly) takes milliseconds to seconds of CPU, so it
//! runs off the async runtime, where it would stall every connection and timer. On
//! tokio's blocking pool, each prepare ran on whichever of the pool's threads was idle:
//! in a process submitting for a hundred clients at once that was a dozen threads, and
//! each thread's allocator heap needed the proof's buffers (megabytes at d = 10^5) of
//! its own, fresh memory that the kernel zeroed as it faulted in (a quarter of such a
//! process's CPU: BENCHMARKS.md, *The client's prepare threads*). On a fixed set of
//! threads, the same few heaps serve every prepare and their memory is reused.
//!
//! At most one prepare per thread runs at a time, so as many run at once as the
//! machine has cores, and the others wait in line, first come first served: a report
//! is uploaded as soon as it is ready rather than after every report the process holds
//! is prepared. A prepare whose caller stopped waiting before it began (its
//! submission was dropped) is skipped.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use super::SdkError;

/// A prepare, boxed for the queue.
type Job = Box<dyn FnOnce() + Send>;

/// The queue of the process's prepare threads; `None` if none could be started.
fn queue() -> Option<&'static Mutex<Sender<Job>>> {
    static QUEUE: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let (jobs, line) = std::sync::mpsc::channel::<Job>();
            let line = Arc::new(Mutex::new(line));
            let started = (0..cores)
                .filter(|i| {
                    let line = Arc::clone(&line);
                    std::thread::Builder::new()
                        .name(format!("cairn-prepare-{i}"))
                        .spawn(move || work(&line))
                        .is_ok()
                })
                .count();
            (started > 0).then(|| Mutex::new(jobs))
        })
        .as_ref()
}

/// One prepare thread: takes the next job as soon as it is free, forever (the
/// queue's sender lives as long as the process).
fn work(line: &Mutex<Receiver<Job>>) {
    loop {
        let job = line.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Runs `prepare` on one of the process's prepare threads and waits for it as a task.
/// A panic in it is the caller's, as if it had run inline. Without prepare threads
/// (the system refused to start any), it runs on tokio's blocking pool.
pub(super) async fn run<T: Send + 'static>(
    prepare: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SdkError> {
    let Some(queue) = queue() else {
        return super::client::off_runtime(prepare).await;
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        if answer.is_closed() {
            return; // nobody waits for it any more
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(prepare));
        // The caller may have stopped waiting meanwhile: nothing to do.
        let _ = answer.send(outcome);
    });
    let sent = queue.lock().unwrap_or_else(|e| e.into_inner()).send(job);
    if sent.is_err() {
        return Err(SdkError::PrepareCancelled);
    }
    match answered.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(SdkError::PrepareCancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
    }

    /// Every prepare runs on one of at most `cores` threads, whatever the number of
    /// prepares in flight: the few heaps that serve them stay warm.
    #[test]
    fn prepares_run_on_one_thread_per_core_at_most() {
        let rt = runtime();
        let names = rt.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|i| {
                    tokio::spawn(run(move || {
                        std::thread::sleep(std::time::Duration::from_millis(i % 3));
                        let me = std::thread::current();
                        (me.id(), me.name().map(str::to_owned))
                    }))
                })
                .collect();
            let mut names = Vec::new();
            for t in tasks {
                names.push(t.await.unwrap().unwrap());
            }
            names
        });
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads: std::collections::HashSet<_> = names.iter().map(|(id, _)| *id).collect();
        assert!(
            threads.len() <= cores,
            "{} threads for {cores} cores",
            threads.len()
        );
        assert!(names.iter().all(|(_, n)| {
            n.as_deref()
                .is_some_and(|n| n.starts_with("cairn-prepare-"))
        }));
    }

    /// A panic in a prepare is the caller's, and the thread goes on with the next.
    #[test]
    fn a_panic_is_the_callers_and_the_threads_go_on() {
        let rt = runtime();
        let caught = rt.block_on(async {
            tokio::spawn(run(|| -> u8 { panic!("a prepare failed") }))
                .await
                .unwrap_err()
        });
        assert!(caught.is_panic());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        for i in 0..2 * cores {
            assert_eq!(rt.block_on(run(move || i)).unwrap(), i);
        }
    }
}
