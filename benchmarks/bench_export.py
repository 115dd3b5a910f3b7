"""Batch-1 CPU latency of the image-only model: torch vs onnxruntime on the exported graph.

    python benchmarks/bench_export.py [--checkpoint PATH] [--runs 50] [--warmup 5] [--threads 1]

``--checkpoint`` takes what ``python -m vizecg.predict --checkpoint`` takes (a study ``best.pt``,
a shipped-model folder or its ``model.json``; default: predict's default model). The model is
exported to a temporary ONNX file (:func:`vizecg.export.export_classifier`, checked against
torch), then one random page of the model's input size is classified ``--runs`` times by each
runtime after ``--warmup`` untimed runs; the medians (ms per page) and their ratio are printed.
Only the model is timed, not reading or preparing the page.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizecg.export import export_classifier, onnx_session  # noqa: E402
from vizecg.predict import PredictSetupError, load_classifier  # noqa: E402


def median_ms(call, runs: int, warmup: int) -> float:
    """Median wall time of ``call()`` in milliseconds over ``runs`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                        help="best.pt, shipped-model folder or model.json (default: predict's default model)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per runtime (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of both runtimes (default 1)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--runs and --threads must be at least 1, --warmup at least 0")

    torch.set_num_threads(args.threads)
    try:
        classifier = load_classifier(args.checkpoint, device="cpu")
    except PredictSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    height, width = classifier.image_height, classifier.image_width
    page = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    model = classifier.model

    with tempfile.TemporaryDirectory() as folder:
        report = export_classifier(classifier, Path(folder) / "model.onnx")
        session = onnx_session(report.onnx, threads=args.threads)

        tensor = torch.from_numpy(page)

        def run_torch() -> None:
            with torch.inference_mode():
                model(image=tensor)["logits"].numpy()

        def run_onnx() -> None:
            session.run(["logits"], {"image": page})

        torch_ms = median_ms(run_torch, args.runs, args.warmup)
        onnx_ms = median_ms(run_onnx, args.runs, args.warmup)

    import onnxruntime

    print(f"model: {classifier.checkpoint} ({type(model).__name__}), page {height} x {width}, batch 1")
    print(f"CPU: {platform.processor() or platform.machine()}, {args.threads} thread(s); torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}; median of {args.runs} runs after {args.warmup} warm-up")
    print(f"torch        {torch_ms:8.2f} ms")
    print(f"onnxruntime  {onnx_ms:8.2f} ms")
    print(f"ratio torch / onnxruntime: {torch_ms / onnx_ms:.2f}  (max abs logit difference {report.max_abs_diff:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
