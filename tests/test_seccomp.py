"""The seccomp program, loaded into a real process and attacked.

Each probe runs in a forked child: once with the filter loaded, where it
must be refused, and once without (the control), where it must succeed, so
every assertion shows the filter is what made the difference.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import threading
from collections.abc import Callable

import pytest

from corral.sandbox.probe import probe_machine
from corral.sandbox.seccomp import SUPPORTED_ARCHES, build_program

pytestmark = pytest.mark.skipif(platform.machine() not in SUPPORTED_ARCHES,
                                reason=f"no seccomp table for {platform.machine()}")

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
SIGCHLD = 17
SYS = {"x86_64": {"clone": 56, "clone3": 435, "io_uring_setup": 425, "keyctl": 250},
       "aarch64": {"clone": 220, "clone3": 435, "io_uring_setup": 425, "keyctl": 219}}[
           platform.machine() if platform.machine() in SUPPORTED_ARCHES else "x86_64"]


def _errno_of(result: int) -> int:
    return 0 if result >= 0 else ctypes.get_errno()


def _load(program: bytes) -> None:
    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program)
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def in_child(probe: Callable[[], object], program: bytes | None) -> object:
    """Runs ``probe`` in a forked child, under ``program`` if given; returns its result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through the pipe
        code = 1
        try:
            if program is not None:
                _load(program)
            os.write(write_end, json.dumps(probe()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"probe child failed: {status}"
    return json.loads(data)


FILTER = build_program()
NO_NETWORK = build_program(deny_network=True)


def unshare_user() -> int:
    return _errno_of(libc.unshare(CLONE_NEWUSER))


def clone_new_user() -> int:
    pid = libc.syscall(SYS["clone"], CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:  # pragma: no cover - the clone child leaves at once
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
    return _errno_of(pid)


def mount_in_own_namespace() -> int:
    """Mount where it would otherwise be allowed: in a namespace of our own."""
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        return -1  # cannot even set up the control
    return _errno_of(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None))


def mount_directly() -> int:
    return _errno_of(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None))


def ptrace_traceme() -> int:
    return _errno_of(libc.ptrace(0, 0, None, None))  # PTRACE_TRACEME


def io_uring_setup() -> int:
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(SYS["io_uring_setup"], 1, params)
    if fd >= 0:
        os.close(fd)
    return _errno_of(fd)


def keyctl() -> int:
    return _errno_of(libc.syscall(SYS["keyctl"], 0, -3, 0))  # GET_KEYRING_ID of the session


def clone3() -> int:
    return _errno_of(libc.syscall(SYS["clone3"], None, 0))


def inet_and_unix_sockets() -> list[int]:
    results = []
    for family in (2, 10, 1):  # AF_INET, AF_INET6, AF_UNIX
        fd = libc.socket(family, 1, 0)
        if fd >= 0:
            os.close(fd)
        results.append(_errno_of(fd))
    return results


def ordinary_work() -> list[object]:
    """What every program does must keep working: fork, threads, files."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(os.getpid()))
    thread.start()
    thread.join()
    with open("/proc/self/status") as f:
        filtered = "Seccomp:\t2" in f.read()
    return [os.waitstatus_to_exitcode(status), seen == [os.getpid()], filtered]


def test_namespaces_cannot_be_created():
    userns = probe_machine().user_namespaces.available
    assert in_child(unshare_user, FILTER) == errno.EPERM
    assert in_child(clone_new_user, FILTER) == errno.EPERM
    if userns:  # the controls: the same calls succeed without the filter
        assert in_child(unshare_user, None) == 0
        assert in_child(clone_new_user, None) == 0


def test_mount_is_refused_even_where_it_would_be_allowed():
    assert in_child(mount_directly, FILTER) == errno.EPERM
    if probe_machine().user_namespace_capabilities.available:
        assert in_child(mount_in_own_namespace, None) == 0


@pytest.mark.parametrize("probe", [ptrace_traceme, keyctl, io_uring_setup])
def test_dangerous_calls_are_refused(probe):
    assert in_child(probe, FILTER) == errno.EPERM
    control = in_child(probe, None)
    if probe is io_uring_setup and control != 0:
        pytest.skip(f"io_uring is off on this kernel ({os.strerror(control)}): no control")
    assert control == 0


def test_clone3_falls_back():
    assert in_child(clone3, FILTER) == errno.ENOSYS
    assert in_child(clone3, None) != errno.ENOSYS


def test_ordinary_programs_still_work():
    assert in_child(ordinary_work, FILTER) == [7, True, True]


def test_network_families_refused_only_when_asked():
    assert in_child(inet_and_unix_sockets, NO_NETWORK) == [errno.EPERM, errno.EPERM, 0]
    no_unix = build_program(deny_unix_sockets=True)
    assert in_child(inet_and_unix_sockets, no_unix) == [0, 0, errno.EPERM]
    assert in_child(inet_and_unix_sockets, FILTER) == [0, 0, 0]
    no_sockets = build_program(deny_network=True, deny_unix_sockets=True)
    assert in_child(inet_and_unix_sockets, no_sockets) == [errno.EPERM] * 3


def test_foreign_architecture_is_rejected_at_build_time():
    with pytest.raises(ValueError, match="corral knows"):
        build_program("riscv64")
    assert build_program("aarch64") != build_program("x86_64")


def families() -> list[int]:
    results = []
    for family, kind in ((40, 1), (2, 1), (10, 1), (16, 3), (1, 1), (1, 2)):  # vsock first
        fd = libc.socket(family, kind, 0)
        results.append(_errno_of(fd))
        if fd >= 0:
            os.close(fd)
    return results


def test_only_the_families_a_network_namespace_contains():
    """AF_VSOCK reaches past a network namespace (to the hypervisor)."""
    program = build_program(namespaced_families=True, deny_unix_datagrams=True)
    found = in_child(families, program)
    assert found[0] == errno.EPERM and found[1:] == [0, 0, 0, 0, errno.EPERM]
    control = in_child(families, None)
    assert control[1:] == [0, 0, 0, 0, 0]  # vsock may be missing from the kernel (EAFNOSUPPORT)


def raw_sockets() -> list[int]:
    """IPv4 and IPv6 raw sockets (ICMP), a packet socket, then UDP, TCP and
    a non-blocking raw one."""
    results = []
    for family, kind, protocol in ((2, 3, 1), (10, 3, 58), (17, 3, 0), (2, 2, 0), (10, 1, 0),
                                   (2, 3 | os.O_NONBLOCK, 1)):
        fd = libc.socket(family, kind, protocol)
        results.append(_errno_of(fd))
        if fd >= 0:
            os.close(fd)
    return results


@pytest.mark.parametrize("options", [{"namespaced_families": True}, {}],
                         ids=["without network", "with network"])
def test_a_raw_socket_is_the_witness_s_to_see(options):
    """No sandboxed process holds CAP_NET_RAW, so the kernel refuses raw and
    packet sockets anyway (EPERM); with the privileges witnessed they are
    refused by the program instead, where the witness sees them."""
    if os.geteuid() != 0:
        pytest.skip("the control needs root: a user may not open raw sockets anyway")
    assert in_child(raw_sockets, None) == [0, 0, 0, 0, 0, 0]  # the control: root may
    # Without a listener, a notified call gets ENOSYS.
    watched = build_program(witness_privileges=True, **options)
    assert in_child(raw_sockets, watched) == [errno.ENOSYS] * 3 + [0, 0, errno.ENOSYS]
    assert in_child(raw_sockets, build_program(**options))[3:5] == [0, 0]


def _identity_calls() -> list[Callable[[], int]]:
    """Taking the ids the process has, each call's way; then another user's,
    another group's, no supplementary groups, and another host name."""
    uid, gid, other = os.getuid(), os.getgid(), 4242
    return [lambda: libc.setuid(uid), lambda: libc.setreuid(-1, uid),
            lambda: libc.setresuid(uid, -1, uid), lambda: libc.setgid(gid),
            lambda: libc.setresgid(-1, -1, gid),
            lambda: libc.setuid(other), lambda: libc.setresuid(uid, other, -1),
            lambda: libc.setregid(other, -1), lambda: libc.setgroups(0, None),
            lambda: libc.sethostname(b"corral-test", 11)]


def test_only_the_run_s_own_ids_may_be_taken():
    if os.geteuid() != 0:
        pytest.skip("the control needs root: a user may not take another's ids anyway")
    program = build_program(witness_privileges=True, identity=(os.getuid(), os.getgid()))
    # Each in a child of its own: one that worked would change the next one's ids.
    found = [in_child(lambda: _errno_of(call()), program) for call in _identity_calls()]
    # Without a listener, a notified call gets ENOSYS.
    assert found == [0] * 5 + [errno.ENOSYS] * 5
    # The control: root may (the host name in a UTS namespace of its own).
    clone_newuts = 0x04000000
    control = [in_child(lambda: libc.unshare(clone_newuts) or _errno_of(call()), None)
               for call in _identity_calls()]
    assert control == [0] * 10


def unix_types() -> list[list[int]]:
    """``socket`` and ``socketpair`` of AF_UNIX for stream, datagram, raw and
    seqpacket, each non-blocking and close-on-exec."""
    results = []
    for kind in (1, 2, 3, 5):
        kind |= os.O_NONBLOCK | os.O_CLOEXEC  # SOCK_NONBLOCK and SOCK_CLOEXEC are these
        fd = libc.socket(1, kind, 0)
        if fd >= 0:
            os.close(fd)
        pair = (ctypes.c_int * 2)()
        paired = libc.socketpair(1, kind, 0, pair)
        if paired == 0:
            os.close(pair[0])
            os.close(pair[1])
        results.append([_errno_of(fd), _errno_of(paired)])
    return results


@pytest.mark.parametrize("options", [
    {"deny_unix_datagrams": True, "namespaced_families": True},
    {"deny_unix_sockets": True, "namespaced_families": True},
    {"deny_network": True, "deny_unix_datagrams": True, "loopback_tcp": True},
    {"deny_network": True, "deny_unix_sockets": True},
], ids=["bwrap-gate", "bwrap-no-gate", "landlock-gate", "landlock-no-gate"])
def test_unix_sockets_connect_or_are_refused(options):
    """Where Unix datagrams are refused, every type but stream and seqpacket
    is: the kernel makes a datagram socket of SOCK_RAW, which sends to any path."""
    created = 0 if options.get("deny_unix_datagrams") else errno.EPERM
    assert in_child(unix_types, build_program(**options)) == [
        [created, 0], [errno.EPERM] * 2, [errno.EPERM] * 2, [created, 0]]
    assert in_child(unix_types, None) == [[0, 0]] * 4


def writes(directory: str) -> list[int]:
    """Without a listener, a notified call fails with ENOSYS: which calls are notified."""
    path = os.path.join(directory, "probe")
    reading = libc.open(os.fsencode(os.path.join(directory, "existing")), os.O_RDONLY)
    found = [_errno_of(reading)]
    if reading >= 0:
        os.close(reading)
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_CREAT | os.O_WRONLY, os.O_TRUNC):
        fd = libc.open(os.fsencode(path), flags, 0o600)
        found.append(_errno_of(fd))
        if fd >= 0:
            os.close(fd)
    found.append(_errno_of(libc.mkdir(os.fsencode(path), 0o700)))
    found.append(_errno_of(libc.unlink(os.fsencode(os.path.join(directory, "existing")))))
    found.append(_errno_of(libc.access(os.fsencode(directory), 0)))
    return found


