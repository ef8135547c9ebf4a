//! Multinomial logistic regression: logits z = W x + b, trained with softmax
//! cross-entropy.
//!
//! Parameters, flat: `W` (classes × dim, row-major), then `b` (classes). The gradient of
//! the loss for one sample is ∂/∂W = (p − e_y) xᵀ and ∂/∂b = p − e_y (see
//! [`super::softmax`]). The loss is convex in (W, b), so all-zero initial parameters are
//! a fine, seed-free start.

use super::softmax::cross_entropy_grad;
use super::{Classifier, ModelError, set_flat};
use crate::features::Samples;

/// A multinomial logistic-regression model.
#[derive(Debug, Clone, PartialEq)]
pub struct LogReg {
    dim: usize,
    classes: usize,
    params: Vec<f32>,
}

impl LogReg {
    /// A model with all-zero parameters.
    pub fn new(dim: usize, classes: usize) -> Result<Self, ModelError> {
        if dim == 0 || classes < 2 {
            return Err(ModelError::Config(
                "logistic regression needs dim >= 1 and classes >= 2",
            ));
        }
        Ok(Self {
            dim,
            classes,
            params: vec![0.0; classes * dim + classes],
        })
    }
}

impl Classifier for LogReg {
    fn input_dim(&self) -> usize {
        self.dim
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), ModelError> {
        set_flat(&mut self.params, params)
    }

    fn logits(&self, x: &[f32], out: &mut [f64]) {
        let (w, b) = self.params.split_at(self.classes * self.dim);
        for (k, o) in out.iter_mut().enumerate().take(self.classes) {
            let row = &w[k * self.dim..(k + 1) * self.dim];
            *o = f64::from(b[k]) + dot(row, x);
        }
    }

    fn accumulate_gradient(&self, samples: &Samples, indices: &[usize], grad: &mut [f64]) -> f64 {
        let mut z = vec![0.0; self.classes];
        let mut loss = 0.0;
        let bias_offset = self.classes * self.dim;
        for &i in indices {
            let x = samples.row(i);
            self.logits(x, &mut z);
            loss += cross_entropy_grad(&mut z, samples.labels[i]);
            for (k, &dz) in z.iter().enumerate() {
                let g = &mut grad[k * self.dim..(k + 1) * self.dim];
                for (gj, &xj) in g.iter_mut().zip(x) {
                    *gj += dz * f64::from(xj);
                }
                grad[bias_offset + k] += dz;
            }
        }
        loss
    }
}

/// Dot product accumulated in f64.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gradient_check;
    use crate::rng::{derive_rng, uniform_unit};

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = derive_rng(11, "logreg-test", 0);
        let mut model = LogReg::new(4, 3).unwrap();
        let params: Vec<f32> = (0..model.params().len())
            .map(|_| (uniform_unit(&mut rng) * 2.0 - 1.0) as f32)
            .collect();
        model.set_params(&params).unwrap();
        let samples = Samples {
            dim: 4,
            features: (0..20)
                .map(|_| (uniform_unit(&mut rng) * 4.0 - 2.0) as f32)
                .collect(),
            labels: vec![0, 2, 1, 2, 0],
        };
        gradient_check::check(&mut model, &samples);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(LogReg::new(0, 3).is_err());
        assert!(LogReg::new(3, 1).is_err());
        let mut m = LogReg::new(2, 2).unwrap();
        assert_eq!(
            m.set_params(&[0.0; 5]),
            Err(ModelError::ParamLength {
                expected: 6,
                found: 5
            })
        );
    }
}
