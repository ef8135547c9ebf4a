//! The client-level runs' table on stdout and their JSON, CSV and SVG files.

use super::*;

pub(super) fn print_table(prepared: &Prepared, runs: &[Run], clip: f64, norms: &[f64]) {
    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>10} {:>10}",
        "run (held-out, all classes)", "macro-F1", "accuracy", "ε spent", "σ / C"
    );
    println!("{}", "-".repeat(76));
    let row = |name: &str, f1: f64, acc: f64, eps: &str, sigma: &str| {
        println!("{name:<34} {f1:>9.4} {acc:>9.4} {eps:>10} {sigma:>10}");
    };
    row(
        "majority-class baseline",
        prepared.majority.macro_f1,
        prepared.majority.accuracy,
        "-",
        "-",
    );
    for run in runs {
        if let Some(last) = run.reports.last() {
            row(
                &run.label,
                last.evaluation.macro_f1,
                last.evaluation.accuracy,
                &last
                    .epsilon_spent
                    .map_or_else(|| "no DP".to_owned(), |e| format!("{e:.3}")),
                &run.sigma
                    .map_or_else(|| "-".to_owned(), |s| format!("{:.2}", s / clip)),
            );
        }
    }
    let mut sorted = norms.to_vec();
    sorted.sort_by(f64::total_cmp);
    if let Some(median) = sorted.get(sorted.len() / 2) {
        println!(
            "\nplaintext FedAvg: per-round mean delta norm (before clipping to C = {clip}): \
             median {median:.3}, first round {:.3}, last round {:.3}",
            norms.first().copied().unwrap_or_default(),
            norms.last().copied().unwrap_or_default()
        );
    }
    // The smallest ε whose last-round macro-F1 is within 0.05 of plaintext FedAvg.
    let plaintext = runs
        .iter()
        .find(|r| r.key == "fedavg_plaintext")
        .and_then(|r| r.reports.last())
        .map(|r| r.evaluation.macro_f1);
    if let Some(plaintext) = plaintext {
        let tolerated: Vec<String> = runs
            .iter()
            .filter(|r| r.sigma.is_some())
            .filter_map(|r| {
                let last = r.reports.last()?;
                (last.evaluation.macro_f1 >= plaintext - 0.05)
                    .then(|| format!("{:.3}", last.epsilon_spent.unwrap_or(f64::NAN)))
            })
            .collect();
        if tolerated.is_empty() {
            println!("no DP run is within 0.05 macro-F1 of plaintext FedAvg ({plaintext:.4})");
        } else {
            println!(
                "DP runs within 0.05 macro-F1 of plaintext FedAvg ({plaintext:.4}): ε = {}",
                tolerated.join(", ")
            );
        }
    }
    println!();
    for run in runs
        .iter()
        .filter(|r| r.key == "fedavg_plaintext" || r.sigma.is_some())
    {
        println!("per-class F1 ({}, last round):", run.label);
        if let Some(last) = run.reports.last() {
            for (name, f1) in prepared
                .class_names
                .iter()
                .zip(&last.evaluation.per_class_f1)
            {
                match f1 {
                    Some(f1) => println!("  {name:<18} {f1:.4}"),
                    None => println!("  {name:<18} (absent)"),
                }
            }
        }
    }
}

pub(super) fn write_outputs(out: &Path, prepared: &Prepared, runs: &[Run]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let svg = out.join("macro_f1.svg");
    let curves: Vec<Curve> = runs
        .iter()
        .map(|run| Curve {
            label: run.label.clone(),
            macro_f1: run.reports.iter().map(|r| r.evaluation.macro_f1).collect(),
        })
        .collect();
    write_macro_f1_svg(
        &svg,
        "Federated attack-family triage on KDD Cup '99 (held-out macro-F1)",
        &curves,
        Some(("majority-class baseline", prepared.majority.macro_f1)),
    )?;
    let csv = out.join("rounds.csv");
    let mut text = String::from("run,round,macro_f1,accuracy,epsilon_spent\n");
    for run in runs {
        for r in &run.reports {
            let epsilon = r.epsilon_spent.map(|e| e.to_string()).unwrap_or_default();
            text.push_str(&format!(
                "{},{},{:.6},{:.6},{epsilon}\n",
                run.key, r.round, r.evaluation.macro_f1, r.evaluation.accuracy
            ));
        }
    }
    std::fs::write(&csv, text).with_context(|| format!("writing {}", csv.display()))?;
    println!("\nwrote {} and {}", svg.display(), csv.display());
    Ok(())
}
