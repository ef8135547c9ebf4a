//! A deduplicated, stratified hold-out split.
//!
//! The KEEL files repeat records heavily (8,771 rows, 2,414 distinct), and the same
//! record can sit in two organisations' files (`back` and `land` appear in two files
//! each). A plain row split would put copies of a test record in the training data and
//! overstate accuracy. So the split works on distinct (features, label) records: per
//! class, a seeded shuffle of the distinct records puts `round(fraction · n)` of them —
//! at least one and at most `n − 1` when the class has two or more — in the test set
//! (one copy each), and every copy of a test record is removed from every organisation's
//! training rows.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::dataset::{Dataset, Record};
use super::schema::Connection;
use crate::rng::{derive_rng, shuffle};

/// Training rows per organisation and a shared held-out test set.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Each organisation's training rows (in [`Dataset::organisations`] order).
    pub train: Vec<Vec<Record>>,
    /// The held-out records (distinct; none of them occurs in `train`).
    pub test: Vec<Record>,
}

/// Why a split could not be made.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SplitError {
    /// The test fraction is not strictly between 0 and 1.
    #[error("test fraction {0} is not strictly between 0 and 1")]
    Fraction(f64),
}

/// Splits `dataset` as described in the module docs, deterministically from `seed`.
pub fn holdout_split(
    dataset: &Dataset,
    test_fraction: f64,
    seed: u64,
) -> Result<Split, SplitError> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(SplitError::Fraction(test_fraction));
    }
    // Distinct records per class, in a canonical (sorted) order so the shuffle alone
    // decides the split.
    let mut distinct: BTreeMap<usize, BTreeMap<Vec<u64>, &Record>> = BTreeMap::new();
    for record in dataset.organisations.iter().flat_map(|o| &o.records) {
        distinct
            .entry(record.label)
            .or_default()
            .entry(record_key(&record.connection))
            .or_insert(record);
    }
    let mut test_keys: BTreeSet<(usize, Vec<u64>)> = BTreeSet::new();
    let mut test = Vec::new();
    for (label, records) in distinct {
        let mut keys: Vec<(&Vec<u64>, &&Record)> = records.iter().collect();
        let n = keys.len();
        if n < 2 {
            continue;
        }
        shuffle(&mut derive_rng(seed, "split", label as u64), &mut keys);
        let n_test = ((test_fraction * n as f64).round() as usize).clamp(1, n - 1);
        for (key, record) in keys.into_iter().take(n_test) {
            test_keys.insert((label, key.clone()));
            test.push((*record).clone());
        }
    }
    let train = dataset
        .organisations
        .iter()
        .map(|org| {
            org.records
                .iter()
                .filter(|r| !test_keys.contains(&(r.label, record_key(&r.connection))))
                .cloned()
                .collect()
        })
        .collect();
    Ok(Split { train, test })
}

/// An exact identity of a record's features (bit patterns of the numeric values and the
/// category indices).
fn record_key(c: &Connection) -> Vec<u64> {
    let mut key: Vec<u64> = c.numeric.iter().map(|v| v.to_bits()).collect();
    key.extend([
        u64::from(c.protocol),
        u64::from(c.service),
        u64::from(c.flag),
    ]);
    key
}
