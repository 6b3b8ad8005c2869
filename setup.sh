#!/usr/bin/env bash
# One command sets everything up: a virtual environment in .venv with the pinned
# dependencies (requirements.lock), the project and its test extra installed in editable mode, the
# offline template of `dvc plots show`, and DVC analytics off. Safe to re-run. Usage: bash setup.sh
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pip warns once per package about index locations some machines do not have; hide
# only that line, keep pip's exit status (pipefail).
pip_install() { .venv/bin/pip install -q "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }

# torch first and alone, pinned to the CPU build of 2.13: a looser spec, or letting
# another package's range pick it, can pull several GB of CUDA wheels.
pip_install "torch==2.13.*"
pip_install -r requirements.lock
# The project with its test extra, held to the lock's pins (everything is installed by now:
# this only checks that the lock satisfies pyproject.toml and installs the package).
pip_install -c requirements.lock -e ".[test]"

# `dvc plots show` without network: vega, vega-lite and vega-embed from the npm registry,
# inlined into DVC's HTML template (.dvc/plots/offline.html, edge/offline_plots.py).
if command -v npm >/dev/null; then
  (cd .dvc/plots && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  .venv/bin/python -m edge.offline_plots >/dev/null
else
  echo "warning: no npm: dvc plots show will load vega from its CDN (needs network)" >&2
  .venv/bin/python -m edge.offline_plots --online >/dev/null
fi

# Telemetry off for anything started from this checkout.
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
echo "setup done: activate with 'source .venv/bin/activate'"
