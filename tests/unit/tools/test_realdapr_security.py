"""What a real-Dapr run decides about mTLS, access policies and history signing before anything starts: the
command lines (sentry, placement, scheduler and daprd with TLS), the Configuration it writes, the policy folders
it loads, and the one message it gives when a process could not get its certificate. Files only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from realdapr import RunError
from realdapr.binaries import DaprBinaries
from realdapr.commands import Mtls, control_plane_commands, daprd_command, daprd_environment, plan, sentry_command
from realdapr.failures import fatal_lines, startup_failure
from realdapr.ports import ControlPlanePorts
from realdapr.resources import policy_folders, write_config
from sidecar.template import AppSpec, RunTemplate

DAPR = DaprBinaries(Path("/dapr/bin"), "1.18.2", "test", Path("/dapr/bin/sentry"))
PORTS = ControlPlanePorts.from_bases(6050, 6060, 6070)


def mtls(tmp_path: Path) -> Mtls:
    anchors = tmp_path / "sentry" / "ca.crt"
    anchors.parent.mkdir(parents=True, exist_ok=True)
    anchors.write_text("-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n")
    return Mtls("127.0.0.1:6070", anchors)


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_placement_and_the_scheduler_get_their_certificates_from_sentry_with_mtls(tmp_path: Path) -> None:
    commands = control_plane_commands(DAPR, PORTS, tmp_path / "scheduler", mtls=mtls(tmp_path))
    for command in commands.values():
        assert "--tls-enabled=true" in command
        assert flag(command, "--sentry-address") == "127.0.0.1:6070"
        assert flag(command, "--trust-anchors-file") == str(tmp_path / "sentry" / "ca.crt")
        assert flag(command, "--trust-domain") == "localhost"
    scheduler = commands["scheduler"]
    # Its etcd peer certificate names dapr-scheduler-server-N: any other ID is refused with TLS.
    assert flag(scheduler, "--id") == "dapr-scheduler-server-0"
    assert flag(scheduler, "--etcd-initial-cluster") == f"dapr-scheduler-server-0=https://127.0.0.1:{PORTS.etcd_peer}"
    assert flag(scheduler, "--identity-directory-write") == str(tmp_path / "scheduler" / "identity")


def test_without_mtls_the_control_plane_runs_as_before_with_no_tls_flag(tmp_path: Path) -> None:
    commands = control_plane_commands(DAPR, PORTS, tmp_path / "scheduler")
    assert not any(arg.startswith(("--tls", "--sentry", "--trust")) for c in commands.values() for arg in c)
    assert flag(commands["scheduler"], "--id") == "dapr-scheduler-0"


def test_sentry_keeps_its_trust_root_in_the_run_data_and_gets_a_configuration_file(tmp_path: Path) -> None:
    command = sentry_command(DAPR, PORTS, tmp_path)
    assert command[0] == "/dapr/bin/sentry"
    assert flag(command, "--issuer-credentials") == str(tmp_path / "sentry")
    assert flag(command, "--port") == "6070" and flag(command, "--healthz-port") == "6071"
    assert Path(flag(command, "--config")).is_file()  # sentry refuses to start without one


def test_each_daprd_enables_mtls_trusts_the_root_and_loads_every_resources_folder(tmp_path: Path) -> None:
    security = mtls(tmp_path)
    app = AppSpec("payment", tmp_path, ("python", "-m", "payment"), app_port=8001)
    folders = [tmp_path / "resources", tmp_path / "policies"]
    command = daprd_command(app, DAPR, 3601, 3501, folders, None, PORTS, "info", mtls=security)
    assert "--enable-mtls" in command and flag(command, "--sentry-address") == "127.0.0.1:6070"
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--resources-path"] == [str(f) for f in folders]
    # daprd takes its trust anchors from this variable only (PEM text, not a path).
    assert daprd_environment({}, security)["DAPR_TRUST_ANCHORS"] == security.trust_anchors.read_text()
    assert "DAPR_TRUST_ANCHORS" not in daprd_environment({})


def test_a_run_with_mtls_starts_sentry_first_then_the_control_plane_then_the_daprds(tmp_path: Path) -> None:
    template = RunTemplate(tmp_path / "dapr.yaml", None, (AppSpec("a", tmp_path, ("true",)),))
    stages = plan(template, DAPR, [tmp_path], None, tmp_path, PORTS, {}, mtls=mtls(tmp_path)).stages
    assert [s.what for s in stages] == ["sentry", "the Dapr control plane", "daprd"]
    assert [launch.app_id for launch in stages[0].launches] == ["sentry"]
    assert [s.what for s in plan(template, DAPR, [tmp_path], None, tmp_path, PORTS, {}).stages] == [
        "the Dapr control plane",
        "daprd",
    ]


def test_the_configuration_of_a_run_with_mtls_turns_on_history_signing_and_the_templates_does_not(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"kind": "Configuration", "metadata": {"name": "wfconfig"}, "spec": {}}))
    template = RunTemplate(tmp_path / "dapr.yaml", None, (), (), config)
    signed = yaml.safe_load(write_config(template, tmp_path / "signed.yaml", signing=True).read_text())  # type: ignore[union-attr]
    assert signed["spec"]["features"] == [{"name": "WorkflowHistorySigning", "enabled": True}]
    plain = yaml.safe_load(write_config(template, tmp_path / "plain.yaml").read_text())  # type: ignore[union-attr]
    assert "features" not in plain["spec"]
    assert "features" not in yaml.safe_load(config.read_text())["spec"]  # what `dapr run -f` loads stays as it is


def test_the_access_policies_come_from_the_folder_given_else_from_access_policies_beside_the_resources(
    tmp_path: Path,
) -> None:
    components = tmp_path / "components"
    (components / "access-policies").mkdir(parents=True)
    template = RunTemplate(tmp_path / "dapr.yaml", None, (), (components,))
    assert policy_folders(template, None) == [components / "access-policies"]
    assert policy_folders(template, [components]) == [components]
    assert policy_folders(RunTemplate(tmp_path / "dapr.yaml", None, ()), None) == []
    with pytest.raises(RunError, match="no such folder"):
        policy_folders(template, [tmp_path / "missing"])


# Lines as daprd and placement 1.18.2 print them when stopped while waiting for their certificate.
DAPRD_REFUSED = (
    'time="2026-12-07T10:00:00Z" level=fatal msg="Fatal error from runtime: failed to retrieve the initial identity: '
    'error establishing connection to sentry: context canceled: connection error: desc = \\"transport: Error while '
    'dialing: dial tcp 127.0.0.1:6070: connect: connection refused\\"" app_id=payment scope=dapr.runtime type=log'
)
PLACEMENT_UNTRUSTED = (
    'time="2026-12-07T10:00:00Z" level=fatal msg="failed to retrieve the initial identity: error establishing '
    'connection to sentry: context canceled: connection error: desc = \\"transport: authentication handshake failed: '
    'x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority\\"" '
    "scope=dapr.placement type=log"
)


def test_a_process_that_could_not_get_its_certificate_is_named_with_its_own_reason() -> None:
    tails = {"sentry": ["level=info msg=ok"], "payment daprd": ["level=info msg=x", DAPRD_REFUSED]}
    assert startup_failure(tails, "127.0.0.1:6070") == (
        "payment daprd could not get a certificate from sentry at 127.0.0.1:6070: error establishing connection to "
        'sentry: context canceled: connection error: desc = "transport: Error while dialing: dial tcp '
        '127.0.0.1:6070: connect: connection refused"'
    )
    message = startup_failure({"placement": [PLACEMENT_UNTRUSTED]}, "127.0.0.1:6070")
    assert message is not None and message.endswith('x509: certificate signed by unknown authority"')


def test_a_fatal_line_without_a_certificate_problem_is_reported_as_it_is_and_silence_as_none() -> None:
    line = 'level=fatal msg="trust anchors do not verify the issuer" scope=dapr.sentry'
    assert fatal_lines(["level=info msg=a", line]) == ["trust anchors do not verify the issuer"]
    assert startup_failure({"sentry": [line]}, None) == "sentry could not start: trust anchors do not verify the issuer"
    assert startup_failure({"placement": ["level=info msg=waiting"]}, None) is None
