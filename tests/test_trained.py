"""Trained models out of vt.tune: the refit member's own weights, raw inputs in, labels or target
units out, and save / load round trips that predict bit for bit."""

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split

import vmaptune as vt

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), momentum=vt.Fixed(0.9))


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def refit_result(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    data = vt.Dataset.from_arrays(X_train, y_train, "classification", test=(X_test, y_test))
    result = vt.tune(vt.MLP(hidden=1, units=32), SPACE, data, vt.RandomSearch(population=4), epochs=3,
                     batch_size=64, refit=2, progress=False)
    return data, result


def test_the_best_model_is_the_refit_member_and_reads_raw_inputs(refit_result, digits_split):
    data, result = refit_result
    _, X_test, _, y_test = digits_split
    model = result.best_model()
    assert isinstance(model, vt.TrainedModel) and model.hyperparameters == result.best_params
    # raw rows in, scaled as the data set was: the same outputs as the network on the scaled split
    outputs, _ = model.network.apply(model.params, model.model_state, data.X_test, model.hp, train=False)
    np.testing.assert_allclose(model.outputs(X_test), np.asarray(outputs), rtol=1e-5, atol=1e-5)
    # the engine's one test evaluation of the refit member is this model's accuracy
    assert model.score(X_test, y_test) == pytest.approx(result.test_score, abs=1e-6)
    assert model.predict_proba(X_test).shape == (len(X_test), 10)
    np.testing.assert_allclose(model.predict_proba(X_test).sum(axis=1), 1.0, rtol=1e-12)
    assert set(model.variables) == {"params"} and model.info["epochs"] >= 1
    second = result.ranking()[1]
    assert result.model(second).hyperparameters == result.members.iloc[second][list(SPACE.names)].to_dict()
    with pytest.raises(ValueError, match=r"row \d+ has no trained model: only refit settings keep their weights"):
        result.model(int(result.ranking()[2]))
    with pytest.raises(TypeError, match=r"results.model\('a'\): give a row's position in the table"):
        result.model("a")


def test_save_and_load_predict_bit_for_bit(refit_result, digits_split, tmp_path):
    _, result = refit_result
    _, X_test, _, _ = digits_split
    result.save(tmp_path / "run")
    again = vt.load_results(tmp_path / "run")
    assert sorted(again.models) == sorted(result.models)
    for row, model in result.models.items():
        np.testing.assert_array_equal(again.model(row).outputs(X_test), model.outputs(X_test))
        np.testing.assert_array_equal(again.model(row).predict(X_test), model.predict(X_test))
    alone = result.best_model().save(tmp_path / "best")
    np.testing.assert_array_equal(vt.TrainedModel.load(alone).predict_proba(X_test),
                                  result.best_model().predict_proba(X_test))


def test_a_regression_model_predicts_in_the_targets_units():
    X, y = load_diabetes(return_X_y=True)
    data = vt.Dataset.from_arrays(X, y, "regression")
    result = vt.tune(vt.MLP(hidden=1, units=16), vt.Space(learning_rate=vt.Fixed(0.02)), data,
                     vt.RandomSearch(population=2), epochs=20, batch_size=32, refit=1, progress=False)
    model = result.best_model()
    predicted = model.predict(X[:50])
    assert predicted.shape == (50,) and 50 < predicted.mean() < 250  # disease progression's own units
    assert model.score(X, y) > 0.2
    with pytest.raises(ValueError, match="predict_proba is for classification"):
        model.predict_proba(X[:2])
    # the split back in its own units: the refit's test_score (standardised mse) is evaluate's
    X_test, y_test = data.raw("test")
    assert model.evaluate(X_test, y_test, metric="neg_mse") == pytest.approx(result.test_score, rel=1e-5)
    assert model.evaluate(X_test, y_test[:, None], metric="neg_mse") == pytest.approx(result.test_score, rel=1e-5)
    with pytest.raises(ValueError, match=r"y has shape \(\d+, 2\); the model scores 1 target per row, as the model "
                                         r"was trained: shape \(\d+,\)"):
        model.evaluate(X_test, np.c_[y_test, y_test], metric="neg_mse")
    mse = np.mean((model.predict(X_test) - y_test) ** 2)
    assert mse / data.y_std ** 2 == pytest.approx(-result.test_score, rel=1e-5)
    # rows sliced from the standardised split (not the array itself, which is refused) are scaled
    # twice: diabetes' features have stds of 0.05, so they land 20-40 stds away, and predict warns
    with pytest.warns(UserWarning, match=r"X lies far from the training data: \d+% of its values are more than 10 "
                                         r"standard deviations .* use data.raw\('test'\) instead"):
        model.predict(data.X_test[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(X_test[:5])  # (raw rows: no warning)


def test_a_metric_of_yours_named_as_a_built_in_scores_evaluate_not_the_built_in(tmp_path):
    """A vt.Metric("mae") of yours, in the targets' units, is what evaluate scores by default, as
    test_score did; a saved model, which keeps no function, asks for it rather than scoring the
    built-in mae of that name (standardised units)."""
    import jax.numpy as jnp

    X, y = load_diabetes(return_X_y=True)
    data = vt.Dataset.from_arrays(X, y, "regression")
    mae = vt.Metric("mae", "regression", lambda out, t: jnp.mean(jnp.abs(out[:, 0] - t)), greater_is_better=False)
    result = vt.tune(vt.MLP(hidden=1, units=16), vt.Space(learning_rate=vt.Fixed(0.02)), data,
                     vt.RandomSearch(population=1), metric=mae, epochs=3, batch_size=32, refit=1, progress=False)
    model = result.best_model()
    X_test, y_test = data.raw("test")
    by_hand = -np.mean(np.abs(model.predict(X_test) - y_test))
    assert by_hand < -10  # (diabetes' targets are in the hundreds: the built-in mae, standardised, is near -1)
    assert model.evaluate(X_test, y_test) == pytest.approx(result.test_score, rel=1e-5)
    assert model.evaluate(X_test, y_test) == pytest.approx(by_hand, rel=1e-4)
    model.save(tmp_path / "model")
    loaded = vt.TrainedModel.load(tmp_path / "model")
    with pytest.raises(ValueError, match=r"searched with your metric 'mae', which a saved or loaded model does not "
                                         r"keep.*metric=your_metric"):
        loaded.evaluate(X_test, y_test)
    assert loaded.evaluate(X_test, y_test, metric=mae) == pytest.approx(by_hand, rel=1e-4)
    assert loaded.evaluate(X_test, y_test, metric="mae") == pytest.approx(by_hand / data.y_std, rel=1e-4)


@pytest.mark.parametrize("features, warned", [(1, False), (3, False), (4, True)])
def test_far_rows_warn_only_where_rows_hold_several_values(features, warned):
    """One feature asked far outside its training range (extrapolating, plotting a wide grid) is not
    rows scaled twice; the warning needs rows of 4 or more values, most of them far."""
    model = vt.TrainedModel(network=None, params={}, model_state={}, hp={}, hyperparameters={}, task="regression",
                            classes=None, input_shape=(features,), input_dtype="float32",
                            x_mean=np.full(features, 5.0), x_std=np.full(features, 3.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.scale(np.full((2, features), 100.0))
    assert any("X lies far from the training data" in str(w.message) for w in caught) == warned


def test_a_dataframe_names_the_features_and_predict_checks_the_columns(tmp_path):

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    data = vt.Dataset.from_arrays(X, y, "regression")
    assert data.feature_names == tuple(X.columns)
    result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.Fixed(0.02)), data,
                     vt.RandomSearch(population=2), epochs=2, batch_size=32, refit=1, progress=False)
    model = vt.TrainedModel.load(result.best_model().save(tmp_path / "m"))
    assert model.feature_names == tuple(X.columns)
    np.testing.assert_array_equal(model.predict(X[:5]), model.predict(X.to_numpy()[:5]))  # names in order: fine
    with pytest.raises(ValueError, match=r"the same names, in another order\). Select them as X\[model.feature_names\]"):
        model.predict(X[list(reversed(X.columns))][:5])
    with pytest.raises(ValueError, match=r"missing \['bmi'\]; unexpected \['BMI'\]"):
        model.predict(X.rename(columns={"bmi": "BMI"})[:5])
    # pandas' missing values are rows with NaN, text and ragged rows are named (numpy's errors before)
    missing, text = X[:3].astype("Float64"), X[:3].astype(object)
    missing.iloc[2, 1], text.iloc[1, 0] = pd.NA, "a"
    with pytest.raises(ValueError, match=r"X has 1 row\(s\) with NaN or infinite values \(rows \[2\]\)"):
        model.predict(missing)
    with pytest.raises(ValueError, match=r"X's column 'age' holds text, such as 'a' \(row 1\); the model takes "
                                         r"numbers: encode text first.*OrdinalEncoder"):
        model.predict(text)
    with pytest.raises(ValueError, match=r"X's rows have different lengths \(a ragged list\)"):
        model.predict([[0.0] * 10, [0.0] * 9])
    # numbers as a numpy array of text (np.loadtxt(..., dtype=str)) are read as numbers, as in an object array;
    # they were refused, naming a value 'None' that X did not hold
    as_text = X.to_numpy()[:5].astype(str)
    np.testing.assert_array_equal(model.predict(as_text), model.predict(as_text.astype(float)))
    as_text[3, 2] = "n/a"
    with pytest.raises(ValueError, match=r"X holds values that are not numbers, such as 'n/a' \(text\)"):
        model.predict(as_text)
    # one row as a pandas Series (X.iloc[0]) is checked by its index: it was read by position
    np.testing.assert_array_equal(model.predict(X.iloc[0]), model.predict(X[:1]))
    with pytest.raises(ValueError, match=r"X's index \(one row, a pandas Series\) \['s6', .*in another order"):
        model.predict(X[list(reversed(X.columns))].iloc[0])
    # unnamed inputs (numpy) train a model that names nothing, so any DataFrame's columns pass
    plain = vt.Dataset.from_arrays(X.to_numpy(), y.to_numpy(), "regression")
    assert plain.feature_names[:2] == ("x0", "x1")
    from vmaptune.trained import _named_features
    assert _named_features(plain) is None
    with pytest.raises(ValueError, match=r"test's X has columns \['s6', .*give every split the same columns"):
        vt.Dataset.from_arrays(X[:300], y[:300], "regression", test=(X[300:][list(reversed(X.columns))], y[300:]))


def test_a_model_of_one_hot_columns_encodes_new_rows_of_the_csvs_columns_itself(tmp_path):
    """A model trained on Dataset.from_csv(one_hot=True) takes new rows as the CSV has them (its
    text column), as a DataFrame or one row as a Series, and encodes them as its training rows were,
    every value's column included where the rows lack it; it refuses a value or an empty cell the
    training rows did not hold, and CSV columns reordered. Saved and loaded, it still does. Before,
    each such call was refused with advice to encode the rows yourself."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["paris", "lyon", "nice"], 60), "size": rng.normal(100, 30, 60)})
    frame["price"] = 3 * frame["size"] + np.where(frame.city == "paris", 200, 0)
    frame.to_csv(tmp_path / "houses.csv", index=False)
    data = vt.Dataset.from_csv(tmp_path / "houses.csv", target="price", task="regression", one_hot=True)
    model = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.01)), data,
                    vt.RandomSearch(population=2), epochs=1, batch_size=16, refit=1, progress=False).best_model()
    assert model.categories == {"city": ("lyon", "nice", "paris")} and model.source_columns == ("city", "size")
    assert model.feature_names == ("size", "city_lyon", "city_nice", "city_paris")
    new = pd.DataFrame({"city": ["paris", "nice"], "size": [80.0, 120.0]})
    by_hand = model.predict(np.array([[80, 0, 0, 1], [120, 0, 1, 0.]]))
    np.testing.assert_array_equal(model.predict(new), by_hand)
    np.testing.assert_array_equal(model.predict(new.iloc[1]), by_hand[1:])  # (one row, df.iloc[1])
    model.save(tmp_path / "model")
    np.testing.assert_array_equal(vt.TrainedModel.load(tmp_path / "model").predict(new), by_hand)
    for X, told in ((new.assign(city=["paris", "rome"]), r"X's column 'city' holds \['rome'\] \(rows \[1\]\), "
                     r"value\(s\) the training rows did not hold: the model has an input for each of \['lyon', "
                     r"'nice', 'paris'\] only"),
                    (new.assign(city=["paris", None]), r"X's column 'city' has 1 empty cell\(s\) \(rows \[1\]\)"),
                    (new[["size", "city"]], r"X's columns \['size', 'city'\] are not the 2 columns of the CSV the "
                     r"model was trained on, in order: \['city', 'size'\] \(the same names, in another order\)\. "
                     r"Select them as X\[model.source_columns\]\.")):
        with pytest.raises(ValueError, match=told):
            model.predict(X)
    # get_dummies of a few rows lacks some values' columns: told the CSV's own columns are the easy way
    with pytest.raises(ValueError) as told:
        model.predict(pd.get_dummies(new, dtype=float))
    assert "(missing ['city_lyon']" in str(told.value) and "a DataFrame of the CSV's own columns, ['city', " \
        "'size'], is encoded as its training rows were" in str(told.value)
    encoded = pd.get_dummies(new, dtype=float).reindex(columns=model.feature_names, fill_value=0)
    np.testing.assert_array_equal(model.predict(encoded), by_hand)  # (encoded rows are taken as before)
    with pytest.raises(ValueError, match=r"the same names, in another order\)\. Select them as X\[model"):
        model.predict(encoded[list(reversed(model.feature_names))])
    # rows named by the frame's own labels; the CSV's rows as an array: told to give a DataFrame
    with pytest.raises(ValueError, match=r"holds \['rome'\] \(rows \[51\]\)"):
        model.predict(new.assign(city=["paris", "rome"]).set_axis([50, 51]))
    with pytest.raises(ValueError, match=r"this model encodes the text columns of its CSV itself, given as a "
                                         r"DataFrame of its columns \['city', 'size'\]"):
        model.predict(new.to_numpy())
    # text in a column of numbers of a DataFrame of the CSV's columns: that column is named (told to give
    # a DataFrame, "not as an array", before)
    with pytest.raises(ValueError, match=r"X's column 'size' holds text, such as 'big' \(row 1\); the model was "
                                         r"trained on it as numbers: give its values as numbers"):
        model.predict(new.astype({"size": object}).assign(size=[80.0, "big"]))
    # a model saved before models recorded their categories: told how to encode rows by hand
    model.categories = model.source_columns = None
    with pytest.raises(ValueError, match=r"pandas\.get_dummies\(X, dtype=float\)\.reindex\(columns=model\."
                                         r"feature_names, fill_value=0\)"):
        model.predict(new)


def test_a_code_column_that_a_new_csv_reads_as_numbers_is_encoded_as_its_text(tmp_path):
    """Codes such as '1', '2', '5+' are text in the training CSV; a new file without '5+' reads them
    as numbers, and one row of it (df.iloc[0], a Series of floats) as 1.0: each is the code '1'."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"grade": rng.choice(["1", "2", "5+"], 60), "income": rng.normal(50, 10, 60)})
    frame["y"] = (frame.grade == "1").astype(int)
    frame.to_csv(tmp_path / "train.csv", index=False)
    data = vt.Dataset.from_csv(tmp_path / "train.csv", target="y", task="classification", one_hot=True)
    model = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.01)), data,
                    vt.RandomSearch(population=2), epochs=1, batch_size=16, refit=1, progress=False).best_model()
    pd.DataFrame({"grade": ["1", "2", "1"], "income": [48.7, 52.0, 60.1]}).to_csv(tmp_path / "new.csv", index=False)
    new = pd.read_csv(tmp_path / "new.csv")
    assert new.dtypes["grade"] == np.int64
    encoded = pd.get_dummies(new.astype({"grade": str}), dtype=float).reindex(columns=model.feature_names,
                                                                              fill_value=0)
    np.testing.assert_array_equal(model.predict(new), model.predict(encoded))
    np.testing.assert_array_equal(model.predict(new.iloc[0]), model.predict(encoded)[:1])
    # codes that read as decimals ('1.0', '2.0', beside 'x' in training): 1.0 in a new CSV is '1.0'
    frame["grade"] = frame["grade"].map({"1": "1.0", "2": "2.0", "5+": "x"})
    frame.to_csv(tmp_path / "train.csv", index=False)
    data = vt.Dataset.from_csv(tmp_path / "train.csv", target="y", task="classification", one_hot=True)
    model = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.01)), data,
                    vt.RandomSearch(population=2), epochs=1, batch_size=16, refit=1, progress=False).best_model()
    new = pd.DataFrame({"grade": [1.0, 2.0, 1], "income": [48.7, 52.0, 60.1]})
    encoded = pd.get_dummies(new.astype({"grade": float}).astype({"grade": str}), dtype=float).reindex(
        columns=model.feature_names, fill_value=0)
    assert encoded.filter(like="grade_").to_numpy().sum() == 3
    np.testing.assert_array_equal(model.predict(new), model.predict(encoded))


