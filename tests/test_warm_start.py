"""A run that continues another (``train.warm_start``) starts from its selected weights, learns from
records of another stream (``train.stream_seed``) and refuses a source that is missing or does not fit."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vizecg.study.config import ConfigError, load_params
from vizecg.study.data_prep import prepare_dataset
from vizecg.study.runs import build_run_model, make_dataset, run_dir, train_run, warm_start_weights
from vizecg.training.checkpoint import CheckpointError, read_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The smoke profile's prepared data and a one-epoch ResNet18 run to continue from."""
    work = tmp_path_factory.mktemp("warm_start")
    params = load_params(profile="smoke")
    params["runs"]["source"] = {"model": "resnet18", "inference": ["image"], "train": {"epochs": 1}}
    prepare_dataset(params, work, progress=False)
    train_run(params, "source", work, progress=False)
    return params, work


def test_a_continued_run_starts_from_its_source_and_records_it(trained) -> None:
    params, work = trained
    source = read_checkpoint(run_dir(work, "source") / "best.pt")
    model, _, _ = build_run_model(params, "source")
    assert not all(torch.equal(v, source["state_dict"][k]) for k, v in model.state_dict().items())
    info = warm_start_weights(work, "continued", "source", model)
    assert all(torch.equal(v, source["state_dict"][k]) for k, v in model.state_dict().items())
    assert info["run"] == "source" and info["epoch"] == 1

    params["runs"]["continued"] = {"model": "resnet18", "inference": ["image"],
                                   "train": {"epochs": 1, "lr": 1e-4, "warm_start": "source", "stream_seed": 7}}
    train_run(params, "continued", work, progress=False)
    continued = read_checkpoint(run_dir(work, "continued") / "best.pt")
    assert continued["warm_start"]["run"] == "source"
    # trained on from there: the weights moved
    moved = [float((continued["state_dict"][k].float() - v.float()).abs().max())
             for k, v in source["state_dict"].items() if v.is_floating_point()]
    assert max(moved) > 0


def test_a_finished_continuation_is_skipped_when_its_source_weights_are_gone(trained) -> None:
    """A rerun of a finished (or interrupted) continuation resumes from its own checkpoint: it does not
    reload its source, whose weights may be gone (the shipped file rewritten from a later run, the
    source's best.pt removed), and its checkpoint keeps the warm start it recorded."""
    params, work = trained
    params["runs"]["gone"] = {"model": "resnet18", "inference": ["image"], "train": {"epochs": 1}}
    params["runs"]["after_gone"] = {"model": "resnet18", "inference": ["image"],
                                    "train": {"epochs": 1, "lr": 1e-4, "warm_start": "gone", "stream_seed": 9}}
    train_run(params, "gone", work, progress=False)
    train_run(params, "after_gone", work, progress=False)
    (run_dir(work, "gone") / "best.pt").unlink()
    with pytest.raises(FileNotFoundError, match="train 'gone' first"):  # a fresh continuation needs it
        warm_start_weights(work, "other", "gone", build_run_model(params, "after_gone")[0])
    result = train_run(params, "after_gone", work, progress=False)
    assert result.skipped
    assert read_checkpoint(run_dir(work, "after_gone") / "best.pt")["warm_start"]["run"] == "gone"


def test_stream_seed_draws_other_records(trained) -> None:
    params, work = trained
    profile_stream = make_dataset(params, work, "train", train=False, with_image=False)
    other_stream = make_dataset(params, work, "train", train=False, with_image=False, stream_seed=7)
    assert profile_stream.stream_seed == params["data"]["train_stream"]["seed"] and other_stream.stream_seed == 7
    assert not torch.equal(profile_stream[0]["signal"], other_stream[0]["signal"])


def test_a_missing_or_unfitting_source_is_a_clear_error(trained) -> None:
    """Both ways of starting from another run (all its weights, or only its page encoder) name the missing
    source and say what to do, and refuse weights that do not fit."""
    from vizecg.study.runs import image_encoder_weights

    params, work = trained
    model, _, _ = build_run_model(params, "source")
    params["runs"]["wider"] = {"model": "resnet18", "options": {"base_width": 8}, "inference": ["image"]}
    wider, _, _ = build_run_model(params, "wider")
    for load, option, unfit in ((warm_start_weights, "warm_start", "'source'.*do not fit"),
                                (image_encoder_weights, "image_encoder_from", "page encoder of 'source'.*does not fit")):
        with pytest.raises(FileNotFoundError, match=f"train.{option} names run 'nowhere'.*train 'nowhere' first"):
            load(work, "continued", "nowhere", model)
        with pytest.raises(CheckpointError, match=unfit):
            load(work, "wider", "source", wider)
    # where the weights come from: a known place, and only for a run that has a warm start
    params["runs"]["misnamed"] = {"model": "resnet18", "inference": ["image"],
                                  "train": {"epochs": 1, "warm_start": "source", "warm_start_weights": "elsewhere"}}
    with pytest.raises(ConfigError, match="must be 'checkpoint' or 'shipped'"):
        train_run(params, "misnamed", work, progress=False)
    params["runs"]["unstarted"] = {"model": "resnet18", "inference": ["image"],
                                   "train": {"epochs": 1, "warm_start_weights": "shipped"}}
    with pytest.raises(ConfigError, match="has no train.warm_start"):
        train_run(params, "unstarted", work, progress=False)


