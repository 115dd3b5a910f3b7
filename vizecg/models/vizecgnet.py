"""VizECGNet: signal + image streams joined by cross- and self-modal attention (SPEC section 4).

Reference: "VizECGNet: Visual ECG Image Network for Cardiovascular Diseases
Classification with Multi-Modal Training and Knowledge Distillation" (ICASSP 2024),
section 2, eqs. (1)-(7).
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.attention import ResidualAttention, sinusoidal_encoding, sinusoidal_encoding_2d
from vizecg.models.base import EcgClassifier
from vizecg.models.resnet1d import ResNet1dFeatures
from vizecg.models.resnet2d import ResNet2dFeatures

STREAMS = ("signal", "image")
MISSING_MODALITY_RULES = ("self", "skip")


class StreamHead(nn.Module):
    """Eq. (5)'s per-stream MLP on mean-pooled tokens: LayerNorm -> Linear -> ReLU -> Dropout -> Linear."""

    def __init__(self, dim: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``pooled``: the stream's tokens averaged over positions, ``(B, dim)``."""
        return self.mlp(pooled)


@register_model(
    "vizecgnet",
    tiny_options={"signal_width": 4, "image_width": 4, "embed_dim": 16, "head_hidden": 16, "num_heads": 2},
    default_options={"signal_width": 8, "image_width": 16, "embed_dim": 64, "num_heads": 4},
    paper_options={"signal_width": 64, "image_width": 64, "embed_dim": 256, "num_heads": 8},
    paper_params_m=11.17, paper_ms={"signal": 37.1, "image": 39.3})
class VizECGNet(EcgClassifier):
    """VizECGNet: 1D-ResNet18 signal stream and ResNet18 image stream fused by CMAM and SMAM, one head each.

    Signal stream: the 12 leads go one by one (input ``1 x T``) through a 1D
    ResNet18 with shared weights (eq. 1); the 12 per-lead maps of ``T' = T/32``
    positions give ``12 * T'`` tokens, projected to ``embed_dim`` and tagged with
    a learned lead embedding plus a sinusoidal time code. Image stream: the last
    ``H' x W'`` map of a torchvision ResNet18 (eq. 2) gives ``H' * W'`` tokens with
    a 2D sinusoidal code. CMAM (eq. 3) lets each stream's tokens attend to the
    other stream's tokens, both directions computed from the encoder outputs;
    SMAM (eq. 4) is self-attention within each stream on the CMAM output. Each
    stream is mean-pooled and classified by its own MLP (eq. 5).

    **Missing modality (image-only inference).** CMAM needs keys/values from
    the other modality, which does not exist when a printed ECG is all there
    is. ``missing_modality`` fixes one rule for the stream whose partner is
    absent: ``"self"`` (default) lets the stream's CMAM attend to its *own*
    tokens (CMAM's weights run as an extra self-attention); ``"skip"`` makes
    CMAM the identity (only the residual).

    **The image stream is trained on the deployed path.** With both inputs the
    image stream runs twice after its encoder: the *deployed pass* (CMAM under
    the missing-modality rule, exactly what image-only inference computes) gives
    ``"logits_image"``, on which the image BCE and the distillation are
    computed; the *cross-modal pass* (image tokens querying the signal tokens,
    eq. 3) gives ``"logits_image_fused"``, with a BCE of its own (see
    :class:`vizecg.models.losses.DistillationLoss`). An earlier rule computed
    the image loss on the cross-modal pass in most batches, which let the image
    stream lower its loss by copying signal information that a printed page
    never supplies. The signal stream's CMAM reads the image tokens, hidden with
    probability ``modality_dropout`` per batch so that signal-only inference is
    a state its weights have seen.

    ``"logits"`` is always the deployed image prediction when an image is given
    (the paper deploys the image stream), else the signal stream's.
    ``use_cmam``/``use_smam`` remove the modules entirely (Table 2 ablations).

    Args:
        num_classes: outputs (6 diseases).
        signal_width: base width of the 1D ResNet18 (64 paper, 16 CPU default).
        signal_kernel_size: kernel of the 1D ResNet blocks.
        image_width: base width of the 2D ResNet18 image encoder (64 paper = torchvision's ResNet18).
        image_stem_stride: stem stride of the image encoder, an int or ``(vertical, horizontal)``.
        embed_dim: common token width ``d`` of both streams.
        num_heads: attention heads of every CMAM/SMAM block.
        use_cmam, use_smam: keep the cross-/self-modal attention modules.
        missing_modality: ``"self"`` or ``"skip"``, see above.
        modality_dropout: probability of hiding the image from the signal stream's CMAM in a training batch.
        head_hidden: hidden width of the per-stream MLP (default ``embed_dim``).
        head_dropout: dropout inside the MLP heads.
        attention_dropout: dropout on attention weights.
        attention_pre_norm: LayerNorm on attention inputs (see :mod:`vizecg.models.attention`).
        measurement_outputs: size of a linear measurement head on the image stream's deployed
            pass (0: none), trained by :class:`vizecg.models.losses.MeasurementLoss`; output
            ``"measurements"``. It reads the same pooled tokens as the image head, so what it
            teaches the image encoder (where P waves and QRS onsets lie) is what the head reads.
    """

    input_kind = "multimodal"
    default_loss_options = {"use_kd": True}

    def __init__(self, num_classes: int = 6, signal_width: int = 64, signal_kernel_size: int = 3,
                 image_width: int = 64, image_stem_stride: int | tuple[int, int] = 2, embed_dim: int = 256, num_heads: int = 8, use_cmam: bool = True, use_smam: bool = True,
                 missing_modality: str = "self", modality_dropout: float = 0.3,
                 head_hidden: int | None = None, head_dropout: float = 0.1,
                 attention_dropout: float = 0.0, attention_pre_norm: bool = True,
                 measurement_outputs: int = 0) -> None:
        super().__init__()
        if missing_modality not in MISSING_MODALITY_RULES:
            raise ValueError(f"missing_modality must be one of {MISSING_MODALITY_RULES}, got {missing_modality!r}")
        if not 0.0 <= modality_dropout <= 1.0:
            raise ValueError(f"modality_dropout must be a probability, got {modality_dropout}")
        self.use_cmam = use_cmam
        self.use_smam = use_smam
        self.missing_modality = missing_modality
        self.modality_dropout = modality_dropout
        self.embed_dim = embed_dim

        self.signal_encoder = ResNet1dFeatures(1, signal_width, kernel_size=signal_kernel_size)
        self.image_encoder = ResNet2dFeatures(image_width, stem_stride=image_stem_stride)
        self.signal_projection = nn.Linear(self.signal_encoder.out_channels, embed_dim)
        self.image_projection = nn.Linear(self.image_encoder.out_channels, embed_dim)
        self.lead_embedding = nn.Parameter(torch.randn(N_LEADS, embed_dim) * 0.02)

        def attention(cross: bool) -> ResidualAttention:
            return ResidualAttention(embed_dim, num_heads, attention_dropout, attention_pre_norm, cross=cross)

        self.cmam = nn.ModuleDict({s: attention(cross=True) for s in STREAMS}) if use_cmam else None
        self.smam = nn.ModuleDict({s: attention(cross=False) for s in STREAMS}) if use_smam else None
        hidden = head_hidden or embed_dim
        self.heads = nn.ModuleDict({s: StreamHead(embed_dim, hidden, num_classes, head_dropout) for s in STREAMS})
        self.measurement_outputs = measurement_outputs
        self.measurement_head = nn.Linear(embed_dim, measurement_outputs) if measurement_outputs else None

    def encode_signal(self, signal: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(B, 12, T)`` -> tokens ``(B, 12*T', d)`` (lead-major) and the grid ``(12, T')``."""
        batch, leads, samples = signal.shape
        features = self.signal_encoder(signal.reshape(batch * leads, 1, samples))  # (B*12, C, T')
        positions = features.shape[-1]
        tokens = self.signal_projection(features.transpose(1, 2)).reshape(batch, leads, positions, -1)
        time_code = sinusoidal_encoding(torch.arange(positions, device=signal.device), self.embed_dim)
        tokens = tokens + self.lead_embedding[None, :, None, :] + time_code[None, None, :, :]
        return tokens.reshape(batch, leads * positions, -1), (leads, positions)

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(B, 3, H, W)`` in [0, 1] -> tokens ``(B, H'*W', d)`` (row-major) and the grid ``(H', W')``."""
        features = self.image_encoder(self.normalise_image(image))  # (B, 8*image_width, H', W')
        height, width = features.shape[-2:]
        tokens = self.image_projection(features.flatten(2).transpose(1, 2))
        return tokens + sinusoidal_encoding_2d(height, width, self.embed_dim, image.device)[None], (height, width)

    def _signal_cmam_context(self, tokens: dict[str, torch.Tensor]) -> str | None:
        """Which tokens the signal stream's CMAM attends to, or None for the identity."""
        available = "image" in tokens
        if available and self.training and self.modality_dropout > 0:
            available = bool(torch.rand(()) >= self.modality_dropout)
        if available:
            return "image"
        return "signal" if self.missing_modality == "self" else None

    def _deployed_image_context(self) -> str | None:
        """The image stream's CMAM context when no signal exists: its own tokens, or none."""
        return "image" if self.missing_modality == "self" else None

    def _refine(self, stream: str, tokens: dict[str, torch.Tensor], context: str | None,
                return_attention: bool, attention_maps: dict, suffix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """CMAM (with ``context``'s tokens as keys/values) then SMAM then the stream head: ``(logits, pooled tokens)``."""
        refined = tokens[stream]
        if self.cmam is not None and context is not None:
            # Both directions read the encoder outputs F_a, F_b (eq. 3), not each other's updates.
            refined, weights = self.cmam[stream](tokens[stream], tokens[context], return_attention)
            if return_attention:
                attention_maps[f"cmam_{stream}{suffix}"] = weights
        if self.smam is not None:
            refined, weights = self.smam[stream](refined, None, return_attention)
            if return_attention:
                attention_maps[f"smam_{stream}{suffix}"] = weights
        pooled = refined.mean(dim=1)
        return self.heads[stream](pooled), pooled

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        tokens: dict[str, torch.Tensor] = {}
        grids: dict[str, tuple[int, int]] = {}
        if signal is not None:
            tokens["signal"], grids["signal"] = self.encode_signal(signal)
        if image is not None:
            tokens["image"], grids["image"] = self.encode_image(image)

        outputs: dict = {"token_grid": grids, "cmam_context": {}}
        attention_maps: dict[str, torch.Tensor] = {}
        if "signal" in tokens:
            context = self._signal_cmam_context(tokens) if self.cmam is not None else None
            if self.cmam is not None:
                outputs["cmam_context"]["signal"] = context
            outputs["logits_signal"], _ = self._refine("signal", tokens, context, return_attention, attention_maps)
        if "image" in tokens:
            # The image stream always runs the pass the deployed model runs (no signal), so its
            # loss and distillation are computed on what image-only inference computes; copying
            # signal information through CMAM cannot lower them.
            context = self._deployed_image_context() if self.cmam is not None else None
            if self.cmam is not None:
                outputs["cmam_context"]["image"] = context
            outputs["logits_image"], pooled = self._refine("image", tokens, context, return_attention, attention_maps)
            if self.measurement_head is not None:
                outputs["measurements"] = self.measurement_head(pooled)
            if self.cmam is not None and "signal" in tokens:
                # The paper's cross-modal pass (eq. 3, image tokens querying signal tokens): it
                # trains CMAM as cross-modal attention and gives the signal's gradient a path into
                # the image encoder; its prediction is never the deployed one.
                outputs["logits_image_fused"], _ = self._refine("image", tokens, "signal", return_attention,
                                                                attention_maps, suffix="_fused")

        outputs["logits"] = outputs["logits_image"] if "image" in tokens else outputs["logits_signal"]
        if return_attention:
            outputs["attention"] = attention_maps
        return outputs
