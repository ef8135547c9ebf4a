//! The CI part of the kill loop (RELIABILITY.md): 5 trials, each SIGKILLs a node (leader or
//! helper) at a moment of a round (mid-uploads with more in flight, mid-jobs, or
//! mid-collect), restarts it, and checks that the round releases exactly the
//! acknowledged reports (count and exact sum) and that every node's budget ledger hash
//! chain verifies. The five cover every victim × moment pair but one (leader mid-jobs
//! is also covered by `crash.rs`); a seed picks when exactly to kill and for how long.
//! The 50-trial loop with seeded victims and moments is
//! `reliability_long::kill_loop_50_trials` (`--ignored`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod reliability_support;

use reliability_support::{Moment, kill_trial_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_uploads() {
    println!("{:?}", kill_trial_at(1, 0, Moment::Uploads).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_killed_mid_uploads() {
    println!("{:?}", kill_trial_at(2, 1, Moment::Uploads).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_killed_mid_jobs() {
    println!("{:?}", kill_trial_at(3, 1, Moment::Jobs).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_collect() {
    println!("{:?}", kill_trial_at(4, 0, Moment::Collect).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_killed_mid_collect() {
    println!("{:?}", kill_trial_at(5, 1, Moment::Collect).await);
}
