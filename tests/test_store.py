"""Result caching: keyed by config and code version, atomic, verified before reuse, no pickles."""

import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

from synthetic import store

CONFIG = {"seed": 0, "lr": 0.5}
VERSION = {"code": "0123456789abcdef"}


def _arrays():
    return {"x": np.arange(12.0).reshape(3, 4), "n": np.array([1, 2, 3], dtype=np.int32)}


def _assert_same(got, want):
    assert got is not None
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
        assert got[k].dtype == np.asarray(want[k]).dtype


# --- keys, round trip, atomic writes ------------------------------------------------------


def test_hash_ignores_key_order_but_not_values():
    assert store.config_hash({"a": 1, "b": [1, 2]}) == store.config_hash({"b": [1, 2], "a": 1})
    assert store.config_hash({"a": 1}) != store.config_hash({"a": 2})
    assert store.config_hash({"a": 1}) != store.config_hash({"a": 1.5})


def test_save_then_load_round_trips(tmp_path):
    arrays = {"x": np.arange(6.0).reshape(2, 3), "n": np.array([1, 2], dtype=np.int32)}
    npz = store.save(tmp_path, "exp", {"seed": 0}, arrays)
    got = store.load(tmp_path, "exp", {"seed": 0})
    _assert_same(got, arrays)
    assert store.load(tmp_path, "exp", {"seed": 1}) is None
    assert store.load(tmp_path, "other", {"seed": 0}) is None
    assert npz.name == f"exp-{store.config_hash({'config': {'seed': 0}, 'version': None})}.npz"
    meta = json.loads(npz.with_suffix(".json").read_text())
    assert meta == {
        "name": "exp",
        "config": {"seed": 0},
        "version": None,
        "arrays": {"n": {"shape": [2], "dtype": "int32"}, "x": {"shape": [2, 3], "dtype": "float64"}},
        "sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
    }
    assert list(meta["arrays"]) == ["n", "x"], "arrays are recorded sorted by name"
    assert not list(tmp_path.glob("*.tmp")), "temporary files must not be left behind"


def test_npz_without_json_is_a_plain_miss(tmp_path):
    """A crash between writing the arrays and the config must not produce a false hit."""
    problems = []
    store.save(tmp_path, "exp", {"seed": 0}, {"x": np.ones(2)})
    next(tmp_path.glob("exp-*.json")).unlink()
    assert store.load(tmp_path, "exp", {"seed": 0}, on_problem=problems.append) is None
    assert problems == [], "a missing entry is a miss, not damage"


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "r.txt"
    store.atomic_write_text(target, "old")

    with pytest.raises(Exception):
        store.atomic_write_bytes(target, object())  # not bytes: the write fails midway
    assert target.read_text() == "old"
    assert not list(tmp_path.glob("*.tmp"))


