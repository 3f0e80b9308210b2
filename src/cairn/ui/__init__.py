"""The web UI: server-rendered pages over the services, each linking its JSON twin.

``install_ui(app, status_for)`` mounts the pages at ``/``, our own CSS and JavaScript at
``/ui/static`` and the charting library (Plotly, served from its installed PyPI package,
never committed) at ``/ui/vendor/plotly.min.js``. Pages read through the services on
``app.state``; charts fetch their data from the JSON API, which downsamples on the server.
"""

from __future__ import annotations

from cairn.ui.install import install_ui

__all__ = ["install_ui"]
