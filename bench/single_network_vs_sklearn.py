"""One fixed network, scikit-learn's MLPClassifier (raw and standardised pixels) against
vt.MLPClassifier, on bench/vs_sklearn.py's splits: is a gap between the searches the networks'
or the selection's? (issue 14)

    python bench/single_network_vs_sklearn.py
"""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vmaptune as vt

X, y = load_digits(return_X_y=True)
print("split, then per width (64, 128): sklearn raw, sklearn standardised, vmaptune")
for seed in range(3):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    row = []
    for units in (64, 128):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            raw = MLPClassifier((units,), max_iter=100, batch_size=64, random_state=seed).fit(Xtr, ytr)
            scaled = make_pipeline(StandardScaler(), MLPClassifier((units,), max_iter=100, batch_size=64,
                                                                   random_state=seed)).fit(Xtr, ytr)
        ours = vt.MLPClassifier(n_units=units, epochs=100, batch_size=64, optimizer="adam", learning_rate=1e-3,
                                random_state=seed).fit(Xtr, ytr)
        row += [round(m.score(Xte, yte), 3) for m in (raw, scaled, ours)]
    print(seed, row, flush=True)
