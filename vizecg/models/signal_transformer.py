"""A Transformer encoder over 12-lead ECG patches (Vaswani et al., NeurIPS 2017).

The paper cites "Attention is all you need" without giving its signal
front-end. We use the common recipe for long signals: a strided convolution
cuts the ``(12, T)`` signal into non-overlapping patches of ``patch_size``
samples (all 12 leads at once) and embeds each as a ``d_model`` token;
sinusoidal positions are added (valid for any ``T``), a pre-norm Transformer
encoder mixes the tokens, and the mean token is classified.
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import register_model
from vizecg.models.attention import sinusoidal_encoding
from vizecg.models.base import EcgClassifier


@register_model("transformer",
                tiny_options={"d_model": 16, "num_heads": 2, "num_layers": 1, "feedforward_dim": 32, "patch_size": 32},
                default_options={"d_model": 256, "num_heads": 8, "num_layers": 4, "feedforward_dim": 512,
                                 "patch_size": 16},
                paper_options={"d_model": 512, "num_heads": 8, "num_layers": 8, "feedforward_dim": 2048,
                               "patch_size": 16},
                paper_params_m=24.17, paper_ms={"signal": 32.1})
class SignalTransformer(EcgClassifier):
    """Transformer encoder (Vaswani et al. 2017) on patch-embedded 12-lead signals, mean-pooled to a linear head.

    Args:
        num_classes: outputs.
        d_model: token width.
        num_heads: attention heads per layer.
        num_layers: encoder layers.
        feedforward_dim: hidden width of each layer's MLP.
        patch_size: samples per token (stride of the embedding convolution).
        dropout: dropout inside the encoder.
    """

    input_kind = "signal"

    def __init__(self, num_classes: int = 6, d_model: int = 512, num_heads: int = 8, num_layers: int = 8,
                 feedforward_dim: int = 2048, patch_size: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.d_model = d_model
        self.patch_embedding = nn.Conv1d(N_LEADS, d_model, patch_size, stride=patch_size)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, feedforward_dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        tokens = self.patch_embedding(signal).transpose(1, 2)  # (B, T/patch, d)
        positions = torch.arange(tokens.shape[1], device=signal.device)
        tokens = tokens + sinusoidal_encoding(positions, self.d_model)[None]
        return {"logits": self.classifier(self.encoder(tokens).mean(dim=1))}
