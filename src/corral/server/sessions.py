"""Long-running commands an agent talks to: started now, read and written later.

A :class:`ProcessSession` runs one command through corral's engine in a
thread of its own (same sandbox, same containment: it ends with the server,
however the server ends).  Its standard input is a pipe the session keeps
open until the command exits, so ``write_stdin`` works without a terminal;
or, with ``tty``, a pseudo-terminal is its stdin, stdout, stderr and
controlling terminal (what it prints then comes through the terminal, with
its line endings and echo).
What the command prints is kept until read, bounded: past 1 MiB unread, the
middle is dropped and counted.  :class:`SessionManager` holds at most 64
sessions; starting another removes the oldest one that has exited.
"""

from __future__ import annotations

import codecs
import errno
import itertools
import os
import random
import threading
import time

from .._cancel import CancelToken
from .._capture import HeadTailBuffer
from .._policy import SandboxPolicy
from .._result import ExecResult, Stream

__all__ = ["MAX_SESSIONS", "ProcessSession", "SessionError", "SessionManager"]

MAX_SESSIONS = 64
_UNREAD_LIMIT = 1024 * 1024  # bytes of unread output kept: half head, half tail
_MARKER_VARIABLE = "CORRAL_SESSION"


class SessionError(Exception):
    """A request about sessions that cannot be met; the message says why."""


class ProcessSession:
    """One running command (see the module docstring)."""

    def __init__(self, session_id: int, argv: tuple[str, ...], cwd: str,
                 policy: SandboxPolicy, timeout: float | None, tty: bool = False) -> None:
        from .._request import ExecRequest

        self.id = session_id
        self.argv = argv
        self.cwd = cwd
        self.started = time.monotonic()
        self.result: ExecResult | None = None
        self.error: BaseException | None = None
        self._cancel = CancelToken()
        self._unread = HeadTailBuffer(_UNREAD_LIMIT)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._changed = threading.Condition()
        self._done = False  # the command has exited and all its output is in
        self._ended = False  # the command has exited
        from .._env import build_env

        # The marker is how list_sessions finds the session's processes.
        variables = {_MARKER_VARIABLE: str(session_id)}
        if tty:
            variables["TERM"] = os.environ.get("TERM") or "xterm-256color"
            self._stdin, child_end = os.openpty()  # the master is both ends for us
            os.set_inheritable(child_end, False)
            request = ExecRequest(argv, cwd=cwd, env=build_env(set=variables), policy=policy,
                                  timeout=timeout, cancel=self._cancel, terminal=child_end)
            threading.Thread(target=self._read_terminal, name=f"corral-tty-{session_id}",
                             daemon=True).start()
        else:
            child_end, self._stdin = os.pipe2(os.O_CLOEXEC)
            request = ExecRequest(argv, cwd=cwd, env=build_env(set=variables), policy=policy,
                                  timeout=timeout, cancel=self._cancel, stdin=child_end)
        os.set_blocking(self._stdin, False)  # a full pipe is an error, not a hung server
        self.tty = tty
        threading.Thread(target=self._run, args=(request, child_end),
                         name=f"corral-session-{session_id}", daemon=True).start()

    def _run(self, request: object, child_end: int) -> None:
        from .._engine import execute
        from .._request import ExecRequest

        assert isinstance(request, ExecRequest)
        try:
            self.result = execute(request, self._on_output)
        except BaseException as exc:  # noqa: BLE001 - reported to whoever reads next
            self.error = exc
        finally:
            os.close(child_end)  # with a terminal: the reader drains it, then sees EIO
            with self._changed:
                self._ended = True
                if not self.tty:
                    self._finish()
                self._changed.notify_all()

    def _finish(self) -> None:
        """With the lock held: the command and its output are over."""
        self._done = True
        os.close(self._stdin)
        self._stdin = -1

    def _read_terminal(self) -> None:
        """Copies what the command writes on its terminal until it is closed."""
        import select

        poller = select.poll()
        poller.register(self._stdin, select.POLLIN)
        while True:
            ready = poller.poll(100)
            data = b""
            if ready:
                try:
                    data = os.read(self._stdin, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: every slave descriptor is closed
                    pass
            with self._changed:
                if data:
                    self._unread.feed(Stream.STDOUT, data, 0)
                    self._changed.notify_all()
                elif self._ended:
                    self._finish()
                    self._changed.notify_all()
                    return
                elif ready:  # hung up just before the run ended: wait for it
                    self._changed.wait(0.1)

    def _on_output(self, event: object) -> None:
        from .._result import OutputEvent

        assert isinstance(event, OutputEvent)
        with self._changed:
            self._unread.feed(event.stream, event.data, 0)
            self._changed.notify_all()

    @property
    def running(self) -> bool:
        return not self._done

    def write(self, text: str) -> None:
        """Sends ``text`` to the command's stdin.  Raises :class:`SessionError`."""
        data = text.encode()
        with self._changed:
            if self._stdin < 0:
                raise SessionError(f"session {self.id} has exited: its stdin is closed")
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._stdin, view):]
                except BlockingIOError:
                    raise SessionError(f"session {self.id} is not reading its stdin (the pipe is "
                                       f"full): {len(view)} bytes were not sent") from None
                except OSError as exc:
                    if exc.errno == errno.EPIPE:
                        raise SessionError(f"session {self.id} closed its stdin") from None
                    raise

    def read(self, wait: float, until_exit: bool = False) -> str:
        """The output since the last read, after up to ``wait`` seconds: the
        wait ends early when the command exits, or, unless ``until_exit``,
        as soon as there is output."""
        deadline = time.monotonic() + wait
        with self._changed:
            while not self._done and (until_exit or not self._unread.total_bytes):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            taken, self._unread = self._unread, HeadTailBuffer(_UNREAD_LIMIT)
            head = b"".join(data for _, data in taken.head)
            tail = b"".join(data for _, data in taken.tail_segments())
            dropped = taken.total_bytes - len(head) - len(tail)
            text = self._decoder.decode(head)
            if dropped:
                self._decoder.reset()
                text += f"\n[corral: {dropped} bytes of output dropped unread]\n"
            return text + self._decoder.decode(tail, final=self._done)

    def kill(self, wait: float = 10.0) -> None:
        """Ends the command and everything it started."""
        self._cancel.cancel()
        with self._changed:
            self._changed.wait_for(lambda: self._done, wait)

    def describe(self) -> dict[str, object]:
        state: dict[str, object] = {
            "session_id": self.id, "command": list(self.argv), "cwd": self.cwd,
            "tty": self.tty, "running": self.running,
            "runtime_seconds": round(time.monotonic() - self.started, 1),
        }
        if self.result is not None:
            state["exit_code"] = self.result.exit_code
        if self.error is not None:
            state["error"] = str(self.error)
        if self.running:
            state["listening"] = _listening_ports(self.id)
        return state


