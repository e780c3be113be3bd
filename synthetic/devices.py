"""One JAX device per CPU core, asked for explicitly, so that the engine's grids and fits use every core.

JAX shows a CPU as a single device. XLA spreads a large matrix product over the cores, but
runs the many small operations of the logistic experiments (a ``(2 x 128) @ (128 x 1200)``
product, an element-wise sigmoid) on one thread. The engine shards its runs over devices
(:func:`synthetic.engine.unlearn` the seeds or settings, :func:`synthetic.engine.sharded_map`
the fits), so with one device per core every core works on runs of its own.

Importing the toolkit never changes JAX's configuration. The split is the entry point's choice:
``paper_repro.py`` and the benchmarks call :func:`use_cpu_cores` first thing, and a library
user who wants it calls it the same way, right after ``import jax`` and before any array is
made::

    import jax
    from synthetic.devices import use_cpu_cores
    use_cpu_cores()          # one CPU device per core (NPO_DEVICES=N asks for N)

It goes through JAX's public configuration only (``jax_num_cpu_devices``), and changes nothing
when

* ``NPO_DEVICES=1`` is set (one device), or the user chose already:
  ``jax.config.update("jax_num_cpu_devices", N)`` or ``--xla_force_host_platform_device_count``
  in ``XLA_FLAGS``;
* JAX has started its backends (an array was made): the device count is fixed from then on,
  and the engine uses the devices there are.

It changes only how many CPU devices JAX shows (on a GPU machine, the GPU stays the default
device). Results do not depend on the number of devices beyond rounding: the tests run float64
grids and fits on one and on four devices and compare; the markov experiment's float32
transformer runs differ by up to about 3e-4 between one and two devices, and its gradient-ascent
long run, which diverges, amplifies that into different numbers after it blows up.
"""

from __future__ import annotations

import os
from typing import Optional

import jax

__all__ = ["ENV", "cpu_cores", "max_devices", "requested_devices", "use_cpu_cores"]

ENV = "NPO_DEVICES"
"""The environment variable that sets the number of CPU devices (``1``: one device, no split)."""


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every OS has affinities
        return os.cpu_count() or 1


def requested_devices() -> Optional[int]:
    """The device count asked for by ``NPO_DEVICES`` (``None`` when it is unset or empty)."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= max_devices():
        raise ValueError(f"{ENV} must be a whole number from 1 to {max_devices()} (1 keeps JAX's single CPU "
                         f"device; more than 8 per core only splits the same cores thinner), got {value!r}")
    return n


def max_devices() -> int:
    """The most CPU devices ``NPO_DEVICES`` may ask for: 8 per core, at least 8."""
    return max(8, 8 * cpu_cores())


def _user_chose() -> bool:
    return jax.config.jax_num_cpu_devices != -1 or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", ""
    )


def use_cpu_cores(n: Optional[int] = None) -> int:
    """Ask JAX for ``n`` CPU devices (default: ``NPO_DEVICES``, else one per core).

    Call it right after ``import jax``, before any JAX array is made. Without an explicit ``n``,
    a choice the user made already (``jax_num_cpu_devices`` or the XLA flag) is kept. Returns
    the number of CPU devices asked for, or 0 when nothing was changed: JAX's backends have
    started (too late to change the count), or the user had chosen.

    Raises:
      ValueError: ``n`` is not a whole number >= 1, or ``NPO_DEVICES`` is not one from 1 to
        :func:`max_devices`.
    """
    explicit = n is not None
    if explicit and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    if not explicit:
        n = requested_devices()
        if n is None:
            if _user_chose():
                return 0
            n = cpu_cores()
    if n == jax.config.jax_num_cpu_devices:
        return n
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX refuses once its backends have started: the count is fixed
        return 0
    return n
