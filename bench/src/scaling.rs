//! Verify + aggregate throughput against the aggregators' thread count
//! (`cairn-bench --scaling --threads 1,2`).
//!
//! Each run measures the in-memory figures of [`crate::cairn::measure`] once per
//! thread count, the counts interleaved (1, 2, 1, 2, …) so that a load that comes and
//! goes on a shared machine falls on every count alike; each count's figure is the
//! median over the runs. Only the leader's job steps and the helper's answers are
//! timed (the clients' work is not), per report, and the speed-up is against the
//! first thread count given.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::Path;

use cairn_protocol::parallel::Parallelism;
use serde::Serialize;

/// One thread count's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScalingRow {
    /// Threads per aggregator.
    pub(crate) threads: usize,
    /// Dimension d.
    pub(crate) d: usize,
    /// Reports per run.
    pub(crate) reports: usize,
    /// Runs the medians are over.
    pub(crate) runs: usize,
    /// Leader: verify + aggregate, median ms per report.
    pub(crate) leader_ms_per_report: f64,
    /// Helper: verify + aggregate, median ms per report.
    pub(crate) helper_ms_per_report: f64,
    /// Reports the leader verifies and aggregates per second.
    pub(crate) leader_reports_per_sec: f64,
    /// Reports the helper verifies and aggregates per second.
    pub(crate) helper_reports_per_sec: f64,
    /// Leader reports/s over that of the first thread count.
    pub(crate) leader_speedup: f64,
    /// Helper reports/s over that of the first thread count.
    pub(crate) helper_speedup: f64,
}

/// Measures each of `threads` `runs` times, interleaved, at dimension `d` with
/// `reports` reports a run.
pub(crate) fn measure(
    d: usize,
    reports: usize,
    runs: usize,
    threads: &[NonZeroUsize],
    dir: &Path,
) -> anyhow::Result<Vec<ScalingRow>> {
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); threads.len()];
    // One set of worker threads per count, kept over the runs as a node keeps its own:
    // a pool started afresh for each run faulted its memory in again (on two threads
    // about 650 more page faults a run of 60 reports at d = 10^5 than on one).
    let pools: Vec<Parallelism> = threads
        .iter()
        .map(|t| Parallelism::with_threads(*t))
        .collect();
    for run in 0..runs.max(1) {
        for ((t, pool), sample) in threads.iter().zip(&pools).zip(&mut samples) {
            let c = crate::cairn::measure(d, reports, 1, dir, pool)?;
            anyhow::ensure!(c.correct, "d = {d}, {t} threads: the released sum is wrong");
            eprintln!(
                "run {}: {t} threads: leader {:.3} ms/report, helper {:.3} ms/report",
                run + 1,
                c.leader_ms_per_report,
                c.helper_ms_per_report
            );
            sample.0.push(c.leader_ms_per_report);
            sample.1.push(c.helper_ms_per_report);
        }
    }
    let mut rows: Vec<ScalingRow> = threads
        .iter()
        .zip(samples)
        .map(|(t, (leader, helper))| {
            let (l, h) = (median(leader), median(helper));
            ScalingRow {
                threads: t.get(),
                d,
                reports,
                runs: runs.max(1),
                leader_ms_per_report: l,
                helper_ms_per_report: h,
                leader_reports_per_sec: 1e3 / l,
                helper_reports_per_sec: 1e3 / h,
                leader_speedup: 1.0,
                helper_speedup: 1.0,
            }
        })
        .collect();
    if let Some(first) = rows.first().cloned() {
        for r in &mut rows {
            r.leader_speedup = r.leader_reports_per_sec / first.leader_reports_per_sec;
            r.helper_speedup = r.helper_reports_per_sec / first.helper_reports_per_sec;
        }
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub(crate) fn render(rows: &[ScalingRow]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let mut s = format!(
        "Verify + aggregate per aggregator against its threads (d = {}, {} reports a run, \
         median of {} runs)\n\n\
         | threads | leader ms/report | leader reports/s | leader speed-up | \
         helper ms/report | helper reports/s | helper speed-up |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        first.d, first.reports, first.runs
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.0} | {:.2}× | {:.3} | {:.0} | {:.2}× |",
            r.threads,
            r.leader_ms_per_report,
            r.leader_reports_per_sec,
            r.leader_speedup,
            r.helper_ms_per_report,
            r.helper_reports_per_sec,
            r.helper_speedup
        );
    }
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