def test_config_must_be_jsonable(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        store.config_hash({"f": object()})


def test_version_is_part_of_the_key(tmp_path):
    problems = []
    old = store.save(tmp_path, "exp", CONFIG, {"y": np.zeros(2)}, version={"code": "aaaa"})
    assert store.load(tmp_path, "exp", CONFIG, version={"code": "bbbb"}, on_problem=problems.append) is None
    assert store.load(tmp_path, "exp", CONFIG, on_problem=problems.append) is None
    assert problems == [], "another version is a plain miss"
    new = store.save(tmp_path, "exp", CONFIG, {"y": np.ones(2)}, version={"code": "bbbb"})
    # each version has its own file, and saving the new one prunes the old one's (superseded)
    assert new != old and not old.exists()
    assert store.load(tmp_path, "exp", CONFIG, version={"code": "aaaa"}) is None
    np.testing.assert_array_equal(store.load(tmp_path, "exp", CONFIG, version={"code": "bbbb"})["y"], [1, 1])
    assert json.loads(new.with_suffix(".json").read_text())["version"] == {"code": "bbbb"}


def test_saving_again_replaces_the_entry(tmp_path):
    store.save(tmp_path, "exp", CONFIG, {"y": np.zeros(3)}, version=VERSION)
    store.save(tmp_path, "exp", CONFIG, {"z": np.ones(2, dtype=np.float32)}, version=VERSION)
    _assert_same(store.load(tmp_path, "exp", CONFIG, version=VERSION), {"z": np.ones(2, dtype=np.float32)})
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'bad'"):
        store.save(tmp_path, "exp", CONFIG, {"ok": np.ones(2), "bad": np.array([{}, None], dtype=object)})
    assert list(tmp_path.iterdir()) == [], "nothing is written for a refused save"


def test_array_names_that_are_savez_arguments(tmp_path):
    """``np.savez(file, allow_pickle=..., **arrays)`` would misread these names."""
    arrays = {"file": np.arange(3), "allow_pickle": np.array([True, False])}
    store.save(tmp_path, "exp", CONFIG, arrays)
    _assert_same(store.load(tmp_path, "exp", CONFIG), arrays)


# --- nested results: groups of arrays, saved as "group/name" ------------------------------


def _nested():
    """Results as the experiments return them: groups of arrays, to any depth, strings included."""
    return {
        "alpha1": {
            "forget_distance": np.arange(24.0).reshape(2, 3, 4),
            "setting_method": np.array(["GA", "NPO+RT", "DPO+RT"]),
            "diverged_step": np.array([[-1, 250, -1]], dtype=np.int32),
        },
        "alpha0": {"fit": {"grad_norm": np.float32([1e-9, 3e-8]), "ok": np.bool_(True)}},
        "labels": np.array([b"GA", b"NPO beta=1"]),
        "steps": np.arange(5, dtype=np.int64),
    }


def _assert_same_nested(got, want, path=""):
    assert isinstance(got, dict) and set(got) == set(want), (path, sorted(got), sorted(want))
    for k, w in want.items():
        if isinstance(w, dict):
            _assert_same_nested(got[k], w, f"{path}{k}/")
        else:
            w = np.asarray(w)
            assert got[k].dtype == w.dtype and got[k].shape == w.shape, (path + k, got[k].dtype, got[k].shape)
            np.testing.assert_array_equal(got[k], w)


def test_nested_results_round_trip(tmp_path):
    npz = store.save(tmp_path, "exp", CONFIG, _nested(), version=VERSION)
    got = store.load(tmp_path, "exp", CONFIG, version=VERSION)
    _assert_same_nested(got, _nested())
    assert got["alpha1"]["setting_method"].dtype == np.dtype("<U6") and got["alpha1"]["setting_method"][1] == "NPO+RT"
    assert got["labels"].dtype == np.dtype("S10") and got["alpha0"]["fit"]["ok"].shape == ()
    # On disk the groups are "/"-joined names, recorded (sorted) with their shapes and dtypes.
    meta = json.loads(npz.with_suffix(".json").read_text())
    assert list(meta["arrays"]) == ["alpha0/fit/grad_norm", "alpha0/fit/ok", "alpha1/diverged_step",
                                    "alpha1/forget_distance", "alpha1/setting_method", "labels", "steps"]
    assert meta["arrays"]["alpha1/forget_distance"] == {"shape": [2, 3, 4], "dtype": "float64"}
    with np.load(npz, allow_pickle=False) as f:
        assert sorted(f.files) == list(meta["arrays"])
    # the flat form and back, directly
    flat = store.flatten_results(_nested())
    assert set(flat) == set(meta["arrays"])
    _assert_same_nested(store.unflatten_results(flat), _nested())


@pytest.mark.parametrize(
    "results, path",
    [
        ({"a/b": np.ones(2)}, "a/b"),  # a "/" would read back as a group
        ({"g": {"x/y": np.ones(2)}, "h": np.ones(1)}, "g/x/y"),
        ({"g": {}, "h": np.ones(1)}, "g"),  # an empty group would not come back
        ({"g": {"h": {}}}, "g/h"),
        ({"g": {"": np.ones(1)}}, "g/"),
    ],
)
def test_bad_result_names_are_refused_by_path(tmp_path, results, path):
    with pytest.raises(ValueError, match=f"'{path}'"):
        store.save(tmp_path, "exp", CONFIG, results)
    assert list(tmp_path.iterdir()) == [], "nothing is written for a refused save"


def test_an_array_beside_a_group_of_the_same_name_is_refused(tmp_path):
    """ "a" and "a/b" cannot both come back: refused however they are given."""
    with pytest.raises(ValueError, match="'a' is both an array and a group"):
        store.unflatten_results({"a": np.ones(2), "a/b": np.zeros(1)})
    with pytest.raises(ValueError, match="'a/b' is both an array and a group"):
        store.unflatten_results({"a/b/c": np.ones(2), "a/b": np.zeros(1)})
    with pytest.raises(ValueError, match="'a/b'"):
        store.save(tmp_path, "exp", CONFIG, {"a": np.ones(2), "a/b": np.zeros(1)})
    assert list(tmp_path.iterdir()) == []
    # An entry holding such names (written by other code, checksum consistent) is reported, not loaded.
    npz = store.save(tmp_path, "exp", CONFIG, {"a": np.ones(2), "c": {"b": np.zeros(1)}})
    data = store._npz_bytes({"a": np.ones(2), "a/b": np.zeros(1)})
    npz.write_bytes(data)
    meta = json.loads(npz.with_suffix(".json").read_text())
    meta["arrays"] = {"a": meta["arrays"]["a"], "a/b": meta["arrays"]["c/b"]}
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    npz.with_suffix(".json").write_text(json.dumps(meta))
    problems = []
    assert store.load(tmp_path, "exp", CONFIG, on_problem=problems.append) is None
    assert len(problems) == 1 and "'a' is both" in problems[0], problems


# --- damage: reported once, never loaded, replaced by the next save -----------------------


def _truncate_npz(npz, meta):
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    return npz, "checksum"


def _flip_npz_byte(npz, meta):
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    return npz, "checksum"


def _swap_npz(npz, meta):
    """Another valid .npz with the same names, shapes and dtypes: only the checksum can tell."""
    buf = io.BytesIO()
    arrays = _arrays()
    np.savez(buf, x=arrays["x"] + 1.0, n=arrays["n"] * 2)
    npz.write_bytes(buf.getvalue())
    with np.load(npz, allow_pickle=False) as f:  # the impostor itself is a well-formed file
        assert {k: (f[k].shape, f[k].dtype) for k in f.files} == {
            k: (v.shape, v.dtype) for k, v in arrays.items()
        }
    return npz, "checksum"


def _npz_becomes_directory(npz, meta):
    npz.unlink()
    npz.mkdir()
    (npz / "junk.npy").write_bytes(b"junk")
    return npz, "not a regular file"


def _delete_npz(npz, meta):
    npz.unlink()
    return npz, "missing"


def _truncate_json(npz, meta):
    text = meta.read_text()
    meta.write_text(text[: len(text) // 2])
    return meta, "unreadable"


def _json_not_utf8(npz, meta):
    meta.write_bytes(b"\xff\xfe\x00garbage")
    return meta, "unreadable"


def _json_wrong_fields(npz, meta):
    record = json.loads(meta.read_text())
    del record["sha256"]
    meta.write_text(json.dumps(record))
    return meta, "sha256"


def _json_not_an_object(npz, meta):
    meta.write_text("[1, 2, 3]")
    return meta, "not a JSON object"


def _json_other_shape(npz, meta):
    record = json.loads(meta.read_text())
    record["arrays"]["x"]["shape"] = [4, 3]
    meta.write_text(json.dumps(record))
    return npz, "shape"


def _json_other_dtype(npz, meta):
    record = json.loads(meta.read_text())
    record["arrays"]["n"]["dtype"] = "int64"
    meta.write_text(json.dumps(record))
    return npz, "dtype int32"


def _json_other_array_names(npz, meta):
    record = json.loads(meta.read_text())
    record["arrays"]["extra"] = {"shape": [1], "dtype": "float64"}
    meta.write_text(json.dumps(record))
    return npz, "'extra'"


def _json_other_config(npz, meta):
    """A hand-edited file (or a hash collision): the entry is for another config."""
    record = json.loads(meta.read_text())
    record["config"]["seed"] = 1
    meta.write_text(json.dumps(record))
    return meta, "different config"


def _json_other_version(npz, meta):
    record = json.loads(meta.read_text())
    record["version"] = {"code": "fedcba9876543210"}
    meta.write_text(json.dumps(record))
    return meta, "different version"


def _unreadable_npz_with_matching_checksum(npz, meta):
    """The checksum passes (the .json was rewritten to match) but np.load cannot read it."""
    garbage = b"not a zip file at all"
    npz.write_bytes(garbage)
    record = json.loads(meta.read_text())
    record["sha256"] = hashlib.sha256(garbage).hexdigest()
    meta.write_text(json.dumps(record))
    return npz, "np.load failed"


DAMAGE = [
    _truncate_npz,
    _flip_npz_byte,
    _swap_npz,
    _npz_becomes_directory,
    _delete_npz,
    _truncate_json,
    _json_not_utf8,
    _json_wrong_fields,
    _json_not_an_object,
    _json_other_shape,
    _json_other_dtype,
    _json_other_array_names,
    _json_other_config,
    _json_other_version,
    _unreadable_npz_with_matching_checksum,
]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.lstrip("_"))
def test_damaged_entry_is_reported_and_replaced(tmp_path, damage):
    arrays = _arrays()
    npz = store.save(tmp_path, "exp", CONFIG, arrays, version=VERSION)
    _assert_same(store.load(tmp_path, "exp", CONFIG, version=VERSION), arrays)

    named, reason = damage(npz, npz.with_suffix(".json"))
    problems = []
    assert store.load(tmp_path, "exp", CONFIG, version=VERSION, on_problem=problems.append) is None
    assert len(problems) == 1, problems
    (message,) = problems
    assert str(named) in message
    assert reason in message
    assert "\n" not in message
    # Without a callback the damage is not reported, and still neither loaded nor raised.
    assert store.load(tmp_path, "exp", CONFIG, version=VERSION) is None

    assert store.save(tmp_path, "exp", CONFIG, arrays, version=VERSION) == npz
    _assert_same(store.load(tmp_path, "exp", CONFIG, version=VERSION, on_problem=problems.append), arrays)
    assert len(problems) == 1, "the replaced entry loads without a report"
    assert npz.is_file()
    assert not list(tmp_path.glob("*.tmp"))


def test_json_replaced_by_a_directory_is_reported_and_replaced(tmp_path):
    npz = store.save(tmp_path, "exp", CONFIG, _arrays())
    meta = npz.with_suffix(".json")
    meta.unlink()
    meta.mkdir()
    problems = []
    assert store.load(tmp_path, "exp", CONFIG, on_problem=problems.append) is None
    assert len(problems) == 1 and str(meta) in problems[0]
    store.save(tmp_path, "exp", CONFIG, _arrays())
    _assert_same(store.load(tmp_path, "exp", CONFIG), _arrays())


# --- code fingerprint -----------------------------------------------------------------------

FAKE_PROJECT = {
    "synthetic/__init__.py": "import jax\n",
    "synthetic/experiments/__init__.py": "",
    "synthetic/experiments/run.py": (
        "import os\n"
        "import numpy as np\n"
        "import jax.numpy as jnp\n"
        "from synthetic.experiments import helpers\n"  # a submodule, via `from x import y`
        "from . import sibling\n"
        "from ..util import tool\n"  # `tool` is a name in synthetic/util.py
        "import theory.core\n"
        "import figures.plot\n"
        "from synthetic.missing import thing\n"
    ),
    "synthetic/experiments/helpers.py": "X = 1\n",
    "synthetic/experiments/sibling.py": "def f():\n    from theory import deep\n    return deep\n",
    "synthetic/experiments/broken.py": "def (:\n",
    "synthetic/util.py": "def tool():\n    return 1\n",
    "synthetic/unrelated.py": "Y = 2\n",
    "theory/__init__.py": "",
    "theory/core.py": "import math\n",
    "theory/deep.py": "from .core import *\n",
    "theory/unused.py": "Z = 3\n",
    "figures/__init__.py": "",
    "figures/plot.py": "import synthetic.unrelated\n",
    "jax/__init__.py": "",  # a third-party package that happens to sit beside the project
    "jax/numpy.py": "",
    "numpy/__init__.py": "",
    "tests/test_run.py": "import synthetic.unrelated\n",
}

COVERED = [
    "synthetic/__init__.py",
    "synthetic/experiments/__init__.py",
    "synthetic/experiments/helpers.py",
    "synthetic/experiments/run.py",
    "synthetic/experiments/sibling.py",
    "synthetic/util.py",
    "theory/__init__.py",
    "theory/core.py",
    "theory/deep.py",
]
RUN = ["synthetic.experiments.run"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    for rel, text in FAKE_PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setattr(store, "_ROOT", root)
    return root


def test_fingerprint_files_follow_project_imports_only(project):
    files = store.fingerprint_files(RUN)
    assert [p.relative_to(project).as_posix() for p in files] == COVERED
    assert all(p.is_absolute() for p in files)


def test_fingerprint_of_a_package_and_a_file_that_does_not_parse(project):
    rel = lambda files: [p.relative_to(project).as_posix() for p in files]  # noqa: E731
    assert rel(store.fingerprint_files(["synthetic.experiments"])) == [
        "synthetic/__init__.py",
        "synthetic/experiments/__init__.py",
    ]
    assert rel(store.fingerprint_files(["synthetic.experiments.broken"])) == [
        "synthetic/__init__.py",
        "synthetic/experiments/__init__.py",
        "synthetic/experiments/broken.py",
    ]


def test_fingerprint_changes_with_covered_files_only(project):
    before = store.code_fingerprint(RUN)
    assert len(before) == 16 and int(before, 16) >= 0
    assert store.code_fingerprint(RUN) == before, "stable"
    assert store.code_fingerprint(["synthetic.experiments.run"]) == store.code_fingerprint(
        iter(["synthetic.experiments.run", "synthetic.experiments.helpers"])
    ), "helpers is covered already; any iterable works"

    not_covered = ["synthetic/unrelated.py", "theory/unused.py", "figures/plot.py", "jax/numpy.py", "tests/test_run.py"]
    for rel in not_covered:
        (project / rel).write_text("CHANGED = True\n")
        assert store.code_fingerprint(RUN) == before, f"{rel} is not covered"

    for rel in COVERED:
        path = project / rel
        original = path.read_bytes()
        edits = [original + b"# edit\n"]
        if original:  # the same length, one byte different: "X = 1\n" -> "X = 1#"
            edits.append(original[:-1] + b"#")
        for edited in edits:
            path.write_bytes(edited)
            assert store.code_fingerprint(RUN) != before, f"an edit to {rel} must change the fingerprint"
        path.write_bytes(original)
        assert store.code_fingerprint(RUN) == before


def test_fingerprint_sees_a_new_import(project):
    before = store.fingerprint_files(RUN)
    (project / "synthetic/experiments/helpers.py").write_text("from synthetic import unrelated\n")
    after = store.fingerprint_files(RUN)
    assert project / "synthetic/unrelated.py" in after
    assert project / "synthetic/unrelated.py" not in before


def test_fingerprint_root_keyword(project, tmp_path):
    other = tmp_path / "other"
    (other / "theory").mkdir(parents=True)
    (other / "theory/__init__.py").write_text("")
    (other / "theory/core.py").write_text("import math\n")
    # Same relative paths and bytes as in `project`: the digest depends on nothing else.
    assert store.code_fingerprint(["theory.core"], root=other) == store.code_fingerprint(["theory.core"])
    (other / "theory/core.py").write_text("import cmath\n")
    assert store.code_fingerprint(["theory.core"], root=other) != store.code_fingerprint(["theory.core"])


@pytest.mark.parametrize(
    "module",
    ["synthetic.nope", "theory.core.inner", "numpy", "jax.numpy", "figures.plot", "tests.test_run", "synthetic..util"],
)
def test_fingerprint_of_an_unknown_module_raises(project, module):
    with pytest.raises(ValueError, match=repr(module).replace(".", r"\.")):
        store.code_fingerprint([module])


def test_fingerprint_needs_a_module(project):
    with pytest.raises(ValueError, match="at least one"):
        store.code_fingerprint([])


def test_code_change_makes_the_cache_miss(project, tmp_path):
    folder = tmp_path / "cache"
    store.save(folder, "exp", CONFIG, {"y": np.ones(2)}, version={"code": store.code_fingerprint(RUN)})
    assert store.load(folder, "exp", CONFIG, version={"code": store.code_fingerprint(RUN)}) is not None
    (project / "theory/deep.py").write_text("from .core import *\nSCALE = 2\n")
    problems = []
    new_version = {"code": store.code_fingerprint(RUN)}
    assert store.load(folder, "exp", CONFIG, version=new_version, on_problem=problems.append) is None
    assert problems == []


def test_fingerprint_of_the_real_project():
    fingerprint = store.code_fingerprint(["synthetic.store"])
    assert len(fingerprint) == 16 and set(fingerprint) <= set("0123456789abcdef")
    files = store.fingerprint_files(["synthetic.store", "theory.methods"])
    rel = [p.relative_to(store._ROOT).as_posix() for p in files]
    assert {"synthetic/__init__.py", "synthetic/store.py", "theory/__init__.py", "theory/methods.py"} <= set(rel)
    assert rel == sorted(rel)
    assert all(r.split("/")[0] in ("synthetic", "theory") for r in rel)


def test_files_written_as_one_land_together_or_not_at_all(tmp_path, monkeypatch):
    import threading

    from synthetic import store

    a, b = tmp_path / "claims.json", tmp_path / "report.md"
    store.atomic_write_files({a: "old claims", b: "old report"})
    # a folder in the way of the second file: found before any move, so neither changes
    b.unlink()
    b.mkdir()
    with pytest.raises(IsADirectoryError, match="report.md: a folder is in the way"):
        store.atomic_write_files({a: "new claims", b: "new report"})
    assert a.read_text() == "old claims" and not store.PENDING_WRITES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    b.rmdir()
    # an interrupt handler that takes the commit lock sees both files moved in, never one
    seen, moved = [], []
    real_replace = store.os.replace

    def slow_replace(src, dst):
        moved.append(Path(dst).name)
        if len(moved) == 1:
            threading.Thread(target=lambda: (store.COMMIT_LOCK.acquire(), seen.append(list(moved)),
                                             store.COMMIT_LOCK.release())).start()
            time.sleep(0.2)  # the handler is waiting for the lock now
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", slow_replace)
    store.atomic_write_files({a: "new claims", b: "new report"})
    for _ in range(100):
        if seen:
            break
        time.sleep(0.01)
    assert seen == [["claims.json", "report.md"]]
    assert a.read_text() == "new claims" and b.read_text() == "new report"


def test_an_entry_saved_by_newer_code_replaces_the_old_codes_and_keeps_other_configs(tmp_path):
    arrays = {"x": np.arange(3.0)}
    old = store.save(tmp_path, "exp", CONFIG, arrays, version={"code": "old"})
    other = store.save(tmp_path, "exp", {**CONFIG, "seed": 1}, arrays, version={"code": "old"})
    new = store.save(tmp_path, "exp", CONFIG, arrays, version={"code": "new"})
    assert not old.exists() and not old.with_suffix(".json").exists()   # superseded: pruned
    assert other.exists() and new.exists()                              # another config: kept
    assert store.load(tmp_path, "exp", {**CONFIG, "seed": 1}, version={"code": "old"}) is not None


def test_a_model_refitted_by_newer_code_replaces_the_old_codes_file(tmp_path):
    params = {"w": np.arange(4.0, dtype=np.float32).reshape(2, 2)}

    def fit():
        return params, np.asarray([1.0, 0.5])

    def saved():
        return sorted(p.name for p in tmp_path.iterdir())

    for code in ("old", "new"):
        _, _, fitted = store.load_or_fit(tmp_path, "model", CONFIG, fit, lambda: params, version={"code": code})
        assert fitted
        assert len(saved()) == 2, saved()   # one .npz and its .json: the old code's were pruned
    loaded, losses, fitted = store.load_or_fit(tmp_path, "model", CONFIG, fit, lambda: params, version={"code": "new"})
    assert not fitted and np.array_equal(loaded["w"], params["w"]) and losses.tolist() == [1.0, 0.5]


def test_the_numeric_mode_is_part_of_the_keys_of_results_and_models(tmp_path):
    import jax

    from synthetic.experiment import code_version
    from synthetic.models import transformer as tf
    from synthetic.registry import experiments
    from synthetic.worlds.markov import lm as markov_lm

    mode = store.numeric_mode()
    assert mode == {"jax": jax.__version__, "x64": bool(jax.config.jax_enable_x64)}
    with jax.enable_x64(not mode["x64"]):
        assert store.numeric_mode()["x64"] is not mode["x64"]      # the mode is read when asked
        assert code_version(experiments()["fig4"])["x64"] is not mode["x64"]
    assert mode.items() <= code_version(experiments()["fig4"]).items()
    model = tf.TransformerConfig(vocab_size=5, context=3, layers=1, width=4, heads=1)
    params = tf.init(jax.random.key(0), model)
    markov_lm.fit_or_load(tmp_path, "lm", CONFIG, model, lambda: (params, np.zeros(2)))
    (meta,) = tmp_path.glob("lm-*.json")
    assert mode.items() <= json.loads(meta.read_text())["version"].items()


def test_a_cache_json_that_is_not_a_regular_file_is_a_reported_miss(tmp_path):
    import os

    npz = store.save(tmp_path, "exp", CONFIG, {"x": np.arange(3.0)}, version=1)
    meta = npz.with_suffix(".json")
    meta.unlink()
    os.mkfifo(meta)  # reading it would block for ever
    problems = []
    assert store.load(tmp_path, "exp", CONFIG, version=1, on_problem=problems.append) is None
    assert problems and "not a regular file" in problems[0]
