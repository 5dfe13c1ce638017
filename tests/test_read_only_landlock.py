"""read-only on the Landlock rung: where bubblewrap cannot run.

bwrap is hidden from the ladder, as on a machine without it (or without user
namespaces).  The policy is refused until the caller accepts, by name, what
Landlock cannot do; then each attack must still fail, with a control.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import corral
import corral.sandbox.bwrap
from conftest import (MECHANISMS, host_queue, kill_quietly, openable_device, pid_alive, sysv_ids,
                      wait_dead)
from corral.sandbox.landlock import LandlockBackend, landlock_abi

ABI, WHY = landlock_abi()
pytestmark = [pytest.mark.skipif(ABI < LandlockBackend.MINIMUM_ABI,
                                 reason=f"Landlock ABI {ABI} here ({WHY or 'too old'})"),
              pytest.mark.usefixtures("landlock_at")]
PYTHON = os.path.realpath(sys.executable)
ACCEPTED = ("shared-tmp", "visible-processes", "no-deny-read", "changeable-attributes")
POLICY = corral.SandboxPolicy.read_only(accept_weaker=ACCEPTED)


@pytest.fixture(autouse=True)
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corral.sandbox.bwrap, "bwrap_backend", lambda: None)


def test_refused_until_the_weaker_guarantees_are_accepted():
    with pytest.raises(corral.PolicyError) as info:
        corral.run(["true"], policy="read-only")
    message = str(info.value)
    assert "bubblewrap" in message and "shared-tmp" in message and "visible-processes" in message
    assert "changeable-attributes" in message
    result = corral.run(["sh", "-c", 'echo "$CORRAL_SANDBOX $CORRAL_SANDBOX_NETWORK_DISABLED"'],
                        policy=POLICY)
    assert result.stdout == "landlock 1\n" and result.sandbox == "landlock"


def test_writes_go_nowhere_but_the_private_tmpdir(host_dir):
    (host_dir / "file").write_text("original\n")
    script = (f'echo started; echo x > "$TMPDIR/ok" && cat "$TMPDIR/ok"; '
              f'echo evil >> {host_dir}/file; echo evil > {host_dir}/new; '
              f'echo evil > /tmp/corral-landlock-{os.getpid()}')
    result = corral.run(["sh", "-c", script], policy=POLICY)
    assert result.stdout == "started\nx\n"
    assert (host_dir / "file").read_text() == "original\n"
    assert not (host_dir / "new").exists()
    assert not os.path.exists(f"/tmp/corral-landlock-{os.getpid()}")
    control = corral.run(["sh", "-c", f"echo evil > {host_dir}/new"], policy="full-access")
    assert control.exit_code == 0 and (host_dir / "new").exists()


def test_the_private_tmpdir_lasts_for_the_session():
    first = corral.run(["sh", "-c", 'echo kept > "$TMPDIR/f"; echo "$TMPDIR"'], policy=POLICY)
    tmpdir = first.stdout.strip()
    assert tmpdir.startswith(f"{tempfile.gettempdir()}/corral-{os.getuid()}/corral-session-")
    second = corral.run(["sh", "-c", 'cat "$TMPDIR/f"'], policy=POLICY)
    assert second.stdout == "kept\n"


def test_no_socket_reaches_the_host(host_dir):
    server = socket.create_server(("127.0.0.1", 0))
    unix_path = str(host_dir / "s.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    port = server.getsockname()[1]
    code = ("import socket; print('started', flush=True); "
            f"socket.create_connection(('127.0.0.1', {port}), 2); print('tcp') ")
    unix_code = ("import socket; print('started', flush=True); s = socket.socket(socket.AF_UNIX); "
                 f"s.connect({unix_path!r}); print('unix')")
    abstract_name = f"\0corral-landlock-{os.getpid()}".encode()
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(abstract_name)
    abstract.listen()
    abstract_code = unix_code.replace(repr(unix_path), repr(abstract_name)).replace("unix'", "abstract'")
    try:
        for script, word in ((code, "tcp"), (unix_code, "unix"), (abstract_code, "abstract")):
            sandboxed = corral.run([PYTHON, "-c", script], policy=POLICY)
            assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
            control = corral.run([PYTHON, "-c", script], policy="full-access")
            assert control.stdout == f"started\n{word}\n"
    finally:
        server.close()
        unix.close()
        abstract.close()


def test_with_network_the_hosts_abstract_sockets_are_reached_as_under_bwrap():
    """A run with network shares the host's network namespace under bwrap,
    where the host's abstract Unix sockets live (X11's, D-Bus's): Landlock
    lets the command reach them too, not just without network."""
    name = f"\0corral-landlock-network-{os.getpid()}".encode()
    server = socket.socket(socket.AF_UNIX)
    server.bind(name)
    server.listen()
    code = f"import socket; socket.socket(socket.AF_UNIX).connect({name!r}); print('connected')"
    try:
        with_network = corral.run([PYTHON, "-c", code], policy=corral.SandboxPolicy.read_only(
            network=True, accept_weaker=ACCEPTED))
        assert with_network.sandbox == "landlock"
        assert with_network.stdout == "connected\n", with_network.aggregated_output
        without = corral.run([PYTHON, "-c", code], policy=POLICY)
        assert without.stdout == "" and without.exit_code != 0
    finally:
        server.close()


def test_a_host_loopback_service_is_refused_and_reported(tcp_listener):
    host, port = tcp_listener
    code = ("import socket; print('started', flush=True); "
            f"print(socket.create_connection(({host!r}, {port}), 2).recv(100))")
    sandboxed = corral.run([PYTHON, "-c", code], policy=POLICY)
    assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
    assert [(d.kind, d.target) for d in sandboxed.denials] == [
        (corral.DenialKind.NETWORK, f"127.0.0.1:{port}")]
    control = corral.run([PYTHON, "-c", code], policy="full-access")
    assert "hello from the host" in control.stdout


SERVERS = {
    "loopback": "socket.create_server(('127.0.0.1', 0))",
    "every address": "socket.create_server(('', 0))",
    "dual-stack IPv6": "socket.create_server(('::', 0), family=socket.AF_INET6, "
                       "dualstack_ipv6=True)",
    "listen without bind": "socket.socket(); server.listen()",
}


@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
def test_a_loopback_server_inside_the_run_works(server):
    """Test suites start servers and connect to them; without a network
    namespace they listen on loopback, whatever address they asked for."""
    if server.endswith("server.listen()"):
        server = "socket.socket()\nserver.listen()"
    code = (f"import socket, threading\nserver = {server}\n" + textwrap.dedent(
        """
        port = server.getsockname()[1]
        print(server.getsockname()[0])
        threading.Thread(target=lambda: server.accept()[0].sendall(b"inside"), daemon=True).start()
        print(socket.create_connection(("127.0.0.1", port), 5).recv(10).decode())
        """))
    result = corral.run([PYTHON, "-c", code], policy=POLICY)
    assert result.exit_code == 0, result.aggregated_output
    bound, answer = result.stdout.split()
    assert bound in ("127.0.0.1", "::ffff:127.0.0.1") and answer == "inside"
    assert result.denials == ()


def test_a_server_on_another_address_of_the_host_is_refused():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # routes only: no packet is sent
        address = probe.getsockname()[0]
    except OSError:  # no route (a container or VM with loopback only)
        address = "127.0.0.1"
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    code = f"import socket; socket.create_server(({address!r}, 0)); print('listening')"
    sandboxed = corral.run([PYTHON, "-c", code], policy=POLICY)
    assert sandboxed.exit_code != 0 and "listening" not in sandboxed.stdout
    assert [d.kind for d in sandboxed.denials] == [corral.DenialKind.NETWORK]
    assert corral.run([PYTHON, "-c", code], policy="full-access").stdout == "listening\n"


def test_a_bind_to_every_address_in_disguise_is_refused():
    """The kernel binds AF_UNSPEC with 0.0.0.0 to every address of the host."""
    code = textwrap.dedent(
        """
        import ctypes, socket, struct
        libc = ctypes.CDLL(None, use_errno=True)
        s = socket.socket()
        address = struct.pack("<HH4s8x", socket.AF_UNSPEC, 0, bytes(4))
        if libc.bind(s.fileno(), address, len(address)) == 0:
            print("bound", s.getsockname()[0])
        else:
            print("refused", ctypes.get_errno())
        """)
    assert corral.run([PYTHON, "-c", code], policy=POLICY).stdout == "refused 97\n"
    assert corral.run([PYTHON, "-c", code], policy="full-access").stdout == "bound 0.0.0.0\n"


def test_sharing_a_host_services_port_does_not_reach_it():
    """SO_REUSEPORT lets the command listen on the port of a host service of
    the same user; a connect there could reach either, so it is refused."""
    host = socket.socket()
    host.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    host.bind(("127.0.0.1", 0))
    host.listen()
    port = host.getsockname()[1]
    code = textwrap.dedent(
        f"""
        import socket
        own = socket.socket()
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        own.bind(("127.0.0.1", {port}))
        own.listen()
        print("listening", flush=True)
        socket.create_connection(("127.0.0.1", {port}), 2)
        print("connected")
        """)
    try:
        sandboxed = corral.run([PYTHON, "-c", code], policy=POLICY)
        assert sandboxed.stdout == "listening\n" and sandboxed.exit_code != 0
        assert [d.target for d in sandboxed.denials] == [f"127.0.0.1:{port}"]
        control = corral.run([PYTHON, "-c", code], policy="full-access")
        assert control.stdout == "listening\nconnected\n"
    finally:
        host.close()


def test_tcp_fast_open_and_udp_are_refused(tcp_listener):
    host, port = tcp_listener
    fast_open = ("import socket; print('started', flush=True); s = socket.socket(); "
                 f"s.sendto(b'x', socket.MSG_FASTOPEN, ({host!r}, {port})); print(s.recv(100))")
    udp = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM); print('created')"
    sandboxed = corral.run([PYTHON, "-c", fast_open], policy=POLICY)
    assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
    assert "hello from the host" in corral.run([PYTHON, "-c", fast_open],
                                               policy="full-access").stdout
    assert corral.run([PYTHON, "-c", udp], policy=POLICY).exit_code != 0
    assert corral.run([PYTHON, "-c", udp], policy="full-access").stdout == "created\n"


# A signal to the process argv[1] by the route argv[2]: each call that sends
# one, and each that names the process SIGIO goes to (then caused at once).
SIGNAL = textwrap.dedent("""
    import ctypes, fcntl, os, signal, socket, struct, sys, time
    target, route = int(sys.argv[1]), sys.argv[2]
    libc = ctypes.CDLL(None, use_errno=True)
    numbers = {"x86_64": (200, 234, 297), "aarch64": (130, 131, 240)}[os.uname().machine]
    def call(number, *args):
        if libc.syscall(number, *args) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    def queued():  # a siginfo_t as sigqueue makes one: SIGTERM, SI_QUEUE
        return ctypes.create_string_buffer(struct.pack("iii", 15, 0, -1), 128)
    def owner(set_owner):
        ours, theirs = socket.socketpair()
        set_owner(ours)
        fcntl.fcntl(ours, fcntl.F_SETFL, fcntl.fcntl(ours, fcntl.F_GETFL) | os.O_ASYNC)
        theirs.send(b"x")  # SIGIO to the owner
        time.sleep(0.3)
    routes = {
        "kill": lambda: os.kill(target, signal.SIGTERM),
        "group": lambda: os.killpg(target, signal.SIGTERM),
        # SIGCONT, which resumes a stopped process and does nothing to the
        # rest: were the sandbox to let it out, no process would end.
        "everyone": lambda: os.kill(-1, signal.SIGCONT),
        "tkill": lambda: call(numbers[0], target, 15),
        "tgkill": lambda: call(numbers[1], target, target, 15),
        "sigqueue": lambda: call(138 if numbers[0] == 130 else 129, target, 15, queued()),
        "rt_tgsigqueueinfo": lambda: call(numbers[2], target, target, 15, queued()),
        "pidfd": lambda: signal.pidfd_send_signal(os.pidfd_open(target), signal.SIGTERM),
        "proc directory": lambda: signal.pidfd_send_signal(
            os.open(f"/proc/{target}", os.O_RDONLY | os.O_DIRECTORY), signal.SIGTERM),
        "F_SETOWN": lambda: owner(lambda s: fcntl.fcntl(s, fcntl.F_SETOWN, target)),
        "F_SETOWN_EX": lambda: owner(
            lambda s: fcntl.fcntl(s, 15, struct.pack("ii", 1, target))),  # F_OWNER_PID
        "FIOSETOWN": lambda: owner(lambda s: fcntl.ioctl(s, 0x8901, struct.pack("i", target))),
    }
    try:
        routes[route]()
        print("sent")
    except OSError as e:
        print("refused", e.errno)
        sys.exit(3)
