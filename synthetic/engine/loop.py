"""The one unlearning loop: a grid of seeds x settings as one jitted, vmapped, sharded program.

:func:`unlearn` serves every model family of the toolkit (the logistic and random-feature
models of section 4, the transformer, the Theorem-2 runs of the logistic and softmax models):

* the model enters through :class:`~synthetic.engine.inputs.Providers`, which turn
  ``(params, batch)`` into the named inputs of a method's loss (log-probabilities, ...);
* a *setting* is a method (:class:`theory.methods.Method`, with its beta) plus optimizer
  hyperparameters (e.g. its learning rate); a *seed* has its own random key and, optionally,
  its own data, start parameters and evaluation context;
* the optimizer is any optax ``GradientTransformation``; per-setting hyperparameters are set
  through ``optax.inject_hyperparams``;
* the data is one full batch, or a sampler ``(key, data) -> batch`` called with
  ``fold_in(seed_key, step)`` at every step (see :func:`minibatches`);
* metrics ``(params, method, context) -> {name: array}`` are recorded at the steps of a
  :class:`~synthetic.engine.schedule.Schedule`, all inside ``lax.scan``;
* a run *diverges* at the first step whose parameters are non-finite (NaN or infinite), or at
  the first record step whose recorded float values (metrics and tracker records) are
  non-finite while its parameters are still finite (overflow in the metrics: parameters near
  the top of the float range whose logits or norms no longer fit). ``diverged_step`` is that
  step; the record there and every later record is NaN, and a run whose parameters become
  non-finite stays at its last finite point (parameters and optimizer state);
* an optional :class:`Tracker` updates running statistics at every step (first passage
  times, running extremes) without recording every step.

The per-run step, metrics and tracker are ``vmap``ped over settings, then over seeds (the
loops are not: one ``lax.scan`` over record intervals, a ``fori_loop`` over their steps), so
within a seed all settings share the data and each step is a matrix-matrix product. With
several devices, the seeds are sharded over them when there are at least as many seeds as
devices (each device then reads only its own seeds' data), the settings otherwise
(``jax.sharding``; the axis is padded to a multiple of the device count).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from typing import Any, Callable, Collection, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from synthetic.distributed import to_host
from synthetic.engine.inputs import Providers
from synthetic.engine.schedule import Schedule
from theory.methods import Method, as_methods, method_loss, stack_methods
from theory.validate import as_float_vector, check_int

__all__ = ["Tracker", "Minibatches", "EpochBatches", "unlearn", "minibatches", "epoch_batches", "keep_finite",
           "all_finite", "run_mesh", "RESERVED"]

RESERVED = ("steps", "diverged_step")
"""Output names the engine sets itself; metrics and trackers may not use them."""

PER_SEED = ("params", "data", "context")


@dataclasses.dataclass(frozen=True)
class Tracker:
    """A computation advanced at every step beside the optimizer (not only at records).

    For running statistics (first passage times, running extremes) or a second computation
    in lockstep with the run (the Theorem-2 experiment advances appendix A.2's recursion).

    Attributes:
      init: ``(params, method, context) -> state``, a dict of arrays at step 0.
      update: ``(state, params, step, method, context) -> state`` after optimizer step
        ``step`` (1-based: the parameters after ``step`` updates; int32).
      record: ``state -> {name: array}`` recorded beside the metrics at every record step
        (default: nothing).
      final: ``state -> {name: array}`` returned once per run (default: the whole state).
      sees_step: if true, ``update`` takes a sixth argument, the step itself: ``{"grads":
        ..., "updates": ..., "opt_state": ...}``, the gradient of the loss, the optimizer's
        update and its state after the step (for measuring the optimizer: gradient norms,
        Adam's second moments, update sizes). A step the divergence guard refuses is still
        the step seen.
    """

    init: Callable[[Any, Method, Any], Mapping[str, jax.Array]]
    update: Callable[..., Mapping[str, jax.Array]]
    record: Optional[Callable[[Mapping[str, jax.Array]], Mapping[str, jax.Array]]] = None
    final: Optional[Callable[[Mapping[str, jax.Array]], Mapping[str, jax.Array]]] = None
    sees_step: bool = False


def all_finite(tree) -> jax.Array:
    """True iff every leaf of ``tree`` is finite (a traced boolean inside jit)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def keep_finite(new, old, diverged_step, step):
    """The optimizer step's guard against divergence.

    Returns ``(new or old, diverged_step)``: if any leaf of ``new[0]`` (the parameters) is
    non-finite, the run stays at ``old`` and ``diverged_step`` records ``step + 1``, the first
    bad step, unless an earlier one was already recorded.
    """
    ok = all_finite(new[0])
    diverged_step = jnp.where((diverged_step < 0) & ~ok, step + 1, diverged_step)
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old), diverged_step


@dataclasses.dataclass(frozen=True)
class Minibatches:
    """A sampler drawing a fixed number of rows without replacement from each data group.

    The data is a dict of arrays whose names start with a group (``"forget_tokens"`` belongs to
    group ``"forget"``); every array of a group is indexed by the same rows. A size at least
    the group's number of rows takes every row in order (full batch); groups without a size
    are passed whole. The step key is split into one key per group, in the order given.
    Build one with :func:`minibatches`; equal samplers compare equal, so the engine's
    compiled program is reused.
    """

    sizes: tuple[tuple[str, int], ...]

    def __call__(self, key, data):
        groups = [g for g, _ in self.sizes]
        keys = jax.random.split(key, len(groups)) if len(groups) > 1 else [key]
        batch = dict(data)
        for (group, size), k in zip(self.sizes, keys):
            names = _group_names(data, group)
            n = data[names[0]].shape[0]
            index = jnp.arange(n) if size >= n else jax.random.choice(k, n, (size,), replace=False)
            batch.update({name: data[name][index] for name in names})
        return batch


def minibatches(**sizes: int) -> Minibatches:
    """A :class:`Minibatches` sampler, e.g. ``minibatches(forget=4, retain=4)``."""
    if not sizes:
        raise ValueError("minibatches needs at least one group size, e.g. minibatches(forget=4)")
    return Minibatches(tuple((group, check_int(size, f"batch size of {group!r}")) for group, size in sizes.items()))


def _group_names(data, group: str) -> list[str]:
    names = [n for n in data if n.startswith(group + "_")]
    if not names:
        raise ValueError(f"the data has no arrays of group {group!r} (names {group}_*); it has {sorted(data)}")
    return names


@dataclasses.dataclass(frozen=True)
class EpochBatches:
    """Epochs over one group, as a trainer's data loader: at each epoch a fresh permutation of
    its rows, cut into consecutive batches (the last batch of an epoch wraps around to the
    permutation's first rows, so every batch has the same size); each other group gives rows
    drawn at random (without replacement within a step) at every step, as TOFU's forget trainer
    pairs each forget example with a random retain one. Build one with :func:`epoch_batches`.

    Step ``t`` belongs to epoch ``t // steps_per_epoch``; the epoch's permutation is drawn with
    ``fold_in(fold_in(seed_key, 2**32 - 1), epoch)``, the other groups' rows with ``fold_in(seed_key, t)``.
    """

    group: str
    size: int
    others: tuple[tuple[str, int], ...]

    def steps_per_epoch(self, rows: int) -> int:
        """Batches per epoch of a group of ``rows`` rows: ``ceil(rows / size)``."""
        return -(-int(rows) // self.size)

    def draw(self, seed_key, step, data):
        names = _group_names(data, self.group)
        n = data[names[0]].shape[0]
        per_epoch = self.steps_per_epoch(n)
        epoch, i = step // per_epoch, step % per_epoch
        perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(seed_key, 0xFFFFFFFF), epoch), n)
        index = perm[(i * self.size + jnp.arange(self.size)) % n]
        batch = dict(data)
        batch.update({name: data[name][index] for name in names})
        if self.others:
            batch = Minibatches(self.others)(jax.random.fold_in(seed_key, step), batch)
        return batch


