"""benchmarks/time_repro.py: it times the stages the README's first command runs, and a rerun goes on."""
from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def time_repro(benchmark_script):
    return benchmark_script("time_repro")


def test_the_stages_timed_are_those_dvc_repro_runs(time_repro) -> None:
    """On this checkout's pipeline: every Table 1/2 training, the evaluation stages, never the frozen release."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    dry = subprocess.run([dvc, "repro", "--dry", "--force"], cwd=ROOT, capture_output=True, text=True, check=True)
    stages = time_repro.stages_to_run(dry.stdout)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert stages[:2] == ["prepare", "render"]
    assert [s for s in stages if s.startswith("train@")] == [f"train@{run}" for run in params["train_runs"]]
    assert {"evaluate", "ablation", "real_prints", "model_card"} <= set(stages)
    assert "release" not in stages


def _fake_dvc(tmp_path: Path, stages: list[str], fail: str | None = None, fail_dry: bool = False) -> Path:
    """A `dvc` that lists ``stages`` for --dry and logs each --single-item run (exit 1 for ``fail``); with
    ``fail_dry``, its dry run fails as DVC's does on a clean clone unless it is forced."""
    script = tmp_path / "dvc"
    dry = "".join(f"Running stage '{s}':\\n> cmd\\n\\n" for s in stages)
    script.write_text(f"""#!{sys.executable}
import sys
args = sys.argv[1:]
if "--dry" in args and {fail_dry!r} and "--force" not in args:
    print("ERROR: failed to reproduce 'render': No such file or directory: data/prepared", file=sys.stderr)
    sys.exit(255)
if "--dry" in args:
    print("WARNING: stage: 'release' is frozen.\\nStage 'release' didn't change, skipping\\n{dry}", end="")
    sys.exit(0)
open({str(tmp_path / 'ran.log')!r}, "a").write(args[-1] + "\\n")
sys.exit(1 if args[-1] == {fail!r} else 0)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=repo, check=True)
    return repo


def test_times_each_stage_and_a_rerun_goes_on_from_the_first_untimed(tmp_path: Path, repo: Path, time_repro) -> None:
    module = time_repro
    out = tmp_path / "timing.json"
    stages = ["prepare", "train@a", "train@b", "evaluate"]
    # train@b fails: the stages before it are recorded, nothing for it or after it
    dvc = _fake_dvc(tmp_path, stages, fail="train@b")
    assert module.main(["--repo", str(repo), "--out", str(out), "--dvc", str(dvc)]) == 1
    first = json.loads(out.read_text())
    assert [s["stage"] for s in first["stages"]] == ["prepare", "train@a"]
    assert first["clean_checkout"] and first["budget_minutes"] == 90.0

    # train@b was cut off after writing a checkpoint: the rerun resumes it, and says so
    (repo / "data" / "models" / "b").mkdir(parents=True)
    (repo / "data" / "models" / "b" / "last.pt").write_bytes(b"")
    dvc = _fake_dvc(tmp_path, stages)
    assert module.main(["--repo", str(repo), "--out", str(out), "--dvc", str(dvc)]) == 0
    second = json.loads(out.read_text())
    assert [s["stage"] for s in second["stages"]] == stages
    assert [s["resumed"] for s in second["stages"]] == [False, False, True, False]
    assert (tmp_path / "ran.log").read_text().split() == ["prepare", "train@a", "train@b", "train@b", "evaluate"]
    assert second["total_minutes"] == pytest.approx(sum(s["seconds"] for s in second["stages"]) / 60, abs=0.1)
    assert "| **total** |" in module.summary_table(second["stages"])


def test_a_clean_clone_whose_dry_run_fails_times_every_stage(tmp_path: Path, repo: Path, time_repro) -> None:
    out = tmp_path / "timing.json"
    dvc = _fake_dvc(tmp_path, ["prepare", "train@a", "evaluate"], fail_dry=True)
    assert time_repro.main(["--repo", str(repo), "--out", str(out), "--dvc", str(dvc)]) == 0
    assert [s["stage"] for s in json.loads(out.read_text())["stages"]] == ["prepare", "train@a", "evaluate"]


def test_a_new_commit_starts_the_timing_over(tmp_path: Path, repo: Path, time_repro) -> None:
    module = time_repro
    out = tmp_path / "timing.json"
    dvc = _fake_dvc(tmp_path, ["prepare"])
    module.main(["--repo", str(repo), "--out", str(out), "--dvc", str(dvc)])
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "y"],
                   cwd=repo, check=True)
    module.main(["--repo", str(repo), "--out", str(out), "--dvc", str(dvc)])
    assert (tmp_path / "ran.log").read_text().split() == ["prepare", "prepare"]
    assert len(json.loads(out.read_text())["stages"]) == 1