""")
SIGNAL_ROUTES = ["kill", "group", "everyone", "tkill", "tgkill", "sigqueue",
                 "rt_tgsigqueueinfo", "pidfd", "proc directory", "F_SETOWN", "F_SETOWN_EX",
                 "FIOSETOWN"]
# Those that name where SIGIO goes: Landlock's scoping (ABI 6) lets the
# owner be set, and keeps the signal from it; corral's gate refuses it.
OWNER_ROUTES = {"F_SETOWN", "F_SETOWN_EX", "FIOSETOWN"}


def _state(pid: int) -> str:
    """The state of process pid, as its /proc stat has it (T: stopped)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def _wait_ended(process: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
    try:
        process.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.parametrize("route", SIGNAL_ROUTES)
def test_host_processes_cannot_be_signalled(route, landlock_at):
    """By no route: Landlock's signal scoping (ABI 6) or, below it,
    corral's gate keeps every signal from the host's processes, SIGIO
    included (which ends a process that does not handle it).  The same
    route ends the process outside the sandbox (but -1, which there would
    signal every process of the user: there, the SIGCONT it sends would
    resume the stopped victim)."""
    victim = subprocess.Popen(["sleep", "30"], process_group=0)
    try:
        if route == "everyone":
            victim.send_signal(signal.SIGSTOP)
            while _state(victim.pid) != "T":
                time.sleep(0.01)
        argv = [PYTHON, "-c", SIGNAL, str(victim.pid), route]
        result = corral.run(argv, policy=POLICY)
        assert not _wait_ended(victim, 0.3), result.aggregated_output
        if route == "everyone":
            assert _state(victim.pid) == "T", result.aggregated_output
            # No process of the run's but the caller: none to signal, as in a
            # PID namespace of its own (ESRCH), where the gate decides;
            # Landlock's scoping refuses each host process without a word.
            assert result.stdout == ("sent\n" if landlock_at >= LandlockBackend.SIGNAL_SCOPING_ABI
                                     else "refused 3\n")
            assert result.denials == ()
            return
        if route in OWNER_ROUTES and landlock_at >= LandlockBackend.SIGNAL_SCOPING_ABI:
            assert result.stdout == "sent\n", result.aggregated_output
            return
        assert result.stdout == "refused 1\n", result.aggregated_output
        target = f"process group {victim.pid}" if route == "group" else f"pid {victim.pid}"
        assert [(d.kind.value, d.target) for d in result.denials] == [("privilege", target)]
        control = corral.run(argv, policy="full-access")
        assert control.stdout == "sent\n", control.aggregated_output
        assert _wait_ended(victim)
    finally:
        victim.kill()
        victim.wait()


OWN_PROCESSES = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    def state(pid):
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    for route in sys.argv[2:]:
        child = subprocess.Popen(["sleep", "30"], process_group=0)
        if route == "everyone":  # SIGCONT: it resumes a process of the run's that was stopped
            os.kill(child.pid, signal.SIGSTOP)
            while state(child.pid) != "T":
                time.sleep(0.01)
        sent = subprocess.run([sys.executable, "-c", sys.argv[1], str(child.pid), route],
                              capture_output=True, text=True)
        if route == "everyone":
            print(route, sent.stdout.strip(), "resumed" if state(child.pid) != "T" else "stopped")
            child.kill()
        print(route, sent.stdout.strip(), child.wait(5))
""")


def test_the_runs_own_processes_are_signalled_by_every_route():
    """Each route reaches a process of the run's own, at any ABI."""
    result = corral.run([PYTHON, "-c", OWN_PROCESSES, SIGNAL, *SIGNAL_ROUTES], policy=POLICY)
    assert result.exit_code == 0 and result.denials == (), result.aggregated_output
    expected = [line for route in SIGNAL_ROUTES for line in (
        ["everyone sent resumed", "everyone sent -9"] if route == "everyone" else
        [f"{route} sent {-29 if route in OWNER_ROUTES else -15}"])]
    assert result.stdout.splitlines() == expected


# A daemon (a session of its own, whose leader lives on) reached from the
# run's first session, which it reaches too; then one whose session's
# leader has ended (a second fork), and another process of that session
# since (the session is anchored on each in turn).  The orphan is killed
# first: the daemon is the shell's child, and the SIGCHLD of its end could
# land while the next kill waits for the gate and interrupt it (see the
# README's Limits on EINTR).
DAEMONS = """
setsid sh -c 'kill -0 $1 && echo reached the first session; echo $$ > "$TMPDIR/daemon"
              exec sleep 30' sh $$ &
setsid sh -c 'sleep 0.3 & sleep 30 & echo $! > "$TMPDIR/orphan"' &
sleep 0.6; daemon=$(cat "$TMPDIR/daemon"); orphan=$(cat "$TMPDIR/orphan")
rm "$TMPDIR/daemon" "$TMPDIR/orphan"  # the session's: the next run's too
echo $orphan; kill $orphan && echo killed the orphan
echo $daemon; kill $daemon && echo killed the daemon
"""


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_the_runs_daemons_are_the_runs(mechanism, landlock_at, tmp_path):
    """A process of the run's that started a session of its own (a daemon,
    as pg_ctl starts PostgreSQL) is in its Landlock domain, and in its
    cgroup where it has one: reached, and reaches the rest.  Below ABI 6,
    without a cgroup, the gate knows the run's sessions by a process of
    each it watches: the leader, then, once that exits (a daemon that
    forked again), another of the session's."""
    result = corral.run(["sh", "-c", DAEMONS], cwd=tmp_path, policy=POLICY,
                        kill_mechanism=mechanism)
    lines = result.stdout.splitlines()
    try:
        assert lines[0] == "reached the first session" and lines[2] == "killed the orphan", (
            result.aggregated_output)
        assert lines[4:] == ["killed the daemon"], result.aggregated_output
    finally:
        for pid in lines[1::2][:2]:
            if pid.isdigit():
                kill_quietly(int(pid))


# Two daemons (a session of its own each; the second's leader ends at once,
# leaving its child), their pids printed, and then the command waits.
ESCAPING = """
setsid sh -c 'echo $$; exec sleep 300' &
setsid sh -c 'sleep 300 & echo $!' &
sleep 0.5; echo started; exec sleep "$1"
"""


@pytest.mark.parametrize("ending", ["exit", "timeout"])
def test_the_runs_daemons_end_with_it(ending):
    """Without a PID namespace or a cgroup of the run's own, a daemon in a
    session it made escapes the kill of the run's process group (the
    control, without a sandbox, shows it); the gate knows the run's
    sessions, and ends them with it, whether its command exits first or its
    timeout ends it."""
    argv, timeout = ["sh", "-c", ESCAPING, "sh", "0" if ending == "exit" else "60"], 3
    mechanism = corral.KillMechanism.PROCESS_GROUP
    control = corral.run(argv, policy="full-access", timeout=timeout, drain_timeout=0.5,
                         kill_mechanism=mechanism)
    escaped = [int(line) for line in control.stdout.split()[:2]]
    try:
        assert control.stdout.endswith("started\n") and control.drain_timed_out
        assert all(pid_alive(pid) for pid in escaped)
    finally:
        for pid in escaped:
            kill_quietly(pid)
    result = corral.run(argv, policy=POLICY, timeout=timeout, drain_timeout=5,
                        kill_mechanism=mechanism)
    daemons = [int(line) for line in result.stdout.split()[:2]]
    try:
        assert result.sandbox == "landlock" and result.kill_mechanism is mechanism
        assert result.stdout.endswith("started\n") and len(daemons) == 2, result.aggregated_output
        assert result.timed_out is (ending == "timeout") and not result.drain_timed_out
        assert all(wait_dead(pid, timeout=1.0) for pid in daemons)
    finally:
        for pid in daemons:
            kill_quietly(pid)


PRIVILEGED = {
    "unshare": "unshare --user true",
    "mount": "unshare --mount sh -c 'mount -t tmpfs none /mnt'",
    "chroot": "chroot / true",
    "setuid": f"{PYTHON} -c 'import os; os.setuid(4242)'",
    "raw socket": f"{PYTHON} -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)'",
    # Writes the current value back, so the control changes nothing.
    "global sysctl": "v=$(cat /proc/sys/vm/overcommit_ratio); echo $v > /proc/sys/vm/overcommit_ratio",
}


@pytest.mark.parametrize("attack", PRIVILEGED.values(), ids=PRIVILEGED.keys())
def test_privileged_calls_fail(attack):
    result = corral.run(["sh", "-c", f"echo started; {attack}"], policy=POLICY)
    assert result.stdout == "started\n" and result.exit_code != 0
    if os.geteuid() == 0:  # the control: root on the host can do each of them
        control = corral.run(["sh", "-c", attack], policy="full-access")
        assert control.exit_code == 0, control.aggregated_output


CHANGE_ANOTHER = """
import os, resource, subprocess, sys
victim = int(sys.argv[1])
child = subprocess.Popen(["sleep", "30"])  # the run's own
for target in (victim, child.pid):
    for name, change in (
            ("prlimit", lambda: resource.prlimit(target, resource.RLIMIT_NOFILE, (5, 5))),
            ("renice", lambda: os.setpriority(os.PRIO_PROCESS, target, 19)),
            ("affinity", lambda: os.sched_setaffinity(target, {0}))):
        try:
            change()
            print(name, "changed")
        except OSError as e:
            print(name, "refused", e.errno)
attempts = [("renice itself", lambda: os.setpriority(os.PRIO_PROCESS, 0, 1)),
            ("prlimit itself",
             lambda: resource.prlimit(os.getpid(), resource.RLIMIT_CORE, (0, 0)))]
if sys.argv[2:] == ["everyone"]:  # never outside the sandbox: it would renice the whole host
    # (to its own nice value, should the sandbox let it through: as little harm as can be)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    attempts.insert(0, ("renice every process of the user",
                        lambda: os.setpriority(os.PRIO_USER, 0, own)))
for name, change in attempts:
    try:
        change()
        print(name, "changed")
    except OSError as e:
        print(name, "refused", e.errno)
child.kill()
"""


def test_a_host_process_cannot_be_reniced_limited_or_pinned():
    """Landlock scopes signals and tracing, not the calls that change
    another process's limits or scheduling, and no PID namespace hides the
    host's processes: the gate refuses them, and reports each process once,
    where the target is outside the run's session (a user's every process
    always).  The run's own processes are changed as outside a sandbox."""
    # A process of this user holding no capability, which the kernel lets a
    # sandboxed one (holding none either) renice and pin: as root, without
    # its capabilities.
    bare = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    victim = subprocess.Popen([*bare, "sleep", "30"])
    limits = f"/proc/{victim.pid}/limits"
    before = open(limits).read()
    try:
        result = corral.run([PYTHON, "-c", CHANGE_ANOTHER, str(victim.pid), "everyone"],
                            policy=POLICY)
        assert result.sandbox == "landlock" and result.exit_code == 0, result.aggregated_output
        assert result.stdout.splitlines() == [
            "prlimit refused 1", "renice refused 1", "affinity refused 1",
            "prlimit changed", "renice changed", "affinity changed",
            "renice every process of the user refused 1", "renice itself changed",
            "prlimit itself changed"]
        assert [(d.target, d.evidence) for d in result.denials] == [
            (f"pid {victim.pid}",
             f"prlimit64({victim.pid}) refused: Operation not permitted in the sandbox"),
            ("every process of the user",
             "setpriority(0) refused: Operation not permitted in the sandbox")]
        assert open(limits).read() == before
        control = corral.run([PYTHON, "-c", CHANGE_ANOTHER, str(victim.pid)],
                             policy="full-access")
        assert control.stdout.startswith("prlimit changed\n"), control.aggregated_output
        assert open(limits).read() != before
    finally:
        victim.kill()
        victim.wait()


# System V IPC by ctypes: the host's queue and key (argv), then objects of
# the run's own, used across a fork, found by key, listed by index.
SYSTEM_V = textwrap.dedent("""
    import ctypes, errno, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    IPC_PRIVATE, IPC_CREAT, IPC_RMID, IPC_STAT, GETVAL, SHM_STAT = 0, 0o1000, 0, 2, 12, 13
    def tried(result):
        return result if result >= 0 else errno.errorcode[ctypes.get_errno()]
    queue, key = int(sys.argv[1]), int(sys.argv[2], 0)
    status = ctypes.create_string_buffer(256)
    print("host queue", tried(libc.msgctl(queue, IPC_STAT, status)),
          tried(libc.msgctl(queue, IPC_RMID, None)))
    print("host key", tried(libc.msgget(key, 0o600)), tried(libc.msgget(key, IPC_CREAT | 0o600)))
    segment = libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600)
    ctypes.memmove(libc.shmat(segment, None, 0), b"shared", 6)
    child = os.fork()
    if child == 0:
        os._exit(ctypes.string_at(libc.shmat(segment, None, 0), 6) != b"shared")
    print("segment", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0,
          tried(libc.shmctl(segment % 32768, SHM_STAT, status)) == segment)
    own_key = 0x5eed0000 + os.getpid() % 0x10000
    semaphores = libc.semget(own_key, 1, IPC_CREAT | 0o600)
    found = libc.semget(own_key, 1, 0o600)
    operation = (ctypes.c_short * 3)(0, 1, 0)  # struct sembuf: semaphore 0, +1
    print("semaphores", found == semaphores, tried(libc.semop(found, operation, 1)),
          libc.semctl(semaphores, 0, GETVAL))
    messages = libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600)
    sent = (ctypes.c_long * 2)(1, int.from_bytes(b"message", "little"))
    received = (ctypes.c_long * 2)()
    print("messages", tried(libc.msgsnd(messages, sent, 8, 0)),
          tried(libc.msgrcv(messages, received, 8, 0, 0)), received[1] == sent[1])
    print("made", segment, semaphores, messages)
""")


def test_system_v_ipc_objects_are_the_runs_own():
    """No IPC namespace keeps the host's System V IPC objects apart on
    Landlock: the gate makes the run's own objects for it and lets it reach
    only those, answering for the host's as a namespace of its own would,
    and removes them when the run ends."""
    queue = host_queue()
    key = next(line.split()[0] for line in open("/proc/sysvipc/msg").read().splitlines()[1:]
               if line.split()[1] == queue)
    before = {kind: sysv_ids(kind) for kind in ("msg", "sem", "shm")}
    try:
        result = corral.run([PYTHON, "-c", SYSTEM_V, queue, key], policy=POLICY)
        assert result.exit_code == 0 and result.denials == (), result.aggregated_output
        lines = result.stdout.splitlines()
        assert lines[:-1] == ["host queue EINVAL EINVAL", "host key ENOENT EACCES",
                              "segment True True", "semaphores True 0 1", "messages 0 8 True"]
        segment, semaphores, messages = lines[-1].split()[1:]
        assert queue in sysv_ids("msg")
        assert segment not in before["shm"] and semaphores not in before["sem"]
        # Nothing the run made is left behind.
        assert {kind: sysv_ids(kind) for kind in ("msg", "sem", "shm")} == before
        # A key the host holds, which the run then could not make: a denial
        # once the run fails.
        failed = corral.run(["sh", "-c", f'{PYTHON} -c "$1" {queue} {key}; exit 3', "-",
                             SYSTEM_V], policy=POLICY)
        shown = f"{int(key) & 0xFFFFFFFF:#010x}"  # /proc shows a key as a signed number
        assert [(d.kind.value, d.target, d.evidence) for d in failed.denials] == [
            ("privilege", f"System V IPC key {shown}",
             f"msgget(key {shown}) refused: Permission denied in the sandbox")]
        assert "bubblewrap" in failed.denials[0].remedy
        control = corral.run([PYTHON, "-c", SYSTEM_V, queue, key], policy="full-access")
        # Outside a sandbox the host's queue is read and removed; its key is then free.
        assert control.stdout.startswith("host queue 0 0\nhost key ENOENT "), control.stdout
        assert queue not in sysv_ids("msg")
    finally:
        subprocess.run(["ipcrm", "-q", queue], capture_output=True)
        for kind, ids in before.items():  # what the control made
            for made in sysv_ids(kind) - ids:
                subprocess.run(["ipcrm", {"msg": "-q", "sem": "-s", "shm": "-m"}[kind], made],
                               capture_output=True)


def _queue_exists(name: bytes) -> bool:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    found = libc.mq_open(name, os.O_RDONLY, 0, None)
    if found >= 0:
        os.close(found)
    return found >= 0


def test_a_killed_corral_leaves_no_ipc_object_behind():
    """corral's watchdog removes what the gate made for a run (System V
    objects, a POSIX message queue), should corral be SIGKILLed while the
    run holds it."""
    made = ("import ctypes, os, time; libc = ctypes.CDLL(None); "
            "libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, "
            "ctypes.c_void_p]; "
            "libc.mq_open(b'/kept', os.O_CREAT | os.O_RDWR, 0o600, None); "
            "print(libc.shmget(0, 4096, 0o1600), libc.semget(0, 1, 0o1600), "
            "libc.msgget(0, 0o1600), flush=True); time.sleep(60)")
    prefix = f"corral-killed-{os.getpid()}-"
    host = textwrap.dedent(f"""
        import corral, corral.sandbox.socket_gate
        corral.sandbox.socket_gate._queue_prefix = lambda: {prefix!r}
        corral.run([{PYTHON!r}, "-c", {made!r}], policy=corral.SandboxPolicy.read_only(
            accept_weaker={ACCEPTED!r}), timeout=None, on_output=lambda event: print(
                event.data.decode(), end="", flush=True))
    """)
    proc = subprocess.Popen([sys.executable, "-c", host], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, corral.sandbox.bwrap.BWRAP_VARIABLE: "/nonexistent"})
    try:
        assert proc.stdout is not None
        segment, semaphores, queue = proc.stdout.readline().split()
        assert segment in sysv_ids("shm") and semaphores in sysv_ids("sem")
        assert queue in sysv_ids("msg") and _queue_exists(f"/{prefix}kept".encode())
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while (segment in sysv_ids("shm") or semaphores in sysv_ids("sem")
               or queue in sysv_ids("msg") or _queue_exists(f"/{prefix}kept".encode())
               ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert segment not in sysv_ids("shm") and semaphores not in sysv_ids("sem")
        assert queue not in sysv_ids("msg") and not _queue_exists(f"/{prefix}kept".encode())
    finally:
        proc.kill()
        proc.wait()


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


@pytest.mark.parametrize("sandboxed", [True, False], ids=["landlock", "control"])
def test_a_killed_corral_leaves_no_daemon_behind(sandboxed):
    """Should corral be SIGKILLed, its watchdog kills the run's process
    group, and on Landlock the sessions the run's processes made, which the
    gate announces to it: a daemon dies with the rest.  Without a sandbox
    (the control) nothing knows the daemon's session, and it survives."""
    daemon = "setsid sh -c 'echo $$; exec sleep 60' & exec sleep 60"
    policy = (f"corral.SandboxPolicy.read_only(accept_weaker={ACCEPTED!r})" if sandboxed
              else "'full-access'")
    host = textwrap.dedent(f"""
        import corral
        corral.run(["sh", "-c", {daemon!r}], policy={policy}, timeout=None,
                   kill_mechanism=corral.KillMechanism.PROCESS_GROUP,
                   on_output=lambda event: print(event.data.decode(), end="", flush=True))
    """)
    proc = subprocess.Popen([sys.executable, "-c", host], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, corral.sandbox.bwrap.BWRAP_VARIABLE: "/nonexistent"})
    pid = 0
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        deadline = time.monotonic() + 10
        while _name(pid) != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)  # settled: its shell has made way for its program
        proc.kill()
        proc.wait()
        assert wait_dead(pid, timeout=5) is sandboxed
    finally:
        proc.kill()
        proc.wait()
        if pid:
            kill_quietly(pid)


