#!/usr/bin/env python3
"""The PyTorch side of graft-nn's training benchmarks (BENCHMARKS.md).

Runs the same work as `cargo bench -p graft-nn --bench train`:
  - MLP 784-[100,100]-10 (ReLU): forward, cross-entropy, backward, batch 64;
  - a ResNet-18-shaped network (CIFAR stem, basic blocks, 64-128-256-512
    channels, batch norm): one SGD training step on 8 images of 3x32x32.

If torch cannot be imported, the script makes a virtual environment outside
the repository (~/.cache/graft-bench-venv, or $GRAFT_BENCH_VENV), installs
torch there with pip and runs itself again with it. Not part of the tests.
"""
import os
import subprocess
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["torch"], "GRAFT_BENCH_VENV", "~/.cache/graft-bench-venv")


def median_time(f, warmup, iters):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def mlp():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
    x = torch.randn(64, 784)
    y = torch.arange(64) % 10
    loss = nn.CrossEntropyLoss()

    def step():
        m.zero_grad(set_to_none=True)
        loss(m(x), y).backward()

    return median_time(step, 50, 500)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = torch.relu(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        s = x if self.down is None else self.down(x)
        return torch.relu(h + s)


def resnet18():
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    width = 64
    for stage, out in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(Block(width, out, stride))
            width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def resnet_step():
    torch.manual_seed(0)
    m = resnet18().train()
    x = torch.randn(8, 3, 32, 32)
    y = torch.arange(8) % 10
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    loss = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss(m(x), y).backward()
        opt.step()

    return median_time(step, 3, 15)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"mlp_784_100_100_10/fwd_bwd_b64: {mlp() * 1e6:.1f} us")
    print(f"resnet18_cifar/train_step_b8: {resnet_step() * 1e3:.1f} ms")
