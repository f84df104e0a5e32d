#!/usr/bin/env python3
# Owned by tests/deploy: offline validation of plotq's deployment files. Renders every
# kustomization under deploy/k8s (base and overlays) with kustomize (`kubectl kustomize`
# when a kubectl with kustomize v4+ is on PATH, else the built-in equivalent below, and
# both compared when both exist), validates each rendered object against the Kubernetes
# JSON schemas of the pinned `kubernetes-validate` (strict: unknown fields are errors) or,
# for KEDA's ScaledObject/TriggerAuthentication, against the vendored CRD schemas, checks
# plotq's own rules (queue name, probes, settings that exist, grace period, non-root, …),
# validates docker-compose.yml against the vendored compose-spec schema, and exits 1
# naming the file and problem of every invalid one.
#
#   tests/deploy/validate.sh               # everything (about 2-5 s once installed)
#   tests/deploy/validate.sh --self-test   # proves broken copies are rejected
#   python3 tests/deploy/validate.py --kustomize builtin   # force the built-in renderer
import argparse
import base64
import concurrent.futures
import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

# libyaml's parser (shipped in PyYAML's wheels) is ~10x faster than the pure-Python one.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# kubernetes-validate re-reads its (large) definitions file on every call: read once.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
# The Kubernetes release whose schemas the manifests must satisfy (kubernetes-validate
# ships v1.25-v1.37; keep this at the oldest cluster version you run).
K8S_VERSION = "1.32"
KEDA_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-v2.20.2-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-v2.20.2-triggerauthentication.json",
}
ROLES = {"api": 8080, "notifier": 8081, "worker": 8082}
# Seconds the worker needs beyond the render deadline to store, announce and close.
WORKER_DRAIN_SECS = 15
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "IngressClass", "PriorityClass",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ClusterTriggerAuthentication",
}


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")

    def __bool__(self):
        return bool(self.items)


# ---------------------------------------------------------------- the built-in kustomize
# The subset of `kustomize build` our kustomizations use, with kustomize's semantics:
# resources (files and directories), namespace, images, replicas, secretGenerator and
# configMapGenerator (envs, files, literals; disableNameSuffixHash only), and patches
# (strategic-merge patches found by their kind and name, or JSON 6902 / strategic-merge
# patches with a target). Any other field is refused, so nothing is silently ignored.
KNOWN_FIELDS = {
    "apiVersion", "kind", "namespace", "resources", "images", "replicas",
    "secretGenerator", "configMapGenerator", "patches",
}
# Strategic-merge keys of the built-in lists we patch (Kubernetes' patchMergeKey).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
    "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name",
}


class KustomizeError(Exception):
    pass


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.load_all(f, Loader=Loader) if d is not None]


def is_builtin(api_version):
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." not in group or group.endswith(".k8s.io")


def smp(base, patch, builtin):
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            smp(base[key], value, builtin)
        elif (
            builtin
            and key in MERGE_KEYS
            and isinstance(value, list)
            and isinstance(base.get(key), list)
        ):
            mk = MERGE_KEYS[key]
            for item in value:
                match = next((b for b in base[key] if b.get(mk) == item.get(mk)), None)
                if match is None:
                    base[key].append(copy.deepcopy(item))
                else:
                    smp(match, item, builtin)
        else:
            base[key] = copy.deepcopy(value)


def json_patch(doc, ops, where):
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, copy.deepcopy(op["value"]))
            elif kind == "replace":
                parent[idx] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[idx]
            else:
                raise KustomizeError(f"{where}: JSON patch op {kind!r} is not supported")
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and last not in parent:
                    raise KustomizeError(f"{where}: replace of missing {op['path']}")
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[last]
            else:
                raise KustomizeError(f"{where}: JSON patch op {kind!r} is not supported")


def matches(doc, target):
    api = doc.get("apiVersion", "")
    group, _, version = api.rpartition("/")
    checks = {
        "group": group, "version": version, "kind": doc.get("kind"),
        "name": doc["metadata"].get("name"), "namespace": doc["metadata"].get("namespace"),
    }
    return all(checks[k] == v for k, v in target.items() if k in checks)


