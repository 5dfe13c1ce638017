"""``corral mcp`` driven as a real client drives it: the SDK's client over stdio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="corral mcp needs pip install 'corral[mcp]'")

import mcp.types as types  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from corral.sandbox.guards import runtime_dir_path  # noqa: E402
from corral.sandbox.probe import probe_machine  # noqa: E402

_BWRAP = probe_machine().bwrap
sandboxed = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")
Elicit = Callable[[Any, types.ElicitRequestParams], Awaitable[types.ElicitResult]]


@asynccontextmanager
async def serving(cwd: Path, home: Path, *args: str, elicit: Elicit | None = None,
                  pidfile: Path | None = None) -> AsyncIterator[ClientSession]:
    """A client session with ``corral mcp ARGS`` started in ``cwd``."""
    start = ("import os, sys; from corral._cli import main; "
             + (f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); " if pidfile else "")
             + "main(['mcp', *sys.argv[1:]])")
    params = StdioServerParameters(command=sys.executable, args=["-c", start, *args],
                                   cwd=str(cwd), env={**os.environ, "HOME": str(home)})
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write):
            async with ClientSession(read, write, elicitation_callback=elicit) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool("shell", arguments)
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


@pytest.fixture
def workspace(host_dir: Path) -> Path:
    (host_dir / "ws").mkdir()
    return host_dir / "ws"


@sandboxed
def test_list_tools_and_run_a_command(workspace, tmp_path):
    async def scenario() -> None:
        async with serving(workspace, tmp_path) as session:
            tools = await session.list_tools()
            [shell] = [t for t in tools.tools if t.name == "shell"]
            assert {"command", "workdir", "timeout_ms", "with_escalated_permissions",
                    "justification"} <= set(shell.input_schema["properties"])
            reply = await call(session, command=["bash", "-lc", "echo hello; echo oops >&2"])
            assert reply["exit_code"] == 0 and reply["sandbox"] == "bwrap"
            assert reply["output"].endswith("Output:\nhello\noops\n")
            assert reply["decision_path"][-1] == "ran in the sandbox: exit 0"
            assert reply["timed_out"] is False and reply["denials"] == []

    run(scenario)


@sandboxed
def test_timeout_and_a_sandbox_denial(host_dir, workspace, tmp_path):
    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--approval", "on-failure") as session:
            slow = await call(session, command=["sleep", "30"], timeout_ms=300)
            assert slow["timed_out"] is True and slow["exit_code"] == 124
            denied = await call(session, command=["sh", "-c", f"echo x > {host_dir}/outside"])
            assert denied["exit_code"] != 0 and not (host_dir / "outside").exists()
            assert [(d["kind"], d["target"]) for d in denied["denials"]] == [
                ("write", f"{host_dir}/outside")]
            # This client cannot be asked (no elicitation): the result says so.
            assert "does not support elicitation" in denied["decision_path"][-1]

    run(scenario)


@sandboxed
def test_an_escalation_answered_through_elicitation(host_dir, workspace, tmp_path):
    asked: list[str] = []

    def answering(decision: str) -> Elicit:
        async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
            asked.append(params.message)
            return types.ElicitResult(action="accept", content={"decision": decision,
                                                                "message": "not today"})
        return elicit

    target = host_dir / "outside"
    write = ["sh", "-c", f"echo x > {target}"]

    async def scenario() -> None:
        async with serving(workspace, tmp_path, elicit=answering("deny")) as session:
            refused = await call(session, command=write, with_escalated_permissions=True,
                                 justification="needs the shared file")
            assert refused["exit_code"] is None and not target.exists()
            assert "denied by the user: not today" in refused["decision_path"]
        async with serving(workspace, tmp_path, elicit=answering("approve-once")) as session:
            approved = await call(session, command=write, with_escalated_permissions=True,
                                  justification="needs the shared file")
            assert approved["exit_code"] == 0 and target.read_text() == "x\n"
            assert approved["sandbox"] == "none"
            assert "approved by the user once" in approved["decision_path"]

    run(scenario)
    assert len(asked) == 2 and "The agent says: needs the shared file" in asked[0]


# Run by a first shell call: finds its own complete-output file, in /tmp where
# the server once kept them or in the server's directory in corral's runtime
# directory ($3) where it keeps them now, and plants what $1 says at the next
# five names.
_PLANT_AT_THE_NEXT_OUTPUTS = r"""
planted=0
plant() {
  if [ "$1" = fifo ]; then mkfifo "$3"; else ln -sf "$2" "$3"; fi && planted=$((planted + 1))
}
for f in /tmp/corral-output-*-*.log; do
  [ -f "$f" ] || continue
  stem=${f%.log}; n=${stem##*-}; stem=${stem%-*}
  for i in 1 2 3 4 5; do plant "$1" "$2" "$stem-$((n + i)).log"; done
done
for f in "$3"/outputs-*/*.log; do
  [ -f "$f" ] || continue
  n=$(basename "$f" .log)
  for i in 1 2 3 4 5; do plant "$1" "$2" "$(dirname "$f")/$((n + i)).log"; done
done
echo "planted $planted"
"""


def _private_runtime_directory(parent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """corral's runtime directory (and so the server's outputs) in ``parent``,
    which the sandbox would show but for corral hiding it (not beneath /tmp
    or /run, which the sandbox hides anyway)."""
    (parent / "runtime").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(parent / "runtime"))


@sandboxed
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_command_cannot_plant_where_the_next_output_goes(host_dir, workspace, tmp_path, kind,
                                                          monkeypatch):
    """A link planted where the next call's complete output goes would have the
    server write that output into any host file; a FIFO, hang the call.  The
    runtime directory is put in the workspace, where only corral's hiding of
    it keeps the command from writing there."""
    _private_runtime_directory(workspace, monkeypatch)
    victim = host_dir / "victim"
    victim.write_text("precious\n")

    async def scenario() -> None:
        async with serving(workspace, tmp_path) as session:
            first = await call(session, command=["sh", "-c", _PLANT_AT_THE_NEXT_OUTPUTS, "sh",
                                                 kind, str(victim), runtime_dir_path()])
            with anyio.fail_after(30):
                second = await call(session, command=["sh", "-c", "seq 100000; echo attacker"])
            assert victim.read_text() == "precious\n"
            assert first["exit_code"] == 0 and "planted 0" in first["output"]
            assert "output truncated" in second["output"] and "output_id" in second

    run(scenario)


@sandboxed
def test_a_cut_output_is_read_with_read_output_and_out_of_the_sandbox_s_reach(workspace,
                                                                               tmp_path,
                                                                               host_dir,
                                                                               monkeypatch):
    _private_runtime_directory(host_dir, monkeypatch)

    async def scenario() -> None:
        async with serving(workspace, tmp_path) as session:
            big = await call(session, command=["seq", "100000"])
            assert "Full output: read_output(output_id=" in big["output"]
            number = big["output_id"]
            first = await tool(session, "read_output", output_id=number, max_output_tokens=100)
            assert first["output"] == "".join(f"{i}\n" for i in range(1, first["next_line"]))
            last = await tool(session, "read_output", output_id=number, start_line=99_999)
            assert last["output"] == "99999\n100000\n" and "next_line" not in last
            # No sandboxed command sees it, under /tmp or where the server keeps it.
            seen = await call(session, command=["sh", "-c", f"ls -a /tmp {runtime_dir_path()}"])
            assert "output" not in seen["output"].split("Output:", 1)[1]
            missing = await session.call_tool("read_output", {"output_id": number + 99})
            assert missing.is_error and "no output" in missing.content[0].text  # type: ignore
            unbounded = await session.call_tool("read_output", {"output_id": number,
                                                                "max_output_tokens": -5})
            assert unbounded.is_error
            assert "must be positive" in unbounded.content[0].text  # type: ignore
            # A progress bar's carriage returns stay inside its line.
            bar = await call(session, command=["sh", "-c",
                                               "seq 100000; printf 'a\\r10%%\\r20%%\\n'"])
            tail = await tool(session, "read_output", output_id=bar["output_id"],
                              start_line=100_001)
            assert tail["output"] == "a\r10%\r20%\n"

    run(scenario)


@sandboxed
@pytest.mark.parametrize("tool_name", ["shell", "exec_command"])
def test_a_workdir_outside_the_workspace_does_not_make_it_writable(host_dir, workspace,
                                                                    tmp_path, tool_name):
    """The model picks the workdir: outside the workspace (or through a link
    inside it to one) the command runs there, but writes nothing, unless the
    directory is asked for as writable, which the approval flow decides.
    (The working directory was a writable root: naming /etc made it one.)"""
    elsewhere = host_dir / "elsewhere"
    elsewhere.mkdir()
    (workspace / "sub").mkdir()
    (workspace / "link").symlink_to(elsewhere)
    argument = "command" if tool_name == "shell" else "cmd"
    waiting = {} if tool_name == "shell" else {"yield_time_ms": 5000}
    approve = {"decision": "approve-once", "message": ""}

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content=approve)

    async def scenario() -> None:
        async with serving(workspace, tmp_path, elicit=elicit) as session:
            for workdir in (str(elsewhere), str(workspace / "link"), "../elsewhere"):
                refused = await tool(session, tool_name, **{
                    argument: ["sh", "-c", "pwd; touch PWNED"], "workdir": workdir, **waiting})
                assert str(elsewhere) in refused["output"], refused  # it ran there
                assert refused.get("exit_code", 1) != 0 and refused.get("running") is not True
            assert not (elsewhere / "PWNED").exists()
            # The controls: a workdir in the workspace, and one asked for as writable
            # and approved, are written in.
            inside = await tool(session, tool_name, **{argument: ["touch", "ok"],
                                                       "workdir": "sub", **waiting})
            assert inside["exit_code"] == 0 and (workspace / "sub" / "ok").exists()
            asked = await tool(session, tool_name, **{
                argument: ["touch", "PWNED"], "workdir": str(elsewhere),
                "writable": [str(elsewhere)], **waiting})
            assert asked["exit_code"] == 0 and (elsewhere / "PWNED").exists()

    run(scenario)


def test_a_wait_too_long_to_make_is_a_tool_error(workspace, tmp_path):
    """A timeout_ms or yield_time_ms no poll() can wait is refused with the
    reason, before anything runs, and the server goes on."""
    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--policy", "full-access") as session:
            started = await tool(session, "exec_command", cmd=["cat"], yield_time_ms=0)
            for name, arguments in (
                    ("shell", {"command": ["sleep", "77"], "timeout_ms": 10**27}),
                    ("shell", {"command": ["sleep", "77"], "timeout_ms": 10**400}),
                    ("exec_command", {"cmd": ["sleep", "77"], "yield_time_ms": 10**400}),
                    ("write_stdin", {"session_id": started["session_id"],
                                     "yield_time_ms": 10**27})):
                with anyio.fail_after(20):
                    refused = await session.call_tool(name, arguments)
                text = refused.content[0].text  # type: ignore[union-attr]
                assert refused.is_error and "at most 2147483647 (about 24 days)" in text, text
            assert (await call(session, command=["echo", "still here"]))["exit_code"] == 0

    run(scenario)


def test_the_approval_question_escapes_what_it_shows(workspace, tmp_path):
    """What the user is asked through elicitation names the argv with its
    control characters escaped: it cannot recolour or forge lines."""
    asked: list[str] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"decision": "deny", "message": ""})

    async def scenario() -> None:
        async with serving(workspace, tmp_path, elicit=elicit) as session:
            await call(session, command=["echo", "x\x1b[31mred\nforged line\r\x1b[2Kfine"],
                       with_escalated_permissions=True)

    run(scenario)
    [question] = asked
    assert "\x1b" not in question and "\r" not in question
    assert "x\\x1b[31mred\\nforged line\\r\\x1b[2Kfine" in question


def test_twenty_concurrent_calls(workspace, tmp_path):
    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--policy", "full-access") as session:
            replies: dict[int, dict[str, Any]] = {}

            async def one(i: int) -> None:
                replies[i] = await call(session, command=["sh", "-c", f"sleep 0.5; echo {i}"])

            started = time.monotonic()
            async with anyio.create_task_group() as group:
                for i in range(20):
                    group.start_soon(one, i)
            assert time.monotonic() - started < 8  # together, not one after another
            assert all(replies[i]["output"].endswith(f"Output:\n{i}\n") for i in range(20))

    run(scenario)


def test_malformed_arguments_are_a_tool_error_and_the_server_keeps_serving(workspace, tmp_path):
    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--policy", "full-access") as session:
            for arguments in ({"command": "ls"}, {"command": []}, {}, {"command": [""]},
                              {"command": ["ls"], "timeout_ms": -1},
                              {"command": ["sleep", "77"], "timeout_ms": 10**27},
                              {"command": ["ls"], "workdir": "/no/such/dir"},
                              {"command": ["corral-no-such-program"]}):
                result = await session.call_tool("shell", arguments)
                assert result.is_error, arguments
                text = result.content[0].text  # type: ignore[union-attr]
                assert "Traceback" not in text and text != "Error executing tool shell"
            assert (await call(session, command=["echo", "still here"]))["exit_code"] == 0

    run(scenario)


def test_nothing_is_left_after_the_server_is_killed(workspace, tmp_path):
    """Neither a command's process nor the outputs the server kept on disk."""
    pidfile = tmp_path / "server.pid"
    marker = tmp_path / "child.pid"
    script = f"sleep 271.828 & echo $! > {marker}; wait"
    outputs: list[Path] = []

    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--policy", "full-access", "--timeout", "none",
                           pidfile=pidfile) as session:
            big = await call(session, command=["seq", "200000"])
            assert "output_id" in big
            outputs.extend(Path(runtime_dir_path()).glob(f"outputs-{pidfile.read_text()}-*"))
            assert outputs  # kept, for read_output
            async with anyio.create_task_group() as group:
                async def long_call() -> None:
                    await session.call_tool("shell", {"command": ["sh", "-c", script]})

                group.start_soon(long_call)
                with anyio.fail_after(20):
                    while not (marker.exists() and marker.read_text().strip()):
                        await anyio.sleep(0.05)
                child = int(marker.read_text())
                assert _alive(child)
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
                with anyio.fail_after(20):
                    while _alive(child):
                        await anyio.sleep(0.05)
                group.cancel_scope.cancel()

    try:
        run(scenario)
    except BaseException as exc:  # the client sees its server vanish
        if not _only_broken_connection(exc):
            raise
    # The client may see its server vanish before the server's watchdog,
    # which the pipe's end wakes, has killed the run.
    child = int(marker.read_text())
    deadline = time.monotonic() + 20
    while (_alive(child) or outputs[0].exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert not outputs[0].exists()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _only_broken_connection(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_broken_connection(e) for e in exc.exceptions)
    return isinstance(exc, (anyio.BrokenResourceError, anyio.ClosedResourceError,
                            anyio.EndOfStream, ConnectionError, OSError)) or \
        type(exc).__name__ in ("MCPError", "McpError")


def test_settings_from_a_config_file(workspace, tmp_path):
    config = tmp_path / "corral.toml"
    config.write_text('policy = "full-access"\ntimeout = 0.3\nmax-output-tokens = 50\n')

    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--config", str(config)) as session:
            slow = await call(session, command=["sleep", "5"])
            assert slow["timed_out"] is True and slow["sandbox"] == "none"
            big = await call(session, command=["seq", "100000"], timeout_ms=10000)
            assert "output truncated" in big["output"] and len(big["output"]) < 1000
            end = await tool(session, "read_output", output_id=big["output_id"],
                             start_line=100_000)
            assert end["output"] == "100000\n"

    run(scenario)


BAD_CONFIGS = {
    "unknown key": ('polcy = "read-only"\n', "unknown key 'polcy'"),
    "wrong type": ("network = 1\n", "network must be true or false, not 1"),
    "bad policy": ('policy = "yolo"\n', "policy 'yolo' is not one of"),
    "not toml": ("policy = \n", "not valid TOML"),
    "bad timeout": ("timeout = -1\n", "timeout must be a positive number"),
    "huge timeout": ("timeout = 1e27\n", "timeout must be a number of seconds > 0 and at most"),
}


@pytest.mark.parametrize("text,message", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_a_bad_config_file_is_a_clear_error(tmp_path, text, message):
    config = tmp_path / "corral.toml"
    config.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "corral", "mcp", "--config", str(config)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert proc.returncode == 125 and message in proc.stderr and str(config) in proc.stderr
    assert "Traceback" not in proc.stderr


async def tool(session: ClientSession, name: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(name, arguments)
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


@sandboxed
def test_an_interactive_session_keeps_stdin_open(workspace, tmp_path):
    async def scenario() -> None:
        async with serving(workspace, tmp_path) as session:
            started = await tool(session, "exec_command", cmd=["cat"], yield_time_ms=200)
            assert started["running"] is True and started["output"] == ""
            sid = started["session_id"]
            echoed = await tool(session, "write_stdin", session_id=sid, chars="hello\n",
                                yield_time_ms=5000)
            assert echoed["output"] == "hello\n" and echoed["running"] is True
            repl = await tool(session, "exec_command", cmd=[sys.executable, "-i", "-q"],
                              yield_time_ms=1000)
            answer = await tool(session, "write_stdin", session_id=repl["session_id"],
                                chars="print(6 * 7)\n", yield_time_ms=5000)
            assert "42" in answer["output"]
            ended = await tool(session, "write_stdin", session_id=repl["session_id"],
                               chars="raise SystemExit(3)\n", yield_time_ms=5000)
            for _ in range(50):
                if not ended["running"]:
                    break
                ended = await tool(session, "write_stdin", session_id=repl["session_id"],
                                   yield_time_ms=100)
            assert ended["running"] is False and ended["exit_code"] == 3
            quick = await tool(session, "exec_command", cmd=["sh", "-c", "echo done; exit 4"])
            assert quick == {**quick, "running": False, "exit_code": 4, "output": "done\n"}
            assert "session_id" not in quick
            line = await tool(session, "exec_command", cmd="echo $((6 * 7)) | cat", login=False)
            assert line["output"] == "42\n" and line["exit_code"] == 0

    run(scenario)


@sandboxed
def test_a_background_server_is_polled_listed_and_killed(workspace, tmp_path):
    marker = f"corral-test-server-{os.getpid()}-{time.monotonic_ns()}"
    code = ("import http.server, time\n"
            "time.sleep(1)\n"
            "s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
            "print('listening on', s.server_address[1], flush=True)\n"
            "s.serve_forever()\n")

    async def scenario() -> None:
        async with serving(workspace, tmp_path) as session:
            started = await tool(session, "exec_command",
                                 cmd=[sys.executable, "-c", code, marker], yield_time_ms=100)
            sid, seen = started["session_id"], started["output"]
            assert seen == ""
            for _ in range(100):
                if "listening on" in seen:
                    break
                seen += (await tool(session, "write_stdin", session_id=sid,
                                    yield_time_ms=200))["output"]
            port = int(seen.split("listening on", 1)[1].split()[0])
            [listed] = (await tool(session, "list_sessions"))["sessions"]
            assert listed["session_id"] == sid and listed["running"] is True
            assert listed["listening"] == [port]
            assert _with_argument(marker)
            killed = await tool(session, "kill_session", session_id=sid)
            assert killed["running"] is False and killed["exit_code"] == 137
            assert not _with_argument(marker)
            assert (await tool(session, "list_sessions"))["sessions"] == []
            gone = await session.call_tool("write_stdin", {"session_id": sid, "chars": "x"})
            assert gone.is_error and f"no session {sid}" in gone.content[0].text  # type: ignore[union-attr]

    run(scenario)


def _with_argument(marker: str) -> list[int]:
    """The live processes with ``marker`` among their arguments."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if marker.encode() in f.read().split(b"\0") and _alive(int(name)):
                        found.append(int(name))
            except OSError:
                pass
    return found


def test_no_session_outlives_the_server(workspace, tmp_path):
    pidfile = tmp_path / "server.pid"
    marker = tmp_path / "child.pid"

    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--policy", "full-access",
                           pidfile=pidfile) as session:
            await tool(session, "exec_command",
                       cmd=["sh", "-c", f"sleep 314.15 & echo $! > {marker}; wait"],
                       yield_time_ms=500)
            with anyio.fail_after(20):
                while not (marker.exists() and marker.read_text().strip()):
                    await anyio.sleep(0.05)
            assert _alive(int(marker.read_text()))
            os.kill(int(pidfile.read_text()), signal.SIGKILL)

    try:
        run(scenario)
    except BaseException as exc:
        if not _only_broken_connection(exc):
            raise
    child = int(marker.read_text())
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_the_session_cap_prunes_the_oldest_exited_first(host_dir):
    from corral import SandboxPolicy
    from corral.server.sessions import SessionError, SessionManager

    manager = SessionManager(limit=2)
    full = SandboxPolicy.full_access()
    first = manager.start(("true",), str(host_dir), full, None)
    second = manager.start(("sleep", "30"), str(host_dir), full, None)
    first.read(5, until_exit=True)
    assert not first.running
    third = manager.start(("sleep", "30"), str(host_dir), full, None)
    assert [s.id for s in manager.all()] == [second.id, third.id]
    with pytest.raises(SessionError, match="2 sessions are running"):
        manager.start(("true",), str(host_dir), full, None)
    manager.close()
    assert not second.running and not third.running


@sandboxed
def test_a_session_on_a_terminal(workspace, tmp_path):
    script = 'test -t 0 && test -t 1 && echo on-a-terminal; read line; echo "got $line"'

    async def scenario() -> None:
        async with serving(workspace, tmp_path) as session:
            started = await tool(session, "exec_command", cmd=["sh", "-c", script], tty=True,
                                 yield_time_ms=300)
            assert started["running"] is True and "on-a-terminal" in started["output"]
            answered = await tool(session, "write_stdin", session_id=started["session_id"],
                                  chars="hello\r", yield_time_ms=5000)
            seen = answered["output"]
            for _ in range(50):
                if not answered["running"]:
                    break
                answered = await tool(session, "write_stdin", session_id=started["session_id"],
                                      yield_time_ms=100)
                seen += answered["output"]
            assert "got hello" in seen and answered["exit_code"] == 0
            [listed] = [s for s in (await tool(session, "list_sessions"))["sessions"]]
            assert listed["tty"] is True

    run(scenario)


def test_streamable_http_with_a_bearer_token(workspace, tmp_path):
    import socket
    import urllib.error
    import urllib.request

    import httpx2

    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "corral-test-token-0123456789"
    env = {**os.environ, "HOME": str(tmp_path), "CORRAL_MCP_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "corral", "mcp", "--policy", "full-access",
                             "--http", f"127.0.0.1:{port}"], cwd=workspace, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401  # up, and closed to a caller without the token
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)

        async def scenario() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
                async with streamable_http_client(url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        reply = await call(session, command=["echo", "over http"])
                        assert reply["output"].endswith("Output:\nover http\n")

        run(scenario)
        wrong = urllib.request.Request(url, headers={"Authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(wrong, timeout=5)
        assert info.value.code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_http_needs_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_MCP_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "corral", "mcp", "--http", "8765"], env=env,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 125 and "bearer token" in proc.stderr


def test_unread_output_is_bounded(host_dir):
    from corral import SandboxPolicy
    from corral.server.sessions import ProcessSession

    session = ProcessSession(1, ("seq", "1000000"), str(host_dir), SandboxPolicy.full_access(),
                             None)
    text = session.read(30, until_exit=True)
    assert not session.running and len(text) < 1024 * 1024 + 100  # 6.9 MB were printed
    assert text.startswith("1\n2\n3\n") and text.endswith("999999\n1000000\n")
    assert "bytes of output dropped unread]" in text


def test_timeout_none_on_the_command_line_overrides_the_config_file(workspace, tmp_path):
    config = tmp_path / "corral.toml"
    config.write_text('policy = "full-access"\ntimeout = 0.2\n')

    async def scenario() -> None:
        async with serving(workspace, tmp_path, "--config", str(config), "--timeout",
                           "none") as session:
            slow = await call(session, command=["sleep", "0.6"])
            assert slow["timed_out"] is False and slow["exit_code"] == 0

    run(scenario)


def test_the_outputs_kept_take_a_bounded_room(monkeypatch):
    """The runtime directory is often a small tmpfs that corral's records
    share: past KEPT_OUTPUT_BYTES the oldest outputs go, the last stays."""
    from corral.server import app

    monkeypatch.setattr(app, "KEPT_OUTPUT_BYTES", 10)
    outputs = app._Outputs()
    paths = []
    for text in ("12345\n", "678\n", "abcdefghijklmnop\n"):
        number, path = outputs.new()
        Path(path).write_text(text)
        outputs.keep(number)
        paths.append(path)
    assert [os.path.exists(p) for p in paths] == [False, False, True]
    assert outputs.read(3, 1, 100)["output"] == "abcdefghijklmnop\n"
    with pytest.raises(FileNotFoundError):
        outputs.read(1, 1, 100)


def test_a_later_page_is_read_from_a_known_line_start(monkeypatch):
    """read_output finds a page past line 1 from the nearest line start it
    knows, found once per output (not by reading from line 1 at each call),
    and reads what reading from line 1 would: across multi-byte and invalid
    UTF-8, carriage returns, lines longer than the stride or the budget, and
    an output with or without a final newline.  The starts go with the output."""
    from corral.server import app

    monkeypatch.setattr(app, "_LINE_START_STRIDE", 5)
    scans = []
    monkeypatch.setattr(app, "_line_starts",
                        lambda f, scan=app._line_starts: scans.append(f.name) or scan(f))
    body = ("é€\n".encode() + b"ab\xff\xe2\x82\ncd\r12\n\n" + b"x" * 23 + b"\n"
            + "日本語\n".encode() + b"y\n" * 7)
    outputs = app._Outputs()
    for data in (body, body + b"tail"):
        number, path = outputs.new()
        Path(path).write_bytes(data)
        outputs.keep(number)
        for budget in (1, 3, 8, 40):
            with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
                every = list(app._cut_lines(f, budget))
            for start in range(1, len(every) + 3):
                page, used, expected = [], 0, {"output_id": number, "start_line": start}
                for line_number in range(start, len(every) + 1):
                    line = every[line_number - 1]
                    if page and used + len(line) > budget:
                        expected["next_line"] = line_number
                        break
                    page.append(line)
                    used += len(line)
                expected["output"] = "".join(page)
                assert outputs.read(number, start, budget) == expected, (data, budget, start)
        assert scans == [path]
        scans.clear()
    number, path = outputs.new()
    Path(path).write_text("z\n")
    assert outputs.read(number, 2, 10)["output"] == ""
    assert number not in outputs._line_starts  # not kept (yet): nothing would drop them
    monkeypatch.setattr(app, "KEPT_OUTPUT_BYTES", 1)
    outputs.keep(number)
    assert outputs._line_starts == {}


def test_a_long_line_is_cut_with_the_count_of_what_it_lost():
    from io import StringIO

    from corral.server.app import _cut_lines

    lines = list(_cut_lines(StringIO("abcdef\nabcd\nxy\nlast"), 4))
    assert lines == ["abcd…[2 characters cut]\n", "abcd\n", "xy\n", "last"]
