"""What a ``{version}`` path segment means, for datasets and models alike."""

from __future__ import annotations


def version_ref(name: str, version: str) -> str:
    """``latest`` -> ``name``; ``@label`` -> ``name@label``; ``3`` -> ``name:3``."""
    if version == "latest":
        return name
    if version.startswith("@"):
        return f"{name}{version}"
    return f"{name}:{version}"