def epoch_batches(group: str, size: int, **others: int) -> EpochBatches:
    """An :class:`EpochBatches` sampler, e.g. ``epoch_batches("forget", 32, retain=32)``."""
    return EpochBatches(str(group), check_int(size, f"batch size of {group!r}"),
                        tuple((g, check_int(k, f"batch size of {g!r}")) for g, k in others.items()))


TIME_LEFT_EVERY = 15.0
"""Seconds between two time-left lines of a running grid (``unlearn(..., progress=...)``)."""


class _TimeLeft:
    """Turns the record callbacks of a running grid into at most one line every ``every``
    seconds: ``"step t of n, about N s left"``, at the pace since the first record (which
    comes once compilation is over)."""

    def __init__(self, progress: Callable[[str], None], total: int, every: float):
        self.progress, self.total, self.every = progress, total, every
        self.start: Optional[tuple[float, int]] = None
        self.last = 0.0

    def __call__(self, step) -> None:
        now, step = time.perf_counter(), int(step)
        if self.start is None:
            self.start, self.last = (now, step), now
            return
        t0, s0 = self.start
        if now - self.last < self.every or step >= self.total or step <= s0:
            return
        self.last = now
        left = (self.total - step) * (now - t0) / (step - s0)
        self.progress(f"step {step} of {self.total}, about {left:.0f} s left")


