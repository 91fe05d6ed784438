"""Find or build the Dapr binaries this project runs on: daprd, placement and scheduler of one pinned release, and
sentry, the certificate authority that mTLS needs.

Order of preference: ``DAPR_BIN_DIR`` (when set it must hold a matching install), ``~/.dapr/bin`` (used when
``daprd --version`` is of the pinned minor release; any other version is reported and left alone), then our own
build cache, ``$DAPR_CACHE_DIR`` (default ``~/.cache/dapr-saga/``), filled by ``build()`` from Dapr's Go modules.
The cache keeps the layout the Dapr CLI expects of a runtime path (``<root>/.dapr/bin/daprd``). An install without
sentry (``dapr init`` installs none) gets the build cache's, which ``build(sentry_only=True)`` provides.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from . import DAPR_VERSION

BINARIES = ("daprd", "placement", "scheduler")  # what an install must hold
# mTLS's certificate authority: built with the others, taken from the build cache for an install that lacks it.
# It has no --version flag (its first log line names the version), so the daprd beside it vouches for it.
SENTRY = "sentry"
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


class DaprError(Exception):
    """Dapr cannot be used or built. The message says what to do."""


@dataclass(frozen=True)
class DaprBinaries:
    """A usable set of binaries: ``bin_dir`` holds daprd, placement and scheduler of ``version``; ``sentry`` is
    the sentry to run with them (beside them or in the build cache), None when there is none yet."""

    bin_dir: Path
    version: str
    source: str
    sentry: Path | None = None

    def path(self, name: str) -> str:
        if name == SENTRY:
            if self.sentry is None:
                raise DaprError(missing_sentry(self))
            return str(self.sentry)
        return str(self.bin_dir / name)


def missing_sentry(dapr: DaprBinaries) -> str:
    """What to do when a run with mTLS finds no sentry."""
    return (
        f"mTLS needs Dapr's sentry, and neither {dapr.bin_dir} nor the build cache has one (`dapr init` installs "
        f"none): run `make dapr`, which builds sentry {DAPR_VERSION} into {built_bin_dir()}; or run without mTLS "
        "(`python -m realdapr run --no-mtls`: no access policies, no history signing)"
    )


def cache_root(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("DAPR_CACHE_DIR"):
        return Path(env["DAPR_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path(env.get("HOME", "~")) / ".cache"
    return (base / "dapr-saga").expanduser()


def built_bin_dir(version: str = DAPR_VERSION, env: Mapping[str, str] = os.environ) -> Path:
    return cache_root(env) / f"dapr-{version}" / ".dapr" / "bin"


def daprd_version(daprd: Path) -> str | None:
    """What ``daprd --version`` prints (e.g. ``1.18.2``), or None if it does not run."""
    try:
        done = subprocess.run([str(daprd), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip().splitlines()[-1].strip() if done.stdout.strip() else None


def same_minor(version: str, pinned: str = DAPR_VERSION) -> bool:
    return version.split(".")[:2] == pinned.split(".")[:2]


def find(env: Mapping[str, str] = os.environ, warn: Callable[[str], None] | None = None) -> DaprBinaries | None:
    """The binaries to use, or None when only a build would provide them.

    Raises ``DaprError`` when ``DAPR_BIN_DIR`` is set but does not hold a matching install: a directory the
    user named is never skipped in silence. A non-matching ``~/.dapr/bin`` is reported through ``warn``.
    """
    explicit = env.get("DAPR_BIN_DIR")
    if explicit:
        found, problem = _check_dir(Path(explicit).expanduser(), "DAPR_BIN_DIR")
        if found is None:
            raise DaprError(
                f"DAPR_BIN_DIR={explicit}: {problem}. Point it at a Dapr {_minor()} install, or unset it "
                f"to use (or build with `make dapr`) Dapr {DAPR_VERSION}."
            )
        return _with_sentry(found, env)
    home = Path(env.get("HOME", "~")).expanduser() / ".dapr" / "bin"
    if (home / "daprd").exists():
        found, problem = _check_dir(home, "~/.dapr/bin")
        if found is not None:
            return _with_sentry(found, env)
        if warn:
            warn(f"not using ~/.dapr/bin: {problem}; this project needs Dapr {_minor()}")
    built, _ = _check_dir(built_bin_dir(env=env), "build cache", exact=True)
    return None if built is None else _with_sentry(built, env)


def _with_sentry(found: DaprBinaries, env: Mapping[str, str]) -> DaprBinaries:
    """``found`` with the sentry beside it, else the build cache's (same release), else none."""
    for candidate in (found.bin_dir / SENTRY, built_bin_dir(env=env) / SENTRY):
        if os.access(candidate, os.X_OK):
            return replace(found, sentry=candidate)
    return found


def _check_dir(bin_dir: Path, source: str, exact: bool = False) -> tuple[DaprBinaries | None, str]:
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        return None, f"{', '.join(missing)} missing in {bin_dir}"
    version = daprd_version(bin_dir / "daprd")
    if version is None:
        return None, f"{bin_dir / 'daprd'} --version fails"
    if not (version == DAPR_VERSION if exact else same_minor(version)):
        return None, f"{bin_dir / 'daprd'} is version {version}"
    return DaprBinaries(bin_dir, version, source), ""


def _minor() -> str:
    return ".".join(DAPR_VERSION.split(".")[:2])


# --- the build ------------------------------------------------------------------------------------------------


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
            f"{_minor()} another way and point DAPR_BIN_DIR at it."
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
        minor=_minor(), version=DAPR_VERSION, go=".".join(map(str, GO_MINIMUM)), cache=built_bin_dir(env=env)
    )
