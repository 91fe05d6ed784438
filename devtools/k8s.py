"""The Kubernetes tools the deploy/ checks need, from the Go module proxy like Dapr itself (no release download):
kustomize built from ``sigs.k8s.io/kustomize/kustomize/v5`` into the build cache, the Kubernetes API's OpenAPI
documents from the ``k8s.io/kubernetes`` module and Dapr's CRDs from the ``github.com/dapr/dapr`` module.

``python -m devtools.k8s install`` (``make k8s-tools``) fetches and builds them once; ``find()`` says where they are
(None when not installed); ``render(overlay)`` is ``kustomize build``. Standard library only, like ``make dapr``:
it runs before the virtualenv exists. The schema check itself is ``devtools.k8s_schemas``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from realdapr import DAPR_VERSION
from realdapr.binaries import cache_root
from realdapr.build import GO_MINIMUM, go_version

KUSTOMIZE = "sigs.k8s.io/kustomize/kustomize/v5"
# The newest kustomize Go 1.26 builds (v5.8.3 needs Go 1.27); no replace directives, so `go install` works.
KUSTOMIZE_VERSION = "v5.8.2"
KUBERNETES = "k8s.io/kubernetes"
# The Kubernetes release whose API the manifests are checked against: its api/openapi-spec/v3 documents.
KUBERNETES_VERSION = "v1.34.4"
DAPR = "github.com/dapr/dapr"


class ToolsError(Exception):
    """The tools cannot be found or installed; the message says what to do."""


@dataclass(frozen=True)
class K8sTools:
    kustomize: Path
    openapi_dir: Path  # k8s.io/kubernetes's api/openapi-spec/v3
    crd_dir: Path  # dapr's charts/dapr/crds


def kustomize_path(env: Mapping[str, str] = os.environ) -> Path:
    return cache_root(env) / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


def find(env: Mapping[str, str] = os.environ) -> K8sTools | None:
    """The installed tools, or None when ``make k8s-tools`` has not run (or Go is missing)."""
    kustomize = kustomize_path(env)
    go = shutil.which("go", path=env.get("PATH"))
    if not kustomize.is_file() or go is None:
        return None
    try:
        kube = _module_dir(go, KUBERNETES, KUBERNETES_VERSION, env, offline=True)
        dapr = _module_dir(go, DAPR, f"v{DAPR_VERSION}", env, offline=True)
    except ToolsError:
        return None
    return K8sTools(kustomize, kube / "api" / "openapi-spec" / "v3", dapr / "charts" / "dapr" / "crds")


def install(env: Mapping[str, str] = os.environ, out: TextIO = sys.stderr) -> K8sTools:
    """Build kustomize into the cache and fetch the two modules the schemas come from (once; later calls reuse)."""
    go = shutil.which("go", path=env.get("PATH"))
    version = go_version(go) if go else None
    if go is None or version is None or version < GO_MINIMUM:
        raise ToolsError(
            f"the Kubernetes checks need Go {'.'.join(map(str, GO_MINIMUM))}+ (kustomize is built from its Go module "
            "and the API schemas come from Go modules): install Go and run `make k8s-tools` again"
        )
    go_env = {**env, "GOTOOLCHAIN": "local"}
    target = kustomize_path(env)
    if not target.is_file():
        print(f"[k8s-tools] building kustomize {KUSTOMIZE_VERSION} from {KUSTOMIZE} (about a minute)", file=out)
        staging = target.with_name("bin.partial")
        staging.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [go, "install", f"{KUSTOMIZE}@{KUSTOMIZE_VERSION}"],
            env={**go_env, "GOBIN": str(staging)},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not (staging / "kustomize").is_file():
            shutil.rmtree(staging, ignore_errors=True)
            raise ToolsError(f"go install {KUSTOMIZE}@{KUSTOMIZE_VERSION} failed:\n{done.stderr.strip()}")
        (staging / "kustomize").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    for module, module_version in ((KUBERNETES, KUBERNETES_VERSION), (DAPR, f"v{DAPR_VERSION}")):
        print(f"[k8s-tools] fetching {module}@{module_version} (its schemas)", file=out)
        _module_dir(go, module, module_version, go_env, offline=False)
    tools = find(env)
    if tools is None:
        raise ToolsError(f"installed, yet not found again: {target}")
    print(
        f"[k8s-tools] kustomize {KUSTOMIZE_VERSION} in {tools.kustomize}; schemas of Kubernetes "
        f"{KUBERNETES_VERSION} and Dapr {DAPR_VERSION} in the Go module cache",
        file=out,
    )
    return tools


def _module_dir(go: str, module: str, version: str, env: Mapping[str, str], *, offline: bool) -> Path:
    """Where ``module@version`` is in the Go module cache; with ``offline`` never fetched (GOPROXY=off)."""
    run_env = {**env, "GOPROXY": "off", "GOFLAGS": "-mod=mod"} if offline else dict(env)
    done = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"], env=run_env, capture_output=True, text=True
    )
    try:
        info = json.loads(done.stdout or "{}")
    except ValueError:
        info = {}
    if done.returncode != 0 or not info.get("Dir"):
        raise ToolsError(f"go mod download {module}@{version}: {info.get('Error') or done.stderr.strip()}")
    return Path(info["Dir"])


def render(tools: K8sTools, overlay: Path) -> str:
    """``kustomize build overlay``: the YAML stream a ``kubectl apply -k`` would send."""
    done = subprocess.run([str(tools.kustomize), "build", str(overlay)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolsError(f"kustomize build {overlay} failed: {done.stderr.strip()}")
    return done.stdout


def main(argv: list[str]) -> int:
    if argv == ["install"]:
        try:
            install()
        except ToolsError as err:
            print(f"[k8s-tools] {err}", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "render":
        tools = find()
        if tools is None:
            print("the Kubernetes tools are not installed: run `make k8s-tools` first", file=sys.stderr)
            return 2
        try:
            print(render(tools, Path(argv[1])), end="")
        except ToolsError as err:
            print(err, file=sys.stderr)
            return 1
        return 0
    print("usage: python -m devtools.k8s install | render OVERLAY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