# POSIX message queues by ctypes: the host's queue (argv) looked for, then
# a queue of the run's own used across a fork, and one left behind.
QUEUES = textwrap.dedent("""
    import ctypes, errno, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    def tried(result):
        return result if result >= 0 else errno.errorcode[ctypes.get_errno()]
    print("host", tried(libc.mq_open(sys.argv[1].encode(), os.O_RDWR, 0, None)))
    queue = libc.mq_open(b"/jobs", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600, None)
    child = os.fork()
    if child == 0:
        os._exit(libc.mq_send(queue, b"job", 3, 0))
    os.waitpid(child, 0)
    message = ctypes.create_string_buffer(8192)
    received = libc.mq_receive(queue, message, 8192, None)
    print("own", message.raw[:received], tried(libc.mq_unlink(b"/jobs")))
    print("left", tried(libc.mq_open(b"/left", os.O_CREAT | os.O_RDWR, 0o600, None)) >= 0)
""")


def test_posix_message_queues_are_the_runs_own(monkeypatch):
    """Their names are the host's without an IPC namespace: the gate opens
    the run's under a name of its own for each run, hands the queue over,
    and unlinks what the run made once it ends."""
    import ctypes

    import corral.sandbox.socket_gate as gate

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    host = f"/corral-host-{os.getpid()}".encode()
    made = libc.mq_open(host, os.O_CREAT | os.O_RDWR, 0o600, None)
    assert made >= 0, os.strerror(ctypes.get_errno())
    prefix = f"corral-test-{os.getpid()}-"
    monkeypatch.setattr(gate, "_queue_prefix", lambda: prefix)  # to look for what is left
    try:
        result = corral.run([PYTHON, "-c", QUEUES, host.decode()], policy=POLICY)
        assert result.stdout.splitlines() == [
            "host ENOENT", "own b'job' 0", "left True"], result.aggregated_output
        assert result.denials == ()
        for name in (f"/{prefix}left", f"/{prefix}jobs"):  # nothing left behind
            assert not _queue_exists(name.encode()), name
        control = corral.run([PYTHON, "-c", QUEUES, host.decode()], policy="full-access")
        assert control.stdout.startswith("host "), control.aggregated_output
        assert not control.stdout.startswith("host ENOENT")
    finally:
        os.close(made)
        for name in (host, b"/jobs", b"/left"):
            libc.mq_unlink(name)