def test_without_refit_there_is_no_model_and_the_error_says_how(digits):
    result = vt.tune(vt.MLP(hidden=1, units=8), SPACE, digits, vt.RandomSearch(population=2), epochs=1,
                     progress=False)
    with pytest.raises(ValueError, match=r"Run vt.tune\(..., refit=1\)"):
        result.best_model()


def test_a_row_without_a_model_is_told_whether_a_refit_to_come_keeps_it(refit_result):
    """Results saved or passed to on_round while a search that will refit runs on (refit_asked), or
    stopped before its refit: a row that refit would keep is told so; a row it would not, to raise
    refit=; a search on asked for refit=0 is not told to resume for a refit."""
    import copy

    _, result = refit_result
    third, fourth = (int(r) for r in result.ranking()[2:4])

    def told(settings, row):
        interim = copy.copy(result)
        interim.settings = {**result.settings, **settings}
        with pytest.raises(ValueError) as said:
            interim.model(row)
        return str(said.value)

    assert "refit=3 runs once its rounds have trained" in told({"refit_asked": 3}, third)
    assert "Raise refit= to keep more than 3" in told({"refit_asked": 3}, fourth)
    assert "interrupted before its refit=3 ran; resume it" in told({"refit_asked": 3, "interrupted": True}, third)
    assert "resume it" not in told({"refit_asked": 0, "interrupted": True}, third)


