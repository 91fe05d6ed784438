"""Find the Dapr binaries this project runs on: daprd, placement and scheduler of one pinned release, and sentry,
the certificate authority that mTLS needs.

Order of preference: ``DAPR_BIN_DIR`` (when set it must hold a matching install), ``~/.dapr/bin`` (used when
``daprd --version`` is of the pinned minor release; any other version is reported and left alone), then our own
build cache, ``$DAPR_CACHE_DIR`` (default ``~/.cache/dapr-saga/``), which ``build()`` of ``realdapr/build.py`` fills
from Dapr's Go modules. The cache keeps the layout the Dapr CLI expects of a runtime path (``<root>/.dapr/bin/daprd``).
An install without sentry (``dapr init`` installs none) gets the build cache's, which ``build(sentry_only=True)``
provides.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from . import DAPR_VERSION

BINARIES = ("daprd", "placement", "scheduler")  # what an install must hold
# mTLS's certificate authority: built with the others, taken from the build cache for an install that lacks it.
# It has no --version flag (its first log line names the version), so the daprd beside it vouches for it.
SENTRY = "sentry"


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
                f"DAPR_BIN_DIR={explicit}: {problem}. Point it at a Dapr {pinned_minor()} install, or unset it "
                f"to use (or build with `make dapr`) Dapr {DAPR_VERSION}."
            )
        return _with_sentry(found, env)
    home = Path(env.get("HOME", "~")).expanduser() / ".dapr" / "bin"
    if (home / "daprd").exists():
        found, problem = _check_dir(home, "~/.dapr/bin")
        if found is not None:
            return _with_sentry(found, env)
        if warn:
            warn(f"not using ~/.dapr/bin: {problem}; this project needs Dapr {pinned_minor()}")
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


def pinned_minor() -> str:
    """The minor release of ``DAPR_VERSION`` (e.g. ``1.18``), the one an install must be of."""
    return ".".join(DAPR_VERSION.split(".")[:2])
