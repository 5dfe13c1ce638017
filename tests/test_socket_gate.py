"""Allowed host Unix sockets: reachable one by one, and nothing else is.

Two host services listen on Unix sockets the test owns; the policy allows
one.  The command must reach that one, fail on the other (with a denial
naming it), and fail on the other even when it swaps the address under
corral's check from a second thread.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import corral
from conftest import greet_every_client
import corral.sandbox.bwrap
from corral.sandbox.landlock import LandlockBackend, landlock_abi
from corral.sandbox.probe import probe_machine

_BWRAP = probe_machine().bwrap
pytestmark = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def services(host_dir: Path) -> Iterator[tuple[str, str]]:
    """Two greeting Unix socket servers: (allowed, other)."""
    paths = (str(host_dir / "allowed.sock"), str(host_dir / "other.sock"))
    servers = []
    for path in paths:
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(64)
        servers.append(server)
        greet_every_client(server, os.path.basename(path).encode() + b"\n")
    os.chmod(host_dir, 0o755)
    yield paths
    for server in servers:
        server.close()


CONNECT = ("import socket, sys\n"
           "c = socket.socket(socket.AF_UNIX)\n"
           "try:\n"
           "    c.connect(sys.argv[1]); print(c.recv(100).decode(), end='')\n"
           "except OSError as e:\n"
           "    print('refused', e.errno); sys.exit(3)\n")


@pytest.fixture
def workspace(host_dir: Path) -> Path:
    """The command's root: beside the services, not above them."""
    (host_dir / "ws").mkdir()
    return host_dir / "ws"


def test_only_the_allowed_socket_is_reachable(services, workspace):
    allowed, other = services
    policy = corral.SandboxPolicy.workspace_write(allow_unix_sockets=(allowed,))
    ok = corral.run([PYTHON, "-c", CONNECT, allowed], cwd=workspace, policy=policy)
    assert ok.exit_code == 0 and ok.stdout == "allowed.sock\n", ok.aggregated_output
    refused = corral.run([PYTHON, "-c", CONNECT, other], cwd=workspace, policy=policy)
    assert refused.exit_code == 3 and refused.stdout == "refused 13\n"
    assert [(d.kind, d.target) for d in refused.denials] == [
        (corral.DenialKind.UNIX_SOCKET, other)]
    assert "--allow-unix-socket" in refused.denials[0].remedy
    control = corral.run([PYTHON, "-c", CONNECT, other], cwd=workspace, policy="full-access")
    assert control.stdout == "other.sock\n"
    without = corral.run([PYTHON, "-c", CONNECT, allowed], cwd=workspace)
    assert without.exit_code == 3  # not allowed, and not the command's own


SWAPPER = """
import ctypes, os, socket, sys, threading
allowed, other = sys.argv[1].encode(), sys.argv[2].encode()
rounds, until = int(os.environ.get("RACE_ROUNDS", "300")), os.environ.get("RACE_UNTIL")
size = 2 + 108
address = ctypes.create_string_buffer(size)
address[0:2] = (1).to_bytes(2, "little")  # AF_UNIX
def put(path):
    ctypes.memmove(ctypes.addressof(address) + 2, path + b"\\0" * (108 - len(path)), 108)
put(allowed)
stop = False
def swap():
    while not stop:
        put(allowed); put(other)
threading.Thread(target=swap, daemon=True).start()
libc = ctypes.CDLL(None, use_errno=True)
greetings = {}
for _ in range(rounds):
    s = socket.socket(socket.AF_UNIX)
    if libc.connect(s.fileno(), address, size) == 0:
        try:
            greeting = s.recv(100).decode().strip() or "nothing"
        except OSError as e:  # the server side is a thread of the busy test process
            greeting = f"error {e.errno}"
        greetings[greeting] = greetings.get(greeting, 0) + 1
        if greeting == until:
            break
    s.close()
stop = True
print(greetings)
"""


