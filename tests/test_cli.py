"""The `corral run` command line, driven as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from conftest import pid_alive, wait_dead

CORRAL = [sys.executable, "-m", "corral"]


def corral_run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CORRAL, "run", *args], capture_output=True, text=True,
                          timeout=60, **kwargs)  # type: ignore[call-overload]


def test_readme_example():
    proc = corral_run("--", "sh", "-c", "echo hello; echo oops >&2; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == "hello\n" and proc.stderr == "oops\n"


def test_json_prints_the_whole_result():
    proc = corral_run("--json", "--", "sh", "-c", "echo hello; echo oops >&2; exit 3")
    assert proc.returncode == 3
    result = json.loads(proc.stdout)
    assert result["exit_code"] == 3
    assert result["stdout"]["text"] == "hello\n" and result["stderr"]["text"] == "oops\n"
    assert result["output"]["text"] == "hello\noops\n"
    assert result["timed_out"] is False and result["kill_mechanism"] in ("cgroup", "process-group")


def test_python_m_takes_no_module_from_the_working_directory(tmp_path):
    """``python -m corral`` puts the working directory first on sys.path,
    where a command may have left ``json.py``: corral takes the standard
    library's, where ``python -c`` there would take the planted one (the
    control)."""
    (tmp_path / "json.py").write_text("print('planted json ran')\ndumps = None\n")
    proc = subprocess.run([*CORRAL, "run", "--json", "--policy", "full-access", "--", "true"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["exit_code"] == 0, proc.stderr
    control = subprocess.run([sys.executable, "-c", "import json"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert control.stdout == "planted json ran\n"


def test_timeout_exits_124():
    started = time.monotonic()
    proc = corral_run("--timeout", "0.5", "--", "sh", "-c", "echo started; sleep 30")
    assert proc.returncode == 124
    assert proc.stdout == "started\n" and "timed out" in proc.stderr
    assert time.monotonic() - started < 10


def test_signal_exit_code():
    proc = corral_run("--", "sh", "-c", "kill -TERM $$")
    assert proc.returncode == 128 + signal.SIGTERM and "SIGTERM" in proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--", "corral-no-such-program-xyz"], 127, "not found"),
        (["--", __file__], 126, "cannot execute"),  # not executable
        (["--cwd", "/nonexistent-dir", "--", "true"], 125, "does not exist"),
        (["--timeout", "soon", "--", "true"], 125, "seconds"),
        (["--timeout", "1e27", "--", "sleep", "77"], 125, "at most 2147483.647 (about 24 days)"),
        (["--env", "NOEQUALS", "--", "true"], 125, "NAME=VALUE"),
        (["--policy", "yolo", "--", "true"], 125, "workspace-write"),
        (["--policy", "full-access", "--network", "--", "true"], 125, "sandboxed policies"),
        ([], 125, "no command"),
        (["--no-such-flag", "--", "true"], 125, "unrecognized"),
    ],
)
def test_corral_errors(args, code, words):
    proc = corral_run(*args)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_default_timeout_too_long_is_exit_125_with_the_reason():
    proc = corral_run("--", "sleep", "77", env={**os.environ, "CORRAL_DEFAULT_TIMEOUT": "1e27"})
    assert proc.returncode == 125 and "CORRAL_DEFAULT_TIMEOUT" in proc.stderr
    assert "at most" in proc.stderr and "Traceback" not in proc.stderr


# A path whose name would recolour the terminal, end corral's line, and
# print one that reads as corral's over it.
FORGING = "x\x1b[31mred\nforged line\r\x1b[2Kcorral: all fine"


def test_what_corral_prints_about_a_run_cannot_forge_a_line(host_dir):
    """The denial report escapes the target's control characters (one line,
    no ESC), while the command's own output passes through unchanged."""
    script = ('printf "\\033[1mbold\\n"; printf "\\033[2mdim\\n" >&2; '
              'touch "$1" 2>/dev/null')
    (host_dir / "ws").mkdir()  # the root; host_dir, which the user may write, is outside it
    proc = subprocess.run([*CORRAL, "run", "--", "sh", "-c", script, "sh",
                           f"{host_dir}/{FORGING}"], capture_output=True, cwd=host_dir / "ws",
                          timeout=60)
    assert proc.stdout == b"\x1b[1mbold\n"  # the command's own output, as it is
    own, *report = proc.stderr.split(b"\n")[:-1]
    assert own == b"\x1b[2mdim"
    where = os.fsencode(host_dir)
    assert report == [b"corral: sandbox denied write " + where + b"/x\\x1b[31mred\\nforged line"
                      b"\\r\\x1b[2Kcorral: all fine: outside the writable roots: add --writable "
                      + where]
    missing = corral_run("--", f"/no/such/{FORGING}")
    assert missing.returncode == 127 and missing.stderr.count("\n") == 1
    assert "\x1b" not in missing.stderr and "x\\x1b[31mred\\nforged" in missing.stderr


