"""What a run hands back: captured text with exact truncation facts, and the result.

Everything here is a frozen record (see ``_record``) or an enum: these values cross every
boundary (library, CLI ``--json``, MCP server) and must not change under the
caller's feet.
"""

from __future__ import annotations

import enum

from ._record import record
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = [
    "CapturedText",
    "ExecResult",
    "KillMechanism",
    "Stream",
    "OutputEvent",
    "TIMEOUT_EXIT_CODE",
    "omission_marker",
]

#: Exit code reported for a run ended by its timeout (as GNU ``timeout``).
TIMEOUT_EXIT_CODE = 124


class Stream(enum.Enum):
    """Which pipe a chunk of output came from."""

    STDOUT = "stdout"
    STDERR = "stderr"


@record
class OutputEvent:
    """One chunk of output, emitted live as it arrives.

    ``seq`` counts events of one run from 0 in arrival order across both
    streams, so a consumer can interleave them exactly as corral saw them.
    """

    stream: Stream
    data: bytes
    seq: int


class KillMechanism(enum.Enum):
    """How corral made sure that every process of a run ended with it.

    ``CGROUP``: the run had its own cgroup v2; ``cgroup.kill`` ends every
    process in it, whatever it did to escape (setsid, double fork).
    ``PROCESS_GROUP``: the fallback where no cgroup could be created; the
    command's session is killed with ``killpg``, which a process that calls
    ``setsid`` escapes.  The result says which one ran so that a caller can
    tell the guarantee it got.
    """

    CGROUP = "cgroup"
    PROCESS_GROUP = "process-group"


def omission_marker(omitted_bytes: int, omitted_lines: int) -> str:
    """The line that stands in captured text where the middle was dropped."""
    return (
        f"\n[... corral omitted {omitted_bytes} bytes"
        f" ({omitted_lines} lines) here ...]\n"
    )


@record
class CapturedText:
    """A stream's output as kept in bounded memory, decoded, with exact counts.

    When the output exceeded the capture cap, ``head`` is its beginning and
    ``tail`` its end; the middle is gone but counted: ``omitted_bytes`` raw
    bytes holding ``omitted_lines`` newline characters.  ``total_lines``
    counts newlines plus a final line without one.  ``encoding`` is the codec
    the bytes were decoded with (``"utf-8"`` unless a legacy encoding was
    detected).
    """

    head: str
    tail: str
    total_bytes: int
    total_lines: int
    omitted_bytes: int
    omitted_lines: int
    encoding: str

    @property
    def truncated(self) -> bool:
        """True when some of the output was not kept."""
        return self.omitted_bytes > 0

    @property
    def text(self) -> str:
        """Head and tail joined, with a marker where the middle was dropped."""
        if not self.truncated:
            return self.head + self.tail
        return self.head + omission_marker(self.omitted_bytes, self.omitted_lines) + self.tail

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "total_bytes": self.total_bytes,
            "total_lines": self.total_lines,
            "omitted_bytes": self.omitted_bytes,
            "omitted_lines": self.omitted_lines,
            "truncated": self.truncated,
            "encoding": self.encoding,
        }


class DenialKind(enum.Enum):
    """What a sandbox refused."""

    WRITE = "write"
    READ = "read"
    NETWORK = "network"
    UNIX_SOCKET = "unix-socket"
    PRIVILEGE = "privilege"


@record
class Denial:
    """One thing the sandbox refused, and what would allow it.

    ``target`` is the path or address refused (None when the evidence does
    not name one); ``remedy`` is one line an agent can act on; ``evidence``
    is the output line it was read from.
    """

    kind: DenialKind
    target: str | None
    remedy: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "target": self.target, "remedy": self.remedy,
                "evidence": self.evidence}


@record
class ExecResult:
    """Everything known about a finished run.

    ``exit_code`` is the command's own, 124 when the timeout ended it, and
    128+N when signal N killed it (``signal`` is then N).  A cancelled run
    (token or Ctrl-C) reports 137, 128+SIGKILL, as Codex does.
    ``output`` interleaves stdout and stderr in the order the chunks arrived.
    """

    argv: tuple[str, ...]
    exit_code: int
    stdout_capture: CapturedText
    stderr_capture: CapturedText
    output: CapturedText
    duration: float
    timed_out: bool = False
    cancelled: bool = False
    signal: int | None = None
    kill_mechanism: KillMechanism = KillMechanism.PROCESS_GROUP
    spill_path: Path | None = None
    #: Pipes were still held open (by an escaped process) when the drain
    #: timeout ran out, so output written after that moment is missing.
    drain_timed_out: bool = False
    events_emitted: int = 0
    #: Live events not delivered: past the per-run cap, or dropped because an
    #: async consumer fell too far behind.  The captured output is complete.
    events_dropped: int = 0
    policy: str = "full-access"
    #: The sandbox backend that confined the run; None without a sandbox.
    sandbox: str | None = None
    #: The run failed and its output or exit code looks like a sandbox denial
    #: (:func:`corral.is_likely_sandbox_denied`; a heuristic).
    likely_sandbox_denied: bool = False
    #: What the sandbox refused, each checked against the policy (see
    #: :func:`corral.find_denials`).
    denials: tuple[Denial, ...] = ()

    @property
    def stdout(self) -> str:
        return self.stdout_capture.text

    @property
    def stderr(self) -> str:
        return self.stderr_capture.text

    @property
    def aggregated_output(self) -> str:
        return self.output.text

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        import signal  # only here: importing it costs start-up 2 ms (see _cli)

        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the CLI's ``--json`` output)."""
        return {
            "argv": list(self.argv),
            "exit_code": self.exit_code,
            "stdout": self.stdout_capture.to_dict(),
            "stderr": self.stderr_capture.to_dict(),
            "output": self.output.to_dict(),
            "duration": round(self.duration, 6),
            "timed_out": self.timed_out,
            "cancelled": self.cancelled,
            "signal": self.signal,
            "signal_name": self.signal_name,
            "kill_mechanism": self.kill_mechanism.value,
            "spill_path": str(self.spill_path) if self.spill_path else None,
            "drain_timed_out": self.drain_timed_out,
            "events_emitted": self.events_emitted,
            "events_dropped": self.events_dropped,
            "policy": self.policy,
            "sandbox": self.sandbox,
            "likely_sandbox_denied": self.likely_sandbox_denied,
            "denials": [denial.to_dict() for denial in self.denials],
        }
