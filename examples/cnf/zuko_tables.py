"""zuko's CNF on the scikit-learn tables of examples/quality, for the
side-by-side figures in QUALITY.md's CNF section: the test rows' mean
negative log-likelihood (nats per row, in the data's original units) per
seed, beside which QUALITY.md puts the cnf kind and the spline flow of
`go run ./examples/quality` on the same tables.

The protocol is examples/quality/reference.py's with the cnf kind's
settings where they differ:
  * the train and val files stacked; each seed holds out round(0.1 n) of
    those rows (NumPy's permutation, so not the rows main.go holds out) for
    early stopping and trains on the rest; the test file is only scored;
  * columns standardised by the training rows' mean and standard
    deviation, whose log-determinant is added back;
  * zuko.flows.CNF(d, hidden_features=(64, 64), activation=Tanh,
    exact=True), DOPRI5 at atol = rtol = 1e-4 (the cnf kind's defaults,
    one block of a 2x64 tanh net with the exact trace as run there);
  * Adam at 1e-3, batches of a tenth of the training rows (16 to 256, as
    optim.DefaultBatchSize), reshuffled each epoch, the last partial batch
    dropped; early stopping on the mean validation NLL, patience 10, at
    most --epochs epochs; the best parameters are restored before scoring;
    float64.

Usage (Debian's python3-torch and python3-sklearn, zuko from a source
tree):

    /usr/bin/python3 examples/quality/export.py /tmp/tables
    PYTHONPATH=/path/to/zuko /usr/bin/python3 examples/cnf/zuko_tables.py \\
        -tables /tmp/tables [-names wine,diabetes] [-seeds 1,2,3] [-threads 1]
"""

import argparse
import copy
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import zuko


def read(dir, name, part):
    path = os.path.join(dir, "%s_%s.csv" % (name, part))
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def mean_nll(flow, x):
    with torch.no_grad():
        lp = flow().log_prob(x)
    if not torch.isfinite(lp).all():
        return math.inf
    return -lp.mean().item()


def fit(seed, pool, test, args):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n = pool.shape[0]
    nval = max(1, round(0.1 * n))
    perm = rng.permutation(n)
    train, val = pool[perm[: n - nval]], pool[perm[n - nval :]]
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd[sd == 0] = 1.0
    logdet = float(np.log(sd).sum())

    def std(x):
        return torch.as_tensor((x - mu) / sd, dtype=torch.float64)

    xt, xv, xs = std(train), std(val), std(test)
    d = train.shape[1]
    flow = zuko.flows.CNF(d, hidden_features=(64, 64), activation=nn.Tanh, exact=True, atol=args.tol, rtol=args.tol)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    m = xt.shape[0]
    bs = min(m, max(16, min(256, m // 10)))
    best, state, best_epoch, bad, epoch = math.inf, copy.deepcopy(flow.state_dict()), 0, 0, 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(m)
        for k in range(m // bs):
            loss = -flow().log_prob(xt[order[k * bs : (k + 1) * bs]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = mean_nll(flow, xv)
        if v < best:
            best, state, best_epoch, bad = v, copy.deepcopy(flow.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= args.patience:
                break
    flow.load_state_dict(state)
    return mean_nll(flow, xs) + logdet, epoch, best_epoch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-tables", default="/tmp/tables")
    ap.add_argument("-names", default="wine,diabetes")
    ap.add_argument("-seeds", default="1,2,3")
    ap.add_argument("-epochs", type=int, default=200)
    ap.add_argument("-patience", type=int, default=10)
    ap.add_argument("-tol", type=float, default=1e-4)
    ap.add_argument("-threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)
    for name in args.names.split(","):
        pool = np.concatenate([read(args.tables, name, "train"), read(args.tables, name, "val")])
        test = read(args.tables, name, "test")
        for seed in [int(s) for s in args.seeds.split(",")]:
            t0, c0 = time.time(), time.process_time()
            nll, epochs, best = fit(seed, pool, test, args)
            print("%s seed %d: zuko CNF test NLL %.4f (%d epochs, best %d; %.0f s wall, %.0f s CPU)"
                  % (name, seed, nll, epochs, best, time.time() - t0, time.process_time() - c0), flush=True)


if __name__ == "__main__":
    main()
