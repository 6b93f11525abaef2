"""Reference held-out quality of nflows (PyTorch) on the tables of
examples/quality, for a side-by-side comparison with the Go flows.

For each table exported by export.py (wine, diabetes, breast_cancer,
digits), it fits two standard nflows density estimators with seeds 1..5 and
prints the test rows' mean negative log-likelihood per row (nats, in the
data's original units; lower is better), median over seeds, beside the
full-covariance Gaussian of the same rows, as a markdown table on stdout.
Per-seed values go to stderr.

Data splits (see main.go). By default (--split pooled) the rows are used as
main.go uses them: the train and val files are stacked, and each seed holds
out round(0.1 n) of those rows, chosen by a random permutation, for early
stopping, training on the rest (as optim.FitModel's default ValFraction
does, though with NumPy's generator rather than ours, so not the same rows).
With --split files the train file trains and the val file validates. The
test file is only ever scored. The full Gaussian is the maximum-likelihood
(1/n) full-covariance Gaussian of the train and val rows together, as in
main.go (stderr also gives the one of the train file alone).

Protocol (the nflows reference of issue 12):
  * columns standardised by the mean and standard deviation of the rows the
    flow trains on; the log-determinant of that scaling is added back, so
    the NLL is in the data's units;
  * 5 layers; each conditioner has 2 hidden layers of 64 ReLU units;
  * MAF: ReversePermutation, then MaskedAffineAutoregressiveTransform
    (MADE, use_residual_blocks=False, num_blocks=1), per layer;
  * NSF: the recipe of the NSF paper's tabular experiments (bayesiains/nsf,
    experiments/uci.py): per layer, RandomPermutation + LULinear
    (identity_init) and then a PiecewiseRationalQuadraticCouplingTransform
    with an alternating binary mask, num_bins=8, tails='linear',
    tail_bound=3, apply_unconditional_transform=True, and one more
    RandomPermutation + LULinear at the end; the conditioner is nflows' plain
    MLP (64, 64) rather than its ResidualNet, to keep 2 hidden layers;
  * standard normal base; Adam, lr 1e-3, batches of 64 rows (reshuffled each
    epoch, the last partial batch dropped), no gradient clipping, float32;
  * early stopping on the mean validation NLL, patience 10, at most 200
    epochs; the best-validation parameters are restored before scoring.

Usage (Debian's python3-torch and python3-sklearn; nflows from a source tree
or an installed package; nflows imports the optional UMNN package at load
time, so without it put a stub module UMNN defining NeuralIntegral and
ParallelNeuralIntegral on the path):

    /usr/bin/python3 examples/quality/export.py /tmp/tables
    PYTHONPATH=/path/to/nflows-src:/path/to/umnn-stub \\
        /usr/bin/python3 examples/quality/reference.py -tables /tmp/tables \\
        [-names wine,diabetes,breast_cancer,digits] [-seeds 1,2,3,4,5] \\
        [-kinds maf,nsf] [-split pooled|files] [-epochs 200] [-threads 1] [-progress]

Any table in the same three-file form works: diamonds' numbers, for one,
as QUALITY.md's diamonds section writes them with R.
"""

import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.nn.nets import MLP
from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.lu import LULinear
from nflows.transforms.permutations import RandomPermutation, ReversePermutation
from nflows.utils.torchutils import create_alternating_binary_mask

LAYERS = 5
HIDDEN = 64


def read(dir, name, part):
    """The rows of one part (train, val or test) of a table, as float64."""
    path = os.path.join(dir, "%s_%s.csv" % (name, part))
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def gaussian_nll(x, test):
    """Test NLL of the maximum-likelihood full-covariance Gaussian of x."""
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False, bias=True)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return math.nan
    r = test - mean
    maha = np.einsum("ij,ij->i", r, np.linalg.solve(cov, r.T).T)
    d = x.shape[1]
    return float(np.mean(0.5 * (maha + logdet + d * math.log(2 * math.pi))))


class Conditioner(torch.nn.Module):
    """nflows' plain MLP with the (inputs, context) call the coupling
    transforms make; there is no context here."""

    def __init__(self, in_features, out_features):
        super().__init__()
        # nflows scales the spline's width and height logits down by
        # sqrt(hidden_features) when its conditioner has this attribute,
        # as its ResidualNet does.
        self.hidden_features = HIDDEN
        self.mlp = MLP((in_features,), (out_features,), [HIDDEN, HIDDEN], activation=F.relu)

    def forward(self, inputs, context=None):
        return self.mlp(inputs)


def maf(d):
    layers = []
    for _ in range(LAYERS):
        layers.append(ReversePermutation(features=d))
        layers.append(
            MaskedAffineAutoregressiveTransform(
                features=d,
                hidden_features=HIDDEN,
                num_blocks=1,
                use_residual_blocks=False,
                activation=F.relu,
            )
        )
    return Flow(CompositeTransform(layers), StandardNormal([d]))


