"""The forward contract every registered model shares, and the input checks behind it.

Every model is called as ``model(signal=None, image=None, return_attention=False)``
and returns a dict with at least ``"logits"`` of shape ``(B, num_classes)``
(pre-sigmoid). ``signal`` is ``(B, 12, T)`` in mV with ``T >= MIN_SIGNAL_SAMPLES``;
``image`` is ``(B, 3, H, W)`` float in ``[0, 1]`` with ``H, W >= MIN_IMAGE_SIDE``.
Image models normalise with ImageNet statistics *inside* the module, so that the
training loop, the evaluation and the predict command feed the same ``[0, 1]``
tensors and cannot disagree about preprocessing.
"""
from __future__ import annotations

import torch
from torch import nn

from vizecg.contract import N_LEADS

MIN_SIGNAL_SAMPLES = 256
MIN_IMAGE_SIDE = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EcgClassifier(nn.Module):
    """Base class: input checks and ImageNet normalisation shared by all models.

    Subclasses set ``input_kind`` and implement ``forward``; they call
    :meth:`check_inputs` first so that a wrong tensor fails with a message naming
    the model and the problem instead of a shape error deep inside a convolution.
    """

    input_kind: str = ""
    model_name: str = ""

    def __init__(self) -> None:
        super().__init__()
        # Non-persistent: these are constants, not learnt state, and must not
        # make checkpoints depend on them.
        self.register_buffer("_image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise_image(self, image: torch.Tensor) -> torch.Tensor:
        """Map a ``[0, 1]`` image batch to ImageNet-standardised values."""
        return (image - self._image_mean) / self._image_std

    def check_inputs(self, signal: torch.Tensor | None, image: torch.Tensor | None) -> None:
        """Raise ``ValueError`` for missing, unexpected or malformed inputs."""
        name = type(self).__name__
        needs_signal = self.input_kind == "signal"
        needs_image = self.input_kind == "image"
        if signal is None and image is None:
            raise ValueError(f"{name}: forward needs an input; got neither signal nor image")
        if needs_signal and signal is None:
            raise ValueError(f"{name} is a signal model: pass signal=(B, {N_LEADS}, T), not only an image")
        if needs_image and image is None:
            raise ValueError(f"{name} is an image model: pass image=(B, 3, H, W), not only a signal")
        if needs_signal and image is not None:
            raise ValueError(f"{name} is a signal model and takes no image")
        if needs_image and signal is not None:
            raise ValueError(f"{name} is an image model and takes no signal")
        if signal is not None:
            if signal.dim() != 3 or signal.shape[1] != N_LEADS:
                raise ValueError(f"{name}: signal must be (B, {N_LEADS}, T) leads-first, got {tuple(signal.shape)}")
            if signal.shape[2] < MIN_SIGNAL_SAMPLES:
                raise ValueError(f"{name}: signal has T={signal.shape[2]} samples; at least {MIN_SIGNAL_SAMPLES} needed")
            if not signal.is_floating_point():
                raise ValueError(f"{name}: signal must be a float tensor in mV, got {signal.dtype}")
        if image is not None:
            if image.dim() != 4 or image.shape[1] != 3:
                raise ValueError(f"{name}: image must be (B, 3, H, W) RGB, got {tuple(image.shape)}")
            if min(image.shape[2:]) < MIN_IMAGE_SIDE:
                raise ValueError(f"{name}: image is {tuple(image.shape[2:])} pixels; both sides must be >= {MIN_IMAGE_SIDE}")
            if not image.is_floating_point():
                raise ValueError(f"{name}: image must be float in [0, 1], got {image.dtype}; divide uint8 by 255")
        if signal is not None and image is not None and signal.shape[0] != image.shape[0]:
            raise ValueError(f"{name}: signal batch {signal.shape[0]} != image batch {image.shape[0]}")


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
