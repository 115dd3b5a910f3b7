"""InceptionTime for 12-lead signals.

Ismail Fawaz, Lucas, Forestier, Pelletier, Schmidt, Weber, Webb, Idoumghar,
Muller, Petitjean: "InceptionTime: Finding AlexNet for time series
classification", Data Mining and Knowledge Discovery 34(6), 2020.
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.base import EcgClassifier


class InceptionModule1d(nn.Module):
    """Bottleneck 1x1 -> three parallel convolutions (kernels K, K/2, K/4) plus a max-pool -> 1x1 branch.

    The four branches of ``n_filters`` channels each are concatenated, then
    BatchNorm and ReLU, as in the paper's Fig. 1. The bottleneck is skipped
    when the input has a single channel (the paper does the same for
    univariate input).
    """

    def __init__(self, in_channels: int, n_filters: int = 32, bottleneck: int = 32,
                 kernel_sizes: tuple[int, ...] = (40, 20, 10)) -> None:
        super().__init__()
        use_bottleneck = in_channels > 1 and bottleneck > 0
        self.bottleneck: nn.Module = nn.Conv1d(in_channels, bottleneck, 1, bias=False) if use_bottleneck else nn.Identity()
        branch_in = bottleneck if use_bottleneck else in_channels
        self.convs = nn.ModuleList(nn.Conv1d(branch_in, n_filters, k, padding=k // 2, bias=False) for k in kernel_sizes)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, 1, 1), nn.Conv1d(in_channels, n_filters, 1, bias=False))
        self.out_channels = n_filters * (len(kernel_sizes) + 1)
        self.bn = nn.BatchNorm1d(self.out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.bottleneck(x)
        branches = [conv(squeezed) for conv in self.convs] + [self.pool_branch(x)]
        return self.relu(self.bn(torch.cat(branches, dim=1)))


@register_model("inception_time", tiny_options={"n_filters": 4, "bottleneck": 4, "depth": 3, "kernel_size": 10},
                default_options={"n_filters": 32, "depth": 6, "kernel_size": 20},
                paper_options={"n_filters": 32, "depth": 6, "kernel_size": 40},
                paper_params_m=0.49, paper_ms={"signal": 15.9})
class InceptionTime(EcgClassifier):
    """InceptionTime (Ismail Fawaz et al., DMKD 2020): stacked Inception modules with a shortcut every 3.

    One Inception network of the paper (its "InceptionTime" is an ensemble of
    five such networks; like the PTB-XL benchmark of Strodthoff et al. 2021 we
    train one): ``depth`` modules with ``n_filters`` per branch, kernel sizes
    ``kernel_size, /2, /4`` (40, 20, 10 in the paper; made odd, 39, 19, 9), a residual connection
    (1x1 conv + BN projection) every third module, global average pooling and
    a linear classifier.

    Args:
        num_classes: outputs.
        n_filters: channels per branch (module output is 4x that).
        bottleneck: channels of the 1x1 bottleneck.
        depth: number of Inception modules (a multiple of 3 keeps every module under a shortcut).
        kernel_size: longest kernel K; the others are K/2 and K/4.
    """

    input_kind = "signal"

    def __init__(self, num_classes: int = 6, n_filters: int = 32, bottleneck: int = 32, depth: int = 6,
                 kernel_size: int = 40) -> None:
        super().__init__()
        # Odd lengths (39, 19, 9 for K=40), as in the PyTorch ports (tsai, the PTB-XL benchmark), so that
        # "same" padding is symmetric and every output sample is centred on its input sample.
        kernel_sizes = tuple(max(k - 1 if k % 2 == 0 else k, 1) for k in (kernel_size // 2 ** i for i in range(3)))
        self.modules_list = nn.ModuleList()
        self.shortcuts = nn.ModuleDict()
        channels = residual_channels = N_LEADS
        for index in range(depth):
            module = InceptionModule1d(channels, n_filters, bottleneck, kernel_sizes)
            self.modules_list.append(module)
            channels = module.out_channels
            if index % 3 == 2:
                self.shortcuts[str(index)] = nn.Sequential(nn.Conv1d(residual_channels, channels, 1, bias=False),
                                                           nn.BatchNorm1d(channels))
                residual_channels = channels
        self.relu = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        x = residual = signal
        for index, module in enumerate(self.modules_list):
            x = module(x)
            if str(index) in self.shortcuts:
                x = self.relu(x + self.shortcuts[str(index)](residual))
                residual = x
        return {"logits": self.classifier(x.mean(dim=-1))}
