"""Build daprd, placement, scheduler and sentry of the pinned release (``DAPR_VERSION``) from Dapr's Go modules into
the build cache that ``realdapr/binaries.py`` finds them in, or sentry alone for an install that lacks it, with a
progress line every 10 seconds: a first build runs for many minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from . import DAPR_VERSION
from .binaries import SENTRY, DaprBinaries, DaprError, built_bin_dir, cache_root, daprd_version, pinned_minor

MODULE = "github.com/dapr/dapr"
# daprd panics at start without a components build tag; the stable set has state.postgresql v2.
DAPRD_TAGS = "stablecomponents"
GO_MINIMUM = (1, 26)

INSTALL_HELP = (
    "Real Dapr is not installed and cannot be built here: neither a Dapr {minor} install (daprd, placement and "
    "scheduler in ~/.dapr/bin or in $DAPR_BIN_DIR) nor Go {go}+ was found. Either install Dapr {minor} with the "
    "Dapr CLI (`dapr init --runtime-version {version}`, or `dapr init --slim` on a machine without Docker) and "
    "run this again, or install Go {go} or newer (https://go.dev/doc/install, or your system's golang package) "
    "and run `make dapr` again: it then builds Dapr {version} from its Go modules into {cache} (on 2 "
    "cores: about 6 minutes, 740 MB of downloads and 5.5 GB of Go caches the first time; reused afterwards)."
)


class _Progress:
    """One line every ``every`` seconds and at each step's end: a cold build runs for many minutes."""

    def __init__(self, out: TextIO, every: float = 10.0) -> None:
        self.out = out
        self.every = every
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[dapr] {elapsed // 60:2d}m{elapsed % 60:02d}s {text}", file=self.out, flush=True)

    def run(
        self,
        title: str,
        command: Sequence[str],
        cwd: Path | None,
        env: Mapping[str, str],
        count: Callable[[str], bool],
        total: int | None = None,
        unit: str = "packages",
    ) -> str:
        """Run ``command``, counting output lines for which ``count`` is true; return its stdout."""
        self.say(f"{title} ...")
        tail: deque[str] = deque(maxlen=25)
        done = [0]
        finished = threading.Event()

        def ticker() -> None:  # also while go links or waits on the network and prints nothing
            while not finished.wait(self.every):
                self.say(f"{title}: {done[0]}{f'/{total}' if total else ''} {unit}")

        # go prints progress (-v packages, "go: downloading") on stderr; stdout goes to a file, so that a
        # full stdout pipe can never stall the process while we read stderr.
        with tempfile.TemporaryFile("w+") as stdout:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            threading.Thread(target=ticker, daemon=True).start()
            try:
                assert proc.stderr is not None
                for line in proc.stderr:
                    tail.append(line.rstrip())
                    done[0] += count(line)
                code = proc.wait()
            finally:
                finished.set()
                if proc.poll() is None:
                    proc.kill()
            stdout.seek(0)
            output = stdout.read()
        if code != 0:
            # `go mod download -json` reports its error in the JSON on stdout.
            tail.extend(output.strip().splitlines()[-10:])
            raise DaprError(f"{title} failed (exit {code}): {' '.join(command)}\n" + "\n".join(tail))
        self.say(f"{title}: done ({done[0]} {unit})")
        return output


def go_version(go: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match[1]), int(match[2])) if match else None


def build(env: Mapping[str, str] = os.environ, out: TextIO = sys.stderr, *, sentry_only: bool = False) -> DaprBinaries:
    """Build daprd, placement, scheduler and sentry of ``DAPR_VERSION`` from the Go module proxy into the cache;
    with ``sentry_only``, sentry alone (for an install that has the others), added to the cache's folder."""
    go = shutil.which("go", path=env.get("PATH"))
    version_of_go = go_version(go) if go else None
    if go is None or version_of_go is None:
        raise DaprError(_install_help(env))
    if version_of_go < GO_MINIMUM:
        raise DaprError(
            f"Go {'.'.join(map(str, version_of_go))} is too old to build Dapr {DAPR_VERSION} "
            f"(needs {'.'.join(map(str, GO_MINIMUM))}+). " + _install_help(env)
        )
    progress = _Progress(out)
    if sentry_only:
        progress.say(f"building sentry {DAPR_VERSION} from Dapr's Go modules with {go}")
    else:
        progress.say(
            f"building Dapr {DAPR_VERSION} (daprd, placement, scheduler, sentry) from its Go modules with "
            f"{go}; a first build takes about 6 minutes on 2 cores and downloads 740 MB, later runs reuse it"
        )
    # Never a toolchain download (the go.mod asks for 1.26.x and any 1.26+ builds it); the module
    # proxy is the only source.
    go_env = {**env, "GOTOOLCHAIN": "local"}
    src = cache_root(env) / "src" / f"dapr-{DAPR_VERSION}"
    staging = built_bin_dir(env=env).with_name("bin.partial")
    try:
        if sentry_only:
            return _build_sentry(go, go_env, src, staging, progress)
        return _build(go, go_env, src, staging, progress)
    except DaprError as exc:
        raise DaprError(
            f"{exc}\nThe build of Dapr {DAPR_VERSION} stopped and installed nothing. Check the lines above, that the "
            f"Go module proxy is reachable (GOPROXY={go_env.get('GOPROXY') or _go_env(go, 'GOPROXY')}) and that "
            f"{cache_root(env)} has a few GB free, then run `make dapr` again; or install Dapr "
            f"{pinned_minor()} another way and point DAPR_BIN_DIR at it."
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)