def read_env_file(path):
    data = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise KustomizeError(f"{path}: line without '=': {line!r}")
        data[key.strip()] = value
    return data


def generate(kdir, gen, kind):
    options = gen.get("options", {})
    if not options.get("disableNameSuffixHash"):
        raise KustomizeError(f"{kdir}: generated names with a hash suffix are not supported by the built-in kustomize")
    values = {}
    for env in gen.get("envs", []):
        values.update(read_env_file(kdir / env))
    for lit in gen.get("literals", []):
        key, _, value = lit.partition("=")
        values[key] = value
    for spec in gen.get("files", []):
        key, sep, rel = spec.partition("=")
        if not sep:
            key, rel = Path(spec).name, spec
        values[key] = (kdir / rel).read_text()
    meta = {"name": gen["name"]}
    if options.get("labels"):
        meta["labels"] = dict(options["labels"])
    if options.get("annotations"):
        meta["annotations"] = dict(options["annotations"])
    if kind == "Secret":
        return {
            "apiVersion": "v1", "kind": "Secret", "metadata": meta,
            "type": gen.get("type", "Opaque"),
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
        }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": values}


def split_image(image):
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    name, tag = image, None
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    return name, tag, digest


def set_images(doc, images):
    spec = doc.get("spec", {}).get("template", {}).get("spec")
    if not spec:
        return
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        name, tag, digest = split_image(c["image"])
        for img in images:
            if img["name"] != name:
                continue
            new = img.get("newName", name)
            if "digest" in img:
                c["image"] = f"{new}@{img['digest']}"
            elif "newTag" in img:
                c["image"] = f"{new}:{img['newTag']}"
            else:
                c["image"] = new + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def builtin_kustomize(kdir):
    kdir = Path(kdir)
    kfile = kdir / "kustomization.yaml"
    (k,) = load_docs(kfile)
    unknown = set(k) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: fields {sorted(unknown)} are not supported by the built-in kustomize")
    docs = []
    for res in k.get("resources", []):
        path = kdir / res
        docs.extend(builtin_kustomize(path) if path.is_dir() else load_docs(path))
    for gen in k.get("configMapGenerator", []):
        docs.append(generate(kdir, gen, "ConfigMap"))
    for gen in k.get("secretGenerator", []):
        docs.append(generate(kdir, gen, "Secret"))
    for p in k.get("patches", []):
        if "path" in p:
            (patch,) = load_docs(kdir / p["path"]) if p["path"].endswith((".yaml", ".yml")) else [yaml.safe_load(p["patch"])]
        else:
            patch = yaml.safe_load(p["patch"])
        where = f"{kfile} patch {p.get('path', '(inline)')}"
        target = p.get("target")
        if target is None:
            if not isinstance(patch, dict):
                raise KustomizeError(f"{where}: a JSON patch needs a target")
            target = {"kind": patch["kind"], "name": patch["metadata"]["name"]}
        hits = [d for d in docs if matches(d, target)]
        if not hits:
            raise KustomizeError(f"{where}: no resource matches {target}")
        for d in hits:
            if isinstance(patch, list):
                json_patch(d, patch, where)
            else:
                smp(d, {k2: v for k2, v in patch.items() if k2 not in ("apiVersion", "kind")}, is_builtin(d["apiVersion"]))
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
    for rep in k.get("replicas", []):
        for d in docs:
            if d["metadata"]["name"] == rep["name"] and "spec" in d:
                d["spec"]["replicas"] = rep["count"]
    if k.get("images"):
        for d in docs:
            set_images(d, k["images"])
    return docs


