"""Contract tests over every registered model, plus VizECGNet- and loss-specific checks.

Every model is built with its registered ``tiny_options`` and fed small inputs
(signal ``T=256``, image ``64 x 96``), so the whole file stays fast on 2 cores.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vizecg.models import create_loss, create_model, list_models, model_info
from vizecg.models.losses import DistillationLoss, bernoulli_kl_with_logits

BATCH = 2
SIGNAL_SAMPLES = 256
IMAGE_SIZE = (64, 96)


def make_inputs(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    signal = torch.randn(BATCH, 12, SIGNAL_SAMPLES, generator=generator)
    image = torch.rand(BATCH, 3, *IMAGE_SIZE, generator=generator)
    return {"signal": {"signal": signal}, "image": {"image": image},
            "multimodal": {"signal": signal, "image": image}}[kind]


def build(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **{**model_info(name)["tiny_options"], **overrides})


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name: str, tmp_path) -> None:
    """Shape, range, finiteness, gradients everywhere, seeded determinism and a save/load round trip."""
    model = build(name)
    kind = model_info(name)["input_kind"]
    assert model.input_kind == kind
    inputs = make_inputs(kind)

    model.train()
    torch.manual_seed(1)
    outputs = model(**inputs)
    logits = outputs["logits"]
    assert logits.shape == (BATCH, 6)
    assert torch.isfinite(logits).all()
    probabilities = torch.sigmoid(logits)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()

    loss, parts = create_loss(model)(outputs, torch.tensor([[1, 0, 0, 1, 0, 0], [0, 1, 1, 0, 1, 1]]).float())
    assert torch.isfinite(loss) and parts["total"] == pytest.approx(loss.item())
    loss.backward()
    silent = [n for n, p in model.named_parameters()
              if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))]
    assert not silent, f"{name}: parameters without gradient: {silent}"

    # Same seed, same model, same inputs -> bit-identical outputs (train mode included: dropout and
    # modality dropout draw from the seeded generator).
    again = build(name)
    again.train()
    torch.manual_seed(1)
    assert torch.equal(again(**inputs)["logits"], logits.detach())

    model.eval()
    with torch.no_grad():
        reference = model(**inputs)["logits"]
    path = tmp_path / f"{name}.pt"
    torch.save(model.state_dict(), path)
    restored = build(name, seed=123)
    restored.load_state_dict(torch.load(path, weights_only=True))
    restored.eval()
    with torch.no_grad():
        assert torch.equal(restored(**inputs)["logits"], reference)


@pytest.mark.parametrize("name", list_models())
def test_model_rejects_wrong_inputs(name: str) -> None:
    """Malformed or missing inputs fail with a ValueError that says what is wrong."""
    model = build(name).eval()
    if model.input_kind != "image":
        with pytest.raises(ValueError, match=r"\(B, 12, T\)"):
            model(signal=torch.randn(1, 8, SIGNAL_SAMPLES))
        with pytest.raises(ValueError, match="at least 256"):
            model(signal=torch.randn(1, 12, 100))
    if model.input_kind != "signal":
        with pytest.raises(ValueError, match="RGB"):
            model(image=torch.rand(1, 1, *IMAGE_SIZE))
        with pytest.raises(ValueError, match=">= 64"):
            model(image=torch.rand(1, 3, 32, 200))
    with pytest.raises(ValueError, match="neither"):
        model()


@pytest.mark.parametrize("name", list_models("multimodal"))
def test_multimodal_single_input_paths(name: str) -> None:
    """Image-only and signal-only inference run and return the matching stream's logits."""
    model = build(name).eval()
    both = make_inputs("multimodal")
    with torch.no_grad():
        image_only = model(image=both["image"])
        signal_only = model(signal=both["signal"])
        joint = model(**both)
    assert image_only["logits"].shape == signal_only["logits"].shape == (BATCH, 6)
    assert torch.equal(image_only["logits"], image_only["logits_image"])
    assert "logits_signal" not in image_only
    assert torch.equal(signal_only["logits"], signal_only["logits_signal"])
    assert {"logits_signal", "logits_image"} <= set(joint)


