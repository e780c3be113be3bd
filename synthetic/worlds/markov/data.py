"""The mixture-of-Markov-chains data of the SimNPO synthetic study (Fan et al. 2024, arXiv:2410.07163).

Sequences of states ``0..n_states-1`` from three chains, each tied to a block of states:
the retain chain on ``{0,1,2}``, forget chain 1 on ``{3,4,5}``, forget chain 2 on ``{6,7,8}``.
As in the study, from a state *inside* its block a chain moves to a state of the block with
probability ``stay`` (0.8, uniform inside the block) and leaks ``1 - stay`` uniformly to the
other states; from a state *outside* its block it moves uniformly to any of the
``n_states`` states (``outside="uniform"``, the default). The initial state follows the
block law (``stay / |B|`` on each block state, ``(1 - stay) / (V - |B|)`` elsewhere; see
:func:`initial_law`). With the defaults about 62% of the tokens of a length-20 sequence lie
in its chain's block (about 38% outside). ``outside="block"`` gives every row the block law
instead (the next state then does not depend on the current one). Defaults: length 20, 10000
retain, 5000 forget-1 and 5000 forget-2 sequences, the first 80% of each set for training
and the rest for testing; ``forget2_length = 5`` gives the short-answer variant (sequences
padded to ``length`` with token 0 and a 0 mask).

Everything is explicit: :func:`make_markov_data` takes a key and a :class:`MarkovConfig`
and returns arrays; :func:`true_next_log_probs` gives the exact next-token law of each
sequence's own chain (for the KL-to-truth metric).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from theory.validate import check_int, check_key, check_labels

__all__ = [
    "MarkovConfig",
    "Sequences",
    "MarkovData",
    "transition_matrix",
    "initial_law",
    "chain_matrices",
    "sample_chain",
    "make_markov_data",
    "true_next_log_probs",
    "DATA_VERSION",
    "RETAIN",
    "FORGET1",
    "FORGET2",
]

DATA_VERSION = "study-rows-1"
"""Names the sampler of :func:`sample_chain` and the chains' laws; part of saved models'
configs, so a change to how sequences are drawn from a key never reuses models trained on
the old draws."""

OUTSIDE = ("uniform", "block")
"""Allowed values of ``outside``: the law of a row of a state outside the chain's block."""

RETAIN, FORGET1, FORGET2 = 0, 1, 2
"""Chain ids (index into :func:`chain_matrices`)."""


@dataclasses.dataclass(frozen=True)
class MarkovConfig:
    """Parameters of the data (defaults: the SimNPO study)."""

    n_states: int = 10
    blocks: tuple = ((0, 1, 2), (3, 4, 5), (6, 7, 8))
    stay: float = 0.8
    length: int = 20
    forget2_length: int = 20
    n_retain: int = 10000
    n_forget1: int = 5000
    n_forget2: int = 5000
    train_fraction: float = 0.8
    outside: str = "uniform"

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(tuple(int(s) for s in b) for b in self.blocks))
        for name in ("n_states", "length", "forget2_length", "n_retain", "n_forget1", "n_forget2"):
            check_int(getattr(self, name), name, 2 if "length" in name or name == "n_states" else 1)
        if self.forget2_length > self.length:
            raise ValueError(f"forget2_length ({self.forget2_length}) must be <= length ({self.length})")
        if len(self.blocks) != 3:
            raise ValueError(f"blocks must list 3 blocks (retain, forget-1, forget-2), got {len(self.blocks)}")
        for b in self.blocks:
            if not b or len(set(b)) != len(b) or min(b) < 0 or max(b) >= self.n_states or len(b) >= self.n_states:
                raise ValueError(f"blocks: each must be distinct states in [0, {self.n_states}) leaving some outside, got {b}")
        if not (0.0 < self.stay < 1.0):
            raise ValueError(f"stay must be in (0, 1), got {self.stay!r}")
        if not (0.0 < self.train_fraction < 1.0):
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction!r}")
        _check_outside(self.outside)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"] = [list(b) for b in self.blocks]
        return d


def _check_outside(outside) -> None:
    if not isinstance(outside, str) or outside not in OUTSIDE:
        raise ValueError(f"outside must be one of {', '.join(map(repr, OUTSIDE))}, got {outside!r}")


def initial_law(block, n_states: int, stay: float) -> np.ndarray:
    """``(n_states,)``: the block law, ``stay / |block|`` on each state of the block and
    ``(1 - stay) / (n_states - |block|)`` on each other state (the initial state's law)."""
    block = list(block)
    law = np.full(n_states, (1.0 - stay) / (n_states - len(block)))
    law[block] = stay / len(block)
    return law


def transition_matrix(block, n_states: int, stay: float, outside: str = "uniform") -> np.ndarray:
    """The ``(n_states, n_states)`` transition matrix of the chain tied to ``block``.

    The row of a state of the block is the block law (:func:`initial_law`): ``stay / |block|``
    on each state of the block and ``(1 - stay) / (n_states - |block|)`` on each other state.
    The row of a state outside the block is uniform, ``1 / n_states`` on every state
    (``outside="uniform"``, the SimNPO study), or the block law too (``outside="block"``).
    """
    _check_outside(outside)
    law = initial_law(block, n_states, stay)
    if outside == "block":
        return np.tile(law, (n_states, 1))
    mat = np.full((n_states, n_states), 1.0 / n_states)
    mat[list(block)] = law
    return mat