def _race(argv: list[str], cwd: Path, policy: object, reached: str) -> None:
    """Runs a race attack that prints its tally of greetings: it must never get
    "other.sock", and must get ``reached`` (proof the race ran); a loaded
    machine may starve a race, so up to three tries."""
    tallies = []
    for _ in range(3):
        result = corral.run(argv, cwd=cwd, policy=policy or "workspace-write",  # type: ignore[arg-type]
                            timeout=60)
        assert result.exit_code == 0, result.aggregated_output
        greetings = eval(result.stdout)  # a dict literal printed by the attack itself
        assert "other.sock" not in greetings, greetings
        tallies.append(greetings)
        if greetings.get(reached, 0) > 0:
            return
    raise AssertionError(f"the race never reached {reached}: {tallies}")


def _unchecked_race_reaches_other(argv: list[str], cwd: Path) -> None:
    """The control of a race: where nothing checks, the attack reaches
    "other.sock".  It goes on until it does (or for 100 times the rounds
    of the checked attack): a loaded machine, its two threads seldom on two
    cores at once, may take thousands of rounds."""
    env = {**os.environ, "RACE_ROUNDS": "30000", "RACE_UNTIL": "other.sock"}
    control = corral.run(argv, cwd=cwd, env=env, policy="full-access", timeout=120)
    assert "other.sock" in eval(control.stdout), (
        f"the unchecked attack never reached other.sock: {control.stdout}")


def test_swapping_the_address_under_the_check_reaches_nothing_else(services, workspace):
    allowed, other = services
    policy = corral.SandboxPolicy.workspace_write(allow_unix_sockets=(allowed,))
    _race([PYTHON, "-c", SWAPPER, allowed, other], workspace, policy, reached="allowed.sock")
    _unchecked_race_reaches_other([PYTHON, "-c", SWAPPER, allowed, other], workspace)


DESCRIPTOR_SWAPPER = """
import ctypes, os, socket, sys, threading
other = sys.argv[1].encode()
rounds, until = int(os.environ.get("RACE_ROUNDS", "300")), os.environ.get("RACE_UNTIL")
size = 2 + 108
address = ctypes.create_string_buffer(size)
address[0:2] = (1).to_bytes(2, "little")  # AF_UNIX
address[2:2 + len(other)] = other
tcp = socket.socket()
raced = os.dup(tcp.fileno())  # the descriptor number connect is called on
current = [socket.socket(socket.AF_UNIX)]
stop = False
def swap():
    while not stop:
        try:
            os.dup2(tcp.fileno(), raced); os.dup2(current[0].fileno(), raced)
        except OSError:  # a socket of an earlier round, closed meanwhile
            pass
threading.Thread(target=swap, daemon=True).start()
libc = ctypes.CDLL(None, use_errno=True)
tally = {}
for _ in range(rounds):
    if libc.connect(raced, address, size) == 0:
        # Its one address is other.sock's: connected, whichever socket was
        # under the number then (one of an earlier round, maybe).
        outcome = "other.sock"
    else:
        outcome = f"errno {ctypes.get_errno()}"
    tally[outcome] = tally.get(outcome, 0) + 1
    if outcome == until:
        break
    current[0] = socket.socket(socket.AF_UNIX)
stop = True
print(tally)
"""


def test_swapping_the_descriptor_under_the_check_reaches_nothing(services, workspace):
    """connect() on a TCP socket while another thread puts a Unix socket under
    that descriptor number: once the gate has seen TCP, the kernel must not go
    on to connect whatever the number names by then (errno 97: the gate's own
    connect of the TCP socket it checked, to a Unix address)."""
    _, other = services
    _race([PYTHON, "-c", DESCRIPTOR_SWAPPER, other], workspace, None, reached="errno 97")
    _unchecked_race_reaches_other([PYTHON, "-c", DESCRIPTOR_SWAPPER, other], workspace)


def test_datagrams_are_refused_and_local_sockets_still_work(services, host_dir):
    allowed, _ = services
    code = ("import socket\n"
            "try:\n    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); print('dgram')\n"
            "except OSError as e:\n    print('no dgram', e.errno)\n"
            "a, b = socket.socketpair(); a.sendall(b'pair'); print(b.recv(4).decode())\n"
            "srv = socket.create_server(('127.0.0.1', 0)); port = srv.getsockname()[1]\n"
            "c = socket.create_connection(('127.0.0.1', port)); print('tcp ok')\n")
    policy = corral.SandboxPolicy.workspace_write(allow_unix_sockets=(allowed,))
    result = corral.run([PYTHON, "-c", code], cwd=host_dir, policy=policy)
    assert result.stdout == "no dgram 1\npair\ntcp ok\n", result.aggregated_output


