#!/usr/bin/env python3
"""bench-table.py: the side-by-side tables of BENCHMARKS.md from the output
folders of scripts/bench-vs-torch.sh (one folder per round; each cell takes
each side's best round: the least time, the most rows/s).

    python3 scripts/bench-table.py OUT1 [OUT2 ...]
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


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def main():
    dirs = sys.argv[1:]
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


if __name__ == "__main__":
    main()
