"""The tutorial notebook: built from the page, run in a real Jupyter kernel, sliders that work.

``docs/tutorial.ipynb`` is generated from ``docs/tutorial.md``
(:mod:`synthetic.worlds.tutorial.notebook`); the committed file must be the page's, and it must
run top to bottom in a kernel with the numbers the page quotes.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from synthetic.worlds.tutorial import notebook, widgets
from synthetic.worlds.tutorial.run import blobs, race
from theory import get_method


def test_the_committed_notebook_is_the_page():
    import nbformat

    built = nbformat.writes(notebook.build(notebook.PAGE.read_text())) + "\n"
    assert notebook.NOTEBOOK.read_text() == built, (
        "docs/tutorial.ipynb is not the page's: run python -m synthetic.worlds.tutorial.notebook")
    nb = nbformat.reads(built, as_version=4)
    nbformat.validate(nb)
    # every python block of the page is a code cell; the solutions are folded; the GIF is shown
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == notebook.PAGE.read_text().count("```python") + 1
    folded = [c for c in code if c.metadata.get("tags") == ["solution"]]
    assert len(folded) == 3 and all(c.metadata["jupyter"]["source_hidden"] for c in folded)
    assert sum("Image(filename=\"race.gif\")" in c.source for c in code) == 1


RUN_NOTEBOOK = """
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import nbformat

    folder = tmp_path_factory.mktemp("notebook")
    path = shutil.copy(notebook.NOTEBOOK, folder)
    out = folder / "executed.ipynb"
    # The kernel runs in a process of its own (not under the test worker, whose stdin is
    # pytest-xdist's channel: there a run hung waiting for the kernel's reply), with the suite's
    # environment: its fast-compile XLA flags and compile cache (tests/conftest.py) change how
    # long compiling takes, not the numbers the notebook prints.
    done = subprocess.run([sys.executable, "-c", RUN_NOTEBOOK, str(path), str(folder), str(out)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return nbformat.read(out, as_version=4), folder


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def test_the_notebook_runs_in_a_kernel_with_the_pages_numbers(executed):
    nb, folder = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)  # every cell ran (an error stops the run)
    printed = "\n".join(_text(c) for c in code)
    assert "GA's speed: predicted 2.051114, measured 2.051114" in printed
    assert "GA: the distance added in steps 100-1000 is 10.00 x" in printed
    assert "max |theta_NPO - theta_weighted-GA| over 1000 steps" in printed
    # the animation is shown inline, and the sliders are live widgets
    mimes = [set(o.get("data", {})) for c in code for o in c.get("outputs", [])]
    assert any("image/gif" in m for m in mimes)
    assert sum("application/vnd.jupyter.widget-view+json" in m for m in mimes) == 2
    assert (folder / "race.gif").is_file()


def test_the_weight_slider_is_npos_weight():
    for beta in (0.01, 0.1, 1.0, 5.0):
        curve = widgets.weight_curve(beta)
        r = curve["log_ratio"]
        np.testing.assert_allclose(curve["weight"], 2 / (1 + np.exp(-beta * r)), rtol=1e-6)
        assert r[-1] == 0 and curve["weight"][-1] == pytest.approx(1.0)
    # a smaller beta keeps the weight nearer 1 at the same log-ratio (Proposition 1)
    assert widgets.weight_curve(0.1)["weight"][0] > widgets.weight_curve(1.0)["weight"][0]
    with pytest.raises(ValueError, match="beta"):
        widgets.weight_curve(0.0)
    with pytest.raises(ValueError, match="log_ratio_min"):
        widgets.weight_curve(1.0, log_ratio_min=1.0)


def test_the_race_slider_is_the_race():
    got = widgets.race_curves(0.5, 0.3, steps=200, every=20)
    data = blobs(seed=0, per_class=12, n_forget=4)
    want = race(data, [get_method("GA"), get_method("NPO", beta=0.5)], eta=0.3, steps=200, every=20)
    np.testing.assert_array_equal(got["distance"], want["distance"])
    assert list(got["labels"]) == ["GA", "NPO beta=0.5"]
    # a tenth of the step: GA's runaway is ten times slower, still linear
    fast, slow = widgets.race_curves(1.0, 1.0, steps=400, every=400), widgets.race_curves(1.0, 0.1, steps=400, every=400)
    assert slow["distance"][0, -1] < 0.2 * fast["distance"][0, -1]
    with pytest.raises(ValueError, match="eta"):
        widgets.race_curves(1.0, -0.1)


def test_the_explorers_build_their_sliders():
    pytest.importorskip("ipywidgets")
    w = widgets.weight_explorer()
    assert [c.description for c in w.children[:-1]] == ["β"]
    r = widgets.race_explorer()
    assert [c.description for c in r.children[:-1]] == ["β", "η"]
