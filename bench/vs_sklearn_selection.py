"""Which candidate a 64-candidate PopulationSearchCV should pick: the same search, three selection
rules, the refit best's test accuracy for each (issue 14).

Rules: "best" (the best epoch of the mean fold curve, refit for that many epochs: the rule before
this bench), "final" (the last epoch, refit for all epochs: scikit-learn's semantics, now the
default without early stopping) and "last10" (the mean of the last 10 epochs). Splits as in
bench/vs_sklearn.py (the seed sets the split and the search's seed):

    python bench/vs_sklearn_selection.py 0 10 > bench/out/vs_sklearn_selection.txt
"""

import json
import sys
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from vs_sklearn import vmaptune_search

warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
for seed in range(int(sys.argv[1]), int(sys.argv[2])):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    s = vmaptune_search(Xtr, ytr, 64, 100, seed)
    r = s.search_results_
    m = r.members
    vs = np.asarray(r.curves["val_score"])  # (members, epochs): the mean over folds
    rules = {"best": int(np.nanargmax(m["best_score"].to_numpy())),
             "final": int(np.nanargmax(m["final_score"].to_numpy())),
             "last10": int(np.nanargmax(np.nanmean(vs[:, -10:], 1)))}
    row = {"seed": seed}
    cache = {}
    for rule, i in rules.items():
        params = s.cv_results_["params"][i]
        epochs = int(m["best_epoch"].iloc[i]) if rule == "best" else 100
        if (i, epochs) not in cache:
            cache[(i, epochs)] = clone(s.estimator).set_params(**params, epochs=epochs).fit(Xtr, ytr).score(Xte, yte)
        row[rule] = (i, round(cache[(i, epochs)], 4), {k: (round(v, 5) if isinstance(v, float) else v)
                                                      for k, v in params.items()})
    print(json.dumps(row), flush=True)
