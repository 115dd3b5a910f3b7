"""XResNet1D-101: the "bag of tricks" ResNet-D in 1D, as in the PTB-XL benchmark.

He, Zhang, Zhang, Zhang, Xie, Li: "Bag of tricks for image classification with
convolutional neural networks", CVPR 2019 (the ResNet-C stem and ResNet-D
shortcut); its 1D version for ECGs as used by Strodthoff, Wagner, Schaeffter,
Samek: "Deep learning for ECG analysis: benchmarks and insights from PTB-XL",
IEEE JBHI 25(5), 2021 (fastai-style ``xresnet1d101``).
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.base import EcgClassifier


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, relu: bool = True,
            zero_bn: bool = False) -> nn.Sequential:
    """Conv1d (no bias) -> BatchNorm (gamma 0 when ``zero_bn``) -> optional ReLU."""
    bn = nn.BatchNorm1d(out_channels)
    if zero_bn:
        nn.init.zeros_(bn.weight)
    layers = [nn.Conv1d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False), bn]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class XBottleneck1d(nn.Module):
    """Bottleneck 1x1 -> k (stride here, ResNet-B) -> 1x1 with expansion 4; ResNet-D shortcut (avg-pool, then 1x1)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, kernel_size: int, zero_init_residual: bool) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.residual = nn.Sequential(
            conv_bn(in_channels, width, 1),
            conv_bn(width, width, kernel_size, stride),
            conv_bn(width, out_channels, 1, relu=False, zero_bn=zero_init_residual))
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool1d(stride, stride, ceil_mode=True))
        if in_channels != out_channels:
            shortcut.append(conv_bn(in_channels, out_channels, 1, relu=False))
        self.shortcut = nn.Sequential(*shortcut)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


@register_model("xresnet1d101",
                tiny_options={"base_width": 4, "blocks_per_stage": (1, 1, 1, 1), "head_hidden": 8,
                              "zero_init_residual": False},
                default_options={"base_width": 16},
                paper_options={},
                paper_params_m=13.94, paper_ms={"signal": 23.7})
class XResNet1d(EcgClassifier):
    """XResNet1D-101 (He et al. CVPR 2019 tricks; 1D as in Strodthoff et al. 2021): ResNet-C stem, ResNet-D blocks.

    Stem: three ``kernel_size`` convolutions 12->32->32->64 (first stride 2)
    and a stride-2 max-pool (ResNet-C). Four stages of bottleneck blocks
    ``blocks_per_stage`` = (3, 4, 23, 3) for depth 101, widths ``w, 2w, 4w, 8w``
    (x4 output); downsampling in the middle convolution (ResNet-B) and an
    average-pool shortcut (ResNet-D); the last BN of each residual branch starts
    at zero (``zero_init_residual``, a bag-of-tricks item). Head as in fastai:
    concatenated average+max pooling -> BN -> dropout -> Linear -> ReLU -> BN ->
    dropout -> Linear.

    Args:
        num_classes: outputs.
        base_width: width of the first stage (64 for the published network).
        blocks_per_stage: bottlenecks per stage.
        kernel_size: kernel of the non-pointwise convolutions (5 in the PTB-XL benchmark's xresnet1d).
        head_hidden: hidden units of the head.
        head_dropout: dropout of the last head layer (half of it before the first).
        zero_init_residual: start each residual branch at zero.
    """

    input_kind = "signal"

    def __init__(self, num_classes: int = 6, base_width: int = 64, blocks_per_stage: tuple[int, ...] = (3, 4, 23, 3),
                 kernel_size: int = 5, head_hidden: int = 512, head_dropout: float = 0.5,
                 zero_init_residual: bool = True) -> None:
        super().__init__()
        stem_widths = (N_LEADS, base_width // 2, base_width // 2, base_width)
        self.stem = nn.Sequential(
            *[conv_bn(stem_widths[i], stem_widths[i + 1], kernel_size, stride=2 if i == 0 else 1) for i in range(3)],
            nn.MaxPool1d(3, 2, 1))
        stages = []
        channels = base_width
        for index, n_blocks in enumerate(blocks_per_stage):
            width = base_width * 2 ** index
            blocks = []
            for block in range(n_blocks):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(XBottleneck1d(channels, width, stride, kernel_size, zero_init_residual))
                channels = width * XBottleneck1d.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.BatchNorm1d(2 * channels), nn.Dropout(head_dropout / 2), nn.Linear(2 * channels, head_hidden),
            nn.ReLU(inplace=True), nn.BatchNorm1d(head_hidden), nn.Dropout(head_dropout),
            nn.Linear(head_hidden, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        features = self.stages(self.stem(signal))
        pooled = torch.cat([features.mean(dim=-1), features.amax(dim=-1)], dim=1)
        return {"logits": self.head(pooled)}
