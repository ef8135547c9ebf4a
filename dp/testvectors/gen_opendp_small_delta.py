#!/usr/bin/env python3
"""Generates opendp_zcdp_small_delta.json: OpenDP's zCDP -> (eps, delta) conversion at
delta in {1e-6, 1e-9}. The vendored reference CSV holds OpenDP rows at delta = 1e-5 only,
and the conversion's error is largest where log(1/delta) is large, so these rows test
the accountant where an operator with many records would set delta.

Grid: the 18 (sigma, Delta, T) of the CSV's OpenDP rows, for the integer discrete
Gaussian, exactly as the CSV builds them:
    make_gaussian(atom_domain(int), absolute_distance(int), scale=sigma)
    [x make_composition(T)] -> make_zCDP_to_approxDP -> profile.epsilon(delta)
Sensitivity Delta enters through the input distance d_in = Delta.

Needs opendp == 0.16.0 (pip install opendp==0.16.0). Run from the repository root:
    python3 dp/testvectors/gen_opendp_small_delta.py
"""
import json
from importlib.metadata import version

import opendp.prelude as dp

dp.enable_features("contrib")
assert version("opendp") == "0.16.0", version("opendp")

SIGMAS = [0.5, 2.0, 10.0]
SENSITIVITIES = [1, 2]
COMPOSITIONS = [1, 10, 100]
DELTAS = [1e-6, 1e-9]
DST = "dp/testvectors/opendp_zcdp_small_delta.json"

space = dp.atom_domain(T=int), dp.absolute_distance(T=int)
vectors = []
for sigma in SIGMAS:
    for sens in SENSITIVITIES:
        for t in COMPOSITIONS:
            base = space >> dp.m.then_gaussian(scale=sigma)
            meas = base if t == 1 else dp.c.make_composition([base] * t)
            rho = meas.map(sens)
            approx = dp.c.make_zCDP_to_approxDP(meas)
            profile = approx.map(sens)
            for delta in DELTAS:
                vectors.append({
                    "sigma": sigma,
                    "sensitivity": float(sens),
                    "compositions": t,
                    "delta": delta,
                    "rho": rho,
                    "epsilon": profile.epsilon(delta),
                })

doc = {
    "provenance": {
        "library": "opendp " + version("opendp"),
        "generator": "dp/testvectors/gen_opendp_small_delta.py",
        "method": "make_gaussian(atom_domain(int), absolute_distance(int), scale=sigma) "
                  "[x make_composition(T)] -> make_zCDP_to_approxDP -> epsilon(delta); "
                  "rho = the composed measurement's map(Delta)",
        "licence": "numbers computed with OpenDP (MIT); no OpenDP code is included",
    },
    "vectors": vectors,
}
with open(DST, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(f"wrote {len(vectors)} vectors to {DST}")
