"""Results on disk: arrays in ``.npz``, a description in ``.json``, reused only when provably right.

What the cache guarantees:

* **Atomic writes.** Every file is written to a temporary file in the same folder and then
  moved into place with ``os.replace``, so an interrupted run never leaves a half-written
  file where a complete one stood. The ``.npz`` is written first and the ``.json`` last, and
  an entry counts as present only when its ``.json`` exists, so a crash between the two is a
  plain miss, not a false hit.
* **The key is the config plus the code version.** The file name holds a hash of
  ``{"config": config, "version": version}``, where ``version`` is typically
  ``{"code": code_fingerprint([...])}``: a digest of the source files that compute the
  result and of every project file they import. After a change to that code the key
  changes, so old arrays are not reused by new code.
* **Nothing is reused unchecked.** Before returning cached arrays, :func:`load` checks that
  the ``.json`` describes exactly the requested name, config and version; that the
  SHA-256 checksum of the ``.npz`` bytes is the one recorded when they were written; and
  that the array names, shapes and dtypes are the recorded ones.
* **A damaged entry is never loaded.** A truncated, altered, swapped, missing or otherwise
  damaged entry is reported in one line to the caller's ``on_problem`` callback and
  :func:`load` returns ``None``, so the caller recomputes; the next :func:`save` with the
  same key replaces the damaged files. Damage never makes later runs fail.
* **No pickles.** Object arrays are refused when saving and files are read with
  ``allow_pickle=False``, so loading a cache file cannot run code.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np

__all__ = [
    "config_hash",
    "flatten_results",
    "unflatten_results",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_problem",
    "code_fingerprint",
    "code_sources",
    "numeric_mode",
    "one_line",
    "is_project_module",
    "explain_miss",
    "fingerprint_files",
    "save",
    "load",
    "flatten_tree",
    "unflatten_tree",
    "load_or_fit",
]

# The project root: the folder that holds the ``synthetic`` and ``theory`` packages. Module
# names are resolved against it (tests point it at a fake project tree).
_ROOT = Path(__file__).resolve().parents[1]
# Only files of these top-level packages count as "code that produces results".
_PACKAGES = ("theory", "synthetic")


def _canonical(config: Any) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"config values must be JSON-able, got {type(x).__name__}")


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-able config (key order does not matter)."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


PENDING_WRITES: set = set()
"""Temporary files of :func:`atomic_write_bytes` calls in progress (removed if the process is
stopped mid-write; see ``paper_repro.py``'s Ctrl-C handling)."""


def _umask() -> int:
    """The process's umask (read without changing it where Linux tells it, else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


PROBE_BYTES = 64 * 1024
"""What :func:`write_problem` writes (and syncs) to check a folder: an empty probe file succeeds
even on a full disk, a written one fails there."""


def write_problem(folder: Path) -> Optional[str]:
    """Why files cannot be written in ``folder`` (``None`` if they can): checked by creating the
    folder if missing and writing :data:`PROBE_BYTES` to a file in it, which is removed."""
    probe = None
    try:
        if folder.exists() and not folder.is_dir():
            return f"{folder} exists and is not a folder"
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # no permission, no space, a name too long, ...
        return f"cannot write to {folder}: {e.strerror or e}"
    finally:
        if probe is not None:
            try:
                os.unlink(probe)
            except OSError:
                pass
    return None


COMMIT_LOCK = threading.Lock()
"""Held while :func:`atomic_write_files` moves a set of files in: an interrupt handler that takes
it (``paper_repro.py``'s) waits until every file of the set is in place, so the set is never
half the old run's and half the new one's."""


def _write_temp(path: Path, data) -> str:
    """``data`` in a synced temporary file beside ``path`` (registered in PENDING_WRITES):
    bytes, or a function that writes the file given its name (for writers that take a name,
    such as Pillow's; the name then ends in ``path``'s suffix, which they read the format from)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{path.suffix}" if callable(data) else ".tmp"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    PENDING_WRITES.add(tmp)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            fd = os.open(tmp, os.O_RDWR)
        with os.fdopen(fd, "r+b" if callable(data) else "wb") as f:
            if not callable(data):
                f.write(data)
                f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        PENDING_WRITES.discard(tmp)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The file gets the permissions a plain ``open(path, "w")`` would give (``0o666`` less the
    umask), not the ``0o600`` of the temporary file it is written through."""
    atomic_write_files({Path(path): data})


def atomic_write_files(files: dict) -> None:
    """Write several files (``{path: bytes, str, or a function that writes the file given its
    name}``) as one: every file is written and synced to a temporary beside it first, and only
    then are all moved in, under :data:`COMMIT_LOCK`.
    A failure before the moves (a full disk, a path that is a folder) leaves every file as it
    was; an interrupt that takes the lock lets the moves finish first."""
    temps = {}
    try:
        for path, data in files.items():
            temps[Path(path)] = _write_temp(Path(path), data.encode() if isinstance(data, str) else data)
        folders = [str(path) for path in temps if path.is_dir()]
        if folders:  # found before any move: all the files stay as they were
            raise IsADirectoryError(f"cannot write {', '.join(folders)}: a folder is in the way")
        with COMMIT_LOCK:
            for path, tmp in temps.items():
                os.replace(tmp, path)
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
            PENDING_WRITES.discard(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------
# Code fingerprint
# ---------------------------------------------------------------------------------------


def _module_file(root: Path, name: str) -> Optional[Path]:
    """The file of project module ``name`` under ``root``, or None if it is not one.

    A package means its ``__init__.py``; as in Python, a package wins over a same-named
    ``.py`` file. Only modules of the project's own packages (``_PACKAGES``) count.
    """
    parts = name.split(".")
    if parts[0] not in _PACKAGES or not all(p.isidentifier() for p in parts):
        return None
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_name(parts[-1] + ".py")):
        if candidate.is_file():
            return candidate
    return None


def _statements(tree: ast.AST):
    """Every statement node of ``tree``, nested ones included (in functions, classes, ``if``,
    ``try``, ``with``, ``match``...). Expressions are skipped: they cannot hold an import
    statement, and not walking them is much cheaper than ``ast.walk`` over every node."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case))
        )


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names that ``module``'s import statements may load (anywhere in the file).

    For ``from a.b import c`` both ``a.b`` and ``a.b.c`` are listed: ``c`` may be a
    submodule or a name defined in ``a.b``; names that are no project file are dropped later.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: list[str] = []
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                if up > len(package) or (up == len(package) and not node.module):
                    continue  # beyond the top-level package: Python would fail too
                base = package[: len(package) - up]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target:
                continue
            names.append(target)
            names.extend(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


@functools.lru_cache(maxsize=1024)
def _imports_of(source: bytes, module: str, is_package: bool) -> tuple[str, ...]:
    """:func:`_imported_names` of a file's ``source`` (empty if it does not parse).

    Memoised on the exact bytes, so an edited file is parsed again while an unchanged one is
    parsed once per process: ``ast.parse`` is nearly all of a fingerprint's cost.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    return tuple(_imported_names(tree, module, is_package))


DECIDES_ONLY = frozenset({"theory.claims"})
"""Project modules that only decide (the :class:`~theory.claims.Claim` record and its verdict
rules): no cached number is computed with them, so a fingerprint does not follow an import of
them (``theory/__init__.py`` imports one for convenience; an edit there recomputes nothing)."""


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: importing a submodule runs its parents' ``__init__``."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _collect(modules: Iterable[str], root: Optional[Path], files: Iterable = ()) -> tuple[Path, dict[str, tuple[Path, bytes]]]:
    """``(root, {relative POSIX path: (file, bytes)})`` for the files behind ``modules``, plus
    ``files`` outside the project (keyed by their absolute path) and the project modules they import."""
    root = Path(_ROOT if root is None else root).resolve()
    requested = [modules] if isinstance(modules, str) else list(modules)
    files = [Path(f).resolve() for f in files]
    if not requested and not files:
        raise ValueError("code_fingerprint needs at least one module name")
    for name in requested:
        if not isinstance(name, str) or _module_file(root, name) is None:
            raise ValueError(
                f"{name!r} is not a module of this project ({' or '.join(_PACKAGES)} under {root})"
            )

    found: dict[str, tuple[Path, bytes]] = {}
    seen: set[str] = set()
    pending = [n for name in requested for n in _with_parents(name)]
    for path in files:
        source = path.read_bytes()
        found[path.as_posix()] = (path, source)
        for imported in _imports_of(source, path.stem, False):
            pending.extend(_with_parents(imported))
    while pending:
        name = pending.pop()
        if name in seen or (name in DECIDES_ONLY and name not in requested):
            continue
        seen.add(name)
        path = _module_file(root, name)
        if path is None:
            continue  # not a project module (numpy, stdlib, figures, a name inside a module...)
        source = path.read_bytes()
        found[path.relative_to(root).as_posix()] = (path, source)
        for imported in _imports_of(source, name, path.name == "__init__.py"):
            pending.extend(_with_parents(imported))
    return root, found


def is_project_module(name: str, *, root: Optional[Path] = None) -> bool:
    """Whether ``name`` (dotted) is a module file of the project's packages (``theory``, ``synthetic``)."""
    return isinstance(name, str) and _module_file(Path(_ROOT if root is None else root).resolve(), name) is not None


def fingerprint_files(modules: Iterable[str], *, root: Optional[Path] = None) -> list[Path]:
    """The project files that :func:`code_fingerprint` covers for ``modules``.

    The files of ``modules`` (dotted names such as ``"synthetic.engine.loop"``; a single string is
    taken as one name), their parent packages' ``__init__.py``, and transitively every file
    of the project packages ``theory`` and ``synthetic`` that they import (``import a.b``,
    ``from a.b import c`` where ``c`` is a submodule or a name, relative imports; found with
    ``ast``, nothing is imported). Third-party, standard-library and other modules are
    ignored. A file that does not parse is still covered, but its imports are not followed.

    Returns absolute paths sorted by their path relative to ``root`` (default: the project
    root). Raises ``ValueError`` naming any requested module that is not a project file.
    """
    _, found = _collect(modules, root)
    return [found[rel][0] for rel in sorted(found)]


def code_fingerprint(modules: Iterable[str], *, root: Optional[Path] = None, files: Iterable = ()) -> str:
    """A short, stable hex digest (16 characters) of the source code behind a result.

    Covers the files listed by :func:`fingerprint_files` -- the given modules, their parent
    packages and every project module they import, transitively -- hashing each file's
    POSIX path relative to the project root and its exact bytes, in sorted path order. Any
    edit to any covered file changes the digest; edits elsewhere do not. Use it as the cache
    ``version``: ``save(..., version={"code": code_fingerprint(["synthetic.worlds.thm2.run"])})``.
    ``files`` adds source files outside the project (a user's script), hashed by their
    absolute path and bytes, with the project modules they import.

    Files are read on every call (they may change while a process runs; tests edit them);
    only the parse of each file's imports is memoised, keyed by the file's exact bytes.
    """
    _, found = _collect(modules, root, files)
    digest = hashlib.sha256()
    for rel in sorted(found):
        data = found[rel][1]
        name = rel.encode("utf-8")
        # Length-prefixed fields, so no two different file sets can hash the same bytes.
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()[:16]


def numeric_mode() -> dict:
    """The part of a cache key that is neither config nor code: the JAX version and whether
    float64 is on (``JAX_ENABLE_X64`` changes float32 runs' numbers too, through their
    bookkeeping)."""
    import jax

    return {"jax": jax.__version__, "x64": bool(jax.config.jax_enable_x64)}


def code_sources(modules: Iterable[str], *, root: Optional[Path] = None, files: Iterable = ()) -> dict[str, str]:
    """``{relative path: digest}`` of each file :func:`code_fingerprint` covers (16 hex characters
    of its SHA-256): what :func:`explain_miss` compares to say which files changed."""
    _, found = _collect(modules, root, files)
    return {rel: hashlib.sha256(found[rel][1]).hexdigest()[:16] for rel in sorted(found)}


def _changes(old: dict, new: dict, what: str) -> list[str]:
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not changed:
        return []
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return [f"{what} changed: {shown}"]


def explain_miss(folder: Path, name: str, config: dict, version: Any, sources: Optional[dict] = None) -> str:
    """Why no cached result of ``name`` matches ``config`` and ``version``: compared with the newest
    entry of the same name under ``folder`` (e.g. "code changed: synthetic/worlds/markov/lm.py",
    "config changed: seeds", "nothing cached yet"). Never raises."""
    try:
        entries = sorted(Path(folder).glob(f"{name}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in entries:
            record = json.loads(path.read_bytes())
            if not isinstance(record, dict) or record.get("name") != name:
                continue
            reasons = _changes(record.get("config") or {}, json.loads(_canonical(config)), "config")
            old_v, new_v = record.get("version") or {}, json.loads(_canonical(version)) or {}
            if isinstance(old_v, dict) and isinstance(new_v, dict):
                reasons += _changes({k: v for k, v in old_v.items() if k != "code"},
                                    {k: v for k, v in new_v.items() if k != "code"}, "numerics")
                if old_v.get("code") != new_v.get("code"):
                    reasons += _changes(record.get("sources") or {}, sources or {}, "code") or ["code changed"]
            return "; ".join(reasons) or "the cached entry for this config and code could not be used"
        return "nothing cached yet"
    except Exception:  # noqa: BLE001 - an explanation must never break a run
        return "no usable cached entry"


# ---------------------------------------------------------------------------------------
# Save and load
# ---------------------------------------------------------------------------------------


def _paths(folder: Path, name: str, config: dict, version: Any) -> tuple[Path, Path]:
    stem = f"{name}-{config_hash({'config': config, 'version': version})}"
    return Path(folder) / f"{stem}.npz", Path(folder) / f"{stem}.json"


def exists(folder: Path, name: str, config: dict, *, version: Any = None) -> bool:
    """Whether an entry of ``name``, ``config`` and ``version`` is saved under ``folder`` (not
    verified: :func:`load` checks it)."""
    npz, meta = _paths(folder, name, config, version)
    return npz.is_file() and meta.is_file()


def flatten_results(results: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """A nested mapping of arrays as one flat ``{"a/b/c": array}`` mapping (for the ``.npz``).

    ``results`` maps names to arrays (anything :func:`numpy.asarray` takes) or to mappings of
    the same kind, to any depth: ``{"alpha1": {"forget_distance": a}}`` is saved as
    ``"alpha1/forget_distance"``. A name must be a non-empty string without ``/``; one that
    is empty, not a string or holds a ``/`` raises ``ValueError`` naming its path.
    """
    flat: dict[str, np.ndarray] = {}
    for key, value in results.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"result names must be non-empty strings without '/', got {prefix + str(key)!r}")
        if isinstance(value, dict):
            if not value:
                raise ValueError(f"result group {prefix + key!r} is empty")
            flat.update(flatten_results(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = value
    return flat


def unflatten_results(flat: dict) -> dict:
    """The nested mapping of :func:`flatten_results` back from its flat ``"a/b/c"`` names.

    Raises ``ValueError`` when a name is both an array and a group (``"a"`` and ``"a/b"``).
    """
    out: dict = {}
    for key in sorted(flat):
        *groups, leaf = key.split("/")
        node = out
        for i, g in enumerate(groups):
            node = node.setdefault(g, {})
            if not isinstance(node, dict):
                raise ValueError(f"{'/'.join(groups[:i + 1])!r} is both an array and a group of arrays")
        if leaf in node:
            raise ValueError(f"{key!r} is both an array and a group of arrays")
        node[leaf] = flat[key]
    return out


def _describe(arr: np.ndarray) -> dict:
    return {"shape": list(arr.shape), "dtype": str(arr.dtype)}


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The ``.npz`` bytes of ``arrays`` (what ``np.savez`` writes, but never a pickle, and
    with no argument names such as ``file`` that could clash with an array's name)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return buf.getvalue()


def _clear(path: Path) -> None:
    """Remove whatever stands at ``path`` if it is not a regular file (damage)."""
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def save(
    folder: Path,
    name: str,
    config: dict,
    arrays: dict[str, np.ndarray],
    *,
    version: Any = None,
    sources: Optional[dict[str, str]] = None,
) -> Path:
    """Save ``arrays`` under ``folder``, keyed by ``name``, ``config`` and ``version``.

    ``arrays`` is a mapping of names to arrays, nested to any depth (:func:`flatten_results`);
    :func:`load` gives back the same nesting. ``sources`` (optional, not part of the key) records
    each source file's digest (:func:`code_sources`), so that a later miss can say which files
    changed (:func:`explain_miss`).

    ``version`` is any JSON-able value that identifies the code that computed the arrays,
    typically ``{"code": code_fingerprint([...])}``. The file stem is
    ``f"{name}-{config_hash({'config': config, 'version': version})}"``.

    The ``.npz`` is written first and the ``.json`` last, both atomically; the ``.json``
    records ``name``, ``config``, ``version``, each array's shape and dtype, and the SHA-256
    of the exact ``.npz`` bytes. An existing entry with the same key (damaged or not) is
    replaced. Raises ``ValueError`` naming any object array (they would need a pickle).
    Returns the ``.npz`` path.
    """
    npz, meta = _paths(folder, name, config, version)
    prepared: dict[str, np.ndarray] = {}
    flat = flatten_results(arrays)
    unflatten_results(flat)  # refuse "a" beside "a/b" before anything is written
    for key, value in flat.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"array {key!r} has dtype object, which cannot be cached without pickles")
        prepared[key] = arr
    data = _npz_bytes(prepared)
    record = {
        "name": name,
        "config": json.loads(_canonical(config)),
        "version": json.loads(_canonical(version)),
        "arrays": {key: _describe(prepared[key]) for key in sorted(prepared)},
        "sha256": hashlib.sha256(data).hexdigest(),
        **({"sources": dict(sources)} if sources else {}),
    }
    text = json.dumps(record, sort_keys=True, indent=1) + "\n"

    _clear(meta)
    # The entry is absent while it is rewritten: a crash before the new .json is a plain miss.
    meta.unlink(missing_ok=True)
    _clear(npz)
    atomic_write_bytes(npz, data)
    atomic_write_text(meta, text)
    prune_superseded(folder, name, config, version)
    return npz


def prune_superseded(folder: Path, name: str, config: dict, version: Any) -> list[Path]:
    """Delete the entries of ``name`` for the same ``config`` saved under another ``version``
    (results of code since changed, which no run can load again); entries of other configs
    (another ``--seeds``, ``--quick``) are kept. Returns the paths removed."""
    removed = []
    keep = _paths(folder, name, config, version)[1]
    for meta in sorted(Path(folder).glob(f"{name}-*.json")):
        if meta == keep or not meta.is_file():
            continue
        try:
            record = json.loads(meta.read_bytes())
        except (OSError, ValueError, RecursionError):
            continue  # damaged: load() reports it when its key is asked for
        if not isinstance(record, dict) or record.get("name") != name:
            continue
        if _canonical(record.get("config")) == _canonical(config) and _canonical(record.get("version")) != _canonical(version):
            for path in (meta, meta.with_suffix(".npz")):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def one_line(err: BaseException) -> str:
    """``"Type: message"`` of ``err`` on one line (for a log or a report cell)."""
    return " ".join(f"{type(err).__name__}: {err}".split())


def _check_record(record: Any) -> Optional[str]:
    """Why a parsed ``.json`` is not a well-formed record, or None if it is."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    missing = [k for k in ("name", "config", "version", "arrays", "sha256") if k not in record]
    if missing:
        return f"fields missing: {', '.join(missing)}"
    sha = record["sha256"]
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        return "bad sha256 field"
    described = record["arrays"]
    if not isinstance(described, dict):
        return "bad arrays field"
    for key, d in described.items():
        if not (
            isinstance(d, dict)
            and isinstance(d.get("dtype"), str)
            and isinstance(d.get("shape"), list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in d["shape"])
        ):
            return f"bad description of array {key!r}"
    return None


def _verify(npz: Path, meta: Path, name: str, config: Any, version: Any):
    """The arrays of a verified entry, or a one-line problem ``str``."""

    def bad(path: Path, reason: str) -> str:
        return f"cache entry {path} is damaged ({reason}); recomputing"

    if not meta.is_file():  # a FIFO would block the read for ever, a folder cannot be read
        return bad(meta, "not a regular file")
    try:
        record = json.loads(meta.read_bytes())
    except (OSError, ValueError, RecursionError) as err:
        return bad(meta, f"unreadable JSON: {one_line(err)}")
    problem = _check_record(record)
    if problem is not None:
        return bad(meta, f"unexpected content: {problem}")
    for field, wanted in (("name", name), ("config", config), ("version", version)):
        if _canonical(record[field]) != _canonical(wanted):
            return (
                f"cache entry {meta} records a different {field} than requested "
                f"(a hash collision or a hand-edited file); recomputing"
            )

    if not npz.exists():
        return bad(npz, "the .npz file is missing")
    if not npz.is_file():
        return bad(npz, "not a regular file")
    try:
        data = npz.read_bytes()
    except OSError as err:
        return bad(npz, f"unreadable: {one_line(err)}")
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        return bad(npz, "checksum mismatch: the file changed after it was written")

    try:
        # Load the bytes that were just verified, not the file again (it could change).
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in f.files}
    except Exception as err:  # noqa: BLE001 - any failure to read means "do not reuse"
        return bad(npz, f"np.load failed: {one_line(err)}")

    described = record["arrays"]
    if sorted(arrays) != sorted(described):
        return bad(npz, f"arrays {sorted(arrays)} instead of the recorded {sorted(described)}")
    for key in sorted(arrays):
        got, want = _describe(arrays[key]), described[key]
        if got != {"shape": want["shape"], "dtype": want["dtype"]}:
            return bad(
                npz,
                f"array {key!r} has shape {tuple(got['shape'])} and dtype {got['dtype']}, "
                f"recorded shape {tuple(want['shape'])} and dtype {want['dtype']}",
            )
    return unflatten_results(arrays)


def load(
    folder: Path,
    name: str,
    config: dict,
    *,
    version: Any = None,
    on_problem: Optional[Callable[[str], Any]] = None,
) -> Optional[dict]:
    """The arrays saved for exactly this ``name``, ``config`` and ``version``, or ``None``.

    They come back nested as they were saved (:func:`save`, :func:`unflatten_results`).

    ``None`` without a report when nothing was saved for this key. Otherwise the entry is
    verified, in this order: the ``.json`` is readable and well-formed and records the
    requested name, config and version; the ``.npz`` exists and is a regular file; the
    SHA-256 of its bytes is the recorded one; ``np.load`` (no pickles) reads it; the array
    names, shapes and dtypes are the recorded ones. On the first failure,
    ``on_problem(message)`` is called with one line naming the file and the reason, and
    ``None`` is returned: a damaged entry never raises and is never loaded, and the next
    :func:`save` with the same key replaces it.
    """
    npz, meta = _paths(folder, name, config, version)
    if not meta.exists():
        return None
    try:
        result = _verify(npz, meta, name, config, version)
    except Exception as err:  # noqa: BLE001 - a damaged cache must never crash a run
        result = f"cache entry {meta} could not be checked ({one_line(err)}); recomputing"
    if isinstance(result, str):
        if on_problem is not None:
            on_problem(result)
        return None
    return result


def _path_name(path) -> str:
    parts = []
    for key in path:
        part = getattr(key, "key", getattr(key, "idx", getattr(key, "name", None)))
        parts.append(str(part if part is not None else key))
    return "/".join(parts)


def flatten_tree(tree) -> dict[str, np.ndarray]:
    """A pytree of arrays as ``{"path/to/leaf": array}`` (``jax.tree_util`` key paths), for ``.npz``."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_name(path): np.asarray(leaf) for path, leaf in leaves}


def unflatten_tree(flat: dict, like):
    """Inverse of :func:`flatten_tree`: the arrays of ``flat`` in the structure of ``like``.

    ``like`` is any pytree of the expected structure (e.g. ``jax.eval_shape`` of an init);
    its leaves' shapes and dtypes are checked. Raises ``ValueError`` naming what differs.
    """
    import jax
    import jax.numpy as jnp

    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    names = [_path_name(path) for path, _ in paths]
    missing = sorted(set(names) - set(flat))
    if missing:
        raise ValueError(f"saved arrays lack {missing[:5]}")
    leaves = []
    for name, (_, ref) in zip(names, paths):
        value = np.asarray(flat[name])
        if value.shape != tuple(ref.shape):
            raise ValueError(f"saved array {name!r} has shape {value.shape}, expected {tuple(ref.shape)}")
        leaves.append(jnp.asarray(value, ref.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def load_or_fit(folder: Optional[Path], name: str, config: dict, fit, like, *, version: Any,
                on_problem=lambda msg: None):
    """A fitted model's parameters, saved under ``folder`` and reused.

    In a distributed run (:mod:`synthetic.distributed`) process 0 alone loads or fits, and
    saves; the others receive its parameters, so the processes never disagree about a model and
    do not fit it again each (on one machine they would share its cores). ``fit`` must therefore
    be a computation of one process (the toolkit's training loops are), not a sharded grid.

    Args:
      folder: where models are kept (``None``: always fit, never write).
      name, config, version: the key, as for :func:`save` / :func:`load`.
      fit: ``() -> (params, losses)``, called when nothing usable is saved.
      like: ``() -> pytree`` of the parameters' structure (e.g. ``jax.eval_shape`` of an init).
      on_problem: told about a damaged saved file (which is then refitted and replaced), and about
        a model that could not be saved (a full disk: it is used, and fitted again next time).
    Returns:
      ``(params, losses, fitted)``: ``fitted`` is False when the parameters were loaded.
    """
    from synthetic import distributed

    def on_writer() -> dict:
        if folder is not None:
            saved = load(folder, name, config, version=version, on_problem=on_problem)
            if saved is not None:
                return {**saved, "_fitted": np.asarray(False)}
        params, losses = fit()
        arrays = {**unflatten_results(flatten_tree(params)), "losses": np.asarray(losses)}
        if folder is not None:
            try:
                save(folder, name, config, arrays, version=version)
            except OSError as err:
                on_problem(f"{name}: could not save the model ({one_line(err)}); it is used, and fitted again next time")
        return {**arrays, "_fitted": np.asarray(True)}

    got = distributed.from_writer(on_writer)
    fitted, losses = bool(got.pop("_fitted")), got.pop("losses")
    return unflatten_tree(flatten_results(got), like()), losses, fitted