def test_the_release_continuation_reads_the_release_runs_pages_from_new_records() -> None:
    """``runs.vizecgnet_release_continued`` must be the release run's network on the release run's pages
    (only the curriculum differs: the broad look from its first epoch), warm-started from it, on records
    of a stream the release run never drew from and that is not the validation/test seed."""
    from vizecg.study.config import params_for_run, run_spec

    params = load_params(profile="default")
    release, continued = (run_spec(params, run) for run in ("vizecgnet_release", "vizecgnet_release_continued"))
    assert continued["model"] == release["model"] and continued["model_options"] == release["model_options"]
    assert continued["loss_options"] == release["loss_options"]
    release_input, continued_input = (params_for_run(params, run)["input"]
                                      for run in ("vizecgnet_release", "vizecgnet_release_continued"))
    assert {k: v for k, v in continued_input.items() if k != "curriculum"} == \
        {k: v for k, v in release_input.items() if k != "curriculum"}
    assert continued_input["curriculum"] == [0, 0]
    assert continued["train"]["warm_start"] == "vizecgnet_release"
    assert continued["train"]["stream_seed"] not in (params["data"]["train_stream"]["seed"],
                                                     params["data"]["source_options"]["seed"])
    assert continued["train"]["lr"] < release["train"]["lr"]  # a restart, not a second run from scratch


def test_the_release_stage_ships_the_last_continuation() -> None:
    """The frozen ``release`` stage trains the six runs in the order they continue each other and writes the
    last one's weights, so that retraining it reproduces what is shipped."""
    import yaml

    stage = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]["release"]
    commands = " ".join(" ".join(stage["cmd"]).split())
    runs = ("vizecgnet_release", "vizecgnet_release_continued", "vizecgnet_release_paper_share",
            "vizecgnet_release_paper_share_cycle2", "vizecgnet_release_short_exams", "vizecgnet_release_sheet_photos")
    order = [commands.index(f"-p run {run} ") if f"-p run {run} " in commands else commands.index(f"-p run {run}")
             for run in runs]
    assert order == sorted(order)
    assert "python -m vizecg.shipped_model data/models/vizecgnet_release_sheet_photos/best.pt " \
           "models/vizecgnet_image" in commands
    assert "--probabilities data/models/vizecgnet_release_sheet_photos/" in commands
    assert {f"runs.{run}" for run in runs} <= set(stage["params"])
    # each run's report and curves are the stage's (committed) outputs; its checkpoints are not, since a
    # frozen stage's outputs must be in git for `dvc repro` to verify them on a clone
    outs = {next(iter(out)) if isinstance(out, dict) else out for out in stage["outs"]}
    plots = {next(iter(plot)) if isinstance(plot, dict) else plot for plot in stage["plots"]}
    for run in runs:
        assert f"reports/training/{run}.html" in outs and f"data/models/{run}" not in outs, run
        assert f"reports/plots/training/{run}.csv" in plots, run


def test_a_continuation_is_retrained_when_its_source_would_be(trained) -> None:
    """A continued run's identity includes its source's: a source trained with other parameters makes the
    finished continuation stale (retrained, not skipped), while runs without a warm start keep their
    fingerprint as before."""
    import copy

    from vizecg.study.config import params_for_run, run_spec
    from vizecg.study.runs import _run_fingerprint, run_fingerprint

    params, _ = trained
    params = copy.deepcopy(params)
    params["runs"]["continued"] = {"model": "resnet18", "inference": ["image"],
                                   "train": {"epochs": 1, "lr": 1e-4, "warm_start": "source", "stream_seed": 7}}
    plain = run_fingerprint(params, "source")
    assert plain == _run_fingerprint(params_for_run(params, "source"), run_spec(params, "source"))
    before = run_fingerprint(params, "continued")
    params["runs"]["source"]["train"]["epochs"] = 2
    assert run_fingerprint(params, "continued") != before
    params["runs"]["source"]["train"]["warm_start"] = "continued"  # a circle: a clear error, not a recursion
    with pytest.raises(ConfigError, match="source -> continued -> source|continued -> source -> continued"):
        run_fingerprint(params, "continued")


