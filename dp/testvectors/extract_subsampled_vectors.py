#!/usr/bin/env python3
"""Copies the Poisson-subsampled Gaussian rows of shared/testvectors/accountant_refs.csv
(sections B_poisson_subsampled_gaussian and B2_canonical) into
poisson_subsampled_gaussian.json: the RDP (Opacus 1.6.0, dp-accounting 0.6.0), PLD
(dp-accounting 0.6.0, pessimistic) and PRV (prv-accountant 0.2.0, Opacus) epsilons of the
continuous sampled Gaussian mechanism, for the reference checks of cairn_dp::rdp.
Rows whose library run failed (no epsilon) are skipped.
Run from the repository root:  python3 dp/testvectors/extract_subsampled_vectors.py
"""
import csv, json, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/testvectors/accountant_refs.csv"
DST = "dp/testvectors/poisson_subsampled_gaussian.json"

with open(SRC) as f:
    header = f.readline().strip().lstrip("# ")
    rows = list(csv.DictReader(f))

vectors = []
for r in rows:
    if not r["section"].startswith("B"):
        continue
    if not r["epsilon"]:
        continue
    vectors.append({
        "section": r["section"],
        "sigma": float(r["sigma"]),
        "sensitivity": float(r["sensitivity"]),
        "sampling_rate": float(r["sampling_prob"]),
        "compositions": int(r["compositions"]),
        "delta": float(r["delta"]),
        "method": r["method"],
        "library": r["library"],
        "library_version": r["library_version"],
        "method_params": r["method_params"],
        "epsilon": float(r["epsilon"]),
    })
    # prv-accountant reports a rigorous bracket [epsilon_lower, epsilon_upper] around
    # the true epsilon; the lower end is what a sound accountant must never go below.
    for bound in ("epsilon_lower", "epsilon_upper"):
        if r.get(bound):
            vectors[-1][bound] = float(r[bound])

doc = {
    "provenance": {
        "source": "shared/testvectors/accountant_refs.csv (sections B_poisson_subsampled_gaussian "
        "and B2_canonical), copied by dp/testvectors/extract_subsampled_vectors.py",
        "source_header": header,
        "mechanism": "continuous Gaussian, Poisson subsampling at sampling_rate, add/remove-one "
        "adjacency, composed compositions times",
    },
    "vectors": vectors,
}
with open(DST, "w") as f:
    json.dump(doc, f, indent=1)
print(f"{len(vectors)} vectors -> {DST}")
