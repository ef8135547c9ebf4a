//! Labelled records grouped by organisation: what every loader produces.

use super::schema::Connection;

/// One labelled connection record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The 41 features.
    pub connection: Connection,
    /// Class index into [`Dataset::class_names`].
    pub label: usize,
}

/// The records one organisation holds (its silo).
#[derive(Debug, Clone, PartialEq)]
pub struct Organisation {
    /// A human-readable name (for KEEL data: the file stem).
    pub name: String,
    /// The organisation's records.
    pub records: Vec<Record>,
}

/// A labelled data set split into organisations.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Class names; a record's label indexes this list.
    pub class_names: Vec<String>,
    /// The organisations, each with its own records.
    pub organisations: Vec<Organisation>,
}

impl Dataset {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of records over all organisations.
    pub fn len(&self) -> usize {
        self.organisations.iter().map(|o| o.records.len()).sum()
    }

    /// Whether no organisation holds any record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records per class over all organisations.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for record in self.organisations.iter().flat_map(|o| &o.records) {
            if let Some(c) = counts.get_mut(record.label) {
                *c += 1;
            }
        }
        counts
    }

    /// Merges the organisations into `k` by assigning organisation `i` to `i mod k`
    /// (names joined with `+`). `k` must be between 1 and the current number.
    pub fn regroup(self, k: usize) -> Option<Self> {
        if k == 0 || k > self.organisations.len() {
            return None;
        }
        let mut merged: Vec<Organisation> = (0..k)
            .map(|_| Organisation {
                name: String::new(),
                records: Vec::new(),
            })
            .collect();
        for (i, org) in self.organisations.into_iter().enumerate() {
            let target = &mut merged[i % k];
            if !target.name.is_empty() {
                target.name.push('+');
            }
            target.name.push_str(&org.name);
            target.records.extend(org.records);
        }
        Some(Self {
            class_names: self.class_names,
            organisations: merged,
        })
    }
}