def nsf(d):
    def linear():
        return CompositeTransform([RandomPermutation(features=d), LULinear(d, identity_init=True)])

    layers = []
    for i in range(LAYERS):
        layers.append(linear())
        layers.append(
            PiecewiseRationalQuadraticCouplingTransform(
                mask=create_alternating_binary_mask(d, even=(i % 2 == 0)),
                transform_net_create_fn=Conditioner,
                num_bins=8,
                tails="linear",
                tail_bound=3.0,
                apply_unconditional_transform=True,
            )
        )
    layers.append(linear())
    return Flow(CompositeTransform(layers), StandardNormal([d]))


MODELS = {"maf": maf, "nsf": nsf}


def mean_nll(flow, x):
    """Mean NLL of the rows x (standardised, float32), in float64; +inf
    when a log density is not finite."""
    with torch.no_grad():
        lp = flow.log_prob(x).double()
    if not torch.isfinite(lp).all():
        return math.inf
    return -lp.mean().item()


def fit(kind, seed, train, val, test, args):
    """Fits one flow and returns (test NLL in original units, epochs run,
    best epoch)."""
    torch.manual_seed(seed)
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd[sd == 0] = 1.0
    logdet = float(np.log(sd).sum())  # NLL(x) = NLL(z) + sum log sd

    def std(x):
        return torch.as_tensor((x - mu) / sd, dtype=torch.float32)

    xt, xv, xs = std(train), std(val), std(test)
    flow = MODELS[kind](train.shape[1])
    opt = torch.optim.Adam(flow.parameters(), lr=args.lr)
    n = xt.shape[0]
    bs = min(args.batch, n)
    best, best_state, best_epoch, bad = math.inf, copy.deepcopy(flow.state_dict()), 0, 0
    epoch = 0
    for epoch in range(1, args.epochs + 1):
        flow.train()
        perm = torch.randperm(n)
        for k in range(n // bs):  # the last partial batch is dropped
            batch = xt[perm[k * bs : (k + 1) * bs]]
            opt.zero_grad()
            loss = -flow.log_prob(batch).mean()
            loss.backward()
            opt.step()
        flow.eval()
        v = mean_nll(flow, xv)
        if args.progress:
            print("  epoch %d: validation NLL %.4f (standardised), %.4f (data units)" % (epoch, v, v + logdet), file=sys.stderr, flush=True)
        if v < best:
            best, best_state, best_epoch, bad = v, copy.deepcopy(flow.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= args.patience:
                break
    flow.load_state_dict(best_state)
    flow.eval()
    return mean_nll(flow, xs) + logdet, epoch, best_epoch


def split(train, val, seed, how):
    """The rows to train on and to validate on, for one seed."""
    if how == "files":
        return train, val
    x = np.vstack([train, val])
    n = len(x)
    nval = max(1, int(math.floor(0.1 * n + 0.5)))
    perm = np.random.default_rng(seed).permutation(n)
    return x[perm[: n - nval]], x[perm[n - nval :]]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-tables", default="tables", help="the folder export.py wrote")
    p.add_argument("-names", default="wine,diabetes,breast_cancer,digits")
    p.add_argument("-seeds", default="1,2,3,4,5")
    p.add_argument("-kinds", default="maf,nsf")
    p.add_argument("-split", default="pooled", choices=["pooled", "files"])
    p.add_argument("-epochs", type=int, default=200)
    p.add_argument("-patience", type=int, default=10)
    p.add_argument("-batch", type=int, default=64)
    p.add_argument("-lr", type=float, default=1e-3)
    p.add_argument("-threads", type=int, default=1)
    p.add_argument("-progress", action="store_true", help="print each epoch's validation NLL to stderr")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    kinds = args.kinds.split(",")

    print("| table (columns) | full Gaussian |" + "".join(" reference %s |" % k.upper() for k in kinds))
    print("|---|---|" + "---|" * len(kinds))
    sys.stdout.flush()
    for name in args.names.split(","):
        train, val, test = (read(args.tables, name, part) for part in ("train", "val", "test"))
        d = train.shape[1]
        g = gaussian_nll(np.vstack([train, val]), test)
        print(
            "%s: full Gaussian %.4f (train+val rows), %.4f (train file only)"
            % (name, g, gaussian_nll(train, test)),
            file=sys.stderr,
        )
        row = "| %s (%d) | %.2f |" % (name, d, g)
        for kind in kinds:
            nlls = []
            start = time.time()
            for seed in seeds:
                t0 = time.time()
                tr, va = split(train, val, seed, args.split)
                nll, epochs, best = fit(kind, seed, tr, va, test, args)
                nlls.append(nll)
                print(
                    "%s %s seed %d: test NLL %.4f (best epoch %d of %d, %.0fs)"
                    % (name, kind, seed, nll, best, epochs, time.time() - t0),
                    file=sys.stderr,
                    flush=True,
                )
            med = float(np.median(nlls))
            print(
                "%s %s: [%s] median %.4f (%.0fs)"
                % (name, kind, ", ".join("%.4f" % v for v in nlls), med, time.time() - start),
                file=sys.stderr,
                flush=True,
            )
            row += " %.2f |" % med
        print(row, flush=True)


if __name__ == "__main__":
    main()
