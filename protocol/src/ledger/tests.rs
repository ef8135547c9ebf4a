//! Tests of `ledger`.

use super::*;

fn task() -> TaskId {
    TaskId([3; 32])
}

#[test]
fn spends_until_the_budget_and_refuses_past_it() {
    let mut ledger = Ledger::new(task(), 1.0).unwrap();
    for round in 0..4 {
        let e = ledger
            .prepare_release(round, 0.25, 10, Time(100 + u64::from(round)))
            .unwrap();
        ledger.commit(e).unwrap();
    }
    // 4 × 0.25 = 1.0 exactly: the edge itself is allowed...
    assert_eq!(ledger.rho_spent(), 1.0);
    // ...and anything beyond is refused.
    assert!(matches!(
        ledger.prepare_release(9, 1e-12, 1, Time(200)),
        Err(LedgerError::BudgetExceeded { .. })
    ));
    Ledger::verify_chain(&task(), ledger.entries()).unwrap();
}

#[test]
fn float_accumulation_never_passes_the_budget() {
    // The f64 nearest 0.1 is 0.1000000000000000055…, so ten of them sum to
    // slightly more than 1.0 (round-to-nearest would even show 0.9999999999999999):
    // exactly nine releases fit a budget of 1.0.
    let mut ledger = Ledger::new(task(), 1.0).unwrap();
    let mut round = 0;
    while let Ok(e) = ledger.prepare_release(round, 0.1, 1, Time(0)) {
        ledger.commit(e).unwrap();
        round += 1;
    }
    assert_eq!(round, 9);
    assert!(ledger.rho_spent() <= 1.0);
}

#[test]
fn a_round_is_released_once() {
    let mut ledger = Ledger::new(task(), 10.0).unwrap();
    let e = ledger.prepare_release(5, 1.0, 3, Time(1)).unwrap();
    ledger.commit(e).unwrap();
    assert_eq!(
        ledger.prepare_release(5, 1.0, 3, Time(2)),
        Err(LedgerError::AlreadyReleased(5))
    );
}

#[test]
fn invalid_inputs_are_refused() {
    assert!(Ledger::new(task(), 0.0).is_err());
    assert!(Ledger::new(task(), f64::NAN).is_err());
    let ledger = Ledger::new(task(), 1.0).unwrap();
    assert!(matches!(
        ledger.prepare_release(0, -0.1, 1, Time(0)),
        Err(LedgerError::InvalidRho(_))
    ));
    assert!(matches!(
        ledger.prepare_release(0, f64::NAN, 1, Time(0)),
        Err(LedgerError::InvalidRho(_))
    ));
}

#[test]
fn tampering_is_detected_at_the_first_bad_entry() {
    let mut ledger = Ledger::new(task(), 10.0).unwrap();
    for round in 0..5 {
        let e = ledger.prepare_release(round, 0.5, 7, Time(10)).unwrap();
        ledger.commit(e).unwrap();
    }
    let good = ledger.entries().to_vec();
    Ledger::verify_chain(&task(), &good).unwrap();

    let mut edited = good.clone();
    edited[2].rho = 0.1;
    assert_eq!(
        Ledger::verify_chain(&task(), &edited),
        Err(LedgerError::BrokenChain { index: 2 })
    );
    let mut removed = good.clone();
    removed.remove(1);
    assert_eq!(
        Ledger::verify_chain(&task(), &removed),
        Err(LedgerError::BrokenChain { index: 1 })
    );
    let mut swapped = good.clone();
    swapped.swap(3, 4);
    assert_eq!(
        Ledger::verify_chain(&task(), &swapped),
        Err(LedgerError::BrokenChain { index: 3 })
    );
    // Another task's ledger does not verify under this task id.
    assert_eq!(
        Ledger::verify_chain(&TaskId([4; 32]), &good),
        Err(LedgerError::BrokenChain { index: 0 })
    );
    // Reloading re-verifies.
    assert!(Ledger::from_entries(task(), 10.0, edited).is_err());
    let reloaded = Ledger::from_entries(task(), 10.0, good).unwrap();
    assert_eq!(reloaded.rho_spent(), 2.5);
}

#[test]
fn commit_refuses_an_entry_not_prepared_for_this_state() {
    let mut ledger = Ledger::new(task(), 10.0).unwrap();
    let e0 = ledger.prepare_release(0, 1.0, 1, Time(0)).unwrap();
    let stale = e0.clone();
    ledger.commit(e0).unwrap();
    assert!(matches!(
        ledger.commit(stale),
        Err(LedgerError::BrokenChain { .. })
    ));
    // Each link checked on its own: the sequence number, the previous hash, the hash.
    let e1 = ledger.prepare_release(1, 1.0, 1, Time(1)).unwrap();
    let mut wrong_seq = e1.clone();
    wrong_seq.seq = 5;
    wrong_seq.hash = wrong_seq.compute_hash(&task());
    let mut wrong_prev = e1.clone();
    wrong_prev.prev_hash = [9; 32];
    wrong_prev.hash = wrong_prev.compute_hash(&task());
    let mut wrong_hash = e1.clone();
    wrong_hash.hash[0] ^= 1;
    for bad in [wrong_seq, wrong_prev, wrong_hash] {
        assert!(matches!(
            ledger.commit(bad),
            Err(LedgerError::BrokenChain { index: 1 })
        ));
    }
    ledger.commit(e1).unwrap();
}

