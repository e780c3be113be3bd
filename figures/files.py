"""Figures to files: PNG and PDF for a figure, GIF for an animation, each written atomically."""

from __future__ import annotations

import io
from pathlib import Path

from synthetic.store import atomic_write_bytes, atomic_write_files

__all__ = ["save_figure"]


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write a figure as ``name.png`` and ``name.pdf``, or an animation as ``name.gif``, under
    ``folder``; close it (also when writing fails). Returns the paths written."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    if isinstance(fig, animation.Animation):
        # Pillow writes to a file name: the store hands it the name of the temporary file (a
        # pending write, which Ctrl-C removes), then moves it in like every result.
        path = Path(folder) / f"{name}.gif"
        writer = animation.PillowWriter(fps=round(1000 / getattr(fig, "_interval", 100)))
        try:
            atomic_write_files({path: lambda tmp: fig.save(tmp, writer=writer)})
        finally:
            plt.close(fig._fig)
        return [path]
    paths = []
    try:
        for ext in ("png", "pdf"):
            buf = io.BytesIO()
            fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight")
            path = Path(folder) / f"{name}.{ext}"
            atomic_write_bytes(path, buf.getvalue())
            paths.append(path)
    finally:  # written or not (a full disk), the figure's memory is given back
        plt.close(fig)
    return paths
