"""Argument checks shared by the toolkit: each raises ``ValueError`` naming the argument,
what was given and what is allowed (strings and booleans are never taken for numbers).

``check_*`` only check; ``as_float_array`` and ``as_float_vector`` also convert (array-likes
to a float JAX array; a number or a sequence of them to a 1-D float64 numpy array).

Traced values (inside ``jit``/``vmap``) cannot be inspected; the value checks let them
through, and the public entry points validate before tracing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_positive",
    "check_nonnegative",
    "check_finite",
    "check_broadcastable",
    "check_same_shape",
    "check_int",
    "check_key",
    "check_labels",
    "as_float_array",
    "as_float_vector",
]


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _dtype_of(value, name: str, allowed: str):
    """The dtype ``value`` has, or would have as an array; ``ValueError`` if it has none."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(value).dtype
        except (TypeError, ValueError):  # ragged nesting, unconvertible objects
            raise ValueError(f"{name} must be {allowed}, got {_shown(value)}") from None
    return dtype


def _shown(value) -> str:
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{text} (a {type(value).__name__})" if isinstance(value, (str, bytes, bool, np.bool_)) or value is None else text


def _is_real(dtype) -> bool:
    """Integer or floating point: not bool, complex, string or object."""
    return bool(jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating))


def as_real_numpy(value, name: str, allowed: str = "an array of numbers") -> np.ndarray:
    """A concrete ``value`` as a float64 numpy array; ``ValueError`` naming ``name`` unless it
    holds real numbers (strings, booleans, complex numbers and objects are refused, never
    converted: ``"2"`` is not the number 2)."""
    if not _is_real(_dtype_of(value, name, allowed)):
        raise ValueError(f"{name} must be {allowed}, got {_shown(value)}")
    return np.asarray(value, dtype=np.float64)


def check_positive(value, name: str) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is a finite number > 0.

    Strings and booleans are refused (not converted). Traced values (inside ``jit``/``vmap``)
    cannot be inspected and are let through; the public entry points validate before tracing.
    """
    if _is_concrete(value):
        v = as_real_numpy(value, name, "a finite number > 0")
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"{name} must be a finite number > 0, got {_shown(value)}")


def check_nonnegative(value, name: str) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is a finite number >= 0."""
    if _is_concrete(value):
        v = as_real_numpy(value, name, "a finite number >= 0")
        if not np.all(np.isfinite(v) & (v >= 0)):
            raise ValueError(f"{name} must be a finite number >= 0, got {_shown(value)}")


def check_finite(value, name: str) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is a finite number
    (no NaN, no infinity; strings and booleans refused)."""
    if _is_concrete(value):
        allowed = "finite (numbers, no NaN or infinity)"
        v = as_real_numpy(value, name, allowed)
        if not np.all(np.isfinite(v)):
            bad = np.flatnonzero(~np.isfinite(v))
            raise ValueError(f"{name} must be {allowed}, got {v.ravel()[bad[0]]} at flat index {bad[0]} "
                             f"({bad.size} non-finite of {v.size})")


def check_labels(y, name: str, n_classes: int, what: str = "labels") -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``y`` is a label in
    ``{0, ..., n_classes - 1}`` (integers, or floats holding integers).

    Out-of-range labels (or token ids, ``what="token ids"``) are never silently clamped or
    wrapped: JAX indexing would pick class ``n_classes - 1`` for ``-1`` and clamp the others.
    Traced labels (inside ``jit``/``vmap``) cannot be inspected and are let through.
    """
    if not _is_concrete(y):
        return
    allowed = f"{what} in {{{', '.join(map(str, range(n_classes)))}}}" if n_classes <= 4 else \
        f"{what} in {{0, ..., {n_classes - 1}}}"
    dtype = _dtype_of(y, name, allowed)
    if not (_is_real(dtype) or jnp.issubdtype(dtype, jnp.bool_)):
        raise ValueError(f"{name} must hold {allowed}, got {_shown(y)}")
    v = np.asarray(y)
    ok = (v >= 0) & (v < n_classes) & (v == np.floor(v)) if v.dtype.kind == "f" else (v >= 0) & (v < n_classes)
    if not np.all(ok):
        raise ValueError(f"{name} must hold {allowed}, got {np.unique(v[~ok])[:5].tolist()}")


def as_float_array(x, name: str):
    """``x`` as a floating-point JAX array (lists and numpy arrays converted, integers to the
    default float dtype); ``ValueError`` naming ``name`` for strings, booleans or objects.

    Traced values keep their dtype when floating (integers are cast likewise).
    """
    dtype = _dtype_of(x, name, "an array of numbers")
    if not _is_real(dtype):
        raise ValueError(f"{name} must be an array of numbers, got {_shown(x)}")
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(x)
    return jnp.asarray(x, dtype=jnp.result_type(float))


def as_float_vector(values, name: str, n=None, per: str = "setting") -> np.ndarray:
    """``values`` as a 1-D float64 numpy array, a single number as one entry.

    ``ValueError`` naming ``name`` unless it holds real numbers (not strings or booleans) in at
    most one dimension and, when ``n`` is given, exactly ``n`` of them (one per ``per``).
    """
    v = np.atleast_1d(as_real_numpy(values, name, f"a number or a 1-D sequence of numbers (one per {per})"))
    if v.ndim != 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence (one per {per}), got shape {v.shape}")
    if n is not None and v.shape[0] != n:
        raise ValueError(f"{name} must have one value per {per} ({n}), got {v.shape[0]}: {v.tolist()}")
    return v


def check_broadcastable(name: str, value, shape) -> None:
    """Raise ``ValueError`` naming ``name`` if ``value`` does not broadcast to ``shape``."""
    try:
        out = jnp.broadcast_shapes(jnp.shape(value), tuple(shape))
    except ValueError:
        out = None
    if out != tuple(shape):
        raise ValueError(f"{name} must broadcast to shape {tuple(shape)}, got shape {jnp.shape(value)}")


def check_same_shape(**arrays) -> None:
    """Raise ``ValueError`` naming the arguments if the arrays do not share one shape."""
    shapes = {name: jnp.shape(a) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}={s}" for n, s in shapes.items())
        raise ValueError(f"arguments must have the same shape, got {listed}")


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int``; ``ValueError`` unless it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_key(key, name: str = "key") -> None:
    """``ValueError`` unless ``key`` is one JAX PRNG key: a typed key (``jax.random.key(0)``) or
    a raw ``uint32`` pair (``jax.random.PRNGKey(0)``). A plain seed such as ``0`` is refused
    rather than guessed at: it would otherwise fail deep inside JAX."""
    if isinstance(key, jax.core.Tracer):
        return
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key) and shape == ()
    raw = dtype is not None and dtype == np.uint32 and shape == (2,)
    if not (typed or raw):
        raise ValueError(f"{name} must be one JAX PRNG key, e.g. jax.random.key(0) or jax.random.PRNGKey(0); "
                         f"got {_shown(key) if dtype is None else f'an array of dtype {dtype} and shape {shape}'}")
