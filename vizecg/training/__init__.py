"""Training: the :func:`fit` engine, checkpoint files and torchrun/DDP setup."""
from vizecg.training.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from vizecg.training.engine import FitResult, fit

__all__ = ["CheckpointError", "FitResult", "fit", "load_model", "read_checkpoint", "save_checkpoint"]