def test_bad_allowlists_are_refused(host_dir):
    (host_dir / "plain").write_text("")
    for bad, words in [(("relative.sock",), "absolute"), ((str(host_dir / "plain"),), "not a socket"),
                       ((str(host_dir / "missing.sock"),), "No such file")]:
        with pytest.raises(corral.PolicyError, match=words):
            corral.run(["true"], cwd=host_dir,
                       policy=corral.SandboxPolicy.workspace_write(allow_unix_sockets=bad))
    with pytest.raises(corral.PolicyError, match="full-access"):
        corral.SandboxPolicy(corral.PolicyKind.FULL_ACCESS, allow_unix_sockets=("/x.sock",))


# What the attacks below share: a server of the run's own, and a client.
CLIENT = """
import os, socket, sys, threading
def serve(address, word):
    server = socket.socket(socket.AF_UNIX); server.bind(address); server.listen()
    threading.Thread(target=lambda: server.accept()[0].sendall(word), daemon=True).start()
def ask(address):
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(address); return c.recv(20).decode()
    except OSError as e:
        return f"refused {e.errno}"
"""
OWN = CLIENT + """
own = f"/tmp/own-{os.getpid()}.sock"  # the session's /tmp is shared by its runs
serve(own, b"tmp"); print(ask(own)); os.unlink(own)
serve(os.path.abspath("root.sock"), b"root"); print(ask("root.sock"))  # a relative address
os.unlink("root.sock")
link = f"/tmp/link-{os.getpid()}.sock"
os.symlink(sys.argv[1], link); print(ask(link)); os.unlink(link)
print(ask(sys.argv[1]))
import multiprocessing
manager = multiprocessing.Manager(); shared = manager.dict(k=1); print("manager", shared["k"])
manager.shutdown()
"""


def test_a_command_reaches_its_own_sockets_and_no_host_one(services, workspace):
    _, other = services
    result = corral.run([PYTHON, "-c", OWN, other], cwd=workspace, timeout=60)
    assert result.stdout == "tmp\nroot\nrefused 13\nrefused 13\nmanager 1\n", result.aggregated_output
    targets = sorted(str(d.target) for d in result.denials)
    assert len(targets) == 2 and other in targets
    assert any(t.startswith("/tmp/link-") for t in targets)


SAME_NAME = """
import os, socket, sys
own = socket.socket(socket.AF_UNIX); own.bind("other.sock"); own.listen()  # a relative name
os.chdir(os.path.dirname(sys.argv[1]))  # where a host socket has the same name
for address in (sys.argv[1], "other.sock"):
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(address); print(c.recv(20).decode().strip())
    except OSError as e:
        print(f"refused {e.errno}")
"""


def test_a_host_socket_named_like_one_of_the_runs_own_stays_out_of_reach(services, workspace):
    """A relative name in the kernel's table of listening sockets does not say
    where it was bound: it must not vouch for a host socket of that name."""
    _, other = services
    result = corral.run([PYTHON, "-c", SAME_NAME, other], cwd=workspace, timeout=60)
    assert result.stdout == "refused 13\nrefused 13\n", result.aggregated_output
    assert [d.target for d in result.denials] == [other, "'other.sock'"]
    (workspace / "other.sock").unlink()
    control = corral.run([PYTHON, "-c", SAME_NAME, other], cwd=workspace, policy="full-access",
                         timeout=60)
    assert control.stdout == "other.sock\nother.sock\n", control.aggregated_output


ABSTRACT = CLIENT + """
serve(b"\\0corral-own-" + sys.argv[1].encode(), b"own")
print(ask(b"\\0corral-own-" + sys.argv[1].encode()))
print(ask(b"\\0" + sys.argv[1].encode()))
"""


@pytest.fixture
def host_abstract_socket() -> Iterator[str]:
    """A host service on an abstract Unix socket (as X11 and some D-Bus buses use)."""
    name = f"corral-host-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(b"\0" + name.encode())
    server.listen(8)
    greet_every_client(server, b"host")
    yield name
    server.close()


