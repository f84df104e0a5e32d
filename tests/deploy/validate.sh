#!/usr/bin/env bash
# Owned by tests/deploy: entry point of the offline deploy validation (deploy/k8s
# overlays, KEDA objects, docker-compose.yml, deploy/Dockerfile basics). Installs the
# pinned packages of requirements.txt into a private virtualenv once (PyPI is the only
# network it uses, and only then), then runs validate.py with the given arguments:
#   tests/deploy/validate.sh               # validate; exit 1 naming each invalid file
#   tests/deploy/validate.sh --self-test   # prove deliberately broken copies are rejected
# Renders with `kubectl kustomize` when kubectl (kustomize v4+) is on PATH, else with the
# built-in equivalent in validate.py (--kustomize builtin|kubectl forces one).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${PLOTQ_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/plotq/deploy-venv}"
python="${PYTHON:-python3}"
stamp="$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]]; then
  echo "deploy validation: installing tests/deploy/requirements.txt into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --no-input -q -r "$here/requirements.txt"
  echo "$stamp" > "$venv/.requirements"
fi
exec "$venv/bin/python" "$here/validate.py" "$@"