def test_the_witness_is_told_of_writes_only(tmp_path):
    (tmp_path / "existing").write_text("")
    program = build_program(witness_writes=True)
    assert in_child(lambda: writes(str(tmp_path)), program) == [0] + [errno.ENOSYS] * 6 + [0]
    assert (tmp_path / "existing").exists()
    # Unfiltered, each call gets the kernel's own answer.
    assert in_child(lambda: writes(str(tmp_path)), None) == [
        0, errno.ENOENT, errno.ENOENT, 0, 0, errno.EEXIST, 0, 0]


def signals() -> list[int]:
    """kill (signal 0) of one pid, of a group by its number, of the caller's
    group by 0, of every process the caller may signal by -1."""
    return [_errno_of(libc.kill(os.getpid(), 0)), _errno_of(libc.kill(-os.getpgrp(), 0)),
            _errno_of(libc.kill(0, 0)), _errno_of(libc.kill(-1, 0))]


def test_the_witness_is_told_of_kills_of_a_pid_or_a_group_by_number():
    """Which may be outside the run; 0 and -1 reach only the run's."""
    program = build_program(witness_signals=True)
    # Without a listener, a notified call gets ENOSYS.
    assert in_child(signals, program) == [errno.ENOSYS, errno.ENOSYS, 0, 0]
    assert in_child(signals, None) == [0, 0, 0, 0]


