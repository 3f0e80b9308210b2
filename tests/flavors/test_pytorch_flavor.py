"""The pytorch flavor: a small MLP trained on iris, saved as TorchScript and as a pickle."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_iris

from cairn.flavors import detect_flavor, load_model_dir, pytorch_flavor, save_model


@pytest.fixture(scope="module")
def mlp() -> tuple[np.ndarray[Any, Any], torch.nn.Module]:
    torch.manual_seed(0)
    x, y = load_iris(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(60):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(inputs), targets)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        assert (net(inputs).argmax(dim=1) == targets).float().mean() > 0.9
    return x, net


def _expected(net: torch.nn.Module, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    with torch.no_grad():
        return np.asarray(net(torch.from_numpy(x)).numpy())


def test_mlp_as_torchscript(tmp_path: Path, mlp: tuple[Any, torch.nn.Module]) -> None:
    x, net = mlp
    assert detect_flavor(net) == "pytorch"
    info = save_model(net, tmp_path / "m", input_example=x[:4])

    assert (info.flavor, info.algorithm) == ("pytorch", "torch.nn.Sequential")
    assert info.options == {"format": "torchscript"}
    assert info.files == ["model.pt"]
    assert info.requirements["torch"] == importlib.metadata.version("torch")
    assert info.signature == {
        "inputs": {"tensor": {"dtype": "float32", "shape": [-1, 4]}},
        "outputs": {"tensor": {"dtype": "float32", "shape": [-1, 3]}},
    }
    assert net.training  # saving left the caller's module as it was

    loaded = load_model_dir(tmp_path / "m")
    assert isinstance(loaded.model, torch.jit.ScriptModule)
    assert not loaded.model.training
    np.testing.assert_allclose(loaded.predict(x), _expected(net, x), rtol=1e-6, atol=1e-6)
    frame = pd.DataFrame(x.astype(np.float64), columns=list("abcd"))
    np.testing.assert_allclose(loaded.predict(frame), _expected(net, x), rtol=1e-6, atol=1e-6)


def test_mlp_without_example_is_scripted(tmp_path: Path, mlp: tuple[Any, torch.nn.Module]) -> None:
    x, net = mlp
    info = save_model(net, tmp_path / "m")
    assert info.options == {"format": "torchscript"}
    assert info.signature is None
    np.testing.assert_allclose(
        load_model_dir(tmp_path / "m").predict(x[:10]), _expected(net, x[:10])
    )


def test_mlp_pickled_when_torchscript_is_unavailable(
    tmp_path: Path, mlp: tuple[Any, torch.nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    x, net = mlp
    monkeypatch.setattr(pytorch_flavor, "to_torchscript", lambda module, example: None)
    info = save_model(net, tmp_path / "m", input_example=x[:4])

    assert info.options == {"format": "pickle", "pickler": "cloudpickle"}
    loaded = load_model_dir(tmp_path / "m")
    assert type(loaded.model) is torch.nn.Sequential
    assert not loaded.model.training
    np.testing.assert_array_equal(loaded.predict(x), _expected(net, x))


def test_a_module_torchscript_cannot_capture_is_pickled(tmp_path: Path) -> None:
    class NumpyInside(torch.nn.Module):  # NumPy in forward: script fails, trace warns
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            squashed = torch.from_numpy(np.tanh(x.numpy()))
            return torch.as_tensor(self.linear(squashed))

    torch.manual_seed(1)
    module = NumpyInside()
    example = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    info = save_model(module, tmp_path / "m", input_example=example)

    assert info.options["format"] == "pickle"
    assert info.algorithm.endswith("<locals>.NumpyInside")
    other = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(other)).numpy()
    np.testing.assert_array_equal(load_model_dir(tmp_path / "m").predict(other), want)


def test_mlp_with_named_columns(tmp_path: Path, mlp: tuple[Any, torch.nn.Module]) -> None:
    x, net = mlp
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    records = [dict(zip(names, map(float, row), strict=True)) for row in x]
    info = save_model(net, tmp_path / "m", input_example=records[:3])
    assert info.signature is not None
    assert [col["name"] for col in info.signature["inputs"]] == names

    loaded = load_model_dir(tmp_path / "m")
    shuffled = [dict(reversed(list(row.items()))) for row in records]
    np.testing.assert_allclose(loaded.predict(shuffled), _expected(net, x), rtol=1e-6, atol=1e-6)
