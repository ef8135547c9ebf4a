// Limits of a realistic task (d = 1000, 2 aggregators), shared by the targets.
use cairn_protocol::messages::Limits;

pub fn limits() -> Limits {
    Limits {
        public_share: 64,
        leader_share: 32 + 2 * 1000 + 8 * 1100,
        helper_share: 32,
        helpers: 1,
        reports_per_job: 256,
        verifier_share: 32 + 8 * 64,
        aggregate_share: 8 * 1000,
    }
}
