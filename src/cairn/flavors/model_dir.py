"""Model folders: the flavor's files plus ``cairn-model.json``, which says how to load them.

``cairn-model.json`` is written last, so a folder that has one is complete.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.domain.errors import Invalid
from cairn.flavors.base import FORMAT_VERSION, MODEL_FILE, Flavor, LoadedModel, ModelInfo
from cairn.flavors.onnx_flavor import OnnxFlavor
from cairn.flavors.pickle_flavor import PickleFlavor
from cairn.flavors.pytorch_flavor import PytorchFlavor
from cairn.flavors.signature import infer_signature, schema_of
from cairn.flavors.sklearn_flavor import SklearnFlavor

# In detection order: the specific kinds first, "anything with predict" last.
FLAVORS: Mapping[str, Flavor] = {
    flavor.name: flavor
    for flavor in (SklearnFlavor(), PytorchFlavor(), OnnxFlavor(), PickleFlavor())
}


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; ``Invalid(field="flavor")`` for an unknown one."""
    try:
        return FLAVORS[name]
    except (KeyError, TypeError):
        raise Invalid(
            f"unknown flavor {name!r}; known: {', '.join(FLAVORS)}", field="flavor"
        ) from None


def detect_flavor(obj: Any) -> str:
    """The name of the first flavor that fits ``obj``.

    >>> detect_flavor(LogisticRegression().fit(X, y))  # doctest: +SKIP
    'sklearn'
    """
    for name, flavor in FLAVORS.items():
        if flavor.matches(obj):
            return name
    raise Invalid(
        f"no flavor fits a {type(obj).__module__}.{type(obj).__qualname__}: expected a "
        "scikit-learn estimator, a torch.nn.Module, an ONNX model (ModelProto, bytes or a "
        ".onnx path) or an object with a predict method",
        field="model",
    )


def save_model(
    obj: Any,
    folder: str | os.PathLike[str],
    flavor: str | None = None,
    input_example: Any | None = None,
) -> ModelInfo:
    """Write ``obj`` into ``folder`` (new or empty) with its ``cairn-model.json``.

    With an ``input_example`` the saved model is loaded back and run on it: that checks
    the folder works and gives the signature's outputs.

    >>> info = save_model(clf, "out/iris", input_example=X[:5])  # doctest: +SKIP
    >>> info.flavor, info.algorithm
    ('sklearn', 'sklearn.linear_model.LogisticRegression')
    """
    name = flavor or detect_flavor(obj)
    chosen = get_flavor(name)
    if not chosen.matches(obj):
        raise Invalid(f"the {type(obj).__name__} is not a {name} model", field="model")
    path, created = _empty_folder(folder)
    try:
        info = _save(chosen, obj, path, input_example)
    except BaseException:
        _clear(path, created)  # the folder was empty: leave nothing half-written
        raise
    _write_json(path / MODEL_FILE, info.to_json())
    return info


def _save(flavor: Flavor, obj: Any, path: Path, input_example: Any | None) -> ModelInfo:
    saved = flavor.save(obj, path, input_example)
    info = ModelInfo(
        flavor=flavor.name,
        algorithm=flavor.algorithm(obj),
        signature=None,
        files=sorted(saved.files),
        requirements=dict(sorted(saved.requirements.items())),
        python=platform.python_version(),
        options=dict(saved.options),
    )
    if input_example is None:
        return info
    inputs = {"inputs": schema_of(input_example, "input_example"), "outputs": None}
    loaded = LoadedModel(flavor.load(path, info.options), _with(info, inputs), flavor)
    return _with(info, infer_signature(input_example, _predict_example(loaded, input_example)))


def load_model_dir(folder: str | os.PathLike[str]) -> LoadedModel:
    """Load the model in ``folder`` with the flavor its ``cairn-model.json`` names.

    >>> load_model_dir("out/iris").predict(X[:2])  # doctest: +SKIP
    array([0, 0])
    """
    path = Path(folder)
    info = read_model_info(path)
    missing = [name for name in info.files if not (path / name).is_file()]
    if missing:
        raise Invalid(
            f"the model folder {path} lacks {', '.join(missing)}",
            field="folder",
            details={"missing": missing},
        )
    flavor = get_flavor(info.flavor)
    return LoadedModel(flavor.load(path, info.options), info, flavor)


def read_model_info(folder: str | os.PathLike[str]) -> ModelInfo:
    """The ``ModelInfo`` of a model folder, without loading the model."""
    file = Path(folder) / MODEL_FILE
    if not file.is_file():
        raise Invalid(f"{folder} has no {MODEL_FILE}: not a Cairn model folder", field="folder")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"{file} is not valid JSON", field="folder") from exc
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise Invalid(
            f"{file} has format_version {version!r}; this Cairn reads {FORMAT_VERSION}",
            field="folder",
        )
    try:
        return ModelInfo(
            flavor=str(data["flavor"]),
            algorithm=str(data["algorithm"]),
            signature=data.get("signature"),
            files=[str(name) for name in data["files"]],
            requirements={str(k): str(v) for k, v in data.get("requirements", {}).items()},
            python=str(data.get("python", "")),
            options=dict(data.get("options") or {}),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise Invalid(f"{file} lacks a field or has a bad one: {exc}", field="folder") from exc


def _empty_folder(folder: str | os.PathLike[str]) -> tuple[Path, bool]:
    """The folder, made when missing; and whether it was made here."""
    path = Path(folder)
    if path.exists():
        if not path.is_dir() or any(path.iterdir()):
            raise Invalid(f"{path} exists and is not an empty folder", field="folder")
        return path, False
    path.mkdir(parents=True)
    return path, True


def _clear(path: Path, created: bool) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    if created:
        path.rmdir()


def _predict_example(model: LoadedModel, example: Any) -> Any:
    try:
        return model.predict(example)
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(
            f"the saved model failed to predict on input_example: "
            f"{type(exc).__name__}: {str(exc)[:200]}",
            field="input_example",
        ) from exc


def _with(info: ModelInfo, signature: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        flavor=info.flavor,
        algorithm=info.algorithm,
        signature=signature,
        files=info.files,
        requirements=info.requirements,
        python=info.python,
        options=info.options,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