def test_results_passed_to_on_round_say_the_refit_comes_after_the_rounds(digits):
    said = []

    def on_round(results):
        with pytest.raises(ValueError) as error:
            results.best_model()
        said.append(str(error.value))

    result = vt.tune(vt.MLP(hidden=1, units=8), SPACE, digits, vt.RandomSearch(population=2, rounds=2), epochs=1,
                     refit=1, on_round=on_round, progress=False)
    assert len(said) == 2 and all("refit=1 runs once its rounds have trained" in text for text in said)
    assert "refit_asked" not in result.settings and result.best_model() is not None


def test_the_raw_split_scores_as_the_refit_and_the_scaled_one_is_refused(refit_result, digits_split):
    """data.X_test is held standardised; a model fed it scaled it again and scored far below its
    test_score without a word. It is refused, and data.raw gives the split as new data comes."""
    data, result = refit_result
    _, X_test, _, y_test = digits_split
    model = result.best_model()
    X_raw, y_raw = data.raw("test")
    np.testing.assert_allclose(X_raw, X_test, atol=1e-4)  # (float32 storage)
    np.testing.assert_array_equal(y_raw, y_test)
    assert model.score(X_raw, y_raw) == pytest.approx(result.test_score, abs=1e-6)
    assert model.evaluate(X_raw, y_raw) == pytest.approx(result.test_score, abs=1e-6)
    # a column of labels (scikit-learn's column_or_1d takes it) scores as the labels: it was broadcast
    # to (n, n) and scored about 0.1
    assert model.evaluate(X_raw, y_raw[:, None]) == pytest.approx(result.test_score, abs=1e-6)
    with pytest.raises(ValueError, match=r"y has shape \(360, 10\); the model scores class labels, one per row "
                                         r"\(one-hot rows: y.argmax\(axis=1\)\): shape \(360,\)"):
        model.evaluate(X_raw, np.eye(10)[y_raw])
    with pytest.raises(ValueError, match=r"X is a vt.Dataset's X_test, which it holds standardised.*"
                                         r"model.score\(\*data.raw\('test'\)\)"):
        model.score(data.X_test, data.y_test)
    with pytest.raises(ValueError, match=r"split='valid': use one of \['train', 'val', 'test'\]"):
        data.raw("valid")
    np.testing.assert_array_equal(data.raw("validation")[0], data.raw("val")[0])  # (the prose's name for it)
    # an AUC of rows of one class is undefined: it was NaN, without a word (scikit-learn refuses it too)
    ones = y_raw == y_raw[0]
    with pytest.raises(ValueError, match=rf"metric='roc_auc_ovr' is undefined on rows of one class \(y holds only "
                                         rf"\[{y_raw[0]}\]\): give rows of more than one class"):
        model.evaluate(X_raw[ones], y_raw[ones], metric="roc_auc_ovr")
    with pytest.raises(ValueError, match=r"metric 'roc_auc' scores two classes, but the model has 10 outputs"):
        model.evaluate(X_raw[ones], y_raw[ones], metric="roc_auc")  # (first the error that holds for any rows)
    assert 0.5 < model.evaluate(X_raw, y_raw, metric="roc_auc_ovr") <= 1.0


