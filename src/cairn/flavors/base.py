"""What every flavor provides, the record of a saved model, and the loaded model itself.

A flavor turns one kind of model object into files and back: ``save`` writes the files,
``load`` returns the underlying object, ``predict`` runs it. Libraries are imported
inside functions (``require``), so importing :mod:`cairn.flavors` costs nothing and a
missing library is an :class:`~cairn.domain.errors.Invalid` that names the pip install.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from cairn.domain.errors import Invalid

MODEL_FILE = "cairn-model.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelInfo:
    """Everything ``cairn-model.json`` holds: enough to load the folder with nothing else.

    ``files`` are the model files the flavor wrote, relative to the folder and sorted
    (``cairn-model.json`` itself is not listed); ``options`` are the flavor's own notes
    (``{"format": "torchscript"}``, ``{"pickler": "cloudpickle"}``).
    """

    flavor: str
    algorithm: str
    signature: dict[str, Any] | None
    files: list[str]
    requirements: dict[str, str]
    python: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "flavor": self.flavor,
            "algorithm": self.algorithm,
            "signature": self.signature,
            "files": list(self.files),
            "requirements": dict(self.requirements),
            "python": self.python,
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class Saved:
    """What a flavor's ``save`` reports back."""

    files: list[str]
    requirements: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)


class Flavor(Protocol):
    """One kind of model: how to recognise, save, load and run it."""

    name: str

    def matches(self, obj: Any) -> bool:
        """Whether ``obj`` is this flavor's kind of model (cheap; imports nothing new)."""
        ...

    def algorithm(self, obj: Any) -> str:
        """A stable dotted name of what the model is, e.g. ``sklearn.svm.SVC``."""
        ...

    def save(self, obj: Any, folder: Path, input_example: Any | None) -> Saved:
        """Write the model's files into ``folder`` (which exists and is empty)."""
        ...

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """Read the files back; returns the underlying model object."""
        ...

    def predict(self, model: Any, data: Any) -> Any:
        """Run the model on data already checked against the signature."""
        ...

    def has_proba(self, model: Any) -> bool:
        """Whether ``proba`` answers for this model."""
        ...

    def proba(self, model: Any, data: Any) -> Any:
        """Class probabilities (only called when ``has_proba``)."""
        ...


def require(module: str, pip_name: str, flavor: str) -> ModuleType:
    """Import ``module`` or raise ``Invalid`` that says what to pip install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Invalid(
            f"the {flavor} flavor needs {pip_name}: pip install {pip_name}",
            field="flavor",
            details={"install": f"pip install {pip_name}"},
        ) from exc


def loaded_module(name: str) -> Any | None:
    """The module if something already imported it: a model of a library that was never
    imported cannot exist, so detection never pays for importing torch or sklearn."""
    return sys.modules.get(name)


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions that are installed."""
    found: dict[str, str] = {}
    for name in distributions:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def distribution_of(obj: Any) -> dict[str, str]:
    """The distribution (and version) that provides the class of ``obj``, if any."""
    top = type(obj).__module__.split(".")[0]
    if top in sys.stdlib_module_names or top in {"__main__", "builtins"}:
        return {}
    # Most packages install under their own name, or one of a few well-known others; the
    # full scan of installed packages (0.15 s or more) is the last resort.
    for guess in (_KNOWN_DISTRIBUTIONS.get(top), top, top.replace("_", "-")):
        if guess:
            found = versions(guess)
            if found:
                return found
    names = _distributions().get(top, [])
    return versions(*sorted(set(names))[:1])


_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "skl2onnx": "skl2onnx",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
}


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans every installed package: once


def dotted_name(cls: type) -> str:
    """``package.public_module.Class``: private submodules (``_logistic``) left out."""
    public = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join([*public, cls.__qualname__])


def as_output(result: Any) -> Any:
    """NumPy arrays and DataFrames pass; Series, lists and scalars become arrays."""
    np = require("numpy", "numpy", "model")
    if isinstance(result, np.ndarray) or is_dataframe(result):
        return result
    to_numpy = getattr(result, "to_numpy", None)
    if callable(to_numpy):
        return to_numpy()
    return np.asarray(result)


def is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and type(obj).__module__.startswith("pandas")


class LoadedModel:
    """A model read back from a folder: ``predict`` checks inputs against the signature.

    >>> model = load_model_dir("out/iris")            # doctest: +SKIP
    >>> model.predict([{"sepal_length": 5.1, ...}])   # doctest: +SKIP
    array([0])
    """

    def __init__(self, model: Any, info: ModelInfo, flavor: Flavor) -> None:
        self.model = model
        self.info = info
        self._flavor = flavor
        # The registry's ModelVersion when loaded by reference (cairn.load_model("iris@prod")).
        self.version: Any = None

    @property
    def flavor(self) -> str:
        return self.info.flavor

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.info.signature

    def predict(self, data: Any) -> Any:
        """Predictions for a NumPy array, a DataFrame or a list of dicts."""
        from cairn.flavors.signature import conform

        return as_output(self._flavor.predict(self.model, conform(data, self.info.signature)))

    @property
    def can_predict_proba(self) -> bool:
        return self._flavor.has_proba(self.model)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, for models that have them (scikit-learn classifiers)."""
        from cairn.flavors.signature import conform

        if not self.can_predict_proba:
            raise Invalid(
                f"this {self.flavor} model ({self.info.algorithm}) has no predict_proba",
                field="model",
            )
        return as_output(self._flavor.proba(self.model, conform(data, self.info.signature)))

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, algorithm={self.info.algorithm!r})"
