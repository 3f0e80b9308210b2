"""Model flavors on real models: train, save, load, and the loaded model predicts the same.

scikit-learn's bundled data sets (iris, wine, breast cancer), an ONNX model made from a
scikit-learn one by skl2onnx, and the pickle flavor with a class defined in a test.
PyTorch lives in ``test_pytorch_flavor.py``, signatures in ``test_signature.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cairn.domain.errors import Invalid
from cairn.flavors import (
    FLAVORS,
    MODEL_FILE,
    LoadedModel,
    detect_flavor,
    get_flavor,
    load_model_dir,
    read_model_info,
    save_model,
)


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, LogisticRegression]:
    x, y = load_iris(return_X_y=True)
    return x, y, LogisticRegression(max_iter=500).fit(x, y)


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, Any, Any]:
    frame = load_wine(as_frame=True)
    x, y = frame.data, frame.target
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=30, random_state=0))
    return x, y, model.fit(x, y)


@pytest.fixture(scope="module")
def onnx_bytes(iris: tuple[Any, Any, LogisticRegression]) -> bytes:
    from skl2onnx import to_onnx

    x, _, model = iris
    proto = to_onnx(model, x[:1].astype(np.float32), target_opset=17)
    return bytes(proto.SerializeToString())


# --- scikit-learn ------------------------------------------------------------------------


def test_sklearn_iris_round_trip(tmp_path: Path, iris: tuple[Any, Any, Any]) -> None:
    x, _, model = iris
    info = save_model(model, tmp_path / "m", input_example=x[:5])

    assert info.flavor == "sklearn"
    assert info.algorithm == "sklearn.linear_model.LogisticRegression"
    assert info.files == ["model.pkl"]
    assert info.options == {"pickler": "pickle", "protocol": 5}
    assert set(info.requirements) >= {"scikit-learn", "numpy"}
    assert info.requirements["numpy"] == np.__version__
    assert info.python == ".".join(map(str, sys.version_info[:3]))
    assert info.signature == {
        "inputs": {"tensor": {"dtype": "float64", "shape": [-1, 4]}},
        "outputs": {"tensor": {"dtype": "int64", "shape": [-1]}},
    }
    on_disk = json.loads((tmp_path / "m" / MODEL_FILE).read_text())
    assert on_disk["format_version"] == 1
    assert on_disk == {"format_version": 1, **info.to_json()}
    assert read_model_info(tmp_path / "m") == info

    loaded = load_model_dir(tmp_path / "m")
    assert isinstance(loaded, LoadedModel)
    assert loaded.info == info
    assert type(loaded.model) is LogisticRegression
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.can_predict_proba
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_sklearn_pipeline_on_a_dataframe_reorders_columns(
    tmp_path: Path, wine: tuple[pd.DataFrame, Any, Any]
) -> None:
    x, _, model = wine
    info = save_model(model, tmp_path / "m", input_example=x.head(3))

    assert (
        info.algorithm == "sklearn.ensemble.RandomForestClassifier"
    )  # what the pipeline ends with
    assert info.signature is not None
    inputs = info.signature["inputs"]
    assert [col["name"] for col in inputs] == list(x.columns)
    assert {col["type"] for col in inputs} == {"float64"}

    loaded = load_model_dir(tmp_path / "m")
    expected = model.predict(x)
    shuffled = x[list(reversed(x.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(loaded.predict(shuffled), expected)
    np.testing.assert_array_equal(loaded.predict(x.to_dict(orient="records")), expected)
    np.testing.assert_array_equal(loaded.predict(x.to_numpy()), expected)

    with pytest.raises(Invalid) as caught:
        loaded.predict(x.drop(columns=["alcohol", "hue"]))
    assert caught.value.field == "data"
    assert "alcohol" in caught.value.message and "hue" in caught.value.message
    assert caught.value.details["missing"] == ["alcohol", "hue"]


def test_sklearn_without_a_signature_still_matches_fitted_columns(
    tmp_path: Path, wine: tuple[pd.DataFrame, Any, Any]
) -> None:
    x, _, model = wine
    info = save_model(model, tmp_path / "m")
    assert info.signature is None
    loaded = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x[x.columns[::-1]]), model.predict(x))
    with pytest.raises(Invalid) as caught:
        loaded.predict(x.drop(columns=["proline"]))
    assert caught.value.field == "data" and "proline" in caught.value.message


def test_sklearn_gradient_boosting_breast_cancer(tmp_path: Path) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, y)
    info = save_model(model, tmp_path / "m", input_example=x[:2])
    assert info.algorithm == "sklearn.ensemble.GradientBoostingClassifier"

    loaded = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # A DataFrame for a model fitted on an array: no feature-name warning (warnings are errors).
    np.testing.assert_array_equal(loaded.predict(pd.DataFrame(x)), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    with pytest.raises(Invalid) as caught:
        loaded.predict(x[:, :10])
    assert caught.value.field == "data" and "[-1, 30]" in caught.value.message


# --- ONNX --------------------------------------------------------------------------------


def test_onnx_from_skl2onnx_predicts_like_sklearn(
    tmp_path: Path, iris: tuple[Any, Any, Any], onnx_bytes: bytes
) -> None:
    import onnx

    x, _, model = iris
    proto = onnx.load_model_from_string(onnx_bytes)
    assert detect_flavor(proto) == "onnx"
    info = save_model(proto, tmp_path / "m", input_example=x[:3].astype(np.float32))

    assert (info.flavor, info.algorithm, info.files) == ("onnx", "onnx", ["model.onnx"])
    assert "onnxruntime" in info.requirements
    assert info.signature is not None
    assert info.signature["inputs"] == {"tensor": {"dtype": "float32", "shape": [-1, 4]}}

    loaded = load_model_dir(tmp_path / "m")
    assert type(loaded.model).__name__ == "InferenceSession"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # float64 in, cast
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(x))
    assert not loaded.can_predict_proba
    with pytest.raises(Invalid):
        loaded.predict_proba(x)


def test_onnx_from_bytes_and_from_a_file(
    tmp_path: Path, iris: tuple[Any, Any, Any], onnx_bytes: bytes
) -> None:
    x, _, model = iris
    file = tmp_path / "iris.onnx"
    file.write_bytes(onnx_bytes)
    for name, source in (("bytes", onnx_bytes), ("path", file), ("str", str(file))):
        assert detect_flavor(source) == "onnx"
        save_model(source, tmp_path / name)
        assert (tmp_path / name / "model.onnx").read_bytes() == onnx_bytes
        np.testing.assert_array_equal(
            load_model_dir(tmp_path / name).predict(x[:20]), model.predict(x[:20])
        )


def test_onnx_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        save_model(b"\x08\x07not an onnx model", tmp_path / "bad")
    assert caught.value.field == "model"
    with pytest.raises(Invalid) as caught:
        save_model(tmp_path / "missing.onnx", tmp_path / "none")
    assert caught.value.field == "model"


# --- pickle ------------------------------------------------------------------------------


def test_pickle_flavor_with_a_local_class(tmp_path: Path) -> None:
    class Threshold:  # local: only cloudpickle can carry it by value
        def __init__(self, cut: float) -> None:
            self.cut = cut

        def predict(self, data: Any) -> Any:
            return (np.asarray(data)[:, 0] > self.cut).astype(int)

    model = Threshold(0.5)
    assert detect_flavor(model) == "pickle"
    data = np.array([[0.1, 9.0], [0.7, 0.0], [0.5, 1.0]])
    info = save_model(model, tmp_path / "m", input_example=data)

    assert info.options == {"pickler": "cloudpickle", "protocol": 5}
    assert "cloudpickle" in info.requirements
    assert info.algorithm.endswith("test_pickle_flavor_with_a_local_class.<locals>.Threshold")
    loaded = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(data), [0, 1, 0])
    np.testing.assert_array_equal(loaded.predict([[0.9, 0.0]]), [1])
    assert not loaded.can_predict_proba


def test_pickle_that_fails_is_invalid(tmp_path: Path) -> None:
    import threading

    class Locked:
        lock = None

        def predict(self, data: Any) -> Any:
            return data

    model = Locked()
    model.lock = threading.Lock()  # type: ignore[assignment]
    with pytest.raises(Invalid) as caught:
        save_model(model, tmp_path / "m")
    assert caught.value.field == "model"


# --- detection and errors ----------------------------------------------------------------


def test_detection(iris: tuple[Any, Any, Any], wine: tuple[Any, Any, Any]) -> None:
    assert detect_flavor(iris[2]) == "sklearn"
    assert detect_flavor(wine[2]) == "sklearn"
    assert list(FLAVORS) == ["sklearn", "pytorch", "onnx", "pickle"]
    assert get_flavor("onnx").name == "onnx"


@pytest.mark.parametrize("obj", [object(), 42, "model.pkl", {"predict": 1}, LogisticRegression])
def test_nothing_fits(obj: Any) -> None:
    with pytest.raises(Invalid) as caught:
        detect_flavor(obj)
    assert caught.value.field == "model"
    assert "no flavor fits" in caught.value.message


def test_explicit_flavor_is_checked(tmp_path: Path, iris: tuple[Any, Any, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        save_model(iris[2], tmp_path / "a", flavor="onnx")
    assert caught.value.field == "model"
    with pytest.raises(Invalid) as caught:
        save_model(iris[2], tmp_path / "b", flavor="tensorflow")
    assert caught.value.field == "flavor" and "sklearn" in caught.value.message
    info = save_model(iris[2], tmp_path / "c", flavor="pickle")  # an estimator has predict
    assert (info.flavor, info.options["pickler"]) == ("pickle", "cloudpickle")


def test_save_needs_a_new_or_empty_folder(tmp_path: Path, iris: tuple[Any, Any, Any]) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("x")
    with pytest.raises(Invalid) as caught:
        save_model(iris[2], tmp_path / "used")
    assert caught.value.field == "folder"
    (tmp_path / "empty").mkdir()
    save_model(iris[2], tmp_path / "empty")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == [MODEL_FILE, "model.pkl"]


def test_a_failing_example_is_invalid(tmp_path: Path, iris: tuple[Any, Any, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        save_model(iris[2], tmp_path / "m", input_example=np.zeros((2, 7)))
    assert caught.value.field == "input_example"
    assert "ValueError" in caught.value.message
    assert not (tmp_path / "m").exists()  # nothing half-written is left behind
    (tmp_path / "kept").mkdir()
    with pytest.raises(Invalid):
        save_model(iris[2], tmp_path / "kept", input_example=np.zeros((2, 7)))
    assert (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())


def test_loading_a_folder_that_is_not_a_model(tmp_path: Path, iris: tuple[Any, Any, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        load_model_dir(tmp_path)
    assert caught.value.field == "folder"
    assert MODEL_FILE in caught.value.message

    save_model(iris[2], tmp_path / "m")
    meta = tmp_path / "m" / MODEL_FILE
    data = json.loads(meta.read_text())

    meta.write_text(json.dumps({**data, "format_version": 2}))
    with pytest.raises(Invalid, match="format_version 2"):
        load_model_dir(tmp_path / "m")
    meta.write_text("{not json")
    with pytest.raises(Invalid, match="not valid JSON"):
        load_model_dir(tmp_path / "m")
    meta.write_text(json.dumps({**data, "flavor": "keras"}))
    with pytest.raises(Invalid, match="unknown flavor 'keras'"):
        load_model_dir(tmp_path / "m")
    meta.write_text(json.dumps(data))
    (tmp_path / "m" / "model.pkl").unlink()
    with pytest.raises(Invalid) as caught:
        load_model_dir(tmp_path / "m")
    assert caught.value.details["missing"] == ["model.pkl"]


def test_a_missing_library_names_the_pip_install(
    tmp_path: Path, onnx_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_model(onnx_bytes, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(Invalid) as caught:
        load_model_dir(tmp_path / "m")
    assert caught.value.field == "flavor"
    assert "pip install onnxruntime" in caught.value.message


def test_importing_flavors_imports_no_ml_library() -> None:
    code = (
        "import sys, cairn.flavors; "
        "print(sorted(m for m in ('torch', 'sklearn', 'onnx', 'onnxruntime', 'numpy', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