# POSIX shared memory as shm_open and sem_open make it (files directly
# beneath /dev/shm), then the host's name (argv), a crossing to elsewhere, a
# planted symlink to a host file (argv), and Python's multiprocessing.
SHARED_MEMORY = textwrap.dedent("""
    import errno, multiprocessing, os, sys
    def tried(attempt):
        try:
            attempt()
            return "reached"
        except OSError as e:
            return errno.errorcode[e.errno]
    own = "/dev/shm/corral-own"
    fd = os.open(own, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"shared")
    child = os.fork()
    if child == 0:
        os._exit(os.pread(os.open(own, os.O_RDWR), 6, 0) != b"shared")
    print("own", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0)
    os.link(own, own + "-link")
    os.rename(own + "-link", own + "-renamed")
    print("kept", sorted(os.listdir(os.environ["TMPDIR"] + "/.dev-shm")))
    os.unlink(own)
    os.unlink(own + "-renamed")
    host = "/dev/shm/" + sys.argv[1]
    print("host", tried(lambda: os.open(host, os.O_RDWR)), tried(lambda: os.unlink(host)),
          tried(lambda: os.read(os.open(host, os.O_RDONLY), 5)))
    print("crossing", tried(lambda: os.rename(os.environ["TMPDIR"], "/dev/shm/away")))
    os.symlink(sys.argv[2], os.environ["TMPDIR"] + "/.dev-shm/planted")
    print("planted", tried(lambda: os.open("/dev/shm/planted", os.O_RDWR)))
    os.unlink(os.environ["TMPDIR"] + "/.dev-shm/planted")  # the session's: the next run's too
    with multiprocessing.Pool(2) as pool:  # its locks are named semaphores
        print("pool", pool.map(abs, [-1, -2]))
""")


