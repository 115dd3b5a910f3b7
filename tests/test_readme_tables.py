"""The README's result tables are the committed metrics, rendered by vizecg.study.tables.

A rerun of the pipeline rewrites reports/metrics/*.json; a README table that was not regenerated from
them would then describe another run. Each table is looked up verbatim in the README.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vizecg.study.tables import (markdown_comparisons, markdown_ludb, markdown_photo_artifacts, markdown_table1,
                                 markdown_table2)

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "reports" / "metrics"


@pytest.mark.parametrize("render, metrics_file", [(markdown_table1, "table1.json"),
                                                   (markdown_comparisons, "table1.json"),
                                                   (markdown_photo_artifacts, "table1.json"),
                                                   (markdown_table2, "table2.json"),
                                                   (markdown_ludb, "ludb.json")])
def test_readme_table_is_the_committed_metrics(render, metrics_file) -> None:
    table = render(json.loads((METRICS / metrics_file).read_text()))
    readme = (ROOT / "README.md").read_text()
    assert table in readme, (f"README.md does not hold {metrics_file} as rendered by vizecg.study.tables."
                             f"{render.__name__}; paste its output:\n{table}")


def test_ludb_table_keeps_the_json_order_and_the_chosen_conditions() -> None:
    row = {"auroc": 0.8, "auroc_ci": [0.7, 0.9], "f1": 0.2, "per_class_auroc": {"SB": 0.95}}
    doc = {"ludb": {"b@image | paper": row, "b@image | paper+artifacts 1": row, "a | signal": row}}
    lines = markdown_ludb(doc).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| b@image", "| a"]
    assert "| b@image | paper | 0.800 [0.700, 0.900] | 0.200 | n/a | n/a | n/a | 0.95 | n/a | n/a |" == lines[2]
