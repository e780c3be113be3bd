"""Importing the toolkit changes no global state: JAX's whole configuration (the device count
included) and matplotlib's backend and rcParams are the same after importing every module as
before (in a fresh process, with no device request in its environment)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, pkgutil, importlib, sys
sys.path.insert(0, {root!r})
import jax, matplotlib
def state():
    # every option JAX has, as strings (a value that is not JSON still compares)
    return {{"jax": {{k: str(v) for k, v in jax.config.values.items()}}, "mpl_backend": matplotlib.get_backend(),
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
changed = {{k: [before["jax"].get(k), after["jax"].get(k)] for k in before["jax"].keys() | after["jax"].keys()
           if before["jax"].get(k) != after["jax"].get(k)}}
changed.update({{k: [before[k], after[k]] for k in ("mpl_backend", "mpl_rc") if before[k] != after[k]}})
print(json.dumps({{"names": names, "changed": changed, "n_options": len(after["jax"]),
                  "num_cpu_devices": [before["jax"]["jax_num_cpu_devices"], str(jax.config.jax_num_cpu_devices)],
                  "device_count": jax.device_count()}}))
"""


def _modules_on_disk() -> set:
    """Every module of theory, synthetic and figures, by its dotted name, from the files."""
    names = set()
    for package in ("theory", "synthetic", "figures"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_importing_every_module_leaves_global_state_alone():
    # No NPO_DEVICES or XLA flag (the suite sets both): importing must not split the CPU by itself.
    env = {k: v for k, v in os.environ.items() if k not in ("NPO_DEVICES", "XLA_FLAGS")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**env, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["changed"] == {}
    assert out["n_options"] > 50  # the whole configuration was compared, not a handful of keys
    # the device count was not asked for: JAX's default (-1), one CPU device once it starts
    assert out["num_cpu_devices"] == ["-1", "-1"] and out["device_count"] == 1
    # the walk saw every module on disk, the worlds' included, so the check covers each of them
    assert set(out["names"]) == _modules_on_disk() | {"paper_repro"}
    for name in ("synthetic.engine.loop", "synthetic.worlds.thm2.run", "synthetic.worlds.section4.figures",
                 "synthetic.worlds.markov.lm", "synthetic.experiment", "synthetic.registry", "synthetic.report",
                 "synthetic.laws", "figures.laws", "figures.files", "theory.symbolic"):
        assert name in out["names"]
    assert {n for n in out["names"] if n.startswith("synthetic.worlds.") and n.count(".") == 2} >= {
        f"synthetic.worlds.{w}" for w in ("symbolic", "section4", "thm2", "markov", "tofu_mini", "tutorial")}
