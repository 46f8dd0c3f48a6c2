"""Conditional hyperparameters: settings that matter only for some values of another.

    python scripts/conditional_space.py
    python scripts/conditional_space.py --quick

Each optimizer has its own settings (sgd its momentum, adam its b2), and a layer's width matters
only when the network has that layer. `Space.only_when` says so:

- the grid keeps one of the points that differ only in a setting nobody uses (it would train
  copies of the same network otherwise);
- the results table shows NaN (None among names) where a setting is not the member's, and
  `best_params` leaves it out;
- Optuna's TPE is asked for a setting only where it is used, as in Optuna's define-by-run.

Every member still carries a value for every name, so the whole population trains in one
program; a value that is not the member's setting never trains it (the optimizer and network
take the value a space without the name gives).
"""

import argparse

import optuna

import vmaptune as vt


def space() -> vt.Space:
    return vt.Space(
        optimizer=vt.Choice(["sgd", "adam"]),
        momentum=vt.OneMinusLogUniform(0.5, 0.99),  # sgd's
        b2=vt.OneMinusLogUniform(0.9, 0.9999),  # adam's
        n_hidden=vt.IntUniform(1, 2),
        n_units_1=vt.Choice([32, 64]),
        n_units_2=vt.Choice([16, 32]),  # the second layer's width: only for two layers
        learning_rate=vt.LogUniform(3e-3, 1e-1),
    ).only_when("momentum", optimizer="sgd").only_when("b2", optimizer="adam").only_when("n_units_2", n_hidden=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    data = vt.load_dataset("digits")
    conditional = space()
    per_axis = 2 if args.quick else 3
    grid = vt.GridSearch(population=256, points_per_axis=per_axis)
    plain = vt.Space(dict(conditional.items()))  # the same names without their conditions
    print(f"grid points: {grid.grid_size(conditional)} distinct settings "
          f"(without the conditions: {grid.grid_size(plain)}, the rest copies)")
    epochs = 2 if args.quick else 30
    result = vt.tune(vt.MLP(), conditional, data, grid, epochs=epochs, progress=False)
    print(result.summary(5))
    print("best:", result.best_params)

    rounds, population = (2, 4) if args.quick else (4, 32)
    sampler = vt.OptunaSampler(optuna.samplers.TPESampler(seed=0), population=population, rounds=rounds)
    tpe = vt.tune(vt.MLP(), conditional, data, sampler, epochs=epochs, progress=False)
    print(tpe.summary(5))
    print("best (TPE):", tpe.best_params)


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
