"""Importing the toolkit changes no global state: JAX's configuration and matplotlib's backend
are the same after importing every module as before (in a fresh process)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, pkgutil, importlib, sys
sys.path.insert(0, {root!r})
import jax, matplotlib
KEYS = ("jax_enable_x64", "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion", "jax_default_matmul_precision",
        "jax_debug_nans", "jax_disable_jit", "jax_platforms", "jax_default_device", "jax_compilation_cache_dir",
        "jax_threefry_partitionable", "jax_traceback_filtering")
def state():
    return {{**{{k: str(getattr(jax.config, k)) for k in KEYS}}, "mpl_backend": matplotlib.get_backend(),
            "mpl_rc": str(sorted(matplotlib.rcParams.items()))}}
before = state()
names = []
for package in ("theory", "synthetic", "figures"):
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        names.append(info.name)
import paper_repro
names.append("paper_repro")
after = state()
print(json.dumps({{"names": names, "changed": {{k: [before[k], after[k]] for k in before if before[k] != after[k]}}}}))
"""


def test_importing_every_module_leaves_global_state_alone():
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["changed"] == {}
    # the walk saw the whole package, so the check covers every module
    for name in ("synthetic.engine.loop", "synthetic.experiments.thm2.run", "figures.section4", "theory.symbolic"):
        assert name in out["names"]
    assert len(out["names"]) > 30
