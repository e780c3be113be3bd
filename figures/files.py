"""Figures to files: PNG and PDF for a figure, GIF for an animation, each written atomically."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from synthetic.store import PENDING_WRITES, atomic_write_bytes

__all__ = ["save_figure"]


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write a figure as ``name.png`` and ``name.pdf``, or an animation as ``name.gif``, under
    ``folder``; close it. Returns the paths written."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    if isinstance(fig, animation.Animation):
        # Pillow writes to a file name: a temporary file beside the GIF, registered as a pending
        # write (so Ctrl-C removes it, paper_repro.py), then moved in atomically like every result.
        path = Path(folder) / f"{name}.gif"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".gif")
        os.close(fd)
        PENDING_WRITES.add(tmp)
        try:
            fig.save(tmp, writer=animation.PillowWriter(fps=round(1000 / getattr(fig, "_interval", 100))))
            atomic_write_bytes(path, Path(tmp).read_bytes())
        finally:
            Path(tmp).unlink(missing_ok=True)
            PENDING_WRITES.discard(tmp)
        plt.close(fig._fig)
        return [path]
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight")
        path = Path(folder) / f"{name}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths
