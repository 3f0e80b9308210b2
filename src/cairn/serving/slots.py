"""A model reference followed: the version it names now, loaded and ready to answer.

``ModelSlot.refresh`` asks the registry which version ``iris@production`` names; when
that changed it loads the new version first and only then swaps it in, in one
assignment. A request reads ``slot.current`` once and keeps that object, so requests in
flight finish on the old model while new ones get the new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cairn.domain.models import ModelVersion
from cairn.domain.production import Endpoint
from cairn.serving.payload import input_names

if TYPE_CHECKING:
    from cairn.flavors import LoadedModel


class RegistryClient(Protocol):
    """What the server needs of ``cairn.Client``."""

    def get_model_version(self, ref: str, project: str | None = None) -> ModelVersion: ...

    def load_model(self, ref: str, project: str | None = None) -> LoadedModel: ...

    def get_endpoint(self, name: str, project: str | None = None) -> Endpoint: ...


class CallTime:
    """How long a model's calls take: a moving average of the recent ones, in seconds
    (infinite until the first has answered)."""

    __slots__ = ("seconds",)
    WEIGHT = 0.2  # of the newest call

    def __init__(self) -> None:
        self.seconds = math.inf

    def add(self, seconds: float) -> None:
        if math.isinf(self.seconds):
            self.seconds = seconds
        else:
            self.seconds += (seconds - self.seconds) * self.WEIGHT


@dataclass(frozen=True, slots=True)
class Served:
    model: LoadedModel
    version: ModelVersion
    names: list[str] | None  # the input columns the signature names, if any
    timing: CallTime = field(default_factory=CallTime, compare=False)

    def describe(self) -> dict[str, Any]:
        v = self.version
        return {"model": v.name, "version": v.version, "semver": v.semver, "ref": v.ref}


class ModelSlot:
    def __init__(self, target: str, project: str) -> None:
        self.target = target
        self.project = project
        self.current: Served | None = None

    def refresh(self, registry: RegistryClient) -> bool:
        """Load and swap in the version the target names now; True when it changed."""
        found = registry.get_model_version(self.target, self.project)
        now = self.current
        if now is not None and now.version.ref == found.ref and now.version.digest == found.digest:
            return False
        loaded = registry.load_model(found.ref, found.project)
        version = loaded.version if isinstance(loaded.version, ModelVersion) else found
        self.current = Served(loaded, version, input_names(loaded.signature))
        return True
