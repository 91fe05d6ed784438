"""The sidecar's command line as a user runs it: `python -m sidecar run|serve` in a subprocess, with
tiny app scripts written by each test (real processes, real signals, real listeners)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from sidecar.supervisor import Backoff, Launch, Supervisor
from tests.support import REPO

TIMEOUT = 15.0


class Runner:
    """`python -m sidecar ...` in a subprocess, its stdout and stderr collected line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._collect, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, lines: list[str] | None = None, count: int = 1) -> list[str]:
        """The lines (stdout and stderr unless ``lines`` is given) holding ``text``, once there are ``count``."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            found = [line for line in (lines if lines is not None else self.out + self.err) if text in line]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the readers drain what the runner printed last
                found = [line for line in (lines if lines is not None else self.out + self.err) if text in line]
                if len(found) >= count:
                    return found
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} x{count} not seen; stdout={self.out} stderr={self.err}")

    def finish(self, timeout: float = TIMEOUT) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(2)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def runners():
    started: list[Runner] = []
    yield started
    for runner in started:
        runner.kill()


# An app that ignores SIGTERM: only a kill stops it.
STUBBORN = """\
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("pid", os.getpid(), flush=True)
time.sleep(60)
"""

# An app that says its pid, then waits: what a SIGKILLed runner must not leave behind.
SLEEPER = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(60)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def template(folder: Path, text: str) -> Path:
    path = folder / "dapr.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def one_app_template(folder: Path, app_id: str, body: str) -> Path:
    """A template of one app, ``app_id``, running the script ``body`` from ``folder``."""
    script(folder, f"{app_id}.py", body)
    return template(folder, f'apps:\n  - {{appID: {app_id}, appDirPath: ., command: ["python", "{app_id}.py"]}}\n')


def run(runners: list[Runner], folder: Path, *extra: str) -> Runner:
    runner = Runner("run", "-f", str(folder / "dapr.yaml"), "--state", str(folder / "state.db"), *extra, cwd=folder)
    runners.append(runner)
    return runner


def group_alive(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


ENV_DUMP = """\
    import json, os, socket, sys
    # Connecting proves the sidecar listened before the app was started.
    socket.create_connection(("127.0.0.1", int(os.environ["DAPR_GRPC_PORT"])), timeout=2).close()
    names = ["APP_ID", "APP_PORT", "DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "APP_PROTOCOL", "APP_CHANNEL_ADDRESS",
             "SHARED", "ONLY_COMMON", "ONLY_APP", "FROM_PARENT"]
    env = {name: os.environ.get(name) for name in names}
    env["cwd"] = os.getcwd()
    env["python"] = sys.executable
    env["path0"] = os.environ["PATH"].split(os.pathsep)[0]
    print(json.dumps(env), flush=True)
    sys.stdout.write("half a line, "); sys.stdout.flush()
    sys.stdout.write("then the rest\\nsecond line\\n"); sys.stdout.flush()
    print("on stderr", file=sys.stderr, flush=True)
    import time; time.sleep(60)
