"""Training from scratch: the reference and the retrained models, one routine per kind of model.

* :func:`fit_logistic`: the convex binary logistic model on fixed features (the random-feature
  model of section 4 is logistic on ``ReLU(W x)``), by full-batch gradient descent (the
  paper's recipe: 20000 steps at learning rate 0.05 from ``theta = 0``) or Newton's method.
  Several models on the same inputs (e.g. reference and retrained, which differ by a 0/1
  mask over the examples) are fitted at once, one matrix product per step.
* :func:`train`: minibatch training of any model with any optax optimizer (the transformer):
  ``epochs`` passes over fresh permutations, one jitted step.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory.validate import check_int, check_labels, check_positive

__all__ = ["FitResult", "SOLVERS", "fit_logistic", "fit_reference_and_retrained", "train"]

SOLVERS = ("gd", "newton")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FitResult:
    """Trained parameters with the full-batch gradient norm and loss where training stopped."""

    theta: jax.Array
    grad_norm: jax.Array
    loss: jax.Array


def _logistic_nll(theta_F, x_NxF, y_N, w_N):
    z = x_NxF @ theta_F
    # -log pi(y|x) = softplus(-z) for y = 1, softplus(z) for y = 0
    return jnp.sum(w_N * jax.nn.softplus(jnp.where(y_N == 1, -z, z)))


@functools.partial(jax.jit, static_argnames=("solver", "steps"))
def _fit(x, y, weights, learning_rate, *, solver, steps):
    w_KxN = weights / jnp.sum(weights, axis=1, keepdims=True)
    y_N = y.astype(x.dtype)
    # The gradient of the logistic NLL is explicit, X^T (w * (sigma(X theta) - y)). Keeping
    # theta as rows and a contiguous copy of X^T makes both products row-major: about twice
    # as fast on CPU as the column layout jax.grad produces.
    xt_FxN = jnp.swapaxes(x, 0, 1) + 0.0

    def grad(theta_KxF):
        return (w_KxN * (jax.nn.sigmoid(theta_KxF @ xt_FxN) - y_N[None])) @ x

    theta0 = jnp.zeros((w_KxN.shape[0], x.shape[1]), x.dtype)
    if solver == "gd":
        opt = optax.sgd(learning_rate)

        def step(carry, _):
            theta, state = carry
            updates, state = opt.update(grad(theta), state)
            return (optax.apply_updates(theta, updates), state), None

        (theta, _), _ = jax.lax.scan(step, (theta0, opt.init(theta0)), None, length=steps)
    else:

        def newton(theta_F, w_N):
            p_N = jax.nn.sigmoid(x @ theta_F)
            g_F = x.T @ (w_N * (p_N - y_N))
            h_FxF = (x * (w_N * p_N * (1 - p_N))[:, None]).T @ x
            # A tiny ridge keeps the solve defined on directions no example spans; GD from
            # zero never moves along them either, so both solvers share the minimiser.
            h_FxF = h_FxF + 1e-12 * jnp.trace(h_FxF) * jnp.eye(h_FxF.shape[0], dtype=x.dtype)
            return theta_F - jnp.linalg.solve(h_FxF, g_F)

        def step(theta, _):
            return jax.vmap(newton)(theta, w_KxN), None

        theta, _ = jax.lax.scan(step, theta0, None, length=steps)
    loss_K = jax.vmap(lambda th, w: _logistic_nll(th, x, y, w))(theta, w_KxN)
    return FitResult(theta=theta, grad_norm=jnp.linalg.norm(grad(theta), axis=1), loss=loss_K)


def fit_logistic(x, y, weights, *, solver: str = "gd", steps: int = 20000, learning_rate=0.05) -> FitResult:
    """Minimise the weighted cross-entropy ``sum_i w_i NLL_i / sum_i w_i`` from ``theta = 0``.

    Args:
      x: features ``(n, F)``; y: integer labels ``(n,)`` in {0, 1}.
      weights: ``(n,)``, e.g. a 0/1 mask selecting the examples to train on, or ``(K, n)``
        to fit ``K`` models on the same inputs at once (one matrix product per step).
      solver: ``"gd"``, full-batch gradient descent (the paper's recipe: 20000 steps at
        learning rate 0.05), or ``"newton"``, Newton's method (``steps`` iterations; a few
        dozen reach the minimiser to machine precision on well-posed problems).
      steps: iterations, >= 1.
      learning_rate: step size of ``"gd"``, a finite number > 0 (ignored by ``"newton"``, but
        checked all the same).
    Returns:
      A :class:`FitResult` (leading axis ``K`` if ``weights`` is 2-D) with the final
      full-batch gradient norm, the convergence check.
    Raises:
      ValueError: for a bad argument, labels outside {0, 1} included (checked when concrete:
        traced labels, inside ``jit``/``vmap``, cannot be inspected).
    """
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    steps = check_int(steps, "steps")
    check_positive(learning_rate, "learning_rate")
    check_labels(y, "y", 2)
    single = jnp.ndim(weights) == 1
    result = _fit(x, y, jnp.atleast_2d(weights), learning_rate, solver=solver, steps=steps)
    return jax.tree.map(lambda a: a[0], result) if single else result


def fit_reference_and_retrained(forget_x, forget_y, retain_x, retain_y, *, solver="gd", steps=20000,
                                learning_rate=0.05):
    """Fit ``pi_ref`` on forget + retain and ``pi_retr`` on retain only (section 4), in one call.

    Both share the inputs and differ by a 0/1 mask. Jittable and vmappable over seeds (traced
    labels and learning rates cannot be checked; concrete ones are, before any work).
    Args:
      forget_x, forget_y, retain_x, retain_y: features ``(n, F)`` and labels in {0, 1}.
      solver, steps, learning_rate: as for :func:`fit_logistic`.
    Returns:
      ``(reference, retrained)`` :class:`FitResult` records.
    """
    check_labels(forget_y, "forget_y", 2)
    check_labels(retain_y, "retain_y", 2)
    x = jnp.concatenate([forget_x, retain_x])
    y = jnp.concatenate([forget_y, retain_y])
    n_f, n_r = forget_x.shape[0], retain_x.shape[0]
    masks = jnp.stack([jnp.ones(n_f + n_r, x.dtype), jnp.concatenate([jnp.zeros(n_f, x.dtype), jnp.ones(n_r, x.dtype)])])
    both = fit_logistic(x, y, masks, solver=solver, steps=steps, learning_rate=learning_rate)
    return jax.tree.map(lambda a: a[0], both), jax.tree.map(lambda a: a[1], both)


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer"), donate_argnums=(0, 1))
def _train_step(params, opt_state, batch, *, loss_fn, optimizer):
    loss, grads = jax.value_and_grad(loss_fn)(params, batch)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 step counts with floats
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss


def train(
    key: jax.Array,
    params,
    loss_fn: Callable[[object, Mapping[str, jax.Array]], jax.Array],
    data: Mapping[str, jax.Array],
    optimizer: optax.GradientTransformation,
    *,
    batch_size: int,
    epochs: int,
    drop_last: bool = True,
    progress: Callable[[str], None] = lambda msg: None,
):
    """Minibatch training: ``epochs`` passes, each over a fresh permutation of the rows.

    Epoch ``e`` uses the permutation drawn with ``fold_in(key, e)``; the last partial batch of
    an epoch is dropped, or kept with ``drop_last=False`` (as a PyTorch ``DataLoader`` does by
    default: the rows left over after the full batches make one smaller batch, a second
    compiled step). The step is jitted once per ``(loss_fn, optimizer)`` and batch shape (not
    data size), so pass the same optimizer object to reuse it.

    Args:
      key: a ``jax.random`` key for the batch order.
      params: the initial parameters (a pytree; donated to the first step).
      loss_fn: ``(params, batch) -> scalar``, the batch a dict of the rows of ``data``.
      data: dict of arrays with a common leading axis (the examples).
      optimizer: an optax optimizer.
      batch_size, epochs: integers >= 1; ``batch_size`` at most the number of examples.
      drop_last: whether an epoch's last partial batch is dropped (default) or kept.
      progress: called with a line after each epoch (its loss, seconds, and the time left at
        that pace).
    Returns:
      ``(params, losses)``, ``losses`` the training loss of every step ``(steps,)`` (numpy).
    """
    sizes = {name: np.shape(a)[0] for name, a in data.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise ValueError(f"data must be a non-empty dict of arrays sharing their first axis, got {sizes}")
    n = next(iter(sizes.values()))
    batch_size, epochs = check_int(batch_size, "batch_size"), check_int(epochs, "epochs")
    if not isinstance(drop_last, bool):
        raise ValueError(f"drop_last must be True or False, got {drop_last!r}")
    if n < batch_size:
        raise ValueError(f"data has {n} examples, fewer than batch_size={batch_size}")
    data = {name: np.asarray(a) for name, a in data.items()}
    state = jax.jit(optimizer.init)(params)  # one program, not one per parameter shape
    per_epoch = n // batch_size if drop_last else -(-n // batch_size)
    losses = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
        for b in range(per_epoch):
            index = perm[b * batch_size : (b + 1) * batch_size]
            batch = {name: array[index] for name, array in data.items()}
            params, state, loss = _train_step(params, state, batch, loss_fn=loss_fn, optimizer=optimizer)
            losses.append(loss)
        last = float(losses[-1])  # waits for the epoch's steps
        per_epoch_s = (time.perf_counter() - t0) / (epoch + 1)
        left = f", about {per_epoch_s * (epochs - epoch - 1):.0f} s left" if epoch + 1 < epochs else ""
        progress(f"epoch {epoch + 1}/{epochs}: loss {last:.4f} ({per_epoch_s:.1f} s per epoch{left})")
    return params, np.asarray(jnp.stack(losses))
