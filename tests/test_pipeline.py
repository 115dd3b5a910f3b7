"""dvc.yaml against the code and params.yaml: a stage reruns when anything it reads changes.

Every stage runs a notebook that imports ``vizecg``; the simplest complete rule is that
each stage depends on its notebook and on the whole package. The params a stage
declares must exist in every profile, and what one stage writes and another reads must
be a declared output.
"""
from __future__ import annotations

import json
import re
import sysconfig
from pathlib import Path

import pytest
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
STAGES = PIPELINE["stages"]


def notebook_of(stage: dict) -> str | None:
    command = stage.get("cmd") or stage.get("do", {}).get("cmd", "")
    command = " ".join(command) if isinstance(command, list) else command
    found = re.search(r"(notebooks/\S+\.ipynb)", command)
    return found.group(1) if found else None


def deps_of(stage: dict) -> list[str]:
    return list(stage.get("deps") or stage.get("do", {}).get("deps", []))


def imports_vizecg(notebook: str) -> bool:
    cells = json.loads((ROOT / notebook).read_text())["cells"]
    return any(re.search(r"^\s*(from|import) vizecg", "".join(c["source"]), re.M) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_its_notebook_and_what_it_imports(name: str) -> None:
    stage = STAGES[name]
    notebook = notebook_of(stage)
    assert notebook, f"stage {name} runs no notebook"
    assert (ROOT / notebook).is_file(), f"stage {name}: {notebook} does not exist"
    deps = deps_of(stage)
    assert notebook in deps, f"stage {name} does not depend on its notebook {notebook}"
    if imports_vizecg(notebook):
        assert "vizecg" in deps, f"stage {name}: {notebook} imports vizecg but the stage does not depend on vizecg/"


@pytest.mark.parametrize("name", sorted(STAGES))
@pytest.mark.parametrize("profile", sorted(PARAMS["profiles"]))
def test_declared_params_exist_in_every_profile(name: str, profile: str) -> None:
    stage = STAGES[name]
    declared = stage.get("params") or stage.get("do", {}).get("params", [])
    items = PARAMS["train_runs"] if "foreach" in stage else [None]
    for item in items:
        for key in declared:
            key = key.replace("${profile}", profile).replace("${item}", str(item))
            node = PARAMS
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: param {key} missing in params.yaml"
                node = node[part]


def test_every_read_artifact_is_a_declared_output() -> None:
    outputs = set()
    for stage in STAGES.values():
        body = stage.get("do", stage)
        for out in body.get("outs", []) + body.get("metrics", []) + body.get("plots", []):
            outputs.add(next(iter(out)) if isinstance(out, dict) else out)
    for name, stage in STAGES.items():
        for dep in deps_of(stage):
            if dep.startswith("data/"):
                produced = any(dep == o or dep.startswith(o.replace("${item}", "")) or o.startswith(dep + "/")
                               for o in outputs)
                assert produced, f"stage {name} reads {dep}, which no stage declares as an output"


def test_frozen_stages_output_only_committed_files() -> None:
    """`dvc repro` verifies a frozen stage's outputs instead of running it; on a clone, which has no DVC
    cache, only files in git can pass, so one cached output would stop the whole pipeline there."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    frozen = {name: stage for name, stage in STAGES.items() if stage.get("frozen")}
    assert frozen, "the release stage is frozen (test_release_run_trains_on_the_deployed_path...)"
    for name, stage in frozen.items():
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            path, options = (next(iter(out.items())) if isinstance(out, dict) else (out, {}))
            assert (options or {}).get("cache") is False, f"frozen stage {name}: {path} must be cache: false"
            assert path in tracked, f"frozen stage {name}: {path} is not committed"


def test_train_runs_are_all_defined() -> None:
    assert set(PARAMS["train_runs"]) <= set(PARAMS["runs"])


@pytest.mark.parametrize("profile, preset", [("smoke", "tiny_options"), ("default", "default_options"),
                                             ("paper", "paper_options")])
def test_model_sizes_in_params_match_the_registry_presets(profile: str, preset: str) -> None:
    """Model sizes live in two places (the registry's presets, which tests and benchmarks use, and
    params.yaml, which the study uses); they must say the same thing."""
    from vizecg.models import list_models, model_info

    def plain(options: dict) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}

    options = PARAMS["profiles"][profile]["model_options"]
    differing = {name: (options.get(name, {}), plain(model_info(name)[preset])) for name in list_models()
                 if plain(options.get(name, {})) != plain(model_info(name)[preset])}
    assert not differing, f"params.yaml {profile} model_options differ from the registry's {preset}: {differing}"


def test_reports_store_large_figures_as_jpeg_and_keep_small_ones():
    import base64
    import io

    import nbformat
    from PIL import Image

    from vizecg.study.notebook_runner import compact_figures

    def png(size, noise):
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) if noise else np.full((size[1], size[0], 3), 255, np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    nb = nbformat.v4.new_notebook()
    big, small = png((2000, 600), True), png((200, 100), False)
    nb.cells = [nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data={"image/png": big}),
                                                   nbformat.v4.new_output("display_data", data={"image/png": small})])]
    out = compact_figures(nb).cells[0].outputs
    assert "image/png" not in out[0].data
    jpeg = Image.open(io.BytesIO(base64.b64decode(out[0].data["image/jpeg"])))
    assert jpeg.format == "JPEG" and jpeg.width == 1400 and jpeg.height == 420
    assert out[1].data == {"image/png": small}


def test_release_run_trains_on_the_deployed_path_and_its_stage_is_frozen() -> None:
    from vizecg.study.config import ConfigError, load_params, params_for_run, run_spec
    from vizecg.study.runs import image_renderer

    params = load_params(profile="default")
    assert "vizecgnet_release" not in params["train_runs"]  # the default repro never trains it
    release = params_for_run(params, "vizecgnet_release")
    assert params["input"].get("page_preparation", "none") == "none"  # the profile itself is unchanged
    for train in (True, False):  # training and validation pages are both read back as predict reads them
        renderer = image_renderer(release, train=train)
        assert renderer.page_preparation == "predict" and renderer.render_scale == 2.0
    release_train, default_train = (run_spec(params, run)["train"] for run in ("vizecgnet_release", "vizecgnet"))
    pool = release_train["replay_pool"]  # pages replayed: the deployed path costs more to draw than to learn from
    default_pages = default_train["epochs"] * params["data"]["train_stream"]["records_per_epoch"]
    assert release_train["epochs"] * pool["size"] > 2 * default_pages
    assert 0 < pool["refresh"] < pool["size"]
    # the pool is drawn anew while the pages are clean (cheap), and replayed once the costly broad look ramps in:
    # over 50,000 distinct pages, which the learning curves need before 1dAVb is learnt
    assert release["input"]["curriculum"][0] == pool["fresh_epochs"]
    assert pool["fresh_epochs"] * pool["size"] > 50_000
    assert image_renderer(release, train=True).clean_style == "random"  # those clean pages in every layout
    # pages twice as tall as the profile's, where a P wave (and so the PR interval) is more than a pixel
    assert release["input"]["image_height"] == 2 * params["input"]["image_height"]
    assert release["input"]["image_width"] == params["input"]["image_width"]
    # the image stream reads the measurements too, and its loss asks for them
    from vizecg.study.runs import build_run_model
    model, loss_fn, _ = build_run_model(release, "vizecgnet_release")
    assert model.measurement_outputs == 5 and loss_fn.extra_targets == ("measurements",)
    assert release_train["epochs"] > release["input"]["curriculum"][1] + 1  # epochs left at the full look
    assert params_for_run(params, "mobilenetv3") is params  # runs without overrides train as before
    stage = STAGES["release"]
    assert stage["frozen"] is True
    assert "runs.vizecgnet_release" in stage["params"]
    # its last step tunes the shipped thresholds on pages through predict (vizecg.study.release_thresholds)
    assert stage["cmd"][-1].startswith("python -m vizecg.study.release_thresholds models/vizecgnet_image")
    shipped = {next(iter(o)) if isinstance(o, dict) else o: o for o in stage["outs"]}
    for name in ("models/vizecgnet_image/model.safetensors", "models/vizecgnet_image/model.json"):
        assert shipped[name][name] == {"cache": False}  # committed in git, owned by the stage
    broken = {**params, "runs": {**params["runs"], "x": {"model": "vizecgnet", "input": {"image_hieght": 3}}}}
    with pytest.raises(ConfigError, match="image_hieght"):
        params_for_run(broken, "x")


def test_fine_tune_block_applies_to_the_runs_that_start_from_the_page_encoder_only() -> None:
    from vizecg.study.config import fine_tunes, load_params, params_for_run, run_spec

    params = load_params(profile="default")
    block = params["fine_tune"]
    for run in params["train_runs"]:
        spec, run_params = run_spec(params, run), params_for_run(params, run)
        if spec["train"].get("image_encoder_from"):
            assert fine_tunes(params, run)
            assert all(spec["train"][k] == v for k, v in block["train"].items())
            assert all(run_params["input"][k] == v for k, v in block["input"].items())
        else:
            assert not fine_tunes(params, run)
            assert run_params["input"]["curriculum"] == params["input"]["curriculum"]
    # a fine-tune costs a fraction of a run from scratch: the point of the block
    scratch = run_spec(params, "mobilenetv3")["train"]
    tuned = run_spec(params, "resnet18")["train"]
    records = params["data"]["train_stream"]["records_per_epoch"]
    assert tuned["epochs"] * tuned["records_per_epoch"] <= scratch["epochs"] * records / 4
    # the run's own train settings still win over the block
    own = {**params, "runs": {**params["runs"], "resnet18": {**params["runs"]["resnet18"],
                                                             "train": {"image_encoder_from": "page_encoder",
                                                                       "epochs": 7}}}}
    assert run_spec(own, "resnet18")["train"]["epochs"] == 7
    assert run_spec(load_params(profile="paper"), "resnet18")["train"]["epochs"] == 300


def test_notebooks_leave_out_absent_real_data_and_say_so(tmp_path: Path, capsys) -> None:
    from vizecg.study.config import load_params, real_data_path

    params = load_params(profile="smoke")
    params["data"]["real_data_dir"] = str(tmp_path)
    (tmp_path / "ludb").mkdir()
    assert real_data_path(params, "ludb") == tmp_path / "ludb"
    assert capsys.readouterr().out == ""
    assert real_data_path(params, "real_prints") is None
    note = capsys.readouterr().out
    assert str(tmp_path / "real_prints") in note and "left out" in note


def test_reports_name_no_machine_paths() -> None:
    from vizecg.study.notebook_runner import without_machine_paths

    text = ('File &quot;/home/ci/venv/lib/python3.11/site-packages/torch/utils/data/dataloader.py&quot; '
            'work_dir = "/srv/study/data"; root /srv/study')
    cleaned = without_machine_paths(text, "/srv/study")
    assert cleaned == ('File &quot;<site-packages>/torch/utils/data/dataloader.py&quot; '
                       'work_dir = "./data"; root .')
    # the cleaned form is "<site-packages>/": any "site-packages/" left is a path that was not cleaned
    committed = [p for p in Path("reports").rglob("*.html")
                 if re.search(r"(?:site|dist)-packages/", p.read_text(encoding="utf-8"))]
    assert not committed, committed
    stdlib = sysconfig.get_paths()["stdlib"]
    assert without_machine_paths(f'File "{stdlib}/multiprocessing/process.py"', "/srv/study") == \
        'File "<stdlib>/multiprocessing/process.py"'
    assert not [p for p in Path("reports").rglob("*.html") if stdlib in p.read_text(encoding="utf-8")]


def test_run_fingerprint_holds_only_what_changes_the_weights() -> None:
    """A changed worker count, device or real-data folder keeps a finished run (the fingerprint
    decides whether ``train_run`` reuses it); a changed epoch count or page size retrains."""
    import copy

    from vizecg.study.config import load_params, run_spec
    from vizecg.study.runs import _run_fingerprint

    params = load_params(profile="default")
    spec = run_spec(params, "vizecgnet")
    base = _run_fingerprint(params, spec)
    neutral = copy.deepcopy(params)
    neutral["data"]["real_data_dir"] = "elsewhere"
    neutral_spec = copy.deepcopy(spec)
    neutral_spec["train"].update(num_workers=7, device="cuda")
    assert _run_fingerprint(neutral, neutral_spec) == base
    longer = copy.deepcopy(spec)
    longer["train"]["epochs"] += 1
    taller = copy.deepcopy(params)
    taller["input"]["image_height"] += 8
    assert _run_fingerprint(params, longer) != base
    assert _run_fingerprint(taller, spec) != base


@pytest.mark.parametrize("profile", sorted(PARAMS["profiles"]))
def test_page_encoders_are_trained_before_the_runs_that_start_from_them(profile: str) -> None:
    """Each run a train@<run> starts its page encoder from (``train.image_encoder_from``) is trained by a stage
    of its own whose output every train@<run> depends on, and notebook 3's ``run = "all"`` trains it first."""
    from vizecg.study.config import load_params, run_spec
    from vizecg.study.runs import page_encoder_runs, training_order

    params = load_params(profile=profile)
    sources = page_encoder_runs(params)
    assert sources == ["page_encoder"]
    assert training_order(params) == [*sources, *params["train_runs"]]
    readers = [r for r in params["train_runs"] if run_spec(params, r)["train"].get("image_encoder_from")]
    assert {"resnet18", "mhm", "vizecgnet"} <= set(readers) and "mobilenetv3" not in readers
    for source in sources:
        stage = STAGES[source]
        assert f"-p run {source}" in " ".join(stage["cmd"].split())
        outs = {next(iter(out)) if isinstance(out, dict) else out for out in stage["outs"]}
        assert f"data/models/{source}" in outs
        assert f"runs.{source}" in stage["params"]
        assert f"data/models/{source}" in deps_of(STAGES["train"])
        assert run_spec(params, source)["table"] not in ("table1", "table2")