"""


def test_each_app_gets_the_dapr_run_environment_and_its_output_is_prefixed(
    tmp_path: Path, runners, monkeypatch
) -> None:
    (tmp_path / "svc").mkdir()
    script(tmp_path / "svc", "app.py", ENV_DUMP)
    grpc, http, app_port = free_port(), free_port(), free_port()
    template(
        tmp_path,
        f"""\
        version: 1
        common:
          env: {{SHARED: common, ONLY_COMMON: "yes"}}
        apps:
          - appID: fixed
            appDirPath: svc
            appPort: {app_port}
            daprGRPCPort: {grpc}
            daprHTTPPort: {http}
            appProtocol: grpc
            command: ["python", "app.py"]
            env: {{SHARED: app, ONLY_APP: 1}}
          - appDirPath: svc
            command: ["python", "app.py"]
            someFutureKey: ignored
        """,
    )
    monkeypatch.setenv("FROM_PARENT", "inherited")
    runner = run(runners, tmp_path)
    fixed = json.loads(runner.wait_for("[fixed] {", runner.out)[0].removeprefix("[fixed] "))
    default = json.loads(runner.wait_for("[svc] {", runner.out)[0].removeprefix("[svc] "))
    venv_bin = os.path.dirname(sys.executable)
    assert fixed == {
        "APP_ID": "fixed",
        "APP_PORT": str(app_port),
        "DAPR_HTTP_PORT": str(http),
        "DAPR_GRPC_PORT": str(grpc),
        "APP_PROTOCOL": "grpc",
        "APP_CHANNEL_ADDRESS": "127.0.0.1",
        "SHARED": "app",
        "ONLY_COMMON": "yes",
        "ONLY_APP": "1",
        "FROM_PARENT": "inherited",
        "cwd": str((tmp_path / "svc").resolve()),
        "python": os.path.join(venv_bin, "python"),
        "path0": venv_bin,
    }
    assert default["APP_ID"] == "svc" and default["APP_PORT"] is None and default["APP_PROTOCOL"] == "http"
    assert default["SHARED"] == "common" and default["ONLY_APP"] is None
    assert {default["DAPR_GRPC_PORT"], default["DAPR_HTTP_PORT"]}.isdisjoint({None, str(grpc), str(http)})
    assert runner.wait_for("[fixed] half a line, then the rest", runner.out)
    assert runner.wait_for("[fixed] second line", runner.out)
    assert runner.wait_for("[svc] on stderr", runner.err)
    assert not [line for line in runner.err if "exited" in line]  # both reached the sidecar at the first start
    runner.proc.send_signal(signal.SIGINT)
    assert runner.finish() == 0
    assert all(line.startswith(("[fixed] ", "[svc] ")) for line in runner.out), runner.out
    assert all(line.startswith(("[fixed] ", "[svc] ", "[sidecar] ")) for line in runner.err), runner.err


def test_an_app_that_crashes_is_restarted_with_a_growing_delay(tmp_path: Path, runners) -> None:
    script(
        tmp_path,
        "crash.py",
        """\
        import os
        with open("starts.log", "a") as log:
            log.write("start\\n")
        os._exit(70)
    """,
    )
    template(
        tmp_path,
        """\
        apps:
          - appID: crashy
            appDirPath: .
            command: ["python", "crash.py"]
        """,
    )
    runner = run(runners, tmp_path)
    restarts = runner.wait_for("app crashy exited with code 70", runner.err, count=3)
    assert [line.split("restarting in ")[1] for line in restarts[:3]] == ["0.5 s", "1.0 s", "2.0 s"]
    assert (tmp_path / "starts.log").read_text().count("start") >= 3
    runner.proc.send_signal(signal.SIGTERM)
    assert runner.finish() == 0


APP_WITH_CHILD = """\
    import os, signal, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    def bye(signum, frame):
        print("got SIGTERM", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
    print(f"pids {os.getpid()} {child.pid}", flush=True)
    time.sleep(60)
"""


def test_sigterm_stops_every_app_and_its_children_and_exits_zero(tmp_path: Path, runners) -> None:
    script(tmp_path, "app.py", APP_WITH_CHILD)
    template(
        tmp_path,
        """\
        apps:
          - {appID: one, appDirPath: ., command: ["python", "app.py"]}
          - {appID: two, appDirPath: ., command: ["python", "app.py"]}
        """,
    )
    runner = run(runners, tmp_path)
    leaders = [int(runner.wait_for(f"[{app}] pids", runner.out)[0].split()[2]) for app in ("one", "two")]
    assert all(len(group_alive(pgid)) == 2 for pgid in leaders)  # the app and its child, in its own group
    runner.proc.send_signal(signal.SIGTERM)
    assert runner.finish() == 0
    assert runner.wait_for("got SIGTERM", runner.out, count=2)
    assert [group_alive(pgid) for pgid in leaders] == [[], []]


def test_a_sigkilled_runner_leaves_no_app_running(tmp_path: Path, runners, monkeypatch) -> None:
    # The runner runs in tmp_path: make it import this checkout's sidecar, not whichever one is installed.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    # Nothing can be handed on by a runner that is SIGKILLed: its apps, each in a session of its own, must die
    # with it (the kernel's parent-death signal), or they hold their ports against the runner's restart.
    template(
        tmp_path,
        "apps:\n"
        + "".join(
            f"  - {{appID: {name}, appDirPath: ., command: [python, -c, {SLEEPER!r}]}}\n" for name in ("one", "two")
        ),
    )
    runner = run(runners, tmp_path)
    apps = [psutil.Process(int(runner.wait_for(f"[{app}] pid", runner.out)[0].split()[2])) for app in ("one", "two")]
    runner.proc.kill()
    runner.finish()
    _, alive = psutil.wait_procs(apps, timeout=TIMEOUT)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []


def test_a_second_stop_request_kills_an_app_that_ignores_sigterm_at_once(tmp_path: Path, runners) -> None:
    one_app_template(tmp_path, "stubborn", STUBBORN)
    runner = run(runners, tmp_path)
    pgid = int(runner.wait_for("[stubborn] pid", runner.out)[0].split()[2])
    runner.proc.send_signal(signal.SIGINT)
    runner.wait_for("SIGTERM to process group", runner.err)
    assert group_alive(pgid)
    started = time.monotonic()
    runner.proc.send_signal(signal.SIGINT)
    assert runner.finish() == 128 + signal.SIGINT
    assert time.monotonic() - started < 5
    assert group_alive(pgid) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apps: []\n", "no apps"),
        (
            "apps: [{appID: a, appDirPath: ., command: [python, marker.py]}, "
            "{appID: a, appDirPath: ., command: [python]}]\n",
            "appID 'a' is used by two apps",
        ),
        (
            "apps: [{appID: a, appDirPath: ., command: [python, marker.py]}, {appID: b, appDirPath: .}]\n",
            "app 'b' has no command",
        ),
        (
            "apps: [{appID: a, appDirPath: ., command: [python, marker.py]}, "
            "{appID: b, appDirPath: ., command: [no-such-prog]}]\n",
            "app 'b': command 'no-such-prog' not found",
        ),
        ("apps: [{appID: a, appDirPath: ., env: [X=1], command: [python, marker.py]}]\n", "app 'a': env must be a map"),
        ("apps: [\n  {appID: a\n", "malformed YAML"),
    ],
)
def test_a_bad_template_exits_non_zero_with_one_line_and_starts_nothing(
    tmp_path: Path, text: str, message: str
) -> None:
    script(tmp_path, "marker.py", "open('started', 'w').close()\n")
    path = tmp_path / "dapr.yaml"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "run", "-f", str(path), "--state", str(tmp_path / "state.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"[sidecar] error: {path}: ") and message in line
    assert not (tmp_path / "started").exists() and not (tmp_path / "state.db").exists()


def test_a_missing_template_file_is_named_in_the_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "run", "-f", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (done.returncode, done.stderr.strip()) == (1, f"[sidecar] error: {tmp_path}: no dapr.yaml in this folder")


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        (["order-api"], "expected APP_ID=PORT[:HTTP_PORT]"),
        (["=5000"], "expected APP_ID=PORT[:HTTP_PORT]"),
        (["order-api=port"], "'port' is not a port number"),
        (["order-api=5000:70000"], "'70000' is not a port number"),
        (["order-api=5000", "order-api=5001"], "app ID 'order-api' is given twice"),
        (["order-api=5000:5001", "payment=5001"], "port 5001 is given twice"),
    ],
)
def test_serve_refuses_a_bad_app_argument_with_exit_code_2(tmp_path: Path, apps: list[str], message: str) -> None:
    args = [arg for app in apps for arg in ("--app", app)]
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "serve", *args], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 2
    assert "python -m sidecar serve: error: argument --app: " in done.stderr and message in done.stderr
    assert not (tmp_path / ".sidecar").exists()


def serve(runners: list[Runner], folder: Path, *args: str) -> Runner:
    runner = Runner("serve", *args, cwd=folder)
    runners.append(runner)
    return runner


def test_serve_answers_an_sdk_client_on_each_apps_port_and_dapr_health_on_http(tmp_path: Path, runners) -> None:
    import httpx
    from dapr.ext.workflow import DaprWorkflowClient

    order_grpc, order_http, payment_grpc = free_port(), free_port(), free_port()
    runner = serve(
        runners, tmp_path, "--app", f"order-api={order_grpc}:{order_http}", "--app", f"payment={payment_grpc}"
    )
    runner.wait_for("ready", runner.err)
    for port in (order_grpc, payment_grpc):
        client = DaprWorkflowClient(host="127.0.0.1", port=str(port))
        try:
            assert client.get_workflow_state("nope") is None
        finally:
            client.close()
    assert httpx.get(f"http://127.0.0.1:{order_http}/v1.0/healthz").status_code == 204
    runner.proc.send_signal(signal.SIGTERM)
    assert runner.finish() == 0
    assert (tmp_path / ".sidecar" / "state.db").is_file()  # the default, under the working directory


def test_serve_refuses_a_corrupt_state_file_and_leaves_it_as_it_was(tmp_path: Path, runners) -> None:
    state = tmp_path / "state.db"
    state.write_bytes(b"not a database, but somebody's data" * 100)
    runner = serve(runners, tmp_path, "--app", f"a={free_port()}", "--state", str(state))
    assert runner.finish() == 1
    (error,) = runner.wait_for(f"state file {state}", runner.err)
    assert error.startswith("[sidecar] ") and "ERROR" in error and "left as it is" in error
    assert not [line for line in runner.err if "Traceback" in line]
    assert state.read_bytes() == b"not a database, but somebody's data" * 100


def test_serve_says_which_port_is_taken_and_exits_non_zero(tmp_path: Path, runners) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = serve(runners, tmp_path, "--app", f"a={port}", "--state", str(tmp_path / "state.db"))
        assert runner.finish() == 1
    (error,) = runner.wait_for("[sidecar] ", runner.err)
    assert "ERROR cannot start" in error and f"127.0.0.1:{port}" in error
    assert not [line for line in runner.err if "Traceback" in line]


def test_the_restart_delay_doubles_up_to_ten_seconds_and_resets_after_a_stable_run() -> None:
    backoff = Backoff()
    assert [backoff.after_exit(ran_for=1.0) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.after_exit(ran_for=31.0) == 0.5
    assert backoff.after_exit(ran_for=1.0) == 1.0


async def test_an_app_that_ignores_sigterm_is_killed_when_the_grace_period_ends(tmp_path: Path) -> None:
    script(tmp_path, "stubborn.py", STUBBORN)
    out, err = io.BytesIO(), io.BytesIO()
    launch = Launch("stubborn", [sys.executable, "stubborn.py"], tmp_path, dict(os.environ))
    supervisor = Supervisor([launch], grace=0.5, out=out, err=err)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    deadline = time.monotonic() + TIMEOUT
    while b"[stubborn] pid" not in out.getvalue():
        assert time.monotonic() < deadline, err.getvalue()
        await asyncio.sleep(0.05)
    pgid = int(out.getvalue().split()[2])
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(running, TIMEOUT)
    assert 0.5 <= time.monotonic() - started < 3
    assert group_alive(pgid) == []


async def test_a_restart_stops_the_app_with_sigterm_then_sigkill_after_the_grace_and_starts_it_again(
    tmp_path: Path,
) -> None:
    # What the watchdog does to a wedged daprd, as a Kubernetes liveness failure would.
    script(tmp_path, "stubborn.py", STUBBORN)
    script(tmp_path, "polite.py", SLEEPER)
    out, err = io.BytesIO(), io.BytesIO()
    launches = [
        Launch(name, [sys.executable, f"{name}.py"], tmp_path, dict(os.environ)) for name in ("stubborn", "polite")
    ]
    supervisor = Supervisor(launches, grace=1.0, out=out, err=err)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))

    async def pids(name: str, count: int) -> list[int]:
        deadline = time.monotonic() + TIMEOUT
        while (found := out.getvalue().count(f"[{name}] pid".encode())) < count:
            assert time.monotonic() < deadline, (found, err.getvalue())
            await asyncio.sleep(0.05)
        lines = [x for x in out.getvalue().decode().splitlines() if x.startswith(f"[{name}] pid")]
        return [int(x.split()[2]) for x in lines]

    try:
        (polite,) = await pids("polite", 1)
        (stubborn,) = await pids("stubborn", 1)
        assert supervisor.restart("polite") and supervisor.restart("stubborn")
        assert supervisor.restart("nobody") is False
        assert (await pids("polite", 2))[1] != polite
        assert (await pids("stubborn", 2))[1] != stubborn  # only after its SIGKILL, at the end of the grace
        assert group_alive(polite) == [] and group_alive(stubborn) == []
    finally:
        stop.set()
        await asyncio.wait_for(running, TIMEOUT)


CRASH_IN_ACTIVITY = """\
    import os, pathlib, time
    import dapr.ext.workflow as wf

    runtime = wf.WorkflowRuntime()

    @runtime.activity(name="double")
    def double(ctx, x):
        if not pathlib.Path("crashed-once").exists():
            pathlib.Path("crashed-once").touch()
            os._exit(70)  # the crash-injection demo: the process dies mid-activity
        return x * 2

    @runtime.workflow(name="demo")
    def demo(ctx, x):
        return (yield ctx.call_activity(double, input=x))

    runtime.start()
    client = wf.DaprWorkflowClient()
    if not pathlib.Path("scheduled").exists():
        pathlib.Path("scheduled").touch()
        client.schedule_new_workflow(demo, input=21, instance_id="demo-1")
    state = client.wait_for_workflow_completion("demo-1", timeout_in_seconds=10)
    print("result", state.runtime_status.name, state.serialized_output, flush=True)
    time.sleep(60)
"""


def test_an_sdk_app_that_crashes_inside_an_activity_is_restarted_and_its_workflow_completes(
    tmp_path: Path, runners
) -> None:
    one_app_template(tmp_path, "demo", CRASH_IN_ACTIVITY)
    runner = run(runners, tmp_path)
    assert runner.wait_for("[demo] result", runner.out) == ["[demo] result COMPLETED 42"]
    assert runner.wait_for("app demo exited with code 70", runner.err)
    runner.proc.send_signal(signal.SIGTERM)
    assert runner.finish() == 0
