"""Many processes, one grid: the toolkit on JAX's own distributed runtime.

``jax.distributed.initialize`` joins processes (on one machine or many) into one set of global
devices; a mesh over them (:func:`synthetic.engine.run_mesh`) then shards a grid's seeds or
settings across processes exactly as it shards them across the devices of one process. On CPUs
the processes talk through gloo (``jax_cpu_collectives_implementation``); on GPUs through
NCCL, with nothing to change here.

How a distributed run works:

* every process runs the same program (``paper_repro.py`` with the same arguments), so every
  process reaches every sharded computation in the same order;
* the engine's outputs are gathered to every process (:func:`to_host`), so the code after a grid
  is the single-process code;
* only process 0 writes (the cache, saved models, figures, the report) and only process 0 reads
  the cache: what it loads is sent to the others (:func:`from_writer`), so the processes always
  agree on what to compute, even when the output folder is not shared between hosts;
* a process that fails stops: it exits at once, and the others are stopped by the launcher
  (:mod:`synthetic.launch`) or, on a cluster, by JAX's heartbeat (:data:`HEARTBEAT_TIMEOUT`);
  nothing waits forever.

A process joins when asked (:func:`requested`): by explicit values, by the environment
variables :data:`ENV_COORDINATOR`, :data:`ENV_PROCESSES`, :data:`ENV_PROCESS_ID` (what the
launcher sets), or by JAX's own cluster detection (SLURM, Open MPI) with ``auto``. A process
that was not asked is a single-process run, unchanged.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Callable, Optional

import numpy as np

__all__ = [
    "ENV_COORDINATOR",
    "ENV_PROCESSES",
    "ENV_PROCESS_ID",
    "INIT_TIMEOUT",
    "HEARTBEAT_TIMEOUT",
    "Cluster",
    "requested",
    "join",
    "is_distributed",
    "is_writer",
    "process_index",
    "process_count",
    "to_host",
    "from_writer",
    "agree",
    "writer_status",
]

ENV_COORDINATOR = "NPO_COORDINATOR"
"""``host:port`` of process 0's coordination service."""
ENV_PROCESSES = "NPO_NUM_PROCESSES"
"""How many processes take part."""
ENV_PROCESS_ID = "NPO_PROCESS_ID"
"""This process's index, ``0 .. NPO_NUM_PROCESSES - 1`` (0 writes the results)."""
INIT_TIMEOUT = 120
"""Seconds a process waits for all the others to join before it gives up with an error."""
HEARTBEAT_TIMEOUT = 30
"""Seconds after which the processes of a run stop, with JAX's error, when one of them has died."""
MAX_PROCESSES = 4096


@dataclasses.dataclass(frozen=True)
class Cluster:
    """How to join: the coordinator's ``host:port``, the number of processes and this one's
    index; or ``auto`` (all three ``None``): JAX finds them (SLURM, Open MPI)."""

    coordinator: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None

    @property
    def auto(self) -> bool:
        return self.coordinator is None


def _whole(value, name: str, minimum: int, maximum: int) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = None
    if n is None or not minimum <= n <= maximum:
        raise ValueError(f"{name} must be a whole number from {minimum} to {maximum}, got {value!r}")
    return n


def _address(value: str, name: str) -> str:
    host, sep, port = str(value).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{name} must be host:port with a port from 1 to 65535, e.g. 10.0.0.1:12355, got {value!r}")
    return f"{host}:{port}"


def requested(coordinator: Optional[str] = None, num_processes=None, process_id=None, *, auto: bool = False,
              environ=None) -> Optional[Cluster]:
    """The distributed run asked for, or ``None`` for a single-process run.

    Explicit values come first, then the environment (:data:`ENV_COORDINATOR`,
    :data:`ENV_PROCESSES`, :data:`ENV_PROCESS_ID`); the three go together. ``auto`` with none of
    them lets JAX detect the cluster (SLURM, Open MPI).

    Raises:
      ValueError: naming the value that is missing or not allowed.
    """
    env = os.environ if environ is None else environ
    given = {
        "coordinator": (coordinator, "--coordinator", ENV_COORDINATOR),
        "num_processes": (num_processes, "--num-processes", ENV_PROCESSES),
        "process_id": (process_id, "--process-id", ENV_PROCESS_ID),
    }
    values, names = {}, {}
    for field, (value, flag, var) in given.items():
        if value is None and str(env.get(var, "")).strip():
            value, flag = env[var], var
        values[field], names[field] = value, flag
    present = [f for f, v in values.items() if v is not None]
    if not present:
        return Cluster() if auto else None
    if len(present) < 3:
        missing = [given[f][1] + " (or " + given[f][2] + ")" for f in values if values[f] is None]
        raise ValueError(f"a distributed run needs the coordinator, the number of processes and the process id "
                         f"together; missing {', '.join(missing)}")
    n = _whole(values["num_processes"], names["num_processes"], 1, MAX_PROCESSES)
    return Cluster(
        coordinator=_address(values["coordinator"], names["coordinator"]),
        num_processes=n,
        process_id=_whole(values["process_id"], names["process_id"], 0, n - 1),
    )