def test_a_warm_start_from_the_shipped_weights_takes_their_image_path_only(tmp_path) -> None:
    """Where the source run's checkpoint is not at hand (``train.warm_start_weights: shipped``), its shipped
    image path is loaded and the signal stream keeps its fresh weights; shipped weights of another run or
    another architecture are refused, naming what differs."""
    from vizecg.contract import LABELS
    from vizecg.models import create_model
    from vizecg.shipped_model import save_shipped_model
    from vizecg.study.runs import shipped_warm_start_weights

    options = {"signal_width": 4, "image_width": 4, "embed_dim": 16, "head_hidden": 16, "num_heads": 2}
    torch.manual_seed(1)
    source = create_model("vizecgnet", num_classes=6, **options)
    torch.save({"model_name": "vizecgnet", "model_options": options, "labels": list(LABELS), "run": "source",
                "input": {"image_height": 64, "image_width": 178}, "params": {}, "epoch": 3,
                "state_dict": source.state_dict()}, tmp_path / "best.pt")
    shipped = save_shipped_model(tmp_path / "best.pt", tmp_path / "shipped")
    spec = {"model": "vizecgnet", "model_options": dict(options)}
    torch.manual_seed(2)
    model = create_model("vizecgnet", num_classes=6, **options)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    info = shipped_warm_start_weights("continued", "source", spec, model, shipped)
    assert info["run"] == "source" and info["weights"] == "shipped image path" and len(info["sha256"]) == 64
    loaded = model.state_dict()
    signal = [k for k in loaded if k.startswith(("signal_encoder.", "heads.signal"))]
    image = [k for k in loaded if k.startswith(("image_encoder.", "heads.image"))]
    assert signal and image
    assert all(torch.equal(loaded[k], source.state_dict()[k]) for k in image)
    assert all(torch.equal(loaded[k], fresh[k]) for k in signal)
    assert not all(torch.equal(fresh[k], source.state_dict()[k]) for k in image)  # the load did something
    with pytest.raises(ConfigError, match="weights of run 'source', not of train.warm_start 'elsewhere'"):
        shipped_warm_start_weights("continued", "elsewhere", spec, model, shipped)
    with pytest.raises(ConfigError, match="options"):
        shipped_warm_start_weights("continued", "source", {"model": "vizecgnet", "model_options": {
            **options, "embed_dim": 32}}, model, shipped)


def test_the_paper_share_run_continues_the_shipped_run_on_its_pages() -> None:
    """``runs.vizecgnet_release_paper_share`` is the shipped run's network, continued from it on records no
    earlier run drew, on the release look but with most pages in the paper look."""
    from vizecg.study.config import params_for_run, run_spec

    params = load_params(profile="default")
    shipped, run = (run_spec(params, r) for r in ("vizecgnet_release_continued", "vizecgnet_release_paper_share"))
    assert run["model_options"] == shipped["model_options"] and run["loss_options"] == shipped["loss_options"]
    assert run["train"]["warm_start"] == "vizecgnet_release_continued"
    assert run["train"]["warm_start_weights"] == "shipped"
    seeds = {params["data"]["train_stream"]["seed"], params["data"]["source_options"]["seed"],
             shipped["train"]["stream_seed"]}
    assert run["train"]["stream_seed"] not in seeds
    look = params_for_run(params, "vizecgnet_release_paper_share")["input"]
    assert 0.0 < look["paper_share"] < 1.0 and look["page_preparation"] == "predict"
    assert look["validation_look"] == "routes"


def _continues(params: dict, run: str, source: str) -> tuple[dict, dict]:
    """Assert that release ``run`` continues ``source`` with its network and loss, on records of a stream none of
    the runs up its warm-start chain drew; return (source's input, run's input) for the look to be compared."""
    from vizecg.study.config import params_for_run, run_spec

    before, after = run_spec(params, source), run_spec(params, run)
    assert after["model_options"] == before["model_options"] and after["loss_options"] == before["loss_options"]
    assert after["train"]["warm_start"] == source
    seeds = {params["data"]["train_stream"]["seed"], params["data"]["source_options"]["seed"]}
    link = source
    while link:
        spec = run_spec(params, link)
        seeds.add(spec["train"].get("stream_seed"))
        link = spec["train"].get("warm_start")
    assert after["train"]["stream_seed"] not in seeds
    return dict(params_for_run(params, source)["input"]), dict(params_for_run(params, run)["input"])


