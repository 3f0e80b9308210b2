"""The ``onnx`` flavor: an ONNX model (``onnx.ModelProto``, its bytes, or a ``.onnx`` file),
run with onnxruntime on the CPU.

predict feeds the first input (a DataFrame's values, cast to the input's element type)
and returns the first output. A model with one input per column, as skl2onnx makes from
a DataFrame, gets each column under its own name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.domain.errors import Invalid
from cairn.flavors.base import Saved, is_dataframe, loaded_module, require, versions

ONNX_FILE = "model.onnx"
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    name = "onnx"

    def matches(self, obj: Any) -> bool:
        if isinstance(obj, bytes | bytearray | memoryview):
            return True
        if isinstance(obj, str | os.PathLike):
            return os.fspath(obj).lower().endswith(".onnx")
        onnx = loaded_module("onnx")
        return onnx is not None and isinstance(obj, onnx.ModelProto)

    def algorithm(self, obj: Any) -> str:
        return "onnx"

    def save(self, obj: Any, folder: Path, input_example: Any | None) -> Saved:
        data = _model_bytes(obj)
        _check_model(data)
        (folder / ONNX_FILE).write_bytes(data)
        return Saved([ONNX_FILE], versions("onnxruntime", "numpy"))

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        runtime = require("onnxruntime", "onnxruntime", self.name)
        return runtime.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])

    def predict(self, model: Any, data: Any) -> Any:
        np = require("numpy", "numpy", self.name)
        inputs = model.get_inputs()
        if is_dataframe(data) and len(inputs) > 1:
            columns = {str(col): col for col in data.columns}
            if all(spec.name in columns for spec in inputs):
                feed = {
                    spec.name: _cast(np, data[columns[spec.name]].to_numpy().reshape(-1, 1), spec)
                    for spec in inputs
                }
                return model.run([model.get_outputs()[0].name], feed)[0]
        values = data.to_numpy() if is_dataframe(data) else data
        feed = {inputs[0].name: _cast(np, np.asarray(values), inputs[0])}
        return model.run([model.get_outputs()[0].name], feed)[0]

    def has_proba(self, model: Any) -> bool:
        return False

    def proba(self, model: Any, data: Any) -> Any:
        raise Invalid("onnx models have no predict_proba here", field="model")


def _cast(np: Any, values: Any, spec: Any) -> Any:
    return np.ascontiguousarray(values, dtype=_DTYPES.get(spec.type, "float32"))


def _model_bytes(obj: Any) -> bytes:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise Invalid(f"no ONNX file at {path}", field="model")
        return path.read_bytes()
    data = obj.SerializeToString()
    if not isinstance(data, bytes):
        raise Invalid("the ONNX model did not serialise to bytes", field="model")
    return data


def _check_model(data: bytes) -> None:
    """Refuse bytes that are not an ONNX model, with onnx when installed, else onnxruntime."""
    try:
        onnx = require("onnx", "onnx", "onnx")
    except Invalid:
        runtime = require("onnxruntime", "onnxruntime", "onnx")
        try:
            runtime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise Invalid("the bytes are not a valid ONNX model", field="model") from exc
        return
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise Invalid("the bytes are not an ONNX model", field="model") from exc
    if not proto.graph.node or not proto.graph.output:
        raise Invalid("the ONNX model has no graph (no nodes or no outputs)", field="model")
