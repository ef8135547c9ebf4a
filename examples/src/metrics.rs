//! Evaluation: accuracy and macro-averaged F1.
//!
//! Per class c, with TP/FP/FN counted on the test set, F1_c = 2·TP / (2·TP + FP + FN)
//! (the harmonic mean of precision and recall; van Rijsbergen, *Information Retrieval*,
//! 1979, ch. 7). Macro-F1 is the unweighted mean of F1_c over the classes that occur in
//! the truth or the predictions (scikit-learn's `f1_score(average="macro")` convention),
//! so rare attack types weigh as much as common ones — the point of the metric for
//! triage, where a model that ignores `land` or `rootkit` is useless.

use crate::features::Samples;
use crate::model::Classifier;

/// Scores of a classifier on a test set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Unweighted mean F1 over the classes present in truth or predictions.
    pub macro_f1: f64,
    /// F1 per class (`None` for a class absent from both truth and predictions).
    pub per_class_f1: Vec<Option<f64>>,
}

/// Scores `predictions` against `truth` over `classes` classes (labels ≥ `classes` are
/// counted as wrong and belong to no class).
pub fn evaluate_predictions(predictions: &[usize], truth: &[usize], classes: usize) -> Evaluation {
    let mut tp = vec![0usize; classes];
    let mut fp = vec![0usize; classes];
    let mut fn_ = vec![0usize; classes];
    let mut correct = 0usize;
    for (&p, &t) in predictions.iter().zip(truth) {
        if p == t {
            correct += 1;
            if let Some(c) = tp.get_mut(t) {
                *c += 1;
            }
        } else {
            if let Some(c) = fp.get_mut(p) {
                *c += 1;
            }
            if let Some(c) = fn_.get_mut(t) {
                *c += 1;
            }
        }
    }
    let per_class_f1: Vec<Option<f64>> = (0..classes)
        .map(|c| {
            let denominator = 2 * tp[c] + fp[c] + fn_[c];
            (denominator > 0).then(|| 2.0 * tp[c] as f64 / denominator as f64)
        })
        .collect();
    let present: Vec<f64> = per_class_f1.iter().flatten().copied().collect();
    let n = predictions.len().min(truth.len());
    Evaluation {
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        macro_f1: if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        },
        per_class_f1,
    }
}

/// Scores `model` on `samples`.
pub fn evaluate<M: Classifier>(model: &M, samples: &Samples) -> Evaluation {
    let predictions: Vec<usize> = (0..samples.len())
        .map(|i| model.predict(samples.row(i)))
        .collect();
    evaluate_predictions(&predictions, &samples.labels, model.num_classes())
}

/// The most frequent label (the lowest on ties; 0 for no labels).
pub fn majority_class(labels: &[usize], classes: usize) -> usize {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l) {
            *c += 1;
        }
    }
    let mut best = 0;
    for (c, &n) in counts.iter().enumerate() {
        if n > counts[best] {
            best = c;
        }
    }
    best
}

/// Scores the constant predictor of the majority class of `train_labels` on `test`.
pub fn majority_baseline(train_labels: &[usize], test: &Samples, classes: usize) -> Evaluation {
    let majority = majority_class(train_labels, classes);
    evaluate_predictions(&vec![majority; test.len()], &test.labels, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_scores() {
        // truth:       0 0 0 1 1 2
        // predictions: 0 0 1 1 2 2
        // class 0: TP 2, FP 0, FN 1 -> 4/5; class 1: TP 1, FP 1, FN 1 -> 2/4;
        // class 2: TP 1, FP 1, FN 0 -> 2/3.
        let e = evaluate_predictions(&[0, 0, 1, 1, 2, 2], &[0, 0, 0, 1, 1, 2], 4);
        assert!((e.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let expected = (0.8 + 0.5 + 2.0 / 3.0) / 3.0;
        assert!((e.macro_f1 - expected).abs() < 1e-12, "{}", e.macro_f1);
        assert_eq!(e.per_class_f1[3], None);
    }

    #[test]
    fn majority_baseline_scores_one_class() {
        let test = Samples {
            dim: 0,
            features: vec![],
            labels: vec![0, 1, 1, 2],
        };
        assert_eq!(majority_class(&[2, 1, 1, 0], 3), 1);
        let e = majority_baseline(&[2, 1, 1, 0], &test, 3);
        assert!((e.accuracy - 0.5).abs() < 1e-12);
        // class 1: TP 2, FP 2, FN 0 -> 4/6; classes 0 and 2: F1 0.
        assert!((e.macro_f1 - (2.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
