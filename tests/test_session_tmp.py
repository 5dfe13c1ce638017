"""The session's temporary directory: shared by its commands, private, gone with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import corral
from corral.sandbox.probe import probe_machine

_BWRAP = probe_machine().bwrap
pytestmark = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")


def test_commands_of_a_session_share_their_tmp_and_the_host_sees_none_of_it(host_dir):
    marker = f"corral-session-test-{os.getpid()}"
    first = corral.run(["sh", "-c", f"echo kept > /tmp/{marker}"], cwd=host_dir)
    assert first.exit_code == 0
    second = corral.run(["sh", "-c", f"cat /tmp/{marker}; echo $TMPDIR"], cwd=host_dir,
                        policy="read-only")
    assert second.stdout == "kept\n/tmp\n"
    assert not os.path.exists(f"/tmp/{marker}")  # the host's /tmp is not theirs


HOST = textwrap.dedent(
    """
    import sys, corral
    from corral.sandbox.session import session_tmp
    # Nested, read-only, and symlinks out of it (to what must survive it).
    corral.run(["sh", "-c", "echo x > /tmp/f; chmod 444 /tmp/f; mkdir -p /tmp/a/b; "
                "echo x > /tmp/a/b/g; ln -s $PWD/keep /tmp/a/dirlink; "
                "ln -s $PWD/keep/file /tmp/filelink"], cwd=sys.argv[1])
    print(session_tmp(), flush=True)
    if sys.argv[2] == "wait":
        corral.run(["sleep", "30"], cwd=sys.argv[1], timeout=None)
    """
)


def test_the_directory_goes_when_the_session_ends(host_dir):
    (host_dir / "keep").mkdir()
    (host_dir / "keep" / "file").write_text("kept\n")
    proc = subprocess.run([sys.executable, "-c", HOST, str(host_dir), "exit"],
                          capture_output=True, text=True, timeout=60)
    path = proc.stdout.strip()
    assert proc.returncode == 0 and "corral-session-" in path, proc.stderr
    assert not os.path.exists(path)
    assert (host_dir / "keep" / "file").read_text() == "kept\n"  # links were not followed


def test_the_directory_goes_when_the_session_is_killed(host_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOST, str(host_dir), "wait"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert os.path.exists(os.path.join(path, "f"))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(path)  # the watchdog removed it
    finally:
        proc.kill()
        proc.wait()


# Outlives its session for half a second, making directories in the
# session's directory as long as that is there: as a sandbox being set up when
# corral was killed makes its mount points in its /tmp until its own kill
# lands.  Made at a new name every 0.1 ms, so that removing the directory
# in one sweep would all but always miss one.
LATE_WRITER = textwrap.dedent(
    """
    import os, sys, time
    host, path = int(sys.argv[1]), sys.argv[2]
    # Held as a sandbox's bind holds it: once removed, nothing is made in it.
    directory = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    print("ready", flush=True)
    made, end = 0, None
    while end is None or time.monotonic() < end:
        try:
            os.mkdir(f"late-{made}", dir_fd=directory)
            made += 1
        except FileNotFoundError:
            break  # removed
        if end is None and not os.path.exists(f"/proc/{host}"):
            end = time.monotonic() + 0.5
        time.sleep(0.0001)
    """
)
HOST_WITH_A_LATE_WRITER = textwrap.dedent(
    f"""
    import os, subprocess, sys, time
    from corral.sandbox.session import session_tmp
    path = session_tmp()
    writer = subprocess.Popen([sys.executable, "-c", {LATE_WRITER!r}, str(os.getpid()), path],
                              stdout=subprocess.PIPE)
    assert writer.stdout.readline() == b"ready\\n"
    print(path, flush=True)
    time.sleep(60)
    """
)


def test_the_directory_goes_even_if_written_to_after_the_session_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", HOST_WITH_A_LATE_WRITER],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert os.path.isdir(path)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(path)
    finally:
        proc.kill()
        proc.wait()