def guarded_signals() -> list[int]:
    """kill of the caller's group by 0, of itself, of every process (-1);
    tkill and tgkill of itself; fcntl F_GETFL, F_SETOWN, F_SETOWN_EX and
    ioctl FIONREAD, FIOSETOWN, SIOCSPGRP on a socket, each to itself."""
    import fcntl
    import socket
    import struct

    from corral.sandbox.seccomp import SIGNAL_GUARD_CALLS

    numbers = SIGNAL_GUARD_CALLS[os.uname().machine]
    me = os.getpid()
    ours, _ = socket.socketpair()
    return [_errno_of(libc.kill(0, 0)), _errno_of(libc.kill(me, 0)), _errno_of(libc.kill(-1, 0)),
            _errno_of(libc.syscall(numbers["tkill"], me, 0)),
            _errno_of(libc.syscall(numbers["tgkill"], me, me, 0)),
            *_errnos(lambda: fcntl.fcntl(ours, fcntl.F_GETFL),
                     lambda: fcntl.fcntl(ours, fcntl.F_SETOWN, me),
                     lambda: fcntl.fcntl(ours, 15, struct.pack("ii", 1, me)),  # F_SETOWN_EX
                     lambda: fcntl.ioctl(ours, 0x541B, b"\0" * 4),  # FIONREAD
                     lambda: fcntl.ioctl(ours, 0x8901, struct.pack("i", me)),  # FIOSETOWN
                     lambda: fcntl.ioctl(ours, 0x8902, struct.pack("i", me)))]  # SIOCSPGRP