def test_vizecgnet_attention_maps() -> None:
    model = build("vizecgnet").eval()
    heads = model_info("vizecgnet")["tiny_options"]["num_heads"]
    with torch.no_grad():
        outputs = model(**make_inputs("multimodal"), return_attention=True)
    leads, positions = outputs["token_grid"]["signal"]
    rows, cols = outputs["token_grid"]["image"]
    n_signal, n_image = leads * positions, rows * cols
    assert (leads, positions) == (12, SIGNAL_SAMPLES // 32)
    # The image stream's deployed pass attends to its own tokens; its cross-modal pass to the signal's.
    expected = {"cmam_signal": (BATCH, heads, n_signal, n_image), "cmam_image": (BATCH, heads, n_image, n_image),
                "cmam_image_fused": (BATCH, heads, n_image, n_signal),
                "smam_signal": (BATCH, heads, n_signal, n_signal), "smam_image": (BATCH, heads, n_image, n_image),
                "smam_image_fused": (BATCH, heads, n_image, n_image)}
    assert {k: tuple(v.shape) for k, v in outputs["attention"].items()} == expected
    for weights in outputs["attention"].values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_vizecgnet_ablation_flags_change_parameters() -> None:
    def names(**flags) -> set[str]:
        return {n.split(".")[0] for n, _ in build("vizecgnet", **flags).named_parameters()}

    full = names()
    assert {"cmam", "smam"} <= full
    assert "cmam" not in names(use_cmam=False) and "smam" in names(use_cmam=False)
    assert "smam" not in names(use_smam=False) and "cmam" in names(use_smam=False)
    assert not {"cmam", "smam"} & names(use_cmam=False, use_smam=False)


def test_vizecgnet_missing_modality_rules() -> None:
    """'self' runs CMAM on the stream's own tokens, 'skip' bypasses it; image-only output differs accordingly."""
    model = build("vizecgnet").eval()
    image = make_inputs("image")["image"]
    with torch.no_grad():
        as_self = model(image=image)
        model.missing_modality = "skip"
        as_skip = model(image=image)
    assert as_self["cmam_context"] == {"image": "image"}
    assert as_skip["cmam_context"] == {"image": None}
    assert not torch.allclose(as_self["logits"], as_skip["logits"])


def test_vizecgnet_modality_dropout_hides_image_from_signal_stream_in_training() -> None:
    model = build("vizecgnet", modality_dropout=1.0).train()
    outputs = model(**make_inputs("multimodal"))
    assert outputs["cmam_context"] == {"signal": "signal", "image": "image"}
    model.eval()
    with torch.no_grad():
        assert model(**make_inputs("multimodal"))["cmam_context"] == {"signal": "image", "image": "image"}


@pytest.mark.parametrize("options", [{}, {"use_smam": False}, {"use_cmam": False}, {"missing_modality": "skip"}])
def test_vizecgnet_image_loss_is_computed_on_the_deployed_pass(options: dict) -> None:
    """With the signal present, ``logits_image`` is exactly what image-only inference returns, so the
    image BCE and KD cannot profit from signal information the deployed model never has."""
    model = build("vizecgnet", **options).eval()
    both = make_inputs("multimodal")
    with torch.no_grad():
        joint = model(**both)
        image_only = model(image=both["image"])
    torch.testing.assert_close(joint["logits_image"], image_only["logits"])
    assert ("logits_image_fused" in joint) == model.use_cmam
    if model.use_cmam:
        assert not torch.allclose(joint["logits_image_fused"], joint["logits_image"])
    # The signal's gradient reaches the image encoder only through the cross-modal pass.
    model.train()
    outputs = model(**both)
    assert "logits_image_fused" not in outputs or outputs["logits_image_fused"].requires_grad
    loss, parts = create_loss(model)(outputs, torch.tensor([[1.0, 0, 0, 1, 0, 0], [0, 1, 1, 0, 1, 1]]))
    assert ("bce_image_fused" in parts) == model.use_cmam and "kd" in parts


def test_kd_term_is_zero_for_identical_streams_and_matches_bernoulli_kl() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, -3.0, 4.0]])
    loss_fn = DistillationLoss()
    assert float(loss_fn.distillation(logits, logits.clone())) == pytest.approx(0.0, abs=1e-7)

    student = torch.tensor([[0.0, 1.0, -0.5, 2.0, -1.0, 1.0]])
    p, q = torch.sigmoid(logits), torch.sigmoid(student)
    per_class = p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
    # Default: averaged over classes like the BCE terms; eq. (7)'s literal sum is 6x that.
    torch.testing.assert_close(loss_fn.distillation(logits, student), per_class.mean())
    torch.testing.assert_close(DistillationLoss(class_reduction="sum").distillation(logits, student), per_class.sum())
    assert (bernoulli_kl_with_logits(logits, student) >= 0).all()


@pytest.mark.parametrize("detach_teacher", [True, False])
def test_detach_teacher_controls_kd_gradient_into_signal_stream(detach_teacher: bool) -> None:
    targets = torch.tensor([[1.0, 0, 0, 1, 0, 0]])

    def signal_grad(use_kd: bool) -> torch.Tensor:
        logits_signal = torch.tensor([[1.0, -2.0, 0.3, 0.7, -0.1, 2.0]], requires_grad=True)
        logits_image = torch.tensor([[-0.5, 1.0, 0.0, -1.0, 0.4, 0.2]], requires_grad=True)
        loss_fn = DistillationLoss(detach_teacher=detach_teacher, use_kd=use_kd)
        loss, parts = loss_fn({"logits_signal": logits_signal, "logits_image": logits_image}, targets)
        assert ("kd" in parts) == use_kd
        loss.backward()
        assert logits_image.grad is not None and torch.any(logits_image.grad != 0)
        return logits_signal.grad

    same = torch.allclose(signal_grad(use_kd=True), signal_grad(use_kd=False))
    assert same == detach_teacher