def join(cluster: Cluster, *, init_timeout: int = INIT_TIMEOUT, heartbeat_timeout: int = HEARTBEAT_TIMEOUT) -> None:
    """Join the distributed run ``cluster`` (:func:`jax.distributed.initialize`).

    Call it before any JAX array is made (after :func:`synthetic.devices.use_cpu_cores`, which
    sets this process's own device count). CPU devices talk through gloo. A process that does
    not hear from all the others within ``init_timeout`` seconds fails with JAX's error; once
    running, a process that dies stops the others after ``heartbeat_timeout`` seconds.
    """
    import jax

    if jax.distributed.is_initialized():  # joined already (a script that joined, then calls paper_repro)
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=cluster.coordinator, num_processes=cluster.num_processes, process_id=cluster.process_id,
        initialization_timeout=init_timeout, heartbeat_timeout_seconds=heartbeat_timeout,
    )  # fmt: skip


def process_index() -> int:
    import jax

    return jax.process_index()


def process_count() -> int:
    import jax

    return jax.process_count()


def is_distributed() -> bool:
    """Whether this process is one of several (``jax.process_count() > 1``)."""
    return process_count() > 1


def is_writer() -> bool:
    """Whether this process writes results: process 0, or the only process."""
    return process_index() == 0


def to_host(tree):
    """``tree`` with every array as a numpy array holding its *global* value.

    An array sharded over several processes (not fully addressable) is gathered to every
    process (``process_allgather``); anything else is converted as ``np.asarray`` would.
    """
    import jax
    from jax.experimental import multihost_utils

    def one(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return np.asarray(leaf)

    return jax.tree.map(one, tree)


def _broadcast_bytes(payload: bytes) -> bytes:
    """Process 0's ``payload`` on every process (the others' argument is ignored)."""
    from jax.experimental import multihost_utils

    writer = is_writer()
    if writer and len(payload) >= 2**31:
        raise ValueError(f"cannot send {len(payload)} bytes to the other processes (at most 2 GiB)")
    size = int(multihost_utils.broadcast_one_to_all(np.int32(len(payload) if writer else 0)))
    data = np.frombuffer(payload, np.uint8) if writer else np.zeros(size, np.uint8)
    return np.asarray(multihost_utils.broadcast_one_to_all(data)).tobytes() if size else b""


def agree(flag: bool) -> bool:
    """Process 0's ``flag`` on every process."""
    return _broadcast_bytes(b"\1" if flag else b"\0") == b"\1" if is_distributed() else bool(flag)


def writer_status(status: int) -> int:
    """Process 0's exit status (0 to 255) on every process, so that all of them exit with it."""
    return _broadcast_bytes(bytes([status & 255]))[0] if is_distributed() else status


def from_writer(make: Callable[[], Optional[dict]]) -> Optional[dict]:
    """``make()`` as process 0 computes it, on every process.

    ``make`` returns ``None`` or a (nested) dict of numpy arrays, e.g. results loaded from the
    cache, which only process 0 reads; the others receive them as ``.npz`` bytes and never call
    ``make``. In a single-process run this is ``make()``.
    """
    if not is_distributed():
        return make()
    from synthetic import store

    payload = b""
    if is_writer():
        value = make()
        payload = b"" if value is None else b"npz" + store._npz_bytes(store.flatten_results(value))
    payload = _broadcast_bytes(payload)
    if not payload:
        return None
    with np.load(io.BytesIO(payload[3:]), allow_pickle=False) as npz:
        return store.unflatten_results({k: npz[k] for k in npz.files})