def test_rows_with_nan_are_refused_and_no_rows_give_no_outputs(refit_result, digits_split):
    _, result = refit_result
    _, X_test, _, y_test = digits_split
    model = result.best_model()
    X = X_test[:8].astype(float)
    X[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"X has 1 row\(s\) with NaN or infinite values \(rows \[5\]\).*Impute"):
        model.predict(X)
    # finite, but past float32 once scaled: inf inside the network, NaN out (predicted the first class)
    X[5, 3] = 1e40
    with pytest.raises(ValueError, match=r"X has 1 row\(s\) with values past float32's range \(about 3.4e38\) once "
                                         r"scaled \(rows \[5\]\).*Check their units"):
        model.predict(X)
    assert model.predict(X_test[:0]).shape == (0,)
    assert model.predict_proba(X_test[:0]).shape == (0, 10)
    with pytest.raises(ValueError, match=r"evaluate\(X, y\) got 0 rows; a metric needs at least one row"):
        model.evaluate(X_test[:0], np.zeros(0, int))
    # score checks as evaluate does (scikit-learn's raw errors before), and one example scores with its label
    with pytest.raises(ValueError, match=r"score\(X, y\) got 0 rows"):
        model.score(X_test[:0], np.zeros(0, int))
    with pytest.raises(ValueError, match=r"y has shape \(8, 10\); the model scores class labels.*y.argmax\(axis=1\)"):
        model.score(X_test[:8], np.eye(10)[y_test[:8]])
    with pytest.raises(ValueError, match=r"y has 3 rows for X's 8"):
        model.score(X_test[:8], y_test[:3])
    assert model.evaluate(X_test[0], y_test[0]) == model.evaluate(X_test[:1], y_test[:1])
    # a NaN target is a missing label: evaluate answered nan, score scikit-learn's bare "Input contains NaN"
    for call in (model.evaluate, model.score):
        with pytest.raises(ValueError, match=rf"{call.__name__}\(X, y\): y has 1 row\(s\) of NaN or infinite targets, "
                                             r"the first at row 2; drop those rows first"):
            call(X_test[:4], np.r_[y_test[:2], np.nan, y_test[3]])
    assert model.score(X_test[0], y_test[0]) == model.score(X_test[:1], y_test[:1])
    # rows missing an axis read as one example of the wrong shape: both readings are named
    with pytest.raises(ValueError, match=r"X has shape \(10,\), but the model takes rows of shape \(64,\): give X "
                                         r"as \(n, 64\), or one example as \(64,\)"):
        model.predict(X_test[0, :10])


