import functools
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import vmaptune as vt
from vmaptune.data import SplitMissesClassWarning


def test_builtin_sets_load_with_the_right_task():
    for name, task in [("digits", "classification"), ("breast_cancer", "classification"),
                       ("wine", "classification"), ("iris", "classification"), ("diabetes", "regression")]:
        data = vt.load_dataset(name)
        assert data.task == task
        total = data.n_train + data.X_val.shape[0] + data.X_test.shape[0]
        assert data.X_train.shape[1] == data.n_features and total > 100


def test_split_is_disjoint_fixed_and_stratified():
    X = np.arange(300, dtype=float)[:, None] * np.ones((1, 3))
    y = np.repeat([0, 1, 2], 100)
    a = vt.Dataset.from_arrays(X, y, "classification", standardize=False, seed=3)
    b = vt.Dataset.from_arrays(X, y, "classification", standardize=False, seed=3)
    rows = [set(np.asarray(s)[:, 0].tolist()) for s in (a.X_train, a.X_val, a.X_test)]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    assert len(rows[0] | rows[1] | rows[2]) == 300
    np.testing.assert_array_equal(a.X_val, b.X_val)
    assert np.bincount(np.asarray(a.y_val)).tolist() == [20, 20, 20]  # stratified


def test_many_small_classes_still_hold_out_the_fraction_asked():
    """20 rows of 4 classes at 0.1: each class rounds to no row; the split takes 2 rows (one of each
    of the largest classes) rather than refusing, as scikit-learn's stratified split does."""
    X, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 4
    data = vt.Dataset.from_arrays(X, y, "classification", val_fraction=0.1, test_fraction=0.1)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (16, 2, 2)
    assert len({*np.asarray(data.X_val)[:, 0].tolist(), *np.asarray(data.X_test)[:, 0].tolist()}) == 4
    # classes of one row each: none can be held out and still trained on, so the split is refused
    with pytest.raises(ValueError, match=r"20 rows are too few for the split \(train=20, val=0, test=0\)"):
        vt.Dataset.from_arrays(X, np.arange(20), "classification", val_fraction=0.1, test_fraction=0.1)


