"""The report of a run: each claim beside what was measured, counted by kind.

:func:`render_report` turns the records of a run (one per experiment: its claims, figures,
tables, errors, time) into ``report.md``; :func:`headline` gives the counts the report and the
console end with, the paper's own claims apart from identities, consistency checks and
extensions. Pure functions of the records: ``paper_repro.py`` writes the files.
"""

from __future__ import annotations

from theory.claims import KINDS, Claim

__all__ = ["KIND_TITLES", "VERDICT_RULE", "verdict_counts", "headline", "render_report"]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


KIND_TITLES = {
    "paper": "Paper claims",
    "extension": "Extensions (beyond the paper)",
    "consistency": "Consistency checks (two implementations or measurements agree)",
    "identity": "Identities (symbolic algebra, checked numerically too)",
}


def verdict_counts(claims: list[Claim]) -> str:
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
        counts = verdict_counts(cs)
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
    unsaved = [r["name"] for r in records if r.get("unsaved")]
    if unsaved:
        lines += [f"**Not saved in: {', '.join(unsaved)}** (the claims are this run's; what could not be written, "
                  "results to the cache or figures, is listed below).", ""]
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
        peak = f", peak memory {r['peak_mb']:.0f} MB" if r.get("peak_mb") else ""
        lines.append(f"- **{r['name']}** ({status}, {r['seconds']:.1f} s{seeds}{peak})")
        for fig in r["figures"]:
            if fig.endswith(".png"):
                lines.append(f"  - ![{fig}]({fig})")
        for err in r["errors"]:
            lines.append(f"  - error: {_cell(err)}")
        for what in r.get("unsaved", []):
            lines.append(f"  - not saved: {_cell(what)}")
    return "\n".join(lines) + "\n"