def test_guarded_signals_go_to_the_gate_but_to_the_callers_own_group():
    """Each call that sends a signal, or names where SIGIO goes, is the
    gate's to decide (without a listener: ENOSYS), but a kill of the
    caller's own group and fcntl's and ioctl's other commands."""
    program = build_program(guard_signals=True, witness_signals=True)
    assert in_child(guarded_signals, program) == [0] + [errno.ENOSYS] * 4 + [
        0, errno.ENOSYS, errno.ENOSYS, 0, errno.ENOSYS, errno.ENOSYS]
    assert in_child(guarded_signals, None) == [0] * 11


def opens_of_root() -> list[int]:
    """openat2 and openat of / for reading."""
    how = ctypes.create_string_buffer(24)  # struct open_how: O_RDONLY, no mode, no resolve
    at_cwd = -100
    return [_errno_of(libc.syscall(437, at_cwd, b"/", how, 24)),
            _errno_of(libc.openat(at_cwd, b"/", os.O_RDONLY))]


def test_openat2_answers_enosys_where_its_flags_must_be_seen():
    """Its flags are in memory: where a filter must see an open's (Landlock
    below ABI 3), it is answered as by a kernel without it, and openat,
    whose flags are an argument, remains."""
    assert in_child(opens_of_root, build_program(no_openat2=True)) == [errno.ENOSYS, 0]
    assert in_child(opens_of_root, None) == [0, 0]


def _errnos(*calls: Callable[[], object]) -> list[int]:
    """What each call raised (its errno), or 0."""
    results = []
    for call in calls:
        try:
            call()
            results.append(0)
        except OSError as e:
            results.append(e.errno)
    return results


def limits() -> list[int]:
    """getrlimit, setrlimit and setpriority as glibc makes them (prlimit64
    for both limits, reading with a NULL new limit), each to what is already
    set."""
    import resource

    return _errnos(lambda: resource.getrlimit(resource.RLIMIT_CORE),
                   lambda: resource.setrlimit(resource.RLIMIT_CORE,
                                              resource.getrlimit(resource.RLIMIT_CORE)),
                   lambda: os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0)))


def test_the_witness_is_told_of_limits_set_not_of_limits_read():
    """Every program reads its stack limit as it starts: reads go through."""
    program = build_program(witness_limits=True)
    assert in_child(limits, program) == [0, errno.ENOSYS, errno.ENOSYS]
    assert in_child(limits, None) == [0, 0, 0]


def other_signals() -> list[int]:
    """sigqueue (signal 0) and pidfd_open of the caller itself, pidfd_open of
    pid 0, and pidfd_send_signal on no descriptor (-1)."""
    import signal

    class Value(ctypes.Union):  # union sigval
        _fields_ = [("integer", ctypes.c_int), ("pointer", ctypes.c_void_p)]

    libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, Value]
    return [_errno_of(libc.sigqueue(os.getpid(), 0, Value(0))),
            *_errnos(lambda: os.close(os.pidfd_open(os.getpid())),
                     lambda: os.close(os.pidfd_open(0)),
                     lambda: signal.pidfd_send_signal(-1, 0))]


