"""Image-only baselines of Table 1: ResNet18 (torchvision layout, width as a knob) and torchvision MobileNetV3.

Both are built with ``weights=None`` (random init: no download ever happens; a study run starts
from scratch, or from the study's own page encoder, ``train.image_encoder_from``). Inputs are
``[0, 1]`` RGB images of any size >= 64 px; ImageNet normalisation happens
inside the module.
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from vizecg.models._registry import register_model
from vizecg.models.base import EcgClassifier
from vizecg.models.resnet2d import ResNet2dFeatures


@register_model("resnet18", tiny_options={"base_width": 4}, default_options={"base_width": 16},
                paper_options={"base_width": 64}, paper_params_m=11.64, paper_ms={"image": 21.4})
class ImageResNet18(EcgClassifier):
    """ResNet18 (He et al., "Deep residual learning for image recognition", CVPR 2016) on the ECG image.

    torchvision's ResNet18 layout (:class:`vizecg.models.resnet2d.ResNet2dFeatures`),
    global average pooling and a ``num_classes`` linear classifier. ``base_width=64``
    is torchvision's ``resnet18`` exactly (11.18M parameters for 6 classes); the CPU
    profile narrows it, because on 2 cores a narrow network that sees many pages
    learns and a wide one that sees few does not.

    Args:
        num_classes: outputs.
        base_width: channels of the first stage (64 = torchvision's ResNet18).
        stem_stride: stem stride, an int or ``(vertical, horizontal)``.
        measurement_outputs: size of a linear measurement head beside the classifier (0: none),
            trained by :class:`vizecg.models.losses.MeasurementLoss`; output ``"measurements"``.
    """

    input_kind = "image"

    def __init__(self, num_classes: int = 6, base_width: int = 64, stem_stride: int | tuple[int, int] = 2,
                 measurement_outputs: int = 0) -> None:
        super().__init__()
        self.features = ResNet2dFeatures(base_width, stem_stride=stem_stride)
        self.fc = nn.Linear(self.features.out_channels, num_classes)
        self.measurement_outputs = measurement_outputs
        self.measurement_head = (nn.Linear(self.features.out_channels, measurement_outputs)
                                 if measurement_outputs else None)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        pooled = self.features(self.normalise_image(image)).mean(dim=(2, 3))
        outputs = {"logits": self.fc(pooled)}
        if self.measurement_head is not None:
            outputs["measurements"] = self.measurement_head(pooled)
        return outputs

    @property
    def image_encoder(self) -> ResNet2dFeatures:
        """The page encoder under the name VizECGNet and MHM give theirs, so that one run's encoder
        can start another's (``train.image_encoder_from``)."""
        return self.features


@register_model("mobilenetv3", tiny_options={"variant": "small", "width_mult": 0.25},
                default_options={"variant": "small"}, paper_options={"variant": "large"},
                paper_params_m=18.20, paper_ms={"image": 12.8})
class ImageMobileNetV3(EcgClassifier):
    """MobileNetV3 (Howard et al., "Searching for MobileNetV3", ICCV 2019) on the ECG image.

    torchvision's ``mobilenet_v3_small`` or ``mobilenet_v3_large`` with a
    ``num_classes`` classifier. Neither matches the paper's 18.20M parameters:
    Large is 4.21M (5.48M with the ImageNet head) and Small 1.52M (2.54M), and
    no ``width_mult`` of Large reaches 18M at a plausible setting; the paper's
    figure cannot be traced to a standard MobileNetV3, so ``paper_options`` use
    the standard Large and the model card reports the difference.

    Args:
        num_classes: outputs.
        variant: ``"small"`` or ``"large"``.
        width_mult: torchvision's channel multiplier (1.0 is the published network).
        dropout: dropout before the last classifier layer.
    """

    input_kind = "image"

    def __init__(self, num_classes: int = 6, variant: str = "large", width_mult: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        builders = {"small": torchvision.models.mobilenet_v3_small, "large": torchvision.models.mobilenet_v3_large}
        if variant not in builders:
            raise ValueError(f"MobileNetV3 variant must be one of {sorted(builders)}, got {variant!r}")
        self.net = builders[variant](weights=None, num_classes=num_classes, width_mult=width_mult, dropout=dropout)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        self.check_inputs(signal, image)
        return {"logits": self.net(self.normalise_image(image))}
