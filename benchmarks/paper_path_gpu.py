"""The `paper` profile's path on a CUDA GPU, end to end at a length that fits minutes.

What a user with a GPU runs for the paper's scale (`dvc exp run -S profile=paper`) is CODE-15%
read from its official files, VizECGNet at the paper's sizes on 384 x 1064 pages, trained by
`fit` with bf16 autocast, channels_last, fused Adam and pinned-memory loaders, then scored.
None of that runs on a CPU machine. This script runs that path on a GPU with a fake CODE-15% in
the official layout (:mod:`vizecg.data.fake_code15`, since the real one is a 60 GB download) and
the profile's parameters, except the number of epochs and exams:

1. writes the fake CODE-15% and prepares it (the `prepare` stage's function);
2. trains the `vizecgnet` run with `vizecg.study.runs.train_run` and scores it with `score_run`
   (the `train@vizecgnet` stage's functions), recording samples/s, the share of the step spent
   waiting for pages (``data_wait_frac``) and peak GPU memory;
3. calls `train_run` again, which must find the finished run and train nothing, and with
   ``--twice`` trains the run a second time in another folder and compares the weights
   (nothing sets deterministic CUDA kernels, so this measures how far two GPU runs drift);
4. reads the same pages with the shipped model through `python -m vizecg.predict` on the CPU and
   on the GPU and compares the probabilities;
5. times one training step of every registered model at the paper's sizes in float32 and under
   bf16 autocast (`benchmarks/bench_models.py --train-cost --amp bf16`).

    python benchmarks/paper_path_gpu.py --work-dir /tmp/paper_path --out reports/metrics/paper_path_gpu.json

Everything it measures goes to ``--out`` (JSON) and the bench table to ``--bench-out`` (markdown).
On a CPU it runs too (a dry run of the same code, ``--n-exams 40 --epochs 1 --skip-bench``), slowly.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vizecg.contract import LABELS  # noqa: E402
from vizecg.data.fake_code15 import write_fake_code15  # noqa: E402
from vizecg.evaluation import describe_device, macro_auroc  # noqa: E402
from vizecg.study import data_prep  # noqa: E402
from vizecg.study.config import load_params  # noqa: E402
from vizecg.study.runs import load_predictions, page_encoder_runs, run_dir, score_run, train_run  # noqa: E402

RUN = "vizecgnet"


def describe_machine() -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "cpu": describe_device("cpu")}
    if torch.cuda.is_available():
        info["gpu"] = describe_device("cuda")
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        info["bf16"] = torch.cuda.is_bf16_supported()
    else:
        info["gpu"] = None
    return info


def paper_params(code15_root: Path, epochs: int, num_workers: int | None) -> dict:
    params = load_params(profile="paper")
    params["data"]["source_options"] = {**params["data"]["source_options"], "root": str(code15_root)}
    params["train"]["epochs"] = epochs
    for source in page_encoder_runs(params):  # the page encoder VizECGNet's starts from: as short a run
        params["runs"][source] = {**params["runs"][source], "train": {**params["runs"][source].get("train", {}),
                                                                       "epochs": epochs}}
    if num_workers is not None:
        params["train"]["num_workers"] = num_workers
    return params


def train_and_score(params: dict, work: Path) -> dict:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for source in page_encoder_runs(params):
        train_run(params, source, work, progress=False)
    train_run(params, RUN, work, progress=False)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    score_run(params, RUN, work, progress=False)
    score_s = time.perf_counter() - start
    import pandas as pd

    history = pd.read_csv(run_dir(work, RUN) / "history.csv")
    keep = [c for c in ("epoch", "train_total", "val_auroc", "samples_per_s", "data_wait_frac", "train_seconds",
                        "seconds") if c in history]
    predictions = load_predictions(work, RUN)
    out = {"train_s": round(train_s, 1), "score_s": round(score_s, 1), "history": history[keep].to_dict("records"),
           "test_macro_auroc_image": macro_auroc(predictions["y_test"], predictions["test@image"]),
           "test_records": int(len(predictions["y_test"]))}
    if torch.cuda.is_available():
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    start = time.perf_counter()
    train_run(params, RUN, work, progress=False)  # finished: must only read the checkpoint back
    out["rerun_finished_s"] = round(time.perf_counter() - start, 1)
    return out


def weight_difference(first: Path, second: Path) -> dict:
    """Largest absolute difference between the parameters of two checkpoints of the same model."""
    from vizecg.training.checkpoint import read_checkpoint

    a, b = read_checkpoint(first)["state_dict"], read_checkpoint(second)["state_dict"]
    diffs = [float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point()]
    return {"max_abs_weight_diff": max(diffs), "identical": all(torch.equal(a[k], b[k]) for k in a)}


def train_twice(params: dict, work: Path) -> dict:
    again = work / "again"
    (again / "prepared").mkdir(parents=True, exist_ok=True)
    link = again / "prepared" / "dataset.h5"
    if not link.exists():
        link.symlink_to((work / "prepared" / "dataset.h5").resolve())
    for run in [*page_encoder_runs(params), RUN]:  # the whole chain again, its page encoder included
        train_run(params, run, again, progress=False)
    import pandas as pd

    first = pd.read_csv(run_dir(work, RUN) / "history.csv")["val_auroc"].tolist()
    second = pd.read_csv(run_dir(again, RUN) / "history.csv")["val_auroc"].tolist()
    return {**weight_difference(run_dir(work, RUN) / "last.pt", run_dir(again, RUN) / "last.pt"),
            "val_auroc_first": first, "val_auroc_second": second}


def write_pages(prepared: Path, folder: Path, n: int) -> None:
    """``n`` test records of the prepared file drawn in the paper look as PNG files."""
    from PIL import Image

    from vizecg.data.prepared import read_signals
    from vizecg.render import render_ecg

    index = data_prep.read_index(prepared)
    rows = np.flatnonzero(index["split"].to_numpy() == "test")[:n]
    folder.mkdir(parents=True, exist_ok=True)
    for row, signal in zip(rows, read_signals(prepared, rows)):
        Image.fromarray(render_ecg(signal, backend="fast")).save(folder / f"test_{int(row):05d}.png")


def predict_probabilities(folder: Path, device: str) -> tuple[dict[str, list[float]], float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vizecg.predict", str(folder), "--json", "--device", device],
                          capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"predict --device {device} exited {done.returncode}: {done.stderr[-2000:]}")
    entries = json.loads(done.stdout)["results"]
    return {Path(e["file"]).name: [e["probabilities"][label] for label in LABELS] for e in entries}, seconds


def compare_predict(prepared: Path, work: Path, n: int) -> dict:
    folder = work / "pages"
    write_pages(prepared, folder, n)
    cpu, cpu_s = predict_probabilities(folder, "cpu")
    out = {"pages": len(cpu), "cpu_s": round(cpu_s, 1)}
    if torch.cuda.is_available():
        gpu, gpu_s = predict_probabilities(folder, "cuda")
        diff = max(abs(a - b) for name in cpu for a, b in zip(cpu[name], gpu[name]))
        out.update(cuda_s=round(gpu_s, 1), max_abs_diff_cpu_vs_cuda=diff, same_files=sorted(cpu) == sorted(gpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/paper_path"))
    parser.add_argument("--n-exams", type=int, default=3000, help="exams of the fake CODE-15%%")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the profile's)")
    parser.add_argument("--pages", type=int, default=32, help="pages read by predict on CPU and GPU")
    parser.add_argument("--twice", action="store_true", help="train a second time and compare the weights")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "metrics" / "paper_path_gpu.json")
    parser.add_argument("--bench-out", type=Path, default=None, help="markdown table of the step timings")
    args = parser.parse_args()

    report: dict = {"machine": describe_machine(), "command": " ".join(sys.argv)}
    work = args.work_dir
    code15 = work / "code15"
    start = time.perf_counter()
    write_fake_code15(code15, args.n_exams, 2, seed=0)
    report["fake_code15_s"] = round(time.perf_counter() - start, 1)
    params = paper_params(code15, args.epochs, args.num_workers)
    report["params"] = {"input": params["input"], "train": params["train"], "model": params["model_options"][RUN]}
    start = time.perf_counter()
    prepared = data_prep.prepare_dataset(params, work, progress=False)
    report["prepare_s"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def record(key: str, value) -> None:  # written after every phase: a phase that fails keeps the others
        report[key] = value
        print(json.dumps({key: value}, indent=1), flush=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    record("training", train_and_score(params, work))
    if args.twice:
        record("second_training", train_twice(params, work))
    record("predict", compare_predict(prepared, work, args.pages))
    if not args.skip_bench:
        bench = [sys.executable, str(ROOT / "benchmarks" / "bench_models.py"), "--train-cost", "--preset", "paper",
                 "--device", "cuda" if torch.cuda.is_available() else "cpu", "--amp", "bf16",
                 "--image-size", str(params["input"]["image_height"]), str(params["input"]["image_width"]),
                 "--signal-samples", "4096", "--repeats", "10"]
        done = subprocess.run(bench, capture_output=True, text=True, cwd=ROOT)
        report["bench_command"] = " ".join(bench[1:])
        report["bench_returncode"] = done.returncode
        table = done.stdout + (done.stderr[-3000:] if done.returncode else "")
        print(table, flush=True)
        if args.bench_out:
            args.bench_out.write_text(table)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
