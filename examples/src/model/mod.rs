//! Classifiers written plainly over flat `f32` parameter vectors.
//!
//! Both models minimise the mean softmax cross-entropy ([`softmax`]); their parameters
//! live in one flat vector (`params`/`set_params`), which is what FedAvg averages and
//! what a secure-sum backend adds up. Training is minibatch SGD ([`train`]),
//! deterministic given the seeded generator it is handed.

pub mod logreg;
pub mod mlp;
pub mod softmax;
pub mod train;

use thiserror::Error;

use crate::features::Samples;

pub use logreg::LogReg;
pub use mlp::Mlp;
pub use train::{SgdConfig, mean_loss, train_sgd};

/// Why a model operation failed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// A parameter vector of the wrong length.
    #[error("parameter vector has length {found}, the model has {expected}")]
    ParamLength {
        /// The model's parameter count.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// Samples whose width differs from the model's input dimension.
    #[error("samples have {found} features, the model expects {expected}")]
    InputDim {
        /// The model's input dimension.
        expected: usize,
        /// The samples' width.
        found: usize,
    },
    /// A label outside the model's classes.
    #[error("label {label} is not below the model's {classes} classes")]
    Label {
        /// The label.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A shape or training setting that is zero or not finite and positive.
    #[error("invalid setting: {0}")]
    Config(&'static str),
    /// Training asked for on no samples.
    #[error("no samples to train on")]
    NoSamples,
    /// A parameter became NaN or infinite (learning rate too large).
    #[error("training diverged (non-finite parameters); lower the learning rate")]
    Diverged,
}

/// A classifier with a flat parameter vector and an analytic loss gradient.
pub trait Classifier {
    /// Number of input features.
    fn input_dim(&self) -> usize;

    /// Number of classes.
    fn num_classes(&self) -> usize;

    /// The flat parameter vector.
    fn params(&self) -> &[f32];

    /// Replaces the parameters (same length as [`Classifier::params`]).
    fn set_params(&mut self, params: &[f32]) -> Result<(), ModelError>;

    /// Writes the class scores (logits) of input `x` into `out` (length
    /// [`Classifier::num_classes`]).
    fn logits(&self, x: &[f32], out: &mut [f64]);

    /// Adds to `grad` the gradient of the cross-entropy loss summed over the samples
    /// `indices` of `samples`, and returns that summed loss. Inputs are assumed
    /// validated (see [`train::check_samples`]).
    fn accumulate_gradient(&self, samples: &Samples, indices: &[usize], grad: &mut [f64]) -> f64;

    /// The predicted class of input `x` (the arg-max logit; ties go to the lower class).
    fn predict(&self, x: &[f32]) -> usize {
        let mut z = vec![0.0; self.num_classes()];
        self.logits(x, &mut z);
        softmax::argmax(&z)
    }
}

/// Either model, chosen at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Multinomial logistic regression.
    LogReg(LogReg),
    /// One-hidden-layer ReLU network.
    Mlp(Mlp),
}

impl Classifier for Model {
    fn input_dim(&self) -> usize {
        match self {
            Self::LogReg(m) => m.input_dim(),
            Self::Mlp(m) => m.input_dim(),
        }
    }

    fn num_classes(&self) -> usize {
        match self {
            Self::LogReg(m) => m.num_classes(),
            Self::Mlp(m) => m.num_classes(),
        }
    }

    fn params(&self) -> &[f32] {
        match self {
            Self::LogReg(m) => m.params(),
            Self::Mlp(m) => m.params(),
        }
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), ModelError> {
        match self {
            Self::LogReg(m) => m.set_params(params),
            Self::Mlp(m) => m.set_params(params),
        }
    }

    fn logits(&self, x: &[f32], out: &mut [f64]) {
        match self {
            Self::LogReg(m) => m.logits(x, out),
            Self::Mlp(m) => m.logits(x, out),
        }
    }

    fn accumulate_gradient(&self, samples: &Samples, indices: &[usize], grad: &mut [f64]) -> f64 {
        match self {
            Self::LogReg(m) => m.accumulate_gradient(samples, indices, grad),
            Self::Mlp(m) => m.accumulate_gradient(samples, indices, grad),
        }
    }
}

fn set_flat(dst: &mut [f32], src: &[f32]) -> Result<(), ModelError> {
    if dst.len() != src.len() {
        return Err(ModelError::ParamLength {
            expected: dst.len(),
            found: src.len(),
        });
    }
    dst.copy_from_slice(src);
    Ok(())
}

#[cfg(test)]
pub(crate) mod gradient_check {
    //! Finite-difference check shared by the model tests.
    use super::*;

    /// Compares the analytic gradient with central differences of the summed loss.
    pub(crate) fn check<M: Classifier>(model: &mut M, samples: &Samples) {
        let indices: Vec<usize> = (0..samples.len()).collect();
        let mut grad = vec![0.0; model.params().len()];
        model.accumulate_gradient(samples, &indices, &mut grad);
        let base = model.params().to_vec();
        let h = 1e-2f32;
        let mut worst = 0.0f64;
        for i in 0..base.len() {
            let mut p = base.clone();
            p[i] = base[i] + h;
            model.set_params(&p).unwrap();
            let up = total_loss(model, samples, &indices);
            p[i] = base[i] - h;
            model.set_params(&p).unwrap();
            let down = total_loss(model, samples, &indices);
            // Use the actually representable step.
            let step = f64::from(base[i] + h) - f64::from(base[i] - h);
            let numeric = (up - down) / step;
            let err = (numeric - grad[i]).abs() / (1.0 + grad[i].abs());
            worst = worst.max(err);
        }
        model.set_params(&base).unwrap();
        assert!(worst < 1e-3, "worst relative gradient error {worst}");
    }

    fn total_loss<M: Classifier>(model: &M, samples: &Samples, indices: &[usize]) -> f64 {
        let mut scratch = vec![0.0; model.params().len()];
        model.accumulate_gradient(samples, indices, &mut scratch)
    }
}
