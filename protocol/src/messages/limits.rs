//! The lengths a decoder accepts, derived from the task, and who reads frames from whom.

use crate::auth::REPORT_TAG_LEN;
use crate::hpke::{HPKE_KEY_LEN, HPKE_TAG_LEN};

/// Upper bounds on the lengths a decoder accepts, derived from the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a report's public share.
    pub public_share: usize,
    /// Bytes of a report's leader share.
    pub leader_share: usize,
    /// Bytes of one helper's input share of the validity scheme. What the client seals
    /// to the helper is this share followed by the helper's report tag
    /// ([`Limits::helper_plaintext`]).
    pub helper_share: usize,
    /// Number of helpers (aggregators − 1).
    pub helpers: usize,
    /// Reports in one aggregation job.
    pub reports_per_job: usize,
    /// Bytes of one verifier share.
    pub verifier_share: usize,
    /// Bytes of one plaintext aggregate share (sealed adds the HPKE tag).
    pub aggregate_share: usize,
}

impl Limits {
    /// Bytes a client seals to each helper: the helper's input share and its tag.
    pub fn helper_plaintext(&self) -> usize {
        self.helper_share.saturating_add(REPORT_TAG_LEN)
    }

    /// The largest frame any message may take under these limits. Saturates rather
    /// than overflowing. A transport should read no more than the frames its peer
    /// may send ([`Limits::max_inbound_frame_len`]).
    pub fn max_frame_len(&self) -> usize {
        [
            Inbound::LeaderFromClients,
            Inbound::LeaderFromHelpers,
            Inbound::HelperFromLeader,
            Inbound::ClientFromLeader,
            Inbound::CollectorFromLeader,
        ]
        .into_iter()
        .map(|i| self.max_inbound_frame_len(i))
        .max()
        .unwrap_or(1024)
    }

    /// The largest frame a party may receive from the peers of `inbound`: a client's
    /// upload is not a collect response, so a leader reading uploads does not accept
    /// frames the size of 64-report jobs.
    pub fn max_inbound_frame_len(&self, inbound: Inbound) -> usize {
        let sealed_helper = self
            .helper_plaintext()
            .saturating_add(HPKE_KEY_LEN + HPKE_TAG_LEN + 4);
        let report = 128usize
            .saturating_add(self.public_share)
            .saturating_add(self.leader_share)
            .saturating_add(sealed_helper.saturating_mul(self.helpers));
        let job_init = 64usize.saturating_add(
            self.reports_per_job.saturating_mul(
                96usize
                    .saturating_add(self.public_share)
                    .saturating_add(sealed_helper),
            ),
        );
        let job_resp = 64usize.saturating_add(
            self.reports_per_job
                .saturating_mul(self.verifier_share.saturating_add(32)),
        );
        let sealed_aggregate = self
            .aggregate_share
            .saturating_add(HPKE_KEY_LEN + HPKE_TAG_LEN + 192);
        let collect = 64usize.saturating_add(sealed_aggregate.saturating_mul(self.helpers + 1));
        let small = 1024;
        match inbound {
            Inbound::LeaderFromClients => report.max(small),
            Inbound::LeaderFromHelpers => job_resp.max(sealed_aggregate).max(small),
            Inbound::HelperFromLeader => job_init.max(small),
            Inbound::ClientFromLeader => small,
            Inbound::CollectorFromLeader => collect.max(small),
        }
    }
}

/// Who receives frames from whom, for [`Limits::max_inbound_frame_len`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// The leader's server: uploads from clients, collect requests from the collector.
    LeaderFromClients,
    /// The leader's answers from helpers: job responses and aggregate shares.
    LeaderFromHelpers,
    /// A helper's server: jobs and aggregate-share requests from the leader.
    HelperFromLeader,
    /// A client's answers: acknowledgements and errors.
    ClientFromLeader,
    /// The collector's answers: collect responses and errors.
    CollectorFromLeader,
}
