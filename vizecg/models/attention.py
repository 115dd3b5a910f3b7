"""Residual attention blocks (CMAM, SMAM) and the positional encodings of VizECGNet.

Both of the paper's attention modules are one operation with different key/value
sources:

* CMAM (eq. 3): ``F_{a<-b} = F_a + softmax(Q(F_a) K(F_b)^T / sqrt(d)) V(F_b)``,
  queries from one modality, keys and values from the other;
* SMAM (eq. 4): ``F'_a = G_a + softmax(Q(G_a) K(G_a)^T / sqrt(d)) V(G_a)``,
  all three from the same stream.

:class:`ResidualAttention` implements that with :class:`torch.nn.MultiheadAttention`
(which adds an output projection and splits ``d`` into heads; ``num_heads=1``
is the paper's single-head formula plus that projection). An optional
LayerNorm on the inputs (pre-norm, as in most current transformers) keeps the
softmax from saturating on unnormalised CNN features; it leaves the residual
path untouched, so the block still matches the equations' structure.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class ResidualAttention(nn.Module):
    """``queries + MultiheadAttention(queries, context, context)``, returning the attention map on request."""

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, pre_norm: bool = True,
                 cross: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention dim {dim} is not divisible by num_heads {num_heads}")
        self.query_norm: nn.Module = nn.LayerNorm(dim) if pre_norm else nn.Identity()
        # A cross block normalises its context separately (another modality's statistics);
        # a self block (SMAM) reuses the normalised queries and has no context norm.
        self.context_norm: nn.Module | None = (nn.LayerNorm(dim) if pre_norm else nn.Identity()) if cross else None
        self.attention = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, queries: torch.Tensor, context: torch.Tensor | None = None,
                return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``queries`` (B, Lq, d) to ``context`` (B, Lk, d); ``context=None`` is self-attention.

        Returns the updated queries and, if requested, the per-head attention
        weights ``(B, heads, Lq, Lk)`` (rows sum to one).
        """
        q = self.query_norm(queries)
        if context is None:
            kv = q
        elif self.context_norm is None:
            raise ValueError("this ResidualAttention was built with cross=False (self-attention only); pass context=None")
        else:
            kv = self.context_norm(context)
        attended, weights = self.attention(q, kv, kv, need_weights=return_attention,
                                           average_attn_weights=False)
        return queries + attended, weights


def sinusoidal_encoding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Vaswani et al. (2017) sinusoidal code of (possibly fractional) ``positions`` -> ``(len, dim)``.

    Sinusoids rather than learned tables so that any signal length or image
    size seen at inference gets a valid encoding.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal encoding needs an even dim, got {dim}")
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
                            * (-math.log(10000.0) / dim))
    angles = positions.float()[:, None] * frequencies[None, :]
    encoding = torch.zeros(len(positions), dim, device=positions.device)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles)
    return encoding


def sinusoidal_encoding_2d(height: int, width: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Row code in the first half of the channels and column code in the second -> ``(height*width, dim)``.

    Rows vary slowest, matching ``feature_map.flatten(2)`` of a ``(B, C, H, W)`` map.
    """
    if dim % 4:
        raise ValueError(f"2D sinusoidal encoding needs dim divisible by 4, got {dim}")
    rows = sinusoidal_encoding(torch.arange(height, device=device), dim // 2)
    cols = sinusoidal_encoding(torch.arange(width, device=device), dim // 2)
    return torch.cat([rows[:, None, :].expand(height, width, dim // 2),
                      cols[None, :, :].expand(height, width, dim // 2)], dim=-1).reshape(height * width, dim)
