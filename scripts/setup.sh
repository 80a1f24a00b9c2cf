#!/usr/bin/env bash
# Create .venv and install simcache with its test, dashboard and ray extras. torch is pinned to 2.13.0 so that pip
# takes the local CPU build instead of pulling several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[test,dashboard,ray]"
