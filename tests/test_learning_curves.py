"""benchmarks/learning_curves.py: a rerun keeps what is measured, and carries a curve further only when asked."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def curves(benchmark_script):
    return benchmark_script("learning_curves")


def test_a_measured_curve_is_kept_unless_carried_on_to_more_points(curves, tmp_path) -> None:
    out = tmp_path / "curves.json"
    out.write_text(json.dumps({"configs": {"a": {"points": [{"epoch": 1}, {"epoch": 2}]}}}))
    calls = []

    def run(name, *, epochs, **settings):
        calls.append((name, epochs))
        return [{"epoch": e + 1} for e in range(epochs)]

    def measure(*argv):
        args = curves.curve_parser("test", ["a", "b"], ["a", "b"], epochs=3, out=out, unit="pages").parse_args(argv)
        curves.measure_configs(args, "cmd", {}, run, lambda name: {})

    measure("--configs", "a", "b")
    assert calls == [("b", 3)]  # "a" holds 2 points and is kept as measured
    assert len(json.loads(out.read_text())["configs"]["a"]["points"]) == 2
    measure("--configs", "a", "b", "--carry-on")
    assert calls == [("b", 3), ("a", 3)]  # only the shorter curve goes on
    assert len(json.loads(out.read_text())["configs"]["a"]["points"]) == 3


def test_every_resnet_configuration_builds_what_its_name_says(curves) -> None:
    """Each CONFIGS entry builds its network, loss and pages: the measurement head and its loss where the
    curve has a measurement weight, the curriculum where it has one, and neither elsewhere."""
    from vizecg.models.losses import needs_measurements

    for name in curves.CONFIGS:
        model, loss_fn, renderer, inputs, _, _ = curves._model_and_pages(name, seed=0)
        assert inputs == ("image",)
        curve = curves.CONFIGS[name]
        assert needs_measurements(loss_fn) == (curve.measurement_weight > 0), name
        assert bool(getattr(model, "measurement_outputs", 0)) == (curve.measurement_weight > 0), name
        assert renderer.curriculum == curve.curriculum, name
        assert (renderer.height, renderer.width) == (curve.height, curve.width), name


def test_a_curve_with_its_own_learning_rate_trains_at_it(curves, monkeypatch) -> None:
    """A Curve's lr replaces the command's --lr, constant (lr_min equal); the others train at --lr."""
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(*args, **kwargs):
        seen.update(lr=kwargs["lr"], lr_min=kwargs["lr_min"])
        raise Stop

    monkeypatch.setattr(curves, "fit", fake_fit)
    for name, expected in (("w16_128x357_lr3e-3", 3e-3), ("w16_128x357", 1e-3)):
        with pytest.raises(Stop):
            curves.run_config(name, records=4, epochs=1, val_records=2, batch_size=2, lr=1e-3, num_workers=0,
                              seed=0)
        assert seen == {"lr": expected, "lr_min": expected}
