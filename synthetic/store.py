"""Results on disk: arrays in ``.npz``, config in ``.json``, keyed by a hash of the config.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so an
interrupted run never leaves a half-written result where a complete one stood, and a
second run with the same config finds and reuses the first one's arrays. No pickles:
``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["config_hash", "atomic_write_bytes", "atomic_write_text", "save", "load"]


def _canonical(config: Any) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"config values must be JSON-able, got {type(x).__name__}")


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-able config (key order does not matter)."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _paths(folder: Path, name: str, config: dict) -> tuple[Path, Path]:
    stem = Path(folder) / f"{name}-{config_hash(config)}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def save(folder: Path, name: str, config: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Save ``arrays`` under ``folder`` keyed by ``name`` and the hash of ``config``.

    The ``.npz`` is written first and the ``.json`` last: a result counts as present only
    when its ``.json`` exists, so a crash between the two leaves no false hit.
    Returns the ``.npz`` path.
    """
    npz, meta = _paths(folder, name, config)
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(npz, buf.getvalue())
    atomic_write_text(meta, _canonical({"name": name, "config": config}) + "\n")
    return npz


def load(folder: Path, name: str, config: dict) -> Optional[dict[str, np.ndarray]]:
    """The arrays saved for exactly this ``name`` and ``config``, or ``None``."""
    npz, meta = _paths(folder, name, config)
    if not (npz.exists() and meta.exists()):
        return None
    stored = json.loads(meta.read_text())
    if stored.get("config") != json.loads(_canonical(config)):
        return None  # a hash collision, or a file edited by hand
    with np.load(npz, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
