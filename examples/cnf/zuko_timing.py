"""Times zuko's CNF on the 8gaussians toy density, for the side-by-side
measurement in BENCHMARKS.md: training steps per second, CPU seconds per
step (all threads; steadier than the wall clock on a shared machine) and
function evaluations (NFE) of the dynamics per step, forward and backward.

The model is zuko.flows.CNF(2) with hidden features (64, 64) and tanh, the
exact trace, DOPRI5 at the given tolerances (zuko's odeint backpropagates
through its accepted steps: the adaptive checkpoint adjoint), Adam at a
constant learning rate, batches drawn afresh from the density each step.

    PYTHONPATH=/path/to/zuko python3 zuko_timing.py --steps 300 --threads 2 [--dtype float64]
"""

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import zuko


def eight_gaussians(rng, n):
    """The FFJORD definition, as examples/internal/toy's EightGaussians."""
    a = rng.integers(0, 8, n) * math.pi / 4
    x = np.stack([4 * np.cos(a), 4 * np.sin(a)], axis=1) + 0.5 * rng.standard_normal((n, 2))
    return x / 1.414


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    torch.set_default_dtype(dtype)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    flow = zuko.flows.CNF(2, hidden_features=(64, 64), activation=nn.Tanh, atol=args.atol, rtol=args.rtol, exact=True)
    ffj = flow.transform
    nfe = [0]
    f = ffj.f

    def counted(t, x, c=None):
        nfe[0] += 1
        return f(t, x, c)

    ffj.f = counted
    opt = torch.optim.Adam(flow.parameters(), lr=args.lr)
    fwd = bwd = 0
    losses = []
    start, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        x = torch.tensor(eight_gaussians(rng, args.batch), dtype=dtype)
        n0 = nfe[0]
        loss = -flow().log_prob(x).mean()
        n1 = nfe[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        fwd += n1 - n0
        bwd += nfe[0] - n1
        losses.append(loss.item())
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu0
    out = {
        "library": "zuko", "dtype": args.dtype, "threads": args.threads, "steps": args.steps,
        "steps_per_s": args.steps / secs, "cpu_s_per_step": cpu / args.steps, "nfe_forward_per_step": fwd / args.steps,
        "nfe_backward_per_step": bwd / args.steps, "last_loss_mean10": float(np.mean(losses[-10:])),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