def chain_matrices(config: MarkovConfig) -> np.ndarray:
    """``(3, V, V)``: transition matrices of the retain, forget-1 and forget-2 chains."""
    return np.stack([transition_matrix(b, config.n_states, config.stay, config.outside) for b in config.blocks])


def sample_chain(key: jax.Array, matrix_VxV, initial_V, n: int, length: int) -> np.ndarray:
    """``n`` int32 sequences ``(n, length)``: first state from ``initial_V``, then the chain.

    Inverse-CDF sampling from uniforms drawn with ``key`` (one ``jax.random`` call, then a
    vectorised loop over the ``length`` positions; no per-shape compilation).
    """
    check_key(key)
    mat = np.asarray(matrix_VxV, float)
    init = np.asarray(initial_V, float)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or init.shape != mat.shape[:1]:
        raise ValueError(f"matrix_VxV must be (V, V) and initial_V (V,), got {mat.shape} and {init.shape}")
    if not (np.allclose(mat.sum(axis=1), 1.0) and np.isclose(init.sum(), 1.0) and (mat >= 0).all() and (init >= 0).all()):
        raise ValueError("matrix_VxV rows and initial_V must be probability vectors")
    u = np.asarray(jax.random.uniform(key, (n, length), jnp.float32), float)
    cdf_VxV = np.cumsum(mat, axis=1)
    cdf_VxV[:, -1] = np.inf  # rounding never sends a draw past the last state
    cdf0 = np.cumsum(init)
    cdf0[-1] = np.inf
    out = np.empty((n, length), np.int32)
    out[:, 0] = np.sum(u[:, :1] >= cdf0[None, :], axis=1)
    for t in range(1, length):
        out[:, t] = np.sum(u[:, t : t + 1] >= cdf_VxV[out[:, t - 1]], axis=1)
    return out


@dataclasses.dataclass(frozen=True)
class Sequences:
    """A set of sequences: int32 ``tokens (N, T)``, float32 ``mask (N, T)`` (1 = real token),
    int32 ``chain (N,)`` (0 retain, 1 forget-1, 2 forget-2) and ``length (N,)`` scored
    transitions per sequence (real tokens minus one)."""

    tokens: np.ndarray
    mask: np.ndarray
    chain: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return self.mask[:, 1:].sum(axis=1)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def take(self, index) -> "Sequences":
        return Sequences(self.tokens[index], self.mask[index], self.chain[index])

    @staticmethod
    def concat(parts) -> "Sequences":
        return Sequences(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("tokens", "mask", "chain")))


@dataclasses.dataclass(frozen=True)
class MarkovData:
    """Train and test :class:`Sequences` of each chain."""

    retain_train: Sequences
    retain_test: Sequences
    forget1_train: Sequences
    forget1_test: Sequences
    forget2_train: Sequences
    forget2_test: Sequences


def make_markov_data(key: jax.Array, config: MarkovConfig = MarkovConfig()) -> MarkovData:
    """Sample the three sets and split each into train (first ``train_fraction``) and test."""
    check_key(key)
    if not isinstance(config, MarkovConfig):
        raise ValueError(f"config must be a MarkovConfig, got {type(config).__name__}")
    mats = chain_matrices(config)
    out = {}
    spec = (
        ("retain", RETAIN, config.n_retain, config.length),
        ("forget1", FORGET1, config.n_forget1, config.length),
        ("forget2", FORGET2, config.n_forget2, config.forget2_length),
    )
    for (name, chain, n, length), k in zip(spec, jax.random.split(key, 3)):
        # The initial state follows the block law (not a row: rows outside the block differ).
        init = initial_law(config.blocks[chain], config.n_states, config.stay)
        toks = np.asarray(sample_chain(k, mats[chain], init, n, length))
        tokens = np.zeros((n, config.length), np.int32)
        tokens[:, :length] = toks
        mask = np.zeros((n, config.length), np.float32)
        mask[:, :length] = 1.0
        seqs = Sequences(tokens, mask, np.full(n, chain, np.int32))
        n_train = int(round(config.train_fraction * n))
        if not 0 < n_train < n:
            raise ValueError(f"train_fraction={config.train_fraction} leaves an empty train or test split of {n} {name} sequences")
        out[f"{name}_train"] = seqs.take(slice(0, n_train))
        out[f"{name}_test"] = seqs.take(slice(n_train, n))
    return MarkovData(**out)


def true_next_log_probs(matrices_CxVxV, tokens_NxT, chain_N) -> jax.Array:
    """``(N, T-1, V)``: ``log P_chain(. | token_t)``, the true law of token ``t+1`` of each
    sequence under its own chain (float32).

    Concrete chain ids must lie in ``[0, C)`` and tokens in ``[0, V)`` (``ValueError``: JAX's
    indexing would clamp them to another chain or state).
    """
    mats = jnp.asarray(matrices_CxVxV, jnp.float32)
    tokens = jnp.asarray(tokens_NxT)
    chain = jnp.asarray(chain_N)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise ValueError(f"matrices_CxVxV must be (C, V, V), got {mats.shape}")
    if tokens.ndim != 2 or chain.shape != tokens.shape[:1]:
        raise ValueError(f"tokens_NxT must be (N, T) and chain_N (N,), got {tokens.shape} and {chain.shape}")
    check_labels(chain, "chain_N", mats.shape[0], what=f"chain ids of the {mats.shape[0]} chains")
    check_labels(tokens, "tokens_NxT", mats.shape[1], what=f"states of the {mats.shape[1]}-state chains")
    return jnp.log(mats[chain[:, None], tokens[:, :-1]])
