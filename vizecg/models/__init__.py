"""Every model of the study behind one registry.

``create_model(name, num_classes=6, **options)`` builds a model by name,
``list_models()`` lists the names, ``model_info(name)`` describes one, and
``create_loss(model, **options)`` returns the training loss that fits it. All
models share the forward contract of :mod:`vizecg.models.base`.
"""
from vizecg.models._registry import create_model, list_models, model_entry, model_info, register_model
from vizecg.models.losses import DistillationLoss, HierarchicalMultiLabelLoss, MultiLabelBCELoss, create_loss

# Importing the model modules registers their classes.
from vizecg.models import (acnet, image_cnn, inception_time, mhm, ranet, signal_transformer,  # noqa: F401
                           vizecgnet, xresnet1d)

__all__ = ["create_model", "list_models", "model_entry", "model_info", "register_model",
           "create_loss", "DistillationLoss", "HierarchicalMultiLabelLoss", "MultiLabelBCELoss"]