def test_posix_shared_memory_and_semaphores_are_the_runs_own(host_dir):
    """The host's /dev/shm is read-only on Landlock, and its files
    unreadable: the gate makes the names the command opens for writing,
    links, renames or removes there in a directory of the session's
    instead, so that shm_open, sem_open and Python's multiprocessing work
    and the host's names and what they hold stay out of reach."""
    name = f"corral-host-{os.getpid()}"
    (host_file := host_dir / "file").write_text("original\n")
    with open(f"/dev/shm/{name}", "w") as host:
        host.write("host\n")
    before = sorted(os.listdir("/dev/shm"))
    try:
        result = corral.run([PYTHON, "-c", SHARED_MEMORY, name, str(host_file)], policy=POLICY)
        assert result.exit_code == 0 and result.denials == (), result.aggregated_output
        assert result.stdout.splitlines() == [
            "own True", "kept ['corral-own', 'corral-own-renamed']",
            "host ENOENT ENOENT EACCES",
            "crossing EXDEV", "planted ELOOP", "pool [1, 2]"]
        assert sorted(os.listdir("/dev/shm")) == before
        assert open(f"/dev/shm/{name}").read() == "host\n"
        assert host_file.read_text() == "original\n"
        assert corral.run(["cat", f"/dev/shm/{name}"], policy="full-access").stdout == "host\n"
        control = corral.run([PYTHON, "-c", f"import os; os.unlink('/dev/shm/{name}')"],
                             policy="full-access")
        assert control.exit_code == 0 and not os.path.exists(f"/dev/shm/{name}")
    finally:
        if os.path.exists(f"/dev/shm/{name}"):
            os.unlink(f"/dev/shm/{name}")


