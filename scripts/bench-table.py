#!/usr/bin/env python3
"""bench-table.py: the side-by-side tables of BENCHMARKS.md from the output
folders of scripts/bench-vs-torch.sh (one folder per round; each cell takes
each side's best round: the least time, the most rows/s).

    python3 scripts/bench-table.py [--peak32 GFLOPS] OUT1 [OUT2 ...]

With --peak32 (the float32 FMA peak of the 2 cores, GFLOP/s: twice
`BenchmarkPeakF32`'s cpu-GFLOP/s of one core, from internal/linalg) it
also prints what each goal of issues 21 and 22 asks of the machine: the
dense arithmetic of each cell (the multiply-adds PyTorch does, counted
from the models' shapes), the fraction of the FMA peak each side reached,
and the fraction the goal's time would need. The float64 peak is half the
float32 one (the same fused multiply-adds, 8 lanes instead of 16).
"""
import json
import re
import sys


def go_rounds(dirs):
    step, rows = {}, {}
    pat = re.compile(r"^Benchmark(\w+)/(\S+)-\d+\s+\d+\s+([\d.]+) ns/op(.*)$")
    for d in dirs:
        for line in open(f"{d}/go.txt"):
            m = pat.match(line.strip())
            if not m:
                continue
            bench, sub, ns, rest = m.group(1), m.group(2), float(m.group(3)), m.group(4)
            kv = dict(s.split("=") for s in sub.split("/") if "=" in s)
            if bench in ("MAFStepPrec", "RealNVPStepPrec"):
                model = "maf" if bench.startswith("MAF") else "rnvp"
                key = (model, kv["prec"], int(kv["dim"]), int(kv["hidden"]), int(kv["batch"]))
                step[key] = min(step.get(key, 1e30), ns / 1e6)
            elif bench == "NSFCouplingStepPrec":
                key = ("rqs", kv["prec"], 8, 128, 256)
                step[key] = min(step.get(key, 1e30), ns / 1e6)
            elif bench == "Grid":
                r = re.search(r"([\d.]+) rows/s", rest)
                key = (kv["model"], "float64", int(kv["dim"]), int(kv["hidden"]), kv["op"])
                rows[key] = max(rows.get(key, 0), float(r.group(1)))
            elif bench == "GridPrec" and kv.get("path") == "prepared":
                r = re.search(r"([\d.]+) rows/s", rest)
                key = (kv["model"], kv["prec"], int(kv["dim"]), int(kv["hidden"]), kv["op"])
                rows[key] = max(rows.get(key, 0), float(r.group(1)))
    return step, rows


def torch_rounds(dirs):
    step, rows = {}, {}
    for d in dirs:
        for r in json.load(open(f"{d}/torch.json"))["results"]:
            key = (r["model"], r["dtype"], r["D"], r["H"], r["B"])
            step[key] = min(step.get(key, 1e30), r["median_ms"])
            for op, f in (("density", "rows_per_s"), ("sample", "samples_per_s")):
                if f in r:
                    k = (r["model"], r["dtype"], r["D"], r["H"], op)
                    rows[k] = max(rows.get(k, 0), r[f])
    return step, rows


# Goals: (issue, op, precision, hidden) -> ratio ours/PyTorch the goal allows
# for a step (time) or asks for rows/s (throughput).
STEP_GOAL = {("float64", 128): 0.5, ("float64", 512): 0.8, ("float32", 128): 1.0, ("float32", 512): 0.8}
ROWS_GOAL = {"float64": 2.0, "float32": 1.5}


def dense_macs(model, d, h):
    """Multiply-adds per row of one pass through the conditioners, dense."""
    if model == "maf":  # 5 MADEs d -> h -> h -> 2d
        return 5 * h * (3 * d + h)
    if model == "rnvp":  # 8 MLPs d/2 -> h -> h -> 2(d/2)
        return 8 * h * (d // 2 + h + d)
    if model == "rqs":  # 8 MLPs d/2 -> h -> h -> (d/2)(3*8-1)
        return 8 * h * (d // 2 + h + (d // 2) * 23)
    raise ValueError(model)


def peak_table(gs, gr, ts, tr, peak32):
    print("| cell | precision | dense GFLOP | PyTorch, % of peak | ours, % of peak | goal | goal needs, % of peak |")
    print("|---|---|---|---|---|---|---|")
    for (m, prec, d, h, b), t in sorted(ts.items(), key=lambda kv: (("maf", "rnvp", "rqs").index(kv[0][0]),) + kv[0][1:]):
        o = gs.get((m, prec, d, h, b))
        goal = STEP_GOAL.get((prec, h))
        if o is None or goal is None:
            continue
        peak = peak32 if prec == "float32" else peak32 / 2
        gflop = 3 * 2 * dense_macs(m, d, h) * b / 1e9  # forward, input and weight pullbacks
        pct = lambda ms: 100 * gflop / (ms / 1e3) / peak
        print(f"| {m} {d}/{h}/{b} step | {prec} | {gflop:.2f} | {pct(t):.0f} | {pct(o):.0f} | ≤ {goal}× | {pct(goal * t):.0f} |")
    for (m, prec, d, h, op), t in sorted(tr.items(), key=lambda kv: (("maf", "rnvp", "rqs").index(kv[0][0]),) + kv[0][1:]):
        o = gr.get((m, prec, d, h, op))
        if o is None or (m == "maf" and op == "sample"):
            continue  # a MAF samples in d sequential passes on PyTorch's side
        goal = ROWS_GOAL[prec]
        peak = peak32 if prec == "float32" else peak32 / 2
        mflop = 2 * dense_macs(m, d, h) / 1e6
        pct = lambda rows: 100 * mflop * rows / 1e3 / peak
        print(f"| {m} {d}/{h} {op} | {prec} | {mflop:.3f} a row | {pct(t):.0f} | {pct(o):.0f} | ≥ {goal}× | {pct(goal * t):.0f} |")


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def main():
    args = sys.argv[1:]
    peak32 = None
    if args and args[0] == "--peak32":
        peak32, args = float(args[1]), args[2:]
    dirs = args
    gs, gr = go_rounds(dirs)
    ts, tr = torch_rounds(dirs)
    print("| model D/H/batch | ours f64 | PyTorch f64 | ours/PT f64 | ours f32 | PyTorch f32 | ours/PT f32 |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted({k[:1] + k[2:] for k in gs}, key=lambda k: (("maf", "rnvp", "rqs").index(k[0]),) + k[1:]):
        m, d, h, b = key
        cells = []
        for prec in ("float64", "float32"):
            o, t = gs.get((m, prec, d, h, b)), ts.get((m, prec, d, h, b))
            cells += [fmt(o, ".2f"), fmt(t, ".2f"), fmt(o / t if o and t else None, ".2f")]
        print(f"| {m} {d}/{h}/{b} | " + " | ".join(cells) + " |")
    print()
    print("| model D/H | op | ours f64 rows/s | PyTorch f64 | ours/PT f64 | ours f32 rows/s | PyTorch f32 | ours f32/PT f32 |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted({(k[0], k[2], k[3], k[4]) for k in gr}, key=lambda k: (("maf", "rnvp", "rqs").index(k[0]), k[1], k[2], k[3])):
        m, d, h, op = key
        o64, t64 = gr.get((m, "float64", d, h, op)), tr.get((m, "float64", d, h, op))
        o32, t32 = gr.get((m, "float32", d, h, op)), tr.get((m, "float32", d, h, op))
        cells = [fmt(o64, ".0f"), fmt(t64, ".0f"), fmt(o64 / t64 if o64 and t64 else None, ".2f"),
                 fmt(o32, ".0f"), fmt(t32, ".0f"), fmt(o32 / t32 if o32 and t32 else None, ".2f")]
        print(f"| {m} {d}/{h} | {op} | " + " | ".join(cells) + " |")
    if peak32:
        print()
        peak_table(gs, gr, ts, tr, peak32)


if __name__ == "__main__":
    main()