# The time-left line of the grid that is running. A jitted program's callback must not be a new
# function per call (it would compile again), so the program calls _on_record, which reads this.
_report_to: list[Optional[_TimeLeft]] = [None]
_report_lock = threading.Lock()


def _on_record(step) -> None:
    hook = _report_to[0]
    if hook is not None:
        hook(step)


def _nan_after(values, diverged):
    def mask(v):
        v = jnp.asarray(v)
        return jnp.where(diverged, jnp.nan, v) if jnp.issubdtype(v.dtype, jnp.floating) else v

    return jax.tree.map(mask, values)


def _init_run(params0, data, context, method, hyper, *, optimizer, track):
    """One run's carry at step 0: ``(params, optimizer state, diverged_step, tracker state)``."""
    state0 = optimizer.init(params0)
    if hyper:
        injected = state0.hyperparams
        state0 = state0._replace(hyperparams={**injected, **{k: v.astype(injected[k].dtype) for k, v in hyper.items()}})
    tracked0 = {} if track is None else track.init(params0, method, context)
    return params0, state0, jnp.asarray(-1, jnp.int32), tracked0


def _step_run(t, carry, data, context, key, method, *, providers, need, optimizer, batches, track):
    """One optimizer step of one run (``t`` is the 0-based step), guarded against divergence."""
    params, state, diverged, tracked = carry
    if batches is None:
        batch = data
    elif isinstance(batches, EpochBatches):
        batch = batches.draw(key, t, data)
    else:
        batch = batches(jax.random.fold_in(key, t), data)
    grads = jax.grad(lambda p: method_loss(method, providers.compute(p, batch, need)))(params)
    # Standard promotion for optax's own code: some of its transformations mix an int32 step
    # count with float hyperparameters (Adam's bias correction), which strict promotion refuses.
    with jax.numpy_dtype_promotion("standard"):
        updates, new_state = optimizer.update(grads, state, params)
        new_params = optax.apply_updates(params, updates)
    (params, state), diverged = keep_finite((new_params, new_state), (params, state), diverged, t)
    if track is not None:
        seen = ({"grads": grads, "updates": updates, "opt_state": new_state},) if track.sees_step else ()
        tracked = track.update(tracked, params, t + 1, method, context, *seen)
    return params, state, diverged, tracked


def _record_run(carry, context, method, step, *, metrics, track):
    """One run's values at record step ``step`` (NaN once it has diverged), and its carry with
    ``diverged_step`` set to ``step`` if a recorded float value is non-finite here first."""
    values = dict(metrics(carry[0], method, context))
    if track is not None and track.record is not None:
        values.update(track.record(carry[3]))
    floats = [v for v in jax.tree.leaves(values) if jnp.issubdtype(jnp.asarray(v).dtype, jnp.inexact)]
    diverged = carry[2]
    if floats:
        diverged = jnp.where((diverged < 0) & ~all_finite(floats), step, diverged)
    return _nan_after(values, diverged >= 0), (carry[0], carry[1], diverged, carry[3])


@functools.partial(jax.jit, static_argnames=("axes", "providers", "need", "optimizer", "batches", "metrics", "track",
                                             "report"))
