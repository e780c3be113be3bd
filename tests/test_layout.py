"""The layout the cache and the registry rely on: worlds discovered in order, each experiment's
cache key covering its own world's run code and nothing that only decides or draws, worlds
independent of each other, and theory independent of everything."""

import ast
import importlib
import shutil
import sys
from pathlib import Path

import pytest

from synthetic import registry, store
from synthetic.experiment import Experiment, code_version, resolve
from synthetic.registry import WORLD_ORDER, experiments, worlds

ROOT = Path(__file__).resolve().parents[1]
WORLDS = ROOT / "synthetic" / "worlds"
GUIDED_TOUR = {"tutorial": {"section4", "thm2", "tofu_mini"}}
"""The one world allowed to import others: the tutorial, a guided tour of these."""


def _string_runs() -> list[str]:
    """The registry's experiments whose run is a reference (the symbolic checks' is a callable)."""
    return [name for name, exp in experiments().items() if isinstance(exp.run, str)]


def _run_module(exp: Experiment) -> str:
    return importlib.util.resolve_name(exp.run.partition(":")[0], exp.package)


# --------------------------------------------------------------------------- (a) the registry


def test_the_registry_finds_every_world_in_order():
    on_disk = sorted(p.name for p in WORLDS.iterdir() if (p / "experiments.py").is_file())
    assert worlds() == list(WORLD_ORDER) and sorted(WORLD_ORDER) == on_disk
    exps = experiments()
    order = [WORLD_ORDER.index(e.world) for e in exps.values()]
    assert order == sorted(order) and set(e.world for e in exps.values()) == set(WORLD_ORDER)
    # every name once, across the worlds' own declarations (the registry's dict would hide a twin)
    declared = [e.name for w in WORLD_ORDER for e in importlib.import_module(f"synthetic.worlds.{w}.experiments").EXPERIMENTS]
    assert len(declared) == len(set(declared)) and declared == list(exps)
    assert {"symbolic", "fig4", "fig9", "fig3", "gridsearch", "thm2", "markov", "tofu_mini_models", "tofu_mini",
            "tutorial"} <= set(exps)


def test_each_experiment_belongs_to_its_worlds_package_and_its_references_resolve():
    for name, exp in experiments().items():
        assert exp.package == f"synthetic.worlds.{exp.world}" and exp.world == exp.package.rsplit(".", 1)[-1], name
        own = importlib.import_module(f"{exp.package}.experiments").EXPERIMENTS
        assert name in [e.name for e in own], name
        for field in ("run", "claims", "figures", "tables"):
            ref = getattr(exp, field)
            if isinstance(ref, str):
                fn = exp.function(field)
                assert callable(fn), (name, field)
                # a relative reference names a module of the experiment's own world
                assert not ref.startswith(".") or fn.__module__.startswith(exp.package + "."), (name, field, ref)
            elif ref is None:
                assert exp.function(field) is None
    assert experiments()["thm2"].function("run") is resolve("synthetic.worlds.thm2.run:run_thm2")


