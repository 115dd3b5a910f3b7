"""Fixtures shared by the test modules."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script():
    """``load(name)``: the module of ``benchmarks/<name>.py``, loaded once per session (the benchmarks are
    scripts beside the package, not part of it)."""
    loaded = {}

    def load(name: str):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"benchmark_{name}_under_test", BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            # registered before it runs, as an import would: dataclasses look their module up by name
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load
