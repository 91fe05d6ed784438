"""What the Dapr 1.18.2 sidecar injector makes of a pod template's ``dapr.io/*`` annotations: daprd's flags, the
environment it gives the app container, and daprd's probes (pkg/injector/patcher: SidecarConfig's struct tags and
getSidecarContainer). Pure: the cluster runner decides the rest (addresses, mTLS, resource folders).

Every annotation the injector reads is listed in ``ANNOTATIONS`` with its default. One it does not read is an
error (``InjectorError``), and so is one the injector reads that the cluster cannot honour (``NOT_HONOURED``: a
container image, volumes, Kubernetes secrets, pluggable components, a debugger): a manifest that says something the
cluster would silently not do must fail, not run as something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRUTHY = frozenset({"y", "yes", "true", "t", "on", "1"})  # dapr/kit's strings.IsTruthy
SIDECAR_HTTP_PORT = 3500  # injector constants, no annotation
SIDECAR_PUBLIC_PORT = 3501

# annotation -> (field, type, default), the defaults of SidecarConfig's `default:` tags
ANNOTATIONS: dict[str, tuple[str, type, Any]] = {
    "dapr.io/enabled": ("enabled", bool, False),
    "dapr.io/app-port": ("app_port", int, 0),
    "dapr.io/config": ("config", str, ""),
    "dapr.io/app-protocol": ("app_protocol", str, "http"),
    "dapr.io/app-ssl": ("app_ssl", bool, False),
    "dapr.io/app-id": ("app_id", str, ""),
    "dapr.io/enable-profiling": ("enable_profiling", bool, False),
    "dapr.io/log-level": ("log_level", str, "info"),
    "dapr.io/api-token-secret": ("api_token_secret", str, ""),
    "dapr.io/app-token-secret": ("app_token_secret", str, ""),
    "dapr.io/log-as-json": ("log_as_json", bool, False),
    "dapr.io/app-max-concurrency": ("app_max_concurrency", int, None),
    "dapr.io/enable-metrics": ("enable_metrics", bool, True),
    "dapr.io/metrics-port": ("metrics_port", int, 9090),
    "dapr.io/enable-debug": ("enable_debug", bool, False),
    "dapr.io/debug-port": ("debug_port", int, 40000),
    "dapr.io/env": ("env", str, ""),
    "dapr.io/env-from-secret": ("env_from_secret", str, ""),
    "dapr.io/grpc-port": ("grpc_port", int, 50001),
    "dapr.io/internal-grpc-port": ("internal_grpc_port", int, 50002),
    "dapr.io/sidecar-cpu-request": ("cpu_request", str, ""),
    "dapr.io/sidecar-cpu-limit": ("cpu_limit", str, ""),
    "dapr.io/sidecar-memory-request": ("memory_request", str, ""),
    "dapr.io/sidecar-memory-limit": ("memory_limit", str, ""),
    "dapr.io/sidecar-listen-addresses": ("listen_addresses", str, "[::1],127.0.0.1"),
    "dapr.io/sidecar-liveness-probe-delay-seconds": ("liveness_delay", int, 180),
    "dapr.io/sidecar-liveness-probe-timeout-seconds": ("liveness_timeout", int, 3),
    "dapr.io/sidecar-liveness-probe-period-seconds": ("liveness_period", int, 10),
    "dapr.io/sidecar-liveness-probe-threshold": ("liveness_threshold", int, 5),
    "dapr.io/sidecar-readiness-probe-delay-seconds": ("readiness_delay", int, 1),
    "dapr.io/sidecar-readiness-probe-timeout-seconds": ("readiness_timeout", int, 1),
    "dapr.io/sidecar-readiness-probe-period-seconds": ("readiness_period", int, 1),
    "dapr.io/sidecar-readiness-probe-threshold": ("readiness_threshold", int, 5),
    "dapr.io/sidecar-image": ("sidecar_image", str, ""),
    "dapr.io/sidecar-seccomp-profile-type": ("seccomp", str, ""),
    "dapr.io/http-max-request-size": ("http_max_request_size", int, None),
    "dapr.io/max-body-size": ("max_body_size", str, ""),
    "dapr.io/http-read-buffer-size": ("http_read_buffer_size", int, None),
    "dapr.io/read-buffer-size": ("read_buffer_size", str, ""),
    "dapr.io/graceful-shutdown-seconds": ("graceful_shutdown_seconds", int, -1),
    "dapr.io/block-shutdown-duration": ("block_shutdown_duration", str, None),
    "dapr.io/enable-api-logging": ("enable_api_logging", bool, None),
    "dapr.io/unix-domain-socket-path": ("uds_path", str, ""),
    "dapr.io/volume-mounts": ("volume_mounts", str, ""),
    "dapr.io/volume-mounts-rw": ("volume_mounts_rw", str, ""),
    "dapr.io/disable-builtin-k8s-secret-store": ("disable_k8s_secret_store", bool, False),
    "dapr.io/enable-app-health-check": ("enable_app_health_check", bool, False),
    "dapr.io/app-health-check-path": ("app_health_check_path", str, "/healthz"),
    "dapr.io/app-health-probe-interval": ("app_health_probe_interval", int, 5),
    "dapr.io/app-health-probe-timeout": ("app_health_probe_timeout", int, 500),
    "dapr.io/app-health-threshold": ("app_health_threshold", int, 3),
    "dapr.io/placement-host-address": ("placement_address", str, ""),
    "dapr.io/actors-disseminate-timeout": ("actors_disseminate_timeout", str, None),
    "dapr.io/scheduler-host-address": ("scheduler_address", str, None),
    "dapr.io/pluggable-components": ("pluggable_components", str, ""),
    "dapr.io/pluggable-components-sockets-folder": ("pluggable_sockets_folder", str, ""),
    "dapr.io/component-container": ("component_container", str, ""),
    "dapr.io/inject-pluggable-components": ("inject_pluggable_components", bool, False),
    "dapr.io/app-channel-address": ("app_channel_address", str, ""),
    "dapr.io/sentry-request-jwt-audiences": ("sentry_jwt_audiences", str, ""),
    "dapr.io/sidecar-svc-annotations": ("sidecar_svc_annotations", str, ""),
    "dapr.io/disable-init-endpoints": ("disable_init_endpoints", str, None),
    "dapr.io/enable-native-sidecar": ("enable_native_sidecar", bool, False),
}
# Read by the injector, but about what only Kubernetes has: the cluster refuses a manifest that sets them.
NOT_HONOURED = frozenset(
    {
        "dapr.io/api-token-secret",
        "dapr.io/app-token-secret",
        "dapr.io/env-from-secret",
        "dapr.io/enable-debug",
        "dapr.io/unix-domain-socket-path",
        "dapr.io/volume-mounts",
        "dapr.io/volume-mounts-rw",
        "dapr.io/pluggable-components",
        "dapr.io/pluggable-components-sockets-folder",
        "dapr.io/component-container",
        "dapr.io/inject-pluggable-components",
        "dapr.io/placement-host-address",
        "dapr.io/scheduler-host-address",
    }
)
# Only shape the sidecar container (its image, resources, seccomp, Service): nothing a process here has.
CONTAINER_ONLY = frozenset(
    {
        "dapr.io/sidecar-image",
        "dapr.io/sidecar-cpu-request",
        "dapr.io/sidecar-cpu-limit",
        "dapr.io/sidecar-memory-request",
        "dapr.io/sidecar-memory-limit",
        "dapr.io/sidecar-seccomp-profile-type",
        "dapr.io/sidecar-svc-annotations",
        "dapr.io/enable-native-sidecar",
    }
)


class InjectorError(ValueError):
    """A pod template's annotations that the cluster cannot run as Kubernetes would."""