def test_the_witness_is_told_of_sigqueue_pidfd_open_and_pidfd_send_signal():
    program = build_program(witness_signals=True)
    assert in_child(other_signals, program) == [errno.ENOSYS, errno.ENOSYS, errno.EINVAL,
                                                errno.ENOSYS]
    assert in_child(other_signals, None) == [0, 0, errno.EINVAL, errno.EBADF]


def changes_of_processes(everyone: bool) -> list[int]:
    """sched_setaffinity and ioprio_set of the caller, by 0 and by its pid,
    a read of its limits by its pid, and (``everyone``) an ioprio_set of
    every process of its user, which only a filtered child may try."""
    import resource

    from corral.sandbox.seccomp import SCHEDULING_CALLS

    ioprio_set = SCHEDULING_CALLS[os.uname().machine]["ioprio_set"]
    normal = (2 << 13) | 4  # IOPRIO_CLASS_BE, level 4
    cpus = os.sched_getaffinity(0)
    found = [*_errnos(lambda: os.sched_setaffinity(0, cpus),
                      lambda: os.sched_setaffinity(os.getpid(), cpus),
                      lambda: resource.prlimit(os.getpid(), resource.RLIMIT_CORE)),
             _errno_of(libc.syscall(ioprio_set, 1, 0, normal))]  # IOPRIO_WHO_PROCESS
    if everyone:
        found.append(_errno_of(libc.syscall(ioprio_set, 3, os.getuid(), normal)))  # _USER
    return found


def test_changes_of_another_process_are_guarded():
    """Of the caller itself by 0, they go through; by a pid or a user, the
    gate decides (without a listener: ENOSYS).  So does a setsid."""
    program = build_program(guard_processes=True)
    assert in_child(lambda: changes_of_processes(True), program) == [
        0, errno.ENOSYS, 0, 0, errno.ENOSYS]
    assert in_child(lambda: changes_of_processes(False), None) == [0, 0, 0, 0]
    # setsid goes to the gate too, which learns the run's sessions from it.
    assert in_child(lambda: _errnos(os.setsid), program) == [errno.ENOSYS]
    assert in_child(lambda: _errnos(os.setsid), None) == [0]


def ipc_calls() -> list[int]:
    """A System V shared memory segment and message queue made (and removed
    again), a detach of nothing, and a POSIX message queue opened."""
    IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0
    found = []
    for make, remove in ((lambda: libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600),
                          lambda made: libc.shmctl(made, IPC_RMID, None)),
                         (lambda: libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600),
                          lambda made: libc.msgctl(made, IPC_RMID, None))):
        made = make()
        found.append(_errno_of(made))
        if made >= 0:
            remove(made)
    found.append(_errno_of(libc.shmdt(None)))
    libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    queue = libc.mq_open(b"/corral-test-absent", os.O_RDONLY)
    found.append(_errno_of(queue))
    return found


def test_system_v_ipc_is_refused_or_guarded():
    """deny_ipc refuses it all (shmdt only detaches); with guard_ipc the
    calls that name an object go to the gate (without a listener: ENOSYS),
    a POSIX message queue's mq_open too."""
    assert in_child(ipc_calls, build_program(deny_ipc=True)) == [
        errno.EPERM, errno.EPERM, errno.EINVAL, errno.EPERM]
    assert in_child(ipc_calls, build_program(deny_ipc=True, guard_ipc=True)) == [
        errno.ENOSYS, errno.ENOSYS, errno.EINVAL, errno.ENOSYS]
    assert in_child(ipc_calls, None) == [0, 0, errno.EINVAL, errno.ENOENT]


@pytest.mark.parametrize("guarded, sysv, shm, message", [
    (((1, 99),), (), (), "bad guarded, System V IPC or /dev/shm call"),  # no such style
    (((1, 0, 0),), (), (), "bad guarded call"),  # a row too wide
    ((), ((1, 0, 0),) * 17, (), "too many System V IPC calls"),
    ((), (), ((1, 0, 9, 0, -1, -1, 1),), "bad guarded, System V IPC or /dev/shm call"),
])
def test_the_gate_server_refuses_a_malformed_call_table(guarded, sysv, shm, message):
    """What the server reads each call's arguments by is checked before it starts."""
    from corral import _cgate

    ours, theirs = _cgate.socketpair()
    try:
        with pytest.raises(ValueError, match=message):
            observed = (*(-1,) * 7, (-1,) * 4, -1, -1, -1)
            _cgate.serve(ours, None, (), (), observed, guarded, (-1, "", sysv), (-1, shm), -1,
                         False)
    finally:
        os.close(ours)
        os.close(theirs)
