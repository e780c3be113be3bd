"""The tutorial as a notebook: ``docs/tutorial.ipynb``, built from ``docs/tutorial.md``.

The page is the one source: its text becomes markdown cells and its python blocks code cells
(jupytext's markdown format), with three additions for a notebook:

* a first cell on how to run it (locally, or in a hosted notebook service);
* the race's animation shown inline after the cell that writes it;
* the exercises' solutions folded (their code cells' input hidden, tagged ``solution``).

Rebuild after editing the page (the tests check that the committed notebook is the page's)::

    python -m synthetic.worlds.tutorial.notebook

``pip install -e ".[notebook]"`` installs what building and running it needs (jupytext,
nbclient, ipykernel, ipywidgets).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PAGE", "NOTEBOOK", "build", "write"]

PAGE = Path(__file__).resolve().parents[3] / "docs" / "tutorial.md"
NOTEBOOK = PAGE.with_suffix(".ipynb")

HEADER = """# Running this notebook

This notebook is `docs/tutorial.md` as cells (the page is the source: edit it, then run
`python -m synthetic.worlds.tutorial.notebook`). Every number it prints is checked by the
project's tests, which run this notebook in a Jupyter kernel.

- **Here:** from the project's folder, `pip install -e ".[notebook]"`, then open
  `docs/tutorial.ipynb` in Jupyter (`jupyter lab`) or VS Code, and run the cells in order
  (about a minute of computing on a 2-core laptop).
- **In a hosted notebook service** (Google Colab, Binder, ...): open this file from the
  project's repository (in Colab: *File > Open notebook > GitHub*, and paste the address of
  `docs/tutorial.ipynb`), run `!pip install "npo-toolkit[notebook] @ git+<the repository's address>"`
  in a first cell, and then run the cells in order. The figures referenced by the text live
  beside the notebook, in `docs/`.

The exercises' solutions are folded: click a folded cell to show its code."""

SHOW_ANIMATION = """from IPython.display import Image

Image(filename="race.gif")  # the animation written above, shown inline"""


def build(page_text: str):
    """The notebook (an ``nbformat`` node) of the page's markdown text."""
    import jupytext
    import nbformat

    page = jupytext.reads(page_text, fmt="md")
    cells = [nbformat.v4.new_markdown_cell(HEADER)]
    in_solution = False
    for cell in page.cells:
        source = cell.source
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source))
            # a solution is open after this cell if its last tag opens one
            opened, closed = source.rfind("<details>"), source.rfind("</details>")
            if opened >= 0 or closed >= 0:
                in_solution = opened > closed
            continue
        code = nbformat.v4.new_code_cell(source)
        if in_solution:
            code.metadata.update({"jupyter": {"source_hidden": True}, "tags": ["solution"]})
        cells.append(code)
        if 'anim.save("race.gif"' in source:
            cells.append(nbformat.v4.new_code_cell(SHOW_ANIMATION))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}
    for k, cell in enumerate(notebook.cells):  # stable ids: the file changes only when the page does
        cell.id = f"cell-{k:03d}"
    return notebook


def write(page: Path = PAGE, notebook: Path = NOTEBOOK) -> Path:
    """Build the notebook of ``page`` and write it to ``notebook`` (atomically)."""
    import nbformat

    from synthetic.store import atomic_write_text

    atomic_write_text(notebook, nbformat.writes(build(page.read_text())) + "\n")
    return notebook


if __name__ == "__main__":
    print(f"wrote {write()}")