def test_abstract_sockets_reach_the_runs_own_and_no_host_one(host_abstract_socket, workspace):
    """Abstract names belong to a network namespace: the run's own has only its own
    (Python's multiprocessing listens on such names)."""
    result = corral.run([PYTHON, "-c", ABSTRACT, host_abstract_socket], cwd=workspace, timeout=60)
    assert result.stdout == "own\nrefused 111\n", result.aggregated_output
    control = corral.run([PYTHON, "-c", ABSTRACT, host_abstract_socket], cwd=workspace,
                         policy="full-access", timeout=60)
    assert control.stdout == "own\nhost\n", control.aggregated_output


FULL_BACKLOG = """
import os, socket, sys, threading, time
if sys.argv[1] == "unix":
    server = socket.socket(socket.AF_UNIX); server.bind(f"/tmp/backlog-{os.getpid()}.sock")
else:
    server = socket.socket(); server.bind(("127.0.0.1", 0))
server.listen(0)  # room for one pending connection, never accepted
def tick():
    while True:
        os.write(1, b"tick\\n"); time.sleep(0.1)
threading.Thread(target=tick, daemon=True).start()
for n in range(3):
    client = socket.socket(server.family); client.connect(server.getsockname())
    os.write(1, f"connected {n}\\n".encode())
"""


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_a_connect_that_cannot_complete_stops_neither_output_nor_the_clock(family, workspace):
    """The gate makes the command's connect itself: were it to block (a
    server's backlog full), corral's loop would stop with it, the timeout too."""
    outcome: list[corral.ExecResult] = []
    seen: list[str] = []
    worker = threading.Thread(daemon=True, target=lambda: outcome.append(corral.run(
        [PYTHON, "-c", FULL_BACKLOG, family], cwd=workspace, timeout=1.5,
        on_output=lambda event: seen.append(event.data.decode()))))
    worker.start()
    worker.join(20)
    assert outcome, "corral did not return: its loop waited for the gate's connect"
    result = outcome[0]
    assert result.timed_out and "connected 0" in result.stdout, result.aggregated_output
    assert "connected 2" not in result.stdout
    assert "".join(seen).count("tick") >= 5  # output kept flowing while the connect waited


ACCEPTED_LATER = """
import os, socket, sys, threading, time
if sys.argv[1] == "unix":
    server = socket.socket(socket.AF_UNIX); server.bind(f"/tmp/later-{os.getpid()}.sock")
else:
    server = socket.socket(); server.bind(("127.0.0.1", 0))
server.listen(0)
first = socket.socket(server.family); first.connect(server.getsockname())
def accept_later():
    time.sleep(0.3); print("accepting", flush=True)
    server.accept(); server.accept()
threading.Thread(target=accept_later).start()
second = socket.socket(server.family); second.connect(server.getsockname())
print("second connected", flush=True)
"""


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_a_connect_that_waits_completes_when_the_server_accepts(family, workspace):
    result = corral.run([PYTHON, "-c", ACCEPTED_LATER, family], cwd=workspace, timeout=30)
    assert result.exit_code == 0, result.aggregated_output
    assert result.stdout == "accepting\nsecond connected\n"


SIGNALLED = """
import os, signal, socket, sys, tempfile, threading, time
family, mode = sys.argv[1], sys.argv[2]
if family == "unix":
    server = socket.socket(socket.AF_UNIX)
    server.bind(os.path.join(tempfile.gettempdir(), f"signalled-{os.urandom(8).hex()}.sock"))
else:
    server = socket.socket(); server.bind(("127.0.0.1", 0))
server.listen(0)
first = socket.socket(server.family); first.connect(server.getsockname())  # the backlog is full
class Alarm(Exception):
    pass
def on_alarm(signum, frame):
    if mode == "interrupt":
        raise Alarm
signal.signal(signal.SIGALRM, on_alarm)
signal.siginterrupt(signal.SIGALRM, mode == "interrupt")  # else SA_RESTART
if mode != "interrupt":
    r, w = os.pipe(); os.set_blocking(w, False); signal.set_wakeup_fd(w)
    if os.fork() == 0:  # sees the handler run (it writes to w), then accepts
        os.read(r, 1); print("signal delivered", flush=True)
        time.sleep(0.7); print("accepting", flush=True)
        server.accept(); server.accept(); os._exit(0)
    if mode == "threaded":
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
signal.setitimer(signal.ITIMER_REAL, 0.3)
second = socket.socket(server.family)
try:
    second.connect(server.getsockname())
    print("connected", flush=True)
except Alarm:
    print("interrupted", flush=True)
"""