def test_the_second_paper_share_cycle_repeats_the_first_on_new_records() -> None:
    """``runs.vizecgnet_release_paper_share_cycle2`` continues the first cycle with its network, loss and look
    unchanged, on records of a stream none of the runs before it drew."""
    first, cycle2 = _continues(load_params(profile="default"), "vizecgnet_release_paper_share_cycle2",
                               "vizecgnet_release_paper_share")
    assert cycle2 == first


def test_the_short_exam_cycle_changes_only_the_exam_length_and_the_records() -> None:
    """``runs.vizecgnet_release_short_exams`` continues the second cycle with its network, loss and look, adding
    only a share of 7 s exams, on records of a stream none of the runs before it drew."""
    cycle2, look = _continues(load_params(profile="default"), "vizecgnet_release_short_exams",
                              "vizecgnet_release_paper_share_cycle2")
    assert 0.0 < look.pop("short_exam_share") < 1.0
    assert look == cycle2


def test_the_sheet_photo_cycle_changes_only_the_photo_share_the_ramp_and_the_records() -> None:
    """``runs.vizecgnet_release_sheet_photos`` continues the 7 s cycle with its network, loss and looks, with more
    photographed prints and a ramp that reaches severity 0.5 within its epochs, on records no run before it drew."""
    from vizecg.study.config import run_spec

    params = load_params(profile="default")
    before, look = _continues(params, "vizecgnet_release_sheet_photos", "vizecgnet_release_short_exams")
    assert look.pop("sheet_photo_share") > before.pop("sheet_photo_share")
    start, full = look.pop("curriculum")
    before.pop("curriculum")
    # the ramp reaches half of the broad look (severities up to 0.5, as validation is judged) by the last epoch
    epochs = run_spec(params, "vizecgnet_release_sheet_photos")["train"]["epochs"]
    assert (epochs - start) / (full - start + 1) >= 0.5
    assert look == before


def test_a_page_encoder_starts_another_kind_of_model(trained) -> None:
    """``train.image_encoder_from`` hands a run's page encoder to a model of another kind (the image
    ResNet18's to VizECGNet): the encoder's weights are the source's, everything else keeps its fresh
    initialisation, the checkpoint records the source, and the source's parameters are part of the run's
    identity."""
    import copy

    from vizecg.study.runs import image_encoder_weights, run_fingerprint

    params, work = trained
    params = copy.deepcopy(params)
    params["model_options"]["vizecgnet"]["image_width"] = params["model_options"]["resnet18"]["base_width"]
    source = read_checkpoint(run_dir(work, "source") / "best.pt")["state_dict"]
    encoder = {k[len("features."):]: v for k, v in source.items() if k.startswith("features.")}
    assert encoder
    params["runs"]["reader"] = {"model": "vizecgnet", "inference": ["image"],
                                "train": {"epochs": 1, "image_encoder_from": "source"}}
    torch.manual_seed(3)
    model, _, _ = build_run_model(params, "reader")
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    info = image_encoder_weights(work, "reader", "source", model)
    assert info["run"] == "source" and info["epoch"] == 1
    loaded = model.state_dict()
    assert all(torch.equal(loaded[f"image_encoder.{k}"], v) for k, v in encoder.items())
    assert not all(torch.equal(fresh[f"image_encoder.{k}"], v) for k, v in encoder.items())
    others = [k for k in loaded if not k.startswith("image_encoder.")]
    assert others and all(torch.equal(loaded[k], fresh[k]) for k in others)

    train_run(params, "reader", work, progress=False)
    assert read_checkpoint(run_dir(work, "reader") / "best.pt")["image_encoder_from"]["run"] == "source"
    before = run_fingerprint(params, "reader")
    params["runs"]["source"]["train"]["lr"] = 5e-4
    assert run_fingerprint(params, "reader") != before


def test_a_page_encoder_needs_a_page_encoder_on_both_sides_and_no_warm_start(trained) -> None:
    from vizecg.study.runs import image_encoder_weights

    params, work = trained
    params["runs"]["signal_only"] = {"model": "inception_time", "inference": ["signal"]}
    with pytest.raises(ConfigError, match="needs a model with a 2D page encoder"):
        image_encoder_weights(work, "signal_only", "source", build_run_model(params, "signal_only")[0])
    params["runs"]["both"] = {"model": "resnet18", "inference": ["image"],
                              "train": {"epochs": 1, "warm_start": "source", "image_encoder_from": "source"}}
    with pytest.raises(ConfigError, match="give one of them"):
        train_run(params, "both", work, progress=False)
