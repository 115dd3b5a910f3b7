"""Execute one study notebook with papermill and export it to HTML.

Every DVC stage calls this module, so each stage is the same three steps: inject
parameters, execute with the repository root as working directory, write the executed
notebook and its HTML report::

    python -m vizecg.study.notebook_runner notebooks/01_data_prep.ipynb \
        --html reports/01_data_prep.html -p profile default -p work_dir data
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from vizecg.study.config import find_repo_root


def run_notebook(notebook: str | Path, html: str | Path, parameters: dict, executed: str | Path | None = None) -> Path:
    """Run ``notebook`` with ``parameters``; write the executed copy and the HTML export. Returns the HTML path."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    root = find_repo_root()
    notebook, html = Path(notebook), Path(html)
    executed = Path(executed) if executed else Path("reports/notebooks") / html.with_suffix(".ipynb").name
    executed.parent.mkdir(parents=True, exist_ok=True)
    html.parent.mkdir(parents=True, exist_ok=True)
    from vizecg.study.kernel_client import RepollingKernelManager

    # RepollingKernelManager: a kernel client that cannot miss the reply of a finished cell (see
    # vizecg.study.kernel_client; notebook 7's widget cell once left a stage waiting for good)
    papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, cwd=str(root),
                               kernel_name="python3", progress_bar=False, log_output=True,
                               kernel_manager_class=RepollingKernelManager)
    body, _ = HTMLExporter().from_notebook_node(compact_figures(nbformat.read(executed, as_version=4)))
    html.write_text(without_machine_paths(body, root), encoding="utf-8")
    return html


def without_machine_paths(text: str, root: str | Path) -> str:
    """``text`` with the paths of the machine that ran it made relative: the repository root becomes
    ``.`` and an installed package's location ``<site-packages>/`` (tracebacks and warnings name
    them), and the interpreter's standard library ``<stdlib>/`` (a traceback from inside it, e.g. a
    DataLoader worker's ``multiprocessing``). The reports are committed and read on other machines."""
    import sysconfig

    root = str(Path(root).resolve())
    stdlib = sysconfig.get_paths()["stdlib"].rstrip("/") + "/"
    return _without_package_dirs(text).replace(stdlib, "<stdlib>/").replace(root + "/", "./").replace(root, ".")


#: characters that end a path written in a traceback, a warning or HTML
_PATH_DELIMITERS = frozenset(" \t\r\n\"'<>:=;,()[]{}")
_LONGEST_PATH = 1024


def _without_package_dirs(text: str) -> str:
    """Every absolute ``.../site-packages/`` (or ``dist-packages``) prefix replaced by ``<site-packages>/``.

    Found from each ``-packages/`` backwards to the path's start, so the work is linear in the text:
    a regular expression that scans forward from every ``/`` is quadratic on the megabytes of
    slash-rich base64 that embedded figures put in a report (it ran for hours on notebook 2's)."""
    import re

    pieces, done = [], 0
    for match in re.finditer(r"(?:site|dist)-packages/", text):
        start = match.start()
        floor = max(done, start - _LONGEST_PATH)
        begin = start
        while begin > floor and text[begin - 1] not in _PATH_DELIMITERS:
            begin -= 1
        if text[begin] == "/" and (begin == 0 or text[begin - 1] in _PATH_DELIMITERS or begin == done):
            pieces += [text[done:begin], "<site-packages>/"]
            done = match.end()
    return "".join(pieces) + text[done:]


CHECK_MARKER = "NBVAL_CHECK_OUTPUT"


#: PNG figures larger than this are stored in the HTML report as JPEG: full ECG pages drawn at
#: 16 inches are megabytes as PNG, and the reports are committed so they can be read unrun
COMPACT_FIGURE_BYTES = 250_000


def compact_figures(nb, *, max_png_bytes: int = COMPACT_FIGURE_BYTES, quality: int = 85, max_width: int = 1400):
    """Re-encode the notebook's large PNG outputs as JPEG at most ``max_width`` wide (in place; returns ``nb``)."""
    import base64
    import io

    from PIL import Image

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            png = data.get("image/png")
            if not png or len(png) * 3 // 4 <= max_png_bytes:
                continue
            image = Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")
            if image.width > max_width:
                image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality)
            del data["image/png"]
            data["image/jpeg"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return nb


def refresh_check_outputs(notebook: str | Path, executed: str | Path) -> int:
    """Copy the outputs of the ``NBVAL_CHECK_OUTPUT`` cells of an executed run into ``notebook``.

    The committed notebooks carry only those outputs (nbval compares them in the test suite);
    after a notebook's checks change, run it on the smoke profile and refresh them with this.
    Returns the number of cells refreshed.
    """
    import nbformat

    source, run = nbformat.read(notebook, as_version=4), nbformat.read(executed, as_version=4)
    run_checks = [c for c in run.cells if c.cell_type == "code" and CHECK_MARKER in c.source]
    checks = [c for c in source.cells if c.cell_type == "code" and CHECK_MARKER in c.source]
    if [c.source for c in checks] != [c.source for c in run_checks]:
        raise ValueError(f"{executed} is not a run of the current {notebook}: its check cells differ")
    for cell, ran in zip(checks, run_checks):
        cell.outputs = [o for o in ran.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"]
        # nbval refuses a reference cell that has outputs but no execution count ("unrun").
        cell.execution_count = ran.execution_count or 1
    nbformat.write(source, notebook)
    return len(checks)


def _parse_value(text: str):
    # YAML scalars so that "-p epochs 3" gives an int and "-p run vizecgnet" a string.
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("--html", required=True, help="where to write the HTML report")
    parser.add_argument("--executed", help="where to write the executed notebook (default reports/notebooks/)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--refresh-checks", action="store_true",
                        help=f"after the run, copy its {CHECK_MARKER} outputs into the notebook (smoke profile)")
    args = parser.parse_args(argv)
    params = {name: _parse_value(value) for name, value in args.parameter}
    print(run_notebook(args.notebook, args.html, params, args.executed))
    if args.refresh_checks:
        executed = args.executed or Path("reports/notebooks") / Path(args.html).with_suffix(".ipynb").name
        print(f"refreshed {refresh_check_outputs(args.notebook, executed)} check cell(s) of {args.notebook}")


if __name__ == "__main__":
    main()
