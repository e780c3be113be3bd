"""Reproduce the paper with one command: run experiments, draw figures, report each claim.

    python paper_repro.py                 # everything, paper-sized, into results/
    python paper_repro.py --quick         # everything, shrunk, into results/quick/
    python paper_repro.py --only symbolic --only fig4
    python paper_repro.py --seeds 10              # firmer verdicts (default 5 seeds)
    python paper_repro.py --list
    python -m synthetic.launch -n 2 paper_repro.py --only fig4   # as 2 joined processes (docs/distributed.md)

Each experiment's arrays are cached under the output folder by a hash of its config and of
the code that computes them, so a second run only redraws. The run ends with ``report.md``
and ``claims.json`` in the output folder: every claim with its kind (paper, extension,
consistency, identity), what was measured with its interval over seeds, and a verdict
(pass, fail, inconclusive); the headline counts the paper's claims apart. The exit status is
non-zero only if an experiment or a claim check *errors*; a claim that honestly fails is
reported as failed and does not change the exit status.
"""

from __future__ import annotations

import signal

if __name__ == "__main__":
    # Before any import starts a thread (JAX's and XLA's do): every thread inherits this mask, so
    # Ctrl-C reaches only the thread that waits for it (see _stop_on_interrupt).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    import sys

    from synthetic.devices import use_cpu_cores

    try:  # before any JAX array exists: one CPU device per core (NPO_DEVICES=N asks for N)
        use_cpu_cores()
    except ValueError as e:
        print(f"paper_repro.py: error: {e}", file=sys.stderr)
        sys.exit(2)

import argparse
import difflib
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

from figures.files import save_figure
from synthetic import distributed
from synthetic.compile_cache import use_compilation_cache
from synthetic.experiment import Experiment, is_cached, run_cached, seeds_of, with_seeds
from synthetic.memory import peak_mb, release, reset_peak
from synthetic.registry import experiments
from synthetic.report import headline, render_report, verdict_counts
from synthetic.store import COMMIT_LOCK, PENDING_WRITES, atomic_write_files, one_line, write_problem
from theory.claims import KINDS, Claim

DEFAULT_SEEDS = 5
"""Seeds of every seed-based experiment in a full run (``--seeds`` changes it; ``--quick`` uses 2)."""
RESULTS_WRITTEN = threading.Event()
"""Set once this run's claims.json and report.md are in place (what Ctrl-C reports)."""

MAX_SEEDS = 1000
"""The most ``--seeds`` accepts: 1000 seeds of markov alone would take days on a laptop."""

EXPERIMENTS: dict[str, Experiment] = dict(experiments())
"""The experiments this command runs (every world's, in the registry's order)."""


# --------------------------------------------------------------------------- running


class Progress:
    """Prints ``[elapsed] experiment: message`` lines to stderr."""

    def __init__(self, stream=sys.stderr):
        self.t0 = time.perf_counter()
        self.stream = stream
        self.prefix = ""

    def __call__(self, msg: str) -> None:
        if self.stream is not None:  # None: a distributed run's other processes, which stay quiet
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {self.prefix}{msg}", file=self.stream, flush=True)


class TimeLeft:
    """The time left of a run: each experiment still to run uncached takes its
    ``reference_seconds`` (the README's machine) times this machine's pace so far (the ratio of
    measured to reference seconds over the experiments run uncached; 1 before the first)."""

    def __init__(self, configs: dict[str, tuple[Experiment, dict]], quick: bool, out: Path):
        # quick runs are short, and their times are not the reference's
        self.todo = {} if quick else {
            name: e.reference_seconds * _seed_scale(c, e.config(False)) for name, (e, c) in configs.items()
            if e.reference_seconds and not is_cached(e, c, out / "cache")
        }  # fmt: skip
        self.measured = self.reference = 0.0

    def done(self, name: str, seconds: float, cached: bool) -> None:
        ref = self.todo.pop(name, None)
        if ref and not cached:
            self.measured += seconds
            self.reference += ref

    @property
    def pace(self) -> float:
        return self.measured / self.reference if self.reference else 1.0

    def line(self) -> Optional[str]:
        """``"about N min left ..."``, or None when nothing uncached is left."""
        left = self.pace * sum(self.todo.values())
        if not left:
            return None
        basis = f"at {self.pace:.2g}x the reference times so far" if self.reference else "at the reference times"
        return f"about {_duration(left)} left ({', '.join(self.todo)}; {basis})"


