"""MHM adapted to ECGs: modality encoders, attentive fusion, hierarchical multi-label prediction.

Qiao, Zhang, Wu, Ge, Fan: "MHM: Multi-modal clinical data based hierarchical
multi-label diagnosis prediction", SIGIR 2020.

MHM encodes each clinical modality separately, fuses the modality embeddings
and predicts diagnoses along the label hierarchy, the coarse level first and
the fine level conditioned on it. Here the modalities are the 12-lead signal
(a 1D ResNet18 over the stacked leads) and the printed ECG image (torchvision
ResNet18); the hierarchy is two-level, disease *groups* above the six labels:
conduction disorders (1dAVb, RBBB, LBBB) and rhythm disorders (SB, AF, ST).
Fusion is attention over the available modality embeddings, so with one
modality it reduces to that modality's embedding and the same hierarchical
head serves signal-only, image-only and joint inference.
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import LABELS, N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.base import EcgClassifier
from vizecg.models.resnet1d import ResNet1dFeatures
from vizecg.models.resnet2d import ResNet2dFeatures

# Disease groups over the label order of vizecg.contract.LABELS.
DEFAULT_LABEL_GROUPS: dict[str, tuple[str, ...]] = {"conduction": ("1dAVb", "RBBB", "LBBB"),
                                                   "rhythm": ("SB", "AF", "ST")}
DEFAULT_GROUP_INDICES: tuple[tuple[int, ...], ...] = tuple(
    tuple(LABELS.index(label) for label in members) for members in DEFAULT_LABEL_GROUPS.values())


class HierarchicalHead(nn.Module):
    """Coarse group logits from the embedding, then fine logits from ``[embedding, sigmoid(group logits)]``."""

    def __init__(self, dim: int, num_groups: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.group_classifier = nn.Linear(dim, num_groups)
        self.label_classifier = nn.Linear(dim + num_groups, num_classes)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.dropout(embedding)
        group_logits = self.group_classifier(embedding)
        label_logits = self.label_classifier(torch.cat([embedding, torch.sigmoid(group_logits)], dim=1))
        return label_logits, group_logits


@register_model("mhm", tiny_options={"signal_width": 4, "image_width": 4, "embed_dim": 16},
                default_options={"signal_width": 16, "image_width": 16, "embed_dim": 128},
                paper_options={"signal_width": 64, "image_width": 64, "embed_dim": 256},
                paper_params_m=15.44, paper_ms={"signal": 28.1, "image": 30.2})
class MHM(EcgClassifier):
    """MHM (Qiao et al., SIGIR 2020) for signal + image: per-modality encoders, attentive fusion, hierarchical head.

    Outputs: ``"logits_signal"``/``"logits_image"`` (and ``"group_logits_*"``)
    for every modality given, each from the shared hierarchical head on that
    modality's embedding; with both inputs ``"logits"`` is the fused
    prediction (``"group_logits"`` its coarse level), with one input it is
    that modality's. Training supervises all three (see
    :class:`vizecg.models.losses.HierarchicalMultiLabelLoss`), which is what
    lets MHM infer from either modality alone. ``return_attention=True`` adds
    ``attention["modality"]`` ``(B, n_modalities)``: the fusion weights.

    Args:
        num_classes: fine labels.
        signal_width: base width of the 1D ResNet18 (12 leads as input channels).
        image_width: base width of the 2D ResNet18 image encoder (64 = torchvision's ResNet18).
        embed_dim: width of the modality embeddings.
        label_groups: indices of the fine labels in each coarse group (must partition ``range(num_classes)``).
        dropout: dropout before the head.
    """

    input_kind = "multimodal"

    def __init__(self, num_classes: int = 6, signal_width: int = 64, image_width: int = 64, embed_dim: int = 256,
                 label_groups: tuple[tuple[int, ...], ...] = DEFAULT_GROUP_INDICES, dropout: float = 0.2) -> None:
        super().__init__()
        label_groups = tuple(tuple(int(i) for i in group) for group in label_groups)
        if sorted(i for group in label_groups for i in group) != list(range(num_classes)):
            raise ValueError(f"label_groups {label_groups} must partition the {num_classes} label indices")
        self.label_groups = label_groups
        self.signal_encoder = ResNet1dFeatures(N_LEADS, signal_width)
        self.image_encoder = ResNet2dFeatures(image_width)
        image_channels = self.image_encoder.out_channels
        self.embed = nn.ModuleDict({
            "signal": nn.Sequential(nn.Linear(self.signal_encoder.out_channels, embed_dim), nn.LayerNorm(embed_dim), nn.ReLU()),
            "image": nn.Sequential(nn.Linear(image_channels, embed_dim), nn.LayerNorm(embed_dim), nn.ReLU())})
        self.fusion_score = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.Tanh(), nn.Linear(embed_dim, 1, bias=False))
        self.head = HierarchicalHead(embed_dim, len(label_groups), num_classes, dropout)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        embeddings: dict[str, torch.Tensor] = {}
        if signal is not None:
            embeddings["signal"] = self.embed["signal"](self.signal_encoder(signal).mean(dim=-1))
        if image is not None:
            embeddings["image"] = self.embed["image"](self.image_encoder(self.normalise_image(image)).mean(dim=(2, 3)))

        outputs: dict = {}
        for modality, embedding in embeddings.items():
            outputs[f"logits_{modality}"], outputs[f"group_logits_{modality}"] = self.head(embedding)
        stacked = torch.stack(list(embeddings.values()), dim=1)  # (B, M, d)
        weights = torch.softmax(self.fusion_score(stacked).squeeze(-1), dim=1)  # (B, M)
        if len(embeddings) > 1:
            fused = (weights[:, :, None] * stacked).sum(dim=1)
            outputs["logits"], outputs["group_logits"] = self.head(fused)
        else:
            (modality,) = embeddings
            outputs["logits"], outputs["group_logits"] = outputs[f"logits_{modality}"], outputs[f"group_logits_{modality}"]
        if return_attention:
            outputs["attention"] = {"modality": weights}
        return outputs
