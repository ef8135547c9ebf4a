//! Tests of `rdp`: the curve against closed forms, the calibration's edges.

use super::*;

#[test]
fn without_subsampling_the_curve_is_the_discrete_gaussians() {
    let c = RdpCurve::subsampled_discrete_gaussian(3.0, 2.0, 1.0).unwrap();
    for (alpha, v) in orders().zip(c.values()) {
        let exact = f64::from(alpha) * 9.0 / 8.0;
        assert!(
            (v - exact).abs() <= 2e-10 * exact,
            "{alpha}: {v} vs {exact}"
        );
        assert!(*v >= exact, "rounded up");
    }
    // The sum form agrees with the closed form as q → 1.
    let near = RdpCurve::subsampled_discrete_gaussian(3.0, 2.0, 1.0 - 1e-12).unwrap();
    for (a, b) in c.values().iter().zip(near.values()).take(20) {
        assert!((a - b).abs() <= 1e-6 * a, "{a} vs {b}");
    }
}

#[test]
fn order_two_matches_its_closed_form() {
    // A_2 = (1 − q)² + 2q(1 − q) + q² e^{Δ²/σ²} = 1 + q²(e^{Δ²/σ²} − 1), computed here
    // without cancellation. The cheap releases (small q, large σ) are where a sum
    // that nearly cancels to 1 lost up to a relative 5·10⁻⁶ and fell below it.
    for (q, s) in [
        (0.05f64, 1.3f64),
        (0.04, 10.0),
        (0.04, 50.0),
        (0.01, 200.0),
        (0.001, 200.0),
    ] {
        let c = RdpCurve::subsampled_discrete_gaussian(1.0, s, q).unwrap();
        let exact = (q * q * (1.0 / (s * s)).exp_m1()).ln_1p();
        let got = c.values()[0];
        assert!(
            got >= exact && got <= exact * (1.0 + 1e-9),
            "q {q}, σ {s}: {got} vs {exact}"
        );
    }
}

#[test]
fn the_remove_direction_is_dominated() {
    // c(L) ≥ 0 (module docs) on a grid of q, α and L, up to rounding.
    for q in [1e-4, 1e-3, 0.01, 0.1, 0.3, 0.5, 0.9, 0.999] {
        for alpha in [1.01f64, 1.5, 2.0, 3.0, 8.0, 32.0, 256.0] {
            for z in -200..=200 {
                let l = (f64::from(z) / 10.0).exp();
                let u = (1.0 - q) * l + q;
                let v = 1.0 - q + q * l;
                let terms = [
                    u.powf(alpha) * l.powf(1.0 - alpha),
                    -(l.powf(alpha) * u.powf(1.0 - alpha)),
                    v.powf(alpha),
                    -v.powf(1.0 - alpha),
                ];
                if terms.iter().any(|t| !t.is_finite()) {
                    continue;
                }
                let c: f64 = terms.iter().sum();
                let scale: f64 = terms.iter().map(|t| t.abs()).sum();
                assert!(c >= -1e-12 * scale, "q {q}, α {alpha}, L {l}: {c}");
            }
        }
    }
}

#[test]
fn composition_adds_and_epsilon_falls_with_delta() {
    let one = RdpCurve::subsampled_discrete_gaussian(1.0, 1.0, 0.1).unwrap();
    let two = one.compose(&one);
    for (t, o) in two.values().iter().zip(one.values()) {
        assert!(
            *t >= 2.0 * o && *t <= 2.0 * o * (1.0 + 1e-9),
            "{t} vs 2·{o}"
        );
    }
    assert_eq!(one.times(2).values().len(), NUM_ORDERS);
    let (e5, _) = two.epsilon(1e-5).unwrap();
    let (e9, _) = two.epsilon(1e-9).unwrap();
    assert!(e9 > e5 && e5 > 0.0);
    assert!(RdpCurve::zero().epsilon(0.5).unwrap().0 >= 0.0);
}

#[test]
fn bad_parameters_are_refused() {
    assert!(matches!(
        RdpCurve::subsampled_discrete_gaussian(1.0, 1.0, 0.0),
        Err(RdpError::SamplingRate(_))
    ));
    assert!(RdpCurve::subsampled_discrete_gaussian(1.0, 1.0, 1.5).is_err());
    assert!(RdpCurve::subsampled_discrete_gaussian(1.0, 1.0, f64::NAN).is_err());
    assert!(RdpCurve::subsampled_discrete_gaussian(1.0, 0.0, 0.5).is_err());
    assert!(RdpCurve::subsampled_discrete_gaussian(-1.0, 1.0, 0.5).is_err());
    assert!(RdpCurve::zero().epsilon(0.0).is_err());
    assert!(RdpCurve::from_values(vec![0.0; 3]).is_err());
    assert!(RdpCurve::from_values(vec![-1.0; NUM_ORDERS]).is_err());
}

#[test]
fn the_zcdp_form_is_the_discrete_gaussians_curve() {
    let (delta_l2, sigma, q) = (285.3f64, 935.7f64, 0.02f64);
    let dg = RdpCurve::subsampled_discrete_gaussian(delta_l2, sigma, q).unwrap();
    let rho = delta_l2 * delta_l2 / (2.0 * sigma * sigma);
    assert_eq!(dg, RdpCurve::subsampled_zcdp(rho, q).unwrap());
    // A larger ρ bounds a larger curve at every order.
    let more = RdpCurve::subsampled_zcdp(rho * 1.01, q).unwrap();
    assert!(more.values().iter().zip(dg.values()).all(|(m, d)| m > d));
}

