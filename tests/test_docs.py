"""The architecture page names only paths that exist, and the world template of extending.md
works as the page says: a copy of the toolkit with the template's folder added lists it, runs
it, and reuses its cached results after a claim threshold is edited."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
EXTENDING = (ROOT / "docs" / "extending.md").read_text()


def _tree_paths(block: str) -> list[str]:
    """The paths of a ``text`` tree block: the first word of each line, nested by indentation,
    and the ``*.py`` files a folder's description names (``engine/  loop.py (unlearn), ...``)."""
    paths, stack, folder = [], [], ""  # stack of (indent, folder); folder: the one being described
    for line in block.splitlines():
        word = line.strip().split(" ")[0] if line.strip() else ""
        rest = line.strip()[len(word):]
        if word and re.fullmatch(r"[\w.]+/?", word) and len(line) - len(line.lstrip()) < 25:
            indent = len(line) - len(line.lstrip())
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = "".join(f for _, f in stack) + word
            paths.append(path)
            folder = path if word.endswith("/") else "".join(f for _, f in stack)
            if word.endswith("/"):
                stack.append((indent, word))
        else:
            rest = line  # a continuation line of the description above
        paths += [folder + name for name in re.findall(r"\b(\w+\.py)\b", rest)]
    return paths


def test_every_path_the_architecture_page_names_exists():
    tree = re.search(r"## Layers\n\n```text\n(.*?)```", ARCHITECTURE, re.S).group(1)
    named = _tree_paths(tree)
    named += [p for p in re.findall(r"`([\w./-]+)`", ARCHITECTURE) if "/" in p and not p.startswith(("a/", "http"))]
    assert len(named) > 50 and "synthetic/worlds/tofu_mini/" in named and "synthetic/engine/params.py" in named
    missing = sorted({p for p in named if not (ROOT / p).exists()})
    assert missing == []
    # and the tree is complete: every module of the shared layers, and every world, is on it
    shared = [p.relative_to(ROOT).as_posix() for folder in ("theory", "synthetic", "figures")
              for p in (ROOT / folder).rglob("*.py") if p.name != "__init__.py" and "worlds" not in p.parts]
    worlds = [p.parent.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "synthetic" / "worlds").glob("*/__init__.py")]
    assert sorted(set(shared + worlds) - set(named)) == []


def _project_with_template(tmp_path: Path) -> Path:
    copy = tmp_path / "toolkit"
    copy.mkdir()
    for name in ("theory", "synthetic", "figures"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "paper_repro.py", copy)
    files = re.findall(r"```python (synthetic/worlds/\S+)\n(.*?)```", EXTENDING, re.S)
    assert [Path(p).name for p, _ in files] == ["__init__.py", "data.py", "run.py", "claims.py", "figures.py",
                                                "experiments.py"]
    for path, body in files:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_text(body)
    return copy


def _repro(copy: Path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items() if k != "XLA_FLAGS"}
    return subprocess.run([sys.executable, "paper_repro.py", *args], cwd=copy, capture_output=True, text=True,
                          timeout=300, env={**env, "NPO_DEVICES": "1"})


def test_the_world_template_is_found_run_and_cached(tmp_path):
    copy = _project_with_template(tmp_path)
    listed = _repro(copy, "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert re.search(r"^myworld_race\s+myworld\s", listed.stdout, re.M)
    first = _repro(copy, "--only", "myworld_race", "--quick", "--out", "out")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "computing (nothing cached yet)" in first.stderr
    (claim,) = json.loads((copy / "out" / "claims.json").read_text())
    assert claim["id"] == "myworld.npo_slower" and claim["verdict"] == "pass"
    ratio = claim["interval"]["NPO / GA final distance"]
    assert 0 < ratio["high"] < 0.5  # NPO's parameters stay far closer to the reference than GA's
    assert (copy / "out" / "figures" / "myworld_race.png").stat().st_size > 10_000
    # a threshold edit recomputes nothing; the claim is decided again on the cached arrays
    claims = copy / "synthetic" / "worlds" / "myworld" / "claims.py"
    claims.write_text(claims.read_text().replace("RATIO_MAX = 0.5", "RATIO_MAX = 0.01"))
    second = _repro(copy, "--only", "myworld_race", "--quick", "--out", "out")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing cached results" in second.stderr and "computing" not in second.stderr
    (claim,) = json.loads((copy / "out" / "claims.json").read_text())
    assert claim["verdict"] == "fail" and claim["interval"]["NPO / GA final distance"]["high"] == ratio["high"]