def test_a_write_to_the_hosts_tmp_or_dev_shm_is_reported():
    """Both are the host's, read-only, on Landlock (``shared-tmp``): a
    write there is refused and reported with a remedy that says so."""
    script = (f"echo x > /tmp/corral-landlock-{os.getpid()}; mkdir /dev/shm/corral-dir; "
              "echo x > /dev/full; exit 1")
    result = corral.run(["sh", "-c", script], policy=POLICY)
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("write", f"/tmp/corral-landlock-{os.getpid()}"), ("write", "/dev/shm/corral-dir")]
    assert "$TMPDIR" in result.denials[0].remedy and "bubblewrap" in result.denials[1].remedy
    assert "/dev/full" not in result.stderr  # a device bubblewrap's /dev has too
    assert not os.path.exists("/dev/shm/corral-dir")


# Pseudo-terminals as forkpty and openpty make them, then one of the
# host's (argv) opened for writing.
TERMINALS = textwrap.dedent("""
    import errno, os, pty, sys
    child, leader = pty.fork()
    if child == 0:
        print("in a terminal", os.isatty(0), flush=True)
        os._exit(0)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(child, 0)
    print("forkpty", seen)
    for _ in range(70):  # more than the gate holds on to (it lets go of the oldest)
        for end in os.openpty():
            os.close(end)
    leader, follower = os.openpty()
    os.write(leader, b"line\\n")
    print("openpty", os.read(follower, 10))
    try:
        os.open(sys.argv[1], os.O_WRONLY | os.O_NOCTTY)
        print("host terminal opened")
    except OSError as e:
        print("host terminal", errno.errorcode[e.errno])
""")


