"""Population training vs one member at a time, on the same task and the same members.

  (a) vmaptune: the P members trained together by one jit(vmap(...)) program;
  (b) sequential: the same compiled per-member program (P = 1) run for each member in turn;
  (c) optuna loop: how most people tune today: Optuna ask/tell, one trial after another, a jitted
      flax/optax train step called from a Python loop over minibatches.

All three train the same members (Optuna is handed vmaptune's draws with enqueue_trial): digits,
MLP 64-128-128-10, SGD with momentum, dropout, weight decay, init scale, batch 64.
Timings exclude compilation (each mode is warmed up first); compile time is reported apart.

    python bench/population_vs_sequential.py --population 256 --epochs 10 --json bench/out/pvs_256.json
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from common import machine, write_json
from vmaptune import engine
from vmaptune.population import PopulationRun

SPACE = vt.Space(
    learning_rate=vt.LogUniform(1e-3, 3e-1),
    momentum=vt.OneMinusLogUniform(0.5, 0.99),
    dropout=vt.Uniform(0.0, 0.3),
    init_scale=vt.LogUniform(0.5, 2.0),
    weight_decay=vt.LogUniform(1e-6, 1e-3),
)
HIDDEN = (128, 128)
BATCH = 64


def bench_program(data, population: int, epochs: int, matmul_dtype: str = "float32", **layout):
    """The benches' compiled program: MLP 64-128-128-10 over SPACE, batch 64, shared minibatch order,
    `epochs` in one chunk. layout: devices= / member_block= (default: vmaptune's)."""
    return vt.build_program(vt.MLP(hidden=2, units=128, matmul_dtype=matmul_dtype), SPACE, data, batch_size=BATCH,
                            **layout)


def bench_members(population: int):
    """-> digits Dataset, the members' numeric hyperparameters (dict of (P,)), the data on the device."""
    data = vt.load_dataset("digits")
    return data, SPACE.numeric(SPACE.sample(jax.random.key(0), population)), engine.data_arrays(data)


def population_run(program, data, hp, ids, epochs):
    run = PopulationRun(program, SPACE.numeric(hp), engine.data_arrays(data), member_ids=np.asarray(ids), seed=0,
                        epochs=epochs)
    run.train(epochs, chunk_epochs=epochs)
    jax.block_until_ready(run.state.members.params)
    return run.curves


def time_vmap(data, hp, epochs):
    program = bench_program(data, len(hp["dropout"]), epochs)
    ids = jnp.arange(len(hp["dropout"]))
    t0 = time.perf_counter()
    population_run(program, data, hp, ids, epochs)  # compiles
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    curves = population_run(program, data, hp, ids, epochs)
    seconds = time.perf_counter() - t0
    return seconds, max(first - seconds, 0.0), curves, program


def time_sequential(data, hp, epochs, program):
    p = len(hp["dropout"])
    one = {k: v[:1] for k, v in hp.items()}
    population_run(program, data, one, jnp.arange(1), epochs)  # compiles the P = 1 program
    t0 = time.perf_counter()
    scores = []
    for i in range(p):
        member = {k: v[i:i + 1] for k, v in hp.items()}
        scores.append(population_run(program, data, member, jnp.asarray([i]), epochs)["val_score"][0, -1])
    return time.perf_counter() - t0, np.asarray(scores)


def time_optuna_loop(data, hp, epochs):
    """A typical hand-written loop: Optuna trial -> flax model -> jitted optax step per minibatch."""
    import flax.linen as nn
    import optax
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    class Net(nn.Module):
        init_scale: float = 1.0

        @nn.compact
        def __call__(self, x, dropout, train, key=None):
            for i, width in enumerate(HIDDEN):
                x = nn.relu(nn.Dense(width, kernel_init=nn.initializers.he_normal())(x))
                if train:
                    keep = jax.random.uniform(jax.random.fold_in(key, i), x.shape) >= dropout
                    x = jnp.where(keep, x / (1 - dropout), 0.0)
            return nn.Dense(data.n_outputs)(x)

    net = Net()
    tx = optax.inject_hyperparams(
        lambda learning_rate, momentum, weight_decay: optax.chain(
            optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum)))

    @jax.jit
    def init(key, scale, lr, m, wd):
        params = net.init(key, jnp.zeros((1, data.n_features)), 0.0, False)
        params = jax.tree.map(lambda w: w * scale, params)
        return params, tx(lr, m, wd).init(params)

    @jax.jit
    def step(params, opt_state, x, y, dropout, key):
        def loss_fn(p):
            logits = net.apply(p, x, dropout, True, key)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx(0.0, 0.0, 0.0).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def accuracy(params, x, y):
        return jnp.mean(jnp.argmax(net.apply(params, x, 0.0, False), -1) == y)

    X, y = np.asarray(data.X_train), np.asarray(data.y_train)
    Xv, yv = data.X_val, data.y_val
    steps = len(X) // BATCH
    rows = SPACE.decode(hp)

    def run(study, trials):
        for row in trials:
            study.enqueue_trial(row)
            trial = study.ask()
            lr = trial.suggest_float("learning_rate", 1e-3, 3e-1, log=True)
            m = trial.suggest_float("momentum", 0.5, 0.99)
            dropout = trial.suggest_float("dropout", 0.0, 0.3)
            scale = trial.suggest_float("init_scale", 0.5, 2.0, log=True)
            wd = trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
            params, opt_state = init(jax.random.key(trial.number), scale, lr, m, wd)
            rng = np.random.default_rng(trial.number)
            key = jax.random.key(trial.number)
            for epoch in range(epochs):
                order = rng.permutation(len(X))
                for s in range(steps):
                    idx = order[s * BATCH:(s + 1) * BATCH]
                    params, opt_state, _ = step(params, opt_state, X[idx], y[idx], dropout,
                                                jax.random.fold_in(key, epoch * steps + s))
            study.tell(trial, float(accuracy(params, Xv, yv)))

    run(optuna.create_study(direction="maximize"), rows[:1])  # warm-up: compiles init, step, accuracy
    study = optuna.create_study(direction="maximize")
    t0 = time.perf_counter()
    run(study, rows)
    return time.perf_counter() - t0, study.best_value


