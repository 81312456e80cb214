#!/usr/bin/env bash
# Prints the Python of a virtualenv that holds the official OCI Python SDK
# pinned in requirements.txt (and its dependencies, dependencies.txt),
# creating it first when missing or broken. It lives outside the clone, with
# the other caches, and is named by a digest of both files and of the Python
# version, so a bump makes a new one. Fails (never skips) when PyPI or
# python3-venv is missing: the conformance test must not pass without the SDK.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/k8s-oci-operator
python=${PYTHON:-python3}

command -v "$python" >/dev/null || { echo "venv.sh: $python not found (install python3)" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "venv.sh: dependencies.txt needs Python >= 3.10, $python is $("$python" --version 2>&1)" >&2; exit 1; }
digest=$({ cat "$here/requirements.txt" "$here/dependencies.txt"; "$python" --version; } | sha256sum | cut -c1-12)
venv=$cache/conformance-venv-$digest
mkdir -p "$cache"

ready() { [ -f "$venv/.complete" ] && "$venv/bin/python" -c 'import oci' 2>/dev/null; }

if ! ready; then
  # One creator at a time: tests may run in parallel.
  exec 9>"$venv.lock"
  flock 9
  if ! ready; then
    rm -rf "$venv"
    echo "venv.sh: creating $venv" >&2
    "$python" -m venv "$venv" >&2 \
      || { echo "venv.sh: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
      --only-binary oci -r "$here/requirements.txt" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$here/dependencies.txt" >&2
    "$venv/bin/python" -m pip check >&2
    "$venv/bin/python" -c 'import oci' >&2
    touch "$venv/.complete"
  fi
fi
echo "$venv/bin/python"
