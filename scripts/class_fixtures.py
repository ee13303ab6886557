#!/usr/bin/env python3
"""Narrow models, one per failure class of issue 15 that graft now reads,
exported with both torch exporters, with onnxruntime's output: fixtures of
graft-onnx's `tests/classes.rs`.

For each model NAME and exporter (legacy: torch.onnx.export(dynamo=False),
opset 17, a symbolic batch unless the model's entry says otherwise; dynamo:
the default exporter), writes to
crates/graft-onnx/tests/fixtures/:
  NAME.EXPORTER.onnx      the model
  NAME.input.bin          the input (shape header + little-endian f32)
  NAME.EXPORTER.out.bin   onnxruntime's output for it

The classes:
  se      squeeze-and-excitation (global pool kept as [N, C, 1, 1], 1x1
          convolutions on it, a hard-sigmoid gate broadcast over the map),
          hard-swish
  gelu    GELU written as Erf arithmetic (Div, Erf, Add, Mul by constants)
  lnchan  ConvNeXt's channels-first layer norm written by hand: means over
          the channel axis (a reduction over the neurons), broadcasts of
          [N, 1, H, W] against [N, C, H, W], Pow, Sqrt, per-channel affine
          constants shaped [C, 1, 1]
  flat    x.view(x.size(0), -1) with a symbolic batch: Shape, Gather,
          Unsqueeze, Concat and Reshape that the importer folds
  shuffle ShuffleNetV2's unit: a channel split (Split or Slice), a
          concatenation and a channel shuffle (Reshape, Transpose, Reshape)
  ceilpool a max pool in ceil mode (SqueezeNet)
  padded  an explicit uneven Pad between convolutions, and a padded
          average pool counting the padding (Inception)
  attnpool a softmax over the positions, weights times values, summed,
          a context expanded over the positions (Expand of a computed value)
  chlast  ConvNeXt's block: channels last through a permute, a layer norm
          and dense layers on the last axis (MatMul), a per-channel scale
  resize  HRNet's fuse: a strided branch upsampled by nearest neighbour
          (scale 2, asymmetric, floor) and added to the full-resolution
          branch; bilinear resizes to a size (half pixel) and by a scale
          with align_corners
  asym    Inception's factorised convolutions (1x7 and 7x1 kernels with
          (0, 3) and (3, 0) padding), a convolution with stride (2, 1) and
          dilation (1, 2), a max pool with a 3x2 window, stride (2, 1) and
          padding (1, 0), an average pool with a 1x3 window counting its
          padding
  normhead ConvNeXt's head (timm's NormMlpClassifierHead): a global
          average pool kept as [N, C, 1, 1] and given channels-last strides
          with as_strided (the dynamo exporter writes a Reshape to [-1] and
          a Gather of every element in order), a channels-first layer norm
          through permutes, a flatten
  strided a convolution's output read channels last by as_strided with
          the strides of a permute (permuted element indices; the legacy
          exporter computes them with NonZero), dense layers on the last
          axis
  vitattn a ViT in miniature (batch 1, as the zoo exports vision
          transformers): patches, a class token joined to them (Concat of
          a constant), a position embedding, one encoder block with
          torch's two-head MultiheadAttention (heads folded into the batch
          axis, MatMul of two computed values), an MLP, the class token's
          head
  timmattn timm's ViT block (DeiT) in miniature: its attention permutes
          the fused q, k, v projection to [3, N, heads, tokens, d] (the 3
          in front of the batch axis) and unbinds it (Split or Slice of
          axis 0)
  winattn Swin's shifted-window attention, v1 then v2 (batch 1): windows
          folded into the batch axis, a cyclic shift (Slice, Concat), the
          shifted-window mask (ScatterND on constants), the relative
          position bias (Gather/GatherND of a table; v2's continuous bias
          MLP on constants), cosine attention (ReduceL2, Clip)
  vitbatch vitattn with a symbolic batch in both exporters, run at batch 3:
          torch's MultiheadAttention moves the batch to axis 1 ([T, B, E]),
          folds it with the heads ([T, B·heads, d]) and with the tokens
          around the output projection ([T·B, E])
  timmbatch timmattn with a symbolic batch in both exporters, run at
          batch 3 (q, k, v unbound from [3, N, heads, tokens, d])
  qkvbatch Swin's q, k, v with windows folded into a symbolic batch, run
          at batch 3: a fused projection reshaped to [-1, tokens, 3, heads,
          d], permuted to [3, B·windows, heads, tokens, d] and picked by
          Gather on axis 0 (the batch axis moved to axis 1)
  tokens  a float input of tokens [N, T, C] read by dense layers on its
          last axis (features last, not on axis 1), a layer norm, a mean
          over the tokens
  groupnorm a group norm of 4 groups between convolutions: below opset 18
          torch writes it as Reshape to [N, G, -1], InstanceNormalization
          and Reshape back, then the per-channel affine
  einsum  MaxViT's relative-position attention (batch 1): Einsum
          `B G H I D, B G H J D -> B G H I J` and `... I J, ... J D -> ... I D`

torch and onnxruntime are installed with pip into a virtual environment
outside the repository when missing (see pyenv_setup.py). Not part of the
tests.
"""
import pathlib