def test_the_terminal_prompt_escapes_what_it_shows(host_dir):
    """`corral run --ask` asks on /dev/tty: the argv it shows is escaped."""
    import pty

    pid, master = pty.fork()
    if pid == 0:  # the child: corral with the pseudo-terminal as its terminal
        try:
            os.chdir(host_dir)
            os.execv(sys.executable, [*CORRAL, "run", "--ask", "--escalate", "--",
                                      "echo", FORGING])
        finally:
            os._exit(127)
    shown = b""
    try:
        while b"[n] no: " not in shown:
            shown += os.read(master, 4096)
        os.write(master, b"n\n")
        while True:  # the rest, until the child is gone
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 125
    assert b"\x1b" not in shown and b"forged line\r" not in shown
    assert b"x\\x1b[31mred\\nforged line\\r\\x1b[2Kcorral: all fine" in shown


def test_json_error_object():
    proc = corral_run("--json", "--", "corral-no-such-program-xyz")
    assert proc.returncode == 127
    assert json.loads(proc.stdout)["error"]["type"] == "program-not-found"


def test_env_flags():
    proc = corral_run("--policy", "full-access", "--env-inherit", "none", "--env", "A=1", "--", "/usr/bin/env")
    assert proc.stdout == "A=1\n"


def test_output_is_streamed_live():
    proc = subprocess.Popen(
        [*CORRAL, "run", "--timeout", "30", "--", "sh", "-c", "echo first; sleep 5; echo second"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        started = time.monotonic()
        assert proc.stdout is not None
        assert proc.stdout.readline() == "first\n"
        assert time.monotonic() - started < 4  # before the command finished
    finally:
        proc.kill()
        proc.wait()


def _with_signal(signum: int, handler: object) -> Callable[[], None]:
    """A preexec_fn giving the started program ``signum`` with ``handler``
    (SIG_DFL, SIG_IGN), whatever the test run inherited: started in the
    background by a shell without job control, it has SIGINT ignored."""
    return lambda: signal.signal(signum, handler)  # type: ignore[arg-type]


def test_ctrl_c_ends_the_run_with_137(tmp_path):
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen(
        [*CORRAL, "run", "--timeout", "none", "--policy", "full-access", "--",
         "sh", "-c", f"echo $$ > {pidfile}; sleep 30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_with_signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child = int(pidfile.read_text())
    assert pid_alive(child)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 137 and "interrupted" in stderr
    assert wait_dead(child, timeout=1)


@pytest.mark.parametrize("handler", [signal.SIG_IGN, signal.SIG_DFL], ids=["nohup", "control"])
def test_a_hangup_ignored_as_nohup_does_stays_ignored(tmp_path, handler):
    """Under nohup, SIGHUP is ignored when corral starts: a hangup must not
    end the run, nor the command, which inherits it ignored.  Not ignored,
    it ends the run (the control)."""
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen(
        [*CORRAL, "run", "--timeout", "none", "--policy", "full-access", "--",
         "sh", "-c", f"echo $$ > {pidfile}; sleep 1; kill -HUP $$; echo survived"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_with_signal(signal.SIGHUP, handler),
    )
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGHUP)
    stdout, stderr = proc.communicate(timeout=10)
    if handler == signal.SIG_IGN:
        assert proc.returncode == 0 and stdout == "survived\n", stderr
    else:
        assert proc.returncode == 137 and "interrupted" in stderr


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "corral")
    proc = subprocess.run([exe, "run", "--", "echo", "ok"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "ok\n", (proc.returncode, proc.stderr)


def test_spill_to_a_file(tmp_path):
    target = tmp_path / "out.log"
    proc = corral_run("--max-output", "64", "--spill-to", str(target), "--", "seq", "1000")
    assert proc.returncode == 0
    assert target.read_text() == "".join(f"{i}\n" for i in range(1, 1001))
    assert f"complete output in {target}" in proc.stderr


def test_spill_to_a_link_a_command_planted_writes_nothing_through_it(host_dir):
    """A sandboxed command leaves build.log as a link to a host file; the next
    run's --spill-to build.log is refused (125, naming the path), and the
    host file is untouched."""
    victim = host_dir / "victim"
    victim.write_text("precious\n")
    planted = corral_run("--", "sh", "-c", f"ln -sf {victim} build.log", cwd=host_dir)
    assert planted.returncode == 0 and (host_dir / "build.log").is_symlink()
    proc = corral_run("--spill-to", "build.log", "--", "echo", "attacker", cwd=host_dir)
    assert victim.read_text() == "precious\n"
    assert proc.returncode == 125 and "'build.log'" in proc.stderr and "regular" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_parse_run():
    from corral._cli import _UsageError, parse_run

    args = parse_run(["--timeout=2.5", "--env", "A=1", "--env=B=2", "--json", "--",
                      "echo", "--timeout", "x"])
    assert args.timeout == 2.5 and args.env == ("A=1", "B=2") and args.json
    assert args.argv == ("echo", "--timeout", "x")  # everything after -- is the command's
    assert parse_run(["echo", "-n", "hi"]).argv == ("echo", "-n", "hi")  # so is all from CMD on
    assert parse_run(["--timeout", "none", "true"]).timeout is None
    with pytest.raises(_UsageError, match="alternatives"):
        parse_run(["--spill", "--spill-to", "x", "true"])
    with pytest.raises(_UsageError, match="not one of"):
        parse_run(["--env-inherit", "some", "true"])


def test_help_and_usage():
    assert corral_cli("--help").returncode == 0
    run_help = corral_run("--help")
    assert run_help.returncode == 0 and "--deny-read" in run_help.stdout
    unknown = corral_cli("frobnicate")
    assert unknown.returncode == 125 and "unknown command" in unknown.stderr
    assert corral_cli("doctor", "extra").returncode == 125
    assert corral_cli("--version").stdout.startswith("corral ")


def corral_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CORRAL, *args], capture_output=True, text=True, timeout=60)


def test_a_name_that_is_not_utf_8_is_escaped_as_its_bytes():
    """Such a name decodes to surrogates (PEP 383), which reach the terminal
    as the bytes they stand for: 0x9b is an 8-bit CSI."""
    from corral._cli import escape_controls

    assert escape_controls(os.fsdecode(b"ls \xff\x9b31m\x1b")) == "ls \\xff\\x9b31m\\x1b"


# Prints, is refused writes and a connection, over and over.
_BUSY = """
seq "$1"
for i in $(seq 50); do
  echo x > /etc/corral-cycle-$i
  echo x > .git/hooks/cycle-$i
  echo > /dev/tcp/127.0.0.1/$2
done 2>/dev/null
exit 1
"""
_COUNT_CYCLES = """
import gc, os, sys
from corral._cli import _LiveOutput
from corral._engine import execute
from corral._request import ExecRequest

def run(lines):
    argv = ["bash", "-c", sys.argv[1], "bash", str(lines), sys.argv[2]]
    return execute(ExecRequest(argv=argv, cwd=sys.argv[3]), _LiveOutput())

run(10)  # first use: the garbage lazy imports leave
gc.collect()
gc.disable()
result = run(200000)
kinds = sorted({denial.kind.value for denial in result.denials})
os.write(2, f"{result.exit_code} {kinds} {gc.collect()}".encode())
"""


def test_running_a_command_makes_no_reference_cycles(host_dir, tcp_listener):
    """The corral command runs with the cyclic collector off (scripts/corral),
    which holds memory bounded only while running a command makes no
    reference cycles, however much it prints and is refused."""
    subprocess.run(["git", "init", "-q", str(host_dir)], check=True)
    proc = subprocess.run([sys.executable, "-c", _COUNT_CYCLES, _BUSY, str(tcp_listener[1]),
                           str(host_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=60)
    assert proc.stderr == "1 ['network', 'write'] 0"


def test_the_server_turns_the_collector_back_on():
    """A long-lived `corral mcp` (its SDK, asyncio) makes cycles of its own."""
    import gc

    from corral import _cli

    gc.disable()
    try:
        with pytest.raises(_cli._Help):
            _cli._dispatch(["mcp", "--help"])
        assert gc.isenabled()
    finally:
        gc.enable()
