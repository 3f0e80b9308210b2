"""Model flavors: save a model object to a folder, load it back, predict, and describe it.

>>> info = save_model(clf, "out/iris", input_example=X[:5])   # doctest: +SKIP
>>> model = load_model_dir("out/iris")                        # doctest: +SKIP
>>> model.predict(X[:2])                                      # doctest: +SKIP

Flavors: ``sklearn``, ``pytorch``, ``onnx``, ``pickle`` (see :data:`FLAVORS`). Each
imports its library only when used; a missing one is ``Invalid`` naming the pip install.
This package may import only :mod:`cairn.domain`.
"""

from __future__ import annotations

from cairn.flavors.base import MODEL_FILE, Flavor, LoadedModel, ModelInfo
from cairn.flavors.model_dir import (
    FLAVORS,
    detect_flavor,
    get_flavor,
    load_model_dir,
    read_model_info,
    save_model,
)
from cairn.flavors.signature import infer_signature

__all__ = [
    "FLAVORS",
    "MODEL_FILE",
    "Flavor",
    "LoadedModel",
    "ModelInfo",
    "detect_flavor",
    "get_flavor",
    "infer_signature",
    "load_model_dir",
    "read_model_info",
    "save_model",
]