def test_standardised_with_train_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, (400, 4))
    X[:, 3] = 7.0  # a constant feature stays finite
    data = vt.Dataset.from_arrays(X, rng.normal(size=400) * 10 + 50, "regression")
    Xt = np.asarray(data.X_train)
    np.testing.assert_allclose(Xt[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Xt[:, :3].std(0), 1, atol=1e-4)
    assert np.all(np.isfinite(np.asarray(data.X_val)))
    assert abs(float(np.asarray(data.y_train).mean())) < 1e-5 and data.y_std > 5


def test_csv_and_npz_loaders(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,label\n" + "\n".join(f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, y)))
    data = vt.Dataset.from_csv(path, target="label", task="classification")
    assert data.n_features == 3 and data.feature_names == ("a", "b", "c") and data.n_classes == 2
    npz = tmp_path / "d.npz"
    np.savez(npz, X=X, y=y)
    assert vt.Dataset.from_npz(npz, task="classification").n_train == data.n_train
    with pytest.raises(ValueError, match="target='nope' is not a column"):
        vt.Dataset.from_csv(path, target="nope", task="classification")
    with pytest.raises(ValueError, match="has no array 'features'"):
        vt.Dataset.from_npz(npz, task="classification", X="features")


def test_a_csv_weight_column_weighs_the_rows_and_is_not_a_feature(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    w = np.where(X[:, 0] > 0, 3.0, 1.0)
    path = tmp_path / "d.csv"
    path.write_text("a,b,w,label\n" + "\n".join(f"{r[0]},{r[1]},{wi},{int(r[0] > 0)}" for r, wi in zip(X, w)))
    data = vt.Dataset.from_csv(path, target="label", task="classification", weight="w")
    same = vt.Dataset.from_arrays(X, (X[:, 0] > 0).astype(int), "classification", sample_weight=w)
    assert data.feature_names == ("a", "b")
    np.testing.assert_array_equal(data.w_train, same.w_train)
    np.testing.assert_array_equal(data.X_train, same.X_train)
    with pytest.raises(ValueError, match=r"weight='weights' is not a column of .*columns are \['a', 'b', 'w', 'label'\]"):
        vt.Dataset.from_csv(path, target="label", task="classification", weight="weights")
    with pytest.raises(ValueError, match=r"weight='w' and sample_weight= both give the rows' weights; give them "
                                         r"once: weight='w' names the file's column"):  # (the column replaced the array)
        vt.Dataset.from_csv(path, target="label", task="classification", weight="w", sample_weight=np.full(60, 5.0))
    # from_arrays' refusal of an empty weight cell says the file's names too
    path.write_text("a,b,w,label\n" + "\n".join(f"{r[0]},{r[1]},{'' if i == 9 else wi},{int(r[0] > 0)}"
                                                for i, (r, wi) in enumerate(zip(X, w))))
    with pytest.raises(ValueError, match=r"sample_weight must be finite") as refused:
        vt.Dataset.from_csv(path, target="label", task="classification", weight="w")
    assert refused.value.__notes__ == [f"vmaptune: in {path}, y is the target column 'label', sample_weight its "
                                       f"weight='w' column; rows count from 0 below the header."]


@pytest.mark.parametrize(
    "X, y, task, match",
    [
        (np.ones((10, 2)), np.zeros(9), "classification", "X has 10 rows but y has 9"),
        (np.ones(10), np.zeros(10), "classification", r"X must be at least 2-D.*got shape \(10,\).*reshape\(-1, 1\)"),
        (np.ones((0, 2)), np.zeros(0), "classification", "X is empty"),
        (np.where(np.eye(10, 2) > 0, np.nan, 1.0), np.arange(10) % 2, "classification",
         "NaN or infinite values, the first at row 0, column 0"),
        (pd.DataFrame({"age": np.ones(10), "income": np.r_[1.0, np.nan, np.ones(8)]}, index=range(1000, 1010)),
         np.arange(10) % 2, "classification", r"the first at row 1, column 1 \(column 'income', index 1001\)"),
        (np.ones((10, 2)), np.arange(10) * 0.5, "classification",
         r"y holds non-integer numbers .* task='classification'.*use task='regression'"),
        (np.ones((10, 2)), np.array([1, "a"] * 5, dtype=object), "classification", "y mixes label types"),
        (np.ones((10, 2)), np.zeros(10), "classification", "single class"),
        (np.ones((10, 2)), np.r_[np.zeros(9), np.inf], "regression", "y has 1 NaN or infinite values, the first at row 9"),
        (np.ones((10, 2)), np.zeros(10), "clustering", "task must be one of"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(X, y, task, match):
    with pytest.raises((ValueError, TypeError), match=match):
        vt.Dataset.from_arrays(X, y, task)


def test_unknown_builtin_name():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*from_arrays"):
        vt.load_dataset("mnist")


def test_fractions_are_checked():
    with pytest.raises(ValueError, match="val_fraction must be a number in"):
        vt.Dataset.from_arrays(np.ones((10, 2)), np.arange(10) % 2, "classification", val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction must be < 1"):
        vt.Dataset.from_arrays(np.ones((10, 2)), np.arange(10) % 2, "classification", val_fraction=0.5,
                               test_fraction=0.5)


def test_inputs_of_any_shape_integer_ids_and_several_targets():
    rng = np.random.default_rng(0)
    images = rng.normal(3.0, 2.0, (200, 4, 4, 2))
    data = vt.Dataset.from_arrays(images, np.arange(200) % 3, "classification")
    assert data.input_shape == (4, 4, 2) and data.spec.input_shape == (4, 4, 2) and data.n_features == 32
    assert data.x_mean.shape == (4, 4, 2)
    np.testing.assert_allclose(np.asarray(data.X_train).mean(0), 0, atol=1e-5)  # per value, training statistics
    np.testing.assert_allclose(data.scale_inputs(images[:5]), (images[:5] - data.x_mean) / data.x_std, rtol=1e-5)
    tokens = rng.integers(0, 50, (200, 12))
    ids = vt.Dataset.from_arrays(tokens, np.arange(200) % 2, "classification")
    assert ids.X_train.dtype == np.int32 and ids.x_mean is None and set(np.unique(ids.X_train)) <= set(range(50))
    y = np.stack([rng.normal(10, 4, 200), rng.normal(-3, 0.5, 200)], axis=1)
    two = vt.Dataset.from_arrays(rng.normal(size=(200, 3)), y, "regression")
    assert two.n_outputs == 2 and np.asarray(two.y_std).shape == (2,)
    np.testing.assert_allclose(np.asarray(two.y_train).mean(0), 0, atol=1e-5)
    back = two.unscale_targets(np.asarray(two.y_train))  # predictions in the targets' own units
    assert abs(back[:, 0].mean() - 10) < 1.0 and abs(back[:, 1].mean() + 3) < 0.2
    X_raw, y_raw = two.raw("train")  # the split in its own units, as new data comes
    np.testing.assert_allclose(y_raw, back, rtol=1e-6)
    np.testing.assert_allclose(two.scale_inputs(X_raw), np.asarray(two.X_train), atol=1e-5)
    # 8-bit images are integers too: kept unscaled as ids, which they rarely are; said, with the fix
    with pytest.warns(UserWarning, match=r"X is uint8 with examples of shape \(4, 4, 2\): integer inputs are kept "
                                         r"as they are.*X.astype\('float32'\)"):
        vt.Dataset.from_arrays(images.clip(0, 8).astype(np.uint8), np.arange(200) % 3, "classification")


def test_one_target_as_a_column_is_one_target():
    """y of shape (n, 1) is y of shape (n,), as scikit-learn's column_or_1d: a metric of yours
    gets targets (batch,) as the README says (outputs[:, 0] - targets pairs rows, not (batch, batch))."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.normal(5.0, 2.0, 60)
    column = vt.Dataset.from_arrays(X, y[:, None], "regression", validation=(X[:10], y[:10, None]))
    flat = vt.Dataset.from_arrays(X, y, "regression", validation=(X[:10], y[:10]))
    assert column.n_outputs == 1 and np.asarray(column.y_train).shape == np.asarray(flat.y_train).shape == (48,)
    np.testing.assert_array_equal(np.asarray(column.y_val), np.asarray(flat.y_val))
    assert column.y_mean == flat.y_mean and isinstance(column.y_mean, float)
    # a classifier's labels as a one-column DataFrame: the labels (it was refused, with advice, y.ravel(), that a
    # DataFrame has no method for)
    labels = np.array(["a", "b", "c"])[np.arange(60) % 3]
    framed = vt.Dataset.from_arrays(X, pd.DataFrame({"label": labels}), "classification",
                                    validation=(X[:10], pd.DataFrame({"label": labels[:10]})))
    plain = vt.Dataset.from_arrays(X, labels, "classification", validation=(X[:10], labels[:10]))
    np.testing.assert_array_equal(np.asarray(framed.y_train), np.asarray(plain.y_train))
    np.testing.assert_array_equal(np.asarray(framed.y_val), np.asarray(plain.y_val))
    assert list(framed.classes) == ["a", "b", "c"]


def test_a_constant_target_and_integers_beyond_int32_are_named():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    with pytest.warns(UserWarning, match=r"y is constant over the training rows \(\[7.0\]\): there is nothing to "
                                         r"learn there, and metric='r2'.*is undefined"):
        vt.Dataset.from_arrays(X, np.full(40, 7.0), "regression")
    # constant up to rounding (0.1 repeated has a float64 std of about 4e-17): warned, and divided by 1
    with pytest.warns(UserWarning, match=r"y is constant over the training rows \(\[0.1"):
        tenths = vt.Dataset.from_arrays(X, np.full(40, 0.1), "regression")
    assert tenths.y_std == 1.0 and np.all(np.abs(np.asarray(tenths.y_train)) < 1e-12)
    flat = vt.Dataset.from_arrays(np.c_[X, np.full(40, 0.1)], rng.normal(size=40), "regression")
    assert flat.x_std[-1] == 1.0 and np.all(np.abs(np.asarray(flat.X_train)[:, -1]) < 1e-12)  # stays ~0, not +-1
    with pytest.warns(UserWarning, match=r"y's column\(s\) \[1\] are constant"):
        vt.Dataset.from_arrays(X, np.stack([rng.normal(size=40), np.zeros(40)], axis=1), "regression")
    ids = rng.integers(0, 10, (40, 3)).astype(np.int64)
    ids[3, 1] = 3_000_000_000  # wrapped to a negative id by int32, silently, before
    with pytest.raises(ValueError, match=r"X holds integers from 0 to 3000000000, outside int32.*"
                                         r"X.astype\('float64'\)"):
        vt.Dataset.from_arrays(ids, np.arange(40) % 2, "classification")


def test_classes_too_thin_to_learn_are_warned_about():
    """Whole-number values of a quantity given as classes (diabetes: 214 classes over 442 rows), and
    a class of one row."""
    from sklearn.datasets import load_diabetes, load_iris

    X, y = load_diabetes(return_X_y=True)
    with pytest.warns(UserWarning, match=r"y has 214 classes over 442 rows, \d+ of them with fewer than 3 rows: it "
                                         r"looks like a numeric target.*task='regression'"):
        vt.Dataset.from_arrays(X, y, "classification")
    X, y = load_iris(return_X_y=True)
    with pytest.warns(UserWarning, match=r"y's class\(es\) \[2\] have a single row each"):
        vt.Dataset.from_arrays(X[:101], y[:101], "classification")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.Dataset.from_arrays(X, y, "classification")  # three classes of 50: nothing to say


def test_your_own_validation_and_test_splits():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(100, 3)), np.arange(100) % 2
    Xv, yv = rng.normal(size=(20, 3)), np.arange(20) % 2
    Xt, yt = rng.normal(size=(30, 3)), np.arange(30) % 2
    both = vt.Dataset.from_arrays(X, y, "classification", validation=(Xv, yv), test=(Xt, yt))
    assert (both.n_train, both.X_val.shape[0], both.X_test.shape[0]) == (100, 20, 30)  # nothing carved
    np.testing.assert_allclose(np.asarray(both.X_val), (Xv - X.mean(0)) / X.std(0), rtol=1e-5, atol=1e-6)
    only_val = vt.Dataset.from_arrays(X, y, "classification", validation=(Xv, yv), test_fraction=0.2)
    assert (only_val.n_train, only_val.X_val.shape[0], only_val.X_test.shape[0]) == (80, 20, 20)
    with pytest.raises(ValueError, match=r"validation: X has examples of shape \(4,\), but X's are \(3,\)"):
        vt.Dataset.from_arrays(X, y, "classification", validation=(rng.normal(size=(20, 4)), yv))
    with pytest.raises(ValueError, match=r"test: y holds labels \[5, 6\] that the training labels do not have"):
        vt.Dataset.from_arrays(X, y, "classification", test=(Xt, yt + 5))
    with pytest.raises(TypeError, match=r"validation must be a pair \(X_val, y_val\)"):
        vt.Dataset.from_arrays(X, y, "classification", validation=Xv)


def test_no_test_split_beside_your_own_validation_split():
    """test_fraction=0 keeps every row of X for training (a time series' past, with its future as the
    validation split): a refit trains and predicts, and has no test score."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X.sum(axis=1)
    data = vt.Dataset.from_arrays(X[:100], y[:100], "regression", validation=(X[100:], y[100:]), test_fraction=0)
    assert (data.n_train, data.X_val.shape[0], data.X_test.shape[0]) == (100, 20, 0)
    result = vt.tune(vt.MLP(units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), data,
                     vt.RandomSearch(population=2), epochs=2, batch_size=20, refit=1, progress=False)
    assert result.best_model().predict(X[:5]).shape == (5,) and np.isnan(result.members["test_score"][0:2]).all()
    with pytest.raises(ValueError, match=r"no test score: the data set has no test split \(test_fraction=0\).* "
                                         r"results.best_model\(\).score\(X, y\)"):
        result.test_score
    assert "test mse" not in result.summary()
    with pytest.raises(ValueError, match=r"test_fraction must be a number in \[0, 1\), got -0.1"):
        vt.Dataset.from_arrays(X, y, "regression", test_fraction=-0.1)


def test_class_labels_of_any_kind_are_encoded_and_kept(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    names = np.array(["setosa", "versicolor", "virginica"])[np.arange(120) % 3]
    data = vt.Dataset.from_arrays(X, names, "classification")
    assert data.classes.tolist() == ["setosa", "versicolor", "virginica"] and data.n_classes == 3
    assert set(np.unique(np.asarray(data.y_train)).tolist()) == {0, 1, 2}
    gappy = vt.Dataset.from_arrays(X, (np.arange(120) % 2) * 5 + 1, "classification")  # labels 1 and 6
    assert gappy.classes.tolist() == [1, 6]
    floats = vt.Dataset.from_arrays(X, (np.arange(120) % 3).astype(float), "classification")  # (read from a CSV)
    assert floats.classes.dtype == np.float64 and floats.raw("test")[1].dtype == np.float64  # as given, as sklearn
    with pytest.raises(ValueError, match=r"test: y holds labels \['virginica'\] that the training labels do not have"):
        vt.Dataset.from_arrays(X[:80], np.where(np.arange(80) % 2, "setosa", "versicolor"), "classification",
                               test=(X[80:], names[80:]))
    # CSV: text labels, and text features one-hot on request
    frame_path = tmp_path / "pets.csv"
    colour = np.array(["red", "green", "blue"])[rng.integers(0, 3, 120)]

    pd.DataFrame({"size": rng.normal(size=120), "colour": colour, "kind": names}).to_csv(frame_path, index=False)
    with pytest.raises(ValueError, match=r"feature columns \['colour'\] hold text.*pass one_hot=True"):
        vt.Dataset.from_csv(frame_path, target="kind", task="classification")
    coded = vt.Dataset.from_csv(frame_path, target="kind", task="classification", one_hot=True)
    assert coded.n_features == 4 and coded.feature_names == ("size", "colour_blue", "colour_green", "colour_red")
    assert coded.categories == {"colour": ("blue", "green", "red")} and coded.source_columns == ("size", "colour")
    assert coded.classes.tolist() == ["setosa", "versicolor", "virginica"]


def test_one_hot_may_name_its_columns_codes_of_numbers_too_and_is_checked(tmp_path):
    """one_hot=[...] encodes the columns named, a column of number codes (zip codes) too, and a
    model of it encodes new rows of them itself; a name that is no feature column, a text column
    left out, and a value that is no list or flag are refused (one_hot=["zip"] was read as True,
    leaving the zip codes one number, and one_hot="false" encoded every text column)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"zip": rng.choice([75001, 69002, 13003], 60), "colour": rng.choice(["red", "blue"], 60),
                          "size": rng.normal(size=60)})
    frame["kind"] = np.where(frame.zip == 75001, "a", "b")
    frame.to_csv(tmp_path / "shops.csv", index=False)
    read = functools.partial(vt.Dataset.from_csv, tmp_path / "shops.csv", target="kind", task="classification")
    data = read(one_hot=["zip", "colour"])
    assert data.feature_names == ("size", "zip_13003", "zip_69002", "zip_75001", "colour_blue", "colour_red")
    assert data.categories == {"zip": ("13003", "69002", "75001"), "colour": ("blue", "red")}
    model = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.01)), data,
                    vt.RandomSearch(population=2), epochs=1, batch_size=16, refit=1, progress=False).best_model()
    new = frame.drop(columns="kind").iloc[:5]
    encoded = pd.get_dummies(new.astype({"zip": str}), dtype=float).reindex(columns=model.feature_names, fill_value=0)
    np.testing.assert_array_equal(model.predict(new), model.predict(encoded))
    for one_hot, error, told in (
            (["zip"], ValueError, r"feature columns \['colour'\] hold text, not numbers; add them to one_hot=\['zip'\]"),
            (["zpi", "colour"], ValueError, r"one_hot=\['zpi', 'colour'\] names 'zpi', which is not a feature column; "
                                            r"the feature columns are \['zip', 'colour', 'size'\]\. Did you mean 'zip'\?"),
            (["kind"], ValueError, r"names 'kind' \(the target\), which is not a feature column"),
            ("false", TypeError, r"one_hot='false': give True \(a 0/1 column per value of every text column\), False, "
                                 r"or a list of the columns to encode")):
        with pytest.raises(error, match=told):
            read(one_hot=one_hot)


def test_warnings_point_at_the_callers_line_not_vmaptunes():
    """A notebook shows the cell that called vmaptune under a warning (vmaptune/warn.py)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vt.Dataset.from_arrays(np.random.default_rng(0).normal(size=(40, 3)), np.full(40, 7.0), "regression")
        vt.tune(vt.MLP(units=4), vt.Space(learning_rate=vt.Fixed(1e30), optimizer=vt.Fixed("sgd")),
                vt.load_dataset("iris"), vt.RandomSearch(population=2), epochs=1, progress=False)  # all diverge
    assert len(caught) == 2 and "all 2 members failed" in str(caught[1].message)
    assert [w.filename for w in caught] == [__file__] * 2


@pytest.mark.parametrize("scale", [1e39, 1e-46], ids=["past-float32-max", "below-float32-tiny"])
def test_weights_past_float32s_range_are_divided_by_their_largest(scale):
    """The loss is the weights' weighted mean: dividing them by their largest changes nothing, and
    keeps 1e39 from becoming inf (and 1e-46 from becoming 0) in float32."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    w = rng.choice([1.0, 2.0, 4.0], size=40)
    data = vt.Dataset.from_arrays(X, y, "classification", sample_weight=w * scale, seed=0)
    same = vt.Dataset.from_arrays(X, y, "classification", sample_weight=w / 4.0, seed=0)
    np.testing.assert_allclose(data.w_train, same.w_train, rtol=1e-6)
    assert data.w_train.min() > 0
    model = vt.MLPClassifier(n_units=8, epochs=2, batch_size=16, random_state=0).fit(X, y, sample_weight=w * scale)
    assert np.isfinite(model.loss_curve_).all(), model.loss_curve_


def test_a_csv_regression_may_name_several_target_columns(tmp_path):
    rows = ["a,b,price,rent"] + [f"{i},{i * 2 % 7},{i * 0.5},{i % 5}" for i in range(60)]
    (tmp_path / "k.csv").write_text("\n".join(rows) + "\n")
    data = vt.Dataset.from_csv(tmp_path / "k.csv", target=["price", "rent"], task="regression")
    assert data.y_train.shape[1] == 2 and data.feature_names == ("a", "b")


def test_integer_labels_in_an_object_array_are_integer_classes_and_score():
    """pandas' .astype(object) of integer labels: the classes were objects, and the trained model
    could then never be scored (scikit-learn's 'unknown is not supported', or 'give y as the labels
    it was trained on' for those very labels)."""

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = pd.Series((X[:, 0] > 0).astype(int)).astype(object)
    data = vt.Dataset.from_arrays(X, y, "classification")
    assert data.classes.dtype.kind == "i" and data.classes.tolist() == [0, 1]
    model = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.05)), data,
                    vt.RandomSearch(population=1), epochs=1, batch_size=8, refit=1, progress=False).best_model()
    assert model.score(X, y) == model.score(X, y.astype(int)) == model.score(X, y.to_numpy(int))
    assert model.predict(X[:3]).dtype.kind == "i"
    assert model.score(X, y.to_frame()) == model.score(X, y)  # (an (n, 1) column of them)
    # floats held as objects too; missing labels are refused by name, not with a raw TypeError
    floats = vt.Dataset.from_arrays(X, y.astype(float).astype(object), "classification")
    assert floats.classes.dtype == np.float64
    with pytest.raises(ValueError, match=r"score\(X, y\): y has 1 row\(s\) of missing labels or targets \(None, NaN or "
                                         r"NA\), the first at row 2"):
        model.score(X[:4], np.asarray([0, 1, None, 1], dtype=object))
    with pytest.raises(ValueError, match=r"y has 1 missing labels \(None or NaN\), the first at row 1"):
        vt.Dataset.from_arrays(X[:4], pd.array([0, None, 1, 1], dtype="Int64").astype(object), "classification")


def test_a_carved_split_that_misses_a_class_or_starves_training_is_named():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    rare = np.r_[np.zeros(98, int), np.ones(2, int)]  # a class of 2 rows rounds to none of 20 % at 0.2
    with pytest.warns(UserWarning, match=r"the val split holds no row of class\(es\) \[1\] \(val_fraction=0.2 of 2 "
                                         r"rows rounds to none\).*\(validation=\(X, y\) of "
                                         r"vt.Dataset.from_arrays\)") as said:
        vt.Dataset.from_arrays(X, rare, "classification")
    facts = [(w.message.split, w.message.class_ids, w.message.fraction) for w in said
             if isinstance(w.message, SplitMissesClassWarning)]  # (what an estimator says in its own terms)
    assert facts == [("val", [1], 0.2), ("test", [1], 0.2)]
    copied = pickle.loads(pickle.dumps(said[0].message))  # (a joblib worker's warning made an error reaches its parent)
    assert (type(copied), str(copied), copied.class_ids) == (SplitMissesClassWarning, str(said[0].message), [1])
    many = np.repeat(np.arange(50), 3)  # 50 classes of 3 rows: one row each to validation and test
    with pytest.warns(UserWarning, match=r"stratifying 50 classes leaves 50 of 150 rows to train on \(about 90"):
        vt.Dataset.from_arrays(rng.normal(size=(150, 3)), many, "classification")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the built-in data sets split as asked
        for name in ("iris", "wine", "digits", "breast_cancer"):
            vt.load_dataset(name)


def test_a_stratified_carve_keeps_a_training_row_of_a_class_its_shares_would_use_up():
    """A class of 2 rows at 0.3 / 0.3 went one row to validation and one to test, none to training
    (3 rows at 0.25 / 0.5: 0, 1 and 2), unsaid: the network never saw the class its scores counted."""
    X = np.random.default_rng(0).normal(size=(100, 3))
    y = np.r_[np.full(2, 2), np.ones(48, int), np.zeros(50, int)]
    with pytest.warns(SplitMissesClassWarning, match=r"the test split holds no row of class\(es\) \[2\] \(test_fraction"
                                                     r"=0.3 of 2 rows beside val_fraction=0.3 would leave training "
                                                     r"none: that row trains instead\)"):
        data = vt.Dataset.from_arrays(X, y, "classification", val_fraction=0.3, test_fraction=0.3)
    counts = [np.bincount(data.raw(split)[1], minlength=3).tolist() for split in ("train", "val", "test")]
    assert counts == [[20, 20, 1], [15, 14, 1], [15, 14, 0]]  # (the other classes' shares as before)
    y = np.r_[np.full(3, 2), np.ones(47, int), np.zeros(50, int)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every split holds the class: nothing to say
        data = vt.Dataset.from_arrays(X, y, "classification", val_fraction=0.25, test_fraction=0.5)
    counts = [np.bincount(data.raw(split)[1], minlength=3)[2] for split in ("train", "val", "test")]
    assert counts == [1, 1, 1]
    y[:3] = [2, 3, 3]  # (a class of one row, which test_fraction=0.6 rounds to a row, trains too)
    data = vt.Dataset.from_arrays(X, y, "classification", val_fraction=0.2, test_fraction=0.6)
    assert np.isin([2, 3], data.raw("train")[1]).all()


def test_weights_that_are_zero_on_every_training_row_are_refused():
    """Nonzero weights only where the split put validation and test rows: the training loss was 0,
    every member 'ok' and none trained."""
    from vmaptune.data.splits import _split

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    train, val, test = _split(40, y, 0.2, 0.2, 0)
    weights = np.zeros(40)
    weights[np.r_[val, test]] = 1.0
    with pytest.raises(ValueError, match=r"sample_weight is 0 on every one of the 24 training rows"):
        vt.Dataset.from_arrays(X, y, "classification", sample_weight=weights, seed=0)
    weights[train[0]] = 1.0
    vt.Dataset.from_arrays(X, y, "classification", sample_weight=weights, seed=0)


def test_values_whose_squares_overflow_or_underflow_are_standardised_as_any_other():
    """A column of 1e200s had an infinite std and read as zeros; targets of 1e-300 read as constant."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=100), rng.normal(size=100) * 1e200]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = vt.Dataset.from_arrays(X, (X[:, 1] > 0).astype(int), "classification")
        tiny = vt.Dataset.from_arrays(X[:, :1], X[:, 0] * 1e-300, "regression")
    assert 0.5 < np.std(np.asarray(data.X_train)[:, 1]) < 1.5
    assert 0.5 < np.std(np.asarray(tiny.y_train)) < 1.5


def test_a_number_column_with_a_missing_value_marker_is_refused_and_codes_stay_categories(tmp_path):
    """UCI's '?' in an age column made 72 one-hot columns of ages; codes that mostly look like
    numbers (ICD-9's 'V58', bedrooms '5+') are categories and stay one-hot."""
    def csv(column):
        (tmp_path / "d.csv").write_text("x,c,y\n" + "".join(f"{i},{v},{i % 2}\n" for i, v in enumerate(column)))
        return vt.Dataset.from_csv(tmp_path / "d.csv", "y", "classification", one_hot=True)

    ages = [str(20 + i) for i in range(40)]
    for marked in (ages[:39] + ["?"], ["?" if i % 7 == 0 else a for i, a in enumerate(ages)],  # 1 and 15 % marked
                   ["" if i % 2 else ("?" if i == 4 else a) for i, a in enumerate(ages)],  # half empty, one '?'
                   ages[:37] + ["unk", "Missing", "*"]):  # any word without a digit
        with pytest.raises(ValueError, match=r"column 'c' holds numbers and \d+ cell\(s\) of \[.*\], a marker of "
                                             r"missing values.*pandas.get_dummies\(frame, columns=\['c'\]\)"):
            csv(marked)
    codes = csv([str(250 + i % 5) for i in range(38)] + ["V58", "V58"])
    bedrooms = csv([str(1 + i % 4) for i in range(38)] + ["5+", "5+"])
    words = csv(["-"] * 39 + ["3"])  # a column of categories with a number in it
    assert len(codes.feature_names) == 1 + 6 and len(bedrooms.feature_names) == 1 + 5
    assert len(words.feature_names) == 1 + 2
    # codes that Python's float() reads ('5_9' as 59) are categories; a marker with a space (' nan') is a marker
    groups = ["0_4", "5_9", "10_14", "15_19"] * 10
    assert len(csv(groups).feature_names) == 1 + 4
    with pytest.raises(ValueError, match=r"column 'c' holds numbers and 1 cell\(s\) of \[' nan'\], a marker"):
        csv(ages[:39] + [" nan"])
    # words beside numbers that are categories, not markers: rooms and a studio, grades and K, yes / no and 1 / 0
    for column, values in ((["studio"] * 5 + [str(1 + i % 4) for i in range(35)], 5),
                           (["K"] * 5 + [str(1 + i % 12) for i in range(35)], 13),
                           (["yes", "no"] * 5 + ["1", "0"] * 15, 4)):
        assert len(csv(column).feature_names) == 1 + values


def test_your_own_datas_silent_traps_are_said(tmp_path):
    """Each trained without a word: a pandas index written by to_csv became a feature telling a
    row's place (pure-noise labels sorted in the file scored 0.86); flattened 8-bit pixels stayed
    unscaled ids (0.86 against 0.98 on digits); negative ids wrapped onto the last embedding; a
    price written '1,234' became a one-hot column per price."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "label": np.repeat([0, 1, 2], 20)})
    frame.to_csv(tmp_path / "indexed.csv")  # (pandas' default: the index as a first, unnamed column)
    with pytest.warns(UserWarning, match=r"column 'Unnamed: 0' holds distinct row numbers \(0, 1, \.\.\.\): an index that "
                                         r"pandas' DataFrame.to_csv wrote.*to_csv\(index=False\)"):
        vt.Dataset.from_csv(tmp_path / "indexed.csv", target="label", task="classification")
    frame.sample(frac=1.0, random_state=0).to_csv(tmp_path / "shuffled.csv")  # (a shuffled frame's index too)
    with pytest.warns(UserWarning, match=r"column 'Unnamed: 0' holds distinct row numbers"):
        vt.Dataset.from_csv(tmp_path / "shuffled.csv", target="label", task="classification")
    frame.to_csv(tmp_path / "plain.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.Dataset.from_csv(tmp_path / "plain.csv", target="label", task="classification")
    with pytest.warns(UserWarning, match=r"X is uint8 with examples of shape \(4,\): integer inputs are kept as they "
                                         r"are.*X.astype\('float32'\)"):
        vt.Dataset.from_arrays(rng.integers(0, 255, (60, 4)).astype(np.uint8), np.arange(60) % 2, "classification")
    with pytest.warns(UserWarning, match=r"X holds negative integers \(down to -1\).*-1 is the last id"):
        vt.Dataset.from_arrays(rng.integers(-1, 50, (60, 5)), np.arange(60) % 2, "classification")
    prices = pd.DataFrame({"price": [f"{p:,}" for p in rng.integers(900, 5000, 60)], "label": np.arange(60) % 2})
    prices.to_csv(tmp_path / "prices.csv", index=False)
    for one_hot in (False, True):
        with pytest.raises(ValueError, match=r"column 'price' holds numbers written with ',' between thousands \(e.g. "
                                             r"'[\d,]+'\), read as text\. Read the file with "
                                             r"pandas.read_csv\(path, thousands=','\)"):
            vt.Dataset.from_csv(tmp_path / "prices.csv", target="label", task="classification", one_hot=one_hot)
    prices.loc[3, "price"] = "?"  # (a missing-value marker among them: still numbers, not 60 one-hot columns)
    prices.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.raises(ValueError, match=r"column 'price' holds numbers written with ',' between thousands"):
        vt.Dataset.from_csv(tmp_path / "prices.csv", target="label", task="classification", one_hot=True)
    ids = pd.DataFrame({"user": [f"user_{i}" for i in range(60)], "x": rng.normal(size=60), "label": np.arange(60) % 2})
    ids.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.warns(UserWarning, match=r"one_hot=True gives text column\(s\) \['user'\] a 0/1 column per value, and "
                                         r"they hold \[60\] distinct values in 60 rows: an id or free text"):
        vt.Dataset.from_csv(tmp_path / "ids.csv", target="label", task="classification", one_hot=True)


def test_a_pandas_y_in_another_order_than_x_is_said():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40)}, index=np.arange(100, 140))
    y = pd.Series(np.arange(40) % 2, index=X.index)
    with pytest.warns(UserWarning, match=r"the index of y holds X's row labels in another order: rows are paired by "
                                         r"position.*y.loc\[X.index\]"):
        vt.Dataset.from_arrays(X, y.sample(frac=1.0, random_state=0), "classification")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (aligned, or a y without labels of X's: paired by position, unsaid)
        vt.Dataset.from_arrays(X, y, "classification")
        vt.Dataset.from_arrays(X, y.reset_index(drop=True), "classification")


def test_a_validation_or_test_pair_or_sample_weight_in_another_order_than_its_x_is_said():
    """validation= is the split every member is ranked on: its labels shuffled by a sort would pick the wrong one."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40)}, index=np.arange(100, 140))
    y = pd.Series(np.arange(40) % 2, index=X.index)
    Xv = pd.DataFrame({"a": rng.normal(size=20)}, index=np.arange(500, 520))
    yv = pd.Series(np.arange(20) % 2, index=Xv.index)
    shuffled = yv.sample(frac=1.0, random_state=0)
    for split, short in (("validation", "val"), ("test", "test")):
        with pytest.warns(UserWarning, match=rf"the index of y_{short} in {split}=\(X_{short}, y_{short}\) holds "
                                             rf"X_{short}'s row labels in another order.*y_{short}.loc\[X_{short}.index\]"):
            vt.Dataset.from_arrays(X, y, "classification", **{split: (Xv, shuffled)})
    weights = pd.Series(np.linspace(1.0, 2.0, 40), index=X.index)
    with pytest.warns(UserWarning, match=r"the index of sample_weight holds X's row labels in another order.*"
                                         r"sample_weight.loc\[X.index\]"):
        vt.Dataset.from_arrays(X, y, "classification", sample_weight=weights.sample(frac=1.0, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (aligned, or without labels of their X's: paired by position, unsaid)
        vt.Dataset.from_arrays(X, y, "classification", validation=(Xv, yv), test=(Xv, shuffled.to_numpy()),
                               sample_weight=weights)
        vt.Dataset.from_arrays(X, y, "classification", validation=(Xv.to_numpy(), shuffled))


def test_row_labels_that_mix_ints_and_strings_are_compared_without_sorting():
    """pd.concat of an int-indexed and an id-indexed frame gives labels that do not sort: the
    misalignment check counts them instead of failing with a bare TypeError."""
    rng = np.random.default_rng(0)
    index = pd.Index(list(range(20)) + [f"r{i}" for i in range(20)], dtype=object)
    X = pd.DataFrame({"a": rng.normal(size=40)}, index=index)
    y = pd.Series(np.arange(40) % 2, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (without labels of X's: paired by position, unsaid)
        vt.Dataset.from_arrays(X, y.reset_index(drop=True), "classification",
                               sample_weight=pd.Series(np.linspace(1.0, 2.0, 40)),
                               validation=(X.iloc[10:30], pd.Series(np.arange(20) % 2)))
    with pytest.warns(UserWarning, match=r"the index of sample_weight holds X's row labels in another order"):
        vt.Dataset.from_arrays(X, y, "classification",
                               sample_weight=pd.Series(np.linspace(1.0, 2.0, 40), index=index[::-1]))


def test_a_csv_target_not_found_gets_a_near_name_or_the_files_separator(tmp_path):
    (tmp_path / "spaced.csv").write_text("a, label\n1,0\n2,1\n3,0\n")
    with pytest.raises(ValueError, match=r"target='label' is not a column.*Did you mean ' label'\?"):
        vt.Dataset.from_csv(tmp_path / "spaced.csv", target="label", task="classification")
    (tmp_path / "semi.csv").write_text("a;b;label\n1;2;0\n2;3;1\n3;4;0\n")
    with pytest.raises(ValueError, match=r"The file looks separated by ';', not commas: read it with "
                                         r"pandas.read_csv\(path, sep=';'\)"):
        vt.Dataset.from_csv(tmp_path / "semi.csv", target="label", task="classification")


def test_a_carve_in_order_that_leaves_a_class_out_of_training_says_so():
    """shuffle=False carves in X's order (a time series): a class only the last rows hold lies in
    validation and never in training, so its scores are capped; said, the split kept. One in
    every part is not said."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    late = np.r_[rng.integers(0, 2, 70), np.full(30, 2)]  # class 2 only in the last 30 rows
    with pytest.warns(UserWarning, match=r"the training split \(X's first rows: shuffle=False\) holds no row of "
                                         r"class\(es\) \[2\], which the val split has: the network never learns"):
        data = vt.Dataset.from_arrays(X, late, "classification", shuffle=False)
    assert 2 not in np.asarray(data.y_train) and 2 in np.asarray(data.y_val)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.Dataset.from_arrays(X, np.arange(100) % 3, "classification", shuffle=False)


def test_a_keywords_value_in_a_message_is_cut_short_however_it_nests():
    from vmaptune.data.dataset import _Shown

    looped = [1]
    looped.append(looped)  # (recursed without end: RecursionError)
    assert repr(_Shown(looped)).startswith("[1, [1, [1, [") and "[...]" in repr(_Shown(looped))
    assert len(repr(_Shown({tuple(range(10000)): np.ones(3)}))) < 60  # (a key printed whole: 58,895 characters)
    assert repr(_Shown((np.ones((2, 3)), [np.ones(4)]))) == "(<ndarray of shape (2, 3)>, [<ndarray of shape (4,)>])"