@pytest.fixture(params=["bwrap", "landlock"])
def rung(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> corral.SandboxPolicy:
    """workspace-write on each rung: bwrap (the module's), and Landlock where
    the kernel has it."""
    if request.param == "bwrap":
        return corral.SandboxPolicy.workspace_write()
    abi, why = landlock_abi()
    if abi < LandlockBackend.MINIMUM_ABI:
        pytest.skip(f"Landlock ABI {abi} here ({why or 'too old'})")
    monkeypatch.setattr(corral.sandbox.bwrap, "bwrap_backend", lambda: None)
    return corral.SandboxPolicy.workspace_write(accept_weaker=(
        "shared-tmp", "visible-processes", "unprotected-paths", "changeable-attributes"))


@pytest.mark.parametrize("family", ["unix", "tcp"])
@pytest.mark.parametrize("mode", ["interrupt", "restart", "threaded"])
def test_a_caught_signal_reaches_a_waiting_connect(family, mode, rung, workspace):
    """corral completes a blocking connect that cannot complete at once
    while the command's thread waits for its answer; a caught signal must
    interrupt that wait as it interrupts the kernel's own connect: EINTR
    for a handler without SA_RESTART (Python's then raises), and with
    SA_RESTART the handler at once and the connect carried on to its end
    (the signal sent to the process: "threaded" where it has a second
    thread).  The gate's filter makes the wait one that only a fatal signal
    ends, so that no call corral has begun to make is interrupted, and
    corral looks for a signal itself."""
    expected = ("interrupted\n" if mode == "interrupt"
                else "signal delivered\naccepting\nconnected\n")
    control = corral.run([PYTHON, "-c", SIGNALLED, family, mode], cwd=workspace,
                         policy="full-access", timeout=20)
    assert control.stdout == expected, control.aggregated_output
    result = corral.run([PYTHON, "-c", SIGNALLED, family, mode], cwd=workspace,
                        policy=rung, timeout=20)
    assert result.sandbox != "none"
    assert result.stdout == expected and result.exit_code == 0, result.aggregated_output


UNANSWERED = """
import errno, os, signal, socket
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(8)
signal.signal(signal.SIGALRM, lambda signum, frame: None)  # no SA_RESTART: Python's way
print("connecting", flush=True)
signal.setitimer(signal.ITIMER_REAL, 0.3)
client = socket.socket(); client.connect(server.getsockname())
try:
    client.getpeername(); print("connected", flush=True)
except OSError as e:
    print("not connected:", errno.errorcode[e.errno], flush=True)
"""


def test_a_signal_does_not_interrupt_a_call_corral_is_making(rung, workspace):
    """Once corral has taken a call to make it, a caught signal does not
    interrupt the command's wait for the answer (its filter waits killably,
    Linux 5.19): the call ends as corral makes it.  Here corral's loop is
    held up (its output callback sleeps) while a connect to the command's
    own server waits for it and a timer's signal arrives.  An interruptible
    wait would end at the signal, before corral made the connect, and
    Python, which takes EINTR from connect for a connection still under
    way, would carry on with a socket that never connected."""
    def hold_up(event: corral.OutputEvent) -> None:
        if b"connecting" in event.data:
            time.sleep(1.0)

    result = corral.run([PYTHON, "-c", UNANSWERED], cwd=workspace, policy=rung, timeout=20,
                        on_output=hold_up)
    assert result.sandbox != "none"
    assert result.stdout == "connecting\nconnected\n", result.aggregated_output


SWAP_DIRECTORY = """
import os, socket, sys, threading
host_dir = sys.argv[1]
base = f"/tmp/swap-{os.getpid()}"  # the session's /tmp is shared by its runs
os.mkdir(base); os.mkdir(f"{base}/real")
server = socket.socket(socket.AF_UNIX); server.bind(f"{base}/real/other.sock"); server.listen(64)
def serve():
    while True:
        server.accept()[0].sendall(b"own")
threading.Thread(target=serve, daemon=True).start()
stop = False
def swap():  # /tmp/d: now the command's own directory, now a link to the host's
    while not stop:
        os.symlink(f"{base}/real", f"{base}/d.new"); os.rename(f"{base}/d.new", f"{base}/d")
        os.symlink(host_dir, f"{base}/d.new"); os.rename(f"{base}/d.new", f"{base}/d")
threading.Thread(target=swap, daemon=True).start()
greetings = {}
for _ in range(300):
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(f"{base}/d/other.sock"); word = c.recv(20).decode().strip()
    except OSError:
        word = "refused"
    greetings[word] = greetings.get(word, 0) + 1
    c.close()
stop = True
print(greetings)
"""


def test_swapping_a_directory_under_the_check_reaches_no_host_socket(services, host_dir):
    _race([PYTHON, "-c", SWAP_DIRECTORY, str(host_dir)], host_dir, "read-only", reached="own")


def test_without_the_gate_unix_sockets_are_refused_outright(monkeypatch, services, workspace):
    """Kernels before 5.6 cannot run the gate: no Unix socket then, and no allowlist."""
    import corral.sandbox.socket_gate as socket_gate

    monkeypatch.setattr(socket_gate, "_supported", False)
    allowed, _ = services
    code = "import socket; socket.socket(socket.AF_UNIX); print('created')"
    result = corral.run([PYTHON, "-c", code], cwd=workspace)
    assert result.exit_code != 0 and "created" not in result.stdout
    with pytest.raises(corral.PolicyError, match="Linux 5.6"):
        corral.run(["true"], cwd=workspace,
                   policy=corral.SandboxPolicy.workspace_write(allow_unix_sockets=(allowed,)))


def test_without_the_init_unix_sockets_are_refused_outright(monkeypatch, services, workspace):
    """In bwrap's sandbox the gate's listener comes from corral's init:
    where the init cannot run, no Unix socket, and no allowlist."""
    import corral.sandbox.bwrap as bwrap

    found = bwrap.bwrap_backend()
    if found is None:
        pytest.skip(f"no usable bwrap here: {bwrap.bwrap_absence()}")
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: bwrap.BwrapBackend(found.path, None))
    allowed, _ = services
    code = "import socket; socket.socket(socket.AF_UNIX); print('created')"
    result = corral.run([PYTHON, "-c", code], cwd=workspace)
    assert result.sandbox == "bwrap"
    assert result.exit_code != 0 and "created" not in result.stdout
    with pytest.raises(corral.PolicyError, match="sandbox init"):
        corral.run(["true"], cwd=workspace,
                   policy=corral.SandboxPolicy.workspace_write(allow_unix_sockets=(allowed,)))