def _seed_scale(config: dict, reference: dict) -> float:
    """How much longer than the reference (the experiment's own full config, whose time
    ``reference_seconds`` is) a config's runs take, roughly: the ratio of their seeds."""
    seeds, base = seeds_of(config), seeds_of(reference)
    return max(seeds) / max(base) if seeds and base else 1.0


def experiment_config(exp: Experiment, quick: bool, seeds: Optional[int] = None) -> dict:
    """``exp``'s config: full or quick, with ``seeds`` seeds if given (:func:`with_seeds`)."""
    config = exp.config(quick)
    return with_seeds(config, seeds) if seeds is not None else config


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def devices_line() -> str:
    """What JAX computes on, e.g. ``"JAX 0.10.2 on 2 cpu devices (one per core; ...)"``."""
    import jax

    from synthetic.devices import ENV, cpu_cores

    devs = jax.devices()
    line = f"JAX {jax.__version__} on {len(devs)} {devs[0].platform} device{'s' if len(devs) > 1 else ''}"
    if jax.process_count() > 1:
        return line + f" in {jax.process_count()} processes ({len(jax.local_devices())} here)"
    if devs[0].platform == "cpu":
        line += f" ({cpu_cores()} cores; {ENV}=N sets the device count)"
    return line


def run_experiment(exp: Experiment, config: dict, out: Path, progress: Progress) -> dict:
    """Run one experiment on ``config`` end to end; never raises (errors become failed,
    errored claims)."""
    progress.prefix = f"{exp.name}: "
    reset_peak()  # the peak memory reported is this experiment's (where the system can tell)
    t0 = time.perf_counter()
    seeds = seeds_of(config)
    record = {"name": exp.name, "claims": [], "figures": [], "errors": [], "unsaved": [], "cached": False,
              "tables": {}, "seeds": max(seeds) if seeds else None}
    try:
        progress("running" if exp.cache else "checking")
        try:
            arrays, record["cached"] = run_cached(exp, config, out / "cache", progress, record["unsaved"].append)
        except Exception as e:
            if distributed.is_distributed():  # the other processes may wait for this one: stop them all
                _stop_distributed_run(exp.name, e)
            raise
        if not distributed.is_writer():  # the other processes compute; process 0 decides, draws and writes
            record["seconds"] = time.perf_counter() - t0
            return record
        if record["cached"]:
            progress("reusing cached results")
        record["claims"] = list(exp.function("claims")(config, arrays))
        tables, draw = exp.function("tables"), exp.function("figures")
        record["tables"] = dict(tables(config, arrays)) if tables else {}
        for fig_name, fig in (draw(config, arrays) if draw else {}).items():
            try:
                record["figures"] += [str(p.relative_to(out)) for p in save_figure(fig, out / "figures", fig_name)]
            except OSError as err:  # a full disk: the claims stand, the figure is missing
                record["unsaved"].append(f"figure {fig_name} not written: {one_line(err)}")
                progress(record["unsaved"][-1])
    except Exception as e:  # report, keep going with the other experiments
        record["errors"].append(f"{type(e).__name__}: {e}")
        record["claims"].append(
            Claim(
                id=f"{exp.name}.error",
                paper_ref="-",
                statement=f"experiment {exp.name} runs to completion",
                measured=f"ERROR {type(e).__name__}: {e}",
                verdict="fail",
                kind="consistency",
            )
        )
        traceback.print_exc()
    record["seconds"] = time.perf_counter() - t0
    record["peak_mb"] = peak_mb()
    progress(f"done in {record['seconds']:.1f}s, peak memory {record['peak_mb']:.0f} MB: "
             f"{verdict_counts(record['claims'])}")
    progress.prefix = ""
    return record


