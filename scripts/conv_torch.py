#!/usr/bin/env python3
"""Times PyTorch's torch.nn.Conv2d on the shapes of flows' BenchmarkConvNet.

The net is flows.ConvNet's (convnet.go): h = conv_in(x); per residual block
h = h + conv_b2(relu(conv_b1(relu(h)))); y = conv_out(relu(h)); every conv
3x3 with padding 1. One step is the forward pass and the backward pass to
the input and every parameter, on a batch of 64 images, as the Go
benchmark's ApplyVJP and pullback. Prints the median images/s per shape and
dtype.

    env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE python3 scripts/conv_torch.py --threads 2
"""
import argparse
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dtypes", default="float32,float64")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    n = 64
    for cin, cout, h, hidden, blocks in [(2, 4, 14, 32, 1), (4, 8, 7, 32, 1)]:
        for dt in args.dtypes.split(","):
            dtype = getattr(torch, dt)
            torch.manual_seed(1)
            net = ConvNet(cin, cout, hidden, blocks).to(dtype)
            x = torch.randn(n, cin, h, h, dtype=dtype, requires_grad=True)
            dy = torch.randn(n, cout, h, h, dtype=dtype)
            times = []
            for i in range(args.warmup + args.steps):
                t0 = time.perf_counter()
                net.zero_grad(set_to_none=False)
                x.grad = None
                net(x).backward(dy)
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            print(f"in={cin}x{h}x{h}/hidden={hidden}/blocks={blocks} {dt}: {med*1e3:.1f} ms/step, {n/med:.0f} images/s")


if __name__ == "__main__":
    main()