def test_a_host_service_socket_inside_the_workspace_stays_out_of_reach(workspace):
    """A root may hold a host daemon's socket (~/.docker/run/docker.sock when the root
    is the home directory): being beneath a writable root does not make it the command's."""
    host_socket = socket.socket(socket.AF_UNIX)
    host_socket.bind(str(workspace / "daemon.sock"))
    host_socket.listen(8)
    greet_every_client(host_socket, b"daemon")
    try:
        refused = corral.run([PYTHON, "-c", CONNECT, str(workspace / "daemon.sock")],
                             cwd=workspace)
        assert refused.exit_code == 3 and refused.stdout == "refused 13\n"
        control = corral.run([PYTHON, "-c", CONNECT, str(workspace / "daemon.sock")],
                             cwd=workspace, policy="full-access")
        assert control.stdout == "daemon"
    finally:
        host_socket.close()


# The start of a child's script: loads build_program(OPTIONS) with a new
# listener, which it sends over the socket argv[1], as corral's spawn does.
UNDER_A_LISTENER = """
import ctypes, os, socket, sys
from corral.sandbox.seccomp import build_program

program = build_program(OPTIONS)
buffer = ctypes.create_string_buffer(program)
class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Program(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(38, 1, 0, 0, 0)  # no_new_privs
listener = libc.syscall(317, 1, 8, ctypes.byref(fprog))  # seccomp(SET_MODE_FILTER, NEW_LISTENER)
sock = int(sys.argv[1])
socket.send_fds(socket.socket(fileno=os.dup(sock)), [b"x"], [listener])
os.close(listener)
"""

