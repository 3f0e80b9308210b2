"""The ``pytorch`` flavor: a ``torch.nn.Module``, saved as TorchScript when it can be.

TorchScript (``torch.jit.script``, or ``torch.jit.trace`` on the input example) loads
without the model's Python code. A trace that torch warns about, or a compiled module
whose output differs from the original's on the example, is not trusted; then the
whole module is pickled with ``torch.save`` and its class must be importable (or
picklable by cloudpickle) where it is loaded. torch 2.10+ deprecates ``torch.jit``; the
deprecation warnings are silenced around these calls only.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
from cairn.flavors.signature import conform

TORCH_FILE = "model.pt"


class PytorchFlavor:
    name = "pytorch"

    def matches(self, obj: Any) -> bool:
        torch = loaded_module("torch")
        return torch is not None and isinstance(obj, torch.nn.Module)

    def algorithm(self, obj: Any) -> str:
        cls = type(obj)
        if cls.__module__.startswith("torch.nn.modules."):
            return f"torch.nn.{cls.__qualname__}"
        return dotted_name(cls)

    def save(self, obj: Any, folder: Path, input_example: Any | None) -> Saved:
        torch = require("torch", "torch", self.name)
        path = folder / TORCH_FILE
        compiled = to_torchscript(obj, input_example)
        requirements = {**versions("torch", "numpy"), **distribution_of(obj)}
        if compiled is not None:
            with _quiet_jit():
                torch.jit.save(compiled, str(path))
            return Saved([TORCH_FILE], requirements, {"format": "torchscript"})
        try:
            pickler: Any = require("cloudpickle", "cloudpickle", self.name)
            requirements.update(versions("cloudpickle"))
        except Invalid:
            pickler = pickle
        try:
            torch.save(obj, path, pickle_module=pickler)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            path.unlink(missing_ok=True)
            raise Invalid(
                f"the module ({type(obj).__name__}) cannot be pickled: {str(exc)[:200]}",
                field="model",
            ) from exc
        return Saved([TORCH_FILE], requirements, {"format": "pickle", "pickler": pickler.__name__})

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        torch = require("torch", "torch", self.name)
        path = folder / TORCH_FILE
        kind = options.get("format")
        if kind == "torchscript":
            with _quiet_jit():
                model = torch.jit.load(str(path), map_location="cpu")
        elif kind == "pickle":
            if options.get("pickler") == "cloudpickle":
                require("cloudpickle", "cloudpickle", self.name)
            # A whole pickled module: this runs code from the file, as any pickle does.
            model = torch.load(path, map_location="cpu", weights_only=False)
        else:
            raise Invalid(f"unknown pytorch model format {kind!r}", field="options.format")
        model.eval()
        return model

    def predict(self, model: Any, data: Any) -> Any:
        torch = require("torch", "torch", self.name)
        with torch.no_grad():
            out = model(as_tensor(data))
        if isinstance(out, tuple | list):
            out = out[0]
        return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out

    def has_proba(self, model: Any) -> bool:
        return False

    def proba(self, model: Any, data: Any) -> Any:
        raise Invalid("pytorch models have no predict_proba", field="model")


def as_tensor(data: Any, device: Any = None) -> Any:
    """A float32 tensor of ``data`` (a DataFrame's values, an array, nested lists)."""
    torch = require("torch", "torch", "pytorch")
    np = require("numpy", "numpy", "pytorch")
    if isinstance(data, torch.Tensor):
        return data.float() if device is None else data.float().to(device)
    values = data.to_numpy(dtype="float32") if is_dataframe(data) else data
    tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(values, dtype="float32")))
    return tensor if device is None else tensor.to(device)


def to_torchscript(module: Any, input_example: Any | None) -> Any | None:
    """The module compiled by script (or trace on the example), or ``None`` when neither
    gives a faithful copy. The module's train/eval mode is restored afterwards."""
    torch = require("torch", "torch", "pytorch")
    was_training = module.training
    module.eval()
    try:
        example = None
        if input_example is not None:
            device = next((p.device for p in module.parameters()), None)
            example = as_tensor(conform(input_example, None), device)
        compiled = _script_or_trace(torch, module, example)
        if compiled is None or example is None:
            return compiled
        return compiled if _same_output(torch, module, compiled, example) else None
    finally:
        module.train(was_training)


def _script_or_trace(torch: Any, module: Any, example: Any | None) -> Any | None:
    with _quiet_jit():
        try:
            return torch.jit.script(module)
        except Exception:  # any failure to compile means: try the next way
            pass
        if example is None:
            return None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", torch.jit.TracerWarning)
            try:
                traced = torch.jit.trace(module, example)
            except Exception:
                return None
    if any(issubclass(w.category, torch.jit.TracerWarning) for w in caught):
        return None  # torch says the trace may be wrong for other inputs
    return traced


def _same_output(torch: Any, module: Any, compiled: Any, example: Any) -> bool:
    with torch.no_grad(), _quiet_jit():
        try:
            want, got = module(example), compiled(example)
        except Exception:
            return False
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor):
        return bool(want.shape == got.shape and torch.allclose(want, got, rtol=1e-5, atol=1e-6))
    return True


@contextmanager
def _quiet_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        yield
