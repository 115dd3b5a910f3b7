"""Synthetic generator speed on one core, and the clinical agreement of its labels.

Usage: python benchmarks/bench_generator.py [--n 2000] [--seed 0] [--agreement-n 1000]

Prints records per second for generating ``n`` records in one process with one BLAS/OpenMP
thread, then the agreement table of :func:`vizecg.data.ecg_measurements.clinical_agreement`
on ``agreement-n`` records (labels exact, label_noise=0).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402

from vizecg.data import ecg_measurements, synthetic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agreement-n", type=int, default=1000)
    args = parser.parse_args()

    synthetic.generate(20, args.seed)  # warm-up: imports, filter design
    start, start_cpu = time.perf_counter(), time.process_time()
    signals, labels = synthetic.generate(args.n, args.seed)
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    # Wall time suffers when other processes share the core; CPU time of this process does not.
    print(f"generated {args.n} records on one core: {args.n / elapsed:.0f} records/s wall "
          f"({elapsed:.2f} s), {args.n / elapsed_cpu:.0f} records/s of process CPU time")
    print("label prevalence:", dict(zip(synthetic.LABELS, labels.mean(axis=0).round(3))),
          f"normal (no label): {(labels.sum(axis=1) == 0).mean():.3f}")

    n = min(args.agreement_n, args.n)
    start = time.perf_counter()
    measured = ecg_measurements.measure_records(signals[:n], progress=True)
    print(f"measured {n} records in {time.perf_counter() - start:.1f} s")
    table = ecg_measurements.clinical_agreement(None, labels[:n], measurements=measured)
    with pd.option_context("display.width", 120):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