BLOCKED_CALLERS = UNDER_A_LISTENER.replace("OPTIONS", 'notify=("connect",)') + """
import threading
def call():
    socket.socket(socket.AF_UNIX).connect_ex("/nonexistent/corral")
for _ in range(1500):  # each blocks in its notification; together more than a pipe holds
    threading.Thread(target=call, daemon=True).start()
print("waiting", flush=True)
threading.Event().wait()
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the script's seccomp call is x86_64's")
def test_a_run_ends_even_when_its_notifications_fill_the_servers_pipe():
    """The thread serving the listener passes each socket call on through a
    pipe; with 1500 callers waiting and nobody reading, it blocks on a
    full pipe.  Ending the gate must still return (it once joined the thread
    before reading the pipe, and waited forever)."""
    import subprocess

    from corral.sandbox.socket_gate import SocketGate

    gate = SocketGate(())
    child = subprocess.Popen([sys.executable, "-c", BLOCKED_CALLERS, str(gate.child_end)],
                             pass_fds=(gate.child_end,), stdout=subprocess.PIPE, text=True)
    try:
        gate.started()
        assert child.stdout is not None and child.stdout.readline() == "waiting\n"
        # The server took the listener itself; nothing is read from here on.
        deadline = time.monotonic() + 10
        while _unread_bytes(gate._reports) < 60000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _unread_bytes(gate._reports) >= 60000, "the pipe never filled"  # 64 KiB, in pages
        closer = threading.Thread(target=gate.close, daemon=True)
        closer.start()
        closer.join(10)
        assert not closer.is_alive(), "closing the gate hung on its server thread"
    finally:
        child.kill()
        child.wait()


def _unread_bytes(fd: int) -> int:
    import array
    import fcntl
    import termios

    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count, True)
    return count[0]


def test_only_a_tcp_socket_the_gate_bound_may_listen():
    """Below Landlock ABI 4 nothing but the gate keeps the command's TCP
    sockets off the network: a bind the gate let through for a Unix socket
    may land on a TCP socket the command swapped in meanwhile, at any
    address.  Such a socket may not listen; one the gate bound (on
    loopback), or that is not bound yet (bound there first), may."""
    from corral.sandbox.socket_gate import SocketGate

    gate = SocketGate(())
    swapped, unbound, bound = (socket.socket() for _ in range(3))
    try:
        swapped.bind(("0.0.0.0", 0))  # as the kernel would have, for the command
        assert gate._listen(swapped.fileno(), socket.AF_INET, 5) == (0, errno.EACCES, 0)
        assert gate._listen(unbound.fileno(), socket.AF_INET, 5)[1] == 0
        assert unbound.getsockname()[0] == "127.0.0.1"
        assert gate._bind_inet(bound.fileno(), socket.AF_INET,
                               _sockaddr_in("0.0.0.0", 0))[1] == 0
        assert gate._listen(bound.fileno(), socket.AF_INET, 5)[1] == 0
        assert bound.getsockname()[0] == "127.0.0.1"
    finally:
        for sock in (swapped, unbound, bound):
            sock.close()
        gate.close()


def _sockaddr_in(address: str, port: int) -> bytes:
    return (struct.pack("<H", socket.AF_INET) + struct.pack(">H", port)
            + socket.inet_aton(address) + bytes(8))


def test_the_gate_keeps_each_refusal_once_and_at_most_twenty():
    """A command refused in a loop must not grow corral's memory with it."""
    from corral.sandbox.socket_gate import SocketGate

    gate = SocketGate(())
    try:
        for _ in range(1000):
            gate._refused(corral.Denial(corral.DenialKind.NETWORK, "192.0.2.1:443", "r", "e"))
        assert len(gate.denials) == 1
        for port in range(1000):
            gate._refused(corral.Denial(corral.DenialKind.NETWORK, f"192.0.2.1:{port}", "r", "e"))
        assert len(gate.denials) == 20
    finally:
        gate.close()