def _grid(params0, data, context, keys, methods, hyper, intervals, *, axes, providers, need, optimizer, batches,
          metrics, track, report=False):
    # vmap the per-run functions (seeds outside, settings inside), not the loops: the carry
    # has leading (S, C) axes and the loops run once over all runs. Tracing a vmapped scan
    # would re-trace its body to find which carries are batched, several times per axis.
    p_ax, d_ax, c_ax = axes
    n_seeds, n_settings = keys.shape[0], jax.tree.leaves(methods)[0].shape[0]

    def grid(f, seed_axes, setting_axes):
        inner = jax.vmap(f, in_axes=setting_axes, axis_size=n_settings)
        return jax.vmap(inner, in_axes=seed_axes, axis_size=n_seeds)

    init = grid(functools.partial(_init_run, optimizer=optimizer, track=track),
                (p_ax, d_ax, c_ax, None, None), (None, None, None, 0, 0))
    step = grid(functools.partial(_step_run, providers=providers, need=need, optimizer=optimizer, batches=batches,
                                  track=track),
                (None, 0, d_ax, c_ax, 0, None), (None, 0, None, None, None, 0))
    record = grid(functools.partial(_record_run, metrics=metrics, track=track), (0, c_ax, None, None),
                  (0, None, 0, None))

    def interval(carry, bounds):
        carry = jax.lax.fori_loop(bounds[0], bounds[1], lambda t, c: step(t, c, data, context, keys, methods), carry)
        if report:
            jax.debug.callback(_on_record, bounds[1])
        values, carry = record(carry, context, methods, bounds[1])
        return carry, values

    carry, records = jax.lax.scan(interval, init(params0, data, context, methods, hyper), intervals)
    final = {} if track is None else grid(track.final or dict, 0, 0)(carry[3])
    records = jax.tree.map(lambda a: jnp.moveaxis(a, 0, 2), records)  # (E, S, C, ...) -> (S, C, E, ...)
    return records, carry[2], final


@functools.partial(jax.jit, static_argnames=("axes", "providers", "need", "optimizer", "batches", "metrics", "track",
                                             "report", "mesh", "at_once", "turns"))
