"""Datasets: built-in scikit-learn sets, arrays, CSV and NPZ files; checks, splits, scaling.

dataset.py holds the `Dataset` (fixed, standardised train / validation / test splits) and its
constructors, inputs.py what they check of X, y and weights, splits.py how the validation and test
rows are carved, csv_columns.py how a CSV's columns become features.
"""

from vmaptune.data.csv_columns import one_hot_rows
from vmaptune.data.dataset import DataSpec, Dataset, default_feature_names, load_dataset, scaled_split
from vmaptune.data.inputs import (SingleRowClassWarning, check_sample_weight, column_names, mean_std, missing_labels,
                                  plain_labels, refuse_sparse, scale_or_one, single_row_classes, warn_misaligned)
from vmaptune.data.splits import SplitMissesClassWarning

__all__ = ["DataSpec", "Dataset", "SingleRowClassWarning", "SplitMissesClassWarning", "check_sample_weight",
           "column_names", "default_feature_names", "load_dataset", "mean_std", "missing_labels", "one_hot_rows", "plain_labels",
           "refuse_sparse", "scale_or_one", "scaled_split", "single_row_classes", "warn_misaligned"]
