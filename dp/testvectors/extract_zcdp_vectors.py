#!/usr/bin/env python3
"""Copies the zCDP rows of shared/testvectors/accountant_refs.csv into cks20_zcdp.json.

Section C (discrete Gaussian) rows: methods zcdp_to_approxdp (OpenDP 0.16.0),
zcdp_cks20_continuous_alpha (numpy/scipy) and zcdp_bun_steinke16. Section A (continuous
Gaussian, no subsampling) rows with the same two zCDP methods are also zCDP-compatible
(rho = T * Delta^2 / (2 sigma^2) is the same formula), so they are copied too.
Run from the repository root:  python3 dp/testvectors/extract_zcdp_vectors.py
"""
import csv, json, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/testvectors/accountant_refs.csv"
DST = "dp/testvectors/cks20_zcdp.json"
METHODS = {"zcdp_to_approxdp", "zcdp_cks20_continuous_alpha", "zcdp_bun_steinke16"}

with open(SRC) as f:
    header = f.readline().strip().lstrip("# ")
    rows = list(csv.DictReader(f))

vectors = []
for r in rows:
    if r["method"] not in METHODS:
        continue
    if not r["section"].startswith(("C_", "A_")):
        continue
    vectors.append({
        "section": r["section"],
        "mechanism": r["mechanism"],
        "sigma": float(r["sigma"]),
        "sensitivity": float(r["sensitivity"]),
        "compositions": int(r["compositions"]),
        "delta": float(r["delta"]),
        "rho": float(r["rho"]),
        "method": r["method"],
        "library": r["library"],
        "library_version": r["library_version"],
        "epsilon": float(r["epsilon"]),
    })

doc = {
    "provenance": {
        "source": "shared/testvectors/accountant_refs.csv (sections C_discrete_gaussian_zcdp and "
                  "A_gaussian_no_subsampling, zCDP methods only), copied by "
                  "dp/testvectors/extract_zcdp_vectors.py",
        "source_header": header,
        "methods": {
            "zcdp_to_approxdp": "OpenDP 0.16.0: make_gaussian(int) [x make_composition(T)] -> "
                                "make_zCDP_to_approxDP -> epsilon(delta)",
            "zcdp_cks20_continuous_alpha": "own numpy 2.4.6 / scipy 1.17.1: eps = inf_a "
                                           "[a rho + log1p(-1/a) - (log a + log delta)/(a-1)]",
            "zcdp_bun_steinke16": "eps = rho + 2 sqrt(rho ln(1/delta))",
        },
    },
    "vectors": vectors,
}
with open(DST, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(f"wrote {len(vectors)} vectors to {DST}")