try:
    import numpy as np  # noqa: F401
    import onnxruntime as ort
    import torch
    import torch.nn as nn
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["torch", "onnx", "onnxscript", "onnxruntime", "numpy"])

from tensor_files import write_tensor  # noqa: E402
from torch_export import export  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates" / "graft-onnx" / "tests" / "fixtures"


class Se(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.act = nn.Hardswish()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(16, 4, 1)
        self.fc2 = nn.Conv2d(4, 16, 1)
        self.gate = nn.Hardsigmoid()
        self.conv = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.act(self.stem(x))
        s = self.gate(self.fc2(torch.relu(self.fc1(self.pool(x)))))
        x = torch.relu(self.conv(x * s))
        return self.head(torch.flatten(self.pool(x), 1))


class Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 4)

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class LayerNormChannels(nn.Module):
    """ConvNeXt's LayerNorm for channels_first data, as its authors wrote it."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.weight = nn.Parameter(torch.rand(c, generator=g) + 0.5)
        self.bias = nn.Parameter(torch.randn(c, generator=g) * 0.1)
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class LnChan(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = LayerNormChannels(8)
        self.conv = nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = self.conv(self.norm(self.stem(x)))
        return self.head(x.mean((2, 3)))


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class Shuffle(nn.Module):
    """ShuffleNetV2's unit: split the channels, convolve one half, join,
    shuffle the channels (Reshape, Transpose, Reshape)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Conv2d(4, 4, 3, padding=1)
        self.conv = nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        a, b = x.chunk(2, dim=1)
        x = torch.cat((a, torch.relu(self.branch(b))), dim=1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        x = torch.relu(self.conv(x))
        return self.head(x.mean((2, 3)))


class CeilPool(nn.Module):
    """SqueezeNet's pooling: a max pool in ceil mode."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv = nn.Conv2d(8, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        x = torch.relu(self.conv(x))
        return self.head(x.mean((2, 3)))


class Padded(nn.Module):
    """An explicit, uneven padding between two convolutions, and a padded
    average pool that counts the padding (Inception)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.conv = nn.Conv2d(6, 4, 3)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.nn.functional.pad(torch.relu(self.stem(x)), (1, 2, 0, 1))
        # Inception's pooling branch: an average that counts the padding.
        x = torch.nn.functional.avg_pool2d(torch.relu(self.conv(x)), 3, 1, 1)
        return self.head(x.mean((2, 3)))


class ChannelsLast(nn.Module):
    """ConvNeXt's block: a depthwise convolution, then channels last (a
    permute) for a layer norm and two dense layers (MatMul on the last
    axis), a per-channel scale, back to channels first, a residual add."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8, eps=1e-6)
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(16, 8)
        self.gamma = nn.Parameter(torch.rand(8, generator=torch.Generator().manual_seed(4)) + 0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(self.norm(y))))
        x = x + (self.gamma * y).permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


class AttnPool(nn.Module):
    """Attention pooling: a softmax over the positions (the last axis of
    [N, C, H·W]), weights times values, summed into a context that is
    expanded back over the positions (MobileViT v2's separable attention in
    miniature)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.score = nn.Conv2d(8, 1, 1)
        self.value = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        w = torch.softmax(self.score(x).flatten(2), dim=-1)
        v = self.value(x).flatten(2)
        c = (w * v).sum(-1, keepdim=True)
        return self.head((torch.relu(v) * c.expand_as(v)).mean(-1))


class Resize(nn.Module):
    """HRNet's fuse (a low-resolution branch, a 1x1 convolution, a nearest
    upsample by 2 added to the full-resolution branch) and bilinear
    resizes: to the full resolution's size (half pixel) and by a scale of
    1.5 with align_corners."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.fuse = nn.Conv2d(12, 8, 1)
        self.side = nn.Conv2d(12, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        f = torch.nn.functional
        hi = torch.relu(self.stem(x))
        lo = torch.relu(self.down(hi))
        y = torch.relu(hi + f.interpolate(self.fuse(lo), scale_factor=2, mode="nearest"))
        side = f.interpolate(self.side(lo), size=hi.shape[-2:], mode="bilinear", align_corners=False)
        y = f.interpolate(y + side, scale_factor=1.5, mode="bilinear", align_corners=True)
        return self.head(y.mean((2, 3)))


class Asym(nn.Module):
    """Inception's factorised 1x7 and 7x1 convolutions, a convolution with
    stride (2, 1) and dilation (1, 2), uneven pooling windows."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.row = nn.Conv2d(6, 8, (1, 7), padding=(0, 3))
        self.col = nn.Conv2d(8, 8, (7, 1), padding=(3, 0))
        self.step = nn.Conv2d(8, 10, 3, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
        self.pool = nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 0))
        self.head = nn.Linear(10, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.col(torch.relu(self.row(x))))
        x = self.pool(torch.relu(self.step(x)))
        x = torch.nn.functional.avg_pool2d(x, (1, 3), 1, (0, 1))
        return self.head(x.mean((2, 3)))


