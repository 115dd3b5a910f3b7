"""Does a default training run give the same numbers on another CPU? One run, one machine, one setting.

On one machine the study is bit-identical from run to run (tests/test_reproducibility.py). Across
machines it is not: the libraries pick their kernels by the processor they find (PyTorch's ATen
by instruction set, oneDNN and MKL by instruction set and cache sizes, OpenBLAS by core type,
NumPy by SIMD level), and float32 sums taken in another order differ in the last bits, which a
few epochs of training amplify. This script trains the default profile's ``inception_time`` run
(3 epochs, the committed recipe) over the prepared data into a scratch folder, optionally with
every one of those dispatchers pinned to AVX2 kernels, and prints its per-epoch validation AUROC
with a description of the machine. Run it on two machines with the same ``--pin`` and compare:

    dvc repro prepare                                  # data/prepared, as the study makes it
    python benchmarks/cpu_kernel_identity.py --pin none
    python benchmarks/cpu_kernel_identity.py --pin avx2

The committed ``reports/plots/training/inception_time.csv`` is the reference (its ``val_auroc``).
About 5 minutes a run on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

#: environment that pins each library's kernel choice to AVX2 (must be set before they load)
AVX2_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN convolutions
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility (BLAS behind torch)
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy/SciPy's OpenBLAS
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's AVX-512 loops
}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", choices=("none", "avx2"), default="none")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared/dataset.h5"))
    return parser.parse_args()


def main() -> None:
    args = _parse()
    if args.pin == "avx2":
        os.environ.update(AVX2_PINS)
    # the libraries are imported only now, after the environment is set
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import pandas as pd
    import torch

    from vizecg.evaluation import describe_device
    from vizecg.study.config import load_params
    from vizecg.study.runs import train_run

    if not args.prepared.exists():
        raise SystemExit(f"{args.prepared}: not found; run `dvc repro prepare` first")
    print(f"machine: {describe_device('cpu')}, {os.cpu_count()} cpus; torch {torch.__version__}, "
          f"ATen capability {torch.backends.cpu.get_cpu_capability()}; pin: {args.pin}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "prepared").mkdir()
        (work / "prepared" / "dataset.h5").symlink_to(args.prepared.resolve())
        train_run(load_params(profile="default"), "inception_time", work, progress=False)
        history = pd.read_csv(work / "models" / "inception_time" / "history.csv")
    reference = Path("reports/plots/training/inception_time.csv")
    committed = pd.read_csv(reference)["val_auroc"].tolist() if reference.exists() else []
    for epoch, value in enumerate(history["val_auroc"], start=1):
        line = f"epoch {epoch}: val_auroc {value!r}"
        if epoch <= len(committed):
            line += f"  committed {committed[epoch - 1]!r}  difference {value - committed[epoch - 1]:+.2e}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
