"""Same inputs, same numbers: a second smoke pipeline, from scratch, writes the metrics the first wrote.

pytest collects this file after the notebooks beside it, so it runs once nbval has executed the
whole smoke pipeline into ``data/smoke/`` (the first run). It then executes every stage notebook
again with papermill into an empty folder (the second run: new data, new training, new
evaluation) and compares every metrics file the two runs wrote, value by value and exactly,
leaving out only what measures time.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIRST_RUN = REPO / "data" / "smoke"
# The DVC stages' notebooks in pipeline order (08 only plots a committed file, 07 writes no metric).
STAGES = ("01_data_prep", "02_rendering", "03_training", "04_evaluation", "05_ablation", "06_real_prints",
          "09_model_card")
# Wall-clock measurements and the machine they ran on differ between runs by nature.
TIMING_KEY = re.compile(r"(^|_)(ms|seconds?|s|per_s|time|timing|latency|wall|device|speedup|ratio)(_|$)"
                        r"|pages_per|per_page|per_ecg")


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not TIMING_KEY.search(str(k))}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _differences(first, second, where: str = "") -> list[str]:
    if isinstance(first, dict) and isinstance(second, dict):
        out = [f"{where}/{k}: only in {'first' if k in first else 'second'} run"
               for k in sorted(set(first) ^ set(second))]
        for key in sorted(set(first) & set(second)):
            out += _differences(first[key], second[key], f"{where}/{key}")
        return out
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        return [d for i, (a, b) in enumerate(zip(first, second)) for d in _differences(a, b, f"{where}[{i}]")]
    return [] if first == second else [f"{where}: {first!r} != {second!r}"]


def _run_stage(notebook: str, work_dir: Path) -> None:
    parameters = ["-p", "profile", "smoke", "-p", "work_dir", str(work_dir), "-p", "reports_dir",
                  str(work_dir / "reports")]
    if notebook == "09_model_card":
        parameters += ["-p", "card_dir", str(work_dir / "model_card")]
    done = subprocess.run([sys.executable, "-m", "vizecg.study.notebook_runner", f"notebooks/{notebook}.ipynb",
                           "--html", str(work_dir / "html" / f"{notebook}.html"),
                           "--executed", str(work_dir / "executed" / f"{notebook}.ipynb"), *parameters],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{notebook} failed in the second run:\n{done.stderr[-3000:]}"


def test_a_second_smoke_pipeline_from_scratch_writes_the_same_metrics(tmp_path: Path) -> None:
    first_metrics = FIRST_RUN / "reports" / "metrics"
    written = sorted(first_metrics.glob("*.json")) if first_metrics.is_dir() else []
    if not any(p.name == "table1.json" for p in written):
        pytest.skip(f"no first run in {first_metrics}: run with the notebooks (python -m pytest), whose nbval "
                    "pass executes the smoke pipeline first")
    second = tmp_path / "second_run"
    for notebook in STAGES:
        _run_stage(notebook, second)
    problems = []
    for path in written:
        other = second / "reports" / "metrics" / path.name
        if not other.exists():
            problems.append(f"{path.name}: not written by the second run")
            continue
        diffs = _differences(_without_timings(json.loads(path.read_text())),
                             _without_timings(json.loads(other.read_text())))
        problems += [f"{path.name}{d}" for d in diffs[:20]]
    assert not problems, "the two smoke runs disagree:\n" + "\n".join(problems)
