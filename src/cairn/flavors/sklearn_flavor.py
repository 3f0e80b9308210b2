"""The ``sklearn`` flavor: scikit-learn estimators and pipelines, pickled (protocol 5).

Columns are matched to what the estimator was fitted on: a DataFrame is reordered by
``feature_names_in_`` (or turned into an array when it was fitted on one), and an
array gets those names back, so scikit-learn never warns about feature names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.domain.errors import Invalid
from cairn.flavors.base import (
    Saved,
    distribution_of,
    dotted_name,
    is_dataframe,
    loaded_module,
    require,
    versions,
)
from cairn.flavors.pickle_flavor import PICKLE_FILE, read_pickle, write_pickle


class SklearnFlavor:
    name = "sklearn"

    def matches(self, obj: Any) -> bool:
        base = loaded_module("sklearn.base")
        if isinstance(obj, type):
            return False
        if base is not None and isinstance(obj, base.BaseEstimator):
            return True
        return type(obj).__module__.split(".")[0] == "sklearn"

    def algorithm(self, obj: Any) -> str:
        """The estimator's name; for a pipeline, that of the step it ends with."""
        pipeline = loaded_module("sklearn.pipeline")
        if pipeline is not None and isinstance(obj, pipeline.Pipeline) and obj.steps:
            last = obj.steps[-1][1]
            if last not in (None, "passthrough"):
                return self.algorithm(last)
        return dotted_name(type(obj))

    def save(self, obj: Any, folder: Path, input_example: Any | None) -> Saved:
        if not callable(getattr(obj, "predict", None)):
            raise Invalid(
                f"the {type(obj).__name__} has no predict method: save a fitted predictor",
                field="model",
            )
        options = write_pickle(obj, folder / PICKLE_FILE, cloud=False)
        requirements = {**versions("scikit-learn", "numpy"), **distribution_of(obj)}
        return Saved([PICKLE_FILE], requirements, options)

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        require("sklearn", "scikit-learn", self.name)
        return read_pickle(folder / PICKLE_FILE, options, self.name)

    def predict(self, model: Any, data: Any) -> Any:
        return model.predict(_features(model, data))

    def has_proba(self, model: Any) -> bool:
        return callable(getattr(model, "predict_proba", None))

    def proba(self, model: Any, data: Any) -> Any:
        return model.predict_proba(_features(model, data))


def _features(model: Any, data: Any) -> Any:
    """Data shaped the way the estimator was fitted: named columns or a plain array."""
    try:
        names = [str(name) for name in model.feature_names_in_]
    except AttributeError:
        return data.to_numpy() if is_dataframe(data) else data
    if is_dataframe(data):
        by_name = {str(col): col for col in data.columns}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise Invalid(
                f"data lacks the column(s) the model was fitted on: {', '.join(missing)}",
                field="data",
                details={"missing": missing},
            )
        return data[[by_name[name] for name in names]]
    if getattr(data, "ndim", 0) == 2 and data.shape[1] == len(names):
        try:
            return require("pandas", "pandas", "sklearn").DataFrame(data, columns=names)
        except Invalid:
            return data
    return data