def test_pseudo_terminals_of_the_runs_own_work():
    """The gate opens /dev/ptmx for the command, and the /dev/pts entries of
    the terminals it made, none other: script, pexpect and pty.fork work,
    the user's terminals stay out of reach, and nothing is kept after the
    run."""
    leader, follower = os.openpty()
    try:
        terminals = sorted(os.listdir("/dev/pts"))
        result = corral.run([PYTHON, "-c", TERMINALS, os.ttyname(follower)], policy=POLICY)
        assert result.stdout.splitlines() == [
            "forkpty b'in a terminal True\\r\\n'", "openpty b'line\\n'",
            "host terminal EACCES"], result.aggregated_output
        assert sorted(os.listdir("/dev/pts")) == terminals
    finally:
        os.close(leader)
        os.close(follower)


def test_default_secret_stores_are_hidden_but_known_hosts_stays(host_dir, monkeypatch):
    """Outside every writable root Landlock keeps a deny-read path's files
    from being read (rules grant reading everything else): no weaker
    guarantee is needed for them.  Their names stay listable."""
    ssh = host_dir / ".ssh"
    ssh.mkdir()
    (ssh / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (ssh / "id_ed25519").write_text("PRIVATE KEY\n")
    (host_dir / ".netrc").write_text("machine x password hunter2\n")
    (host_dir / "notes").write_text("public\n")
    monkeypatch.setenv("HOME", str(host_dir))
    policy = corral.SandboxPolicy.read_only(
        accept_weaker=tuple(name for name in ACCEPTED if name != "no-deny-read"))
    script = ("cat ~/.ssh/known_hosts; cat ~/.ssh/id_ed25519; cat ~/.netrc; cat ~/notes; "
              "ls ~/.ssh")
    sandboxed = corral.run(["sh", "-c", script], policy=policy)
    assert sandboxed.sandbox == "landlock"
    assert sandboxed.stdout == "github.com ssh-ed25519 AAAA\npublic\nid_ed25519\nknown_hosts\n"
    assert "PRIVATE" not in sandboxed.aggregated_output
    assert "hunter2" not in sandboxed.aggregated_output
    assert [(d.kind.value, d.target) for d in sandboxed.denials] == [
        ("read", str(ssh / "id_ed25519")), ("read", str(host_dir / ".netrc"))]
    control = corral.run(["sh", "-c", script], policy="full-access")
    assert "PRIVATE KEY" in control.stdout and "hunter2" in control.stdout


def test_a_secret_in_a_writable_root_needs_no_deny_read_accepted(host_dir, monkeypatch):
    """A writable root's rule lets the command read beneath it: a deny-read
    path there cannot be hidden, and Landlock runs only once the caller
    accepts that by name."""
    (host_dir / ".netrc").write_text("machine x password hunter2\n")
    monkeypatch.setenv("HOME", str(host_dir))
    accepted = (*(name for name in ACCEPTED if name != "no-deny-read"), "unprotected-paths")
    with pytest.raises(corral.PolicyError, match="no-deny-read"):
        corral.run(["cat", ".netrc"], cwd=host_dir,
                   policy=corral.SandboxPolicy.workspace_write(accept_weaker=accepted))
    shown = corral.run(["cat", ".netrc"], cwd=host_dir, policy=corral.SandboxPolicy.workspace_write(
        accept_weaker=(*accepted, "no-deny-read")))
    assert shown.stdout == "machine x password hunter2\n"


OWN_PROC = textwrap.dedent("""
    import errno, os, sys, threading
    def written(path, value):
        try:
            with open(path, "w") as f:
                f.write(value)
            return "written"
        except OSError as e:
            return errno.errorcode[e.errno]
    print("self", written("/proc/self/oom_score_adj", "500"), open("/proc/self/oom_score_adj").read().strip())
    print("comm", written("/proc/thread-self/comm", "renamed"), open("/proc/self/comm").read().strip())
    wait, go = os.pipe()
    child = os.fork()
    if child == 0:
        os.read(wait, 1)  # once the parent has written
        os._exit(0 if open(f"/proc/{os.getpid()}/oom_score_adj").read().strip() == "600" else 1)
    print("child", written(f"/proc/{child}/oom_score_adj", "600"), end=" ")
    os.write(go, b"x")
    print(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0)
    print("host", written(f"/proc/{sys.argv[1]}/oom_score_adj", "700"))
    print("environ", written("/proc/self/environ", "x"))
""")


def test_a_process_of_the_run_may_write_its_own_proc_files():
    """Landlock has no rule for /proc, which holds the kernel's tunables too:
    the gate opens oom_score_adj, comm and coredump_filter of the run's own
    processes for them, as bubblewrap's /proc of their own lets them; a host
    process's stay out of reach."""
    victim = subprocess.Popen(["sleep", "30"])
    adjust = f"/proc/{victim.pid}/oom_score_adj"
    try:
        before = open(adjust).read()
        result = corral.run([PYTHON, "-c", OWN_PROC, str(victim.pid)], policy=POLICY)
        assert result.stdout.splitlines() == [
            "self written 500", "comm written renamed", "child written True", "host EACCES",
            "environ EACCES"], result.aggregated_output
        assert open(adjust).read() == before
        control = corral.run(["sh", "-c", f"echo 700 > {adjust}"], policy="full-access")
        assert control.exit_code == 0 and open(adjust).read() == "700\n"
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.skipif(openable_device() is None, reason="no host device opens for this user")
def test_the_hosts_devices_are_hidden_as_bubblewraps_dev_lacks_them():
    """A disk, a camera, the kernel's log: Landlock's rules let the command
    read none of the host's devices but those bubblewrap's /dev has."""
    device = openable_device()
    code = (f"import os; print('started', flush=True); "
            f"os.close(os.open({device!r}, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)); "
            "print('opened'); os.close(os.open('/dev/urandom', os.O_RDONLY)); print('urandom')")
    result = corral.run([PYTHON, "-c", code], policy=POLICY)
    assert result.stdout == "started\n" and "Permission denied" in result.stderr
    assert [(d.kind.value, d.target) for d in result.denials] == [("privilege", device)]
    control = corral.run([PYTHON, "-c", code], policy="full-access")
    assert control.stdout == "started\nopened\nurandom\n", control.aggregated_output
    standard = corral.run([PYTHON, "-c", code.replace(repr(device), "'/dev/null'")],
                          policy=POLICY)
    assert standard.stdout == "started\nopened\nurandom\n", standard.aggregated_output


def test_a_host_process_cannot_be_traced():
    import subprocess

    victim = subprocess.Popen(["sleep", "30"])
    code = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
            f"print('attached' if libc.ptrace(16, {victim.pid}, 0, 0) == 0 else 'refused')")
    try:
        assert corral.run([PYTHON, "-c", code], policy=POLICY).stdout == "refused\n"
        if os.geteuid() == 0:
            assert corral.run([PYTHON, "-c", code], policy="full-access").stdout == "attached\n"
    finally:
        victim.kill()
        victim.wait()


