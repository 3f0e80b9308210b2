"""The semver rule on its own: parsing, bumping, which traits make which bump and why,
the overrides, and the alias names the registry accepts."""

from __future__ import annotations

from typing import Any

import pytest

from cairn.domain.errors import Invalid
from cairn.domain.models import check_alias
from cairn.domain.semver import (
    ModelTraits,
    bump_semver,
    decide_bump,
    next_semver,
    parse_semver,
    semver_key,
)

TENSOR = {
    "inputs": {"tensor": {"dtype": "float64", "shape": [-1, 4]}},
    "outputs": {"tensor": {"dtype": "int64", "shape": [-1]}},
}
COLUMNS = {
    "inputs": [{"name": "a", "type": "float64"}, {"name": "b", "type": "float64"}],
    "outputs": {"tensor": {"dtype": "int64", "shape": [-1]}},
}
LOGREG = "sklearn.linear_model.LogisticRegression"
FOREST = "sklearn.ensemble.RandomForestClassifier"
BASE = ModelTraits("sklearn", LOGREG, TENSOR, ("p/d:1",))


def traits(**changes: Any) -> ModelTraits:
    fields = {
        "flavor": BASE.flavor,
        "algorithm": BASE.algorithm,
        "signature": BASE.signature,
        "training_data": BASE.training_data,
    }
    return ModelTraits(**{**fields, **changes})


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "parts"),
    [("1.0.0", (1, 0, 0)), ("0.0.1", (0, 0, 1)), ("10.20.30", (10, 20, 30))],
)
def test_parse_semver(text: str, parts: tuple[int, int, int]) -> None:
    assert parse_semver(text) == parts
    assert semver_key(text) == parts


@pytest.mark.parametrize(
    "text", ["1.0", "1.0.0.0", "01.0.0", "1.0.0-rc1", "v1.0.0", "", " 1.0.0", "1.a.0", 100, None]
)
def test_parse_semver_refuses(text: object) -> None:
    with pytest.raises(Invalid) as caught:
        parse_semver(text, "semver")
    assert caught.value.field == "semver"


def test_versions_sort_by_number_not_text() -> None:
    assert sorted(["1.10.0", "1.2.0", "1.9.3"], key=semver_key) == ["1.2.0", "1.9.3", "1.10.0"]


@pytest.mark.parametrize(
    ("bump", "expected"), [("major", "2.0.0"), ("minor", "1.3.0"), ("patch", "1.2.4")]
)
def test_bump_semver(bump: str, expected: str) -> None:
    assert bump_semver("1.2.3", bump) == expected


def test_bump_semver_refuses_other_bumps() -> None:
    with pytest.raises(Invalid) as caught:
        bump_semver("1.2.3", "huge")
    assert caught.value.field == "bump"


# ---------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("new", "bump", "reason"),
    [
        (traits(), "patch", "same signature, algorithm and training data"),
        (traits(signature=COLUMNS), "major", "the input/output signature changed"),
        (traits(signature=None), "major", "the input/output signature changed"),
        (traits(algorithm=FOREST), "minor", f"algorithm {LOGREG} -> {FOREST}"),
        (traits(flavor="pickle"), "minor", "flavor sklearn -> pickle"),
        (traits(training_data=("p/d:2",)), "minor", "training data p/d:1 -> p/d:2"),
        (traits(training_data=()), "minor", "training data p/d:1 -> none"),
        (
            traits(algorithm=FOREST, training_data=("p/d:2",)),
            "minor",
            f"algorithm {LOGREG} -> {FOREST}; training data p/d:1 -> p/d:2",
        ),
        # A changed signature is major whatever else changed too.
        (traits(signature=COLUMNS, algorithm=FOREST), "major", "the input/output signature"),
    ],
)
def test_decide_bump(new: ModelTraits, bump: str, reason: str) -> None:
    chosen, why = decide_bump(BASE, new)
    assert chosen == bump
    assert why.startswith(reason)


def test_first_version_is_1_0_0_whatever_is_asked() -> None:
    assert next_semver(None, BASE) == ("1.0.0", "first version")
    assert next_semver(None, BASE, bump="major") == ("1.0.0", "first version")
    assert next_semver(None, BASE, semver="0.1.0") == ("0.1.0", "set explicitly")


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (traits(), "1.4.3"),  # a retrain on the same data
        (traits(algorithm=FOREST), "1.5.0"),
        (traits(training_data=("p/d:1", "p/e:1")), "1.5.0"),
        (traits(signature=COLUMNS), "2.0.0"),
    ],
)
def test_next_semver_by_the_rule(new: ModelTraits, expected: str) -> None:
    chosen, reason = next_semver(("1.4.2", BASE), new)
    assert chosen == expected
    assert reason == decide_bump(BASE, new)[1]


def test_overrides_win_over_the_rule_and_say_so() -> None:
    changed = traits(signature=COLUMNS)  # the rule would say major
    assert next_semver(("1.4.2", BASE), changed, bump="minor") == ("1.5.0", "minor bump asked for")
    assert next_semver(("1.4.2", BASE), changed, bump="patch") == ("1.4.3", "patch bump asked for")
    assert next_semver(("1.4.2", BASE), BASE, semver="3.0.0") == ("3.0.0", "set explicitly")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bump": "minor", "semver": "3.0.0"}, "bump"),
        ({"bump": "huge"}, "bump"),
        ({"bump": ""}, "bump"),
        ({"semver": "3.0"}, "semver"),
        ({"semver": "3.0.0", "bump": "huge"}, "bump"),
    ],
)
def test_bad_overrides_are_invalid(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        next_semver(("1.0.0", BASE), BASE, **kwargs)
    assert caught.value.field == field
    with pytest.raises(Invalid):
        next_semver(None, BASE, **kwargs)  # refused on a first version too


def test_a_bump_never_makes_a_semver_that_is_refused_later() -> None:
    top = "999999999.0.0"
    assert parse_semver(top) == (999_999_999, 0, 0)
    try:
        made, _ = next_semver((top, BASE), BASE, bump="major")
    except Invalid:
        return  # refusing the bump up front is fine
    next_semver((made, BASE), BASE)  # the version after it must still be possible


# ---------------------------------------------------------------------------- alias names


@pytest.mark.parametrize("alias", ["production", "staging", "a", "champion-2", "Blue_Green"])
def test_good_alias_names(alias: str) -> None:
    assert check_alias(alias) == alias


@pytest.mark.parametrize(
    "alias", ["1abc", "latest", "a b", "", "-a", "a.b", "a/b", "x" * 101, None, 3]
)
def test_bad_alias_names(alias: object) -> None:
    with pytest.raises(Invalid) as caught:
        check_alias(alias)
    assert caught.value.field == "alias"
