"""Export scikit-learn's tables for examples/quality: each shuffled with
seed 0 and split 80/10/10 into train, validation and test rows, written as
CSV with a header to the folder given (default ./tables); and issue 26's
synthetic table (see synthetic), split the same way.

The digits' pixel counts (integers 0..16) are dequantised with U(0, 1)
noise, drawn with seed 0 too, so that a density of them is a density of a
continuous variable. Needs Debian's python3-sklearn (run it with
/usr/bin/python3)."""

import os
import sys

import numpy as np
from sklearn import datasets


def tables():
    yield "wine", datasets.load_wine()
    yield "diabetes", datasets.load_diabetes()
    yield "breast_cancer", datasets.load_breast_cancer()
    yield "digits", datasets.load_digits()


def synthetic():
    """Issue 26's table of a skewed column and a product of normals: 2,000
    rows of (a, 3·Exp(1), N·N, 0.5·a + 0.8·N), a ~ N(0, 1), seed 42."""
    rng = np.random.default_rng(42)
    n = 2000
    a = rng.normal(size=n)
    b = 3 * rng.exponential(size=n)
    c = rng.normal(size=n) * rng.normal(size=n)
    d = 0.5 * a + 0.8 * rng.normal(size=n)
    return np.stack([a, b, c, d], 1), ["normal", "exp3", "normal_product", "mixed"]


def write(out, name, x, names):
    n = len(x)
    a, b = int(round(0.8 * n)), int(round(0.9 * n))
    for part, rows in (("train", x[:a]), ("val", x[a:b]), ("test", x[b:])):
        path = os.path.join(out, "%s_%s.csv" % (name, part))
        with open(path, "w") as f:
            f.write(",".join(names) + "\n")
            for r in rows:
                f.write(",".join(repr(float(v)) for v in r) + "\n")
    print("%s: %d rows, %d columns" % (name, n, x.shape[1]))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tables"
    os.makedirs(out, exist_ok=True)
    x, names = synthetic()
    write(out, "synthetic", x, names)
    for name, d in tables():
        x = np.asarray(d.data, dtype=np.float64)
        rng = np.random.default_rng(0)
        x = x[rng.permutation(len(x))]
        if name == "digits":
            x = x + rng.uniform(0, 1, size=x.shape)
        names = [str(c).replace(" ", "_") for c in getattr(d, "feature_names", [])]
        if len(names) != x.shape[1]:
            names = ["x%d" % j for j in range(x.shape[1])]
        write(out, name, x, names)


if __name__ == "__main__":
    main()