def _go_env(go: str, name: str) -> str:
    try:
        return subprocess.run([go, "env", name], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


_LDFLAGS = (
    f"-s -w -X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION} "
    f"-X github.com/dapr/kit/logger.DaprVersion={DAPR_VERSION}"
)


def _compiled(line: str) -> bool:
    """go build -v prints one package a line."""
    return not line.startswith(("go: ", "#"))


def _module_copy(go: str, go_env: Mapping[str, str], src: Path, progress: _Progress, step: str) -> None:
    """A writable copy of Dapr's module in ``src``: its go.mod has replace directives, which ``go install
    pkg@version`` refuses, so the build runs with dapr as the main module."""
    info = progress.run(
        f"{step} fetching {MODULE}@v{DAPR_VERSION}",
        [go, "mod", "download", "-json", f"{MODULE}@v{DAPR_VERSION}"],
        None,
        go_env,
        count=lambda line: False,
        unit="modules",
    )
    module_dir = Path(_json_field(info, "Dir"))
    if src.exists():
        shutil.rmtree(src)
    src.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(module_dir, src)
    for path in [src, *src.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def _fresh(staging: Path) -> None:
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)


def _build(go: str, go_env: Mapping[str, str], src: Path, staging: Path, progress: _Progress) -> DaprBinaries:
    _module_copy(go, go_env, src, progress, "1/4")
    packages = ["./cmd/daprd", "./cmd/placement", "./cmd/scheduler", "./cmd/sentry"]
    progress.run(
        "2/4 fetching the modules daprd, placement, scheduler and sentry need",
        [go, "list", "-deps", "-tags", DAPRD_TAGS, *packages],
        src,
        go_env,
        count=lambda line: line.startswith("go: downloading"),
        unit="modules downloaded",
    )
    daprd_packages = subprocess.run(
        [go, "list", "-deps", "-tags", DAPRD_TAGS, "./cmd/daprd"], cwd=src, env=go_env, capture_output=True, text=True
    ).stdout
    total = len(daprd_packages.split())
    _fresh(staging)
    progress.run(
        "3/4 compiling daprd",
        [
            go,
            "build",
            "-v",
            "-trimpath",
            "-tags",
            DAPRD_TAGS,
            "-ldflags",
            _LDFLAGS,
            "-o",
            str(staging / "daprd"),
            "./cmd/daprd",
        ],
        src,
        go_env,
        count=_compiled,
        total=total,
    )
    # sentry, like placement and the scheduler, has no build tags (only daprd's components do).
    progress.run(
        "4/4 compiling placement, scheduler and sentry",
        [go, "build", "-v", "-trimpath", "-ldflags", _LDFLAGS, "-o", str(staging) + "/", *packages[1:]],
        src,
        go_env,
        count=_compiled,
    )
    version = daprd_version(staging / "daprd")
    if version != DAPR_VERSION:
        raise DaprError(f"the daprd just built reports version {version!r}, not {DAPR_VERSION}: {staging}")
    final = staging.with_name("bin")
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    progress.say(f"built Dapr {DAPR_VERSION} into {final}")
    return DaprBinaries(final, version, "build cache", final / SENTRY)


def _build_sentry(go: str, go_env: Mapping[str, str], src: Path, staging: Path, progress: _Progress) -> DaprBinaries:
    _module_copy(go, go_env, src, progress, "1/3")
    progress.run(
        "2/3 fetching the modules sentry needs",
        [go, "list", "-deps", "./cmd/sentry"],
        src,
        go_env,
        count=lambda line: line.startswith("go: downloading"),
        unit="modules downloaded",
    )
    _fresh(staging)
    progress.run(
        "3/3 compiling sentry",
        [go, "build", "-v", "-trimpath", "-ldflags", _LDFLAGS, "-o", str(staging / SENTRY), "./cmd/sentry"],
        src,
        go_env,
        count=_compiled,
    )
    final = staging.with_name("bin")
    final.mkdir(parents=True, exist_ok=True)
    (staging / SENTRY).replace(final / SENTRY)
    progress.say(f"built sentry {DAPR_VERSION} into {final}")
    return DaprBinaries(final, DAPR_VERSION, "build cache", final / SENTRY)


def _json_field(text: str, field: str) -> str:
    import json

    doc = json.loads(text)
    if doc.get("Error"):
        raise DaprError(f"the Go module proxy does not serve {MODULE}@v{DAPR_VERSION}: {doc['Error']}")
    return str(doc[field])


def _install_help(env: Mapping[str, str]) -> str:
    return INSTALL_HELP.format(
        minor=pinned_minor(), version=DAPR_VERSION, go=".".join(map(str, GO_MINIMUM)), cache=built_bin_dir(env=env)
    )
