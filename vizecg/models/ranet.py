"""1D RANet: a residual 1D CNN with channel and temporal attention for multi-label 12-lead ECGs.

Liu, Xie, Cao, Yan, Wu, Zhu, Pan: "Multi-label classification of multi-lead
ECG based on deep 1D convolutional neural networks with residual and attention
mechanism", Computing in Cardiology 48, 2021.

The paper describes its network as deep 1D residual blocks with an attention
mechanism over a multi-lead input and a sigmoid multi-label output; it publishes
no code. This reconstruction keeps those elements in their standard forms:
the 12 leads as input channels; residual blocks (two convolutions with BN,
dropout between them); squeeze-and-excitation channel attention (Hu et al.,
CVPR 2018) on each residual branch; and a learned temporal attention pooling
that weights the final time steps before one linear layer. With the default
widths (64, 128, 256, 256) and kernel 7 it has 4.0M parameters (the VizECGNet
paper lists 3.93M).
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.base import EcgClassifier


class SqueezeExcitation1d(nn.Module):
    """Channel attention: global average -> bottleneck MLP -> sigmoid gates per channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=-1))[:, :, None]


class ResidualAttentionBlock1d(nn.Module):
    """conv(k)-BN-ReLU-Dropout-conv(k)-BN -> SE gates -> + shortcut (max-pool/1x1 when shape changes) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.branch = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm1d(out_channels), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv1d(out_channels, out_channels, kernel_size, 1, padding, bias=False),
            nn.BatchNorm1d(out_channels), SqueezeExcitation1d(out_channels))
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.MaxPool1d(stride, stride, ceil_mode=True))
        if in_channels != out_channels:
            shortcut += [nn.Conv1d(in_channels, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels)]
        self.shortcut = nn.Sequential(*shortcut)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


@register_model("ranet1d", tiny_options={"stage_widths": (4, 8), "blocks_per_stage": 1, "kernel_size": 5},
                default_options={"stage_widths": (48, 96, 192, 192)},
                paper_options={"stage_widths": (64, 128, 256, 256)},
                paper_params_m=3.93, paper_ms={"signal": 23.5})
class RANet1d(EcgClassifier):
    """1D RANet (Liu et al., CinC 2021): residual SE blocks over the 12 leads, temporal attention pooling, linear head.

    ``return_attention=True`` adds ``attention["temporal"]`` of shape
    ``(B, T')``: the softmax weights the pooling gives each final time step.

    Args:
        num_classes: outputs.
        stage_widths: channels per stage; every stage after the first halves time.
        blocks_per_stage: residual blocks per stage.
        kernel_size: convolution kernel (odd).
        stem_kernel_size: kernel of the stride-2 stem convolution.
        dropout: dropout inside residual blocks.
    """

    input_kind = "signal"

    def __init__(self, num_classes: int = 6, stage_widths: tuple[int, ...] = (64, 128, 256, 256),
                 blocks_per_stage: int = 2, kernel_size: int = 7, stem_kernel_size: int = 15,
                 dropout: float = 0.2) -> None:
        super().__init__()
        stage_widths = tuple(stage_widths)
        first = stage_widths[0]
        self.stem = nn.Sequential(nn.Conv1d(N_LEADS, first, stem_kernel_size, 2, stem_kernel_size // 2, bias=False),
                                  nn.BatchNorm1d(first), nn.ReLU(inplace=True), nn.MaxPool1d(3, 2, 1))
        blocks = []
        channels = first
        for index, width in enumerate(stage_widths):
            for block in range(blocks_per_stage):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(ResidualAttentionBlock1d(channels, width, stride, kernel_size, dropout))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.attention_score = nn.Conv1d(channels, 1, 1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        features = self.blocks(self.stem(signal))  # (B, C, T')
        weights = torch.softmax(self.attention_score(features).squeeze(1), dim=-1)  # (B, T')
        pooled = torch.einsum("bct,bt->bc", features, weights)
        outputs = {"logits": self.classifier(pooled)}
        if return_attention:
            outputs["attention"] = {"temporal": weights}
        return outputs
