"""Reads an HTTP endpoint of pytrace's --metrics-address the way a probe or
Prometheus would, and prints what it got as one JSON object.

Usage: scrape_metrics.py URL
For /metrics, the body is parsed with the prometheus_client package's parser
of the Prometheus text format (a body it cannot parse fails the script):
{"status": 200, "content_type": "...", "families": {name: type},
 "samples": [{"name": ..., "labels": {...}, "value": ...}]}.
Anything else: {"status": ..., "body": "..."}."""

import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body, content_type = response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        status, body, content_type = error.code, error.read().decode(), error.headers["Content-Type"]
    if not url.endswith("/metrics") or status != 200:
        print(json.dumps({"status": status, "body": body}))
        return
    families, samples = {}, []
    for family in text_string_to_metric_families(body):
        families[family.name] = family.type
        for sample in family.samples:
            samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
    print(json.dumps({"status": status, "content_type": content_type, "families": families, "samples": samples}))


if __name__ == "__main__":
    main()
