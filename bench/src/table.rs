//! The summary table (each Cairn figure beside its DESIGN §8 target and its anchors,
//! with ratios) and the per-dimension and per-round tables.
//!
//! Ratios are "times better than the anchor": anchor ÷ Cairn for costs (time, bytes),
//! Cairn ÷ anchor for rates (samples per second). Above 1 means Cairn is ahead.

use std::fmt::Write as _;

use serde::Serialize;

use crate::anchors::{AnchorFigures, FloorFigures, NoiseFigures};
use crate::cairn::CairnFigures;
use crate::e2e::RoundFigures;
use crate::flower::{FlowerFigures, FlowerRound};

/// One line of the summary table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// What is measured (and at which size).
    pub(crate) figure: String,
    /// Cairn's value.
    pub(crate) cairn: Option<f64>,
    /// Unit of the values.
    pub(crate) unit: String,
    /// DESIGN §8 target, as text.
    pub(crate) target: String,
    /// Whether Cairn meets the target (`None`: no numeric target).
    pub(crate) meets_target: Option<bool>,
    /// Anchor name.
    pub(crate) anchor: String,
    /// Anchor's value (same unit), `None` if skipped or not applicable.
    pub(crate) anchor_value: Option<f64>,
    /// Times better than the anchor (module docs).
    pub(crate) ratio: Option<f64>,
}

/// Lower is better.
fn cost(
    figure: String,
    cairn: Option<f64>,
    unit: &str,
    target: Option<f64>,
    anchor: &str,
    anchor_value: Option<f64>,
) -> Row {
    Row {
        figure,
        cairn,
        unit: unit.to_owned(),
        target: target.map_or("—".into(), |t| format!("≤ {}", fmt(t))),
        meets_target: target.zip(cairn).map(|(t, c)| c <= t),
        anchor: anchor.to_owned(),
        anchor_value,
        ratio: anchor_value.zip(cairn).map(|(a, c)| a / c),
    }
}

/// The figure at the reference dimension: 10^5 if measured, else the largest.
pub(crate) fn reference_d(cairn: &[CairnFigures]) -> usize {
    if cairn.iter().any(|c| c.d == 100_000) {
        100_000
    } else {
        cairn.iter().map(|c| c.d).max().unwrap_or(0)
    }
}

fn at(a: &[AnchorFigures], d: usize) -> Option<&AnchorFigures> {
    a.iter().find(|x| x.d == d)
}

