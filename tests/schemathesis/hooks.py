"""Schemathesis hooks for plotq's contract fuzzing (loaded by run.sh).

`POST /api/v1/ingest/caddy` takes Caddy access-log lines as application/x-ndjson (never
text/plain, which any page may send cross-site). schemathesis does not know that media
type: generated bodies (a string, per the document) are sent as their UTF-8 bytes, and
anything else as one JSON line, which is what a log line is.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return (json.dumps(value) + "\n").encode("utf-8")