class SessionManager:
    """The server's sessions, by id."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._sessions: dict[int, ProcessSession] = {}
        self._lock = threading.Lock()
        self._random = random.Random()

    def start(self, argv: tuple[str, ...], cwd: str, policy: SandboxPolicy,
              timeout: float | None, tty: bool = False) -> ProcessSession:
        with self._lock:
            if len(self._sessions) >= self.limit:
                exited = [s for s in self._sessions.values() if not s.running]
                if not exited:
                    raise SessionError(f"{self.limit} sessions are running: kill one "
                                       "(kill_session) before starting another")
                del self._sessions[min(exited, key=lambda s: s.started).id]
            session_id = next(i for i in (self._random.randrange(1000, 100_000)
                                          for _ in itertools.count())
                              if i not in self._sessions)
            session = ProcessSession(session_id, argv, cwd, policy, timeout, tty)
            self._sessions[session_id] = session
            return session

    def get(self, session_id: int) -> ProcessSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise SessionError(f"no session {session_id} (list_sessions shows them)")
        return session

    def forget(self, session_id: int) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def all(self) -> list[ProcessSession]:
        with self._lock:
            return sorted(self._sessions.values(), key=lambda s: s.started)

    def close(self) -> None:
        """Kills every session (the server is stopping)."""
        for session in self.all():
            session.kill()


def _listening_ports(session_id: int) -> list[int]:
    """The TCP ports the session's processes listen on, where this process can
    see them (its processes carry CORRAL_SESSION=<id> in their environment)."""
    marker = f"{_MARKER_VARIABLE}={session_id}".encode()
    inodes: set[int] = set()
    namespaces: dict[str, str] = {}  # network namespace -> a process in it
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            for fd in os.listdir(f"/proc/{name}/fd"):
                target = os.readlink(f"/proc/{name}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
            namespaces.setdefault(os.readlink(f"/proc/{name}/ns/net"), name)
        except OSError:
            continue
    from ..sandbox.socket_gate import tcp_listeners

    return sorted({port for pid in namespaces.values()
                   for _, port, inode in tcp_listeners(int(pid)) if inode in inodes})