def train_flops(program, data, population, epochs):
    """Forward + backward matmul FLOPs of training (2 * m * n * k per matmul, backward = 2x forward)."""
    widths = [data.n_features, *HIDDEN, data.n_outputs]
    per_row = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))
    return 3 * per_row * BATCH * program.steps_per_epoch(data.n_train) * epochs * population


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--skip-optuna", action="store_true")
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    hp = SPACE.sample(jax.random.key(0), args.population)

    vmap_s, compile_s, curves, program = time_vmap(data, hp, args.epochs)
    seq_s, seq_scores = time_sequential(data, hp, args.epochs, program)
    # both ran the same members: the population's final scores match the one-by-one runs
    agreement = float(np.mean(np.abs(curves["val_score"][:, -1] - seq_scores) <= 0.01))
    optuna_s, optuna_best = (float("nan"), float("nan")) if args.skip_optuna else time_optuna_loop(data, hp, args.epochs)
    flops = train_flops(program, data, args.population, args.epochs)
    out = {
        "population": args.population, "epochs": args.epochs, "batch_size": BATCH,
        "vmap_seconds": round(vmap_s, 3), "sequential_seconds": round(seq_s, 3),
        "optuna_loop_seconds": round(optuna_s, 3), "compile_seconds": round(compile_s, 3),
        "speedup_vs_sequential": round(seq_s / vmap_s, 2), "speedup_vs_optuna_loop": round(optuna_s / vmap_s, 2),
        "vmap_member_epochs_per_second": round(args.population * args.epochs / vmap_s, 1),
        "vmap_train_gflops_per_second": round(flops / vmap_s / 1e9, 1),
        "best_val_accuracy_vmap": float(np.nanmax(curves["val_score"][:, -1])),
        "best_val_accuracy_optuna": optuna_best,
        "same_final_score_share": agreement,
        "devices": program.devices, "member_block": program.member_block,
        "machine": machine(),
    }
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
