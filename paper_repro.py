"""Reproduce the paper with one command: run experiments, draw figures, report each claim.

    python paper_repro.py                 # everything, paper-sized, into results/
    python paper_repro.py --quick         # everything, shrunk, into results/quick/
    python paper_repro.py --only symbolic --only fig4
    python paper_repro.py --list

Each experiment's arrays are cached under the output folder by a hash of its config and of
the code that computes them, so a second run only redraws. The run ends with ``report.md`` (a table: claim, paper reference,
measured, pass/fail) and ``claims.json`` in the output folder. The exit status is non-zero
only if an experiment or a claim check *errors*; a claim that honestly fails is reported
as failed and does not change the exit status.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

from figures import FIGURES
from synthetic.experiments import REGISTRY, Experiment, is_cached, run_cached
from synthetic.store import atomic_write_bytes, atomic_write_text
from theory.claims import Claim

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

    def __init__(self, experiments: list[Experiment], quick: bool, out: Path):
        # quick runs are short, and their times are not the reference's
        self.todo = {} if quick else {
            e.name: e.reference_seconds for e in experiments
            if e.reference_seconds and not is_cached(e, e.config(False), out / "cache")
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
    import matplotlib.pyplot as plt

    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight")
        path = folder / f"{name}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def run_experiment(exp: Experiment, quick: bool, out: Path, progress: Progress) -> dict:
    """Run one experiment end to end; never raises (errors become failed, errored claims)."""
    progress.prefix = f"{exp.name}: "
    t0 = time.perf_counter()
    record = {"name": exp.name, "claims": [], "figures": [], "errors": [], "cached": False}
    try:
        config = exp.config(quick)
        progress("running" if exp.cache else "checking")
        arrays, record["cached"] = run_cached(exp, config, out / "cache", progress)
        if record["cached"]:
            progress("reusing cached results")
        record["claims"] = list(exp.claims(config, arrays))
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
                passed=False,
            )
        )
        traceback.print_exc()
    record["seconds"] = time.perf_counter() - t0
    n_pass = sum(c.passed for c in record["claims"])
    progress(f"done in {record['seconds']:.1f}s: {n_pass}/{len(record['claims'])} claims pass")
    progress.prefix = ""
    return record


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_report(records: list[dict], quick: bool, machine: str = "") -> str:
    """The markdown report: one table of claims, then per-experiment notes (``machine``: what
    the run computed on, for the times)."""
    claims = [c for r in records for c in r["claims"]]
    n_pass = sum(c.passed for c in claims)
    lines = [
        "# Paper claims, reproduced",
        "",
        "Zhang, Lin, Bai, Mei, *Negative Preference Optimization: From Catastrophic Collapse to "
        "Effective Unlearning* (2024), arXiv:2404.05868. Equation, section and figure numbers are the paper's.",
        "",
        f"Mode: {'quick (shrunk experiments)' if quick else 'full'}. "
        f"**{n_pass} of {len(claims)} claims pass.**",
        "",
        "| claim | paper | statement | measured | result |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        verdict = "pass" if c.passed else "**FAIL**"
        lines.append(
            f"| `{c.id}` | {_cell(c.paper_ref)} | {_cell(c.statement)} | {_cell(c.measured)} | {verdict} |"
        )
    lines += ["", "## Experiments", ""] + ([f"Computed with {machine}.", ""] if machine else [])
    for r in records:
        status = "cached" if r["cached"] else "ran"
        lines.append(f"- **{r['name']}** ({status}, {r['seconds']:.1f} s)")
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
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    names = [n.strip() for chunk in (args.only or []) for n in chunk.split(",") if n.strip()]
    for name in names:
        if name not in EXPERIMENTS:
            close = difflib.get_close_matches(name, list(EXPERIMENTS), n=1, cutoff=0.0)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parser.error(f"--only: unknown experiment {name!r}{hint}; allowed: {', '.join(EXPERIMENTS)}")
    args.names = names or list(EXPERIMENTS)
    if args.out is None:
        args.out = Path("results/quick") if args.quick else Path("results")
    return args


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window; set here, not at import
    args = parse_args(argv)
    if args.list:
        for exp in EXPERIMENTS.values():
            print(f"{exp.name:12s} {exp.description}")
        return 0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    machine = devices_line()
    progress(machine)
    time_left = TimeLeft([EXPERIMENTS[n] for n in args.names], args.quick, out)
    records = []
    for name in args.names:
        if (line := time_left.line()) is not None:
            progress(line)
        records.append(run_experiment(EXPERIMENTS[name], args.quick, out, progress))
        time_left.done(name, records[-1]["seconds"], records[-1]["cached"])

    claims = [c for r in records for c in r["claims"]]
    atomic_write_text(out / "claims.json", json.dumps([c.to_json() for c in claims], indent=2) + "\n")
    report = render_report(records, args.quick, machine)
    atomic_write_text(out / "report.md", report)

    width = max((len(c.id) for c in claims), default=10)
    for c in claims:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.id:{width}s}  {c.measured}")
    n_pass = sum(c.passed for c in claims)
    print(f"\n{n_pass}/{len(claims)} claims pass; report: {out / 'report.md'}")
    errored = [r["name"] for r in records if r["errors"]]
    if errored:
        print(f"errors in: {', '.join(errored)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