class NormHead(nn.Module):
    """ConvNeXt's head: a global average pool kept as [N, C, 1, 1] given
    channels-last strides (as_strided, which the dynamo exporter writes as
    a Reshape to [-1] and a Gather of every element in order), a layer norm over the channels through permutes, a
    flatten, a dense layer."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(8, eps=1e-6)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = self.pool(self.conv(torch.relu(self.stem(x))))
        # In timm's ConvNeXt the pool's input has channels-last strides and
        # the decomposed pool restores them on its [N, C, 1, 1] result with
        # as_strided; written out here, as the exporter sees it there.
        x = torch.as_strided(x, (2, 8, 1, 1), (8, 1, 8, 8))
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(x.flatten(1))


class VitAttn(nn.Module):
    """torchvision's ViT in miniature: 2x2 patches of an 8x8 image, a class
    token, a position embedding, one pre-norm encoder block with two heads."""

    def __init__(self):
        super().__init__()
        d = 8
        self.proj = nn.Conv2d(3, d, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 5, d) * 0.1)
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 16)
        self.fc2 = nn.Linear(16, d)
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        x = x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))
        return self.head(x[:, 0])


class TimmAttn(nn.Module):
    """timm's ViT (DeiT) in miniature: as VitAttn, with timm's encoder
    block, whose attention permutes its fused q, k, v projection to
    [3, N, heads, tokens, d] (the 3 in front of the batch axis) and unbinds
    it."""

    def __init__(self):
        super().__init__()
        from timm.models.vision_transformer import Block
        d = 8
        self.proj = nn.Conv2d(3, d, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 5, d) * 0.1)
        self.block = Block(d, 2, mlp_ratio=2.0, qkv_bias=True)
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.block(x)[:, 0])


class WinAttn(nn.Module):
    """torchvision's shifted-window attention, v1 then v2, on a 4x4 map of
    channels-last tokens (2x2 windows shifted by 1)."""

    def __init__(self):
        super().__init__()
        from torchvision.models.swin_transformer import (
            ShiftedWindowAttention, ShiftedWindowAttentionV2)
        d = 8
        self.proj = nn.Conv2d(3, d, 2, stride=2)
        self.v1 = ShiftedWindowAttention(d, [2, 2], [1, 1], 2)
        self.v2 = ShiftedWindowAttentionV2(d, [2, 2], [1, 1], 2)
        self.fc = nn.Linear(d, 12)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        x = self.proj(x).permute(0, 2, 3, 1)
        x = x + self.v1(x)
        x = x + self.v2(x)
        return self.head(torch.relu(self.fc(x)).mean((1, 2)))


class Strided(nn.Module):
    """A convolution's output read channels last through as_strided (the
    strides of x.permute(0, 2, 3, 1): the dynamo exporter writes a Reshape
    to [-1] and a Gather of permuted element indices, the legacy one builds
    those indices from NonZero of a constant), then dense layers on the
    last axis."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.fc = nn.Linear(8, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        y = torch.as_strided(y, (n, h, w, c), (c * h * w, w, 1, h * w))
        return self.head(torch.relu(self.fc(y)).mean((1, 2)))


