//! Minibatch stochastic gradient descent on the mean cross-entropy.
//!
//! Each epoch visits the samples in a fresh seeded random order, in minibatches of
//! `batch_size` (the last one may be smaller); each step moves the parameters by
//! `−learning_rate · (summed gradient / batch length)` (Robbins & Monro 1951; the usual
//! minibatch form, e.g. Goodfellow, Bengio & Courville, *Deep Learning*, Algorithm 8.1).

use rand_core::Rng;

use super::{Classifier, ModelError};
use crate::features::Samples;
use crate::rng::shuffle;

/// Settings of local training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Step size.
    pub learning_rate: f32,
}

impl SgdConfig {
    fn validate(&self) -> Result<(), ModelError> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(ModelError::Config("epochs and batch size must be >= 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ModelError::Config("learning rate must be finite and > 0"));
        }
        Ok(())
    }
}

/// Trains `model` in place; returns the mean loss seen over the last epoch.
pub fn train_sgd<M: Classifier, R: Rng + ?Sized>(
    model: &mut M,
    samples: &Samples,
    config: &SgdConfig,
    rng: &mut R,
) -> Result<f64, ModelError> {
    config.validate()?;
    check_samples(model, samples)?;
    if samples.is_empty() {
        return Err(ModelError::NoSamples);
    }
    let mut order: Vec<usize> = (0..samples.len()).collect();
    let mut grad = vec![0.0f64; model.params().len()];
    let mut params = model.params().to_vec();
    let mut last_epoch_loss = 0.0;
    for _ in 0..config.epochs {
        shuffle(rng, &mut order);
        let mut epoch_loss = 0.0;
        for batch in order.chunks(config.batch_size) {
            grad.fill(0.0);
            epoch_loss += model.accumulate_gradient(samples, batch, &mut grad);
            let step = f64::from(config.learning_rate) / batch.len() as f64;
            for (p, g) in params.iter_mut().zip(&grad) {
                *p -= (step * g) as f32;
            }
            if params.iter().any(|p| !p.is_finite()) {
                return Err(ModelError::Diverged);
            }
            model.set_params(&params)?;
        }
        last_epoch_loss = epoch_loss / samples.len() as f64;
    }
    Ok(last_epoch_loss)
}

/// Mean cross-entropy of `model` on `samples` (0 for no samples).
pub fn mean_loss<M: Classifier>(model: &M, samples: &Samples) -> Result<f64, ModelError> {
    check_samples(model, samples)?;
    if samples.is_empty() {
        return Ok(0.0);
    }
    let indices: Vec<usize> = (0..samples.len()).collect();
    let mut scratch = vec![0.0; model.params().len()];
    Ok(model.accumulate_gradient(samples, &indices, &mut scratch) / samples.len() as f64)
}

/// Checks that `samples` fit `model`: matching width, consistent lengths, labels in range.
pub fn check_samples<M: Classifier>(model: &M, samples: &Samples) -> Result<(), ModelError> {
    if samples.dim != model.input_dim() || samples.features.len() != samples.len() * samples.dim {
        return Err(ModelError::InputDim {
            expected: model.input_dim(),
            found: samples.dim,
        });
    }
    if let Some(&label) = samples.labels.iter().find(|&&l| l >= model.num_classes()) {
        return Err(ModelError::Label {
            label,
            classes: model.num_classes(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LogReg, Mlp};
    use crate::rng::{derive_rng, uniform_unit};

    /// Three Gaussian-ish blobs in 2-D (uniform noise around three centres).
    fn blobs(n: usize) -> Samples {
        let mut rng = derive_rng(9, "blobs", 0);
        let centres = [(-2.0, 0.0), (2.0, 0.0), (0.0, 2.5)];
        let mut s = Samples::empty(2);
        for i in 0..n {
            let (cx, cy) = centres[i % 3];
            s.features
                .push((cx + uniform_unit(&mut rng) * 2.0 - 1.0) as f32);
            s.features
                .push((cy + uniform_unit(&mut rng) * 2.0 - 1.0) as f32);
            s.labels.push(i % 3);
        }
        s
    }

    const CONFIG: SgdConfig = SgdConfig {
        epochs: 20,
        batch_size: 8,
        learning_rate: 0.1,
    };

    #[test]
    fn training_reduces_loss() {
        let data = blobs(90);
        let mut logreg = LogReg::new(2, 3).unwrap();
        let before = mean_loss(&logreg, &data).unwrap();
        train_sgd(&mut logreg, &data, &CONFIG, &mut derive_rng(1, "sgd", 0)).unwrap();
        let after = mean_loss(&logreg, &data).unwrap();
        assert!(after < 0.5 * before, "{before} -> {after}");

        let mut mlp = Mlp::new(2, 8, 3, &mut derive_rng(1, "init", 0)).unwrap();
        let before = mean_loss(&mlp, &data).unwrap();
        train_sgd(&mut mlp, &data, &CONFIG, &mut derive_rng(1, "sgd", 0)).unwrap();
        let after = mean_loss(&mlp, &data).unwrap();
        assert!(after < 0.5 * before, "{before} -> {after}");
    }

    #[test]
    fn training_is_deterministic() {
        let data = blobs(30);
        let mut a = Mlp::new(2, 4, 3, &mut derive_rng(1, "init", 0)).unwrap();
        let mut b = a.clone();
        train_sgd(&mut a, &data, &CONFIG, &mut derive_rng(3, "sgd", 0)).unwrap();
        train_sgd(&mut b, &data, &CONFIG, &mut derive_rng(3, "sgd", 0)).unwrap();
        assert_eq!(a.params(), b.params());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut m = LogReg::new(3, 3).unwrap();
        let data = blobs(6);
        let mut rng = derive_rng(0, "x", 0);
        assert!(matches!(
            train_sgd(&mut m, &data, &CONFIG, &mut rng),
            Err(ModelError::InputDim { .. })
        ));
        let mut m = LogReg::new(2, 2).unwrap();
        assert!(matches!(
            train_sgd(&mut m, &data, &CONFIG, &mut rng),
            Err(ModelError::Label { label: 2, .. })
        ));
        let mut m = LogReg::new(2, 3).unwrap();
        let bad = SgdConfig {
            learning_rate: f32::NAN,
            ..CONFIG
        };
        assert!(matches!(
            train_sgd(&mut m, &data, &bad, &mut rng),
            Err(ModelError::Config(_))
        ));
        assert_eq!(
            train_sgd(&mut m, &Samples::empty(2), &CONFIG, &mut rng),
            Err(ModelError::NoSamples)
        );
    }
}
