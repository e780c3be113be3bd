"""Markov-chain data, LM training and unlearning engine, metrics, and the markov experiment."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from synthetic import engine, store
from synthetic.analysis import fit_laws, law_fits, seed_mean
from synthetic.models import transformer as tf
from synthetic.worlds.markov import config as mconfig
from synthetic.worlds.markov import data as markov
from synthetic.worlds.markov import adam_stats, lm
from synthetic.worlds.markov import run as mrun
from synthetic.worlds.markov.claims import markov_claims
from synthetic.worlds.markov.data import MarkovConfig
from theory.methods import get_method, method_loss
from theory.objectives import kl_divergence

SMALL = MarkovConfig(n_retain=400, n_forget1=200, n_forget2=200)
MODEL = tf.TransformerConfig(vocab_size=10, context=20, layers=1, width=16, heads=2, mlp_ratio=2)


# --------------------------------------------------------------------------- data


def test_splits_lengths_and_short_variant():
    data = markov.make_markov_data(jax.random.key(1), SMALL)
    assert (len(data.retain_train), len(data.retain_test)) == (320, 80)
    assert (len(data.forget1_train), len(data.forget2_test)) == (160, 40)
    assert np.all(data.forget1_train.chain == markov.FORGET1)
    assert data.retain_train.tokens.dtype == np.int32 and np.all(data.retain_train.length == 19)
    # retain sequences live mostly on {0,1,2}: 62% in the block with the study's rows
    frac = np.isin(data.retain_train.tokens, [0, 1, 2]).mean()
    assert abs(frac - 0.62) < 0.03
    short = markov.make_markov_data(jax.random.key(1), MarkovConfig(n_retain=50, n_forget1=50, n_forget2=50, forget2_length=5))
    assert short.forget2_train.tokens.shape == (40, 20)
    assert np.all(short.forget2_train.length == 4) and np.all(short.forget2_train.mask[:, 5:] == 0)
    assert np.all(short.forget2_train.tokens[:, 5:] == 0)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"stay": 1.5}, "stay"), ({"forget2_length": 30}, "forget2_length"), ({"n_retain": 0}, "n_retain"),
     ({"blocks": ((0, 1), (2, 3))}, "blocks"), ({"train_fraction": 1.0}, "train_fraction")],
)  # fmt: skip
def test_bad_data_config_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MarkovConfig(**kwargs)


def test_true_law_and_kl_metric():
    cfg = MarkovConfig()
    mats = markov.chain_matrices(cfg)
    data = markov.make_markov_data(jax.random.key(2), MarkovConfig(n_retain=20, n_forget1=20, n_forget2=20))
    seqs = markov.Sequences.concat([data.retain_test, data.forget2_test])
    truth = markov.true_next_log_probs(mats, seqs.tokens, seqs.chain)
    assert truth.shape == (8, 19, 10) and truth.dtype == jnp.float32
    np.testing.assert_allclose(truth[0, 3], np.log(mats[0][seqs.tokens[0, 3]]), rtol=1e-6)
    mask = jnp.asarray(seqs.mask[:, 1:])

    def masked_kl(p, q):
        return float(jnp.sum(kl_divergence(p, q) * mask) / jnp.sum(mask))

    # a model equal to the truth has KL 0; the retain law scored on forget-2 data is far off
    assert abs(masked_kl(truth, truth)) < 1e-6
    wrong = markov.true_next_log_probs(mats, seqs.tokens, np.zeros(8, np.int32))
    # by hand: the retain chain's row against each sequence's own, averaged over scored positions
    kls = [np.sum(mats[c][t] * np.log(mats[c][t] / mats[0][t])) for c, row in zip(seqs.chain, seqs.tokens) for t in row[:-1]]
    assert masked_kl(truth, wrong) == pytest.approx(np.mean(kls), rel=1e-5) and np.mean(kls) > 0.1


# --------------------------------------------------------------------------- the experiment, tiny
# One tiny run of the whole experiment (training, the grid, the long runs) serves every test
# below: each asserts its own numbers on it, and the tests that run the engine again use the
# experiment's own settings, so they reuse its compiled program.


def _tiny_config() -> dict:
    config = mconfig.markov_config(quick=True)
    config["data"].update(n_retain=400, n_forget1=200, n_forget2=200)
    config["model"].update(layers=1, width=16)
    config["train"].update(learning_rate=3e-3, batch_size=32, epochs=4)
    config["unlearn"].update(steps=4, n_eval=[8, 8, 8])
    config["eps_map"].update(simnpo_betas=[1.0, 3.5])
    config["collapse"].update(methods=["GA", "NPO", "SimNPO", "NPO+RT"], eval_every=1, n_eval=[8, 8, 8])
    config["long"].update(steps=30, n_records=8, fit_decades_from=10, n_eval=8)
    return config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The experiment at a tiny size, its saved models and the engine inputs it used (case B)."""
    config = _tiny_config()
    folder = tmp_path_factory.mktemp("markov")
    # Under the suite's strict promotion (the numbers are those of a user's standard promotion,
    # bitwise), so that the grid test below reuses this run's compiled program.
    arrays = mrun.run_markov(config, folder=folder)
    model = tf.TransformerConfig(**config["model"])
    like = jax.eval_shape(lambda k: tf.init(k, model), jax.random.key(0))
    saved = {}
    for path in sorted((folder / "models").glob("*.npz")):
        name = path.name.rsplit("-", 1)[0]
        with np.load(path) as f:
            saved[name] = (store.unflatten_tree({k: f[k] for k in f.files if k != "losses"}, like), f["losses"])
    data = markov.make_markov_data(jax.random.key(config["data_seed"]), mconfig.case_data_config(config, "B"))
    ref, retr = saved["markov_reference_B"][0], saved["markov_retrained"][0]
    mats = markov.chain_matrices(mconfig.data_config(config))
    probe = data.forget1_train.take(slice(0, config["long"]["n_forget"]))
    ctx = {"ev": lm.eval_sets(data.retain_test, data.forget1_test, data.forget2_test, config["unlearn"]["n_eval"], retr,
                                lambda t, c: markov.true_next_log_probs(mats, t, c), probe),
           "params_ref": ref}
    forget = markov.Sequences.concat([data.forget1_train, data.forget2_train])
    udata = tf.sequence_batch(ref, forget.tokens, forget.mask, data.retain_train.tokens, data.retain_train.mask)
    return {"config": config, "arrays": arrays, "folder": folder, "saved": saved, "data": data, "ctx": ctx,
            "udata": udata, "model": model}


