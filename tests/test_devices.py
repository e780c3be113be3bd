"""One JAX device per core, on request (:func:`synthetic.devices.use_cpu_cores`), never on import;
each case in a process of its own (the device count is fixed once JAX starts)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import devices

ROOT = Path(__file__).resolve().parents[1]

ASK = "import jax\nfrom synthetic.devices import use_cpu_cores\nprint(use_cpu_cores(), jax.device_count())"
"""Ask for the default split right after ``import jax``; print what was asked and what JAX shows."""


def _run(code: str, *args, **env) -> subprocess.CompletedProcess:
    """``python -c code`` (or ``python *args`` without code), in a fresh process whose environment
    has no NPO_DEVICES and no XLA_FLAGS (the suite sets both) except as given in ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("NPO_DEVICES", "XLA_FLAGS")}
    argv = [sys.executable, *(["-c", code] if code else args)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**base, "JAX_PLATFORMS": "cpu", **env})


def _ints(proc: subprocess.CompletedProcess) -> list[int]:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [int(x) for x in proc.stdout.split()]


def test_importing_the_toolkit_keeps_one_device():
    # even with NPO_DEVICES set: the variable is read by use_cpu_cores, not by an import
    for env in ({}, {"NPO_DEVICES": "3"}):
        code = "import synthetic, synthetic.devices, synthetic.registry, jax; print(jax.device_count())"
        assert _ints(_run(code, **env)) == [1], env


def test_use_cpu_cores_gives_one_device_per_core_and_npo_devices_overrides_it():
    cores = devices.cpu_cores()
    assert cores >= 1
    assert _ints(_run(ASK)) == [cores, cores]
    assert _ints(_run(ASK, NPO_DEVICES="3")) == [3, 3]
    assert _ints(_run(ASK, NPO_DEVICES="1")) == [1, 1]
    # an explicit count wins over the environment
    explicit = "import jax\nfrom synthetic.devices import use_cpu_cores\nprint(use_cpu_cores(2), jax.device_count())"
    assert _ints(_run(explicit, NPO_DEVICES="3")) == [2, 2]


def test_a_started_backend_is_left_alone():
    code = ("import jax\njax.numpy.ones(1)\nfrom synthetic.devices import use_cpu_cores\n"
            "print(use_cpu_cores(), use_cpu_cores(3), jax.device_count(), jax.config.jax_num_cpu_devices)")
    # too late to change the count: 0 (nothing changed), one device, the option untouched
    assert _ints(_run(code, NPO_DEVICES="3")) == [0, 0, 1, -1]


def test_a_choice_the_user_made_is_kept():
    # the user's XLA flag: kept as it is, and use_cpu_cores says it changed nothing
    flag = _run(ASK, XLA_FLAGS="--xla_force_host_platform_device_count=3")
    assert _ints(flag) == [0, 3]
    # the user's own jax_num_cpu_devices
    code = ("import jax\njax.config.update('jax_num_cpu_devices', 3)\nfrom synthetic.devices import use_cpu_cores\n"
            "print(use_cpu_cores(), jax.device_count())")
    assert _ints(_run(code)) == [0, 3]


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_npo_devices_is_refused_by_name(value, monkeypatch):
    monkeypatch.setenv("NPO_DEVICES", value)
    with pytest.raises(ValueError, match=rf"NPO_DEVICES must be a whole number from 1 to .*got '{value}'"):
        devices.use_cpu_cores()
    with pytest.raises(ValueError, match="NPO_DEVICES"):
        devices.requested_devices()


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_npo_devices_is_unset(value, monkeypatch):
    monkeypatch.setenv("NPO_DEVICES", value)
    assert devices.requested_devices() is None


def test_paper_repro_refuses_a_bad_npo_devices_in_one_line():
    out = _run("", str(ROOT / "paper_repro.py"), "--list", NPO_DEVICES="two")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f"paper_repro.py: error: NPO_DEVICES must be a whole number from 1 to {devices.max_devices()} (1 keeps JAX's "
        "single CPU device; more than 8 per core only splits the same cores thinner), got 'two'"]


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
        "import json, jax, numpy as np\n"
        "from synthetic.devices import use_cpu_cores\n"
        "assert use_cpu_cores() == 2  # NPO_DEVICES=2\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "from synthetic.models.logistic import RandomFeaturesConfig\n"
        "from synthetic.worlds.section4.data import DataConfig\n"
        "from synthetic.worlds.section4.run import _prepared_and_fitted\n"
        "fit = json.dumps({'solver': 'newton', 'steps': 30, 'learning_rate': 0.05})\n"
        "_, ref, retr = _prepared_and_fitted(DataConfig(), RandomFeaturesConfig(), (0, 1), fit)\n"
        "print(jax.device_count(), float(np.max(ref.grad_norm)), float(np.max(retr.grad_norm)))\n"
    )
    out = _run(code, NPO_DEVICES="2")
    assert out.returncode == 0, out.stderr[-2000:]
    devices_seen, ref_grad, retr_grad = out.stdout.split()
    assert devices_seen == "2" and float(ref_grad) < 1e-8 and float(retr_grad) < 1e-8
