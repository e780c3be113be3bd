"""Start a distributed run on this machine: N processes of one script, joined through jax.distributed.

    python -m synthetic.launch -n 2 paper_repro.py --only fig4,fig3
    python -m synthetic.launch -n 2 -m some.module --its-flags

Each process gets the coordinator's address (``127.0.0.1`` and a free port), the number of
processes and its own index in the environment (:data:`synthetic.distributed.ENV_COORDINATOR`
and the others), and, unless ``NPO_DEVICES`` is set, an equal share of this machine's cores as
its CPU devices. Process 0's output is shown as it comes; the others' lines are prefixed with
their index. When one process fails, the launcher stops the others at once (SIGTERM, then
SIGKILL after :data:`GRACE` seconds) and exits with the failed process's status; Ctrl-C stops
them all with status 130.

This is for trying a distributed run and for the tests; on a cluster, the scheduler starts
the processes (``srun`` under SLURM; see ``docs/distributed.md``).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

from synthetic.devices import ENV as DEVICES_ENV, cpu_cores
from synthetic.distributed import ENV_COORDINATOR, ENV_PROCESS_ID, ENV_PROCESSES, MAX_PROCESSES

__all__ = ["free_port", "launch", "main", "split_arguments"]

GRACE = 2.0
"""Seconds the other processes get to exit after SIGTERM, before SIGKILL. Short: a process that
has joined a distributed run does not stop on SIGTERM (JAX takes it as a preemption notice),
and a kill loses nothing (the toolkit's files are only ever renamed into place whole)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _environments(n: int, port: int, base: Optional[dict] = None) -> list[dict]:
    base = dict(os.environ if base is None else base)
    per_process = str(max(1, cpu_cores() // n))
    envs = []
    for i in range(n):
        env = {**base, ENV_COORDINATOR: f"127.0.0.1:{port}", ENV_PROCESSES: str(n), ENV_PROCESS_ID: str(i),
               "PYTHONUNBUFFERED": "1"}
        if not base.get(DEVICES_ENV, "").strip() and "xla_force_host_platform_device_count" not in base.get("XLA_FLAGS", ""):
            env[DEVICES_ENV] = per_process
        envs.append(env)
    return envs


def _relay(stream, prefix: bytes, out) -> None:
    """Copy ``stream``'s lines to ``out`` with ``prefix`` in front of each."""
    for line in iter(stream.readline, b""):
        out.write(prefix + line)
        out.flush()
    stream.close()


def _stop(procs: Sequence[subprocess.Popen], grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(n: int, command: Sequence[str], *, port: Optional[int] = None, grace: float = GRACE,
           env: Optional[dict] = None) -> int:
    """Run ``python command...`` as ``n`` joined processes; their exit status (the first failure's).

    Args:
      n: number of processes, 1 to 4096.
      command: what follows ``python`` (a script and its arguments, or ``-m module ...``).
      port: the coordinator's port (default: a free one).
      grace: seconds between SIGTERM and SIGKILL when the others are stopped.
      env: the environment to start from (default: this process's).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PROCESSES:
        raise ValueError(f"n must be a whole number from 1 to {MAX_PROCESSES}, got {n!r}")
    if not command:
        raise ValueError("command must name a script (or -m module) to run")
    port = free_port() if port is None else port
    out = sys.stdout.buffer
    procs, relays = [], []
    for i, e in enumerate(_environments(n, port, env)):
        p = subprocess.Popen([sys.executable, *command], env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(p)
        t = threading.Thread(target=_relay, args=(p.stdout, b"" if i == 0 else f"[{i}] ".encode(), out), daemon=True)
        t.start()
        relays.append(t)
    status = 0
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, status = failed[0]
                status = status if status > 0 else 128 - status  # killed by a signal: 128 + its number
                running = [p for p in procs if p.poll() is None]
                if running:
                    sys.stderr.write(f"synthetic.launch: process {i} exited with status {status}; stopping the "
                                     f"other {len(running)}\n")
                _stop(procs, grace)
                break
            if all(c == 0 for c in codes):
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        _stop(procs, grace)
        status = 130
    for t in relays:
        t.join(timeout=5)
    return status


_OPTIONS = {"-n": True, "--processes": True, "--port": True, "-h": False, "--help": False}
"""The launcher's own options, and whether each takes a value."""


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(the launcher's options, the command)``: the options come first, and from the first
    other word on everything is the command's (so ``-m module`` and the script's own flags are
    never taken for the launcher's)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _OPTIONS:
            i += 2 if _OPTIONS[word] else 1
        elif word.startswith(("--processes=", "--port=")) or (word.startswith("-n") and word[2:].isdigit()):
            i += 1
        else:
            break
    return list(argv[:i]), list(argv[i:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synthetic.launch",
        description="Run a script as N processes of one jax.distributed run on this machine.",
    )
    parser.add_argument("-n", "--processes", type=int, required=True, metavar="N", help="number of processes")
    parser.add_argument("--port", type=int, default=None, help="the coordinator's port (default: a free one)")
    parser.add_argument("command", nargs="*", help="script.py [its arguments], or -m module [...]")
    own, command = split_arguments(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(own)
    args.command = command
    if not 1 <= args.processes <= MAX_PROCESSES:
        parser.error(f"-n: allowed 1 to {MAX_PROCESSES}, got {args.processes}")
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error(f"--port: allowed 1 to 65535, got {args.port}")
    if not args.command:
        parser.error("name the script to run, e.g. python -m synthetic.launch -n 2 paper_repro.py --quick")
    return launch(args.processes, args.command, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
