"""The attention explorer (notebook 7) works where users open it: JupyterLab in a real browser.

Starts JupyterLab on localhost, opens a copy of notebook 7 (its parameters pointed at a fresh smoke checkpoint) in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``), runs every cell, waits for the widget
explorer to draw its map, picks another attention module in the dropdown, and checks that the drawn
map changes. Skipped, with the reason, where Chromium or its driver is not installed.

Run it as a script to keep the screenshots::

    python tests/test_attention_explorer_jupyterlab.py --screenshots reports/attention_explorer_jupyterlab
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_attention_explorer.ipynb"
NOTEBOOK_COPIES = REPO / "data" / "browser_check"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# JupyterLab's first start builds its workspace and the kernel imports torch: generous, since a
# loaded 2-core machine is slow, but finite, so a hung front end fails instead of blocking.
SERVER_START_S = 120
NOTEBOOK_RUN_S = 240
WIDGET_UPDATE_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_smoke_vizecgnet(work_dir: Path) -> None:
    """The checkpoint notebook 7 loads: a smoke-profile VizECGNet, trained in seconds."""
    from vizecg.study.config import load_params
    from vizecg.study.data_prep import prepare_dataset
    from vizecg.study.runs import page_encoder_runs, train_run

    params = load_params(profile="smoke")
    prepare_dataset(params, work_dir, progress=False)
    for run in [*page_encoder_runs(params), "vizecgnet"]:  # the page encoder VizECGNet's starts from, first
        train_run(params, run, work_dir, progress=False)


def interactive_copy(work_dir: Path, folder: Path) -> Path:
    """Notebook 7 with its parameters cell set as a user would set it (our work_dir)."""
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = (f'profile = "smoke"\nwork_dir = {str(work_dir)!r}\n'
                              f'reports_dir = {str(work_dir / "reports")!r}\n')
        cell["outputs"] = [] if cell["cell_type"] == "code" else cell.get("outputs")
        if cell["cell_type"] != "code":
            cell.pop("outputs", None)
    path = folder / "07_attention_explorer_interactive.ipynb"
    path.write_text(json.dumps(notebook))
    return path


@contextmanager
def jupyterlab(root: Path, log_path: Path):
    """A JupyterLab server on localhost; yields its base URL with the token."""
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
               # window.jupyterapp lets the check run JupyterLab's own commands (Run All Cells)
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--ServerApp.allow_root=True"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited with {server.returncode}: {log_path.read_text()[-2000:]}")
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not listen on port {port} in {SERVER_START_S} s")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}", token
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


@contextmanager
def headless_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(driver, script: str, timeout_s: float, what: str, failure_shot: Path | None = None):
    """Poll a JavaScript expression until it returns something truthy; on timeout, keep a
    screenshot and report the notebook's outputs so the failure can be read."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    if failure_shot is not None:
        driver.save_screenshot(str(failure_shot))
    outputs = driver.execute_script(NOTEBOOK_OUTPUTS)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; kernel "
                         f"{driver.execute_script(KERNEL_STATUS)!r}; outputs: {outputs}")


