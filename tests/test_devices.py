"""One JAX device per core on import (:mod:`synthetic.devices`), each case in a process of its own
(the device count is fixed once JAX starts)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import devices

ROOT = Path(__file__).resolve().parents[1]


def _device_count(code: str = "import synthetic, jax; print(jax.device_count())", **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("NPO_DEVICES", "XLA_FLAGS")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**base, "JAX_PLATFORMS": "cpu", **env})


def test_import_splits_the_cpu_one_device_per_core_and_the_environment_overrides_it():
    cores = devices.cpu_cores()
    assert cores >= 1
    default = _device_count()
    assert default.returncode == 0, default.stderr[-2000:]
    assert int(default.stdout) == cores
    for asked in ("1", "3"):
        out = _device_count(NPO_DEVICES=asked)
        assert out.returncode == 0, out.stderr[-2000:]
        assert int(out.stdout) == int(asked)


def test_a_choice_made_before_import_is_kept():
    # the user's XLA flag
    flag = _device_count(XLA_FLAGS="--xla_force_host_platform_device_count=3")
    assert int(flag.stdout) == 3, flag.stderr[-2000:]
    # JAX already started: too late to change, and nothing breaks
    started = _device_count("import jax; jax.numpy.ones(1); import synthetic; print(jax.device_count())")
    assert int(started.stdout) == 1, started.stderr[-2000:]


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_npo_devices_is_refused_by_name(value):
    out = _device_count(NPO_DEVICES=value)
    assert out.returncode != 0
    assert "NPO_DEVICES must be a whole number >= 1" in out.stderr and repr(value) in out.stderr


@pytest.mark.parametrize("n", [0, -2, 1.5, True, "2"])
def test_use_cpu_cores_refuses_a_bad_count(n):
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        devices.use_cpu_cores(n)


def test_use_cpu_cores_leaves_a_started_backend_alone():
    import jax

    jax.numpy.ones(1)  # this test process's JAX has started
    before = jax.device_count()
    assert devices.use_cpu_cores(4) == 0
    assert jax.device_count() == before


def test_section4_newton_fit_finishes_on_several_devices():
    # Newton's batched solves inside shard_map deadlocked XLA's CPU runtime at the paper's size
    # (1200 rows x 128 features) with the CPU split into two devices; the fit now runs on one.
    code = (
        "import json, synthetic, jax, numpy as np\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "from synthetic.data.gaussian import DataConfig\n"
        "from synthetic.models.logistic import RandomFeaturesConfig\n"
        "from synthetic.experiments.section4.run import _prepared_and_fitted\n"
        "fit = json.dumps({'solver': 'newton', 'steps': 30, 'learning_rate': 0.05})\n"
        "_, ref, retr = _prepared_and_fitted(DataConfig(), RandomFeaturesConfig(), (0, 1), fit)\n"
        "print(jax.device_count(), float(np.max(ref.grad_norm)), float(np.max(retr.grad_norm)))\n"
    )
    out = _device_count(code, NPO_DEVICES="2")
    assert out.returncode == 0, out.stderr[-2000:]
    devices_seen, ref_grad, retr_grad = out.stdout.split()
    assert devices_seen == "2" and float(ref_grad) < 1e-8 and float(retr_grad) < 1e-8
