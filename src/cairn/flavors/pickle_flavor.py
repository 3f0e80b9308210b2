"""The ``pickle`` flavor: any picklable object with a ``predict`` method.

cloudpickle is used when installed, so lambdas and classes defined in a notebook or a
function survive the trip; which pickler wrote ``model.pkl`` is kept in the options.
Loading a pickle runs code from the file: load only models you trust.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.domain.errors import Invalid
from cairn.flavors.base import Saved, distribution_of, dotted_name, require, versions

PICKLE_FILE = "model.pkl"
PROTOCOL = 5


def write_pickle(obj: Any, path: Path, *, cloud: bool) -> dict[str, Any]:
    """Pickle ``obj`` to ``path``; returns the options that say how."""
    pickler: Any = pickle
    if cloud:
        try:
            pickler = require("cloudpickle", "cloudpickle", "pickle")
        except Invalid:
            pickler = pickle
    try:
        with path.open("wb") as out:
            pickler.dump(obj, out, protocol=PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        path.unlink(missing_ok=True)
        raise Invalid(
            f"the model ({type(obj).__name__}) cannot be pickled: {str(exc)[:200]}",
            field="model",
        ) from exc
    return {"pickler": pickler.__name__, "protocol": PROTOCOL}


def read_pickle(path: Path, options: Mapping[str, Any], flavor: str) -> Any:
    if options.get("pickler") == "cloudpickle":
        require("cloudpickle", "cloudpickle", flavor)  # its output refers to its functions
    with path.open("rb") as source:
        return pickle.load(source)


class PickleFlavor:
    name = "pickle"

    def matches(self, obj: Any) -> bool:
        return not isinstance(obj, type) and callable(getattr(obj, "predict", None))

    def algorithm(self, obj: Any) -> str:
        return dotted_name(type(obj))

    def save(self, obj: Any, folder: Path, input_example: Any | None) -> Saved:
        options = write_pickle(obj, folder / PICKLE_FILE, cloud=True)
        cloud = ["cloudpickle"] if options["pickler"] == "cloudpickle" else []
        requirements = versions("numpy", *cloud)
        return Saved([PICKLE_FILE], {**requirements, **distribution_of(obj)}, options)

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        return read_pickle(folder / PICKLE_FILE, options, self.name)

    def predict(self, model: Any, data: Any) -> Any:
        return model.predict(data)

    def has_proba(self, model: Any) -> bool:
        return callable(getattr(model, "predict_proba", None))

    def proba(self, model: Any, data: Any) -> Any:
        return model.predict_proba(data)
