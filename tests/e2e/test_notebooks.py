"""Both notebooks execute from a clean clone on small data (papermill); a failing cell fails the test."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill as pm
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
SMALL = {"rows": 4000, "folds": 2, "iterations": 30, "max_forward": 4, "cv_rows": 2000}


@pytest.mark.parametrize(
    ("path", "params"),
    [("model/model.ipynb", {**SMALL, "top_k": 10}), ("spark/spark_model.ipynb", SMALL)],
    ids=["model", "spark_model"],
)
def test_notebook_runs(path: str, params: dict, tmp_path: Path) -> None:
    src = ROOT / path
    out = tmp_path / src.name
    pm.execute_notebook(str(src), str(out), parameters=params, kernel_name="loanpipe", cwd=str(src.parent),
                        progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= (5 if path.startswith("model") else 2)  # plots render, ROC and reliability among them
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert "all_raw" in html and "mean_auc" in html  # the candidate table is shown
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    # the last cell's line: the parameters the run was given (papermill injected them), and its wall time
    setting = f"iterations {params['iterations']}" if path.startswith("model") else r"engine (python|catboost_spark)"
    assert re.search(rf"rows {params['rows']:,}, folds {params['folds']}, {setting}, total \d+ s", text), text[-2000:]


@pytest.mark.parametrize("path", ["model/model.ipynb", "spark/spark_model.ipynb"])
def test_committed_notebooks_use_the_package_not_copies(path: str) -> None:
    nb = nbformat.read(ROOT / path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from loanpipe" in code
    assert "def fit_imputation" not in code and "def find_pairs" not in code and "def delong" not in code
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