#[test]
fn the_distributed_curve_approaches_the_central_one_from_above() {
    let (delta_l2, q, d) = (285.3f64, 0.04f64, 861u64);
    // Five clients, σ_c = σ/√5 ≥ 400: KLS21's τ is negligible, the sum of the
    // clients' noise is as good as one discrete Gaussian of variance σ².
    let sigma = 935.7f64;
    let central = RdpCurve::subsampled_discrete_gaussian(delta_l2, sigma, q).unwrap();
    let spread = RdpCurve::subsampled_distributed(delta_l2, sigma, 5, d, q).unwrap();
    for (s, c) in spread.values().iter().zip(central.values()) {
        assert!(*s >= *c && *s <= c * (1.0 + 1e-9), "{s} vs {c}");
    }
    // At σ_c near 1/2 the τ correction is visible, and only ever adds.
    let small = 0.6 * 5f64.sqrt();
    let central = RdpCurve::subsampled_discrete_gaussian(1.0, small, q).unwrap();
    let spread = RdpCurve::subsampled_distributed(1.0, small, 5, d, q).unwrap();
    assert!(
        spread
            .values()
            .iter()
            .zip(central.values())
            .all(|(s, c)| s > c)
    );
    // Outside what KLS21 covers: refused, never a curve.
    for (sigma, clients, dim) in [(0.49 * 2.0, 4u64, 10u64), (10.0, 0, 10), (10.0, 4, 0)] {
        assert!(matches!(
            RdpCurve::subsampled_distributed(1.0, sigma, clients, dim, q),
            Err(RdpError::Distributed { .. })
        ));
    }
}

#[test]
fn the_maximum_is_taken_per_order() {
    let a = RdpCurve::subsampled_discrete_gaussian(0.5, 1.0, 0.5).unwrap();
    let b = RdpCurve::from_values(vec![0.3; NUM_ORDERS]).unwrap();
    let m = a.max(&b);
    for ((m, a), b) in m.values().iter().zip(a.values()).zip(b.values()) {
        assert_eq!(*m, a.max(*b));
    }
    assert!(m.values()[0] == 0.3 && m.values()[NUM_ORDERS - 1] > 0.3);
}

#[test]
fn distributed_calibration_meets_the_target_and_costs_more_than_central() {
    let (delta_l2, q, rounds, d) = (285.3f64, 0.04f64, 600u64, 861u64);
    let sigma =
        sigma_for_epsilon_subsampled_distributed(1.0, 1e-6, delta_l2, 5, d, q, rounds).unwrap();
    let eps = epsilon_subsampled_distributed(delta_l2, sigma, 5, d, q, rounds, 1e-6).unwrap();
    assert!(eps <= 1.0, "{eps}");
    let tighter =
        epsilon_subsampled_distributed(delta_l2, sigma * 0.999, 5, d, q, rounds, 1e-6).unwrap();
    assert!(tighter > 1.0, "{tighter}");
    let central = sigma_for_epsilon_subsampled(1.0, 1e-6, delta_l2, q, rounds).unwrap();
    assert!(
        sigma >= central && sigma <= central * (1.0 + 1e-5),
        "{sigma} vs {central}"
    );
    // A target the floor σ_c = 1/2 already meets returns the floor.
    let floor = sigma_for_epsilon_subsampled_distributed(1e6, 1e-6, 1.0, 4, 10, 0.01, 1).unwrap();
    assert!((floor - 1.0).abs() < 1e-6, "{floor}");
}

/// Survivors of the mutation run (RELIABILITY.md): the calibration is tight also
/// when σ falls below Δ (the bisection's lower end matters there), a target below
/// what the grid of orders can reach is `Unreachable` (not a loop or another
/// error), and σ per client of exactly 1/2 is inside KLS21's range.
#[test]
fn calibration_edges() {
    // Large ε: σ ≈ 0.6·Δ here.
    let sigma = sigma_for_epsilon_subsampled(50.0, 1e-6, 10.0, 0.5, 10).unwrap();
    assert!(sigma < 10.0, "{sigma}");
    assert!(epsilon_subsampled(10.0, sigma, 0.5, 10, 1e-6).unwrap() <= 50.0);
    assert!(epsilon_subsampled(10.0, sigma * 0.999, 0.5, 10, 1e-6).unwrap() > 50.0);
    // ε below the conversion's floor on the orders 2..=256 at δ = 1e−6.
    assert!(matches!(
        sigma_for_epsilon_subsampled(0.01, 1e-6, 1.0, 0.01, 10),
        Err(RdpError::Unreachable(_))
    ));
    assert!(RdpCurve::subsampled_distributed(1.0, 1.0, 4, 10, 0.1).is_ok());
}

#[test]
fn calibration_meets_the_target_and_not_by_much() {
    let sigma = sigma_for_epsilon_subsampled(1.0, 1e-6, 1.0, 0.01, 1000).unwrap();
    let eps = epsilon_subsampled(1.0, sigma, 0.01, 1000, 1e-6).unwrap();
    assert!(eps <= 1.0, "{eps}");
    let tighter = epsilon_subsampled(1.0, sigma * 0.999, 0.01, 1000, 1e-6).unwrap();
    assert!(tighter > 0.99, "{tighter}");
}