@pytest.mark.parametrize(
    "ref, package, named",
    [
        ("run_thm2", "synthetic.worlds.thm2", "'run_thm2'"),  # no module part
        (".run:", "synthetic.worlds.thm2", "'.run:'"),  # no function part
        (":run_thm2", "synthetic.worlds.thm2", "':run_thm2'"),
        (".run:run_thm2", None, "'.run:run_thm2'"),  # relative, but to no package
        (".run:no_such_function", "synthetic.worlds.thm2", "'no_such_function'"),
        (".run:SETTINGS", "synthetic.worlds.thm2", "'SETTINGS'"),  # a name, but not a function
    ],
)
def test_a_bad_reference_is_refused_by_name(ref, package, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        resolve(ref, package)


def test_the_registry_refuses_a_twin_name_and_orders_unlisted_worlds_by_name(tmp_path, monkeypatch):
    """Worlds of a package of fake worlds: ``zeta`` and ``alpha`` are not in WORLD_ORDER (they follow
    it, by name), ``thm2`` is; a twin name across two worlds is refused naming both."""
    pkg = tmp_path / "fake_worlds_layout"
    decl = 'from synthetic.experiment import Experiment\nEXPERIMENTS = (Experiment("{n}", "d", lambda q: {{}}, ".run:f", ".run:f"),)\n'
    for world, name in (("zeta", "z"), ("alpha", "a"), ("thm2", "t"), ("_private", "p")):
        (pkg / world).mkdir(parents=True)
        (pkg / world / "__init__.py").write_text("")
        (pkg / world / "experiments.py").write_text(decl.format(n=name))
    (pkg / "no_experiments").mkdir()
    (pkg / "no_experiments" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PACKAGE", "fake_worlds_layout")
    registry.experiments.cache_clear()
    try:
        assert registry.worlds() == ["thm2", "alpha", "zeta"]
        assert [(e.name, e.world) for e in registry.experiments().values()] == [("t", "thm2"), ("a", "alpha"), ("z", "zeta")]
        registry.experiments.cache_clear()
        (pkg / "zeta" / "experiments.py").write_text(decl.format(n="a"))
        sys.modules.pop("fake_worlds_layout.zeta.experiments", None)
        with pytest.raises(ValueError, match="'a' is declared by worlds 'alpha' and 'zeta'"):
            registry.experiments()
        registry.experiments.cache_clear()
        (pkg / "zeta" / "experiments.py").write_text("EXPERIMENTS = ['not', 'records']\n")
        sys.modules.pop("fake_worlds_layout.zeta.experiments", None)
        with pytest.raises(ValueError, match=r"fake_worlds_layout\.zeta\.experiments\.EXPERIMENTS must be a tuple"):
            registry.experiments()
    finally:
        monkeypatch.undo()
        registry.experiments.cache_clear()  # the real registry again for every later test
        for mod in [m for m in sys.modules if m.startswith("fake_worlds_layout")]:
            del sys.modules[mod]
    assert "fig4" in registry.experiments()


# --------------------------------------------------------------------------- (b) what a cache key covers


@pytest.mark.parametrize("name", _string_runs())
def test_the_cache_key_covers_the_worlds_run_code_and_nothing_that_decides_or_draws(name):
    exp = experiments()[name]
    module = _run_module(exp)
    files = {p.relative_to(ROOT).as_posix() for p in store.fingerprint_files([module])}
    assert module.replace(".", "/") + ".py" in files  # its own world's run module
    assert f"synthetic/worlds/{exp.world}/__init__.py" in files
    # What only decides, draws, reports or registers never recomputes arrays (theory/claims.py, the
    # Claim record that theory/__init__ imports, included: store.DECIDES_ONLY).
    deciding = {f for f in files if f.startswith(("synthetic/", "theory/"))
                and f.rsplit("/", 1)[-1] in ("claims.py", "figures.py", "experiments.py")}
    deciding |= {f for f in files if f.endswith("_claims.py") or f.startswith("figures/")}
    deciding |= files & {"synthetic/report.py", "synthetic/analysis.py", "synthetic/registry.py"}
    assert not deciding, f"{name}'s cache key covers {sorted(deciding)}"
    # no other world's code, but for the guided tour's
    allowed = {exp.world} | GUIDED_TOUR.get(exp.world, set())
    others = {f for f in files if f.startswith("synthetic/worlds/") and f.count("/") >= 3
              and f.split("/")[2] not in allowed}
    assert not others, f"{name}'s cache key covers other worlds' files {sorted(others)}"


def test_figures_4_and_9_share_a_key_and_worlds_do_not():
    exps = experiments()
    keys = {name: code_version(exps[name])["code"] for name in _string_runs()}
    assert keys["fig4"] == keys["fig9"]  # the same runs, cached once
    assert keys["fig3"] == keys["gridsearch"] == keys["fig4"]  # one run module, run_grid_experiment
    assert len({keys[n] for n in ("fig4", "thm2", "markov", "tofu_mini_models", "tutorial")}) == 5


# --------------------------------------------------------------------------- (c) who imports whom


def _imports(path: Path, package: str) -> set[str]:
    """Every module name ``path``'s import statements name (``from a import b``: ``a`` and ``a.b``),
    relative imports resolved against ``package`` (the module's own package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def _world_files(world: str) -> list[Path]:
    return sorted((WORLDS / world).rglob("*.py"))


@pytest.mark.parametrize("world", WORLD_ORDER)
def test_a_world_imports_no_other_world(world):
    allowed = {world} | GUIDED_TOUR.get(world, set())
    files = _world_files(world)
    assert files and any(f.name == "experiments.py" for f in files)
    for path in files:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        worlds_named = {n.split(".")[2] for n in _imports(path, package)
                        if n.startswith("synthetic.worlds.") and n.count(".") >= 2}
        assert worlds_named <= allowed, f"{path.relative_to(ROOT)} imports worlds {sorted(worlds_named - allowed)}"


def test_the_imports_walk_resolves_relative_imports(tmp_path):
    # the checker itself: a relative import of a sibling world is seen as that world
    (tmp_path / "m.py").write_text("from ..thm2 import run\nfrom .. import markov\nfrom . import data\n")
    names = _imports(tmp_path / "m.py", "synthetic.worlds.tutorial")
    assert {"synthetic.worlds.thm2", "synthetic.worlds.thm2.run", "synthetic.worlds.markov",
            "synthetic.worlds.tutorial.data"} <= names


def test_theory_imports_nothing_of_the_toolkit_and_shared_layers_no_world():
    for path in sorted((ROOT / "theory").rglob("*.py")):
        bad = {n for n in _imports(path, "theory") if n.split(".")[0] in ("synthetic", "figures", "paper_repro")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    shared = [p for p in (ROOT / "synthetic").rglob("*.py") if WORLDS not in p.parents] + sorted(
        (ROOT / "figures").rglob("*.py"))
    for path in shared:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        bad = {n for n in _imports(path, package) if n.startswith("synthetic.worlds")}
        assert not bad, f"the shared layer {path.relative_to(ROOT)} imports {sorted(bad)}"


# --------------------------------------------------------------------------- (d) editing a threshold


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def test_editing_a_threshold_changes_no_cache_key_and_editing_run_code_only_its_worlds(tmp_path):
    copy = tmp_path / "project"
    for package in ("theory", "synthetic"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    runs = {"markov": "synthetic.worlds.markov.run", "fig4": "synthetic.worlds.section4.run",
            "thm2": "synthetic.worlds.thm2.run"}

    def keys():
        return {name: store.code_fingerprint([module], root=copy) for name, module in runs.items()}

    before = keys()
    assert before == {name: store.code_fingerprint([module]) for name, module in runs.items()}  # a faithful copy
    assert before["markov"] == code_version(experiments()["markov"])["code"]
    # thresholds, a claim's wording, a figure, the analysis and the report: no key changes
    claims = copy / "synthetic/worlds/markov/claims.py"
    _edit(claims, "FACTOR_COLLAPSE = 10.0", "FACTOR_COLLAPSE = 20.0")
    claims.write_text(claims.read_text() + "# a comment\n")
    _edit(copy / "synthetic/worlds/section4/claims.py", "FORGET_THRESHOLD = 0.005", "FORGET_THRESHOLD = 0.01")
    _edit(copy / "synthetic/worlds/thm2/claims.py", "GA_RATE_TOL = 0.01", "GA_RATE_TOL = 0.02")
    for rel in ("synthetic/worlds/markov/figures.py", "synthetic/analysis.py", "synthetic/report.py",
                "synthetic/registry.py", "synthetic/worlds/markov/experiments.py"):
        (copy / rel).write_text((copy / rel).read_text() + "# edited\n")
    assert keys() == before
    # the markov world's model code: its key changes, the other worlds' do not
    lm = copy / "synthetic/worlds/markov/lm.py"
    lm.write_text(lm.read_text() + "# edited\n")
    after = keys()
    assert after["markov"] != before["markov"]
    assert after["fig4"] == before["fig4"] and after["thm2"] == before["thm2"]
    # a shared layer every run imports: every key changes
    loop = copy / "synthetic/engine/loop.py"
    loop.write_text(loop.read_text() + "# edited\n")
    assert all(keys()[name] != after[name] for name in runs)


def test_a_claims_module_of_a_world_reads_its_thresholds_from_itself():
    # the thresholds live with the claims, not in the config a run imports
    from synthetic.worlds.section4 import claims as s4, config as s4_config
    from synthetic.worlds.thm2 import claims as t2, config as t2_config

    for name in ("FORGET_THRESHOLD", "FORGET_WITHIN", "growth_threshold", "SAME_LAW_MARGIN", "KL_MARGIN", "GRID_TARGET"):
        assert hasattr(s4, name) and not hasattr(s4_config, name), name
    for name in ("GA_RATE_TOL", "LOG_RATIO_BAND", "LINEAR_RATIO_BAND", "SLOPE_TOL", "TIME_TOL", "AGREE_TOL", "TOY_DECAY"):
        assert hasattr(t2, name) and not hasattr(t2_config, name), name
    assert s4.growth_threshold(1000, 2000) == pytest.approx(1.48, abs=0.01)  # the documented midpoint
