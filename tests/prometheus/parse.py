"""Parses a Prometheus text exposition (stdin) with the reference Python client's
parser and prints every sample as one JSON object per line:
{"family": ..., "type": ..., "name": ..., "labels": {...}, "value": ...}.
Exits non-zero (with the parser's error) if the exposition does not parse, or if a
family is declared twice or a sample repeats a name and label set."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
seen_families = set()
seen_samples = set()
for family in text_string_to_metric_families(text):
    if family.name in seen_families:
        sys.exit(f"family {family.name} appears twice")
    seen_families.add(family.name)
    for s in family.samples:
        key = (s.name, tuple(sorted(s.labels.items())))
        if key in seen_samples:
            sys.exit(f"sample {key} appears twice")
        seen_samples.add(key)
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name,
                          "labels": s.labels, "value": s.value}))