KERNEL_STATUS = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
return kernel ? kernel.status : null;"""
# The explorer's map: the image inside the ipywidgets Output area of the last cell.
MAP_SOURCE = """
const images = document.querySelectorAll('.widget-output img');
return images.length ? images[images.length - 1].src : null;"""
NOTEBOOK_OUTPUTS = """
return Array.from(document.querySelectorAll('.jp-Cell')).map((c, i) => i + ': '
  + (c.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText + ' '
  + (c.querySelector('.jp-OutputArea') || {innerText: ''}).innerText.slice(0, 300));"""
CELL_ERRORS = """
return Array.from(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"],'
  + ' .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')).map(e => e.innerText.slice(0, 500));"""


def explore(screenshots: Path, work_dir: Path) -> dict:
    """Open the explorer in JupyterLab, move the module dropdown, return what was seen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    screenshots.mkdir(parents=True, exist_ok=True)
    # The copy sits inside the repository, as notebooks/ does, so the notebook finds the repo root.
    NOTEBOOK_COPIES.mkdir(parents=True, exist_ok=True)
    notebook = interactive_copy(work_dir, NOTEBOOK_COPIES)
    with jupyterlab(REPO, work_dir / "jupyterlab.log") as (url, token), headless_chromium() as driver:
        driver.get(f"{url}/lab/tree/{notebook.relative_to(REPO).as_posix()}?token={token}")
        _wait_for(driver, KERNEL_STATUS.replace("return kernel ? kernel.status : null;",
                                                "return kernel && kernel.status === 'idle';"),
                  SERVER_START_S, "the notebook's kernel to start")
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        before = _wait_for(driver, MAP_SOURCE, NOTEBOOK_RUN_S, "the explorer to draw its first map",
                           screenshots / "failure.png")
        errors = driver.execute_script(CELL_ERRORS)
        assert not [e for e in errors if "Traceback" in e or "Error" in e], errors
        dropdowns = {d.find_element(By.TAG_NAME, "label").text: d.find_element(By.TAG_NAME, "select")
                     for d in driver.find_elements(By.CSS_SELECTOR, ".widget-dropdown")}
        assert "module" in dropdowns, f"no 'module' dropdown among {sorted(dropdowns)}"
        module = Select(dropdowns["module"])
        first = module.first_selected_option.text
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", dropdowns["module"])
        # JupyterLab's one-time "notified about news?" toast would cover part of the map.
        driver.execute_script("document.querySelectorAll('.Toastify__toast').forEach(t => t.remove());")
        time.sleep(1)
        driver.save_screenshot(str(screenshots / "before.png"))
        options = [o.text for o in module.options]
        # From a map over leads x time to one over the page: a change nobody can miss.
        chosen = next((o for o in options if o != first and "image" in o.split()[1]), options[-1])
        module.select_by_visible_text(chosen)
        after = _wait_for(driver, MAP_SOURCE.replace("return images.length ? images[images.length - 1].src : null;",
                                                     f"const s = images.length ? images[images.length - 1].src : null;"
                                                     f" return s && s !== {json.dumps(before)} ? s : null;"),
                          WIDGET_UPDATE_S, f"the map to change after choosing {chosen!r}", screenshots / "failure.png")
        time.sleep(1)
        driver.save_screenshot(str(screenshots / "after.png"))
        return {"module_before": first, "module_after": chosen, "map_changed": after != before,
                "kernel": driver.execute_script(KERNEL_STATUS), "options": options}


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt install chromium chromium-driver)")


@needs_chromium
def test_attention_explorer_redraws_when_a_widget_moves_in_jupyterlab(tmp_path: Path) -> None:
    pytest.importorskip("selenium", reason="needs selenium (requirements.txt)")
    work_dir = tmp_path / "work"
    train_smoke_vizecgnet(work_dir)
    seen = explore(tmp_path / "screenshots", work_dir)
    assert seen["map_changed"], seen
    assert (tmp_path / "screenshots" / "before.png").stat().st_size > 10_000
    assert (tmp_path / "screenshots" / "after.png").stat().st_size > 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", type=Path, required=True, help="folder for before.png and after.png")
    parser.add_argument("--work-dir", type=Path, default=NOTEBOOK_COPIES / "work",
                        help="where the smoke checkpoint and the notebook copy go")
    args = parser.parse_args()
    if CHROMIUM is None or CHROMEDRIVER is None:
        sys.exit("needs Debian's chromium and chromium-driver (apt install chromium chromium-driver)")
    started = time.monotonic()
    train_smoke_vizecgnet(args.work_dir.resolve())
    seen = explore(args.screenshots.resolve(), args.work_dir.resolve())
    print(json.dumps({**seen, "seconds": round(time.monotonic() - started, 1)}, indent=2))
    sys.exit(0 if seen["map_changed"] else 1)


if __name__ == "__main__":
    main()
