"""The persistent compilation cache: programs saved by one process and loaded by the next, a
damaged entry compiled again with the same result, and a location already chosen left alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax

from synthetic.compile_cache import use_compilation_cache

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """
import json, sys, warnings
import jax, jax.numpy as jnp
from synthetic.compile_cache import use_compilation_cache
on = use_compilation_cache(sys.argv[1], min_compile_seconds=0.0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    y = jax.jit(lambda x: jnp.sin(x) @ x + 1.0)(jnp.arange(16.0).reshape(4, 4))
print(json.dumps({"on": on, "y": y.tolist(), "warnings": [str(w.message) for w in caught]}))
"""


def _run(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(folder)], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_programs_are_saved_loaded_and_a_damaged_entry_is_compiled_again(tmp_path):
    folder = tmp_path / "jax"
    first = _run(folder)
    assert first["on"] and first["warnings"] == []
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    assert any(p.name.startswith("jit__lambda") for p in entries)
    second = _run(folder)  # loads the saved program: no new entry, the same numbers
    assert sorted(p for p in folder.iterdir() if not p.name.startswith(".")) == entries
    assert second["y"] == first["y"]
    for p in entries:  # damage every entry: JAX warns, compiles again, and computes the same
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2] + b"damaged")
    third = _run(folder)
    assert third["y"] == first["y"] and any("cache" in w for w in third["warnings"])


def test_an_unwritable_folder_or_a_chosen_location_changes_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    before = jax.config.jax_compilation_cache_dir
    assert before  # the suite's own cache (tests/conftest.py), chosen through the environment
    assert use_compilation_cache(tmp_path / "elsewhere") is False
    assert jax.config.jax_compilation_cache_dir == before and not (tmp_path / "elsewhere").exists()
    assert _run(blocker / "jax")["on"] is False  # cannot be created: no cache, the program still runs