/// Builds the summary rows (DESIGN §8's table, at the reference dimension).
pub(crate) fn summary(
    cairn: &[CairnFigures],
    prio017: &[AnchorFigures],
    prio018: &[AnchorFigures],
    floor: &[FloorFigures],
    noise: &NoiseFigures,
    e2e: &[RoundFigures],
    flower: &FlowerFigures,
) -> Vec<Row> {
    let d = reference_d(cairn);
    let Some(c) = cairn.iter().find(|c| c.d == d) else {
        return Vec::new();
    };
    let p17 = at(prio017, d);
    let p18 = at(prio018, d);
    let fl = floor.iter().find(|f| f.d == d);
    const L2: &str = "prio 0.17 Prio3FixedPointBoundedL2VecSum";
    const SV: &str = "prio 0.18 Prio3SumVec 16-bit";
    const FLOOR: &str = "floor: ChaCha20 d u64 + one pass";
    let mut rows = vec![
        cost(
            format!("client upload (d = {d})"),
            Some(c.upload_bytes_per_param),
            "B/param",
            Some(11.0),
            L2,
            p17.and_then(|a| a.report_bytes_per_param),
        ),
        cost(
            format!("client upload (d = {d})"),
            Some(c.upload_bytes_per_param),
            "B/param",
            Some(11.0),
            SV,
            p18.and_then(|a| a.report_bytes_per_param),
        ),
        cost(
            format!("client upload (d = {d})"),
            Some(c.upload_bytes_per_param),
            "B/param",
            Some(11.0),
            "raw f32",
            Some(4.0),
        ),
        cost(
            format!("client prepare (d = {d})"),
            Some(c.client_prepare_ms),
            "ms",
            Some(15.0),
            L2,
            p17.and_then(|a| a.shard_ms),
        ),
        cost(
            format!("client prepare (d = {d})"),
            Some(c.client_prepare_ms),
            "ms",
            Some(15.0),
            SV,
            p18.and_then(|a| a.shard_ms),
        ),
        cost(
            format!("client prepare (d = {d})"),
            Some(c.client_prepare_ms),
            "ms",
            Some(15.0),
            FLOOR,
            fl.map(|f| f.floor_ms),
        ),
        cost(
            format!("verify+aggregate per report, slower aggregator (d = {d})"),
            Some(c.aggregator_ms_per_report),
            "ms",
            Some(5.0),
            L2,
            p17.and_then(|a| a.prepare_ms_per_report),
        ),
        cost(
            format!("verify+aggregate per report, slower aggregator (d = {d})"),
            Some(c.aggregator_ms_per_report),
            "ms",
            Some(5.0),
            SV,
            p18.and_then(|a| a.prepare_ms_per_report),
        ),
        cost(
            format!("verify+aggregate per report, slower aggregator (d = {d})"),
            Some(c.aggregator_ms_per_report),
            "ms",
            Some(5.0),
            FLOOR,
            fl.map(|f| f.floor_ms),
        ),
        cost(
            format!("  leader per report (d = {d})"),
            Some(c.leader_ms_per_report),
            "ms",
            Some(5.0),
            "",
            None,
        ),
        cost(
            format!("  helper per report (d = {d})"),
            Some(c.helper_ms_per_report),
            "ms",
            Some(5.0),
            "",
            None,
        ),
        cost(
            format!("leader↔helper traffic per report (d = {d})"),
            Some(c.leader_helper_bytes_per_report),
            "B",
            Some(4096.0),
            L2,
            p17.and_then(|a| a.leader_helper_bytes_per_report.map(|b| b as f64)),
        ),
        cost(
            format!("leader↔helper traffic per report (d = {d})"),
            Some(c.leader_helper_bytes_per_report),
            "B",
            Some(4096.0),
            SV,
            p18.and_then(|a| a.leader_helper_bytes_per_report.map(|b| b as f64)),
        ),
        cost(
            format!("collector decode (d = {d})"),
            Some(c.collector_decode_ms),
            "ms",
            None,
            "",
            None,
        ),
    ];
    rows.push(Row {
        figure: format!("exact discrete-Gaussian noise (σ = {})", noise.sigma),
        cairn: Some(noise.cairn_samples_per_sec),
        unit: "samples/s".into(),
        target: "≥ 5000000".into(),
        meets_target: Some(noise.cairn_samples_per_sec >= 5e6),
        anchor: "OpenDP 0.16 sample_discrete_gaussian".into(),
        anchor_value: Some(noise.opendp_samples_per_sec),
        ratio: Some(noise.cairn_samples_per_sec / noise.opendp_samples_per_sec),
    });
    for r in e2e {
        let target = (r.clients == 100 && r.d == 100_000).then_some(5.0);
        let secagg = flower_round(flower, r.clients, r.d, 3);
        rows.push(cost(
            format!(
                "end-to-end round, {} clients, d = {}, loopback QUIC",
                r.clients, r.d
            ),
            Some(r.round_secs),
            "s",
            target,
            if secagg.is_some() {
                "Flower 1.41 SecAgg+, 3 shares, in-process"
            } else {
                "Flower SecAgg+ (not run at this size)"
            },
            secagg.map(|f| f.round_secs),
        ));
        rows.push(cost(
            format!("  peak RSS leader / helper, {} clients", r.clients),
            r.leader_peak_rss_mib,
            "MiB",
            None,
            &format!(
                "helper: {}",
                r.helper_peak_rss_mib
                    .map_or("?".into(), |m| format!("{m:.0} MiB"))
            ),
            None,
        ));
    }
    if let Some(f) = fl {
        rows.push(cost(
            format!("floor: ChaCha20 expansion of d u64 (d = {d})"),
            Some(f.chacha_expand_ms),
            "ms",
            None,
            "",
            None,
        ));
        rows.push(cost(
            format!("floor: one pass adding d u64 (d = {d})"),
            Some(f.vector_add_ms),
            "ms",
            None,
            "",
            None,
        ));
    }
    rows
}

/// A number with a sensible number of digits.
pub(crate) fn fmt(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{x:.3e}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("—".into(), fmt)
}

/// The summary as a Markdown table.
pub(crate) fn render_summary(rows: &[Row], cairn: &[CairnFigures]) -> String {
    let mut s = format!(
        "Summary at d = {} (b = 16, 2 aggregators; ratio = times better than the anchor)\n\n",
        reference_d(cairn)
    );
    s.push_str(
        "| figure | Cairn | unit | DESIGN §8 target | met | anchor | anchor value | ratio |\n",
    );
    s.push_str("|---|---:|---|---|---|---|---:|---:|\n");
    for r in rows {
        let met = match r.meets_target {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let anchor_value = match (
            &r.anchor_value,
            r.anchor.is_empty() || r.anchor.starts_with("helper"),
        ) {
            (None, false) => "skipped".to_owned(),
            (v, _) => opt(*v),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.figure,
            opt(r.cairn),
            r.unit,
            r.target,
            met,
            if r.anchor.is_empty() {
                "—"
            } else {
                &r.anchor
            },
            anchor_value,
            r.ratio.map_or("—".into(), |x| format!("{}×", fmt(x)))
        );
    }
    s
}

/// Every dimension, Cairn beside the anchors.
pub(crate) fn render_per_dimension(
    cairn: &[CairnFigures],
    prio017: &[AnchorFigures],
    prio018: &[AnchorFigures],
    floor: &[FloorFigures],
) -> String {
    let mut s = String::from(
        "Per dimension (times in ms; prep = slower aggregator per report; L2 = prio 0.17 \
         FixedPointBoundedL2VecSum, SV = prio 0.18 SumVec 16-bit)\n\n",
    );
    s.push_str(
        "| d | Cairn client | Cairn B/param | Cairn leader | Cairn helper | Cairn L↔H B | Cairn collector | \
         L2 shard | L2 prep | L2 B/param | SV shard | SV prep | SV B/param | floor |\n",
    );
    s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in cairn {
        let a = at(prio017, c.d);
        let b = at(prio018, c.d);
        let sk = |x: Option<&AnchorFigures>, f: fn(&AnchorFigures) -> Option<f64>| match x {
            Some(x) if x.skipped.is_some() => "skipped".to_owned(),
            Some(x) => opt(f(x)),
            None => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.d,
            fmt(c.client_prepare_ms),
            fmt(c.upload_bytes_per_param),
            fmt(c.leader_ms_per_report),
            fmt(c.helper_ms_per_report),
            fmt(c.leader_helper_bytes_per_report),
            fmt(c.collector_decode_ms),
            sk(a, |x| x.shard_ms),
            sk(a, |x| x.prepare_ms_per_report),
            sk(a, |x| x.report_bytes_per_param),
            sk(b, |x| x.shard_ms),
            sk(b, |x| x.prepare_ms_per_report),
            sk(b, |x| x.report_bytes_per_param),
            opt(floor.iter().find(|f| f.d == c.d).map(|f| f.floor_ms)),
        );
    }
    s
}

/// The end-to-end rounds.
pub(crate) fn render_rounds(e2e: &[RoundFigures]) -> String {
    let mut s = String::from(
        "End-to-end rounds (2 node processes, loopback QUIC, aggregator noise)\n\n\
         CPU s: CPU time each process used during the round (all its threads); the \
         clients' process also holds the collector. Busy %: their sum over (2 cores × \
         round s). Busy answers: uploads the leader refused for want of upload memory (each \
         retried).\n\n\
         | clients | d | round s | submit s | collect s | counted | leader peak RSS MiB | helper peak RSS MiB | clients CPU s | leader CPU s | helper CPU s | busy % | Busy answers |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in e2e {
        let cpu = [r.clients_cpu_secs, r.leader_cpu_secs, r.helper_cpu_secs];
        let busy = cpu
            .iter()
            .copied()
            .sum::<Option<f64>>()
            .filter(|_| r.round_secs > 0.0)
            .map(|total| 100.0 * total / (2.0 * r.round_secs));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.clients,
            r.d,
            fmt(r.round_secs),
            fmt(r.submit_secs),
            fmt(r.collect_secs),
            r.count,
            opt(r.leader_peak_rss_mib),
            opt(r.helper_peak_rss_mib),
            opt(cpu[0]),
            opt(cpu[1]),
            opt(cpu[2]),
            opt(busy),
            r.busy_answers.map_or("—".into(), |n| n.to_string())
        );
    }
    s
}