def test_labels_of_another_kind_than_the_classes_are_named():
    """A model trained on names, given label-encoded y (or the reverse), gets the fix, not numpy's
    comparison error."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    data = vt.Dataset.from_arrays(X, names, "classification")
    result = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.1)), data,
                     vt.RandomSearch(population=1), epochs=1, batch_size=16, refit=1, progress=False)
    model = result.best_model()
    assert 0 <= model.evaluate(X, names) <= 1
    with pytest.raises(ValueError, match=r"y holds labels such as \[0, 0, 0\], but the model's classes are "
                                         r"\['setosa', 'versicolor', 'virginica'\]"):
        model.evaluate(X, y)



def test_labels_the_model_was_not_trained_on_are_refused_by_score_as_by_evaluate():
    """score given class ids 0..2 of a model of labels [3, 7, 9] returned 0.0 without a word, where
    evaluate refused them; labels that only partly overlap are scored as wrong answers, with a warning."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    labels = np.array([3, 7, 9])[y]
    data = vt.Dataset.from_arrays(X, labels, "classification")
    model = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.Fixed(0.1)), data,
                    vt.RandomSearch(population=1), epochs=1, batch_size=16, refit=1, progress=False).best_model()
    for call in (model.score, model.evaluate):
        with pytest.raises(ValueError, match=rf"{call.__name__}\(X, y\): y holds labels the model was not trained on: "
                                             r"\[0, 1, 2\]; its classes are \[3, 7, 9\] \(class ids 0..k-1, as a "
                                             r"LabelEncoder gives them\? their labels are model.classes\[y\]\)"):
            call(X, y)
    partly = np.where(labels == 9, 8, labels)
    with pytest.warns(UserWarning, match=r"score\(X, y\): y holds labels the model was not trained on, \[8\] \(50 "
                                         r"of 150 rows\), which it never predicts: they are scored as wrong answers"):
        assert model.score(X, partly) == pytest.approx(np.mean(model.predict(X) == partly))
    with pytest.raises(ValueError, match=r"evaluate\(X, y\): y holds labels the model was not trained on: \[8\]"):
        model.evaluate(X, partly)


class Tokens(nn.Module):
    """Token ids (n, 6) of a 10-word vocabulary -> 2 logits."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(2)(nn.Embed(10, 4)(x).max(axis=1))


class HalfTokens(nn.Module):
    """Tokens with bfloat16 weights, which np.savez keeps as raw bytes."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(2, param_dtype=jnp.bfloat16)(nn.Embed(10, 4)(x).max(axis=1))


