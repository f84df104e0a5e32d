#!/usr/bin/env bash
# Fuzzes a running plotq against its own OpenAPI document with schemathesis (the version
# pinned in requirements.txt beside this file). tests/e2e_contract.rs runs it against a
# fresh `plotq standalone --no-demo`; by hand:
#
#   tests/schemathesis/run.sh http://127.0.0.1:8080 [EXAMPLES_PER_OPERATION] [extra st flags…]
#
# Fixed inputs, so a run is reproducible: the seed (PLOTQ_SCHEMATHESIS_SEED, default
# below), the budget (examples per operation and phase), no example database (otherwise
# earlier runs' failures would be replayed and change what is generated).
#
# The checks are exactly the contract: no 5xx; every status, content type, body and
# header as documented. Security parameters are not generated: the server under test
# runs in open mode, where any credential that is sent (a random bearer token or read
# ticket) is refused with 401, which would hide every other behaviour of the route.
#
# /api/v1/events is left out: it answers an endless text/event-stream, which
# schemathesis reads to the end before checking it (every case would hang until the
# request timeout). The notifier's tests and the end-to-end suites cover it.
set -euo pipefail

base=${1:?usage: run.sh BASE_URL [EXAMPLES_PER_OPERATION] [extra schemathesis flags]}
examples=${2:-200}
shift $(( $# < 2 ? $# : 2 ))
seed=${PLOTQ_SCHEMATHESIS_SEED:-20261130}

# Serializers for the media types schemathesis does not know (hooks.py beside this file).
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=hooks

# `st` as a module of the python3 that tests/run.sh installed it for (no PATH lookup).
exec python3 -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "st"; sys.exit(schemathesis())' \
  run "$base/api/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --exclude-path /api/v1/events \
  --max-examples "$examples" \
  --seed "$seed" \
  --generation-database none \
  --generation-with-security-parameters false \
  --request-timeout 10 \
  --workers 2 \
  --no-color \
  "$@"
