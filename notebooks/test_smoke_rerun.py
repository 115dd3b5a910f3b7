"""Same inputs, same numbers: a second smoke pipeline, from scratch, writes the metrics the first wrote.

pytest collects this file after the notebooks beside it, so it runs once nbval has executed the
whole smoke pipeline into ``data/smoke/`` (the first run). It then executes every stage notebook
again with papermill into an empty folder (the second run: new data, new training, new
evaluation) and compares every metrics file the two runs wrote, value by value and exactly,
leaving out only what measures time.

The second run executes the stages in the waves that dvc.yaml's deps allow, two at a time where two
are ready (evaluation beside real prints, the ablation beside the model card), which saves about a
sixth of a sequential run on two cores; its numbers must not depend on what runs beside it, and
the comparison checks that too.
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
# The DVC stages' notebooks (08 only plots a committed file, 07 writes no metric) in waves: a wave's
# stages read only what earlier waves wrote (dvc.yaml's deps), and no two in a wave write the same file.
WAVES = (("01_data_prep",), ("02_rendering",), ("03_training",), ("04_evaluation", "06_real_prints"),
         ("05_ablation", "09_model_card"))
STAGE_TIMEOUT_S = 1200
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


def _start_stage(notebook: str, work_dir: Path) -> subprocess.Popen:
    parameters = ["-p", "profile", "smoke", "-p", "work_dir", str(work_dir), "-p", "reports_dir",
                  str(work_dir / "reports")]
    if notebook == "09_model_card":
        parameters += ["-p", "card_dir", str(work_dir / "model_card")]
    log = open(work_dir / f"{notebook}.log", "w")  # a file, not a pipe: a full pipe would stall the stage
    return subprocess.Popen([sys.executable, "-m", "vizecg.study.notebook_runner", f"notebooks/{notebook}.ipynb",
                             "--html", str(work_dir / "html" / f"{notebook}.html"),
                             "--executed", str(work_dir / "executed" / f"{notebook}.ipynb"), *parameters],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)


def _run_wave(notebooks: tuple[str, ...], work_dir: Path) -> None:
    running = {notebook: _start_stage(notebook, work_dir) for notebook in notebooks}
    failed = []
    try:
        for notebook, process in running.items():
            if process.wait(timeout=STAGE_TIMEOUT_S) != 0:
                failed.append(notebook)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
    for notebook in failed:
        log = (work_dir / f"{notebook}.log").read_text()
        pytest.fail(f"{notebook} failed in the second run:\n{log[-3000:]}")


def test_a_second_smoke_pipeline_from_scratch_writes_the_same_metrics(tmp_path: Path) -> None:
    first_metrics = FIRST_RUN / "reports" / "metrics"
    written = sorted(first_metrics.glob("*.json")) if first_metrics.is_dir() else []
    if not any(p.name == "table1.json" for p in written):
        pytest.skip(f"no first run in {first_metrics}: run with the notebooks (python -m pytest), whose nbval "
                    "pass executes the smoke pipeline first")
    second = tmp_path / "second_run"
    second.mkdir()
    for wave in WAVES:
        _run_wave(wave, second)
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


def _stage_io() -> dict[str, tuple[set[str], set[str]]]:
    """Each stage notebook's (deps, outs) as dvc.yaml declares them (a templated stage's as written).

    Frozen stages are left out: the pipeline never runs them, their outputs are committed files."""
    import yaml

    io: dict[str, tuple[set[str], set[str]]] = {}
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        stage = stage.get("do", stage)
        if stage.get("frozen"):
            continue
        commands = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
        notebook = re.search(r"notebooks/(\w+)\.ipynb", commands[0]).group(1)
        outs = {o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])}
        deps, known = io.setdefault(notebook, (set(), set()))
        deps.update(stage.get("deps", []))
        known.update(outs)
    return io


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def test_each_wave_reads_only_what_earlier_waves_wrote() -> None:
    io = _stage_io()
    assert sorted(n for wave in WAVES for n in wave) == sorted(n for n in io if n not in ("07_attention_explorer",
                                                                                          "08_learning_curves"))
    done: set[str] = set()
    for wave in WAVES:
        for notebook in wave:
            deps, _ = io[notebook]
            for other, (_, outs) in io.items():
                if other == notebook:
                    continue
                needed = [d for d in deps for o in outs if _overlaps(d, o)]
                assert not needed or other in done, f"{notebook} reads {needed} of {other}, not in an earlier wave"
        done.update(wave)