KILLS = UNDER_A_LISTENER.replace("OPTIONS", "witness_signals=True") + """
os.close(sock)  # the test answers in its place, as the sandbox's PID 1 would
for pid in sys.argv[2:]:
    if pid == "child":  # one of its own, under its filter, left running
        import subprocess
        pid = subprocess.Popen(["sleep", "30"]).pid
        print(pid, flush=True)
    try:
        os.kill(int(pid), 0)
    except OSError:
        pass
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the script's seccomp call is x86_64's")
def test_a_kill_is_reported_by_what_the_sandboxs_pid_1_answers(tmp_path):
    """The server asks the sandbox's PID 1 about each kill of a pid above
    the last it answered, and reports one the namespace never gave out
    (above its last, not in its /proc); the gate keeps it for a failed run
    if the host has that process.  Here the test answers in the init's
    place: every rule is tried, as any user, whatever the host's pids."""
    import struct
    import subprocess

    from corral.sandbox.socket_gate import SocketGate
    from corral.sandbox.witness import Witness

    victims = sorted((subprocess.Popen(["sleep", "30"]) for _ in range(5)), key=lambda p: p.pid)
    first, reported, below, after, silent = (victim.pid for victim in victims)
    answers = {
        first: (first - 1, 1),  # in the namespace's /proc: one of its own after a wrap-around
        reported: (reported - 1, 0),  # above the last, not there: never given out
        below: (below, 0),  # at the last: may be one of its own that has ended
        silent: None,  # no answer: never asked again in this run
    }
    witness = Witness(corral.SandboxPolicy.workspace_write(), str(tmp_path), None)
    gate = SocketGate((), witness=witness, init_answers=True)
    asked = []
    pid_1 = os.dup(gate.child_end)  # its own: the gate closes child_end

    def init() -> None:
        while len(question := os.read(pid_1, 4)) == 4:  # until the gate closes its end
            [pid] = struct.unpack("<i", question)
            asked.append(pid)
            if answers.get(pid) is not None:
                os.write(pid_1, struct.pack("<ii", *answers[pid]))

    # The reported pid twice (reported once), then `below` again (at or
    # below the last answered: not asked), then one more after the silence.
    kills = [first, reported, reported, below, first, silent, after]
    child = subprocess.Popen([sys.executable, "-c", KILLS, str(gate.child_end),
                              *map(str, kills)], pass_fds=(gate.child_end,))
    gate.started()
    answering = threading.Thread(target=init, daemon=True)
    answering.start()
    try:
        assert child.wait(10) == 0
        deadline = time.monotonic() + 10
        while gate.handle() and time.monotonic() < deadline:
            time.sleep(0.01)
        gate.close()
        answering.join(10)
        assert not answering.is_alive()
        assert asked == [first, reported, below, silent]
        assert gate.refusals(failed=False) == ()
        [denial] = gate.refusals(failed=True)
        assert (denial.kind, denial.target) == (corral.DenialKind.PRIVILEGE, f"pid {reported}")
        assert f"pid {reported} (sleep) is a process outside the sandbox" in denial.remedy
    finally:
        os.close(pid_1)
        for victim in victims:
            victim.kill()
            victim.wait()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the script's seccomp call is x86_64's")
def test_without_a_pid_namespace_a_kill_outside_is_told_by_the_filters_a_process_has(tmp_path):
    """Under Landlock (no PID namespace, no init to ask), a process of the
    run's has its seccomp filter on top of corral's: a kill of one without
    it is reported, of one with it (a child of the command) is not."""
    import subprocess

    from corral.sandbox.socket_gate import SocketGate
    from corral.sandbox.witness import Witness

    victim = subprocess.Popen(["sleep", "30"])
    witness = Witness(corral.SandboxPolicy.workspace_write(), str(tmp_path), None)
    gate = SocketGate((), witness=witness)
    child = subprocess.Popen([sys.executable, "-c", KILLS, str(gate.child_end), str(victim.pid),
                              "child"], pass_fds=(gate.child_end,), stdout=subprocess.PIPE,
                             text=True)
    gate.started()
    own = -1
    try:
        assert child.stdout is not None
        own = int(child.stdout.readline())
        assert child.wait(10) == 0
        gate.close()  # reads what the server reported (before each kill went on)
        [denial] = gate.refusals(failed=True)
        assert (denial.target, denial.evidence) == (
            f"pid {victim.pid}", f"kill({victim.pid}) refused: Operation not permitted in the "
            "sandbox")
    finally:
        victim.kill()
        victim.wait()
        if own > 0:
            os.kill(own, 9)
