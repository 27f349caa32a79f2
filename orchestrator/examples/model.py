"""The owner's starting model for the worked example: a small scikit-learn MLP fitted on the owner's own few
rows (normalised by its field table) and exported with skl2onnx, the way an owner with an existing model
would hand it over. Deliberately under-trained: a few rows and a few passes, so bought rows have room to help.
"""
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from skl2onnx import to_onnx
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from orchestrator.container.fields import ColumnMapping, FieldTable, normalise_columns


def owner_model_onnx(table: FieldTable, rows: Mapping[str, Sequence[Any]], *, hidden: int = 8,
                     iterations: int = 30, seed: int = 0) -> bytes:
    """ONNX bytes of an MLPClassifier (one hidden layer of `hidden` relu units) fitted on `rows`."""
    normalised = normalise_columns(table, ColumnMapping.identity(table), rows)
    classifier = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=iterations, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(normalised.features, normalised.labels.astype(np.int64))
    return to_onnx(classifier, normalised.features[:1].astype(np.float32)).SerializeToString()