def test_training_at_a_tiny_size_learns_the_chains(tiny):
    (ref, ref_losses), (retr, _) = tiny["saved"]["markov_reference_B"], tiny["saved"]["markov_retrained"]
    assert ref_losses.shape == (4 * (480 // 32),)  # retain + forget-1 training sequences, 4 epochs of batch 32
    assert tiny["saved"]["markov_reference_A"][1].shape == (4 * (640 // 32),)  # + forget-2 in case A
    assert ref_losses[-10:].mean() < ref_losses[:10].mean() - 0.2
    evaluate = jax.jit(lambda p: lm.markov_metrics(p, None, tiny["ctx"]))
    v_init = evaluate(tf.init(jax.random.key(0), tiny["model"]))
    v_ref, v_retr = evaluate(ref), evaluate(retr)
    # training brings both models much closer to the true chains than the untrained one
    assert v_ref["kl_true_retain"] < v_init["kl_true_retain"] - 0.1
    assert v_ref["kl_true_retain"] < 0.15 and v_retr["kl_true_retain"] < 0.15
    assert float(v_retr["kl_retr_retain"]) == pytest.approx(0.0, abs=1e-6)
    assert float(v_ref["param_distance"]) == 0.0
    # the reference learned forget-1, the retrained model did not
    assert v_ref["kl_true_forget1"] < v_retr["kl_true_forget1"] - 0.1
    # the experiment recorded the same numbers for the two models (case B's evaluation sets)
    a = tiny["arrays"]
    assert float(a["B"]["reference_kl_true"][1]) == pytest.approx(float(v_ref["kl_true_forget1"]), rel=1e-5)
    assert float(a["B"]["retrained_kl_true"][0]) == pytest.approx(float(v_retr["kl_true_retain"]), rel=1e-5)
    # lm.evaluate, the experiment's jitted evaluation of one model, gives the same numbers
    assert float(lm.evaluate(ref, tiny["ctx"])["kl_true_forget1"]) == pytest.approx(float(v_ref["kl_true_forget1"]),
                                                                                  rel=1e-6)


def test_saved_models_are_reused_and_damaged_ones_refitted(tmp_path, tiny):
    ref, losses = tiny["saved"]["markov_reference_B"]
    model = tiny["model"]
    calls, problems = [], []

    def fit():
        calls.append(1)
        return ref, losses

    lm.fit_or_load(tmp_path, "m", {"x": 1}, model, fit)
    b, lb = lm.fit_or_load(tmp_path, "m", {"x": 1}, model, fit)
    lm.fit_or_load(tmp_path, "m", {"x": 2}, model, fit)
    assert len(calls) == 2
    np.testing.assert_array_equal(b["blocks"]["qkv_LxDx3xHxK"], ref["blocks"]["qkv_LxDx3xHxK"])
    np.testing.assert_array_equal(lb, losses)
    assert b["embed_VxD"].dtype == jnp.float32
    # a damaged file is reported and the model refitted, never loaded
    npz = next(p for p in tmp_path.glob("m-*.npz") if '"x":1' in p.with_suffix(".json").read_text().replace(" ", ""))
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    lm.fit_or_load(tmp_path, "m", {"x": 1}, model, fit, progress=problems.append)
    assert len(calls) == 3 and len(problems) == 1 and "damaged" in problems[0]
    # and the experiment's own models were saved for reuse: a reference per case, one retrained model
    assert sorted(p.suffix for p in (tiny["folder"] / "models").iterdir()) == [".json"] * 3 + [".npz"] * 3


def test_unlearning_grid_equals_separate_runs_and_reports_divergence(tiny):
    """The experiment's grid again, with the methods in another order and GA at an absurd
    learning rate (the same compiled program): each run equals its twin of the experiment, and
    the absurd run is reported as diverged, not as NaN curves."""
    config, arrays = tiny["config"], tiny["arrays"]
    u = config["unlearn"]
    order = [3, 0, 2, 1]  # NPO+RT, GA, SimNPO, NPO
    methods = [get_method(config["collapse"]["methods"][k], beta=u["beta"]) for k in order]
    grid = engine.unlearn(
        tf.SEQUENCE_INPUTS, methods, lm.adamw_injected(float(u["weight_decay"]), float(u["eps"])), tiny["ctx"]["params_ref"],
        tiny["udata"], engine.Schedule(tuple(range(u["steps"] + 1))), lm.markov_metrics, context=tiny["ctx"],
        hyperparams={"learning_rate": [u["learning_rate"], 1e38, u["learning_rate"], u["learning_rate"]]},
        batches=engine.minibatches(forget=u["batch_size"], retain=u["batch_size"]), seeds=u["seeds"],
        progress=lambda msg: None,  # as the experiment's grid: a progress callback is part of the program
    )  # fmt: skip
    for c, k in enumerate(order):
        if c == 1:
            continue  # GA at 1e38
        for name in lm.METRICS:
            np.testing.assert_allclose(grid[name][:, c], arrays["collapse"][name][k], rtol=2e-3, atol=1e-5, err_msg=name)
    div = grid["diverged_step"]
    assert np.all(div[:, [0, 2, 3]] == -1) and np.all((div[:, 1] >= 1) & (div[:, 1] <= 2))
    assert np.all(np.isnan(grid["forget1_nll"][:, 1, 2:])) and np.all(np.isfinite(grid["forget1_nll"][:, [0, 2, 3]]))
    # GA at the experiment's rate pushes the forget NLL up and moves away at every step
    pd, nll = arrays["collapse"]["param_distance"][0], arrays["collapse"]["forget1_nll"][0]  # GA: (seeds, steps)
    assert np.all(pd[:, 0] == 0.0) and np.all(np.diff(pd, axis=-1) > 0) and np.all(nll[:, -1] > nll[:, 0])
    # the seeds draw different minibatches: their runs differ
    assert not np.allclose(nll[0, 1:], nll[1, 1:])
    with pytest.raises(ValueError, match="n_eval"):
        data = tiny["data"]
        lm.eval_sets(data.retain_test, data.forget1_test, data.forget2_test, 1000, None, None, data.forget1_test)


def test_every_method_runs_on_the_transformer(tiny):
    """IDK, DPO, KTO and the forget KL need inputs the markov grid never uses; the transformer's
    providers compute them from a batch with uninformed answers and reference laws."""
    data, ctx = tiny["data"], tiny["ctx"]
    ref = ctx["params_ref"]
    f = data.forget1_train.take(slice(0, 8))
    idk = np.zeros_like(f.tokens)
    idk[:, :5] = 9  # an uninformed answer: state 9, in no block
    batch = tf.sequence_batch(ref, f.tokens, f.mask, data.retain_train.tokens[:8], data.retain_train.mask[:8],
                              idk_tokens=idk, idk_mask=(idk > 0).astype(np.float32), forget_kl=True)
    methods = [get_method(n) for n in ("IDK+RT", "DPO+RT", "KTO", "DPO+KL")]
    out = engine.unlearn(tf.SEQUENCE_INPUTS, methods, optax.sgd(1e-2), ref, batch, engine.Schedule((0, 2)),
                         _param_distance, context=ref)
    assert np.all(out["diverged_step"] == -1)
    assert np.all(out["param_distance"][0, :, 0] == 0) and np.all(out["param_distance"][0, :, 1] > 0)
    # without the uninformed answers in the batch, DPO is refused with the missing key named
    with pytest.raises(ValueError, match="forget_idk_tokens"):
        engine.unlearn(tf.SEQUENCE_INPUTS, [get_method("DPO")], optax.sgd(1e-2), ref,
                       tf.sequence_batch(ref, f.tokens, f.mask), engine.Schedule((0, 1)), _param_distance, context=ref)


def test_reference_laws_computed_on_the_fly_give_the_same_runs(tiny):
    """``reference="on_the_fly"`` stores the reference parameters instead of its next-token laws
    per row, and the KL terms compute them on each step's rows: the same runs, less memory."""
    data, ctx = tiny["data"], tiny["ctx"]
    ref = ctx["params_ref"]
    f, r = data.forget1_train.take(slice(0, 8)), data.retain_train
    kwargs = dict(retain_attend=(r.tokens[:8] >= 0).astype(np.float32), forget_kl=True)
    stored = tf.sequence_batch(ref, f.tokens, f.mask, r.tokens[:8], r.mask[:8], **kwargs)
    fly = tf.sequence_batch(ref, f.tokens, f.mask, r.tokens[:8], r.mask[:8], reference="on_the_fly", **kwargs)
    assert {"forget_ref_dist", "retain_ref_dist"} <= set(stored) and not {"forget_ref_dist", "retain_ref_dist"} & set(fly)
    methods = [get_method(n) for n in ("KTO", "NPO+KL", "GA+KL")]
    runs = [engine.unlearn(tf.SEQUENCE_INPUTS, methods, optax.sgd(1e-2), ref, b, engine.Schedule((0, 3)),
                           _param_distance, context=ref) for b in (stored, fly)]
    assert np.all(runs[0]["param_distance"][0, :, -1] > 0)
    np.testing.assert_allclose(runs[1]["param_distance"], runs[0]["param_distance"], rtol=1e-5)
    with pytest.raises(ValueError, match="reference must be"):
        tf.sequence_batch(ref, f.tokens, f.mask, reference="later")


def _param_distance(params, method, ref):
    return {"param_distance": engine.param_distance(params, ref)}  # to the reference: 0 at step 0


def test_fit_laws_picks_the_right_law():
    t = np.unique(np.round(np.logspace(0, 3, 30)))
    lin = fit_laws(t, 2.0 + 0.01 * t, 10)
    log = fit_laws(t, 1.0 + 0.5 * np.log(t), 10)
    assert lin["linear"][2] == pytest.approx(1.0) and lin["linear"][1] == pytest.approx(0.01)
    assert lin["log"][2] < 0.95
    assert log["log"][2] == pytest.approx(1.0) and log["log"][1] == pytest.approx(0.5)
    assert log["linear"][2] < 0.95


def test_markov_experiment_numbers_claims_and_figures(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthetic.worlds.markov import figures as fig

    config, arrays = tiny["config"], tiny["arrays"]
    assert {"methods", "betas", "steps", "B", "A", "collapse", "long", "losses", "seconds"} <= set(arrays)
    assert arrays["collapse"]["kl_true_retain"].shape == (4, 2, 5) and list(arrays["methods"]) == ["NPO", "SimNPO"]
    assert list(arrays["collapse"]["methods"]) == ["GA", "NPO", "SimNPO", "NPO+RT"]
    # the study's NPO and SimNPO runs of case B are the collapse runs' NPO and SimNPO (same seeds)
    np.testing.assert_allclose(arrays["B"]["kl_true_retain"], arrays["collapse"]["kl_true_retain"][[1, 2]], rtol=2e-3)
    for case in ("B", "A"):
        assert arrays[case]["kl_true_retain"].shape == (2, 2, 5)
        # every run starts at the case's reference model: step 0 is the same for all methods
        # and seeds, and equals the reference's own KL to the true chains
        k0 = arrays[case]["kl_true_retain"][:, :, 0]
        np.testing.assert_allclose(k0, k0[0, 0], rtol=1e-5)
        assert float(k0[0, 0]) == pytest.approx(float(arrays[case]["reference_kl_true"][0]), rel=1e-5)
        assert np.all(arrays[case]["param_distance"][:, :, 0] == 0)
    assert list(arrays["A"]["n_eval"]) == [8, 8, 8]
    # the two cases start from different references
    assert arrays["A"]["kl_true_retain"][0, 0, 0] != arrays["B"]["kl_true_retain"][0, 0, 0]
    long = arrays["long"]
    assert list(long["labels"]) == ["GA", "NPO beta=0.5", "NPO beta=1", "NPO beta=2"]
    assert long["param_distance"].shape == (4, long["steps"].size) and long["forget_nll_seq"].shape == (4, long["steps"].size)
    np.testing.assert_array_equal(long["steps"], engine.log_spaced_steps(30, 7 / np.log10(30)))
    # the per-sequence NLL is the per-token one times the probe's mean length (19 scored tokens)
    assert float(long["forget_length"]) == 19.0
    np.testing.assert_allclose(long["forget_nll_seq"], 19.0 * long["forget_train_nll"], rtol=1e-6)
    assert not any(k.startswith("long_fit") for k in store.flatten_results(arrays))  # the fits are not stored
    claims = markov_claims(config, arrays)
    # the law claim fits on t >= steps / fit_decades_from (30 / 10 here), as law_fits does
    t_min = config["long"]["steps"] / config["long"]["fit_decades_from"]
    lin = fit_laws(long["steps"], long["param_distance"][1], t_min)["linear"]
    np.testing.assert_allclose(law_fits(long, "param_distance", t_min)[1]["linear"], lin, rtol=1e-12)
    np.testing.assert_allclose(claims[2].values["NPO beta=0.5/param_distance"]["linear"], lin, rtol=1e-10)
    assert [c.id for c in claims] == [
        "markov.ga_collapses", "markov.npo_stable", "markov.ga_linear_npo_log", "markov.b_forget1_cost",
        "markov.b_forget2_share", "markov.a_short_cost", "markov.a_both_cost", "markov.a_forget2_share",
        "markov.a_forget1_npo_cheaper", "markov.simnpo_faster_at_beta1", "markov.study_reproduced_at_beta",
        "markov.advantage_rests_on_eps",
    ]  # fmt: skip
    # a claim reports the numbers it decided on
    np.testing.assert_allclose(claims[0].values["ga_retain_kl"], seed_mean(arrays["collapse"]["kl_true_retain"][0]),
                               rtol=1e-12)
    for c in claims:
        assert c.measured and "nan" not in c.statement and c.verdict in ("pass", "fail", "inconclusive")
        assert c.kind == ("paper" if c.id in ("markov.ga_collapses", "markov.npo_stable") else "extension")
        c.to_json()
    figs = fig.all_figures(config, arrays)
    assert set(figs) == {"markov_trajectories", "markov_collapse", "markov_divergence", "markov_eps_map",
                         "markov_mechanism"}
    for f in figs.values():
        plt.close(f)


def test_the_eps_map_holds_the_study_runs_and_measures_the_optimizer(tiny):
    from synthetic.worlds.markov import eps_map
    from synthetic.worlds.markov import measures as mc

    config, arrays = tiny["config"], tiny["arrays"]
    m = arrays["map"]
    assert list(m["methods"]) == ["NPO", "SimNPO", "SimNPO"] * 2 and list(m["betas"]) == [1.0, 1.0, 3.5] * 2
    assert list(m["eps"]) == [1e-6] * 3 + [1e-8] * 3
    u = config["unlearn"]
    lr = u["learning_rate"]
    n_params = tf.param_count(tiny["ctx"]["params_ref"])
    for case in ("B", "A"):
        c = m[case]
        assert c["kl_true_retain"].shape == (6, 2, 5) and c["grad_norm"].shape == (6, 2, 5)
        # the study's runs are the map's cells at beta 1, eps 1e-6
        for name in lm.METRICS:
            np.testing.assert_array_equal(arrays[case][name], c[name][[0, 1]], err_msg=name)
        for k in adam_stats.ADAM_STATS:  # nothing before the first step
            assert np.all(c[k][:, :, 0] == 0), k
        g, nu, upd, dom = (np.asarray(c[k], float) for k in ("grad_norm", "sqrt_nu_rms", "update_norm", "eps_dominated"))
        assert np.all(g[:, :, 1:] > 0) and np.all((dom >= 0) & (dom <= 1))
        # step 1 starts every setting of a seed from the reference on the same batch: the same
        # gradient under both eps, and nu_1 = (1 - b2) g^2, so sqrt(mean nu) = sqrt(1e-3) ||g|| / sqrt(n),
        # n the coordinates with a non-zero gradient; by hand for SimNPO at beta 3.5, seed 1
        np.testing.assert_allclose(g[:3, :, 1], g[3:, :, 1], rtol=1e-5)
        if case == "B":
            method = get_method("SimNPO", beta=3.5)
            batch = engine.minibatches(forget=u["batch_size"], retain=u["batch_size"])(
                jax.random.fold_in(jax.random.key(1), 0), tiny["udata"])
            grads = jax.grad(lambda p: method_loss(method, tf.SEQUENCE_INPUTS.compute(
                p, batch, tf.SEQUENCE_INPUTS.check(method.needs))))(tiny["ctx"]["params_ref"])
            leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(grads)]
            norm, n = np.sqrt(sum(np.sum(x ** 2) for x in leaves)), sum(np.count_nonzero(x) for x in leaves)
            assert g[2, 1, 1] == pytest.approx(norm, rel=1e-4)
            assert nu[2, 1, 1] == pytest.approx(np.sqrt(1e-3) * norm / np.sqrt(n), rel=1e-3)
            assert n < n_params  # some coordinates had no gradient (tokens absent from the batch)
        assert np.all(dom[3:, :, 1] <= dom[:3, :, 1])  # a smaller eps dominates fewer coordinates
        # Adam's first step moves every coordinate whose |g| is far above eps / sqrt(1 - b2) by lr,
        # and none by more: with eps 1e-8, NPO and SimNPO at beta 1 take about lr sqrt(n) (n: the
        # coordinates with a gradient, over 80% of them in the tiny model's batches); SimNPO
        # at beta 3.5 (a weight sigma(-3.5 NLL), ~100x smaller) has coordinates below that and
        # takes less, under either eps
        assert np.all(upd[:, :, 1] <= lr * np.sqrt(n_params) * 1.001)
        assert np.all(upd[3:5, :, 1] >= 0.9 * lr * np.sqrt(n_params))
        assert np.all(upd[[2, 5], :, 1] < upd[[1, 4], :, 1])
        # the update recorded is the step taken: ||theta_1 - theta_ref|| is the first update's norm
        np.testing.assert_allclose(upd[:, :, 1], c["param_distance"][:, :, 1], rtol=1e-4)
    # the map's readings are the study's measures of its cells
    r = eps_map.reading(config, arrays, 1.0, 1e-6)
    npo, sim = (np.asarray(arrays["map"]["B"]["kl_true_retain"][i], float) for i in (0, 1))
    steps = np.asarray(arrays["steps"], float)
    assert r["speed"][0].estimate == pytest.approx(
        mc.speed_ratio(steps, npo.mean(0), sim.mean(0), eps_map.SPEED_LEVEL), nan_ok=True)
    claims = {c.id: c for c in markov_claims(config, arrays)}
    assert claims["markov.b_forget1_cost"].interval["SimNPO / NPO retain KL to reach the forget-1 target"][
        "estimate"] == pytest.approx(r["b_cost"][0].estimate, nan_ok=True)
    assert claims["markov.study_reproduced_at_beta"].values["beta"] == eps_map.featured_beta(config, arrays)[0]
    table = eps_map.map_table(config, arrays)["SimNPO beta x eps map"]
    assert table.count("\n| 1e-0") == 4  # one row per SimNPO cell


# --------------------------------------------------------------------------- matched retain KL, by hand


def test_costs_and_shares_at_matched_retain_kl():
    from synthetic.worlds.markov import measures as mc

    retain = np.array([0.01, 0.02, 0.04, 0.08])
    forget1 = np.array([0.1, 0.2, 0.4, 0.5])
    forget2 = np.array([0.1, 0.1, 0.2, 0.5])
    # forget-1 reaches 0.3 halfway between records 1 and 2: retain KL 0.03 there
    assert mc.first_crossing(retain, forget1, 0.3) == pytest.approx(0.03)
    assert mc.first_crossing(retain, forget1, 0.05) == pytest.approx(0.01)  # already there at step 0
    assert mc.first_crossing(retain, forget1, 0.9) == np.inf  # never: a failure, cost inf
    # both targets: forget-2 reaches 0.35 a quarter of the way from record 2 to 3 (retain 0.05)
    assert mc.target_cost(retain, [forget1, forget2], [0.3, 0.275]) == pytest.approx(0.05)
    # at retain KL 0.03: forget-1 rose 0.2, forget-2 rose 0.05 -> share 0.05 / 0.25
    assert mc.forget2_share(retain, forget1, forget2, 0.03) == pytest.approx(0.2)
    assert np.isnan(mc.forget2_share(retain, forget1, forget2, 0.005))  # starts above: no matched point
    assert np.isnan(mc.forget2_share(retain, forget1, forget2, 1.0))  # never reached
    assert mc.later(0.1, np.inf) == -np.inf and mc.later(np.inf, 0.1) == np.inf
