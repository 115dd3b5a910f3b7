"""A 2D ResNet18 feature extractor with a width knob, the image encoder E_v of every image model.

torchvision's ``resnet18`` has no width option (its ``BasicBlock`` only takes 64-based
widths through ``planes``), and a 2-core CPU cannot train 11 M parameters on enough
pages to learn anything: a narrow network that sees many pages beats a wide one that
sees few. :class:`ResNet2dFeatures` keeps torchvision's layout exactly (7x7 stride-2
stem, 3x3 stride-2 max-pool, four stages of two ``torchvision.models.resnet.BasicBlock``
with widths ``w, 2w, 4w, 8w``, stride 2 from stage two on, 1x1 projection shortcuts,
torchvision's initialisation), so ``base_width=64`` *is* torchvision's ResNet18 trunk
(a test compares the parameter counts) and ``base_width=16`` has 1/16 of its weights.

``stem_stride`` may differ per axis: time runs horizontally on an ECG page, so a
``(2, 1)`` stem keeps twice the horizontal resolution (a QRS complex spans few pixels
at CPU page sizes) at about twice the compute.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


class ResNet2dFeatures(nn.Module):
    """``(N, 3, H, W) -> (N, 8*base_width, ~H/32, ~W/32)``: ResNet18 without pooling or classifier.

    Args:
        base_width: channels of the first stage (64 = torchvision's ResNet18).
        blocks_per_stage: BasicBlocks per stage; ``(2, 2, 2, 2)`` is ResNet18.
        stem_stride: stride of the stem convolution, an int or ``(vertical, horizontal)``.
        in_channels: input channels (3 for RGB pages).
    """

    def __init__(self, base_width: int = 64, blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2),
                 stem_stride: int | tuple[int, int] = 2, in_channels: int = 3) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        stride = (stem_stride, stem_stride) if isinstance(stem_stride, int) else tuple(int(s) for s in stem_stride)
        if len(stride) != 2 or min(stride) < 1:
            raise ValueError(f"stem_stride must be a positive int or (vertical, horizontal), got {stem_stride!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_width, 7, stride, 3, bias=False), nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages = []
        channels = base_width
        for index, n_blocks in enumerate(blocks_per_stage):
            width = base_width * 2 ** index
            block_stride = 1 if index == 0 else 2
            downsample = None
            if block_stride != 1 or channels != width:
                downsample = nn.Sequential(nn.Conv2d(channels, width, 1, block_stride, bias=False),
                                           nn.BatchNorm2d(width))
            blocks = [BasicBlock(channels, width, block_stride, downsample)]
            blocks += [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels
        # torchvision's ResNet initialisation, so width 64 is the same network as resnet18(weights=None).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))
