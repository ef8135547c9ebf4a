//! Softmax cross-entropy, computed stably.
//!
//! For logits z and true class y: p_k = exp(z_k − m) / Σ_j exp(z_j − m) with m = max z
//! (the shift leaves p unchanged and keeps exp from overflowing); the loss is
//! −ln p_y = ln Σ_j exp(z_j − m) + m − z_y, and its gradient with respect to z is
//! p − e_y (e.g. Bishop, *Pattern Recognition and Machine Learning*, eq. 4.109).

/// Overwrites `z` with `∂loss/∂z = p − e_y` and returns the loss `−ln p_y`.
pub fn cross_entropy_grad(z: &mut [f64], y: usize) -> f64 {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let shifted_y = z.get(y).map_or(0.0, |v| v - m);
    let mut total = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        total += *v;
    }
    for (k, v) in z.iter_mut().enumerate() {
        *v /= total;
        if k == y {
            *v -= 1.0;
        }
    }
    total.ln() - shifted_y
}

/// Index of the largest value (the first one on ties; 0 for an empty slice).
pub fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (k, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = k;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_give_ln_k() {
        let mut z = [0.0; 4];
        let loss = cross_entropy_grad(&mut z, 2);
        assert!((loss - 4f64.ln()).abs() < 1e-12);
        assert!((z[2] + 0.75).abs() < 1e-12);
        assert!((z[0] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn large_logits_stay_finite() {
        let mut z = [1000.0, -1000.0];
        let loss = cross_entropy_grad(&mut z, 1);
        assert!(loss.is_finite() && loss > 1000.0, "{loss}");
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
