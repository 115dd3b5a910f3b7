"""A 1D ResNet18 feature extractor (He et al., CVPR 2016), the signal encoder E_s.

The layout follows torchvision's 2D ResNet18 with every 2D operator replaced by
its 1D counterpart: a stride-2 stem convolution and stride-2 max-pool, then four
stages of two BasicBlocks (widths ``w, 2w, 4w, 8w``; stride 2 from stage two on),
so the time axis shrinks 32-fold. ``base_width=64`` is the paper's size;
``base_width=16`` is what a 2-core CPU can train (SPEC section 7).
"""
from __future__ import annotations

import torch
from torch import nn


class BasicBlock1d(nn.Module):
    """Two ``kernel_size`` convolutions with BatchNorm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, 1, padding, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm1d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet1dFeatures(nn.Module):
    """1D ResNet trunk without pooling or classifier: ``(N, C_in, T) -> (N, 8*base_width, ~T/32)``.

    Args:
        in_channels: input channels (1 when applied per lead with shared weights,
            12 when the leads are stacked as channels).
        base_width: channels of the first stage (64 in the paper).
        blocks_per_stage: BasicBlocks per stage; ``(2, 2, 2, 2)`` is ResNet18.
        kernel_size: kernel of the block convolutions (3 as in ResNet18).
        stem_kernel_size: kernel of the stride-2 stem convolution (7 as in ResNet18).
    """

    def __init__(self, in_channels: int = 1, base_width: int = 64,
                 blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2),
                 kernel_size: int = 3, stem_kernel_size: int = 7) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, base_width, stem_kernel_size, 2, stem_kernel_size // 2, bias=False),
            nn.BatchNorm1d(base_width), nn.ReLU(inplace=True), nn.MaxPool1d(3, 2, 1))
        stages = []
        channels = base_width
        for index, n_blocks in enumerate(blocks_per_stage):
            width = base_width * 2 ** index
            stride = 1 if index == 0 else 2
            blocks = [BasicBlock1d(channels, width, stride, kernel_size)]
            blocks += [BasicBlock1d(width, width, 1, kernel_size) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))
