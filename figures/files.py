"""Figures to files: PNG and PDF for a figure, GIF for an animation, each written atomically."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from synthetic.store import atomic_write_bytes

__all__ = ["save_figure"]


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write a figure as ``name.png`` and ``name.pdf``, or an animation as ``name.gif``, under
    ``folder``; close it. Returns the paths written."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    if isinstance(fig, animation.Animation):
        # Pillow writes to a file name: write beside, then move in atomically like every result.
        with tempfile.TemporaryDirectory() as tmp:
            gif = Path(tmp) / f"{name}.gif"
            fig.save(gif, writer=animation.PillowWriter(fps=round(1000 / getattr(fig, "_interval", 100))))
            atomic_write_bytes(Path(folder) / gif.name, gif.read_bytes())
        plt.close(fig._fig)
        return [Path(folder) / gif.name]
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight")
        path = Path(folder) / f"{name}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths
