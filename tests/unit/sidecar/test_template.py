"""Unit tests of the run-template reader: files written to a temporary folder, no process started."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sidecar.template import AppSpec, TemplateError, app_environment, find_executable, load_template
from tests.support import REPO

REALISTIC = """\
version: 1
name: shop
common:
  resourcesPaths: ["./components"]
  configFilePath: ./components/config.yaml
  appProtocol: http
  logLevel: debug
  env:
    FAULTS_ENABLED: true
    PYTHONUNBUFFERED: 1
    SHARED: common
apps:
  - appID: order-api
    appDirPath: .
    appPort: 8000
    daprHTTPPort: 3500
    daprGRPCPort: 50001
    command: ["python", "-m", "orchestrator"]
    appLogDestination: fileAndConsole
  - appID: payment
    appDirPath: ./services/payment
    appPort: 8001
    daprHTTPPort: 3501
    daprGRPCPort: 50002
    command: ["python", "-m", "payment"]
    env:
      SHARED: payment
"""


def write(folder: Path, text: str, name: str = "dapr.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "services" / "payment").mkdir(parents=True)
    return tmp_path


def test_a_realistic_template_gives_each_app_its_folder_ports_and_command(project: Path) -> None:
    template = load_template(write(project, REALISTIC))
    order, payment = template.apps
    assert template.name == "shop"
    assert order == AppSpec(
        app_id="order-api",
        app_dir=project.resolve(),
        command=("python", "-m", "orchestrator"),
        app_port=8000,
        grpc_port=50001,
        http_port=3500,
        app_protocol="http",
        app_channel_address="127.0.0.1",
        env={"FAULTS_ENABLED": "true", "PYTHONUNBUFFERED": "1", "SHARED": "common"},
    )
    assert payment.app_dir == (project / "services" / "payment").resolve()
    assert (payment.app_port, payment.grpc_port, payment.http_port) == (8001, 50002, 3501)


def test_the_project_template_is_read_without_error() -> None:
    template = load_template(REPO / "dapr.yaml")
    assert [app.app_id for app in template.apps] == ["order-api", "payment", "inventory", "shipping", "notification"]


def test_a_folder_is_read_through_the_dapr_yaml_inside_it(project: Path) -> None:
    write(project, REALISTIC)
    assert load_template(project).path == project / "dapr.yaml"


def test_paths_are_relative_to_the_template_not_the_working_directory(project: Path, monkeypatch) -> None:
    write(project, REALISTIC)
    monkeypatch.chdir(project / "services")
    assert load_template(project / "dapr.yaml").apps[1].app_dir == (project / "services" / "payment").resolve()


def test_a_missing_app_id_defaults_to_the_folder_name_and_missing_ports_to_free_ones(project: Path) -> None:
    path = write(
        project,
        """\
        apps:
          - appDirPath: services/payment
            command: ["python", "app.py"]
        """,
    )
    (app,) = load_template(path).apps
    assert app.app_id == "payment"
    assert (app.app_port, app.grpc_port, app.http_port) == (0, 0, 0)
    assert app.app_protocol == "http"


def test_an_apps_env_overrides_common_env_and_its_protocol_overrides_common(project: Path) -> None:
    path = write(
        project,
        """\
        common:
          appProtocol: grpc
          env: {A: common-a, B: common-b}
        apps:
          - appID: x
            appDirPath: .
            appProtocol: h2c
            command: ["python"]
            env: {B: app-b, C: app-c}
          - appID: y
            appDirPath: .
            command: ["python"]
        """,
    )
    x, y = load_template(path).apps
    assert x.env == {"A": "common-a", "B": "app-b", "C": "app-c"}
    assert x.app_protocol == "h2c"
    assert y.env == {"A": "common-a", "B": "common-b"}
    assert y.app_protocol == "grpc"


def test_the_environment_layers_parent_then_dapr_variables_then_template_env(project: Path) -> None:
    app = AppSpec(
        app_id="payment",
        app_dir=project,
        command=("python",),
        app_port=8001,
        env={"DAPR_HTTP_PORT": "9999", "FROM_TEMPLATE": "t", "KEEP": "template"},
    )
    env = app_environment(app, 50002, 3501, {"PATH": "/usr/bin", "KEEP": "parent", "HOME": "/h"}, "/venv/bin")
    assert env == {
        "PATH": "/venv/bin:/usr/bin",
        "HOME": "/h",
        "KEEP": "template",
        "APP_ID": "payment",
        "APP_PORT": "8001",
        "DAPR_GRPC_PORT": "50002",
        "DAPR_HTTP_PORT": "9999",
        "APP_PROTOCOL": "http",
        "APP_CHANNEL_ADDRESS": "127.0.0.1",
        "FROM_TEMPLATE": "t",
    }


def test_app_port_is_left_out_of_the_environment_when_the_app_has_none(project: Path) -> None:
    app = AppSpec(app_id="worker", app_dir=project, command=("python",))
    assert "APP_PORT" not in app_environment(app, 1, 2, {}, "/venv/bin")


def test_a_command_is_looked_up_on_the_apps_path_or_relative_to_its_folder(project: Path) -> None:
    script = project / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    env = {"PATH": str(project)}
    assert find_executable(AppSpec("a", project, ("run.sh",)), env) == str(script)
    assert find_executable(AppSpec("a", project, ("./run.sh",)), {"PATH": ""}) == str(project / "./run.sh")
    assert find_executable(AppSpec("a", project, ("no-such-program",)), env) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apps: [\n  - appID: x\n    command: [python\n", "malformed YAML"),
        ("- just\n- a list\n", "the template must be a map"),
        ("version: 1\n", "no apps"),
        ("apps: []\n", "no apps"),
        ("common: [1]\napps: [{appID: x, appDirPath: ., command: [python]}]\n", "'common' must be a map"),
        ("apps: [{appID: x, command: [python]}]\n", "apps[0] has no appDirPath"),
        (
            "apps: [{appID: x, appDirPath: ./nowhere, command: [python]}]\n",
            "app 'x': appDirPath './nowhere' is not a folder",
        ),
        ("apps: [{appID: x, appDirPath: .}]\n", "app 'x' has no command"),
        ("apps: [{appID: x, appDirPath: ., command: []}]\n", "app 'x' has no command"),
        ("apps: [{appID: x, appDirPath: ., command: python app.py}]\n", "app 'x': command must be a list of strings"),
        (
            "apps: [{appID: x, appDirPath: ., command: [python]}, {appID: x, appDirPath: ., command: [python]}]\n",
            "appID 'x' is used by two apps",
        ),
        (
            "apps: [{appID: x, appDirPath: ., daprGRPCPort: 50001, command: [python]},"
            " {appID: y, appDirPath: ., appPort: 50001, command: [python]}]\n",
            "port 50001 is used twice (app 'x' daprGRPCPort and app 'y' appPort)",
        ),
        (
            "apps: [{appID: x, appDirPath: ., appPort: 70000, command: [python]}]\n",
            "app 'x': appPort must be a port number",
        ),
        ("apps: [{appID: x, appDirPath: ., daprHTTPPort: '3500', command: [python]}]\n", "daprHTTPPort must be a port"),
        ("apps: [{appID: x, appDirPath: ., env: [A=1], command: [python]}]\n", "app 'x': env must be a map"),
        ("common: {env: [A=1]}\napps: [{appID: x, appDirPath: ., command: [python]}]\n", "common.env must be a map"),
        (
            "apps: [{appID: x, appDirPath: ., env: {A: {b: 1}}, command: [python]}]\n",
            "the value of 'A' must be a string",
        ),
    ],
)
def test_a_bad_template_is_refused_with_one_line_naming_the_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TemplateError) as raised:
        load_template(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_a_missing_file_or_a_folder_without_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such file"):
        load_template(tmp_path / "absent.yaml")
    with pytest.raises(TemplateError, match=r"no dapr\.yaml in this folder"):
        load_template(tmp_path)


def test_the_restart_wrapper_the_dapr_cli_needs_is_unwrapped_for_the_runners_which_restart_apps_themselves(
    project: Path,
) -> None:
    template = load_template(
        write(
            project,
            """\
            version: 1
            apps:
              - appID: payment
                appDirPath: .
                command: ["python", "-m", "sidecar.restarting", "--", "python", "-m", "payment"]
              - appID: other
                appDirPath: .
                command: ["python", "-m", "sidecar.restarting", "-x"]
            """,
        )
    )
    assert [app.command for app in template.apps] == [
        ("python", "-m", "payment"),
        ("python", "-m", "sidecar.restarting", "-x"),
    ]
    # The repository's own template wraps every app (for `dapr run -f`); the runners see the app itself.
    assert [app.command for app in load_template(REPO).apps][1] == ("python", "-m", "payment")
