"""The charting library, served from its installed PyPI package (``plotly`` ships
``package_data/plotly.min.js``); nothing third-party is committed to this repository.

The file is ~4.8 MB; it is sent gzipped (~1.4 MB) to browsers that accept it and cached
for a day under a URL that names the installed version.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request, Response

from cairn.auth import On, guard
from cairn.domain.errors import NotFound

router = APIRouter(include_in_schema=False)


@dataclass
class PlotlyAsset:
    path: Path | None
    version: str
    _gzipped: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def find(cls) -> PlotlyAsset:
        """Locate ``plotly.min.js`` without importing plotly."""
        spec = importlib.util.find_spec("plotly")
        if spec is None or not spec.submodule_search_locations:
            return cls(None, "missing")
        path = Path(next(iter(spec.submodule_search_locations))) / "package_data/plotly.min.js"
        if not path.is_file():
            return cls(None, "missing")
        return cls(path, importlib.metadata.version("plotly"))

    @property
    def url(self) -> str:
        return f"/ui/vendor/plotly.min.js?v={self.version}"

    def gzipped(self) -> bytes:
        assert self.path is not None
        with self._lock:
            if self._gzipped is None:
                self._gzipped = gzip.compress(self.path.read_bytes(), compresslevel=6, mtime=0)
            return self._gzipped


@router.get("/ui/vendor/plotly.min.js", dependencies=[guard(On.PUBLIC)])
def plotly_js(request: Request) -> Response:
    asset: PlotlyAsset = request.app.state.ui.plotly
    if asset.path is None:
        raise NotFound("charts need the plotly package: pip install 'cairn[server]'")
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    media = "text/javascript; charset=utf-8"
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped(), media_type=media, headers=headers)
    return Response(asset.path.read_bytes(), media_type=media, headers=headers)
