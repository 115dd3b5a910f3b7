"""Training losses: per-class BCE, and VizECGNet's two-stream BCE + Bernoulli KL distillation.

Every loss here is an ``nn.Module`` called as ``loss_fn(outputs, targets)`` with
the model's output dict and ``(B, C)`` float 0/1 targets, returning
``(loss, parts)`` where ``parts`` maps a term name to its detached float value
(for logging).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bernoulli_kl_with_logits(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(Bern(sigmoid(t)) || Bern(sigmoid(s)))``, computed in log-space for stability.

    ``p log(p/q) + (1-p) log((1-p)/(1-q))`` with ``log p = logsigmoid(t)`` and
    ``log(1-p) = logsigmoid(-t)``, so saturated logits give no ``0 * log 0`` NaNs.
    """
    p = torch.sigmoid(teacher_logits)
    return (p * (F.logsigmoid(teacher_logits) - F.logsigmoid(student_logits))
            + (1 - p) * (F.logsigmoid(-teacher_logits) - F.logsigmoid(-student_logits)))


def _check_targets(logits: torch.Tensor, targets: torch.Tensor, source: str) -> None:
    if logits.shape != targets.shape:
        raise ValueError(f"{source}: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")


class MultiLabelBCELoss(nn.Module):
    """Mean per-class binary cross-entropy on ``outputs["logits"]`` (single-modality models)."""

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32))

    def forward(self, outputs: dict, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = outputs["logits"]
        _check_targets(logits, targets, type(self).__name__)
        loss = F.binary_cross_entropy_with_logits(logits, targets.float(), pos_weight=self.pos_weight)
        return loss, {"bce": float(loss.detach()), "total": float(loss.detach())}


class DistillationLoss(nn.Module):
    """Eqs. (6)-(7) on the deployed image pass, plus the cross-modal pass's BCE.

    ``total = BCE(p_s, y) + BCE(p_v, y) + lambda_kd * KD(p_s -> p_v) + fused_weight * BCE(p_v^fused, y)``

    * ``p_s``: the signal stream (``logits_signal``), the teacher.
    * ``p_v``: the image stream's deployed pass (``logits_image``: what image-only
      inference computes), the student. Distilling into this pass, not into the
      cross-modal one, is what makes the distilled knowledge reach the model a
      clinic runs.
    * ``p_v^fused``: the image stream's cross-modal pass (``logits_image_fused``,
      CMAM reading the signal tokens); its BCE trains CMAM as cross-modal
      attention. Absent (no CMAM, or one modality) means no term.

    ``KD = mean over the batch of  reduce_c  T^2 * KL(Bern(p_s^c / T) || Bern(p_v^c / T))``
    (Hinton et al. 2015; ``T^2`` keeps gradient magnitudes comparable across
    temperatures). ``class_reduction="mean"`` (default) averages over the classes,
    the same reduction as the BCE terms, so ``lambda_kd = 1`` weighs the
    distillation like one BCE term; eq. (7)'s literal sum over the six classes
    (``"sum"``) is six times that.

    **Why the teacher is detached by default.** Without ``detach()`` the KL
    gradient also pulls the signal stream towards the image stream's (weaker)
    predictions, which lets the two meet half-way and drags the teacher down;
    with it the KD term moves only the student. ``detach_teacher=False`` is the
    symmetric alternative, kept for comparison.

    When only one stream ran (single-modality batch), the loss is that
    stream's BCE and the KD term is skipped.

    Args:
        lambda_kd: lambda (the paper fixes 1.0).
        detach_teacher: stop the KD gradient into the signal stream's logits.
        temperature: softening of both Bernoulli distributions (1 = the paper's).
        use_kd: ``False`` drops the KD term (the no-KD ablation).
        class_reduction: ``"mean"`` over classes (default) or ``"sum"`` as in eq. (7).
        fused_weight: weight of the cross-modal pass's BCE.
        pos_weight: optional per-class positive weights for the BCE terms.
    """

    def __init__(self, lambda_kd: float = 1.0, detach_teacher: bool = True, temperature: float = 1.0,
                 use_kd: bool = True, class_reduction: str = "mean", fused_weight: float = 1.0,
                 pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if class_reduction not in ("sum", "mean"):
            raise ValueError(f"class_reduction must be 'sum' or 'mean', got {class_reduction!r}")
        if fused_weight < 0:
            raise ValueError(f"fused_weight must be >= 0, got {fused_weight}")
        self.lambda_kd = lambda_kd
        self.detach_teacher = detach_teacher
        self.temperature = temperature
        self.use_kd = use_kd
        self.class_reduction = class_reduction
        self.fused_weight = fused_weight
        self.register_buffer("pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32))

    def distillation(self, teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        """The KD term alone (before ``lambda_kd``)."""
        if self.detach_teacher:
            teacher_logits = teacher_logits.detach()
        t = self.temperature
        per_class = bernoulli_kl_with_logits(teacher_logits / t, student_logits / t) * t * t
        per_sample = per_class.sum(dim=1) if self.class_reduction == "sum" else per_class.mean(dim=1)
        return per_sample.mean()

    def forward(self, outputs: dict, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        targets = targets.float()
        parts: dict[str, torch.Tensor] = {}
        for name in ("signal", "image", "image_fused"):
            logits = outputs.get(f"logits_{name}")
            if logits is not None:
                _check_targets(logits, targets, f"{type(self).__name__} ({name} stream)")
                parts[f"bce_{name}"] = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight)
        if "bce_signal" not in parts and "bce_image" not in parts:
            raise ValueError(f"{type(self).__name__}: outputs hold neither 'logits_signal' nor 'logits_image'")
        if self.use_kd and "bce_signal" in parts and "bce_image" in parts:
            parts["kd"] = self.distillation(outputs["logits_signal"], outputs["logits_image"])
        total = (parts.get("bce_signal", 0.0) + parts.get("bce_image", 0.0)
                 + self.fused_weight * parts.get("bce_image_fused", 0.0) + self.lambda_kd * parts.get("kd", 0.0))
        values = {name: float(value.detach()) for name, value in parts.items()}
        values["total"] = float(total.detach())
        return total, values


class HierarchicalMultiLabelLoss(nn.Module):
    """MHM's loss: BCE on fine labels plus ``group_weight`` x BCE on coarse groups, for every prediction given.

    A group's target is 1 when any of its member labels is 1. Every prediction
    in the outputs is supervised: the fused one (``logits``/``group_logits``)
    and each single-modality one (``logits_<m>``/``group_logits_<m>``), which
    is what keeps single-modality inference usable.

    Args:
        label_groups: indices of the fine labels in each group (from the model).
        group_weight: weight of the coarse-level terms.
        pos_weight: optional per-class positive weights for the fine-level terms.
    """

    def __init__(self, label_groups: tuple[tuple[int, ...], ...], group_weight: float = 1.0,
                 pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.label_groups = tuple(tuple(g) for g in label_groups)
        self.group_weight = group_weight
        self.register_buffer("pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32))

    def group_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` fine targets -> ``(B, G)``: 1 where any member label is 1."""
        return torch.stack([targets[:, list(group)].amax(dim=1) for group in self.label_groups], dim=1)

    def forward(self, outputs: dict, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        targets = targets.float()
        groups = self.group_targets(targets)
        parts: dict[str, torch.Tensor] = {}
        for suffix in ("", "_signal", "_image"):
            if f"logits{suffix}" not in outputs:
                continue
            _check_targets(outputs[f"logits{suffix}"], targets, f"{type(self).__name__} (logits{suffix})")
            name = suffix.lstrip("_") or "fused"
            parts[f"bce_{name}"] = F.binary_cross_entropy_with_logits(outputs[f"logits{suffix}"], targets,
                                                                      pos_weight=self.pos_weight)
            parts[f"group_bce_{name}"] = F.binary_cross_entropy_with_logits(outputs[f"group_logits{suffix}"], groups)
        if not parts:
            raise ValueError(f"{type(self).__name__}: outputs hold no 'logits'")
        total = sum(v if k.startswith("bce") else self.group_weight * v for k, v in parts.items())
        values = {name: float(value.detach()) for name, value in parts.items()}
        values["total"] = float(total.detach())
        return total, values


DISTILLATION_OPTIONS = frozenset({"lambda_kd", "detach_teacher", "temperature", "use_kd", "class_reduction",
                                  "fused_weight"})


class MeasurementLoss(nn.Module):
    """A classification loss plus an auxiliary regression of the ECG measurements that define the classes.

    ``total = base(outputs, targets) + weight * Huber(outputs["measurements"], measurements)``

    ``measurements`` are :func:`vizecg.data.ecg_measurements.measurement_targets` of each training
    record, measured on its signal (PR interval, QRS duration, heart rate, RR irregularity,
    P-wave presence, standardised), NaN where not measurable; NaN entries are left out of the
    mean. Why: 1dAVb is a PR interval over 200 ms, a few pixels on a page, and its label says
    only "longer or not" for the one record in ten that has it; the PR interval itself asks
    every page where its P wave and QRS onset lie, a much denser signal for the image encoder.
    Like the distillation, it is a training signal only: the deployed model's logits do not
    depend on the measurement head.

    The training loop passes the batch's ``"measurements"`` (named in :attr:`extra_targets`);
    without them (validation) the loss is ``base``'s.
    """

    extra_targets = ("measurements",)

    def __init__(self, base: nn.Module, weight: float = 1.0, delta: float = 1.0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"measurement weight must be >= 0, got {weight}")
        self.base = base
        self.weight = weight
        self.delta = delta

    def forward(self, outputs: dict, targets: torch.Tensor, measurements: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        total, values = self.base(outputs, targets)
        if measurements is None:
            return total, values
        predicted = outputs.get("measurements")
        if predicted is None:
            raise ValueError(f"{type(self).__name__}: the model returned no 'measurements'; build it with "
                             "measurement_outputs > 0")
        if predicted.shape != measurements.shape:
            raise ValueError(f"{type(self).__name__}: predicted measurements {tuple(predicted.shape)} do not "
                             f"match the targets {tuple(measurements.shape)}")
        known = torch.isfinite(measurements)
        if bool(known.any()):
            term = F.huber_loss(predicted[known], measurements[known].float(), delta=self.delta)
        else:
            term = predicted.sum() * 0.0  # keeps the graph (and DDP's gradient bookkeeping) intact
        total = total + self.weight * term
        values = {**values, "measurement": float(term.detach()), "total": float(total.detach())}
        return total, values


def needs_measurements(loss_fn: nn.Module) -> bool:
    """Whether ``loss_fn`` trains on the records' measurements (:class:`MeasurementLoss`), so the
    training set must carry them."""
    return "measurements" in getattr(loss_fn, "extra_targets", ())


def create_loss(model: nn.Module, **loss_options) -> nn.Module:
    """The training loss that fits ``model``.

    :class:`HierarchicalMultiLabelLoss` for models with a label hierarchy
    (``model.label_groups``, i.e. MHM), :class:`DistillationLoss` for the other
    multimodal models (VizECGNet), :class:`MultiLabelBCELoss` otherwise. A
    multimodal model class may set ``default_loss_options``; explicit
    ``loss_options`` override them. Single-modality
    models accept and ignore the distillation options (:data:`DISTILLATION_OPTIONS`)
    so that one profile's loss options can be passed to every model; any other
    option the chosen loss does not take raises a ``TypeError`` naming it.
    ``measurement_weight > 0`` wraps the loss in :class:`MeasurementLoss` (the model must have
    a measurement head).
    """
    measurement_weight = float(loss_options.pop("measurement_weight", 0.0))
    base = _classification_loss(model, loss_options)
    if measurement_weight == 0:
        return base
    if not getattr(model, "measurement_outputs", 0):
        raise ValueError(f"measurement_weight {measurement_weight} needs a model with a measurement head; "
                         f"build {type(model).__name__} with measurement_outputs > 0")
    return MeasurementLoss(base, weight=measurement_weight)


def _classification_loss(model: nn.Module, loss_options: dict) -> nn.Module:
    kind = getattr(model, "input_kind", None)
    label_groups = getattr(model, "label_groups", None)
    if label_groups is not None:
        unknown = set(loss_options) - {"pos_weight", "group_weight"} - DISTILLATION_OPTIONS
        if unknown:
            raise TypeError(f"{type(model).__name__} uses the hierarchical loss; it takes pos_weight and group_weight "
                            f"(and ignores {sorted(DISTILLATION_OPTIONS)}), got {sorted(unknown)}")
        return HierarchicalMultiLabelLoss(label_groups, group_weight=loss_options.get("group_weight", 1.0),
                                          pos_weight=loss_options.get("pos_weight"))
    if kind == "multimodal":
        options = {**getattr(model, "default_loss_options", {}), **loss_options}
        return DistillationLoss(**options)
    if kind in ("signal", "image"):
        unknown = set(loss_options) - {"pos_weight"} - DISTILLATION_OPTIONS
        if unknown:
            raise TypeError(f"{type(model).__name__} is a single-modality model; its BCE loss takes "
                            f"pos_weight (and ignores {sorted(DISTILLATION_OPTIONS)}), got {sorted(unknown)}")
        return MultiLabelBCELoss(pos_weight=loss_options.get("pos_weight"))
    raise ValueError(f"{type(model).__name__} has no input_kind; cannot choose a loss")
