//! What each HPKE seal binds: the associated data of a helper's input share and of an
//! aggregate share.
//!
//! [`crate::hpke`] seals and opens bytes; this module says which bytes the seal of
//! each message is bound to, for every party that seals or opens one (client and
//! helper, aggregators and collector), so that a ciphertext moved to another report,
//! round, aggregator or client, or carried beside rewritten metadata, fails to open.
//! Each field is fixed-width, so the concatenation is unambiguous.

use crate::auth::{ClientId, public_share_digest};
use crate::ids::{ReportId, TaskId};
use crate::ledger::LedgerHead;
use crate::messages::BudgetReceipt;

/// HPKE associated data of a sealed aggregate share: task, round, aggregator, and the
/// metadata the collector reads beside the share (report count, budget receipt,
/// ledger head), so that a leader forwarding a helper's share cannot rewrite them.
pub fn aggregate_aad(
    task_id: &TaskId,
    round: u32,
    index: u8,
    report_count: u32,
    receipt: &BudgetReceipt,
    ledger: &LedgerHead,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + 4 + 1 + 4 + 32 + LedgerHead::ENCODED_LEN);
    aad.extend_from_slice(&task_id.0);
    aad.extend_from_slice(&round.to_le_bytes());
    aad.push(index);
    aad.extend_from_slice(&report_count.to_le_bytes());
    for v in [
        receipt.rho_spent,
        receipt.rho_total,
        receipt.epsilon_total,
        receipt.epsilon_remaining,
    ] {
        aad.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    ledger.encode_into(&mut aad);
    aad
}

/// HPKE associated data of a sealed helper input share: task, report, round, helper,
/// client and the hash of everything else the client made public (the public share),
/// as DAP's `InputShareAad` binds the public share. A leader that alters the public
/// share (and so the joint randomness the helper would verify under) makes the share
/// fail to open.
pub fn input_share_aad(
    task_id: &TaskId,
    report_id: &ReportId,
    round: u32,
    index: u8,
    client_id: &ClientId,
    public_share: &[u8],
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + 16 + 4 + 1 + 16 + 32);
    aad.extend_from_slice(&task_id.0);
    aad.extend_from_slice(&report_id.0);
    aad.extend_from_slice(&round.to_le_bytes());
    aad.push(index);
    aad.extend_from_slice(&client_id.0);
    aad.extend_from_slice(&public_share_digest(public_share));
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CLIENT_ID_LEN;
    use crate::ids::REPORT_ID_LEN;
    use std::collections::BTreeSet;

    #[test]
    fn every_field_of_an_input_share_changes_its_binding() {
        let aad = |task: u8, report: u8, round: u32, index: u8, client: u8, public: &[u8]| {
            input_share_aad(
                &TaskId([task; 32]),
                &ReportId([report; REPORT_ID_LEN]),
                round,
                index,
                &ClientId([client; CLIENT_ID_LEN]),
                public,
            )
        };
        let all = [
            aad(1, 1, 1, 1, 1, b"p"),
            aad(2, 1, 1, 1, 1, b"p"),
            aad(1, 2, 1, 1, 1, b"p"),
            aad(1, 1, 2, 1, 1, b"p"),
            aad(1, 1, 1, 2, 1, b"p"),
            aad(1, 1, 1, 1, 2, b"p"),
            aad(1, 1, 1, 1, 1, b"q"),
            aad(1, 1, 1, 1, 1, b""),
        ];
        // Fixed width whatever the public share's length: no two splits of one string.
        assert!(
            all.iter()
                .all(|a| a.len() == 32 + REPORT_ID_LEN + 4 + 1 + CLIENT_ID_LEN + 32)
        );
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
    }

    #[test]
    fn every_field_of_an_aggregate_share_changes_its_binding() {
        let receipt = BudgetReceipt {
            rho_spent: 0.1,
            rho_total: 0.2,
            epsilon_total: 1.0,
            epsilon_remaining: 0.5,
        };
        let head = LedgerHead {
            entries: 2,
            rho_total: 0.2,
            hash: [9; 32],
        };
        let base = aggregate_aad(&TaskId([1; 32]), 3, 1, 10, &receipt, &head);
        let mut all = vec![base.clone()];
        all.push(aggregate_aad(&TaskId([2; 32]), 3, 1, 10, &receipt, &head));
        all.push(aggregate_aad(&TaskId([1; 32]), 4, 1, 10, &receipt, &head));
        all.push(aggregate_aad(&TaskId([1; 32]), 3, 2, 10, &receipt, &head));
        all.push(aggregate_aad(&TaskId([1; 32]), 3, 1, 11, &receipt, &head));
        for i in 0..4 {
            let mut r = receipt;
            let field = [
                &mut r.rho_spent,
                &mut r.rho_total,
                &mut r.epsilon_total,
                &mut r.epsilon_remaining,
            ];
            *field.into_iter().nth(i).unwrap() += 1.0;
            all.push(aggregate_aad(&TaskId([1; 32]), 3, 1, 10, &r, &head));
        }
        for h in [
            LedgerHead { entries: 3, ..head },
            LedgerHead {
                rho_total: 0.3,
                ..head
            },
            LedgerHead {
                hash: [8; 32],
                ..head
            },
        ] {
            all.push(aggregate_aad(&TaskId([1; 32]), 3, 1, 10, &receipt, &h));
        }
        assert!(all.iter().all(|a| a.len() == base.len()));
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
    }
}
