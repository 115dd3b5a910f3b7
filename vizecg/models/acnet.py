"""ACNet in 1D: asymmetric convolution blocks that strengthen the kernel skeleton, fused away at inference.

Ding, Guo, Ding, Han: "ACNet: Strengthening the kernel skeletons for powerful
CNN via asymmetric convolution blocks", ICCV 2019.

**The 1D analogue.** A 2D ACB trains a ``k x k`` convolution in parallel with a
``1 x k`` and a ``k x 1`` convolution (each with its own BatchNorm) and sums the
three outputs. The asymmetric branches add weight to the *skeleton* of the
square kernel, its central row and column, which the paper shows are the most
important taps; after training, BN is folded into each branch and the
branches are added into one ``k x k`` kernel, so inference costs nothing extra.
In 1D a kernel has one axis, so "horizontal" and "vertical" strips do not
exist; what carries over is the principle: parallel, separately normalised
branches whose kernels are *centred sub-windows* of the main kernel, i.e. the
1D skeleton is the kernel's central taps. :class:`AsymmetricConvBlock1d` trains
a length-``k`` convolution with branches of lengths ``skeleton_kernels``
(default 3 and 1: the central neighbourhood and the centre tap, so the centre
is strengthened by all three branches as in the 2D block) and
:meth:`AsymmetricConvBlock1d.fuse` folds them into one length-``k`` convolution
with identical eval-mode outputs. As in the paper, ACBs replace every
convolution of a standard backbone; here a 1D ResNet18 layout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.base import EcgClassifier


class AsymmetricConvBlock1d(nn.Module):
    """Sum of conv(k)+BN and centred conv(k_i)+BN branches; :meth:`fuse` merges them into one conv(k) with bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 skeleton_kernels: tuple[int, ...] = (3, 1)) -> None:
        super().__init__()
        kernels = (kernel_size, *skeleton_kernels)
        if any(k % 2 == 0 for k in kernels) or any(k >= kernel_size for k in skeleton_kernels):
            raise ValueError(f"ACB kernels must be odd and skeleton kernels shorter than {kernel_size}, got {kernels}")
        self.kernel_size = kernel_size
        self.stride = stride
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv1d(in_channels, out_channels, k, stride, k // 2, bias=False),
                          nn.BatchNorm1d(out_channels))
            for k in kernels)
        self.fused: nn.Conv1d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return sum(branch(x) for branch in self.branches)

    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """BN-folded, zero-padded, summed ``(weight, bias)`` of all branches (uses BN running statistics)."""
        weight_total, bias_total = 0.0, 0.0
        for conv, bn in self.branches:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = conv.weight * scale[:, None, None]
            pad = (self.kernel_size - conv.kernel_size[0]) // 2
            weight_total = weight_total + F.pad(weight, (pad, pad))
            bias_total = bias_total + bn.bias - bn.running_mean * scale
        return weight_total, bias_total

    def fuse(self) -> None:
        """Replace the branches by the single equivalent convolution (ACNet's deploy form); eval-mode only."""
        if self.fused is not None:
            return
        weight, bias = self.fused_kernel()
        first = self.branches[0][0]
        self.fused = nn.Conv1d(first.in_channels, first.out_channels, self.kernel_size, self.stride,
                               self.kernel_size // 2, bias=True).to(weight.device)
        self.fused.weight.data.copy_(weight)
        self.fused.bias.data.copy_(bias)
        del self.branches


class ACBasicBlock1d(nn.Module):
    """ResNet BasicBlock whose two convolutions are ACBs (a projection shortcut stays a plain 1x1 conv + BN)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int,
                 skeleton_kernels: tuple[int, ...]) -> None:
        super().__init__()
        self.acb1 = AsymmetricConvBlock1d(in_channels, out_channels, kernel_size, stride, skeleton_kernels)
        self.acb2 = AsymmetricConvBlock1d(out_channels, out_channels, kernel_size, 1, skeleton_kernels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm1d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.acb2(self.relu(self.acb1(x))) + self.shortcut(x))


@register_model("acnet", tiny_options={"base_width": 4, "blocks_per_stage": (1, 1), "kernel_size": 5},
                default_options={"base_width": 32, "kernel_size": 9},
                paper_options={"base_width": 64, "kernel_size": 9},
                paper_params_m=262.00, paper_ms={"signal": 24.5})
class ACNet1d(EcgClassifier):
    """ACNet (Ding et al., ICCV 2019) in 1D: a ResNet18-layout 1D CNN whose convolutions are asymmetric conv blocks.

    Stem: ACB of length ``stem_kernel_size`` with stride 2, ReLU, stride-2
    max-pool; stages of ACB BasicBlocks (widths ``w, 2w, 4w, 8w``); global
    average pooling; linear classifier. Call :meth:`fuse` after training (on an
    eval-mode model) for the deploy form: one convolution per ACB, same outputs,
    fewer parameters and FLOPs. See the module docstring for the 1D analogue of
    the asymmetric kernels.

    Args:
        num_classes: outputs.
        base_width: channels of the first stage.
        blocks_per_stage: ACB BasicBlocks per stage (ResNet18: 2, 2, 2, 2).
        kernel_size: main (odd) kernel length of the block ACBs.
        stem_kernel_size: main kernel of the stem ACB.
        skeleton_kernels: centred shorter branches of every ACB.
    """

    input_kind = "signal"

    def __init__(self, num_classes: int = 6, base_width: int = 64, blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2),
                 kernel_size: int = 9, stem_kernel_size: int = 15, skeleton_kernels: tuple[int, ...] = (3, 1)) -> None:
        super().__init__()
        skeleton_kernels = tuple(skeleton_kernels)
        self.stem = nn.Sequential(AsymmetricConvBlock1d(N_LEADS, base_width, stem_kernel_size, 2, skeleton_kernels),
                                  nn.ReLU(inplace=True), nn.MaxPool1d(3, 2, 1))
        stages = []
        channels = base_width
        for index, n_blocks in enumerate(blocks_per_stage):
            width = base_width * 2 ** index
            blocks = [ACBasicBlock1d(channels if b == 0 else width, width, 2 if index > 0 and b == 0 else 1,
                                     kernel_size, skeleton_kernels) for b in range(n_blocks)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(channels, num_classes)

    def fuse(self) -> "ACNet1d":
        """Fold every ACB into a single convolution (call on an eval-mode model); returns self."""
        if self.training:
            raise RuntimeError("ACNet1d.fuse() uses BatchNorm running statistics: call model.eval() first")
        for module in list(self.modules()):
            if isinstance(module, AsymmetricConvBlock1d):
                module.fuse()
        return self

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        return {"logits": self.classifier(self.stages(self.stem(signal)).mean(dim=-1))}
