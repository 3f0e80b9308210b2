"""Every response carries the security headers: pages, API answers and errors alike."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("path", ["/", "/api/v1/projects", "/api/v1/runs/nope", "/healthz"])
def test_security_headers_everywhere(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
