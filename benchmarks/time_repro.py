"""Wall time of a full ``dvc repro``, stage by stage, against the study's 90-minute budget on 2 cores.

Runs the stages ``dvc repro --dry`` would run, in its order, one at a time
(``dvc repro --single-item <stage>``), and times each. The point is a figure a newcomer can
rerun: how long the README's first command takes on this machine, and which stages the time
goes to, so the default profile can be cut where it costs most.

    git clone <repo> clone && cd clone && python benchmarks/time_repro.py --out repro_timing.json

Time it on a clean clone with nothing else running: every stage then runs, and the figures
are uncontended. The JSON is rewritten after every stage; a rerun after an interruption keeps
the stages already timed and goes on from the first one that is not (a training stage that
was cut off resumes from its last checkpoint, so its second time is marked ``resumed``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

#: What the study aims for: ``dvc repro`` of the default profile on a 2-core CPU machine.
BUDGET_MINUTES = 90.0

_RUNNING = re.compile(r"^Running stage '([^']+)':", re.MULTILINE)


def stages_to_run(dry_run_output: str) -> list[str]:
    """The stages ``dvc repro --dry`` reports it would run, in its order (frozen and unchanged ones left out)."""
    return _RUNNING.findall(dry_run_output)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def summary_table(stages: list[dict]) -> str:
    """Markdown table of the timed stages, slowest first, with the total against the budget."""
    total = sum(stage["seconds"] for stage in stages)
    lines = ["| stage | minutes | share |", "|---|---:|---:|"]
    for stage in sorted(stages, key=lambda s: -s["seconds"]):
        mark = " (resumed)" if stage.get("resumed") else ""
        lines.append(f"| {stage['stage']}{mark} | {stage['seconds'] / 60:.1f} | {stage['seconds'] / max(total, 1e-9):.0%} |")
    lines.append(f"| **total** | **{total / 60:.1f}** | budget {BUDGET_MINUTES:.0f} min |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="the study's checkout (a clean clone)")
    parser.add_argument("--out", type=Path, default=Path("repro_timing.json"))
    parser.add_argument("--dvc", default="dvc", help="the dvc executable")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    commit = _git(repo, "rev-parse", "HEAD")
    result = {
        "command": "python benchmarks/time_repro.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": commit,
        "clean_checkout": _git(repo, "status", "--porcelain", "--untracked-files=no") == "",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "budget_minutes": BUDGET_MINUTES,
        # stages timed on another commit measured other code: start over
        "stages": previous.get("stages", []) if previous.get("commit") == commit else [],
    }
    timed = {stage["stage"] for stage in result["stages"]}
    dry = subprocess.run([args.dvc, "repro", "--dry"], cwd=repo, capture_output=True, text=True)
    if dry.returncode != 0:
        # On a clean clone DVC's dry run fails ("No such file or directory: .../data/prepared"): it hashes
        # the dependencies of later stages, which earlier stages have not made yet. Every stage then
        # runs, which is what the forced dry run lists (a stage that turns out unchanged is skipped
        # by `dvc repro --single-item` in seconds).
        print(f"`dvc repro --dry` failed ({dry.stderr.strip().splitlines()[-1] if dry.stderr.strip() else dry.returncode}); "
              "timing every stage, as on a clean clone", flush=True)
        dry = subprocess.run([args.dvc, "repro", "--dry", "--force"], cwd=repo, capture_output=True, text=True,
                             check=True)
    pending = [name for name in stages_to_run(dry.stdout) if name not in timed]
    print(f"{len(timed)} stage(s) already timed, {len(pending)} to run: {', '.join(pending) or 'none'}", flush=True)

    for name in pending:
        # training outputs persist: a checkpoint already there means an earlier attempt was cut off and
        # this one resumes from it, so its time is not a whole stage's
        run_dir = repo / "data" / "models" / name.partition("@")[2] if "@" in name else None
        resumed = bool(run_dir and (run_dir / "last.pt").exists())
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        start = time.perf_counter()
        # the stage's own output (papermill's and tqdm's progress) goes straight to this terminal
        completed = subprocess.run([args.dvc, "repro", "--single-item", name], cwd=repo)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            print(f"stage {name} failed (exit {completed.returncode}) after {seconds:.0f} s; nothing recorded for it",
                  file=sys.stderr)
            return completed.returncode
        result["stages"].append({"stage": name, "seconds": round(seconds, 1), "started": started, "resumed": resumed})
        result["total_minutes"] = round(sum(s["seconds"] for s in result["stages"]) / 60, 1)
        args.out.write_text(json.dumps(result, indent=1))
        print(f"{name}: {seconds / 60:.1f} min (total so far {result['total_minutes']} min)", flush=True)

    print(summary_table(result["stages"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