@pytest.mark.parametrize("width", [64, 16])
def test_resnet18_width_keeps_torchvision_layout(width: int) -> None:
    """Width 64 is torchvision's ResNet18 parameter for parameter; narrower widths scale every stage."""
    import torchvision

    from vizecg.models.base import count_parameters

    ours = create_model("resnet18", base_width=width)
    if width == 64:
        reference = torchvision.models.resnet18(weights=None, num_classes=6)
        assert count_parameters(ours) == count_parameters(reference)
        assert sorted(p.shape for p in ours.parameters()) == sorted(p.shape for p in reference.parameters())
    else:
        assert ours.features.out_channels == 8 * width
    with torch.no_grad():
        features = ours.features(torch.rand(1, 3, 128, 357))
    assert features.shape[-2:] == (4, 12)
    wide_stem = create_model("resnet18", base_width=width, stem_stride=(2, 1))
    with torch.no_grad():
        assert wide_stem.features(torch.rand(1, 3, 128, 357)).shape[-2:] == (4, 23)


def test_create_loss_matches_model_kind() -> None:
    targets = torch.tensor([[1.0, 0, 1, 0, 0, 1]])
    logits = torch.tensor([[0.3, -0.2, 1.0, -1.5, 0.0, 2.0]])
    bce_loss = create_loss(build("resnet18"), lambda_kd=2.0)  # distillation options are ignored
    loss, parts = bce_loss({"logits": logits}, targets)
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(logits, targets))
    assert isinstance(create_loss(build("vizecgnet")), DistillationLoss)
    with pytest.raises(TypeError, match="unknown_option"):
        create_loss(build("resnet18"), unknown_option=1)


def test_create_model_rejects_unknown_names_and_options() -> None:
    with pytest.raises(KeyError, match="vizecgnet"):
        create_model("no_such_model")
    with pytest.raises(TypeError, match="not_an_option"):
        create_model("vizecgnet", not_an_option=3)


def test_acnet_fuse_preserves_eval_outputs() -> None:
    """ACNet's deploy form (branches folded into one conv per ACB) computes the same function."""
    model = build("acnet")
    model.train()
    for _ in range(3):  # give the BN layers non-trivial running statistics
        model(**make_inputs("signal", seed=_))
    model.eval()
    inputs = make_inputs("signal", seed=9)
    with torch.no_grad():
        reference = model(**inputs)["logits"]
        fused_model = model.fuse()
        assert not any("branches" in n for n, _ in fused_model.named_parameters())
        torch.testing.assert_close(fused_model(**inputs)["logits"], reference, rtol=1e-4, atol=1e-5)


def test_mhm_fuses_available_modalities_and_supervises_hierarchy() -> None:
    model = build("mhm").eval()
    with torch.no_grad():
        joint = model(**make_inputs("multimodal"), return_attention=True)
        image_only = model(image=make_inputs("image")["image"], return_attention=True)
    assert joint["attention"]["modality"].shape == (BATCH, 2)
    torch.testing.assert_close(joint["attention"]["modality"].sum(1), torch.ones(BATCH))
    assert torch.equal(image_only["attention"]["modality"], torch.ones(BATCH, 1))
    assert joint["group_logits"].shape == (BATCH, 2)

    loss_fn = create_loss(model)
    targets = torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]])
    torch.testing.assert_close(loss_fn.group_targets(targets), torch.tensor([[1.0, 0], [0, 1]]))
    _, parts = loss_fn(joint, targets)
    assert {"bce_fused", "bce_signal", "bce_image", "group_bce_fused"} <= set(parts)


def test_model_card_counts_only_parameters_of_the_inference_path() -> None:
    from vizecg.models.model_card import example_inputs, parameters_used

    model = build("vizecgnet")
    total = sum(p.numel() for p in model.parameters())
    image_path = parameters_used(model, example_inputs("image", 1, SIGNAL_SAMPLES, IMAGE_SIZE))
    signal_path = parameters_used(model, example_inputs("signal", 1, SIGNAL_SAMPLES, IMAGE_SIZE))
    image_stream = sum(p.numel() for n, p in model.named_parameters()
                       if n.startswith(("image_", "cmam.image", "smam.image", "heads.image")))
    assert image_path == image_stream
    assert signal_path + image_path == total


def test_training_step_timing_runs_where_the_model_is_and_under_autocast() -> None:
    # The training-cost benchmark times fit's step under autocast and channels_last as on CUDA; the
    # step must still train (bf16 autocast also runs on a CPU, so this is checked here).
    from vizecg.models.model_card import train_step_ms_per_sample

    model = build("vizecgnet")
    before = [p.detach().clone() for p in model.parameters()]
    ms = train_step_ms_per_sample(model, "multimodal", 2, SIGNAL_SAMPLES, IMAGE_SIZE, steps=1, warmup=0,
                                  autocast_dtype=torch.bfloat16, channels_last=True)
    assert ms > 0 and ms == ms
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the step left the weights unchanged"