def _stop_distributed_run(name: str, err: BaseException) -> None:
    """End this process of a distributed run at once, with the error: the others are stopped by
    the launcher, or by JAX when this process's heartbeat stops; none of them waits forever."""
    traceback.print_exc()
    print(f"paper_repro.py: error: process {distributed.process_index()}: {name} failed ({type(err).__name__}: "
          f"{err}); stopping the distributed run", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this experiment (repeatable, or comma-separated); see --list",
    )
    parser.add_argument("--quick", action="store_true", help="shrunk experiments (seconds, for tests and CI)")
    parser.add_argument("--out", default=None, help="output folder (default results/, or results/quick/ with --quick)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help=f"seeds of every seed-based experiment (default {DEFAULT_SEEDS}; 2 with --quick); "
                        "the intervals of the verdicts are over these seeds")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    cluster = parser.add_argument_group(
        "distributed run", "join other processes through jax.distributed (python -m synthetic.launch -n N "
        f"starts N on this machine; {distributed.ENV_COORDINATOR}, {distributed.ENV_PROCESSES} and "
        f"{distributed.ENV_PROCESS_ID} do the same as the flags)")
    cluster.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (it listens there)")
    cluster.add_argument("--num-processes", metavar="N", help="how many processes take part")
    cluster.add_argument("--process-id", metavar="I", help="this process's index, 0 to N-1 (0 writes the results)")
    cluster.add_argument("--distributed", action="store_true",
                         help="join a run that JAX finds by itself (under SLURM's srun or Open MPI's mpirun)")
    args = parser.parse_args(argv)
    try:
        args.cluster = distributed.requested(args.coordinator, args.num_processes, args.process_id,
                                             auto=args.distributed)
    except ValueError as e:
        parser.error(str(e))
    if args.seeds is not None and not 2 <= args.seeds <= MAX_SEEDS:
        parser.error(f"--seeds: allowed 2 to {MAX_SEEDS} (at least 2 for an interval over seeds), got {args.seeds}")
    if args.out is not None:
        if not args.out.strip():  # Path("") is the current folder: results would land among the code
            parser.error("--out: an empty name; name a folder, e.g. --out results")
        args.out = Path(args.out)
    names = []
    for chunk in args.only or []:
        for n in chunk.split(","):
            if not n.strip():
                parser.error(f"--only: empty experiment name in {chunk!r}; allowed: {', '.join(EXPERIMENTS)}")
            if n.strip() not in names:  # each experiment runs once, in the order first named
                names.append(n.strip())
    for name in names:
        if name not in EXPERIMENTS:
            close = difflib.get_close_matches(name, list(EXPERIMENTS), n=1, cutoff=0.0)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parser.error(f"--only: unknown experiment {name!r}{hint}; allowed: {', '.join(EXPERIMENTS)}")
    args.names = names or list(EXPERIMENTS)
    if args.out is None:
        args.out = Path("results/quick") if args.quick else Path("results")
    return args


