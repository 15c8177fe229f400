"""Renders pytrace's Helm chart with Helm's own engine (the helm-python-sdk
package ships Helm's Go library) and validates every object against the
Kubernetes schemas (kubernetes-validate, offline, strict).

Usage: render_chart.py CHART_DIR [--values JSON] [--write FILE] | --lint CHART_DIR
Renders as release "pytrace" in namespace "pytrace" and prints one JSON
object: {"manifest": the objects as one YAML stream, "objects": [the
objects], "hooks": [hook objects, such as `helm test`'s pod: validated, not
in the manifest], "notes": NOTES.txt rendered, "invalid": [messages], "unchecked":
[kinds without a built-in schema]} — or, when Helm refuses the values
(values.schema.json, or a `required`/`fail` in a template), {"refused":
Helm's message}. With --write, also writes the manifest to FILE (how
deploy/kubernetes/pytrace.yaml is made: `cargo xtask manifest`).
"""

import argparse
import json
import sys

import kubernetes_validate
import yaml
from helm_python import Chart, lint
from helm_python.errors import HelmError

# Every Kubernetes release from the chart's kubeVersion (1.27) to the newest
# whose schemas kubernetes-validate ships (1.37).
KUBERNETES_VERSIONS = [f"1.{minor}" for minor in range(27, 38)]
HEADER = (
    "# pytrace as a DaemonSet: rendered from deploy/helm/pytrace with its default values\n"
    "# (release \"pytrace\", namespace \"pytrace\") by `cargo xtask manifest`; do not edit by hand.\n"
    "# Install: kubectl create namespace pytrace && kubectl apply -f pytrace.yaml\n"
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("chart")
    parser.add_argument("--values", default="{}")
    parser.add_argument("--write")
    parser.add_argument("--lint", action="store_true", help="print `helm lint --strict`'s findings for 1.27 and 1.37")
    args = parser.parse_args()
    if args.lint:
        reports = {version: lint(args.chart, strict=True, kube_version=f"v{version}.0") for version in ("1.27", "1.37")}
        json.dump(reports, sys.stdout)
        return
    chart = Chart.load(args.chart)
    try:
        rendered = chart.render(values=json.loads(args.values), name="pytrace", namespace="pytrace", is_install=True)
    except HelmError as error:
        json.dump({"refused": str(error)}, sys.stdout)
        return
    notes = next((text for path, text in rendered.items() if path.endswith("NOTES.txt")), "")
    objects, hooks, documents = [], [], []
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(rendered[path]):
            if document:
                if "helm.sh/hook" in (document.get("metadata", {}).get("annotations") or {}):
                    hooks.append(document)  # `helm test` and the like: not part of the manifest
                    continue
                objects.append(document)
                documents.append(f"# Source: {path}\n" + yaml.safe_dump(document, sort_keys=False))
    invalid, unchecked = [], []
    for obj in objects + hooks:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                unchecked.append(obj["kind"])
                break
            except kubernetes_validate.ValidationError as error:
                invalid.append(f"{obj['kind']}/{obj['metadata']['name']} ({version}): {error.message} at {list(error.path)}")
    manifest = HEADER + "---\n".join(documents)
    if args.write:
        with open(args.write, "w") as out:
            out.write(manifest)
    json.dump({"manifest": manifest, "objects": objects, "hooks": hooks, "notes": notes, "invalid": invalid,
               "unchecked": unchecked},
              sys.stdout)


if __name__ == "__main__":
    main()