def kubectl_kustomize():
    """The `kubectl` to render with, when one with kustomize v4+ is on PATH."""
    exe = shutil.which("kubectl")
    if not exe:
        return None, "no kubectl on PATH"
    try:
        out = subprocess.run([exe, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
        version = json.loads(out.stdout).get("kustomizeVersion", "")
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return None, f"kubectl unusable: {e}"
    m = re.match(r"v(\d+)", version)
    if not m or int(m.group(1)) < 4:
        return None, f"kubectl's kustomize is {version or 'unknown'} (need v4+)"
    return exe, f"kubectl kustomize ({version})"


def normalized(d):
    """An object as the API server would store it: kustomize wraps long base64 lines."""
    if d.get("kind") == "Secret" and d.get("data"):
        d = copy.deepcopy(d)
        d["data"] = {k: base64.b64decode("".join(v.split())) for k, v in d["data"].items()}
    return d


def key_of(d):
    m = d.get("metadata", {})
    return (d.get("apiVersion"), d.get("kind"), m.get("namespace") or "", m.get("name"))


# ---------------------------------------------------------------- checks
def plotq_settings(root):
    """Every PLOTQ_* variable the binary reads: the `env = "…"` of its settings (one file
    per group under crates/plotq/src/config/)."""
    names = set()
    for path in sorted((root / "crates/plotq/src/config").rglob("*.rs")):
        names |= set(re.findall(r'env\s*=\s*"(PLOTQ_[A-Z0-9_]+)"', path.read_text()))
    if not names:
        raise SystemExit("no PLOTQ_* settings found under crates/plotq/src/config")
    return names


def schema_check(doc, where, problems, keda_validators):
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if (api, kind) in keda_validators:
        for err in sorted(keda_validators[(api, kind)].iter_errors(doc), key=lambda e: list(e.path)):
            path = "/".join(str(p) for p in err.path) or "(top)"
            problems.add(where, f"{path}: {err.message}")
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        problems.add(where, f"no schema for {api} {kind} in Kubernetes {K8S_VERSION} (nor a vendored CRD schema)")
    except kubernetes_validate.ValidationError as err:
        path = "/".join(str(p) for p in err.path) or "(top)"
        problems.add(where, f"{path}: {err.message}")
    except Exception as err:  # a malformed object the schema code chokes on
        problems.add(where, f"cannot be validated: {err}")


def env_value(container, name):
    for e in container.get("env", []):
        if e.get("name") == name:
            return e.get("value")
    return None


def plotq_checks(docs, label, overlay, settings, problems):
    """plotq's own rules on one rendered kustomization."""
    by = {}
    for d in docs:
        by.setdefault(d.get("kind"), {})[d.get("metadata", {}).get("name")] = d
    config = by.get("ConfigMap", {}).get("plotq-config", {}).get("data") or {}
    if not config:
        problems.add(label, "ConfigMap plotq-config is missing")
    for key in config:
        if key.startswith("PLOTQ_") and key not in settings:
            problems.add(f"{label} ConfigMap/plotq-config", f"{key} is not a plotq setting (crates/plotq/src/config/)")
    secret = by.get("Secret", {}).get("plotq-secrets")
    if overlay and secret is None:
        problems.add(label, "Secret plotq-secrets is not generated (secretGenerator)")
    secret_keys = set((secret or {}).get("data", {}) or {}) | set((secret or {}).get("stringData", {}) or {})
    deadline = int(config.get("PLOTQ_RENDER_DEADLINE_SECS", 30))
    for name, dep in by.get("Deployment", {}).items():
        where = f"{label} Deployment/{name}"
        pod = dep["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        for c in pod.get("containers", []):
            role = (c.get("args") or [None])[0]
            if role not in ROLES:
                problems.add(where, f"args must start with one of {sorted(ROLES)}, not {c.get('args')}")
                continue
            port = ROLES[role]
            if env_value(c, "PLOTQ_HTTP_ADDR") != f"0.0.0.0:{port}":
                problems.add(where, f"PLOTQ_HTTP_ADDR must be 0.0.0.0:{port} for the {role}")
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
            if ports.get("http") != port:
                problems.add(where, f"container port 'http' must be {port}")
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = (c.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path or get.get("port") not in ("http", port):
                    problems.add(where, f"{probe} must GET {path} on the http port")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problems.add(where, f"resources.{part}.{r} is missing")
            csc = c.get("securityContext", {})
            merged = {**psc, **csc}
            if merged.get("runAsNonRoot") is not True or merged.get("runAsUser") != 10001:
                problems.add(where, "must run as non-root uid 10001 (runAsNonRoot, runAsUser: 10001)")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.add(where, "readOnlyRootFilesystem must be true")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.add(where, "allowPrivilegeEscalation must be false")
            if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
                problems.add(where, "capabilities must drop ALL")
            if (merged.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.add(where, "seccompProfile must be RuntimeDefault")
            for e in c.get("env", []):
                n = e.get("name", "")
                if n.startswith("PLOTQ_") and n not in settings:
                    problems.add(where, f"{n} is not a plotq setting")
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if overlay and ref and ref.get("name") == "plotq-secrets" and ref.get("key") not in secret_keys:
                    problems.add(where, f"secretKeyRef {ref.get('key')} is not a key of Secret plotq-secrets")
            if role == "worker":
                grace = pod.get("terminationGracePeriodSeconds", 30)
                if grace < deadline + WORKER_DRAIN_SECS:
                    problems.add(where, f"terminationGracePeriodSeconds {grace} < PLOTQ_RENDER_DEADLINE_SECS {deadline} + {WORKER_DRAIN_SECS} s drain")
        if overlay:
            for v in pod.get("volumes", []):
                sec = v.get("secret")
                if sec and sec.get("secretName") == "plotq-secrets":
                    for item in sec.get("items", []):
                        if item["key"] not in secret_keys:
                            problems.add(where, f"volume {v['name']}: {item['key']} is not a key of Secret plotq-secrets")
    # The ScaledObject watches the queue the workers consume.
    ns = config.get("PLOTQ_NAMESPACE", "")
    queue = f"{ns}.plotq.plot.jobs" if ns else "plotq.plot.jobs"
    sos = by.get("ScaledObject", {})
    if not sos:
        problems.add(label, "no KEDA ScaledObject for the workers")
    for name, so in sos.items():
        where = f"{label} ScaledObject/{name}"
        spec = so.get("spec", {})
        target = spec.get("scaleTargetRef", {}).get("name")
        if target not in by.get("Deployment", {}):
            problems.add(where, f"scaleTargetRef {target!r} is not a Deployment here")
        if not isinstance(spec.get("minReplicaCount"), int) or spec["minReplicaCount"] < 1:
            problems.add(where, "minReplicaCount must be at least 1 (scale-to-zero is off by default)")
        for trig in spec.get("triggers", []):
            if trig.get("type") != "rabbitmq":
                continue
            md = trig.get("metadata", {})
            if md.get("queueName") != queue:
                problems.add(where, f"queueName {md.get('queueName')!r} is not the work queue {queue!r} of PLOTQ_NAMESPACE={ns!r}")
            if md.get("mode") != "QueueLength":
                problems.add(where, "rabbitmq trigger mode must be QueueLength")
            auth = (trig.get("authenticationRef") or {}).get("name")
            ta = by.get("TriggerAuthentication", {}).get(auth)
            if ta is None:
                problems.add(where, f"authenticationRef {auth!r} is not a TriggerAuthentication here")
            elif overlay:
                for ref in ta["spec"].get("secretTargetRef", []):
                    if ref.get("name") != "plotq-secrets" or ref.get("key") not in secret_keys:
                        problems.add(f"{label} TriggerAuthentication/{auth}", f"secretTargetRef {ref.get('name')}/{ref.get('key')} is not in Secret plotq-secrets")
    # The event stream goes to the notifier, unbuffered.
    events = [
        (ing, p) for ing in by.get("Ingress", {}).values()
        for rule in ing["spec"].get("rules", []) for p in rule.get("http", {}).get("paths", [])
        if p.get("path") == "/api/v1/events"
    ]
    if not events:
        problems.add(label, "no Ingress path /api/v1/events")
    for ing, p in events:
        where = f"{label} Ingress/{ing['metadata']['name']}"
        if p["backend"]["service"]["name"] != "plotq-notifier":
            problems.add(where, "/api/v1/events must go to the plotq-notifier Service")
        ann = ing["metadata"].get("annotations", {})
        want = {"nginx.ingress.kubernetes.io/proxy-buffering": "off",
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600"}
        for k2, v in want.items():
            if ann.get(k2) != v:
                problems.add(where, f"annotation {k2} must be {v!r} for SSE")
    if overlay == "production":
        for name in ("plotq-api", "plotq-notifier"):
            hpa = by.get("HorizontalPodAutoscaler", {}).get(name)
            if not hpa or hpa["spec"].get("minReplicas", 1) < 2:
                problems.add(f"{label} HorizontalPodAutoscaler/{name}", "production needs minReplicas ≥ 2 (so the PDB keeps one serving)")
        for name, dep in by.get("Deployment", {}).items():
            for c in dep["spec"]["template"]["spec"]["containers"]:
                _, tag, digest = split_image(c["image"])
                if not digest and (not tag or tag in ("latest", "dev")):
                    problems.add(f"{label} Deployment/{name}", f"image {c['image']} is not pinned")


def compose_check(root, problems):
    path = root / "docker-compose.yml"
    name = "docker-compose.yml"
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    try:
        doc = yaml.load(path.read_text(), Loader=Loader)
    except yaml.YAMLError as e:
        problems.add(name, f"not YAML: {e}")
        return
    validator = jsonschema.Draft7Validator(schema)
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(top)"
        problems.add(name, f"{where}: {err.message}")


def dockerfile_check(root, problems):
    path = root / "deploy/Dockerfile"
    text = path.read_text()
    for needle, why in (
        (r"(?m)^USER 10001(:10001)?\s*$", "must switch to the numeric non-root user 10001"),
        (r"(?m)^HEALTHCHECK ", "needs a HEALTHCHECK"),
    ):
        if not re.search(needle, text):
            problems.add("deploy/Dockerfile", why)


def secrets_check(root, problems):
    """No real secret committed: the overlays' secret inputs are git-ignored, and the
    committed templates hold only placeholders."""
    k8s = root / "deploy/k8s"
    for example in sorted(k8s.rglob(".env.example")):
        for line in example.read_text().splitlines():
            if line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            if "REPLACE_ME" not in value:
                problems.add(str(example.relative_to(root)), f"{key} holds no REPLACE_ME placeholder (a real secret?)")
    for tokens in sorted(k8s.rglob("tokens.example")):
        for line in tokens.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                problems.add(str(tokens.relative_to(root)), "holds a token entry; templates must hold comments only")
    if (root / ".git").exists():
        out = subprocess.run(["git", "-C", str(root), "ls-files", "deploy/k8s"], capture_output=True, text=True)
        for f in out.stdout.split():
            if re.search(r"(^|/)\.env(\.tokens)?$", f):
                problems.add(f, "a secret input file is committed; remove it (git rm --cached) and rotate its values")


# ---------------------------------------------------------------- driver
def prepare_tree(root, tmp):
    """A copy of deploy/k8s whose overlays read the committed templates, never the real
    `.env` files (validation is deterministic and never touches real secrets)."""
    dst = Path(tmp) / "k8s"
    shutil.copytree(root / "deploy/k8s", dst, ignore=shutil.ignore_patterns(".env", ".env.tokens"))
    for ov in (dst / "overlays").iterdir():
        if (ov / ".env.example").exists():
            shutil.copy(ov / ".env.example", ov / ".env")
        if (ov / "tokens.example").exists():
            shutil.copy(ov / "tokens.example", ov / ".env.tokens")
    return dst


def render(kdir, mode, kubectl, label, problems):
    """Docs of one kustomization, or None (problem recorded)."""
    builtin = None
    if mode in ("auto", "builtin") or kubectl is None:
        try:
            builtin = builtin_kustomize(kdir)
        except (KustomizeError, OSError, KeyError, IndexError, ValueError, yaml.YAMLError) as e:
            problems.add(label, f"built-in kustomize: {e}")
            if mode == "builtin" or kubectl is None:
                return None
    if mode == "builtin" or kubectl is None:
        return builtin
    out = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        problems.add(label, f"kubectl kustomize failed: {out.stderr.strip()}")
        return None
    try:
        docs = [d for d in yaml.load_all(out.stdout, Loader=Loader) if d is not None]
    except yaml.YAMLError as e:
        problems.add(label, f"kustomize output is not YAML: {e}")
        return None
    if builtin is not None:
        a = {key_of(d): normalized(d) for d in docs}
        b = {key_of(d): normalized(d) for d in builtin}
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                problems.add(label, f"built-in kustomize and kubectl kustomize disagree on {key[1]}/{key[3]} (kubectl's output is the one validated; see validate.py's equivalent)")
    return docs


def validate(root, mode="auto", quiet=False):
    root = Path(root).resolve()
    problems = Problems()
    settings = plotq_settings(root)
    keda_validators = {
        k: jsonschema.Draft7Validator(json.loads((SCHEMAS / f).read_text()))
        for k, f in KEDA_SCHEMAS.items()
    }
    kubectl, how = (None, "forced built-in") if mode == "builtin" else kubectl_kustomize()
    if mode == "kubectl" and kubectl is None:
        problems.add("kustomize", f"--kustomize kubectl, but {how}")
        return problems
    if not quiet:
        print(f"kustomize: {how if kubectl else 'built-in equivalent (' + how + ')'}"
              f"{'; built-in equivalent cross-checked' if kubectl and mode == 'auto' else ''}")
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        k8s = prepare_tree(root, tmp)
        targets = [("base", k8s / "base")] + [
            (ov.name, ov) for ov in sorted((k8s / "overlays").iterdir()) if (ov / "kustomization.yaml").exists()
        ]
        for name, kdir in targets:
            label = f"deploy/k8s/{'base' if name == 'base' else 'overlays/' + name}"
            docs = render(kdir, mode, kubectl, label, problems)
            if docs is None:
                continue
            counts[label] = len(docs)
            for d in docs:
                where = f"{label} (rendered) {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
                schema_check(d, where, problems, keda_validators)
            try:
                plotq_checks(docs, label, None if name == "base" else name, settings, problems)
            except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
                # Malformed objects (already reported by the schemas) can trip the rules.
                problems.add(label, f"plotq rules could not be checked: {type(e).__name__}: {e}")
    compose_check(root, problems)
    dockerfile_check(root, problems)
    secrets_check(root, problems)
    if not quiet:
        for label, n in counts.items():
            print(f"  {label}: {n} objects rendered and validated (Kubernetes {K8S_VERSION} strict, KEDA v2.20.2)")
        print("  docker-compose.yml: compose-spec schema")
    return problems


# ---------------------------------------------------------------- self-test
def _edit_yaml_doc(path, kind, name, change):
    docs = load_docs(path)
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            change(d)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _yaml(path, kind, name, change):
    """A mutation: `change` applied to the document `kind`/`name` of the YAML file `path`."""
    return lambda r: _edit_yaml_doc(r / path, kind, name, change)


def _replace(path, old, new):
    """A mutation: the first `old` in file `path` replaced by `new`."""
    def mutate(r):
        target = r / path
        target.write_text(target.read_text().replace(old, new, 1))
    return mutate


MUTATIONS = [
    ("a Deployment with replicas: \"two\"",
     _yaml("deploy/k8s/base/api.yaml", "Deployment", "plotq-api",
           lambda d: d["spec"].update(replicas="two")),
     "spec/replicas: 'two' is not of type"),
    ("a Deployment container with an unknown field",
     _yaml("deploy/k8s/base/notifier.yaml", "Deployment", "plotq-notifier",
           lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenessprobe={})),
     "livenessprobe"),
    ("a ScaledObject with an unknown field",
     _yaml("deploy/k8s/base/worker.yaml", "ScaledObject", "plotq-worker",
           lambda d: d["spec"].update(maxReplicas=5)),
     "'maxReplicas' was unexpected"),
    ("a TriggerAuthentication with a wrongly typed field",
     _yaml("deploy/k8s/base/worker.yaml", "TriggerAuthentication", "plotq-rabbitmq",
           lambda d: d["spec"].update(secretTargetRef={"parameter": "host"})),
     "secretTargetRef: {'parameter': 'host'} is not of type 'array'"),
    ("a ScaledObject watching the wrong queue",
     _yaml("deploy/k8s/base/worker.yaml", "ScaledObject", "plotq-worker",
           lambda d: d["spec"]["triggers"][0]["metadata"].update(queueName="prod.plot.jobs")),
     "is not the work queue 'prod.plotq.plot.jobs'"),
    ("a worker grace period shorter than the render deadline plus drain",
     _yaml("deploy/k8s/base/worker.yaml", "Deployment", "plotq-worker",
           lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30)),
     "terminationGracePeriodSeconds 30 <"),
    ("a misspelt plotq setting in the ConfigMap",
     _yaml("deploy/k8s/base/configmap.yaml", "ConfigMap", "plotq-config",
           lambda d: d["data"].update(PLOTQ_PREFECH="2")),
     "PLOTQ_PREFECH is not a plotq setting"),
    ("an Ingress backend port number that is not a number",
     _yaml("deploy/k8s/base/ingress.yaml", "Ingress", "plotq-api",
           lambda d: d["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(port={"number": "eighty"})),
     "'eighty' is not of type 'integer'"),
    ("a production overlay with one api replica",
     _replace("deploy/k8s/overlays/production/hpa-api.yaml", "minReplicas: 2", "minReplicas: 1"),
     "production needs minReplicas"),
    ("a real-looking secret in a committed template",
     _replace("deploy/k8s/overlays/dev/.env.example", "PLOTQ_TICKET_SECRET=REPLACE_ME_with_openssl_rand_hex_32_not_a_real_key",
              "PLOTQ_TICKET_SECRET=" + "ab" * 32),
     "holds no REPLACE_ME placeholder"),
    ("a compose file with a bad service key",
     _replace("docker-compose.yml", "  worker:\n", "  worker:\n    restart_policy: always\n"),
     "services/worker: 'restart_policy' does not match any of the regexes"),
    ("a compose file with a wrongly typed value",
     _replace("docker-compose.yml", 'ports: ["8081:8081"]', 'ports: "8081:8081"'),
     "docker-compose.yml: services/notifier/ports: '8081:8081' is not of type 'array'"),
]


def _copy_repo(root, tmp):
    dst = Path(tmp) / "repo"
    (dst / "crates/plotq/src").mkdir(parents=True)
    shutil.copytree(root / "crates/plotq/src/config", dst / "crates/plotq/src/config")
    shutil.copytree(root / "deploy", dst / "deploy", ignore=shutil.ignore_patterns(".env", ".env.tokens"))
    shutil.copy(root / "docker-compose.yml", dst / "docker-compose.yml")
    return dst


def _run_case(root, mode, index):
    """Problems found in a copy of the repository with mutation `index` (-1: none)."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = _copy_repo(Path(root), tmp)
        if index >= 0:
            MUTATIONS[index][1](repo)
        return validate(repo, mode, quiet=True).items


def self_test(root, mode):
    root = Path(root).resolve()
    clean = _run_case(root, mode, -1)
    if clean:
        print("self-test: the unmodified copy is already invalid:\n  " + "\n  ".join(clean))
        return 1
    print("self-test: unmodified copy accepted")
    failures = 0
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(_run_case, [root] * len(MUTATIONS), [mode] * len(MUTATIONS), range(len(MUTATIONS))))
    for (what, _, expect), problems in zip(MUTATIONS, results):
        hit = [p for p in problems if expect in p]
        if hit:
            print(f"  rejected as expected: {what}\n      {hit[0]}")
        else:
            failures += 1
            print(f"  NOT REJECTED: {what} (expected {expect!r}); problems: {problems}")
    total = len(MUTATIONS)
    print(f"self-test: {total - failures} passed, {failures} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default=str(HERE.parent.parent), help="repository root")
    ap.add_argument("--kustomize", choices=("auto", "kubectl", "builtin"), default="auto",
                    help="auto: kubectl kustomize if available (cross-checked with the built-in), else built-in")
    ap.add_argument("--self-test", action="store_true", help="assert that deliberately broken copies are rejected")
    args = ap.parse_args()
    start = time.monotonic()
    if args.self_test:
        rc = self_test(args.root, args.kustomize)
    else:
        problems = validate(args.root, args.kustomize)
        for p in problems.items:
            print(f"INVALID {p}")
        print(f"deploy validation: {'FAILED, ' + str(len(problems.items)) + ' problem(s)' if problems else 'all valid'}")
        rc = 1 if problems else 0
    print(f"({time.monotonic() - start:.1f} s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