/// The Flower round at a size and setting, if it ran.
fn flower_round(
    flower: &FlowerFigures,
    clients: usize,
    d: usize,
    shares: usize,
) -> Option<&FlowerRound> {
    flower
        .rounds
        .iter()
        .find(|f| f.clients == clients && f.d == d && f.shares == shares)
}

/// Flower's SecAgg+ beside Cairn's end-to-end rounds of the same size, and what each
/// side protects against.
pub(crate) fn render_flower(flower: &FlowerFigures, e2e: &[RoundFigures]) -> String {
    let mut s = String::from(
        "Flower SecAgg+ beside Cairn (one round; Flower in one Python process without a \
         network, its ClientApps one after another; Cairn over loopback QUIC with 2 node \
         processes, its clients concurrent; ratio = Flower ÷ Cairn)\n\n\
         | clients | d | Cairn round s | Cairn upload B/client | SecAgg+ 3 shares s | \
         SecAgg+ all shares s | plain FedAvg s | SecAgg+ upload B/client | ratio (3 shares) | \
         ratio (all shares) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut sizes: Vec<(usize, usize)> = flower.rounds.iter().map(|f| (f.clients, f.d)).collect();
    sizes.dedup();
    for (clients, d) in sizes {
        let cairn = e2e.iter().find(|r| r.clients == clients && r.d == d);
        let three = flower_round(flower, clients, d, 3);
        let all = flower_round(flower, clients, d, clients);
        let plain = flower_round(flower, clients, d, 0);
        let ratio =
            |f: Option<&FlowerRound>| f.zip(cairn).map(|(f, c)| f.round_secs / c.round_secs);
        let _ = writeln!(
            s,
            "| {clients} | {d} | {} | {} | {} | {} | {} | {} | {} | {} |",
            opt(cairn.map(|c| c.round_secs)),
            cairn.map_or("—".into(), |c| c.upload_bytes_per_client.to_string()),
            opt(three.map(|f| f.round_secs)),
            opt(all.map(|f| f.round_secs)),
            opt(plain.map(|f| f.round_secs)),
            opt(three.map(|f| f.upload_bytes_per_client)),
            opt(ratio(three)),
            opt(ratio(all)),
        );
    }
    if let Some(why) = &flower.skipped {
        let _ = writeln!(s, "\n**{why}**");
    }
    s.push_str(
        "\nWhat each side protects against:\n\
         - Cairn: 2 aggregators, each input private while one of them is honest; every \
         upload proved norm-bounded (zero knowledge), so a malicious client cannot poison \
         the sum; a client that drops out is simply not counted; aggregator DP noise \
         (discrete Gaussian) in these rounds.\n\
         - Flower SecAgg+ (`SecAggPlusWorkflow`): one server, honest but curious; inputs \
         private against the server and fewer than `threshold` colluding clients; \
         survives dropouts while each client keeps `threshold` of its share-holders \
         (threshold 2 of 3 shares, Flower's example, or a majority of all clients); no \
         input validation (a malicious client can send any vector); no DP; masks expanded by \
         NumPy's Mersenne Twister from seeds folded to 32 bits (`pseudo_rand_gen`).\n\
         - Plain FedAvg: no protection; the floor of Flower's own cost.\n",
    );
    s
}
