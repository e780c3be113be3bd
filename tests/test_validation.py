"""Argument checks of the public entry points: out-of-range values, wrong types and overflow.

One table: each row calls an entry point with one bad argument and expects a ``ValueError``
whose message names the argument and shows what was given. The pipeline's rows run with the
fit and the unlearning replaced by functions that fail, so they also show that the checks
come before any work. Then the cases where the fix is a correct result: lists accepted by
the objectives, method names accepted where a ``Method`` is expected, a single learning rate
accepted as a list of one, and overflow reported as divergence.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthetic import engine
from synthetic.engine import Provider, Providers, Schedule, fit_reference_and_retrained
from synthetic.models import logistic, transformer
from synthetic.optim import SGD
from synthetic.worlds.markov import data as markov
from synthetic.worlds.section4 import data as section4_data
from synthetic.worlds.section4 import pipeline
from synthetic.worlds.section4.pipeline import unlearn_binary
from synthetic.worlds.thm2 import run as thm2
from synthetic.worlds.thm2.data import make_forget_set
from synthetic.worlds.tofu_mini import measures as tofu_measures
from theory import objectives as obj
from theory import theorem2 as t2
from theory.methods import Method, get_method, method_loss, stack_methods

F32 = jnp.float32
X = jnp.asarray([[1.0, 0.0], [2.0, 1.0], [0.5, -1.0], [1.0, 1.0]], F32)
Y = jnp.asarray([0, 1, 1, 0], jnp.int32)
ONES = jnp.ones(4, F32)
THETA = jnp.zeros(2, F32)
INPUTS = {"forget_logp": jnp.asarray([-1.0, -2.0], F32), "forget_ref_logp": jnp.asarray([-0.5, -1.5], F32)}

_XS = np.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
PIPE = dict(x_forget=_XS, y_forget=[0, 1, 1], x_retain=_XS, y_retain=[1, 0, 0], x_eval_forget=_XS,
            x_eval_retain=_XS, y_idk=[1, 0, 0], methods=["GA"], learning_rates=[0.1], steps=2, eval_every=1)


def _pipe(**changes):
    return lambda: pipeline.unlearning_pipeline(**{**PIPE, **changes})


_TF = {}


def _tf():
    """A tiny transformer (vocabulary 10, context 4), built on first use."""
    if not _TF:
        config = transformer.TransformerConfig(vocab_size=10, context=4, layers=1, width=8, heads=2)
        _TF["params"] = transformer.init(jax.random.key(0), config)
    return _TF["params"]


def _forget_set():
    return make_forget_set(jax.random.key(0), n_f=2, d=4)


def _problem():
    x = X[None]
    return pipeline.Problem(forget=x, y_forget=Y[None], y_idk=Y[None], retain=x, y_retain=Y[None], eval_forget=x,
                            eval_retain=x)


ROWS = [
    # --- silent wrong results from out-of-range values
    ("fit_logistic label 2", lambda: engine.fit_logistic(X, jnp.asarray([0, 1, 2, 0], jnp.int32), ONES, steps=1),
     r"^y must hold labels in \{0, 1\}, got \[2\]"),
    ("fit_reference_and_retrained label 2",
     lambda: fit_reference_and_retrained(X, jnp.asarray([0, 2, 1, 0], jnp.int32), X, Y, steps=1),
     r"^forget_y must hold labels in \{0, 1\}, got \[2\]"),
    ("fit_logistic learning rate -1", lambda: engine.fit_logistic(X, Y, ONES, solver="gd", steps=1, learning_rate=-1.0),
     r"^learning_rate must be a finite number > 0, got -1"),
    ("binary_batch label -1 (the engine's batch)", lambda: logistic.binary_batch(THETA, X, jnp.asarray([-1, 0, 1, 0], jnp.int32)),
     r"^forget_y must hold labels in \{0, 1\}, got \[-1\]"),
    ("binary_batch y_idk 3", lambda: logistic.binary_batch(THETA, X, Y, y_idk=jnp.asarray([0, 3, 1, 0], jnp.int32)),
     r"^y_idk must hold labels in \{0, 1\}, got \[3\]"),
    ("take_label -1", lambda: logistic.take_label(jnp.zeros((2, 3), F32), jnp.asarray([-1, 0], jnp.int32)),
     r"^y must hold labels in \{0, 1, 2\}, got \[-1\]"),
    ("pipeline y_retain -1", _pipe(y_retain=[-1, 0, 0]), r"^y_retain must hold labels in \{0, 1\}, got \[-1\]"),
    ("forward token 100", lambda: transformer.forward(_tf(), jnp.asarray([[100, 1]], jnp.int32)),
     r"^tokens_BxT must hold token ids of the vocabulary of 10 in \{0, \.\.\., 9\}, got \[100\]"),
    ("generate prompt -1", lambda: transformer.generate(_tf(), jax.random.key(0), jnp.asarray([[-1]], jnp.int32), length=2),
     r"^prompt_BxP must hold token ids .* got \[-1\]"),
    ("greedy_complete token 10", lambda: transformer.greedy_complete(_tf(), jnp.asarray([[1, 10]], jnp.int32),
                                                                     jnp.asarray([2], jnp.int32)),
     r"^tokens_BxT must hold token ids .* got \[10\]"),
    ("jit_next_token_log_probs token 10",
     lambda: transformer.jit_next_token_log_probs(_tf(), jnp.asarray([[1, 10]], jnp.int32)),
     r"^tokens_BxT must hold token ids .* got \[10\]"),
    ("sequence_batch retain token 12",
     lambda: transformer.sequence_batch(_tf(), np.ones((1, 3), np.int32), np.ones((1, 3), np.float32),
                                        np.full((1, 3), 12, np.int32), np.ones((1, 3), np.float32)),
     r"^retain_tokens must hold token ids .* got \[12\]"),
    ("true_next_log_probs chain 5",
     lambda: markov.true_next_log_probs(markov.chain_matrices(markov.MarkovConfig()), np.zeros((1, 3), np.int32),
                                        np.asarray([5], np.int32)),
     r"^chain_N must hold chain ids of the 3 chains in \{0, 1, 2\}, got \[5\]"),
    ("true_next_log_probs state 10",
     lambda: markov.true_next_log_probs(markov.chain_matrices(markov.MarkovConfig()), np.full((1, 3), 10, np.int32),
                                        np.asarray([0], np.int32)),
     r"^tokens_NxT must hold states .* got \[10\]"),
    ("pipeline theta_ref nan", _pipe(theta_ref=[np.nan, 0.0], theta_retr=[0.0, 0.0]),
     r"^theta_ref must be finite \(numbers, no NaN or infinity\), got nan at flat index 0"),
    ("pipeline theta_retr inf", _pipe(theta_ref=[0.0, 0.0], theta_retr=[0.0, np.inf]),
     r"^theta_retr must be finite \(numbers, no NaN or infinity\), got inf at flat index 1"),
    ("pipeline theta_ref wrong size", _pipe(theta_ref=[0.0], theta_retr=[0.0, 0.0]),
     r"^theta_ref must have one value per feature of the model \(2\), got 1"),
    ("pipeline fit_learning_rate -1", _pipe(fit_solver="gd", fit_learning_rate=-1),
     r"^fit_learning_rate must be a finite number > 0, got -1"),
    ("pipeline fit_learning_rate nan", _pipe(fit_solver="gd", fit_learning_rate=float("nan")),
     r"^fit_learning_rate must be a finite number > 0, got nan"),
    ("pipeline fit_solver", _pipe(fit_solver="adam"), r"^fit_solver must be one of \('gd', 'newton'\), got 'adam'"),
    ("pipeline theta_ref alone", _pipe(theta_ref=[0.0, 0.0]),
     r"^theta_ref and theta_retr must both be given, or neither .* got theta_ref without theta_retr"),
    ("pipeline theta_retr alone", _pipe(theta_retr=[0.0, 0.0]),
     r"^theta_ref and theta_retr must both be given, or neither .* got theta_retr without theta_ref"),
    # --- errors that did not say what is wrong
    ("npo_loss strings", lambda: obj.npo_loss(["a"], [-0.5], beta=1.0), r"^logp must be an array of numbers, got \['a'\]"),
    ("dpo_loss None", lambda: obj.dpo_loss([-1.0], [-0.5], None, [-0.5], beta=1.0),
     r"^logp_l must be an array of numbers, got None"),
    ("kl_divergence booleans", lambda: obj.kl_divergence([[True, False]], [[-0.5, -1.0]]),
     r"^logp_dist must be an array of numbers, got \[\[True, False\]\]"),
    ("method_loss a number", lambda: method_loss(3, INPUTS),
     r"^method must be a Method or a registered method name .* got int; .*get_method"),
    ("method_loss unknown name", lambda: method_loss("NPX", INPUTS),
     r"^method must be a Method or a registered method name, got unknown name 'NPX'; did you mean 'NPO'\?"),
    ("law_of a number", lambda: t2.law_of(1.0), r"^method must be a Method or a registered method name"),
    ("stack_methods bad entry", lambda: stack_methods(["GA", None]),
     r"^methods\[1\] must be a Method or a registered method name .* got NoneType"),
    ("pipeline learning_rates too many", _pipe(learning_rates=[1e-3, 1e-3]),
     r"^learning_rates must have one value per method \(1\), got 2"),
    ("pipeline learning_rates a string", _pipe(learning_rates="1e-3"),
     r"^learning_rates must be a number or a 1-D sequence of numbers \(one per method\), got '1e-3' \(a str\)"),
    ("pipeline learning_rates negative", _pipe(learning_rates=-1e-3), r"^learning_rates must be a finite number > 0"),
    ("pipeline betas a string", _pipe(betas=["2"]), r"^betas must be a number or a 1-D sequence .* got \['2'\]"),
    ("pipeline methods empty", _pipe(methods=[], learning_rates=[]), r"^methods must name at least one method"),
    ("pipeline methods unknown", _pipe(methods=["NPX"]), r"^methods\[0\] must be a Method .* unknown name 'NPX'"),
    ("unlearn methods empty",
     lambda: engine.unlearn(logistic.BINARY_INPUTS, [], SGD, THETA, {}, Schedule((0, 1)), pipeline.binary_metrics),
     r"^methods must name at least one method"),
    ("unlearn_binary methods empty",
     lambda: unlearn_binary(_problem(), THETA[None], THETA[None], [], [], schedule=Schedule((0, 1))),
     r"^methods must name at least one method"),
    ("stack_methods empty", lambda: stack_methods([]), r"^methods must name at least one method"),
    ("gd_divergence methods empty", lambda: thm2.gd_divergence(_forget_set(), [], eta=1.0, steps=10),
     r"^methods must name at least one method"),
    ("get_method beta '2'", lambda: get_method("NPO", beta="2"), r"^beta must be a finite number > 0, got '2' \(a str\)"),
    ("get_method beta True", lambda: get_method("NPO", beta=True), r"^beta must be a finite number > 0, got True \(a bool\)"),
    ("Method.of gamma '0'", lambda: Method.of(simnpo=1, gamma="0"), r"^gamma must be a finite number >= 0, got '0' \(a str\)"),
    ("Method.of weight '1'", lambda: Method.of(npo="1"), r"^method weight npo must be finite \(numbers, no NaN or infinity\), got '1' \(a str\)"),
    ("unlearn hyperparams string",
     lambda: engine.unlearn(logistic.BINARY_INPUTS, ["GA"], SGD, THETA, {}, Schedule((0, 1)), pipeline.binary_metrics,
                            hyperparams={"learning_rate": ["0.1"]}),
     r"^hyperparams\['learning_rate'\] must be a number or a 1-D sequence"),
    # --- keys and tokens: refused by name, not by JAX's internals
    ("transformer.init seed 0", lambda: transformer.init(0, transformer.TransformerConfig()),
     r"^key must be one JAX PRNG key, e\.g\. jax\.random\.key\(0\) .* got 0$"),
    ("make_dataset seed 'a'", lambda: section4_data.make_dataset("a"), r"^key must be one JAX PRNG key.* got 'a' \(a str\)"),
    ("make_markov_data two keys", lambda: markov.make_markov_data(jax.random.split(jax.random.key(0))),
     r"^key must be one JAX PRNG key.* got an array of dtype key<fry> and shape \(2,\)"),
    ("random_features_init seed 1.0", lambda: logistic.random_features_init(1.0), r"^key must be one JAX PRNG key"),
    ("generate seed 0", lambda: transformer.generate(_tf(), 0, [[1, 2]], length=3), r"^key must be one JAX PRNG key"),
    ("forward string tokens", lambda: transformer.forward(_tf(), "abc"),
     r"^tokens_BxT must be an integer array of token ids of shape \(batch, time\), got a str"),
    ("greedy_complete ragged prompts", lambda: transformer.greedy_complete(_tf(), [[1, 2], [3]], [1, 1]),
     r"^tokens_BxT must be an integer array of token ids"),
    # --- the TOFU measures: one conversion, strings, booleans and complex numbers refused
    ("forget_quality strings", lambda: tofu_measures.forget_quality(["0.1", "0.2"], [0.1, 0.2]),
     r"^R_model must be an array of numbers, got \['0\.1', '0\.2'\]"),
    ("forget_quality booleans", lambda: tofu_measures.forget_quality([0.5, 0.4], [True, False]),
     r"^R_retrained must be an array of numbers, got \[True, False\]"),
    ("truth_ratio complex", lambda: tofu_measures.truth_ratio([0.5 + 1j], [0.5]),
     r"^p_perturbed must be an array of numbers, got \[\(0\.5\+1j\)\]"),
    ("probability_score string", lambda: tofu_measures.probability_score("0.5", split="retain"),
     r"^p_true must be an array of numbers, got '0\.5' \(a str\)"),
    # --- overflow: refused before any work
    ("gd_divergence eta 1e300", lambda: thm2.gd_divergence(_forget_set(), ["GA"], eta=1e300, steps=10),
     r"^eta=1e\+300 is too large for 10 steps: \|\|b\|\| could reach .* eta must be <= "),
    ("unlearn non-finite start", lambda: engine.unlearn(logistic.BINARY_INPUTS, ["GA"], SGD, jnp.asarray([np.nan, 0.0], F32),
                                                        {}, Schedule((0, 1)), pipeline.binary_metrics),
     r"^params must be finite"),
]


@pytest.fixture
def no_work(monkeypatch):
    """The pipeline's fit and unlearning replaced by functions that fail: a row that reaches
    them did work before its check."""
    def fail(*args, **kwargs):
        raise AssertionError("the pipeline started work before checking its arguments")

    monkeypatch.setattr(engine, "fit_reference_and_retrained", fail)
    monkeypatch.setattr(pipeline, "unlearn_binary", fail)


@pytest.mark.parametrize("call, message", [pytest.param(f, m, id=i) for i, f, m in ROWS])
def test_bad_arguments_raise_a_value_error_naming_them(call, message, no_work):
    with pytest.raises(ValueError) as info:
        call()
    assert re.search(message, str(info.value)), f"message {str(info.value)!r} does not match {message!r}"


# --------------------------------------------------------------------------- correct results


@pytest.mark.parametrize("name, args, kwargs", [
    ("npo_loss", ([-1.0, -3.0], [-0.5, -0.5]), {"beta": 1}),
    ("npo_weight", ([-1.0], [-0.5]), {"beta": 2.0}),
    ("dpo_loss", ([-1.0], [-0.5], [-2.0], [-0.5]), {"beta": 1.0}),
    ("kto_loss", ([-1.0], [-0.5]), {"beta": 1.0, "z_ref": 0.25}),
    ("simnpo_loss", ([-4.0], [2.0]), {"beta": 1.0, "gamma": 0.5}),
    ("kl_divergence", ([[-0.5, -1.0]], [[-1.0, -0.5]]), {}),
    ("ga_loss", ([-1, -2],), {}),
])
def test_lists_given_to_the_objectives_equal_the_arrays(name, args, kwargs):
    fn = getattr(obj, name)
    from_lists = fn(*args, **kwargs)
    from_arrays = fn(*(jnp.asarray(a, F32) for a in args), **kwargs)
    assert from_lists.dtype == from_arrays.dtype == F32
    np.testing.assert_array_equal(np.asarray(from_lists), np.asarray(from_arrays))


def test_token_lists_and_numpy_scalars_equal_the_arrays():
    params = _tf()
    tokens = [[1, 2, 3], [4, 5, 0]]
    as_array = jnp.asarray(tokens, jnp.int32)
    np.testing.assert_array_equal(transformer.token_log_probs(params, tokens), transformer.token_log_probs(params, as_array))
    np.testing.assert_array_equal(transformer.sequence_log_probs(params, tokens, [[1, 1, 1], [1, 1, 0]]),
                                  transformer.sequence_log_probs(params, as_array, jnp.asarray([[1, 1, 1], [1, 1, 0]])))
    np.testing.assert_array_equal(transformer.greedy_complete(params, tokens, [1, 2]),
                                  transformer.greedy_complete(params, as_array, jnp.asarray([1, 2])))
    # a raw key and a typed key of the same seed give the same parameters
    config = transformer.TransformerConfig(vocab_size=10, context=4, layers=1, width=8, heads=2)
    raw, typed = transformer.init(jax.random.PRNGKey(3), config), transformer.init(jax.random.key(3), config)
    np.testing.assert_array_equal(raw["embed_VxD"], typed["embed_VxD"])
    assert float(tofu_measures.forget_quality(np.float32([0.5, 0.7, 0.9]), [0.5, 0.7, 0.9])) == pytest.approx(1.0)


def test_method_names_are_accepted_where_a_method_is_expected():
    np.testing.assert_array_equal(method_loss("NPO", INPUTS), method_loss(get_method("NPO"), INPUTS))
    assert t2.law_of("GA") == "ga" and t2.law_of("NPO") == "npo"
    x, y, theta = np.eye(2), np.asarray([0, 1]), np.zeros(2)
    np.testing.assert_array_equal(t2.predicted_time_to_distance(x, y, theta, [1.0, 2.0], eta=1.0, method="NPO"),
                                  t2.predicted_time_to_distance(x, y, theta, [1.0, 2.0], eta=1.0, method=get_method("NPO")))
    assert jax.tree.map(np.asarray, stack_methods(["GA", "NPO"]).weights).keys() == {"ga", "npo"}


def _linear(theta, batch, need):
    return {"forget_logp": batch["forget_x"] @ theta}


def _overflowing_metrics(theta, method, ctx):
    return {"theta": theta, "square": jnp.sum(theta * theta)}


def test_metrics_that_overflow_while_the_parameters_are_finite_are_divergence():
    # GA on forget_logp = x @ theta moves theta by -lr mean(x) = -lr (1.5, 0.5) per step. At lr 1e19
    # (float32) theta stays finite for 1e19 steps, but |theta|^2 = 2.5e38 t^2 overflows at step 2.
    x = jnp.asarray([[1.0, 0.0], [2.0, 1.0]], F32)
    out = engine.unlearn(Providers((Provider(("forget_logp",), _linear),)), ["GA", "GA"], SGD, THETA, {"forget_x": x},
                         Schedule.every(1, 4), _overflowing_metrics, hyperparams={"learning_rate": [1e19, 0.1]})
    assert out["diverged_step"].tolist() == [[2, -1]]
    np.testing.assert_allclose(out["theta"][0, 0, 1], [-1.5e19, -0.5e19], rtol=1e-6)
    assert np.isfinite(out["square"][0, 0, :2]).all() and np.isnan(out["square"][0, 0, 2:]).all()
    assert np.isnan(out["theta"][0, 0, 2:]).all() and np.isfinite(out["theta"][0, 1]).all()


def test_the_pipeline_reports_overflow_as_divergence_and_takes_a_single_method_and_rate():
    # At lr 1e306 the float64 parameters stay finite for a few steps, the metrics do not.
    out = pipeline.unlearning_pipeline(**{**PIPE, "methods": "GA", "learning_rates": 1e306})
    assert out["setting_method"].tolist() == ["GA"] and out["setting_learning_rate"].tolist() == [1e306]
    step = int(out["diverged_step"][0])
    assert step >= 1
    before = out["steps"] < step
    for name in pipeline.METRICS:
        assert np.isfinite(out[name][0][before]).all() and np.isnan(out[name][0][~before]).all(), name
