"""One process of the distributed tests (``tests/test_distributed.py``), or the single-process run
they compare with: started by ``python -m synthetic.launch -n 2`` or run alone.

    python tests/distributed_worker.py grids OUT   # a section-4 grid (float64), a transformer grid
                                                   # (float32) and a model fitted by process 0 alone;
                                                   # process 0 writes OUT/grids.npz, then every process
                                                   # runs paper_repro on a tiny experiment into OUT/p<id>
    python tests/distributed_worker.py die         # process 1 dies after the first collective
"""

import signal
import sys

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # as paper_repro.py does, before JAX's threads

from synthetic import devices, distributed  # noqa: E402

devices.use_cpu_cores()
cluster = distributed.requested()
if cluster is not None:
    distributed.join(cluster, heartbeat_timeout=5)

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402


def section4_grid() -> dict:
    """Figure 4's six methods on a shrunk problem, 3 seeds (an odd count: padding crosses processes)."""
    from synthetic.worlds.section4 import config as s4_config
    from synthetic.worlds.section4.run import run_grid_experiment

    config = s4_config.fig4_config(1.0, quick=True)
    config["data"].update(n_forget=20, n_retain=60, n_eval_forget=40, n_eval_retain=40)
    config["features"]["n_features"] = 32
    config.update(seeds=3, steps=40, eval_every=20, fit={**config["fit"], "steps": 100})
    with jax.enable_x64(True):
        out = run_grid_experiment(config)
    return {k: v for k, v in out.items() if not k.startswith("seconds")}


def transformer_grid() -> dict:
    """GA and NPO on a tiny float32 transformer, one run at a time per device (as the Markov and
    TOFU worlds run), 2 seeds x 3 settings."""
    import jax.numpy as jnp

    from synthetic import engine
    from synthetic.models import transformer as tf
    from synthetic.optim import SGD
    from theory.methods import get_method

    model = tf.TransformerConfig(vocab_size=12, context=8, layers=1, width=16, heads=2)
    params = tf.init(jax.random.key(0), model)
    tokens = jax.random.randint(jax.random.key(1), (16, 8), 0, 12)
    mask = jnp.ones((16, 8), jnp.float32)
    data = tf.sequence_batch(params, tokens[:8], mask[:8], tokens[8:], mask[8:])

    def metrics(p, method, ctx):
        return {"forget_logp": jnp.mean(tf.sequence_log_probs(p, tokens[:8], mask[:8]))}

    methods = [get_method("GA"), get_method("NPO", beta=0.5), get_method("NPO", beta=2.0)]
    out = engine.unlearn(tf.SEQUENCE_INPUTS, methods, SGD, params, data, engine.Schedule((0, 5, 10)), metrics,
                         hyperparams={"learning_rate": [0.05] * 3}, batches=engine.minibatches(forget=4, retain=4),
                         seeds=2, runs_at_once=1)
    return {"forget_logp": out["forget_logp"], "diverged_step": out["diverged_step"]}


def fitted_model() -> dict:
    """A model through store.load_or_fit: process 0 alone fits it (another process fitting fails
    the run), and every process gets its parameters."""
    from synthetic import store
    from synthetic.models import transformer as tf

    model = tf.TransformerConfig(vocab_size=12, context=8, layers=1, width=16, heads=2)

    def fit():
        if not distributed.is_writer():
            raise AssertionError(f"process {distributed.process_index()} fitted the model")
        return tf.init(jax.random.key(5), model), np.arange(3.0)

    params, losses, fitted = store.load_or_fit(None, "model", {}, fit, lambda: jax.eval_shape(
        lambda: tf.init(jax.random.key(0), model)), version=1)
    return {"embed": np.asarray(params["embed_VxD"]), "losses": np.asarray(losses), "fitted": np.asarray(fitted)}


def tiny_experiment():
    """An experiment whose run is an engine grid (sharded over every process) and whose claim
    prints its numbers, for paper_repro.py."""
    from synthetic.experiment import Experiment
    from theory.claims import Claim

    def run(config, progress, folder):
        return transformer_grid()

    def claims(config, arrays):
        value = arrays["forget_logp"][:, :, -1].mean()
        return [Claim("tiny.logp", "-", "the grid runs", f"mean final forget log-prob {value:.9g}", True,
                      kind="consistency")]

    return Experiment("tiny", "an engine grid", lambda quick: {"tiny": 1}, run, claims)


def main(argv) -> int:
    mode = argv[1]
    if mode == "die":  # JAX alone: this mode is about processes, not about the toolkit's programs
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("runs",))
        x = jax.device_put(np.arange(4.0, dtype=np.float32), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs")))
        distributed.to_host(x * 2)  # a collective every process takes part in
        if distributed.process_index() == 1:
            os._exit(3)
        distributed.to_host(x * 3)  # process 0 waits here for a process that is gone
        return 0
    import io

    from synthetic import store

    out = Path(argv[2])
    arrays = {f"section4/{k}": v for k, v in section4_grid().items()}
    arrays.update({f"transformer/{k}": v for k, v in transformer_grid().items()})
    arrays.update({f"model/{k}": v for k, v in fitted_model().items()})
    if distributed.is_writer():
        out.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        store.atomic_write_bytes(out / "grids.npz", buf.getvalue())
    import paper_repro

    paper_repro.EXPERIMENTS = {"tiny": tiny_experiment()}
    return paper_repro.main(["--out", str(out / f"p{distributed.process_index()}")])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
