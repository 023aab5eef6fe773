"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient), shows
its training as live widget bars (ProgressBar's notebook mode) and draws its figures."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest
from ipykernel import kernelspec
from jupyter_client.kernelspec import KernelSpecManager

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, float]:
    """The notebook after running it, and the seconds it took.

    Its kernel is the one it names (``python3``), defined in a folder put first on
    ``JUPYTER_PATH`` so that it is this interpreter — the venv's, where lamina is
    installed — whatever kernels the machine or the user have installed.
    """
    folder = tmp_path_factory.mktemp("notebook")
    kernelspec.install(kernel_name="python3", prefix=str(folder))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(folder / "share" / "jupyter"))
        patch.setenv("IPYTHONDIR", str(folder / "ipython"))  # no history in the user's home
        spec = KernelSpecManager().get_kernel_spec("python3")
        assert spec.argv[0] == sys.executable
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},  # runs there: writes nothing here
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    print(f"\nquickstart.ipynb ran in {seconds:.1f} s")
    return notebook, seconds


def outputs(notebook: Any, cell_id: str | None = None) -> list[Any]:
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code" and cell_id in (None, cell.get("id"))
        for output in cell.outputs
    ]


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_every_cell_runs_without_an_error(executed: tuple[Any, float]) -> None:
    notebook, seconds = executed
    assert all(cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code")
    assert [o for o in outputs(notebook) if o.output_type == "error"] == []
    # nothing on stderr either: no warning, and no epoch lines beside the bars
    assert [o.text for o in outputs(notebook) if o.get("name") == "stderr"] == []
    assert seconds < 300


def test_training_shows_one_finished_widget_bar_per_epoch(executed: tuple[Any, float]) -> None:
    notebook, _ = executed
    training = outputs(notebook, "training")
    views = [o.data[WIDGET_VIEW]["model_id"] for o in training if WIDGET_VIEW in o.get("data", {})]
    assert len(views) == 5 == len(training)  # 5 epochs, one bar each, and nothing else
    assert [o.data["text/plain"][:10] for o in training] == [f"Epoch {i}/5:" for i in range(1, 6)]
    # the widgets' final state, saved in the notebook by nbclient
    state = notebook.metadata.widgets[WIDGET_STATE]["state"]
    for epoch, model_id in enumerate(views, 1):
        box = state[model_id]
        assert box["model_name"] == "HBoxModel"
        left, bar, right = (
            state[child.removeprefix("IPY_MODEL_")] for child in box["state"]["children"]
        )
        assert left["state"]["value"].startswith(f"Epoch\u2007{epoch}/5")
        assert bar["model_name"] == "FloatProgressModel"
        assert bar["state"]["value"] == bar["state"]["max"] == 85  # 10,800 images / 128
        assert bar["state"]["bar_style"] == "success"
        assert all(f"{key}=" in right["state"]["value"] for key in ("loss", "val_accuracy", "lr"))


def test_the_figures_are_drawn(executed: tuple[Any, float]) -> None:
    notebook, _ = executed
    for cell_id in ("curves", "confusion", "grid"):
        images = [o for o in outputs(notebook, cell_id) if "image/png" in o.get("data", {})]
        assert len(images) == 1, cell_id
        assert len(images[0].data["image/png"]) > 10_000  # base64 of a real PNG
    printed = "".join(o.text for o in outputs(notebook, "confusion") if o.get("name") == "stdout")
    accuracy = float(printed.split("'accuracy': ")[1].split("}")[0])
    assert accuracy > 0.8  # 5 epochs on 12,000 images
