"""README.md stays true: its Python examples run, its two commands are the documented ones."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "README has no python examples"
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)


def test_the_two_commands_are_documented_and_ci_runs_the_test_one():
    bash = re.findall(r"```bash\n(.*?)```", README, re.S)
    commands = [line for block in bash for line in block.strip().splitlines()]
    assert commands[:2] == [
        "pip install -e . && python paper_repro.py",
        'pip install -e ".[test]" && python -m pytest -q',
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[test]"' in ci and "python -m pytest -q" in ci


def test_symbolic_checks_through_the_one_command(tmp_path):
    """`paper_repro.py --only symbolic` in a fresh process: every check passes, files written."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "paper_repro.py", "--only", "symbolic", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "10/10 claims pass" in proc.stdout
    import json

    ids = [c["id"] for c in json.loads((out / "claims.json").read_text())]
    assert ids == [
        "npo.two_forms",
        "prop1.loss_limit",
        "prop1.grad_limit",
        "npo.grad_weight",
        "npo.bounded_below",
        "npo.is_dpo_without_positive",
        "kto.zero_ref_is_npo",
        "logistic.grad",
        "lemma4.ode",
        "thm2.exp_slowdown",
    ]
    assert (out / "report.md").read_text().count("| pass |") == 10