#[test]
fn an_rdp_ledger_composes_curves_enforces_epsilon_and_reloads() {
    let budget = LedgerBudget::Rdp {
        epsilon: 2.0,
        delta: 1e-6,
    };
    let curve = RdpCurve::subsampled_discrete_gaussian(1.0, 1.1, 0.05).unwrap();
    let mut ledger = Ledger::with_budget(task(), &budget).unwrap();
    let mut round = 0;
    let refused = loop {
        match ledger.prepare(round, ReleaseCost::Rdp(curve.clone()), 5, Time(1)) {
            Ok(e) => {
                assert_eq!(ledger.epsilon_after(&e), {
                    let mut t = ledger.clone();
                    t.commit(e.clone()).unwrap();
                    t.rdp_epsilon_spent().map(|x| x.0)
                });
                ledger.commit(e).unwrap();
                round += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(refused, LedgerError::EpsilonExceeded { .. }),
        "{refused}"
    );
    assert!(round >= 2, "{round}");
    let (spent, _) = ledger.rdp_epsilon_spent().unwrap();
    assert!(spent <= 2.0);
    // Reloaded from its entries (a restart): the same total, the same refusal.
    let reloaded = Ledger::from_entries_with(task(), &budget, ledger.entries().to_vec()).unwrap();
    assert_eq!(reloaded.rdp_epsilon_spent(), ledger.rdp_epsilon_spent());
    assert!(
        reloaded
            .prepare(round, ReleaseCost::Rdp(curve.clone()), 5, Time(2))
            .is_err()
    );
    // The entries do not load as a zCDP ledger, nor zCDP entries as an RDP one.
    assert!(matches!(
        Ledger::from_entries(task(), 10.0, ledger.entries().to_vec()),
        Err(LedgerError::WrongAccountant(_))
    ));
    let mut zcdp = Ledger::new(task(), 10.0).unwrap();
    let e = zcdp.prepare_release(0, 0.5, 1, Time(0)).unwrap();
    zcdp.commit(e).unwrap();
    assert!(matches!(
        Ledger::from_entries_with(task(), &budget, zcdp.entries().to_vec()),
        Err(LedgerError::WrongAccountant(_))
    ));
    // An edited curve breaks the chain.
    let mut entries = ledger.entries().to_vec();
    let mut values = entries[0].rdp.as_ref().unwrap().values().to_vec();
    values[3] /= 2.0;
    entries[0].rdp = Some(RdpCurve::from_values(values).unwrap());
    assert_eq!(
        Ledger::verify_chain(&task(), &entries),
        Err(LedgerError::BrokenChain { index: 0 })
    );
}

#[test]
fn a_ledger_head_with_a_negative_or_nan_rho_does_not_decode() {
    for rho in [-1e-9, -1.0, f64::NAN, f64::NEG_INFINITY] {
        let head = LedgerHead {
            entries: 1,
            rho_total: rho,
            hash: [1; 32],
        };
        let mut bytes = Vec::new();
        head.encode_into(&mut bytes);
        let mut r = cairn_mpc::codec::Reader::new(&bytes);
        assert!(LedgerHead::decode_from(&mut r).is_err(), "ρ = {rho}");
    }
    let head = LedgerHead {
        entries: 1,
        rho_total: 0.0,
        hash: [1; 32],
    };
    let mut bytes = Vec::new();
    head.encode_into(&mut bytes);
    let mut r = cairn_mpc::codec::Reader::new(&bytes);
    assert_eq!(LedgerHead::decode_from(&mut r).unwrap(), head);
}

#[test]
fn an_rdp_budget_must_be_a_positive_finite_epsilon_and_a_delta_in_0_1() {
    let bad = [
        (0.0, 1e-6),
        (-1.0, 1e-6),
        (f64::NAN, 1e-6),
        (f64::INFINITY, 1e-6),
        (1.0, 0.0),
        (1.0, -1e-6),
        (1.0, 1.0),
        (1.0, f64::NAN),
    ];
    for (epsilon, delta) in bad {
        assert!(
            Ledger::with_budget(task(), &LedgerBudget::Rdp { epsilon, delta }).is_err(),
            "ε = {epsilon}, δ = {delta}"
        );
    }
    for (epsilon, delta) in [(1e-9, 1e-12), (1.0, 0.999_999)] {
        assert!(Ledger::with_budget(task(), &LedgerBudget::Rdp { epsilon, delta }).is_ok());
    }
}

#[test]
fn an_rdp_entry_that_also_charges_rho_does_not_load() {
    let budget = LedgerBudget::Rdp {
        epsilon: 2.0,
        delta: 1e-6,
    };
    let curve = RdpCurve::subsampled_discrete_gaussian(1.0, 1.1, 0.05).unwrap();
    let mut ledger = Ledger::with_budget(task(), &budget).unwrap();
    let e = ledger
        .prepare(0, ReleaseCost::Rdp(curve), 5, Time(1))
        .unwrap();
    ledger.commit(e).unwrap();
    // The same entry with a ρ beside its curve, re-hashed so that the chain verifies:
    // an entry of neither accountant, refused rather than half counted.
    let mut entries = ledger.entries().to_vec();
    entries[0].rho = 0.5;
    entries[0].rho_total = 0.5;
    entries[0].hash = entries[0].compute_hash(&task());
    Ledger::verify_chain(&task(), &entries).unwrap();
    assert!(matches!(
        Ledger::from_entries_with(task(), &budget, entries),
        Err(LedgerError::WrongAccountant(_))
    ));
}
