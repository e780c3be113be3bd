"""Reproduce the paper with one command: run experiments, draw figures, report each claim.

    python paper_repro.py                 # everything, paper-sized, into results/
    python paper_repro.py --quick         # everything, shrunk, into results/quick/
    python paper_repro.py --only symbolic --only fig4
    python paper_repro.py --seeds 10              # firmer verdicts (default 5 seeds)
    python paper_repro.py --list

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

import argparse
import difflib
import io
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

from figures import FIGURES
from synthetic.experiments import REGISTRY, Experiment, is_cached, run_cached, seeds_of, with_seeds
from synthetic.store import PENDING_WRITES, atomic_write_bytes, atomic_write_text
from theory.claims import KINDS, Claim

DEFAULT_SEEDS = 5
"""Seeds of every seed-based experiment in a full run (``--seeds`` changes it; ``--quick`` uses 2)."""

EXPERIMENTS: dict[str, Experiment] = dict(REGISTRY)
"""The experiments this command runs (the registry's, in its order)."""


# --------------------------------------------------------------------------- running


class Progress:
    """Prints ``[elapsed] experiment: message`` lines to stderr."""

    def __init__(self, stream=sys.stderr):
        self.t0 = time.perf_counter()
        self.stream = stream
        self.prefix = ""

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {self.prefix}{msg}", file=self.stream, flush=True)


class TimeLeft:
    """The time left of a run: each experiment still to run uncached takes its
    ``reference_seconds`` (the README's machine) times this machine's pace so far (the ratio of
    measured to reference seconds over the experiments run uncached; 1 before the first)."""

    def __init__(self, configs: dict[str, tuple[Experiment, dict]], quick: bool, out: Path):
        # quick runs are short, and their times are not the reference's
        self.todo = {} if quick else {
            name: e.reference_seconds * _seed_scale(c) for name, (e, c) in configs.items()
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


def _seed_scale(config: dict) -> float:
    """How much longer than the reference (5 seeds) a config's runs take, roughly."""
    seeds = seeds_of(config)
    return max(seeds) / DEFAULT_SEEDS if seeds else 1.0


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
    if devs[0].platform == "cpu":
        line += f" ({cpu_cores()} cores; {ENV}=N sets the device count)"
    return line


def _save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write a figure as ``name.png`` and ``name.pdf``, or an animation as ``name.gif``."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    if isinstance(fig, animation.Animation):
        # Pillow writes to a file name: write beside, then move in atomically like every result.
        with tempfile.TemporaryDirectory() as tmp:
            gif = Path(tmp) / f"{name}.gif"
            fig.save(gif, writer=animation.PillowWriter(fps=round(1000 / getattr(fig, "_interval", 100))))
            atomic_write_bytes(folder / gif.name, gif.read_bytes())
        plt.close(fig._fig)
        return [folder / gif.name]
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight")
        path = folder / f"{name}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def run_experiment(exp: Experiment, config: dict, out: Path, progress: Progress) -> dict:
    """Run one experiment on ``config`` end to end; never raises (errors become failed,
    errored claims)."""
    progress.prefix = f"{exp.name}: "
    t0 = time.perf_counter()
    seeds = seeds_of(config)
    record = {"name": exp.name, "claims": [], "figures": [], "errors": [], "cached": False, "tables": {},
              "seeds": max(seeds) if seeds else None}
    try:
        progress("running" if exp.cache else "checking")
        arrays, record["cached"] = run_cached(exp, config, out / "cache", progress)
        if record["cached"]:
            progress("reusing cached results")
        record["claims"] = list(exp.claims(config, arrays))
        record["tables"] = dict(exp.tables(config, arrays)) if exp.tables else {}
        draw = FIGURES.get(exp.name, lambda config, arrays: {})
        for fig_name, fig in draw(config, arrays).items():
            record["figures"] += [str(p.relative_to(out)) for p in _save_figure(fig, out / "figures", fig_name)]
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
    progress(f"done in {record['seconds']:.1f}s: {_verdict_counts(record['claims'])}")
    progress.prefix = ""
    return record


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


KIND_TITLES = {
    "paper": "Paper claims",
    "extension": "Extensions (beyond the paper)",
    "consistency": "Consistency checks (two implementations or measurements agree)",
    "identity": "Identities (symbolic algebra, checked numerically too)",
}


def _verdict_counts(claims: list[Claim]) -> str:
    """``"3 of 5 pass (1 fail, 1 inconclusive)"``."""
    n = {v: sum(c.verdict == v for c in claims) for v in ("pass", "fail", "inconclusive")}
    rest = [f"{n[v]} {v}" for v in ("fail", "inconclusive") if n[v]]
    return f"{n['pass']} of {len(claims)} pass" + (f" ({', '.join(rest)})" if rest else "")


def headline(claims: list[Claim]) -> list[str]:
    """The report's counts, the paper's claims first and apart: e.g.
    ``["Paper claims reproduced: 9 of 14 (3 fail, 2 inconclusive)", "Extensions: ..."]``."""
    by_kind = {k: [c for c in claims if c.kind == k] for k in KINDS}
    lines = []
    for kind in KINDS:
        cs = by_kind[kind]
        if not cs:
            continue
        counts = _verdict_counts(cs)
        if kind == "paper":
            lines.append("Paper claims reproduced: " + counts.replace(" pass", "", 1))
        else:
            lines.append(f"{KIND_TITLES[kind].split(' (')[0]}: {counts}")
    return lines


def _seeds_line(records: list[dict]) -> str:
    seeded = {}
    for r in records:
        if r.get("seeds"):
            seeded.setdefault(r["seeds"], []).append(r["name"])
    fixed = [r["name"] for r in records if not r.get("seeds")]
    parts = [f"{n} ({', '.join(names)})" for n, names in seeded.items()]
    line = "Seeds: " + "; ".join(parts) if parts else "Seeds: none"
    if fixed:
        line += f"; deterministic, no seeds: {', '.join(fixed)}"
    return line + "."


VERDICT_RULE = (
    "Each claim's statement says how it is decided and where each threshold comes from. A decision on "
    "seed-mean curves carries a 95% percentile-bootstrap interval over seeds, printed as `estimate [low, high]`: "
    "it **passes** when the whole interval clears the threshold, **fails** when the whole interval misses it, and "
    "is **inconclusive** when the interval contains the threshold (the seeds cannot tell; more seeds, "
    "`--seeds N`, may). With 5 seeds such intervals are narrow for their level (about 83% coverage for a plain "
    "mean), so an inconclusive verdict is a real tie, not caution."
)


def render_report(records: list[dict], quick: bool, machine: str = "") -> str:
    """The markdown report: the counts by kind, one table per kind, the notes, then the
    experiments (``machine``: what the run computed on, for the times)."""
    claims = [c for r in records for c in r["claims"]]
    lines = [
        "# Paper claims, reproduced",
        "",
        "Zhang, Lin, Bai, Mei, *Negative Preference Optimization: From Catastrophic Collapse to "
        "Effective Unlearning* (2024), arXiv:2404.05868. Equation, section and figure numbers are the paper's.",
        "",
        f"Mode: {'quick (shrunk experiments)' if quick else 'full'}. {_seeds_line(records)}",
        "",
    ]
    heads = headline(claims)
    if heads:
        lines += [f"**{heads[0]}.**", ""] + [f"- {h}" for h in heads[1:]] + [""]
    errored = [r["name"] for r in records if r["errors"]]
    if errored:
        lines += [f"**Errors in: {', '.join(errored)}** (their claims are missing; see the experiments below).", ""]
    lines += [VERDICT_RULE, ""]
    for kind in KINDS:
        cs = [c for c in claims if c.kind == kind]
        if not cs:
            continue
        lines += [f"## {KIND_TITLES[kind]}", "", "| claim | paper | statement | measured | verdict |", "|---|---|---|---|---|"]
        for c in cs:
            verdict = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "*inconclusive*"}[c.verdict]
            lines.append(f"| `{c.id}` | {_cell(c.paper_ref)} | {_cell(c.statement)} | {_cell(c.measured)} | {verdict} |")
        lines.append("")
    notes = [c for c in claims if c.note]
    if notes:
        lines += ["## Notes", ""] + [f"- `{c.id}`: {_cell(c.note)}" for c in notes] + [""]
    for r in records:
        for title, text in r.get("tables", {}).items():
            lines += [f"## {title} ({r['name']})", "", text, ""]
    lines += ["## Experiments", ""] + ([f"Computed with {machine}.", ""] if machine else [])
    for r in records:
        status = "cached" if r["cached"] else "ran"
        seeds = f", {r['seeds']} seeds" if r.get("seeds") else ""
        lines.append(f"- **{r['name']}** ({status}, {r['seconds']:.1f} s{seeds})")
        for fig in r["figures"]:
            if fig.endswith(".png"):
                lines.append(f"  - ![{fig}]({fig})")
        for err in r["errors"]:
            lines.append(f"  - error: {_cell(err)}")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this experiment (repeatable, or comma-separated); see --list",
    )
    parser.add_argument("--quick", action="store_true", help="shrunk experiments (seconds, for tests and CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default results/, or results/quick/ with --quick)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help=f"seeds of every seed-based experiment (default {DEFAULT_SEEDS}; 2 with --quick); "
                        "the intervals of the verdicts are over these seeds")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 2:
        parser.error(f"--seeds: need at least 2 seeds for an interval over seeds, got {args.seeds}")
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
        if folder.exists() and not folder.is_dir():
            return f"{folder} exists and is not a folder"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            return f"cannot write to {folder}: {e.strerror or e}"
    return None


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window; set here, not at import
    args = parse_args(argv)
    if args.list:
        for exp in EXPERIMENTS.values():
            print(f"{exp.name:12s} {exp.description}")
        return 0
    out: Path = args.out
    problem = output_problem(out)  # before any work: a run must not end unable to write its results
    if problem:
        print(f"paper_repro.py: error: --out: {problem}", file=sys.stderr)
        return 2
    progress = Progress()
    machine = devices_line()
    progress(machine)
    configs = {n: (EXPERIMENTS[n], experiment_config(EXPERIMENTS[n], args.quick, args.seeds)) for n in args.names}
    time_left = TimeLeft(configs, args.quick, out)
    records = []
    for name, (exp, config) in configs.items():
        if (line := time_left.line()) is not None:
            progress(line)
        records.append(run_experiment(exp, config, out, progress))
        time_left.done(name, records[-1]["seconds"], records[-1]["cached"])

    claims = [c for r in records for c in r["claims"]]
    atomic_write_text(out / "claims.json", json.dumps([c.to_json() for c in claims], indent=2) + "\n")
    report = render_report(records, args.quick, machine)
    atomic_write_text(out / "report.md", report)

    width = max((len(c.id) for c in claims), default=10)
    for kind in KINDS:
        for c in (c for c in claims if c.kind == kind):
            print(f"{c.verdict.upper():12s} {kind:11s} {c.id:{width}s}  {c.measured}")
    print()
    for line in headline(claims):
        print(line)
    print(f"report: {out / 'report.md'}")
    errored = [r["name"] for r in records if r["errors"]]
    if errored:
        print(f"errors in: {', '.join(errored)}", file=sys.stderr)
        return 1
    return 0


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
        sys.stderr.write("\ninterrupted (Ctrl-C): stopped; results written before are unchanged\n")
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


if __name__ == "__main__":
    _stop_on_interrupt()
    sys.exit(main())