def test_unknown_weaker_guarantee_is_an_error():
    with pytest.raises(corral.PolicyError, match="unknown weaker guarantee"):
        corral.SandboxPolicy.read_only(accept_weaker=("everything",))


def test_no_capability_is_held_or_regained():
    script = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status"
    result = corral.run(["sh", "-c", script], policy=POLICY)
    sets = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert {sets[name] for name in ("CapInh", "CapPrm", "CapEff", "CapAmb")} == {"0" * 16}
    if os.geteuid() == 0:
        # Root could regain everything by exec without an empty bounding set;
        # an unprivileged user regains nothing anyway (no_new_privs).
        assert sets["CapBnd"] == "0" * 16
        control = corral.run(["sh", "-c", script], policy="full-access")
        assert "CapEff:\t0000000000000000" not in control.stdout


TERMINAL = """
import os, sys, termios
print("started", flush=True)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOCTTY)
print("read", os.read(fd, 100))
attrs = termios.tcgetattr(fd)
attrs[3] &= ~termios.ECHO
termios.tcsetattr(fd, termios.TCSANOW, attrs)
print("echo off")
"""


def test_a_terminal_of_the_users_can_be_neither_read_nor_set(tmp_path):
    """The host's /dev/pts is in sight here: a command could read what the
    user types in a terminal, or turn its echo off (bwrap's /dev has no pts
    of the host's at all).  Reading is refused there, and reported."""
    import termios

    leader, follower = os.openpty()
    try:
        name = os.ttyname(follower)
        os.write(leader, b"typed\n")
        result = corral.run([sys.executable, "-c", TERMINAL, name], cwd=tmp_path, policy=POLICY)
        assert result.sandbox == "landlock" and result.stdout == "started\n", (
            result.aggregated_output)
        assert [(d.kind.value, d.target) for d in result.denials] == [("read", name)]
        assert termios.tcgetattr(follower)[3] & termios.ECHO
        control = corral.run([sys.executable, "-c", TERMINAL, name], cwd=tmp_path,
                             policy="full-access")
        assert control.stdout == "started\nread b'typed\\n'\necho off\n", control.stdout
        assert not termios.tcgetattr(follower)[3] & termios.ECHO
    finally:
        os.close(leader)
        os.close(follower)