def output_problem(out: Path) -> Optional[str]:
    """Why results cannot be written under ``out`` (``None`` if they can): checked before any
    work, by creating the folder (and its ``cache``, ``figures``) and a file in each."""
    for folder in (out, out / "cache", out / "figures"):
        if (problem := write_problem(folder)) is not None:
            return problem
    for name in ("claims.json", "report.md"):  # found at the end, the run's work would be lost
        if (out / name).is_dir():
            return f"{out / name} is a folder; the run writes its results there as a file"
    return None


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window; set here, not at import
    args = parse_args(argv)
    if args.list:
        for exp in EXPERIMENTS.values():
            print(f"{exp.name:17s} {exp.world:10s} {exp.description}")
        return 0
    out: Path = args.out
    if args.cluster is not None:
        try:
            distributed.join(args.cluster)
        except Exception as e:  # JAX's own error: unreachable coordinator, a timeout, a taken port
            print(f"paper_repro.py: error: could not join the distributed run: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
    writer = distributed.is_writer()
    # before any work: a run must not end unable to write its results (process 0 writes them)
    problem = output_problem(out) if writer else None
    if not distributed.agree(problem is None):
        print(f"paper_repro.py: error: --out: {problem}" if writer else
              "paper_repro.py: error: --out: process 0 cannot write there (see its message)", file=sys.stderr)
        return 2
    progress = Progress() if writer else Progress(stream=None)
    machine = devices_line()
    progress(machine)
    if writer and use_compilation_cache(out / "cache" / "jax"):  # a rerun loads the compiled programs
        progress(f"compiled programs are kept in {out / 'cache' / 'jax'} (delete it to compile afresh)")
    configs = {n: (EXPERIMENTS[n], experiment_config(EXPERIMENTS[n], args.quick, args.seeds)) for n in args.names}
    time_left = TimeLeft(configs, args.quick or not writer, out)
    records = []
    for name, (exp, config) in configs.items():
        if (line := time_left.line()) is not None:
            progress(line)
        records.append(run_experiment(exp, config, out, progress))
        time_left.done(name, records[-1]["seconds"], records[-1]["cached"])
        release()  # one experiment's compiled programs and freed heap do not add to the next one's

    if not writer:  # process 0 writes and reports; this one exits with its status
        return distributed.writer_status(0)
    status = _finish(records, args, out, machine)
    return distributed.writer_status(status)


def _finish(records: list[dict], args: argparse.Namespace, out: Path, machine: str) -> int:
    """Write claims.json and report.md, print the verdicts; the exit status."""
    claims = [c for r in records for c in r["claims"]]
    report = render_report(records, args.quick, machine)
    # both files of the run at once: never one from this run beside the other from the last
    try:
        atomic_write_files({out / "claims.json": json.dumps([c.to_json() for c in claims], indent=2) + "\n",
                            out / "report.md": report})
        RESULTS_WRITTEN.set()
    except OSError as err:  # a disk filled during the run: the verdicts still reach the console
        not_written = one_line(err)
    else:
        not_written = None

    width = max((len(c.id) for c in claims), default=10)
    for kind in KINDS:
        for c in (c for c in claims if c.kind == kind):
            print(f"{c.verdict.upper():12s} {kind:11s} {c.id:{width}s}  {c.measured}")
    print()
    for line in headline(claims):
        print(line)
    errored = [r["name"] for r in records if r["errors"]]
    unsaved = [f"{r['name']}: {what}" for r in records for what in r["unsaved"]]
    if not_written:
        print(f"paper_repro.py: could not write claims.json and report.md ({not_written}); the verdicts above are "
              f"this run's, and {out} keeps the previous run's files", file=sys.stderr)
    else:
        print(f"report: {out / 'report.md'}")
    for line in unsaved:
        print(f"not saved: {line}", file=sys.stderr)
    if errored:
        print(f"errors in: {', '.join(errored)}", file=sys.stderr)
    return 1 if errored or unsaved or not_written else 0



INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as a shell reports a process that SIGINT ended)."""


def _stop_on_interrupt() -> None:
    """Make Ctrl-C stop the run at once, with a message and exit status 130.

    SIGINT is blocked in every thread (the block at the top of this file comes before any
    import starts one; it is repeated here for a caller that imports this module) and received
    by one waiting thread, which prints the message and ends the process with ``os._exit``. A
    Python ``KeyboardInterrupt`` would wait until a jitted computation returns (minutes) or
    land in JAX's own threads mid-call. Files are only ever
    written whole and renamed into place (:func:`synthetic.store.atomic_write_bytes`), so the
    output folder keeps what it held; a half-written temporary file is removed.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def wait():
        signal.sigwait({signal.SIGINT})
        with COMMIT_LOCK:  # claims.json and report.md being moved in: let both land first
            done = "this run's claims.json and report.md were written" if RESULTS_WRITTEN.is_set() else (
                "claims.json and report.md are the previous run's")
            sys.stderr.write(f"\ninterrupted (Ctrl-C): stopped; {done}\n")
            sys.stderr.flush()
            remove_partial_writes()
            os._exit(INTERRUPTED)

    threading.Thread(target=wait, name="ctrl-c", daemon=True).start()


def remove_partial_writes() -> None:
    """Delete the temporary files of writes still in progress (see :func:`_stop_on_interrupt`)."""
    for tmp in list(PENDING_WRITES):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _quiet_console() -> None:
    """Print what the console cannot encode as escapes (``PYTHONIOENCODING=ascii`` and a
    non-ASCII ``--out``) instead of failing after the results are written."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


if __name__ == "__main__":
    _stop_on_interrupt()
    _quiet_console()
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, as a command-line tool does; Python
        # would otherwise print a traceback, and another one when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
