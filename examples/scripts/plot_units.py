#!/usr/bin/env python3
"""Macro-F1 against ε for both units of privacy, from fl_intrusion's results.json files.

    python3 examples/scripts/plot_units.py examples/results/record_level.json \
        examples/results/record_level_client_noise.json \
        examples/results/client_level.json > examples/results/macro_f1_vs_epsilon.svg

Each file holds the rows `fl_intrusion --out DIR` writes (run, unit, epsilon, seed,
macro_f1, accuracy); the plot shows the mean over seeds per ε and unit (record-level
runs with noise at the organisations, `--record-noise client`, as a series of their
own), with the
min–max range as a band, ε on a log axis. Standard library only.
"""
import json, math, sys
from collections import defaultdict

W, H, L, R, T, B = 720, 400, 70, 230, 30, 55
E_MIN, E_MAX = 0.4, 10.0

def x_of(e):
    return L + (math.log(e) - math.log(E_MIN)) / (math.log(E_MAX) - math.log(E_MIN)) * (W - L - R)

def y_of(f):
    return T + (1.0 - f) * (H - T - B)

series = defaultdict(lambda: defaultdict(list))
flat = {}
for path in sys.argv[1:]:
    for row in json.load(open(path)):
        if row["epsilon"] is None:
            if row["run"] in ("dpsgd_no_noise", "fedavg_plaintext"):
                flat.setdefault(row["unit"], []).append(row["macro_f1"])
            continue
        key = row["unit"] + ("_client_noise" if "client_noise" in row["run"] else "")
        series[key][row["epsilon"]].append(row["macro_f1"])

colours = {"record": "#1b6ca8", "record_client_noise": "#1e8449", "client": "#c0392b"}
names = {"record": "record level (DP-SGD)",
         "record_client_noise": "record level, noise at the orgs",
         "client": "organisation level (DP-FedAvg)"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for f in [0, 0.2, 0.4, 0.6, 0.8, 1.0]:
    y = y_of(f)
    out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W-R}" y2="{y:.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L-8}" y="{y+4:.1f}" text-anchor="end">{f:.1f}</text>')
for e in [0.5, 1, 2, 4, 8]:
    x = x_of(e)
    out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H-B}" stroke="#eee"/>')
    out.append(f'<text x="{x:.1f}" y="{H-B+18}" text-anchor="middle">{e:g}</text>')
out.append(f'<text x="{(L+W-R)/2:.0f}" y="{H-12}" text-anchor="middle">ε (δ = 1e-6, whole training)</text>')
out.append(f'<text x="18" y="{(T+H-B)/2:.0f}" transform="rotate(-90 18 {(T+H-B)/2:.0f})" text-anchor="middle">macro-F1, held-out split</text>')
legend_y = T + 10
for unit, by_eps in series.items():
    c = colours.get(unit, "#555")
    eps = sorted(by_eps)
    means = [sum(by_eps[e]) / len(by_eps[e]) for e in eps]
    band = [(x_of(e), y_of(max(by_eps[e]))) for e in eps] + [(x_of(e), y_of(min(by_eps[e]))) for e in reversed(eps)]
    out.append('<polygon points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in band) + f'" fill="{c}" fill-opacity="0.15"/>')
    out.append('<polyline points="' + " ".join(f"{x_of(e):.1f},{y_of(m):.1f}" for e, m in zip(eps, means)) + f'" fill="none" stroke="{c}" stroke-width="2"/>')
    for e, m in zip(eps, means):
        out.append(f'<circle cx="{x_of(e):.1f}" cy="{y_of(m):.1f}" r="3" fill="{c}"/>')
    if unit in flat:
        f = sum(flat[unit]) / len(flat[unit])
        out.append(f'<line x1="{L}" y1="{y_of(f):.1f}" x2="{W-R}" y2="{y_of(f):.1f}" stroke="{c}" stroke-dasharray="5,4"/>')
    out.append(f'<line x1="{W-R+10}" y1="{legend_y}" x2="{W-R+30}" y2="{legend_y}" stroke="{c}" stroke-width="2"/>')
    out.append(f'<text x="{W-R+35}" y="{legend_y+4}" font-size="11">{names.get(unit, unit)}</text>')
    legend_y += 20
out.append(f'<text x="{W-R+10}" y="{legend_y+4}" font-size="11">dashed: no noise</text>')
out.append("</svg>")
print("\n".join(out))
