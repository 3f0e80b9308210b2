"""Semantic versions of models, and the rule that picks the next one.

Against the version it succeeds, a new model version is
- **major** when its input/output signature changed,
- **minor** when its flavor or algorithm, or the dataset versions it was trained on, changed,
- **patch** otherwise (new hyperparameters, a retrain on the same data).
``bump=`` or an explicit ``semver=`` overrides the rule; the reason is kept either way.

>>> next_semver(None, ModelTraits("sklearn", "LogisticRegression", None, ()))
('1.0.0', 'first version')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cairn.domain.errors import Invalid

_SEMVER = re.compile(r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")
BUMPS = ("major", "minor", "patch")
MAX_PART = 999_999_999


@dataclass(frozen=True, slots=True)
class ModelTraits:
    """What the rule compares between two versions."""

    flavor: str
    algorithm: str | None
    signature: dict[str, Any] | None
    training_data: tuple[str, ...]  # sorted "project/name:N" of the run's training inputs


def parse_semver(text: object, field: str = "semver") -> tuple[int, int, int]:
    if not isinstance(text, str) or (match := _SEMVER.match(text)) is None:
        raise Invalid(f"{field} {text!r} is not a semantic version such as 1.2.0", field=field)
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def format_semver(parts: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in parts)


def bump_semver(current: str, bump: str) -> str:
    major, minor, patch = parse_semver(current)
    if bump == "major":
        parts = (major + 1, 0, 0)
    elif bump == "minor":
        parts = (major, minor + 1, 0)
    elif bump == "patch":
        parts = (major, minor, patch + 1)
    else:
        raise Invalid(f"bump must be one of {', '.join(BUMPS)}, not {bump!r}", field="bump")
    if max(parts) > MAX_PART:
        raise Invalid(
            f"a {bump} bump of {current} passes {MAX_PART:,}: give an explicit semver",
            field="semver",
        )
    return format_semver(parts)


def decide_bump(previous: ModelTraits, new: ModelTraits) -> tuple[str, str]:
    """``(bump, reason)`` by the rule, comparing ``new`` against ``previous``."""
    if previous.signature != new.signature:
        return "major", "the input/output signature changed"
    changes = []
    if previous.flavor != new.flavor:
        changes.append(f"flavor {previous.flavor} -> {new.flavor}")
    if previous.algorithm != new.algorithm:
        changes.append(f"algorithm {previous.algorithm} -> {new.algorithm}")
    if previous.training_data != new.training_data:
        old = ", ".join(previous.training_data) or "none"
        now = ", ".join(new.training_data) or "none"
        changes.append(f"training data {old} -> {now}")
    if changes:
        return "minor", "; ".join(changes)
    return "patch", "same signature, algorithm and training data"


def next_semver(
    previous: tuple[str, ModelTraits] | None,
    new: ModelTraits,
    *,
    bump: str | None = None,
    semver: str | None = None,
) -> tuple[str, str]:
    """The new version's semver and why. ``previous`` is (its semver, its traits)."""
    if semver is not None:
        parse_semver(semver)
        if bump is not None:
            raise Invalid("give bump or semver, not both", field="bump")
        return semver, "set explicitly"
    if bump is not None and bump not in BUMPS:
        raise Invalid(f"bump must be one of {', '.join(BUMPS)}, not {bump!r}", field="bump")
    if previous is None:
        return "1.0.0", "first version"
    prior, traits = previous
    if bump is not None:
        return bump_semver(prior, bump), f"{bump} bump asked for"
    rule, reason = decide_bump(traits, new)
    return bump_semver(prior, rule), reason


def semver_key(text: str) -> tuple[int, int, int]:
    return parse_semver(text)
