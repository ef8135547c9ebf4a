#!/usr/bin/env python3
"""Independent reference values for the distributed discrete Gaussian accounting of
Kairouz, Liu, Steinke, "The Distributed Discrete Gaussian Mechanism for Federated Learning
with Secure Aggregation" (ICML 2021), Theorem 1:

  tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k/(k+1))
  rho = 1/2 * min( Delta^2/(n sigma^2) + 2 tau d,  (Delta/(sqrt(n) sigma) + tau sqrt(d))^2 )

for n clients each adding N_Z(0, sigma^2) per coordinate (d coordinates, L2 sensitivity
Delta). Also the smallest per-client sigma meeting a target rho (bisection in Python).
Written from the paper's formulas, without reference to the Rust code.
Run from the repository root:  python3 dp/testvectors/gen_kls21.py
Uses only the Python standard library (math.fsum, float64).
"""
import json, math, platform

def tau(n, sigma):
    return 10.0 * math.fsum(math.exp(-2.0 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, n))

def rho(delta_l2, sigma, n, d):
    t = tau(n, sigma)
    a = delta_l2**2 / (n * sigma**2) + 2.0 * t * d
    b = (delta_l2 / (math.sqrt(n) * sigma) + t * math.sqrt(d))**2
    return 0.5 * min(a, b), t, 0 if a <= b else 1

def client_sigma(target, delta_l2, n, d):
    lo, hi = 1e-6, 1.0
    while rho(delta_l2, hi, n, d)[0] > target:
        lo, hi = hi, 2 * hi
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if rho(delta_l2, mid, n, d)[0] <= target:
            hi = mid
        else:
            lo = mid
    return hi

cases = []
for (delta_l2, sigma, n, d) in [
    (1.0, 1.0, 1, 1),
    (10.0, 2.0, 10, 100),
    (1000.0, 1.0, 100, 100_000),
    (1000.0, 0.8, 50, 10_000),
    (500.0, 1.2, 1000, 1_000_000),
    (4.0, 0.5, 20, 1000),
    (65536.0, 3.0, 100, 100_000),
]:
    r, t, branch = rho(delta_l2, sigma, n, d)
    cases.append({"sensitivity": delta_l2, "sigma": sigma, "clients": n, "dim": d,
                  "tau": t, "rho": r, "min_branch": branch})

calibrations = []
for (target, delta_l2, n, d) in [
    (0.5, 1000.0, 100, 100_000),
    (0.01, 65536.0, 100, 100_000),
    (2.0, 10.0, 10, 100),
    (1.0, 50.0, 1000, 1_000_000),
]:
    s = client_sigma(target, delta_l2, n, d)
    calibrations.append({"rho": target, "sensitivity": delta_l2, "clients": n, "dim": d,
                         "client_sigma": s, "rho_at_sigma": rho(delta_l2, s, n, d)[0]})

doc = {
    "provenance": {
        "generator": "dp/testvectors/gen_kls21.py",
        "python": platform.python_version(),
        "libraries": "Python standard library only (math.fsum, float64)",
        "formula": "KLS21 (ICML 2021) Theorem 1: rho = 1/2 min(D^2/(n s^2) + 2 tau d, "
                   "(D/(sqrt(n) s) + tau sqrt(d))^2), tau = 10 sum_{k=1}^{n-1} "
                   "exp(-2 pi^2 s^2 k/(k+1)); min_branch 0/1 = which term is smaller",
    },
    "rho_cases": cases,
    "client_sigma_cases": calibrations,
}
with open("dp/testvectors/kls21_ddg.json", "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(json.dumps(doc, indent=1))
