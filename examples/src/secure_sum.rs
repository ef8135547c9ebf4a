//! The aggregation backend of the example: a secure sum of per-organisation vectors.
//!
//! [`SecureSum`] has the shape of Cairn's SDK so that the networked backend maps onto it
//! one call for one call: [`SecureSum::submit`] is `client.submit(round, &update)` of
//! organisation `org`'s client (one Cairn task per `SecureSum` instance, one client per
//! organisation), and [`SecureSum::collect`] is `collector.collect(round)`, which releases
//! only the (noisy) sum, the number of accepted reports and the privacy budget spent so
//! far. Nothing else about individual submissions comes back.
//!
//! [`PlaintextSum`] adds the vectors exactly in the clear (no noise, no DP budget): the
//! reference that the Cairn backend must equal when its noise is off.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

/// What a round releases.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The element-wise sum of the accepted updates (noisy under DP).
    pub sum: Vec<f64>,
    /// The number of accepted updates.
    pub count: usize,
    /// Privacy budget spent by the task so far, including this release (ε at the task's
    /// δ), or `None` for a backend that gives no DP guarantee (the plaintext sum: its
    /// exact release is not differentially private at any ε).
    pub epsilon_spent: Option<f64>,
}

/// Why a submission or collection failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecureSumError {
    /// An update whose length is not the task's dimension.
    #[error("update has length {found}, the task's dimension is {expected}")]
    Dimension {
        /// The task's dimension.
        expected: usize,
        /// The update's length.
        found: usize,
    },
    /// An update with a NaN or infinite entry.
    #[error("update has a non-finite entry at {index}")]
    NonFinite {
        /// Position of the first bad entry.
        index: usize,
    },
    /// A second submission by the same organisation in one round.
    #[error("organisation {org} already submitted in round {round}")]
    Duplicate {
        /// The organisation.
        org: usize,
        /// The round.
        round: u32,
    },
    /// A submission to, or collection of, a round that was already collected.
    #[error("round {0} was already collected")]
    RoundClosed(u32),
    /// A collection of a round without any accepted update.
    #[error("round {0} has no accepted updates")]
    NoReports(u32),
    /// A failure inside a networked backend.
    #[error("aggregation backend: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// A secure-sum service for one task (fixed dimension), with per-round releases.
pub trait SecureSum {
    /// The task's vector length.
    fn dimension(&self) -> usize;

    /// Organisation `org` submits its (already clipped) `update` for `round`.
    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError>;

    /// Closes `round` and releases its aggregate.
    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError>;

    /// Record level: organisation `org` submits the sum of its sampled `records` (rows
    /// of [`SecureSum::dimension`] values), each clipped to `clip_norm` first. The
    /// default clips and sums here and submits the sum; a backend whose task is
    /// record-level (Cairn) does it in the client SDK instead.
    fn submit_records(
        &mut self,
        org: usize,
        round: u32,
        records: &[f32],
        clip_norm: f64,
    ) -> Result<(), SecureSumError> {
        let d = self.dimension();
        if !records.len().is_multiple_of(d) {
            return Err(SecureSumError::Dimension {
                expected: d,
                found: records.len() % d,
            });
        }
        let mut sum = vec![0f32; d];
        let mut row = vec![0f32; d];
        for record in records.chunks_exact(d) {
            row.copy_from_slice(record);
            crate::fedavg::clip_l2(&mut row, clip_norm);
            for (s, r) in sum.iter_mut().zip(&row) {
                *s += r;
            }
        }
        self.submit(org, round, &sum)
    }
}

/// The checks every backend makes of an update first: its length is the task's
/// dimension and every value is finite.
pub fn check_update(dimension: usize, update: &[f32]) -> Result<(), SecureSumError> {
    if update.len() != dimension {
        return Err(SecureSumError::Dimension {
            expected: dimension,
            found: update.len(),
        });
    }
    if let Some(index) = update.iter().position(|v| !v.is_finite()) {
        return Err(SecureSumError::NonFinite { index });
    }
    Ok(())
}

/// Exact plaintext summation: no noise and no privacy guarantee.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaintextSum {
    dimension: usize,
    open: BTreeMap<u32, OpenRound>,
    collected: BTreeSet<u32>,
}

#[derive(Debug, Clone, PartialEq)]
struct OpenRound {
    sum: Vec<f64>,
    submitted: BTreeSet<usize>,
}

impl PlaintextSum {
    /// A plaintext sum of vectors of length `dimension`.
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            open: BTreeMap::new(),
            collected: BTreeSet::new(),
        }
    }
}

impl SecureSum for PlaintextSum {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError> {
        check_update(self.dimension, update)?;
        if self.collected.contains(&round) {
            return Err(SecureSumError::RoundClosed(round));
        }
        let dimension = self.dimension;
        let open = self.open.entry(round).or_insert_with(|| OpenRound {
            sum: vec![0.0; dimension],
            submitted: BTreeSet::new(),
        });
        if !open.submitted.insert(org) {
            return Err(SecureSumError::Duplicate { org, round });
        }
        for (s, v) in open.sum.iter_mut().zip(update) {
            *s += f64::from(*v);
        }
        Ok(())
    }

    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError> {
        if self.collected.contains(&round) {
            return Err(SecureSumError::RoundClosed(round));
        }
        let open = self
            .open
            .remove(&round)
            .ok_or(SecureSumError::NoReports(round))?;
        self.collected.insert(round);
        Ok(Aggregate {
            sum: open.sum,
            count: open.submitted.len(),
            epsilon_spent: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_exactly_per_round() {
        let mut s = PlaintextSum::new(2);
        s.submit(0, 1, &[1.0, 2.0]).unwrap();
        s.submit(1, 1, &[0.5, -4.0]).unwrap();
        s.submit(0, 2, &[9.0, 9.0]).unwrap();
        let a = s.collect(1).unwrap();
        assert_eq!(a.sum, [1.5, -2.0]);
        assert_eq!(a.count, 2);
        assert_eq!(a.epsilon_spent, None);
        assert_eq!(s.collect(2).unwrap().sum, [9.0, 9.0]);
    }

    #[test]
    fn rejects_misuse() {
        let mut s = PlaintextSum::new(2);
        assert!(matches!(
            s.submit(0, 1, &[1.0]),
            Err(SecureSumError::Dimension {
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            s.submit(0, 1, &[1.0, f32::NAN]),
            Err(SecureSumError::NonFinite { index: 1 })
        ));
        s.submit(0, 1, &[1.0, 1.0]).unwrap();
        assert!(matches!(
            s.submit(0, 1, &[1.0, 1.0]),
            Err(SecureSumError::Duplicate { org: 0, round: 1 })
        ));
        s.collect(1).unwrap();
        assert!(matches!(s.collect(1), Err(SecureSumError::RoundClosed(1))));
        assert!(matches!(
            s.submit(1, 1, &[1.0, 1.0]),
            Err(SecureSumError::RoundClosed(1))
        ));
        assert!(matches!(s.collect(7), Err(SecureSumError::NoReports(7))));
    }
}
