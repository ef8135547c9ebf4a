// Limits of a realistic task (d = 1000, 2 aggregators), shared by the targets: exactly
// `Scheme::for_task(..).limits()` of `cairn init --dim 1000` (checked by
// aggregator/tests/reliability_corpus.rs), so valid uploads decode and the fuzzer
// reaches the end of the decoder.
use cairn_protocol::messages::Limits;

pub fn limits() -> Limits {
    Limits {
        public_share: 64,
        leader_share: 13_376,
        helper_share: 32,
        helpers: 1,
        reports_per_job: 64,
        verifier_share: 2_472,
        aggregate_share: 8 * 1000,
    }
}
