"""A CSV's columns as features: one-hot encoding of text or code columns (and of new rows the same
way), missing-value words, thousands separators, index columns saved with the rows."""

from __future__ import annotations

import difflib
import numbers
import re
from typing import Any, Mapping, Sequence

import numpy as np

from vmaptune.warn import warn

#: Words a CSV's number column may hold for a missing value (lower case), which pandas reads as text.
MISSING_WORDS = ("unk", "unknown", "missing", "na", "n/a", "n.a.", "nan", "null", "none", "nil", "undefined")


def _flag_column(column: Any) -> bool:
    """A column whose values, missing ones aside, are all True / False (pandas reads a True/False
    column with an empty cell as objects)."""
    cells = column.dropna()
    return len(cells) > 0 and bool(cells.map(lambda v: isinstance(v, (bool, np.bool_))).all())


def _warn_index_columns(features: Any, path: Any) -> None:
    """A column 'Unnamed: 0' of distinct whole numbers is a pandas index that DataFrame.to_csv
    wrote: as a feature it tells each row's place in the frame it came from (on a file sorted by
    label, pure-noise labels scored 0.86 on validation)."""
    for c in features.columns:
        column = features[c]
        if re.fullmatch(r"Unnamed: \d+", str(c)) and np.issubdtype(column.dtype, np.integer) and len(column) > 1 \
                and column.is_unique:
            warn(f"{path}: column {c!r} holds distinct row numbers ({column.iloc[0]}, {column.iloc[1]}, ...): an index that "
                 f"pandas' DataFrame.to_csv wrote, which as a feature tells each row's place in the file. Drop it "
                 f"(pandas.read_csv(path, index_col=0), then vt.Dataset.from_arrays), or write the file with "
                 f"to_csv(index=False).")


def _refuse_thousands(features: Any, text_columns: list, path: Any) -> None:
    """A text column of numbers written with ',' between thousands ('1,234') is a quantity, not
    categories: one-hot, it became a column per price."""
    for c in text_columns:
        cells = features[c].dropna().astype(str).str.strip()
        marker = cells.str.lower().str.fullmatch(r"[^a-z0-9]*") | cells.str.lower().isin(MISSING_WORDS)  # ('?', 'n/a')
        cells = cells[~marker]
        grouped = cells.str.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?")
        if grouped.any() and (grouped | cells.str.fullmatch(r"-?\d+(\.\d+)?")).all():
            raise ValueError(f"{path}: column {c!r} holds numbers written with ',' between thousands (e.g. "
                             f"{cells[grouped].iloc[0]!r}), read as text. Read the file with "
                             f"pandas.read_csv(path, thousands=',') (or decimal=',' where ',' is the decimal "
                             f"point; na_values= for missing-value markers) and give the frame to "
                             f"vt.Dataset.from_arrays.")


def one_hot_rows(frame: Any, categories: Mapping[str, Sequence[str]]) -> Any:
    """Raw rows (a DataFrame) of the text columns Dataset.from_csv(one_hot=True) encoded ->
    the same rows encoded as its training rows were: each text column replaced by a 0/1 column
    per training value (every one, whether the rows hold it or not), after the other columns.
    An empty cell, or a value the training rows did not hold, is refused by column and row."""
    import pandas as pd

    coded = {}
    for column, values in categories.items():
        cells = frame[column]
        labels = (lambda rows: frame.index[rows][:5].tolist())  # (the frame's own row labels: X.drop(index=...))
        empty = np.flatnonzero(cells.isna().to_numpy())
        if len(empty):
            raise ValueError(f"X's column {column!r} has {len(empty)} empty cell(s) (rows {labels(empty)}), but "
                             f"the model was trained on its values {list(values)}; fill them with one of those "
                             f"values or drop those rows first.")
        text = _as_categories(cells, values)
        unknown = ~text.isin(values).to_numpy()
        if unknown.any():  # (as scikit-learn's OneHotEncoder refuses them by default: no column says it)
            seen = list(dict.fromkeys(text[unknown]))
            raise ValueError(f"X's column {column!r} holds {seen[:5]}{'...' if len(seen) > 5 else ''} (rows "
                             f"{labels(np.flatnonzero(unknown))}), value(s) the training rows did not hold: "
                             f"the model has an input for each of {list(values)} only. Map them to one of those "
                             f"values or drop those rows first.")
        coded[column] = pd.Categorical(text, categories=list(values))
    return pd.get_dummies(frame.assign(**coded), columns=list(categories), dtype=float)


def _one_hot_columns(one_hot: Any, features: Any, text: list, targets: list, weight: str | None) -> list:
    """from_csv's one_hot -> the feature columns to encode, in the file's order: True, its text
    columns; False, none; a list of column names, those (numbers too: codes such as zip codes)."""
    if isinstance(one_hot, (bool, np.bool_)):
        return list(text) if one_hot else []
    if isinstance(one_hot, str) or not isinstance(one_hot, (list, tuple)) or \
            not all(isinstance(c, str) for c in one_hot):
        raise TypeError(f"one_hot={one_hot!r}: give True (a 0/1 column per value of every text column), False, or "
                        f"a list of the columns to encode, e.g. one_hot=['colour', 'zip'] (numbers too: codes).")
    names = [str(c) for c in features.columns]
    for column in one_hot:
        if column not in names:
            taken = " (the target)" if column in targets else " (the weight column)" if column == weight else ""
            close = difflib.get_close_matches(column, names, 1)
            hint = f" Did you mean {close[0]!r}?" if close and not taken else ""
            raise ValueError(f"one_hot={list(one_hot)!r} names {column!r}{taken}, which is not a feature column; the "
                             f"feature columns are {names}.{hint}")
    return [c for c in features.columns if str(c) in one_hot]


def _as_categories(cells: Any, values: Sequence[str]) -> Any:
    """A column of new rows as the text of the categories `values`: each cell as str(cell), or, a
    number whose text is none of them, the category of its value (codes such as '1' that a new CSV
    reads as the number 1, or df.iloc[0] as 1.0 in a row of numbers)."""
    import pandas as pd

    text = cells.astype(str)
    by_number = {}
    for value in values:
        try:
            by_number.setdefault(float(value), value)
        except ValueError:  # (a word: no number names it)
            pass
    unmatched = ~text.isin(values).to_numpy()
    if not by_number or not unmatched.any():
        return text
    read = [by_number.get(float(cell), shown) if miss and isinstance(cell, numbers.Real) and
            not isinstance(cell, (bool, np.bool_)) else shown for cell, shown, miss in zip(cells, text, unmatched)]
    return pd.Series(read, index=cells.index)