def _in_turn(params0, data, context, runs, intervals, *, axes, providers, need, optimizer, batches, metrics, track,
             report, mesh, at_once, turns):
    # One run (its own key, method, hyperparameters, seed and place in its device's queue) from
    # start to end, not vmapped: each device maps it over its share of the runs, ``at_once`` at
    # a time, so the memory is that of ``at_once`` runs per device whatever the grid.
    total = intervals[-1, 1]

    def one(shared, run):
        def pick(tree, ax):
            return tree if ax is None else jax.tree.map(lambda a: a[run["seed"]], tree)

        params, d, c = (pick(tree, ax) for tree, ax in zip(shared, axes))
        method, key = run["method"], run["key"]
        carry = _init_run(params, d, c, method, run["hyper"], optimizer=optimizer, track=track)
        step = functools.partial(_step_run, providers=providers, need=need, optimizer=optimizer, batches=batches,
                                 track=track)

        def interval(carry, bounds):
            carry = jax.lax.fori_loop(bounds[0], bounds[1], lambda t, cr: step(t, cr, d, c, key, method), carry)
            if report:
                jax.debug.callback(_on_record, bounds[1] + (run["turn"] // at_once) * total)
            values, carry = _record_run(carry, c, method, bounds[1], metrics=metrics, track=track)
            return carry, values

        carry, records = jax.lax.scan(interval, carry, intervals)
        final = {} if track is None else (track.final or dict)(carry[3])
        return records, carry[2], final

    # the shared trees are explicit inputs, replicated on every device (not closed over)
    return jax.shard_map(lambda shared, xs: jax.lax.map(functools.partial(one, shared), xs, batch_size=at_once),
                         mesh=mesh, in_specs=(P(), P("runs")), out_specs=P("runs"),
                         check_vma=False)((params0, data, context), runs)


def _unlearn_in_turn(providers, stacked, need, optimizer, params, data, schedule, metrics, context, hyper, batches,
                     seed_list, n_settings, per_seed, track, devices, progress, at_once):
    """:func:`unlearn` with ``runs_at_once``: the runs ``(seed, setting)`` flattened, split over
    the devices, and run ``at_once`` at a time on each (``lax.map``); the same outputs."""
    n_seeds = len(seed_list)
    dtype = _float_dtype(_seed0(params, "params", per_seed))
    mesh = run_mesh(devices)
    n_runs = n_seeds * n_settings
    pad = (-n_runs) % mesh.devices.size
    per_device = (n_runs + pad) // mesh.devices.size
    seed_of, setting_of = np.divmod(np.arange(n_runs), n_settings)
    runs = {
        "seed": jnp.asarray(seed_of, jnp.int32),
        "method": jax.tree.map(lambda a: jnp.asarray(a, dtype)[setting_of], stacked),
        "hyper": {k: jnp.asarray(v, dtype)[setting_of] for k, v in hyper.items()},
    }
    runs = _repeat_last(runs, pad)
    runs["turn"] = jnp.asarray(np.arange(n_runs + pad) % per_device, jnp.int32)
    runs = jax.device_put(runs, NamedSharding(mesh, P("runs")))
    runs["key"] = _keys(_repeat_last(np.asarray(seed_list)[seed_of], pad), NamedSharding(mesh, P("runs")))
    params, data, context = (jax.device_put(t, NamedSharding(mesh, P())) for t in (params, data, context))
    steps = schedule.array()
    intervals = jnp.asarray(np.stack([np.concatenate([[0], steps[:-1]]), steps], axis=1), jnp.int32)
    axes = tuple(0 if name in per_seed else None for name in PER_SEED)
    turns = -(-per_device // at_once)
    run = functools.partial(
        _in_turn, params, data, context, runs, intervals, axes=axes, providers=providers, need=need,
        optimizer=optimizer, batches=batches, metrics=metrics, track=track, report=progress is not None, mesh=mesh,
        at_once=at_once, turns=turns,
    )  # fmt: skip
    records, diverged, tracked = _run_reporting(run, progress, turns * int(steps[-1]))

    def grid(a):  # (R, ...) -> (S, C, ...)
        a = a[:n_runs]
        return a.reshape((n_seeds, n_settings) + a.shape[1:])

    records, diverged, tracked = to_host((records, diverged, tracked))  # from every process, in a distributed run
    return _outputs(jax.tree.map(grid, records), jax.tree.map(grid, diverged), jax.tree.map(grid, tracked), steps)


def _run_reporting(run, progress, total):
    """``run()``, with its record callbacks turned into time-left lines for ``progress``."""
    if progress is None:
        return run()
    with _report_lock:  # one reporting grid at a time
        _report_to[0] = _TimeLeft(progress, total, TIME_LEFT_EVERY)
        try:
            return jax.block_until_ready(run())
        finally:
            _report_to[0] = None


def _outputs(records, diverged, tracked, steps) -> dict:
    """The engine's outputs: every record and tracker output, ``diverged_step`` and ``steps``."""
    out: dict = {}
    for group in (records, tracked):
        for name, value in group.items():
            if name in RESERVED or name in out:
                raise ValueError(f"metric or tracker output name {name!r} is reserved or used twice")
            out[name] = value
    out["diverged_step"] = np.asarray(diverged)
    out["steps"] = steps
    return out


def run_mesh(devices=None) -> Mesh:
    """A one-axis mesh named ``"runs"`` over ``devices`` (default: all visible devices)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("runs",))


def _keys(seeds, sharding):
    """``jax.random.key(s)`` of each seed, made where ``sharding`` puts them (a key array cannot
    be moved onto devices of other processes; made there, it can be sharded over them)."""
    return _key_maker(sharding)(jnp.asarray(seeds, jnp.uint32))


@functools.lru_cache(maxsize=8)
def _key_maker(sharding):
    return jax.jit(jax.vmap(jax.random.key), out_shardings=sharding)


def _repeat_last(tree, pad: int):
    """Every array of ``tree`` with its last entry along the leading axis repeated ``pad`` times
    (padding a sharded axis to a multiple of the device count)."""
    if not pad:
        return tree
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(jnp.asarray(a)[-1:], pad, axis=0)]), tree)


def sharded_map(f: Callable, xs, *, devices=None):
    """``jax.lax.map(f, xs)`` with the leading axis of ``xs`` split over devices.

    Each device runs its share one element at a time, all devices at once. For the section-4
    fits this is the fast order on a CPU: one seed's inputs (a few MB) stay in its core's
    cache for all 20000 steps, where a ``vmap`` over seeds streams every seed's inputs through
    memory at every step (measured: 2x faster on one core, 3.2x on two). Traceable; the
    result does not depend on the number of devices (the axis is padded by repeating its
    last element, and the padding is dropped).
    """
    mesh = run_mesh(devices)
    n = jax.tree.leaves(xs)[0].shape[0]
    d = mesh.devices.size
    if d == 1:
        return jax.lax.map(f, xs)
    xs = _repeat_last(xs, (-n) % d)
    # check_vma=False: the loops inside f start from constants (theta = 0), which would
    # otherwise have to be marked as varying over the device axis.
    out = jax.shard_map(lambda x: jax.lax.map(f, x), mesh=mesh, in_specs=P("runs"), out_specs=P("runs"),
                        check_vma=False)(xs)
    return jax.tree.map(lambda a: a[:n], out)


def _float_dtype(params):
    dtypes = [a.dtype for a in jax.tree.leaves(params) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)]
    if not dtypes:
        raise ValueError("params must contain at least one floating-point array")
    return jnp.result_type(*dtypes)


def _checked(providers, methods, optimizer, params, data, schedule, metrics, context, hyperparams, batches, seeds,
             per_seed, track):
    """Every argument of :func:`unlearn` checked before any work: ``(methods, their stack (active
    components), the inputs they need, the schedule, the seeds, the hyperparameters as arrays)``."""
    if not isinstance(providers, Providers):
        raise ValueError(f"providers must be a synthetic.engine.Providers, got {type(providers).__name__}")
    methods = as_methods(methods)
    stacked = stack_methods(methods).active()
    need = providers.check(stacked.needs)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")
    if not isinstance(schedule, Schedule):
        schedule = Schedule(tuple(schedule))
    if not callable(metrics):
        raise ValueError(f"metrics must be a function (params, method, context) -> dict, got {type(metrics).__name__}")
    if batches is not None and not callable(batches) and not isinstance(batches, EpochBatches):
        raise ValueError(f"batches must be a function (key, data) -> batch, an EpochBatches or None, got "
                         f"{type(batches).__name__}")
    if track is not None and not isinstance(track, Tracker):
        raise ValueError(f"track must be a Tracker or None, got {type(track).__name__}")
    unknown = sorted(set(per_seed) - set(PER_SEED))
    if unknown:
        raise ValueError(f"per_seed may name {PER_SEED}, got {unknown}")
    seed_list = list(range(check_int(seeds, "seeds"))) if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seed_list or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seed_list):
        raise ValueError(f"seeds must be a positive count or a non-empty list of integers >= 0, got {seeds!r}")
    n_seeds, n_settings = len(seed_list), len(methods)
    for name in per_seed:
        leaves = jax.tree.leaves({"params": params, "data": data, "context": context}[name])
        bad = [np.shape(a) for a in leaves if np.ndim(a) < 1 or np.shape(a)[0] != n_seeds]
        if bad:
            raise ValueError(f"{name} is per seed, so every array must have a leading axis of {n_seeds} seeds; got {bad[:3]}")

    _float_dtype(_seed0(params, "params", per_seed))
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact) and not bool(jnp.all(jnp.isfinite(leaf))):
            raise ValueError(f"params must be finite (the starting point of every run), got non-finite entries in "
                             f"params{jax.tree_util.keystr(path)}")
    hyper = {}
    for name, values in (hyperparams or {}).items():
        values = as_float_vector(values, f"hyperparams[{name!r}]", n_settings, per="method")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"hyperparams[{name!r}] must be finite, got {values.tolist()}")
        hyper[name] = values
    if "learning_rate" in hyper and not np.all(hyper["learning_rate"] > 0):
        raise ValueError(f"learning rates must be > 0, got {hyper['learning_rate'].tolist()}")
    if hyper:
        # shapes only: nothing is computed or compiled
        probe = jax.eval_shape(optimizer.init, _seed0(params, "params", per_seed))
        injected = getattr(probe, "hyperparams", None)
        if not isinstance(injected, dict) or not set(hyper) <= set(injected):
            have = sorted(injected) if isinstance(injected, dict) else "none"
            raise ValueError(f"hyperparams {sorted(hyper)} must be injected hyperparameters of the optimizer "
                             f"(build it with optax.inject_hyperparams; it injects {have})")

    _check_metric_names(metrics, methods[0], _seed0(params, "params", per_seed),
                        _seed0(context, "context", per_seed))
    return methods, stacked, need, schedule, seed_list, hyper


def _seed0(tree, name: str, per_seed):
    """``tree`` as one run sees it: seed 0's slice when ``name`` is per seed, else itself."""
    return jax.tree.map(lambda a: a[0], tree) if name in per_seed else tree


def _check_metric_names(metrics, method, params, context) -> None:
    """Refuse a metric named like an output the engine adds (:data:`RESERVED`) before the grid
    runs, from the shapes alone (``jax.eval_shape``: nothing is computed). A metrics function that
    cannot be traced this way is left to the check after the run."""
    try:
        names = list(jax.eval_shape(lambda p: dict(metrics(p, method, context)), params))
    except Exception:  # noqa: BLE001 - only an early courtesy; the run reports the real error
        return
    clash = sorted(set(names) & set(RESERVED))
    if clash:
        raise ValueError(f"metrics returns {clash}, names reserved for the engine's own outputs "
                         f"({', '.join(RESERVED)}); rename them")


def unlearn(
    providers: Providers,
    methods: Sequence[Method],
    optimizer: optax.GradientTransformation,
    params,
    data: Mapping[str, Any],
    schedule: Schedule,
    metrics: Callable[[Any, Method, Any], Mapping[str, jax.Array]],
    *,
    context: Any = None,
    hyperparams: Optional[Mapping[str, Sequence[float]]] = None,
    batches: Optional[Callable] = None,
    seeds: int | Sequence[int] = 1,
    per_seed: Collection[str] = (),
    track: Optional[Tracker] = None,
    devices: Optional[list] = None,
    progress: Optional[Callable[[str], None]] = None,
    runs_at_once: Optional[int] = None,
) -> dict[str, np.ndarray]:
    """Run every setting from ``params`` for every seed; record metrics on a schedule.

    Setting ``c`` is ``methods[c]`` with optimizer hyperparameters ``hyperparams[name][c]``.

    Args:
      providers: the model family's :class:`~synthetic.engine.inputs.Providers`.
      methods: ``C`` concrete methods (each with its hyperparameters, e.g. beta).
      optimizer: an optax optimizer; for per-setting hyperparameters it must come from
        ``optax.inject_hyperparams`` (e.g. ``optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)``).
      params: the starting parameters (the reference model), a pytree.
      data: dict of arrays: the full batch, or what ``batches`` samples from.
      schedule: the record steps (:class:`~synthetic.engine.schedule.Schedule`, or a list).
      metrics: ``(params, method, context) -> {name: scalar or array}``, recorded at every
        step of ``schedule`` (step 0 is ``params`` itself); a value may also be a mapping of
        such (e.g. one per evaluation set), returned with the same nesting.
      context: anything the metrics (and tracker) read: evaluation sets, reference values.
      hyperparams: name -> ``C`` values, set in the optimizer's injected hyperparameters.
      batches: ``(key, data) -> batch``, e.g. :func:`minibatches`, or an :class:`EpochBatches`
        (:func:`epoch_batches`: epochs over one group, a trainer's data loader); ``None`` means
        full batch.
      seeds: the number of seeds ``S`` (seeds ``0..S-1``) or the seeds themselves; seed ``s``
        has key ``jax.random.key(s)``, and the batch of step ``t`` is drawn with
        ``fold_in(key, t)``.
      per_seed: which of ``"params"``, ``"data"``, ``"context"`` have a leading seed axis ``S``
        (the others are shared by every seed).
      track: an optional :class:`Tracker`.
      devices: devices to shard the seeds (or, with fewer seeds than devices, the settings)
        over (default: all visible).
      progress: if given, called while the grid runs, at most every :data:`TIME_LEFT_EVERY`
        seconds, with ``"step t of n, about N s left"``.
      runs_at_once: ``None`` (default): every run of a device at once (vmapped: for small models
        a step of all runs is one matrix-matrix product). An integer ``k``: the runs (seed x
        setting) are split over the devices and each device runs its share ``k`` at a time
        (``lax.map``), for models whose runs do not fit in memory at once: the memory is that of
        ``k`` runs per device whatever the grid, the program compiles once, and on a CPU one
        run at a time is often the faster order (a run's arrays stay in the core's cache).
        The outputs are the same.
    Returns:
      numpy arrays: each metric and tracker record ``(S, C, E, ...)`` with ``E = len(schedule)``;
      each final tracker output ``(S, C, ...)``; ``diverged_step (S, C)``: -1 if never, else the
      first step whose parameters are non-finite or, if earlier, the first record step whose
      recorded float values are non-finite (records from there on are NaN; a metric that may
      be NaN or infinite by design must therefore not be recorded); ``steps (E,)``.
    Raises:
      ValueError: for a bad argument (non-finite starting parameters included), or a method
        needing an input the providers lack.
    """
    methods, stacked, need, schedule, seed_list, hyper = _checked(
        providers, methods, optimizer, params, data, schedule, metrics, context, hyperparams, batches, seeds,
        per_seed, track)
    n_seeds, n_settings = len(seed_list), len(methods)
    if runs_at_once is not None:
        return _unlearn_in_turn(providers, stacked, need, optimizer, params, data, schedule, metrics, context, hyper,
                                batches, seed_list, n_settings, per_seed, track, devices, progress,
                                check_int(runs_at_once, "runs_at_once"))
    dtype = _float_dtype(_seed0(params, "params", per_seed))

    mesh = run_mesh(devices)
    n_dev = mesh.devices.size
    # Shard the seeds when there are enough of them: each device then holds and reads only its
    # own seeds' data, where sharding the settings makes every device read every seed's data
    # (measured on figure 4's grid: 3.7 s on one device; on two, 5.1 s with the settings sharded,
    # 2.8 s with the seeds).
    # Otherwise shard the settings. Either axis is padded by repeating its last entry so that
    # every device gets a full share, and the padding is dropped from the results.
    by_seed = n_dev > 1 and n_seeds >= n_dev
    pad_c = 0 if by_seed else (-n_settings) % n_dev
    pad_s = (-n_seeds) % n_dev if by_seed else 0
    padded = _repeat_last(stacked, pad_c)
    runs, replicated = NamedSharding(mesh, P("runs")), NamedSharding(mesh, P())
    on_settings, on_seeds = (replicated, runs) if by_seed else (runs, replicated)
    padded = jax.device_put(jax.tree.map(lambda a: a.astype(dtype), padded), on_settings)
    hyper = jax.device_put({k: _repeat_last(jnp.asarray(v, dtype), pad_c) for k, v in hyper.items()}, on_settings)

    def seed_part(name, tree):
        if name not in per_seed:
            return jax.device_put(tree, replicated)
        return jax.device_put(_repeat_last(tree, pad_s), on_seeds)

    params, data, context = (seed_part(n, t) for n, t in (("params", params), ("data", data), ("context", context)))
    keys = _keys(np.asarray(seed_list + seed_list[-1:] * pad_s), on_seeds)
    steps = schedule.array()
    intervals = jnp.asarray(np.stack([np.concatenate([[0], steps[:-1]]), steps], axis=1), jnp.int32)
    axes = tuple(0 if name in per_seed else None for name in PER_SEED)

    run = functools.partial(
        _grid, params, data, context, keys, padded, hyper, intervals, axes=axes, providers=providers, need=need,
        optimizer=optimizer, batches=batches, metrics=metrics, track=track, report=progress is not None,
    )  # fmt: skip
    records, diverged, tracked = _run_reporting(run, progress, int(steps[-1]))
    records, diverged, tracked = to_host((records, diverged, tracked))  # from every process, in a distributed run
    cut = functools.partial(jax.tree.map, lambda v: v[:n_seeds, :n_settings])
    return _outputs(cut(records), cut(diverged), cut(tracked), steps)
