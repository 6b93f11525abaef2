#!/usr/bin/env python3
"""Times PyTorch's torch.nn.Conv2d on the shapes of flows' BenchmarkConvNet.

The net is flows.ConvNet's (convnet.go): h = conv_in(x); per residual block
h = h + conv_b2(relu(conv_b1(relu(h)))); y = conv_out(relu(h)); every conv
3x3 with padding 1. One step is the forward pass and the backward pass to
the input and every parameter, on a batch of 64 images, as the Go
benchmark's ApplyVJP and pullback. Prints, per shape and dtype, the median
wall time and CPU time (user + system of the process, all threads) of a
step and the images/s of each: on a shared machine the CPU time counts the
work, the wall time also the waits for a core.

The first line names the BLAS the process loaded and, for OpenBLAS, its
kernel (see ../shared/bench/README.md: OpenBLAS 0.3.21 may fall back to a
slow kernel on newer CPUs; name a better one with OPENBLAS_CORETYPE).

    env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE python3 scripts/conv_torch.py --threads 2
"""
import argparse
import ctypes
import os
import resource
import statistics
import time

import torch
from torch import nn


class ConvNet(nn.Module):
    def __init__(self, cin, cout, hidden, blocks):
        super().__init__()
        self.inp = nn.Conv2d(cin, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(hidden, hidden, 3, padding=1), nn.Conv2d(hidden, hidden, 3, padding=1)])
            for _ in range(blocks))
        self.out = nn.Conv2d(hidden, cout, 3, padding=1)

    def forward(self, x):
        h = self.inp(x)
        for b1, b2 in self.blocks:
            h = h + b2(torch.relu(b1(torch.relu(h))))
        return self.out(torch.relu(h))


def blas():
    """The BLAS libraries mapped into this process and OpenBLAS's kernel."""
    names, core = [], ""
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if p.startswith("/") and "blas" in os.path.basename(p) and p not in names:
                names.append(p)
    for p in names:
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            break
    return [os.path.basename(p) for p in names], core


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--shapes", default="2:4:14:32:1,4:8:7:32:1",
                    help="cin:cout:side:hidden:blocks,... (default: BenchmarkConvNet's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # The first conv loads the BLAS (torch links it lazily).
    nn.Conv2d(1, 1, 3)(torch.zeros(1, 1, 4, 4)).sum().backward()
    libs, core = blas()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}, "
          f"blas {libs}, openblas kernel {core or '-'}")
    n = 64
    for spec in args.shapes.split(","):
        cin, cout, h, hidden, blocks = map(int, spec.split(":"))
        for dt in args.dtypes.split(","):
            dtype = getattr(torch, dt)
            torch.manual_seed(1)
            net = ConvNet(cin, cout, hidden, blocks).to(dtype)
            x = torch.randn(n, cin, h, h, dtype=dtype, requires_grad=True)
            dy = torch.randn(n, cout, h, h, dtype=dtype)
            walls, cpus = [], []
            for i in range(args.warmup + args.steps):
                t0, c0 = time.perf_counter(), cpu()
                net.zero_grad(set_to_none=False)
                x.grad = None
                net(x).backward(dy)
                if i >= args.warmup:
                    walls.append(time.perf_counter() - t0)
                    cpus.append(cpu() - c0)
            w, c = statistics.median(walls), statistics.median(cpus)
            print(f"in={cin}x{h}x{h}/hidden={hidden}/blocks={blocks} {dt}: {w*1e3:.1f} ms/step wall "
                  f"({n/w:.0f} images/s), {c*1e3:.1f} ms/step cpu ({n/c:.0f} images/cpu-s)")


if __name__ == "__main__":
    main()
