//! The anchors, measured in the same run at the same d: `prio` 0.17
//! `Prio3FixedPointBoundedL2VecSum` (16-bit fixed point, 2 aggregators), `prio` 0.18
//! `Prio3SumVec` (16-bit entries), and the physical floor (ChaCha20 expansion of d
//! words plus one pass over d elements).
//!
//! Per anchor: shard time (the client's work), `prepare_init` time of the slower
//! aggregator per report, report bytes (public share + all input shares), and the
//! leader↔helper bytes of one report in a DAP-style exchange (public share + helper
//! input share forwarded, the leader's prepare share, a 32-byte prepare message).
//! A size whose single shard takes longer than the cutoff is skipped.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cairn_mpc::field::{Field64, FieldElement as _};
use cairn_mpc::prg::{Domain, Prg, Usage};
use cairn_mpc::secret::Seed;
use serde::Serialize;

use crate::timing::{median_time, ms};

/// One anchor's figures at one dimension.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AnchorFigures {
    /// Dimension d.
    pub(crate) d: usize,
    /// Shard (client) time, ms; `None` when skipped.
    pub(crate) shard_ms: Option<f64>,
    /// The slower aggregator's `prepare_init` per report, ms.
    pub(crate) prepare_ms_per_report: Option<f64>,
    /// Public share + every input share, bytes.
    pub(crate) report_bytes: Option<usize>,
    /// `report_bytes / d`.
    pub(crate) report_bytes_per_param: Option<f64>,
    /// Leader↔helper bytes per report (module docs).
    pub(crate) leader_helper_bytes_per_report: Option<usize>,
    /// Why it was skipped, if it was.
    pub(crate) skipped: Option<String>,
}

impl AnchorFigures {
    fn skipped(d: usize, why: String) -> Self {
        Self {
            d,
            shard_ms: None,
            prepare_ms_per_report: None,
            report_bytes: None,
            report_bytes_per_param: None,
            leader_helper_bytes_per_report: None,
            skipped: Some(why),
        }
    }
}

const CTX: &[u8] = b"cairn-bench";
const NONCE: [u8; 16] = [7; 16];

/// Generates the measuring function for one prio version (the two crates have the
/// same trait shapes but are distinct types, hence a macro).
macro_rules! prio_measure {
    ($name:ident, $prio:ident, $prep:ident, $vdaf:expr, $measurement:expr) => {
        fn $name(d: usize, runs: usize, cutoff: Duration) -> anyhow::Result<AnchorFigures> {
            use $prio::codec::Encode as _;
            use $prio::vdaf::{Aggregator as _, Client as _};
            let vdaf = $vdaf(d)?;
            let x = $measurement(d);
            let key = [9u8; 32];
            let start = Instant::now();
            let (public, inputs) = vdaf.shard(CTX, &x, &NONCE)?;
            let one = start.elapsed();
            if one > cutoff {
                return Ok(AnchorFigures::skipped(
                    d,
                    format!(
                        "one shard took {:.1} s > {} s",
                        one.as_secs_f64(),
                        cutoff.as_secs()
                    ),
                ));
            }
            let public_len = public.get_encoded()?.len();
            let input_lens: Vec<usize> = inputs
                .iter()
                .map(|s| s.get_encoded().map(|b| b.len()))
                .collect::<Result<_, _>>()?;
            let t0 = Instant::now();
            let (_, prep0) = vdaf.$prep(&key, CTX, 0, &(), &NONCE, &public, &inputs[0])?;
            let one_prepare = t0.elapsed();
            let prep_len = prep0.get_encoded()?.len();
            // Fewer repetitions when one run is slow.
            let runs = if one + one_prepare > cutoff / 4 {
                1
            } else {
                runs
            };
            let shard = median_time(runs, || {
                black_box(vdaf.shard(CTX, &x, &NONCE).ok());
            });
            let prepare = (0..2)
                .map(|agg| {
                    median_time(runs, || {
                        black_box(
                            vdaf.$prep(&key, CTX, agg, &(), &NONCE, &public, &inputs[agg])
                                .ok(),
                        );
                    })
                })
                .max()
                .unwrap_or_default();
            let report = public_len + input_lens.iter().sum::<usize>();
            Ok(AnchorFigures {
                d,
                shard_ms: Some(ms(shard)),
                prepare_ms_per_report: Some(ms(prepare)),
                report_bytes: Some(report),
                report_bytes_per_param: Some(report as f64 / d as f64),
                leader_helper_bytes_per_report: Some(public_len + input_lens[1] + prep_len + 32),
                skipped: None,
            })
        }
    };
}

fn l2_vdaf(
    d: usize,
) -> anyhow::Result<
    prio017::vdaf::prio3::Prio3FixedPointBoundedL2VecSum<fixed::FixedI16<fixed::types::extra::U15>>,
> {
    Ok(
        prio017::vdaf::prio3::Prio3FixedPointBoundedL2VecSum::new_fixedpoint_boundedl2_vec_sum(
            2, d,
        )?,
    )
}