@dataclass(frozen=True)
class Probe:
    """daprd's readiness or liveness probe as the injector writes it."""

    delay: int
    timeout: int
    period: int
    threshold: int


@dataclass(frozen=True)
class Sidecar:
    """A pod template's sidecar, as the injector reads its annotations."""

    values: dict[str, Any]

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, str], workload: str) -> Sidecar:
        values = {name: default for name, _, default in ANNOTATIONS.values()}
        for key, raw in annotations.items():
            if not key.startswith("dapr.io/"):
                continue
            if key not in ANNOTATIONS:
                raise InjectorError(f"{workload}: {key} is not an annotation the Dapr 1.18 injector reads")
            if key in NOT_HONOURED:
                raise InjectorError(f"{workload}: {key} needs Kubernetes; the cluster run cannot honour it")
            name, kind, _ = ANNOTATIONS[key]
            text = str(raw).strip()
            if kind is bool:
                values[name] = text.lower() in TRUTHY
            elif kind is int:
                try:
                    values[name] = int(text, 10)
                except ValueError:
                    raise InjectorError(f"{workload}: {key}={raw!r} is not an integer") from None
            else:
                values[name] = text
        if values["enabled"] and not values["app_id"]:
            raise InjectorError(f"{workload}: no dapr.io/app-id (the injector would use the pod's name)")
        return cls(values)

    @property
    def enabled(self) -> bool:
        return bool(self.values["enabled"])

    @property
    def app_id(self) -> str:
        return str(self.values["app_id"])

    @property
    def config(self) -> str:
        return str(self.values["config"])

    def daprd_flags(self) -> list[str]:
        """daprd's flags from the annotations (without the cluster's: mode, addresses, mTLS, resources, config)."""
        v = self.values
        flags = [
            "--dapr-http-port",
            str(SIDECAR_HTTP_PORT),
            "--dapr-grpc-port",
            str(v["grpc_port"]),
            "--dapr-internal-grpc-port",
            str(v["internal_grpc_port"]),
            "--dapr-public-port",
            str(SIDECAR_PUBLIC_PORT),
            "--app-id",
            v["app_id"],
            "--app-protocol",
            v["app_protocol"],
            "--log-level",
            v["log_level"],
            "--dapr-graceful-shutdown-seconds",
            str(v["graceful_shutdown_seconds"]),
        ]
        if v["app_port"] > 0:
            flags += ["--app-port", str(v["app_port"])]
        if v["enable_metrics"]:
            flags += ["--enable-metrics", "--metrics-port", str(v["metrics_port"])]
        if v["app_channel_address"]:
            flags += ["--app-channel-address", v["app_channel_address"]]
        if v["sentry_jwt_audiences"]:
            flags += ["--sentry-request-jwt-audiences", v["sentry_jwt_audiences"]]
        if v["enable_api_logging"] is not None:
            flags += [f"--enable-api-logging={str(v['enable_api_logging']).lower()}"]
        if v["disable_k8s_secret_store"]:
            flags += ["--disable-builtin-k8s-secret-store"]
        if v["enable_app_health_check"]:
            flags += [
                "--enable-app-health-check",
                "--app-health-check-path",
                v["app_health_check_path"],
                "--app-health-probe-interval",
                str(v["app_health_probe_interval"]),
                "--app-health-probe-timeout",
                str(v["app_health_probe_timeout"]),
                "--app-health-threshold",
                str(v["app_health_threshold"]),
            ]
        for flag, name in (("--log-as-json", "log_as_json"), ("--enable-profiling", "enable_profiling")):
            if v[name]:
                flags.append(flag)
        if v["app_ssl"]:
            flags.append("--app-ssl")
        optional = (
            ("--app-max-concurrency", "app_max_concurrency"),
            ("--dapr-http-max-request-size", "http_max_request_size"),
            ("--dapr-http-read-buffer-size", "http_read_buffer_size"),
            ("--dapr-block-shutdown-duration", "block_shutdown_duration"),
            ("--actors-disseminate-timeout", "actors_disseminate_timeout"),
            ("--disable-init-endpoints", "disable_init_endpoints"),
        )
        for flag, name in optional:
            if v[name] is not None:
                flags += [flag, str(v[name])]
        for flag, name in (("--max-body-size", "max_body_size"), ("--read-buffer-size", "read_buffer_size")):
            if v[name]:
                flags += [flag, v[name]]
        return flags

    def listen_addresses(self) -> list[str]:
        """Where daprd's API listens (``dapr.io/sidecar-listen-addresses``; IPv6 literals keep their brackets)."""
        return [a.strip() for a in str(self.values["listen_addresses"]).split(",") if a.strip()]

    def app_env(self) -> dict[str, str]:
        """What the injector puts into the app container's environment."""
        env = {"DAPR_HTTP_PORT": str(SIDECAR_HTTP_PORT), "DAPR_GRPC_PORT": str(self.values["grpc_port"])}
        protocol = str(self.values["app_protocol"]).lower()
        if self.values["app_ssl"] and protocol in ("http", "grpc"):
            protocol += "s"
        if protocol in ("http", "https", "grpc", "grpcs", "h2c"):
            env["APP_PROTOCOL"] = protocol
        return env

    def readiness(self) -> Probe:
        v = self.values
        return Probe(v["readiness_delay"], v["readiness_timeout"], v["readiness_period"], v["readiness_threshold"])

    def liveness(self) -> Probe:
        v = self.values
        return Probe(v["liveness_delay"], v["liveness_timeout"], v["liveness_period"], v["liveness_threshold"])
