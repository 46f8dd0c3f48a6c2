"""Each optimizer kind, and a population mixing them, matches plain optax member for member."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vmaptune.optim import OPTIMIZERS, make_optimizer, resolve_hyperparameters

SETTINGS = dict(learning_rate=0.05, momentum=0.7, b1=0.8, b2=0.95, eps=1e-6, weight_decay=0.01)
REFERENCE = {
    "sgd": optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.05, 0.7)),
    "momentum": optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.05, 0.7)),
    "nesterov": optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.05, 0.7, nesterov=True)),
    "adam": optax.chain(optax.add_decayed_weights(0.01), optax.adam(0.05, 0.8, 0.95, 1e-6)),
    "adamw": optax.adamw(0.05, 0.8, 0.95, 1e-6, weight_decay=0.01),
    "rmsprop": optax.chain(optax.add_decayed_weights(0.01), optax.rmsprop(0.05, decay=0.95, eps=1e-6)),
    "adagrad": optax.chain(optax.add_decayed_weights(0.01), optax.adagrad(0.05, eps=1e-6)),
}


def loss(p):
    return jnp.sum(jnp.sin(3 * p["w"]) ** 2) + jnp.sum(p["b"] ** 4)


def params0():
    return {"w": jnp.linspace(-1, 1, 12).reshape(3, 4), "b": jnp.linspace(0.2, 0.9, 4)}


def run_reference(tx, steps=6):
    p, s = params0(), tx.init(params0())
    for _ in range(steps):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        p = optax.apply_updates(p, u)
    return p


def test_mixed_population_matches_optax_member_by_member():
    kinds = OPTIMIZERS
    hp = {k: jnp.full(len(kinds), v, jnp.float32) for k, v in SETTINGS.items()}
    hp["optimizer"] = jnp.arange(len(kinds), dtype=jnp.int32)
    settings = jax.vmap(lambda h: resolve_hyperparameters(kinds, h))(hp)
    params = jax.tree.map(lambda x: jnp.stack([x] * len(kinds)), params0())

    def init(p, s):
        return make_optimizer(kinds, s).init(p)

    def step(p, o, s):
        u, o = make_optimizer(kinds, s).update(jax.grad(loss)(p), o, p)
        return optax.apply_updates(p, u), o

    state = jax.vmap(init)(params, settings)
    vstep = jax.jit(jax.vmap(step))
    for _ in range(6):
        params, state = vstep(params, state, settings)
    for i, kind in enumerate(kinds):
        ref = run_reference(REFERENCE[kind])
        for name in ref:
            np.testing.assert_allclose(params[name][i], ref[name], rtol=2e-5, atol=2e-6, err_msg=kind)


def test_defaults_follow_the_kind_when_the_space_is_silent():
    kinds = ("sgd", "momentum", "adam", "adagrad")
    s = jax.vmap(lambda i: resolve_hyperparameters(kinds, {"optimizer": i}))(jnp.arange(4))
    np.testing.assert_allclose(s["momentum"], [0.0, 0.9, 0.0, 0.0])
    np.testing.assert_allclose(s["b2"], [0.0, 0.0, 0.999, 0.0])
    np.testing.assert_allclose(s["eps"], [0.0, 0.0, 1e-8, 1e-7], rtol=1e-6)


def test_settings_live_in_the_state_and_can_be_changed_in_place():
    kinds = ("sgd",)
    s = resolve_hyperparameters(kinds, {"learning_rate": 0.1})
    tx = make_optimizer(kinds, s)
    state = tx.init(params0())
    state.hyperparams["learning_rate"] = jnp.float32(0.0)  # what PBT does: no rebuild, no recompile
    u, _ = tx.update(jax.grad(loss)(params0()), state, params0())
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(u))


def test_an_optimizer_function_made_by_exec_or_eval_is_taken():
    # (a function whose globals hold no __name__, as a config loader makes it, has __module__ None:
    # the check for optax's own functions must not trip on it)
    from vmaptune.optim import CustomOptimizer
    from vmaptune.space import LogUniform, Space

    made = eval("lambda hp: optax.adam(hp['learning_rate'])", {"optax": optax})
    assert made.__module__ is None
    custom = CustomOptimizer.from_factory(made, Space(learning_rate=LogUniform(1e-3, 1e-1)))
    assert custom.names == ("learning_rate",)


def test_names_a_schedule_of_yours_reads_at_each_step_are_seen_before_anything_compiles():
    # (the factory's call alone reads none of them: "space has 'learning_rate', which nothing reads", or a
    # bare KeyError for a name the space lacks once the training step was traced)
    import pytest

    import vmaptune as vt
    from vmaptune.optim import CustomOptimizer

    def warm(hp):
        return optax.adam(lambda step: hp["learning_rate"] * jnp.minimum(1.0, step / hp["warmup"]))

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), warmup=vt.IntUniform(1, 20))
    assert CustomOptimizer.from_factory(warm, space).names == ("learning_rate", "warmup")
    program = vt.build_program(vt.MLP(), space, vt.load_dataset("iris"), batch_size=30, optimizer=warm)
    assert program.optimizer.hyperparameters() == {"learning_rate", "warmup"}
    with pytest.raises(ValueError, match=r"optimizer= reads \['warmup'\], which the space does not name"):
        CustomOptimizer.from_factory(warm, vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)))


def test_names_read_as_it_steps_are_seen_where_its_labels_or_mask_are_shaped_like_the_model():
    # (its first step was taken on placeholder weights, which multi_transform's labels do not fit: the step failed
    # unsaid, and "space has 'learning_rate', which nothing reads", or a bare KeyError once the step was traced)
    import pytest

    import vmaptune as vt
    from vmaptune import engine

    labels = {"head_bias": "head", "head_kernel": "head", "hidden_0_bias": "body", "hidden_0_kernel": "body"}

    def warmed(hp):
        sched = lambda step: hp["learning_rate"] * jnp.minimum(1.0, (step + 1) / 10)  # noqa: E731
        return optax.multi_transform({"body": optax.adam(sched), "head": optax.adam(sched)}, labels)

    space, data = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris")
    model = vt.MLP(hidden=1, units=8)  # (its weights: labels' keys)
    program = vt.build_program(model, space, data, batch_size=30, optimizer=warmed)
    assert program.optimizer.hyperparameters() == {"learning_rate"}
    before = dict(engine.TRACE_COUNTS)
    for head in (lambda hp: optax.adam(lambda step: hp["head_lr"]),
                 lambda hp: optax.masked(optax.adam(lambda step: dict(hp)["head_lr"]), {k: v == "head" for k, v in
                                                                                          labels.items()})):
        def lazy(hp, head=head):
            return optax.multi_transform({"body": optax.adam(hp["learning_rate"]), "head": head(hp)}, labels)

        with pytest.raises(ValueError, match=r"optimizer= reads \['head_lr'\], which the space does not name"):
            vt.build_program(model, space, data, batch_size=30, optimizer=lazy)
    assert dict(engine.TRACE_COUNTS) == before


def test_hp_is_a_mapping_over_the_space_and_a_default_for_a_name_it_lacks_is_no_read():
    # (an empty dict before: **hp and dict(hp) passed nothing, and hp.get(name, default) was refused
    # as a name the space does not name while `name in hp` was taken)
    from vmaptune.optim import CustomOptimizer
    from vmaptune.space import LogUniform, Space, Uniform

    space = Space(learning_rate=LogUniform(1e-3, 1e-1), b1=Uniform(0.8, 0.95))
    for factory in (lambda hp: optax.adam(**hp), lambda hp: optax.adam(**dict(hp)),
                    lambda hp: optax.adam(**{k: v for k, v in hp.items()}),
                    lambda hp: optax.adam(hp["learning_rate"], hp.get("b1", 0.9), eps=hp.get("eps", 1e-8))):
        custom = CustomOptimizer.from_factory(factory, space)
        assert custom.names == ("learning_rate", "b1")
        state = custom.init(params0(), {"learning_rate": 0.1, "b1": 0.9}, 1)
        assert sorted(state.hyperparams) == ["b1", "learning_rate"]
        custom.update(jax.grad(loss)(params0()), state, params0(), {"learning_rate": 0.1, "b1": 0.9}, 1)


def test_on_bfloat16_weights_your_optimizer_gets_its_values_as_optax_takes_plain_numbers():
    # (float32 settings made its updates float32, one bfloat16 ulp off the same optimizer run by hand; settings
    # cast to bfloat16 made b2=0.999 exactly 1, and adam's bias correction 1 - b2**t a 0 / 0)
    from vmaptune.optim import CustomOptimizer
    from vmaptune.space import LogUniform, Space, Uniform

    space = Space(learning_rate=LogUniform(1e-2, 5e-2), momentum=Uniform(0.5, 0.9), b2=Uniform(0.99, 0.9999))
    hp = {"learning_rate": jnp.float32(0.03), "momentum": jnp.float32(0.7), "b2": jnp.float32(0.999)}
    start = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params0())
    for make in (lambda hp: optax.sgd(hp["learning_rate"], hp["momentum"]),
                 lambda hp: optax.chain(optax.add_decayed_weights(hp["momentum"] / 100),
                                        optax.adam(hp["learning_rate"])),
                 lambda hp: optax.chain(optax.sgd(hp["learning_rate"], hp["momentum"]), optax.ema(0.9)),
                 lambda hp: optax.adam(hp["learning_rate"], b2=hp["b2"]),
                 lambda hp: optax.apply_if_finite(optax.adam(hp["learning_rate"], b1=hp["momentum"]), 3)):
        custom, by_hand = (CustomOptimizer.from_factory(make, space),
                           make({"learning_rate": 0.03, "momentum": 0.7, "b2": 0.999}))
        params, state, hand_params, hand_state = start, custom.init(start, hp, 1), start, by_hand.init(start)
        for _ in range(4):
            updates, state = custom.update(jax.grad(loss)(params), state, params, hp, 1)
            params = optax.apply_updates(params, updates)
            hand_updates, hand_state = by_hand.update(jax.grad(loss)(hand_params), hand_state, hand_params)
            hand_params = optax.apply_updates(hand_params, hand_updates)
        assert {leaf.dtype for leaf in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(hand_params)):
            assert np.isfinite(np.asarray(a, np.float32)).all()
            np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
        assert state.hyperparams["learning_rate"].dtype == jnp.float32  # (PBT's and a Decision's values stay exact)


def test_the_names_your_optimizer_reads_are_those_its_first_step_depends_on():
    # (hp.items() recorded every name of the space as the optimizer's, the model's too: their only_when warned
    # "read by your optimizer function", and each was carried as a setting in every member's optimizer state)
    import warnings

    import pytest

    import vmaptune as vt
    from vmaptune.optim import CustomOptimizer

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_hidden=vt.Choice([1, 2]), n_units=vt.Choice([8, 16]),
                     n_units_1=vt.Choice([8, 16]), dropout=vt.Uniform(0.0, 0.3)).only_when("n_units_1", n_hidden=2)
    walks = lambda hp: optax.adam(**{k: v for k, v in hp.items() if k in ("learning_rate", "b1")})  # noqa: E731
    assert CustomOptimizer.from_factory(walks, space).names == ("learning_rate",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        program = vt.build_program(vt.MLP(), space, vt.load_dataset("iris"), batch_size=30, optimizer=walks)
    assert program.optimizer.hyperparameters() == {"learning_rate"}
    # a name asked for and left unused is no read: it still gets a value in training (any: it reaches nothing)
    unused = lambda hp: (hp["b1"], optax.adam(hp["learning_rate"]))[1]  # noqa: E731
    small = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), b1=vt.Uniform(0.8, 0.95))
    custom = CustomOptimizer.from_factory(unused, small)
    assert (custom.names, custom.unused) == (("learning_rate",), ("b1",))
    state = custom.init(params0(), {"learning_rate": 0.1}, 1)
    assert sorted(state.hyperparams) == ["learning_rate"]
    custom.update(jax.grad(loss)(params0()), state, params0(), {"learning_rate": 0.1}, 1)
    with pytest.raises(ValueError, match=r"space has 'b1', which the model and optimizer do not read\. \(Your "
                                         r"optimizer function asks for hp\['b1'\], but its value reaches nothing"):
        vt.build_program(vt.MLP(), small, vt.load_dataset("iris"), batch_size=30, optimizer=unused)


def test_an_optax_multisteps_returned_as_it_is_trains_as_its_gradient_transformation():
    # (refused before: "optimizer(hp) returned MultiSteps; it must return an optax.GradientTransformation")
    from vmaptune.optim import CustomOptimizer
    from vmaptune.space import LogUniform, Space

    custom = CustomOptimizer.from_factory(lambda hp: optax.MultiSteps(optax.adam(hp["learning_rate"]), 2),
                                          Space(learning_rate=LogUniform(1e-3, 1e-1)))
    assert custom.names == ("learning_rate",)
    hp = {"learning_rate": 0.1}
    by_hand = optax.MultiSteps(optax.adam(0.1), 2).gradient_transformation()
    params, state = params0(), custom.init(params0(), hp, 1)
    hand_params, hand_state = params0(), by_hand.init(params0())
    for _ in range(4):
        updates, state = custom.update(jax.grad(loss)(params), state, params, hp, 1)
        params = optax.apply_updates(params, updates)
        hand_updates, hand_state = by_hand.update(jax.grad(loss)(hand_params), hand_state, hand_params)
        hand_params = optax.apply_updates(hand_params, hand_updates)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(hand_params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(jax.tree.leaves(params)[0], jax.tree.leaves(params0())[0])


def test_an_optimizer_needing_more_than_grads_state_and_params_is_named_before_anything_compiles():
    # (optax's bare TypeError "update_fn() missing 1 required keyword-only argument: 'value'", or lookahead's
    # AttributeError, came while the training step was traced, after the init program compiled)
    import optax.contrib
    import pytest

    from vmaptune.optim import CustomOptimizer
    from vmaptune.space import LogUniform, Space

    space = Space(learning_rate=LogUniform(1e-3, 1e-1))
    for factory, match in [
        (lambda hp: optax.chain(optax.adam(hp["learning_rate"]), optax.contrib.reduce_on_plateau(patience=5)),
         r"optimizer= \(<lambda>\) returns an optimizer whose update needs the arguments \['value'\] "
         r"\(reduce_on_plateau\); vmaptune calls update\(grads, state, params\) only"),
        (lambda hp: optax.polyak_sgd(hp["learning_rate"]), r"needs the arguments \['value'\] \(scale_by_polyak\)"),
        (lambda hp: optax.lbfgs(hp["learning_rate"]),
         r"needs the arguments \['value', 'grad', 'value_fn'\] \(scale_by_zoom_linesearch\)"),
        (lambda hp: optax.lookahead(optax.adam(hp["learning_rate"]), 5, 0.5),
         r"returns optax.lookahead, whose update takes optax.LookaheadParams .* Give its fast optimizer alone"),
    ]:
        with pytest.raises(TypeError, match=match):
            CustomOptimizer.from_factory(factory, space)


def test_a_searched_setting_that_no_optimizer_or_schedule_of_the_space_reads_is_said():
    """decay_rate under the default constant schedule, or momentum with adam only: every value
    trains alike, and the table would credit the dimension with what the initial weights did."""
    import warnings

    import pytest

    import vmaptune as vt

    data = vt.load_dataset("iris")
    lr = vt.LogUniform(1e-3, 0.1)
    with pytest.warns(UserWarning, match=r"space searches decay_rate=Uniform\(low=0.1, high=0.9\), which only the "
                                         r"schedules \['step', 'exponential'\] read; the space's schedule is "
                                         r"\['constant'\], so every value trains alike. Drop 'decay_rate', or search "
                                         r"schedule=vt.Choice"):
        vt.build_program(vt.MLP(), vt.Space(learning_rate=lr, decay_rate=vt.Uniform(0.1, 0.9)), data, batch_size=16)
    with pytest.warns(UserWarning, match=r"space searches momentum=.*which only the optimizers \['sgd', 'momentum', "
                                         r"'nesterov'\] read; the space's optimizer is \['adam'\]"):
        vt.build_program(vt.MLP(), vt.Space(learning_rate=lr, momentum=vt.Uniform(0.5, 0.9),
                                            optimizer=vt.Fixed("adam")), data, batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.build_program(vt.MLP(), vt.Space(learning_rate=lr, decay_rate=vt.Uniform(0.1, 0.9),
                                            schedule=vt.Choice(["constant", "exponential"])), data, batch_size=16)

        def decayed(outputs, targets, hp):  # (a loss of yours that reads it: its values do not train alike)
            return optax.softmax_cross_entropy_with_integer_labels(outputs, targets) * hp["decay_rate"]

        vt.build_program(vt.MLP(loss=decayed), vt.Space(learning_rate=lr, decay_rate=vt.Uniform(0.1, 0.9)), data,
                         batch_size=16)