def test_ids_outside_the_vocabulary_and_fractional_ids_are_refused_not_read_as_a_class():
    """An id past nn.Embed's vocabulary gives NaN logits, which argmax read as the first class;
    3.7 given to a model of integer inputs was truncated to 3, and 2**32 + 3 wrapped to 3."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    model = vt.tune(vt.Linen(Tokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                    epochs=1, batch_size=32, refit=1, progress=False).best_model()
    assert np.isnan(model.outputs(np.full((2, 6), 50))).all()  # the raw outputs, as they are
    for predict in (model.predict, model.predict_proba):
        with pytest.raises(ValueError, match=r"the network's outputs for 2 row\(s\) of X are NaN or infinite \(rows "
                                             r"\[0, 1\]\).*token ids past an embedding's vocabulary"):
            predict(np.full((2, 6), 50))
    np.testing.assert_array_equal(model.predict(tokens[:5].astype(float)), model.predict(tokens[:5]))
    with pytest.raises(ValueError, match=r"X holds values that are not whole numbers \(rows \[1\]\), but the model was "
                                         r"trained on int\d+ inputs"):
        model.predict(np.r_[tokens[:1], [[3.7, 1, 0, 8, 2, 0]]])
    # (one id past the vocabulary beside valid ones: the max over tokens passed its NaN over, without a word)
    unseen = np.r_[tokens[:1], [[1, 2, 3, 4, 5, 60], [1, 2, 3, 4, 5, -1]]]
    with pytest.warns(UserWarning, match=r"X has 2 row\(s\) holding integer inputs outside 0\.\.9, the range of those "
                                         r"the model trained on \(rows \[1, 2\]: values \[-1, 60\]\)"):
        model.predict(unseen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(tokens)
    past = np.r_[tokens[:2], [[2**32 + 3, 1, 0, 8, 2, 0]], tokens[:1] - 2**40].astype(np.int64)
    for given in (past, past.astype(float)):
        with pytest.raises(ValueError, match=r"X has 2 row\(s\) with values outside int32's range \[-2147483648, "
                                             r"2147483647\] \(rows \[2, 3\]\), but the model takes int32 inputs"):
            model.outputs(given)


def test_a_saved_model_whose_weights_cannot_be_read_is_said_so_not_missing(refit_result, tmp_path):
    """A weights.npz lacking an entry raised KeyError, which the run's models read as "row has no
    trained model" (and advised a refit): its path and the damage are said."""
    _, result = refit_result
    result.save(tmp_path / "run")
    row = int(result.best_index)
    np.savez(tmp_path / "run" / "models" / f"row_{row}" / "weights.npz", leaf_1=np.zeros(3))
    loaded = vt.load_results(tmp_path / "run")
    assert row in loaded.models
    with pytest.raises(ValueError, match=rf"row_{row} cannot be read \(KeyError: .*\): its files are damaged"):
        loaded.best_model()
    result.save(tmp_path / "run", overwrite=True)
    weights = tmp_path / "run" / "models" / f"row_{row}" / "weights.npz"
    with open(weights, "r+b") as f:  # (cut short: no longer a zip)
        f.truncate(weights.stat().st_size // 2)
    with pytest.raises(ValueError, match=rf"row_{row} cannot be read \((BadZipFile|EOFError): .*resume=True, refit="):
        vt.load_results(tmp_path / "run").best_model()


def test_a_saved_model_whose_class_changed_since_is_refused_by_load_naming_the_weight(tmp_path, monkeypatch):
    """Only the number of weight arrays was compared: a class whose embedding grew since loaded,
    and predict then failed, advising to reshape X."""
    import sys

    tokens = np.random.default_rng(0).integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    model = vt.tune(vt.Linen(Tokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                    epochs=1, batch_size=32, refit=1, progress=False).best_model()
    model.save(tmp_path / "model")

    class Wider(nn.Module):  # (Tokens as edited later: 8 features per token, not 4)
        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(2)(nn.Embed(10, 8)(x).max(axis=1))

    monkeypatch.setattr(sys.modules[Tokens.__module__], "Tokens", Wider)
    with pytest.raises(ValueError, match=r"weights.npz's params\['Dense_0'\]\['kernel'\] is \(4, 2\) float32, but "
                                         r"vt.Linen\(Wider\) as importable now builds \(8, 2\) float32: the class "
                                         r"changed since the model was saved"):
        vt.TrainedModel.load(tmp_path / "model")
    # bfloat16 weights, saved as raw bytes, read by their saved name: a class edited to float16 (of the
    # same size) is refused, not read as float16 bits
    half = vt.tune(vt.Linen(HalfTokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                   epochs=1, batch_size=32, refit=1, progress=False,
                   optimizer=lambda hp: optax.sgd(hp["learning_rate"])).best_model()  # (state in bfloat16)
    half.save(tmp_path / "half")
    np.testing.assert_array_equal(vt.TrainedModel.load(tmp_path / "half").outputs(tokens[:5]), half.outputs(tokens[:5]))

    class Float16(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(2, param_dtype=jnp.float16)(nn.Embed(10, 4)(x).max(axis=1))

    monkeypatch.setattr(sys.modules[Tokens.__module__], "HalfTokens", Float16)
    with pytest.raises(ValueError, match=r"params\['Dense_0'\]\['bias'\] is \(2,\) bfloat16, but vt.Linen\(Float16\) "
                                         r"as importable now builds \(2,\) float16"):
        vt.TrainedModel.load(tmp_path / "half")



class Deeper(nn.Module):  # (Tokens as edited later: a layer added)
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(2)(nn.relu(nn.Dense(4, name="extra")(nn.Embed(10, 4)(x).max(axis=1))))


def test_a_pickled_model_whose_class_changed_since_is_refused_as_load_refuses_it(tmp_path, monkeypatch):
    """pickle / joblib (a Pipeline holding a model) skipped load's check: a class that gained a layer
    predicted with the new layer's initial weights, without a word, and a wider one failed at predict,
    advising to reshape X."""
    import pickle
    import sys

    tokens = np.random.default_rng(0).integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    model = vt.tune(vt.Linen(Tokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                    epochs=1, batch_size=32, refit=1, progress=False).best_model()
    pickled = pickle.dumps(model)
    np.testing.assert_array_equal(pickle.loads(pickled).outputs(tokens[:5]), model.outputs(tokens[:5]))

    class Wider(nn.Module):  # (a default width edited)
        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(2)(nn.Embed(10, 8)(x).max(axis=1))

    monkeypatch.setattr(sys.modules[Tokens.__module__], "Tokens", Wider)
    with pytest.raises(ValueError, match=r"the pickled \(or copied\) model's params\['Dense_0'\]\['kernel'\] is "
                                         r"\(4, 2\) float32, but vt.Linen\(Wider\) as importable now builds \(8, 2\) "
                                         r"float32: the class changed since the model was saved"):
        pickle.loads(pickled)
    monkeypatch.setattr(sys.modules[Tokens.__module__], "Tokens", Deeper)
    with pytest.raises(ValueError, match=r"vt.Linen\(Deeper\) as importable now builds params\['extra'\]\['bias'\], "
                                         r"params\['extra'\]\['kernel'\], which the pickled \(or copied\) model does "
                                         r"not hold: the class changed since the model was saved"):
        pickle.loads(pickled)



class Layered(nn.Module):  # (two hidden layers of one shape: a rename keeps every weight's shape)
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Embed(10, 4)(x).max(axis=1)
        return nn.Dense(2, name="head")(nn.relu(nn.Dense(4, name="b")(nn.relu(nn.Dense(4, name="a")(h)))))


class Renamed(nn.Module):  # (Layered with its layer a renamed c: sorted by name, c comes after b)
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Embed(10, 4)(x).max(axis=1)
        return nn.Dense(2, name="head")(nn.relu(nn.Dense(4, name="b")(nn.relu(nn.Dense(4, name="c")(h)))))


def test_a_class_whose_layers_were_renamed_or_added_since_is_refused_by_load_naming_the_weights(tmp_path, monkeypatch):
    """load matched the saved weights to the class by position: a layer renamed took another's
    weights without a word (its shape the same), and one added was told as files that do not belong
    together. A model saved before the names were still loads, and is told apart by count."""
    import pickle
    import sys

    tokens = np.random.default_rng(0).integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    layered = vt.tune(vt.Linen(Layered), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                      epochs=1, batch_size=32, refit=1, progress=False).best_model()
    layered.save(tmp_path / "layered")
    monkeypatch.setattr(sys.modules[Layered.__module__], "Layered", Renamed)
    with pytest.raises(ValueError, match=r"vt.Linen\(Renamed\) as importable now builds params\['c'\]\['bias'\], "
                                         r"params\['c'\]\['kernel'\], which weights.npz does not hold; it does not "
                                         r"build params\['a'\]\['bias'\], params\['a'\]\['kernel'\], which "
                                         r"weights.npz holds: the class changed since the model was saved \(a layer "
                                         r"added, removed or renamed\)"):
        vt.TrainedModel.load(tmp_path / "layered")
    model = vt.tune(vt.Linen(Tokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                    epochs=1, batch_size=32, refit=1, progress=False).best_model()
    model.save(tmp_path / "model")
    with open(tmp_path / "model" / "model.pkl", "rb") as f:  # (as a model saved before the names were)
        described = pickle.load(f)
    del described["info"]["weight_names"]
    with open(tmp_path / "model" / "model.pkl", "wb") as f:
        pickle.dump(described, f)
    np.testing.assert_array_equal(vt.TrainedModel.load(tmp_path / "model").outputs(tokens[:5]),
                                  model.outputs(tokens[:5]))
    model.save(tmp_path / "named")
    monkeypatch.setattr(sys.modules[Tokens.__module__], "Tokens", Deeper)
    with pytest.raises(ValueError, match=r"vt.Linen\(Deeper\) as importable now builds params\['extra'\]\['bias'\], "
                                         r"params\['extra'\]\['kernel'\], which weights.npz does not hold: the class "
                                         r"changed since the model was saved"):
        vt.TrainedModel.load(tmp_path / "named")
    with pytest.raises(ValueError, match=r"vt.Linen\(Deeper\) as importable now builds 5 weight arrays, but "
                                         r"weights.npz holds 3: the class changed since the model was saved \(a layer "
                                         r"added or removed\), or the files do not belong together"):
        vt.TrainedModel.load(tmp_path / "model")



class Tanh(nn.Module):  # (Layered with tanh for relu: every weight's name and shape the same)
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Embed(10, 4)(x).max(axis=1)
        return nn.Dense(2, name="head")(nn.tanh(nn.Dense(4, name="b")(nn.tanh(nn.Dense(4, name="a")(h)))))


def test_a_class_edited_since_that_keeps_its_weights_is_warned_about_at_load_and_unpickling(tmp_path, monkeypatch):
    """An edit that keeps every weight's name and shape (an activation) loaded without a word: the
    class's source, fingerprinted as a resume fingerprints it, is compared."""
    import pickle
    import sys

    tokens = np.random.default_rng(0).integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    model = vt.tune(vt.Linen(Layered), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                    epochs=1, batch_size=32, refit=1, progress=False).best_model()
    model.save(tmp_path / "model")
    pickled = pickle.dumps(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.TrainedModel.load(tmp_path / "model"), pickle.loads(pickled)
    monkeypatch.setattr(sys.modules[Layered.__module__], "Layered", Tanh)
    for load, where in ((lambda: vt.TrainedModel.load(tmp_path / "model"), "model"),
                        (lambda: pickle.loads(pickled), r"the pickled \(or copied\) model")):
        with pytest.warns(UserWarning, match=rf"{where}: the source of vt.Linen\(Tanh\)'s class changed since the "
                                             rf"model was trained \(sha256 [0-9a-f]{{16}}, now [0-9a-f]{{16}}\)\. Its "
                                             rf"weights fit the class as it is now, so it loads"):
            load()



def test_a_loaded_or_unpickled_models_weights_are_read_only_as_a_fresh_ones_are(tmp_path):
    """flax_module()'s variables of a loaded linen model were the model's own writeable arrays: an
    edit in place of them (pruning) changed the model's predictions without a word."""
    import pickle

    tokens = np.random.default_rng(0).integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    model = vt.tune(vt.Linen(Tokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                    epochs=1, batch_size=32, refit=1, progress=False).best_model()
    before = model.outputs(tokens[:5])
    for again in (model, vt.TrainedModel.load(model.save(tmp_path / "model")), pickle.loads(pickle.dumps(model))):
        _, variables = again.flax_module()
        with pytest.raises(ValueError, match="read-only"):
            variables["params"]["Dense_0"]["kernel"] *= 0.0
        np.testing.assert_array_equal(again.outputs(tokens[:5]), before)


def test_a_copy_of_a_model_leaves_the_originals_weights_as_they_were():
    """copy.copy unpickles through __setstate__ on the original's arrays: marking them read-only
    there made a user's own writeable copies of the weights read-only in the original too."""
    import copy

    X, y = vt.load_dataset("iris").raw("train")
    model = vt.MLPClassifier(epochs=1, random_state=0).fit(X, y).model_
    model.params = jax.tree.map(np.array, model.params)  # (the user's own writeable copies, to prune in place)
    backup = copy.copy(model)
    jax.tree.leaves(model.params)[0][...] *= 0.5  # (refused before: "assignment destination is read-only")
    with pytest.raises(ValueError, match="read-only"):
        jax.tree.leaves(backup.params)[0][...] *= 0.5


def test_weights_replaced_by_float64_arithmetic_are_cast_back_when_unpickled_and_loaded(tmp_path):
    """float32 * np.float64(0.9) is float64 in numpy 2: a model whose weights were scaled so
    pickled, but its unpickling was refused as 'the class changed since the model was saved'."""
    import pickle

    X, y = vt.load_dataset("iris").raw("train")
    model = vt.MLPClassifier(epochs=1, random_state=0).fit(X, y).model_
    model.params = jax.tree.map(lambda p: p * np.float64(0.9), model.params)
    expected = jax.tree.map(lambda p: p.astype(np.float32), model.params)
    for how in (lambda: pickle.loads(pickle.dumps(model)), lambda: vt.TrainedModel.load(model.save(tmp_path / "m"))):
        with pytest.warns(UserWarning, match=r"of another float width than vt.MLP builds .* cast to the network's "
                                             r"dtype"):
            back = how()
        jax.tree.map(np.testing.assert_array_equal, back.params, expected)
        assert {leaf.dtype for leaf in jax.tree.leaves(back.params)} == {np.dtype(np.float32)}
    # bfloat16 weights scaled by a float32 number became float32: cast back to bfloat16 (refused once, as a class
    # changed, when only float64 was cast)
    tokens = np.random.default_rng(0).integers(0, 10, size=(120, 6))
    data = vt.Dataset.from_arrays(tokens, (tokens.max(axis=1) >= 9).astype(int), "classification")
    half = vt.tune(vt.Linen(HalfTokens), vt.Space(learning_rate=vt.Fixed(0.05)), data, vt.RandomSearch(population=1),
                   epochs=1, batch_size=32, refit=1, progress=False,
                   optimizer=lambda hp: optax.sgd(hp["learning_rate"])).best_model()
    half.params = jax.tree.map(lambda p: np.asarray(p, np.float32) * np.float32(0.9), half.params)
    with pytest.warns(UserWarning, match=r"cast to the network's dtype"):
        back = pickle.loads(pickle.dumps(half))
    assert back.params["Dense_0"]["kernel"].dtype == jnp.bfloat16


def test_a_diverged_row_is_said_to_have_diverged_not_to_need_a_larger_refit():
    space = vt.Space(learning_rate=vt.Choice([0.05, 1e30]), optimizer=vt.Fixed("sgd"))
    result = vt.tune(vt.MLP(hidden=1, units=4), space, vt.load_dataset("iris"), vt.GridSearch(), epochs=1,
                     batch_size=16, progress=False, refit=2)
    diverged = int(np.flatnonzero(result.members["status"] == "diverged")[0])
    with pytest.raises(ValueError, match=r"has no trained model: .* This one diverged in the search: a refit "
                                         r"retrains only settings that did not"):
        result.model(diverged)


def test_a_refit_that_diverged_is_warned_about_and_its_model_refuses_to_predict(monkeypatch, tmp_path):
    """Its search run was ok, its refit (on train + validation, in another minibatch order)
    diverged: vt.tune said nothing, and best_model() predicted with the weights of the step before
    the loss turned non-finite (finite: 1e28 for targets near 100), unmarked."""
    import vmaptune.search as search_module

    real = search_module.refit_and_test

    def diverging(programs, hp, *args, **kwargs):  # (as if the refit had diverged where the search did not)
        return real(programs, {**hp, "learning_rate": hp["learning_rate"] * 1e30}, *args, **kwargs)

    monkeypatch.setattr(search_module, "refit_and_test", diverging)
    data = vt.load_dataset("iris")
    X, y = data.raw("test")
    space = vt.Space(learning_rate=vt.Fixed(0.05), optimizer=vt.Fixed("sgd"))
    with pytest.warns(UserWarning, match=r"the refit of 1 row\(s\) diverged \(row 0 at epoch 1\), though their "
                                         r"search runs did not .* their test_score is NaN, and their models refuse to "
                                         r"predict. Search again with a lower learning rate, or take another refit"):
        result = vt.tune(vt.MLP(hidden=1, units=4), space, data, vt.GridSearch(), epochs=2, batch_size=16, refit=1,
                         progress=False)
    model = result.best_model()
    assert result.members["status"].iloc[0] == "ok" and np.isnan(result.test_score)
    assert model.info["diverged_at_epoch"] == 1 and "diverged at epoch 1" in repr(model)
    result.save(tmp_path / "run")
    model.save(tmp_path / "model")
    for kept in (model, vt.load_results(tmp_path / "run").best_model(), vt.TrainedModel.load(tmp_path / "model")):
        for call in (kept.predict, kept.predict_proba, kept.outputs, kept.decision_function,
                     lambda X: kept.score(X, y), lambda X: kept.evaluate(X, y)):
            with pytest.raises(ValueError, match=r"this model's training diverged at epoch 1 of \d+ \(a non-finite "
                                                 r"loss\).* the refit of row 0, whose search run did not diverge.* "
                                                 r"results.model\(row\). Its weights stay readable"):
                call(X)
        module, variables = kept.flax_module()  # (its weights, for inspection)
        assert set(variables) == {"params"}


def test_a_models_inputs_and_directory_mistakes_are_named(refit_result, tmp_path):
    """Dates were read as days since 1970 and complex values lost their imaginary part, in silence;
    a wrong number of columns named no fix; model.save into a run directory put model.pkl beside
    its run.json."""
    _, result = refit_result
    model = result.best_model()
    with pytest.raises(ValueError, match=r"X has examples of shape \(3,\), but the model was trained on \(64,\): give X "
                                         r"as \(n, 64\)"):
        model.predict(np.zeros((2, 3)))
    stamps = pd.DataFrame({f"x{i}": np.ones(2) for i in range(63)} | {"day": pd.to_datetime(["2020-01-01"] * 2)})
    complex_objects = np.array([[1.0] * 63 + [1j]] * 2, dtype=object)
    for X, what in ((np.full((2, 64), np.datetime64("2020-01-01")), "dates"), (np.ones((2, 64)) * 1j, "complex"),
                    (stamps, "dates or time spans"), (complex_objects, "complex numbers")):
        with pytest.raises(ValueError, match=rf"X holds {what}.*the model takes real numbers"):
            model.predict(X)
    result.save(tmp_path / "run")
    with pytest.raises(ValueError, match=r"holds a run \(run.json\); save the model in a directory of its own"):
        model.save(tmp_path / "run")


def test_a_pbt_refit_model_carries_the_schedule_it_trained_with():
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1))
    result = vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.PBT(population=4, interval=1), epochs=4, refit=4,
                     progress=False, seed=0)
    import json

    carried = 0
    for row, model in result.models.items():  # (each cut where its refit stopped: its best epoch)
        steps = [s for s in json.loads(result.members["hp_schedule"].iloc[row]) if s["epoch"] < model.info["epochs"]]
        if len(steps) > 1:
            carried += 1
            assert json.loads(model.info["hp_schedule"]) == steps
        else:
            assert "hp_schedule" not in model.info
    assert carried  # (some refit trained through a change)


def test_scikit_learn_tools_read_a_binary_model_as_one_of_their_classifiers():
    """Two classes: decision_function is one column (n,), the log-odds, as scikit-learn's
    classifiers give it (roc_auc and CalibratedClassifierCV read it before predict_proba: an (n, 2)
    there crashed them); score, permutation_importance and a frozen pipeline take sample_weight."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_breast_cancer
    from sklearn.frozen import FrozenEstimator
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, get_scorer, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["benign", "malignant"])[y]
    data = vt.Dataset.from_arrays(X, labels, "classification")
    model = vt.tune(vt.MLP(hidden=1, units=8), SPACE, data, vt.RandomSearch(population=2), epochs=2, batch_size=64,
                    refit=1, progress=False).best_model()
    X_test, y_test = data.raw("test")
    scores, probabilities = model.decision_function(X_test), model.predict_proba(X_test)
    assert scores.shape == (len(X_test),)
    np.testing.assert_allclose(scores, np.log(probabilities[:, 1] / probabilities[:, 0]), rtol=1e-4, atol=1e-4)
    assert model.outputs(X_test).shape == (len(X_test), 2)
    assert get_scorer("roc_auc")(model, X_test, y_test) == pytest.approx(
        roc_auc_score(y_test == "malignant", probabilities[:, 1]), abs=1e-9)
    calibrated = CalibratedClassifierCV(FrozenEstimator(model)).fit(X_test, y_test)
    assert calibrated.predict_proba(X_test).shape == (len(X_test), 2)

    weights = np.where(y_test == "malignant", 5.0, 1.0)
    predicted = model.predict(X_test)
    assert model.score(X_test, y_test, sample_weight=weights) == pytest.approx(
        accuracy_score(y_test, predicted, sample_weight=weights))
    assert model.score(X_test, y_test, sample_weight=weights) != pytest.approx(model.score(X_test, y_test))
    frozen = make_pipeline(FunctionTransformer(), FrozenEstimator(model))
    assert frozen.score(X_test, y_test, sample_weight=weights) == model.score(X_test, y_test, sample_weight=weights)
    importance = permutation_importance(model, X_test, y_test, sample_weight=weights, n_repeats=2, random_state=0)
    assert importance.importances.shape == (X.shape[1], 2)


def test_a_multiclass_models_decision_function_is_its_outputs(refit_result, digits_split):
    data, result = refit_result
    X_test = digits_split[1]
    model = result.best_model()
    np.testing.assert_array_equal(model.decision_function(X_test), model.outputs(X_test))
    assert model.outputs(X_test).shape == (len(X_test), 10)