class Einsum(nn.Module):
    """MaxViT's relative-position attention on 4 windows of 2x2 tokens:
    [B, C, H, W] partitioned to [B, G, P, C], attention by Einsum."""

    def __init__(self):
        super().__init__()
        from torchvision.models.maxvit import RelativePositionalMultiHeadAttention
        d = 8
        self.proj = nn.Conv2d(3, d, 1)
        self.attn = RelativePositionalMultiHeadAttention(d, 4, 4)
        self.fc = nn.Linear(d, 12)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        x = self.proj(x)
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(b, (h // 2) * (w // 2), 4, c)
        x = x + self.attn(x)
        return self.head(torch.relu(self.fc(x)).mean((1, 2)))


class QkvBatch(nn.Module):
    """Swin's q, k, v on 2 windows of 4 tokens per sample, the windows
    folded into a symbolic batch: [B, 3, 2, 4] to [-1, 4, 12] tokens, the
    fused projection to [-1, 4, 3, 2, 6] permuted to [3, B*2, 2, 4, 6],
    attention, and the windows back per sample."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 12, 1)
        self.qkv = nn.Linear(12, 36)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        t = self.proj(x).permute(0, 2, 3, 1).reshape(-1, 4, 12)
        q = self.qkv(t).reshape(-1, 4, 3, 2, 6).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q[0] @ q[1].transpose(-2, -1), -1) @ q[2]
        return self.head(a.mean((1, 2)).reshape(x.shape[0], 2, 6).mean(1))


class Tokens(nn.Module):
    """Tokens given as a float input [N, T, C]: dense layers on the last
    axis, a layer norm over it, the mean over the tokens."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.norm(self.fc2(torch.relu(self.fc1(x)))).mean(1))


class GroupNormNet(nn.Module):
    """A group norm of 4 groups over 16 channels between convolutions."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.c2 = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.c2(torch.relu(self.gn(self.c1(x)))).mean((2, 3)))


MODELS = {
    "resize": (Resize, (2, 3, 6, 6)),
    "asym": (Asym, (2, 3, 8, 8)),
    # A fixed batch: as_strided's element indices are written for one.
    "normhead": (NormHead, (2, 3, 6, 6), "fixed"),
    "strided": (Strided, (2, 3, 4, 5), "fixed"),
    "vitattn": (VitAttn, (1, 3, 8, 8)),
    # torch's MultiheadAttention with a symbolic batch in both exporters,
    # run at batch 3.
    "vitbatch": (VitAttn, (3, 3, 8, 8), "batch"),
    # timm's attention with a symbolic batch: its unbound q, k, v are
    # [1, N, heads, tokens, d] with the batch second.
    "timmbatch": (TimmAttn, (3, 3, 8, 8), "batch"),
    "timmattn": (TimmAttn, (1, 3, 8, 8)),
    "winattn": (WinAttn, (1, 3, 8, 8)),
    "einsum": (Einsum, (1, 3, 4, 4)),
    "qkvbatch": (QkvBatch, (3, 3, 2, 4)),
    "tokens": (Tokens, (2, 5, 6)),
    "groupnorm": (GroupNormNet, (2, 3, 6, 6)),
    "attnpool": (AttnPool, (2, 3, 6, 6)),
    "chlast": (ChannelsLast, (2, 3, 6, 6)),
    "shuffle": (Shuffle, (2, 3, 6, 6)),
    "ceilpool": (CeilPool, (2, 3, 8, 8)),
    "padded": (Padded, (2, 3, 6, 6)),
    "se": (Se, (2, 3, 8, 8)),
    "gelu": (Gelu, (2, 6)),
    "lnchan": (LnChan, (2, 3, 6, 6)),
    "flat": (Flat, (2, 3, 6, 6)),
}


def main(only=None):
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (cls, shape, *how) in MODELS.items():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = cls().eval()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        write_tensor(OUT / f"{name}.input.bin", x.numpy())
        for exporter in ["legacy", "dynamo"]:
            path = OUT / f"{name}.{exporter}.onnx"
            # Vision transformers are exported at batch size 1 (their
            # graphs fold the batch axis into heads and windows).
            export(model, x, path, exporter, dynamic_batch="fixed" not in how and shape[0] > 1,
                   dynamo_batch="batch" in how)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            (y,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            write_tensor(OUT / f"{name}.{exporter}.out.bin", y)
            import onnx
            ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
            print(f"{path.name}: {path.stat().st_size} bytes, output {y.shape}, ops {ops}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