/// ‖x‖ = 1/2 < 1 (the type's norm bound), spread evenly over the coordinates.
fn l2_input(d: usize) -> Vec<fixed::types::I1F15> {
    let v = 0.5 / (d as f64).sqrt();
    (0..d)
        .map(|i| fixed::types::I1F15::from_num(if i % 2 == 0 { v } else { -v }))
        .collect()
}

fn sumvec_vdaf(d: usize) -> anyhow::Result<prio018::vdaf::prio3::Prio3SumVec> {
    let chunk = prio018::vdaf::prio3::optimal_chunk_length(16 * d);
    Ok(prio018::vdaf::prio3::Prio3SumVec::new_sum_vec(
        2,
        u128::from(u16::MAX),
        d,
        chunk,
    )?)
}

fn sumvec_input(d: usize) -> Vec<u128> {
    (0..d).map(|i| (i as u128 * 7919) % 65_536).collect()
}

prio_measure!(prio017_measure, prio017, prepare_init, l2_vdaf, l2_input);
prio_measure!(
    prio018_measure,
    prio018,
    verify_init,
    sumvec_vdaf,
    sumvec_input
);

/// prio 0.17 `Prio3FixedPointBoundedL2VecSum<FixedI16<U15>>` at dimension `d`.
pub(crate) fn prio017_l2(d: usize, runs: usize, cutoff: Duration) -> AnchorFigures {
    prio017_measure(d, runs, cutoff)
        .unwrap_or_else(|e| AnchorFigures::skipped(d, format!("error: {e}")))
}

/// prio 0.18 `Prio3SumVec` with 16-bit entries at dimension `d`.
pub(crate) fn prio018_sumvec(d: usize, runs: usize, cutoff: Duration) -> AnchorFigures {
    prio018_measure(d, runs, cutoff)
        .unwrap_or_else(|e| AnchorFigures::skipped(d, format!("error: {e}")))
}

/// The physical floor at one dimension.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FloorFigures {
    /// Dimension d.
    pub(crate) d: usize,
    /// ChaCha20 expansion of d 64-bit words into `Field64` (cairn-mpc's PRG), ms.
    pub(crate) chacha_expand_ms: f64,
    /// One pass adding d `Field64` elements into an accumulator (mod p), ms.
    pub(crate) vector_add_ms: f64,
    /// Their sum, ms.
    pub(crate) floor_ms: f64,
}

/// ChaCha20 expansion of d u64 plus one pass over d elements.
pub(crate) fn floor(d: usize, runs: usize) -> FloorFigures {
    let seed = Seed::from_bytes([3; 32]);
    let domain = Domain {
        task_id: [1; 32],
        report_id: [2; 16],
        party: 1,
        usage: Usage::FieldShare,
    };
    let mut words = vec![Field64::ZERO; d];
    let expand = median_time(runs, || {
        Prg::new(&seed, &domain).fill_field(&mut words);
        black_box(&words);
    });
    let mut acc = vec![Field64::ZERO; d];
    let add = median_time(runs, || {
        for (a, w) in acc.iter_mut().zip(&words) {
            *a += *w;
        }
        black_box(&acc);
    });
    FloorFigures {
        d,
        chacha_expand_ms: ms(expand),
        vector_add_ms: ms(add),
        floor_ms: ms(expand + add),
    }
}

/// Exact discrete-Gaussian sampling rate: Cairn's sampler beside OpenDP's.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NoiseFigures {
    /// σ (integer units).
    pub(crate) sigma: u64,
    /// Samples drawn from Cairn's sampler.
    pub(crate) cairn_samples: usize,
    /// Cairn: samples per second.
    pub(crate) cairn_samples_per_sec: f64,
    /// Samples drawn from OpenDP's sampler.
    pub(crate) opendp_samples: usize,
    /// OpenDP 0.16 `sample_discrete_gaussian`: samples per second.
    pub(crate) opendp_samples_per_sec: f64,
}

/// Measures both samplers at σ = `sigma`.
pub(crate) fn noise(
    sigma: u64,
    cairn_samples: usize,
    opendp_samples: usize,
) -> anyhow::Result<NoiseFigures> {
    use cairn_dp::sample::{DiscreteGaussian, Ratio};
    use rand_core::SeedableRng;
    let sampler = DiscreteGaussian::new(Ratio::from_integer(sigma))
        .map_err(|e| anyhow::anyhow!("sampler: {e}"))?;
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([8; 32]);
    let mut out = vec![0i64; cairn_samples];
    let t = median_time(3, || {
        sampler.fill(&mut rng, &mut out);
        black_box(&out);
    });
    let scale = dashu::rational::RBig::from(sigma);
    let start = Instant::now();
    for _ in 0..opendp_samples {
        black_box(opendp::traits::samplers::sample_discrete_gaussian(scale.clone()).ok());
    }
    let o = start.elapsed();
    Ok(NoiseFigures {
        sigma,
        cairn_samples,
        cairn_samples_per_sec: cairn_samples as f64 / t.as_secs_f64(),
        opendp_samples,
        opendp_samples_per_sec: opendp_samples as f64 / o.as_secs_f64(),
    })
}
