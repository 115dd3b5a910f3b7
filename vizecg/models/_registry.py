"""Name -> model-class registry, in the manner of timm's ``register_model``.

Each model class registers itself with the options that shrink it for unit tests
(``tiny_options``), the options the 2-core CPU ``default`` profile uses
(``default_options``), the options that reproduce the paper's size
(``paper_options``) and the parameter count the paper's Table 1 reports for it.
The registry is filled once at import time by the decorators in this package and
is read-only afterwards: nothing mutates it at run time.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from torch import nn

INPUT_KINDS = ("signal", "image", "multimodal")


@dataclass(frozen=True)
class ModelEntry:
    """Everything the registry knows about one model name."""

    name: str
    model_class: type[nn.Module]
    input_kind: str
    summary: str
    tiny_options: Mapping[str, Any] = field(default_factory=dict)
    default_options: Mapping[str, Any] = field(default_factory=dict)
    paper_options: Mapping[str, Any] = field(default_factory=dict)
    paper_params_m: float | None = None
    paper_ms: Mapping[str, float] = field(default_factory=dict)


_ENTRIES: dict[str, ModelEntry] = {}


def _first_docstring_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def register_model(name: str, *, tiny_options: Mapping[str, Any] | None = None,
                   default_options: Mapping[str, Any] | None = None,
                   paper_options: Mapping[str, Any] | None = None,
                   paper_params_m: float | None = None,
                   paper_ms: Mapping[str, float] | None = None) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding ``model_class`` to the registry under ``name``.

    The class must define ``input_kind`` (one of :data:`INPUT_KINDS`) and accept
    ``num_classes`` as a keyword. ``paper_ms`` maps an inference path
    (``"signal"``/``"image"``) to the paper's Table 1 speed.
    """
    def decorate(model_class: type[nn.Module]) -> type[nn.Module]:
        if name in _ENTRIES:
            raise ValueError(f"model name {name!r} is registered twice "
                             f"({_ENTRIES[name].model_class.__qualname__} and {model_class.__qualname__})")
        kind = getattr(model_class, "input_kind", None)
        if kind not in INPUT_KINDS:
            raise ValueError(f"{model_class.__qualname__}.input_kind must be one of {INPUT_KINDS}, got {kind!r}")
        _ENTRIES[name] = ModelEntry(
            name=name, model_class=model_class, input_kind=kind,
            summary=_first_docstring_paragraph(model_class),
            tiny_options=MappingProxyType(dict(tiny_options or {})),
            default_options=MappingProxyType(dict(default_options or {})),
            paper_options=MappingProxyType(dict(paper_options or {})),
            paper_params_m=paper_params_m,
            paper_ms=MappingProxyType(dict(paper_ms or {})))
        model_class.model_name = name
        return model_class
    return decorate


def list_models(input_kind: str | None = None) -> list[str]:
    """Sorted registered model names, optionally only those of one ``input_kind``."""
    if input_kind is not None and input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS} or None, got {input_kind!r}")
    return sorted(n for n, e in _ENTRIES.items() if input_kind is None or e.input_kind == input_kind)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a clear error lists the known names otherwise."""
    try:
        return _ENTRIES[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def model_info(name: str) -> dict[str, Any]:
    """Plain-dict description of a model: input kind, docstring summary and option presets."""
    entry = model_entry(name)
    return {"name": entry.name, "input_kind": entry.input_kind, "summary": entry.summary,
            "tiny_options": dict(entry.tiny_options), "default_options": dict(entry.default_options),
            "paper_options": dict(entry.paper_options), "paper_params_m": entry.paper_params_m,
            "paper_ms": dict(entry.paper_ms)}


def create_model(name: str, num_classes: int = 6, **options: Any) -> nn.Module:
    """Build the registered model ``name`` with ``num_classes`` outputs and constructor ``options``.

    Unknown option names raise a ``TypeError`` that names the model and the
    options it does accept, so a typo in params.yaml fails loudly.
    """
    entry = model_entry(name)
    accepted = inspect.signature(entry.model_class.__init__).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = sorted(p for p in accepted if p not in ("self", "num_classes"))
        raise TypeError(f"model {name!r} got unknown option(s) {unknown}; it accepts {valid}")
    return entry.model_class(num_classes=num_classes, **options)
