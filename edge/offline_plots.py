"""Build DVC's HTML template for ``dvc plots show`` without network.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so with no network
every vega plot is blank. ``setup.sh`` installs the three packages from the npm registry
into ``.dvc/plots/node_modules`` (versions pinned in ``.dvc/plots/package.json``); this
module inlines their minified builds into ``.dvc/plots/offline.html``, which ``.dvc/config``
names as ``plots.html_template``. Inlined, the page works wherever ``-o`` writes it.

The template has no ``{scripts}`` placeholder, so DVC adds no CDN script tag; DVC fills
``{plot_divs}`` (and ``{refresh_tag}`` for ``--open`` with refresh).

Usage: ``python -m edge.offline_plots`` from the repository root. With ``--online`` (no npm
on the machine) it writes a template that keeps DVC's CDN scripts instead, so ``dvc plots
show`` still works where there is network.
"""

from __future__ import annotations

import sys
from pathlib import Path

from l2path import atomic

PLOTS_DIR = Path(".dvc/plots")
BUILDS = (
    "vega/build/vega.min.js",
    "vega-lite/build/vega-lite.min.js",
    "vega-embed/build/vega-embed.min.js",
)

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC plots (offline)</title>
{scripts}
    <style>
        body {{ font-family: system-ui, sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


class OfflinePlotsError(RuntimeError):
    """A vega build is missing or cannot be inlined."""


def template(node_modules: Path) -> str:
    """The page with every build inlined in its own script element."""
    scripts = []
    for build in BUILDS:
        path = node_modules / build
        if not path.is_file():
            raise OfflinePlotsError(
                f"{path} is missing: run `npm ci` in {node_modules.parent} (setup.sh does)"
            )
        code = path.read_text(encoding="utf8")
        if "</script" in code.lower() or "{plot_divs}" in code:
            raise OfflinePlotsError(f"{path} cannot be inlined in a script element")
        scripts.append(f"    <script>/* {build} */\n{code}\n    </script>")
    return PAGE.format(scripts="\n".join(scripts))


def main(root: Path = Path("."), online: bool = False) -> Path:
    target = root / PLOTS_DIR / "offline.html"
    page = (
        PAGE.format(scripts="    {scripts}")
        if online
        else template(root / PLOTS_DIR / "node_modules")
    )
    atomic.write_text(target, page)
    return target


if __name__ == "__main__":
    try:
        print(f"wrote {main(online='--online' in sys.argv[1:])}")
    except OfflinePlotsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
