"""The graph explorer served at ``/ui`` (``graphmem serve``, ``graphmem ui``): a static page
(``static/``: plain HTML, CSS and JavaScript, with cytoscape.js vendored from npm under its
MIT licence) over the read-only JSON of :mod:`graphmem.api.routes.ui` and the other routes."""

from pathlib import Path

#: the page's files, shipped inside the package (no build step, nothing fetched from a CDN)
STATIC_DIR = Path(__file__).resolve().parent / "static"
