//! A one-hidden-layer network: a = ReLU(W₁x + b₁), logits z = W₂a + b₂, softmax
//! cross-entropy.
//!
//! Parameters, flat: `W₁` (hidden × dim, row-major), `b₁` (hidden), `W₂` (classes ×
//! hidden), `b₂` (classes). Back-propagation for one sample, with δz = p − e_y:
//! ∂/∂W₂ = δz aᵀ, ∂/∂b₂ = δz, δa = W₂ᵀ δz, δh = δa ⊙ 1[W₁x + b₁ > 0],
//! ∂/∂W₁ = δh xᵀ, ∂/∂b₁ = δh (Rumelhart, Hinton & Williams 1986, generalised delta rule).
//!
//! Initialisation (seeded): W₁ ~ U(±√(6/dim)) (He et al. 2015, uniform form, for ReLU
//! layers), W₂ ~ U(±√(6/(hidden + classes))) (Glorot & Bengio 2010, eq. 16), biases 0.

use rand_core::Rng;

use super::logreg::dot;
use super::softmax::cross_entropy_grad;
use super::{Classifier, ModelError, set_flat};
use crate::features::Samples;
use crate::rng::uniform_unit;

/// A one-hidden-layer ReLU classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    dim: usize,
    hidden: usize,
    classes: usize,
    params: Vec<f32>,
}

impl Mlp {
    /// A randomly initialised network (see the module docs).
    pub fn new<R: Rng + ?Sized>(
        dim: usize,
        hidden: usize,
        classes: usize,
        rng: &mut R,
    ) -> Result<Self, ModelError> {
        if dim == 0 || hidden == 0 || classes < 2 {
            return Err(ModelError::Config(
                "an MLP needs dim >= 1, hidden >= 1 and classes >= 2",
            ));
        }
        let mut params = Vec::with_capacity(hidden * dim + hidden + classes * hidden + classes);
        let a1 = (6.0 / dim as f64).sqrt();
        params.extend((0..hidden * dim).map(|_| ((uniform_unit(rng) * 2.0 - 1.0) * a1) as f32));
        params.extend(std::iter::repeat_n(0.0, hidden));
        let a2 = (6.0 / (hidden + classes) as f64).sqrt();
        params.extend((0..classes * hidden).map(|_| ((uniform_unit(rng) * 2.0 - 1.0) * a2) as f32));
        params.extend(std::iter::repeat_n(0.0, classes));
        Ok(Self {
            dim,
            hidden,
            classes,
            params,
        })
    }

    /// Number of hidden units.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Splits the parameters into (W₁, b₁, W₂, b₂).
    fn parts(&self) -> (&[f32], &[f32], &[f32], &[f32]) {
        let (w1, rest) = self.params.split_at(self.hidden * self.dim);
        let (b1, rest) = rest.split_at(self.hidden);
        let (w2, b2) = rest.split_at(self.classes * self.hidden);
        (w1, b1, w2, b2)
    }

    /// Hidden pre-activations of `x` into `pre`, then the logits from them into `out`.
    fn forward(&self, x: &[f32], pre: &mut [f64], out: &mut [f64]) {
        let (w1, b1, w2, b2) = self.parts();
        for (j, p) in pre.iter_mut().enumerate() {
            *p = f64::from(b1[j]) + dot(&w1[j * self.dim..(j + 1) * self.dim], x);
        }
        for (k, o) in out.iter_mut().enumerate() {
            let row = &w2[k * self.hidden..(k + 1) * self.hidden];
            *o = f64::from(b2[k])
                + row
                    .iter()
                    .zip(pre.iter())
                    .map(|(w, p)| f64::from(*w) * p.max(0.0))
                    .sum::<f64>();
        }
    }
}

impl Classifier for Mlp {
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
        let mut pre = vec![0.0; self.hidden];
        self.forward(x, &mut pre, out);
    }

    fn accumulate_gradient(&self, samples: &Samples, indices: &[usize], grad: &mut [f64]) -> f64 {
        let (h, d, k) = (self.hidden, self.dim, self.classes);
        let (_, _, w2, _) = self.parts();
        let (g_w1, rest) = grad.split_at_mut(h * d);
        let (g_b1, rest) = rest.split_at_mut(h);
        let (g_w2, g_b2) = rest.split_at_mut(k * h);
        let mut pre = vec![0.0; h];
        let mut z = vec![0.0; k];
        let mut delta_h = vec![0.0; h];
        let mut loss = 0.0;
        for &i in indices {
            let x = samples.row(i);
            self.forward(x, &mut pre, &mut z);
            loss += cross_entropy_grad(&mut z, samples.labels[i]);
            delta_h.fill(0.0);
            for (c, &dz) in z.iter().enumerate() {
                g_b2[c] += dz;
                let w_row = &w2[c * h..(c + 1) * h];
                let g_row = &mut g_w2[c * h..(c + 1) * h];
                for j in 0..h {
                    let a = pre[j].max(0.0);
                    g_row[j] += dz * a;
                    delta_h[j] += f64::from(w_row[j]) * dz;
                }
            }
            for j in 0..h {
                if pre[j] <= 0.0 {
                    continue;
                }
                let dh = delta_h[j];
                g_b1[j] += dh;
                for (g, &xv) in g_w1[j * d..(j + 1) * d].iter_mut().zip(x) {
                    *g += dh * f64::from(xv);
                }
            }
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gradient_check;
    use crate::rng::derive_rng;

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = derive_rng(5, "mlp-test", 0);
        let mut model = Mlp::new(3, 4, 3, &mut rng).unwrap();
        // Non-zero biases so that every path is exercised.
        let mut p = model.params().to_vec();
        for (i, v) in p.iter_mut().enumerate() {
            *v += 0.05 * ((i % 7) as f32 - 3.0);
        }
        model.set_params(&p).unwrap();
        let samples = Samples {
            dim: 3,
            features: (0..18)
                .map(|_| (uniform_unit(&mut rng) * 4.0 - 2.0) as f32)
                .collect(),
            labels: vec![0, 1, 2, 2, 1, 0],
        };
        gradient_check::check(&mut model, &samples);
    }

    #[test]
    fn initialisation_is_deterministic_and_sized() {
        let a = Mlp::new(5, 3, 2, &mut derive_rng(1, "init", 0)).unwrap();
        let b = Mlp::new(5, 3, 2, &mut derive_rng(1, "init", 0)).unwrap();
        let c = Mlp::new(5, 3, 2, &mut derive_rng(2, "init", 0)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.params().len(), 5 * 3 + 3 + 2 * 3 + 2);
        assert!(Mlp::new(5, 0, 2, &mut derive_rng(1, "init", 0)).is_err());
    }
}
