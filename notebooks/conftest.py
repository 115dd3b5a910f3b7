"""pytest settings for the nbval run of the study notebooks."""
from pathlib import Path

import pytest

# nbval waits a fixed 5 s for each kernel message after a cell's reply (not configurable in
# nbval 0.11). On a loaded 2-core CI runner the kernel's IOPub thread can lag behind that after a
# long training cell (tqdm widget updates are queued ahead of the idle message), which fails a cell
# that ran correctly. Two minutes still fails a kernel that is really stuck.
NBVAL_OUTPUT_TIMEOUT_S = 120

# Notebook 6 measures the real data beside the project (data.real_data_dir); without it every cell
# after the first would fail for a reason that is not a defect, so its cells are skipped, with the
# reason in pytest's summary. Notebooks 1, 2 and 9 leave out their real-data parts themselves.
NEEDS_REAL_DATA = {"06_real_prints.ipynb": ("ludb", "real_prints")}


def _missing_real_data(folders):
    from vizecg.study.config import load_params

    repo = Path(__file__).resolve().parents[1]
    root = repo / load_params(repo / "params.yaml", profile="smoke")["data"]["real_data_dir"]
    missing = [str(root / f) for f in folders if not (root / f).is_dir()]
    return ", ".join(missing)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S
        folders = NEEDS_REAL_DATA.get(Path(str(item.fspath)).name)
        if folders and (missing := _missing_real_data(folders)):
            item.add_marker(pytest.mark.skip(reason=f"real data absent: {missing}"))
