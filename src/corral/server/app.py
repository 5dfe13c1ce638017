"""The MCP server: corral's tools over the official SDK's ``MCPServer``.

Tool ``shell`` takes Codex's arguments (``command`` as argv, ``workdir``,
``timeout_ms``, ``with_escalated_permissions``, ``justification``) plus
corral's (``network``, ``writable``: extra permissions asked for), runs the
command through the server's :class:`~corral.ApprovalSession` (one per
server: session approvals last as long as it does) and returns what a model
needs: the exit code, the output fitted to the token budget (head and tail,
with a notice and, when cut, the file holding all of it), the duration,
``timed_out``, the sandbox's denials and the decision path.  Tool
``read_output`` reads the complete output of a call whose output was cut.

When a request needs a human (an escalation, a dangerous command, a re-run
without the sandbox), the server asks through MCP elicitation if the client
supports it; otherwise the approval policy decides alone (what needs asking
is refused) and the result says so.
"""

from __future__ import annotations

import bisect
import io
import itertools
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO, Literal, TextIO

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from .._errors import CorralError, RequestError
from .._format import chars_for_tokens, fit_for_model, truncate_middle
from .._policy import PolicyKind, policy_from_options
from .._record import replace
from ..approvals import (Answer, ApprovalRequest, ApprovalSession, Permissions, Question, Reply,
                         load_rules)
from .config import ServerConfig
from .sessions import ProcessSession, SessionError, SessionManager

__all__ = ["build_server"]

INSTRUCTIONS = """\
corral runs shell commands in a kernel sandbox. `shell` runs a command (an argv list; use
["bash", "-lc", "..."] for a script) and returns its exit code and output. By default the command
may write only beneath its working directory, has no network, and cannot touch git hooks or
editor/agent config. If the result lists denials, the sandbox refused something: ask again with
with_escalated_permissions (and a justification), or with network / writable for just that.
When an output is cut, read_output reads all of it."""


class _ApprovalForm(BaseModel):
    """What the user answers through elicitation."""

    decision: Literal["approve-once", "approve-session", "approve-always", "deny"] = Field(
        description="approve once, for this session, always for this command prefix, or deny")
    message: str = Field("", description="for the agent, when you deny")


_ANSWERS = {"approve-once": Answer.APPROVE_ONCE, "approve-session": Answer.APPROVE_SESSION,
            "approve-always": Answer.APPROVE_PREFIX, "deny": Answer.DENY}


def build_server(config: ServerConfig, rules_file: str | None = None) -> MCPServer:
    """The MCP server for ``config``.  Raises :class:`~corral.PolicyError` or
    :class:`~corral.RulesError` for settings that cannot be used."""
    policy = policy_from_options(
        config.policy, writable=config.writable, network=config.network,
        allow_unix_sockets=config.allow_unix_socket, deny_read=config.deny_read,
        accept_weaker=config.accept_weaker)
    if policy.kind is PolicyKind.WORKSPACE_WRITE:
        # The workspace is the server's directory, fixed now: the model names
        # each call's workdir, which must widen nothing (and is resolved
        # again when the sandbox is made, after any check here).
        policy = replace(policy, writable=(os.getcwd(), *policy.writable), cwd_writable=False)
    session = ApprovalSession(config.approval, rules=load_rules(list(config.rules)),
                              policy=policy, rules_file=rules_file)
    sessions = SessionManager()

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        try:
            yield None
        finally:  # the client went away: so do the sessions' commands
            import anyio

            await anyio.to_thread.run_sync(sessions.close)

    server = MCPServer("corral", instructions=INSTRUCTIONS, lifespan=lifespan)
    outputs = _Outputs()

    @server.tool(description=(
        "Run a command (argv list) in corral's sandbox and return its exit code and output. "
        "timeout_ms defaults to the server's timeout. Ask for with_escalated_permissions "
        "(with a justification) to run without the sandbox, or for network / writable roots "
        "inside it; a human may be asked to approve."))
    async def shell(command: list[str], ctx: Context, workdir: str | None = None,
                    timeout_ms: int | None = None, with_escalated_permissions: bool = False,
                    justification: str | None = None, network: bool = False,
                    writable: list[str] | None = None) -> dict[str, Any]:
        import anyio

        cwd = _checked(command, workdir)
        permissions = Permissions(escalate=with_escalated_permissions, network=network,
                                  writable=tuple(writable or ()), justification=justification)
        approver = _approver(ctx)
        timeout = config.timeout if timeout_ms is None else _waited("timeout_ms", timeout_ms)
        number, spill = outputs.new()
        from .._request import OutputLimits

        try:
            outcome = await session.run_async(command, cwd=cwd, permissions=permissions,
                                              approver=approver, timeout=timeout,
                                              limits=OutputLimits(spill=spill))
        except CorralError as exc:  # not found, not executable, a policy it cannot enforce
            _discard(spill)
            raise ToolError(str(exc)) from None
        reply: dict[str, Any] = {"decision": outcome.decision.value,
                                 "decision_path": _noted(outcome.path, approver)}
        result = outcome.result
        if result is None:
            reply.update(exit_code=None, output=outcome.message or "not run")
            _discard(spill)
            return reply
        # Its notice, if it is cut, says how to read all of it: no sandboxed
        # command can see the file.
        text = fit_for_model(result, _budget(None, config.max_output_tokens), _reader(number))
        if result.output.truncated or not text.endswith(result.output.text):
            reply["output_id"] = number
            await anyio.to_thread.run_sync(outputs.keep, number)
        else:
            _discard(spill)
        reply.update(
            exit_code=result.exit_code,
            output=text,
            duration_seconds=round(result.duration, 3),
            timed_out=result.timed_out,
            denials=[d.to_dict() for d in result.denials],
            sandbox=result.sandbox or "none",
        )
        if outcome.message:
            reply["message"] = outcome.message
        return reply

    @server.tool(description=(
        "Read the complete output of a shell call whose output was cut, by the output_id its "
        "notice names: the lines from start_line (1 is the first) that fit in "
        "max_output_tokens, and next_line when more follow."))
    async def read_output(output_id: int, start_line: int = 1,
                          max_output_tokens: int | None = None) -> dict[str, Any]:
        import anyio

        if start_line < 1:
            raise ToolError(f"start_line must be at least 1, not {start_line}")
        budget = _budget(max_output_tokens, config.max_output_tokens)
        try:
            return await anyio.to_thread.run_sync(outputs.read, output_id, start_line, budget)
        except FileNotFoundError:
            raise ToolError(f"no output {output_id}: only cut outputs are kept, the latest "
                            f"{KEPT_OUTPUT_BYTES >> 20} MiB of them") from None

    @server.tool(description=(
        "Start a command (a command line run by `shell -lc`, or an argv list) that may run "
        "long or need input, e.g. a dev server, a "
        "REPL or `cat`. Returns after yield_time_ms (or when it exits) with its output so far; "
        "if it still runs, a session_id for write_stdin, list_sessions and kill_session. Its "
        "stdin stays open; tty=true gives it a terminal. Same sandbox and approvals as shell."))
    async def exec_command(cmd: str | list[str], ctx: Context, workdir: str | None = None,
                           yield_time_ms: int = 10_000, tty: bool = False,
                           max_output_tokens: int | None = None, shell: str = "bash",
                           login: bool = True, with_escalated_permissions: bool = False,
                           justification: str | None = None, network: bool = False,
                           writable: list[str] | None = None) -> dict[str, Any]:
        if isinstance(cmd, str):  # a command line, as Codex's unified exec takes it
            if not cmd.strip():
                raise ToolError("cmd is empty")
            cmd = [shell, "-lc" if login else "-c", cmd]
        cwd = _checked(cmd, workdir)
        waited = _waited("yield_time_ms", yield_time_ms, zero=True)
        permissions = Permissions(escalate=with_escalated_permissions, network=network,
                                  writable=tuple(writable or ()), justification=justification)
        approver = _approver(ctx)
        granted = await session.authorize_async(cmd, cwd=cwd, permissions=permissions,
                                                approver=approver)
        path = _noted(granted.path, approver)
        if granted.policy is None:
            return {"decision": granted.decision.value, "decision_path": path,
                    "output": granted.message or "not run", "running": False}
        try:
            started = sessions.start(tuple(cmd), cwd, granted.policy, None, tty)
        except SessionError as exc:
            raise ToolError(str(exc)) from None
        path.append("started in the sandbox" if granted.policy.sandboxed
                    else "started without the sandbox")
        reply = await _poll(started, waited, max_output_tokens, until_exit=True)
        return {"decision": granted.decision.value, "decision_path": path, **reply}

    @server.tool(description=(
        "Write chars to a session's stdin (empty: just poll), then return its output after "
        "yield_time_ms, or sooner if it exits."))
    async def write_stdin(session_id: int, chars: str = "", yield_time_ms: int = 250,
                          max_output_tokens: int | None = None) -> dict[str, Any]:
        waited = _waited("yield_time_ms", yield_time_ms, zero=True)
        try:
            target = sessions.get(session_id)
            if chars:
                target.write(chars)
        except SessionError as exc:
            raise ToolError(str(exc)) from None
        return await _poll(target, waited, max_output_tokens, until_exit=not chars)

    @server.tool(description="The sessions: command, running or exit code, runtime, and the "
                             "TCP ports their processes listen on, where visible.")
    async def list_sessions() -> dict[str, Any]:
        import anyio

        described = [await anyio.to_thread.run_sync(s.describe) for s in sessions.all()]
        return {"sessions": described}

    @server.tool(description="Kill a session's command and everything it started; returns "
                             "its last output.")
    async def kill_session(session_id: int) -> dict[str, Any]:
        import anyio

        try:
            target = sessions.get(session_id)
        except SessionError as exc:
            raise ToolError(str(exc)) from None
        await anyio.to_thread.run_sync(target.kill)
        reply = await _poll(target, 0, None, until_exit=False)
        sessions.forget(session_id)
        return reply

    async def _poll(target: ProcessSession, wait: float, max_output_tokens: int | None,
                    until_exit: bool) -> dict[str, Any]:
        import anyio

        budget = _budget(max_output_tokens, config.max_output_tokens)
        text = await anyio.to_thread.run_sync(target.read, wait, until_exit)
        fitted = truncate_middle(text, max_chars=budget).text if len(text) > budget else text
        reply: dict[str, Any] = {"output": fitted, "running": target.running}
        if target.running:
            reply["session_id"] = target.id
        elif target.result is not None:
            reply.update(exit_code=target.result.exit_code, timed_out=target.result.timed_out,
                         denials=[d.to_dict() for d in target.result.denials])
        elif target.error is not None:
            reply["error"] = str(target.error)
        return reply

    return server


def _checked(command: list[str], workdir: str | None) -> str:
    """The working directory, once the arguments are known to be usable: the
    server's own, or ``workdir``.  Under workspace-write it is not a root
    (the policy's ``cwd_writable`` is off): only the workspace and what a
    call asks for in ``writable`` are writable, wherever it runs.  Raises
    :class:`ToolError` otherwise."""
    if not command or not all(word for word in command):
        raise ToolError("the command must be a non-empty list of non-empty strings (argv); "
                        'for a script use ["bash", "-lc", "..."]')
    cwd = os.path.abspath(os.path.expanduser(workdir)) if workdir else os.getcwd()
    if not os.path.isdir(cwd):
        raise ToolError(f"workdir {workdir!r} is not a directory")
    return cwd


def _waited(name: str, milliseconds: int, zero: bool = False) -> float:
    """A tool's ``milliseconds`` in seconds, checked as every wait is
    (:func:`~corral._request.checked_wait`).  Raises :class:`ToolError`."""
    from .._request import checked_wait

    try:
        return checked_wait(name, milliseconds, milliseconds=True, zero=zero)
    except RequestError as exc:
        raise ToolError(str(exc)) from None


def _approver(ctx: Context) -> Any:
    """An approver that asks the client's user through elicitation, or None
    when the client cannot be asked."""
    params = ctx.request_context.session.client_params
    capabilities = params.capabilities if params is not None else None
    if capabilities is None or capabilities.elicitation is None:
        return None

    async def ask(request: ApprovalRequest) -> Reply:
        import shlex

        from .._cli import escape_controls

        question = ("The sandbox refused it; run it again WITHOUT the sandbox?"
                    if request.question is Question.RETRY_UNSANDBOXED else "Run it?")
        lines = [f"corral: `{shlex.join(request.argv)}` in {request.cwd}", request.reason]
        if request.justification:
            lines.append(f"The agent says: {request.justification}")
        lines.append(question)
        result = await ctx.elicit("\n".join(escape_controls(line) for line in lines),
                                  _ApprovalForm)
        if result.action != "accept" or result.data is None:
            return Reply(Answer.DENY, f"the user did not answer ({result.action})")
        return Reply(_ANSWERS[result.data.decision], result.data.message or None)

    return ask


def _noted(path: tuple[str, ...], approver: Any) -> list[str]:
    """The decision path, saying why nobody was asked when that decided it."""
    steps = list(path)
    if approver is None and any("nobody can be asked" in step for step in steps):
        steps.append("the client does not support elicitation, so nobody could be asked: "
                     "the approval policy decided alone")
    return steps


class _Outputs:
    """The complete outputs of shell calls, by number, in a directory of the
    server's own inside corral's runtime directory: outside every writable
    root, and hidden by bubblewrap, so that no sandboxed command can plant
    a link or a FIFO where the next output goes, nor read or change one
    (on the Landlock backend, which confines no read, it can read one).
    The directory is made on first use and removed when the server exits
    (by the watchdog if it is killed)."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._directory: str | None = None
        self._kept: dict[int, int] = {}  # number -> size, oldest first
        self._total = 0
        self._line_starts: dict[int, list[tuple[int, int]]] = {}  # number -> _line_starts
        self._lock = threading.Lock()

    def keep(self, number: int) -> None:
        """Keeps output ``number``, removing the oldest kept ones while all
        of them take more than :data:`KEPT_OUTPUT_BYTES` (the runtime
        directory is often a small tmpfs, which corral's records share).
        Calls come from worker threads, one per tool call."""
        size = os.stat(self._path(number)).st_size
        with self._lock:
            self._kept[number] = size
            self._total += size
            while self._total > KEPT_OUTPUT_BYTES and len(self._kept) > 1:
                oldest = next(iter(self._kept))
                _discard(self._path(oldest))
                self._total -= self._kept.pop(oldest)
                self._line_starts.pop(oldest, None)

    def new(self) -> tuple[int, str]:
        """A number for the next output and the path it is written to."""
        number = next(self._numbers)
        return number, self._path(number)

    def _path(self, number: int) -> str:
        if self._directory is None:
            import atexit
            import shutil

            from .._containment import OUTPUTS_PREFIX, ensure_watchdog, process_token
            from ..sandbox.guards import private_dir, runtime_dir

            ensure_watchdog()
            self._directory = private_dir(os.path.join(runtime_dir(),
                                                       f"{OUTPUTS_PREFIX}{process_token()}"))
            atexit.register(shutil.rmtree, self._directory, ignore_errors=True)
        return os.path.join(self._directory, f"{number}.log")

    def read(self, number: int, start_line: int, budget: int) -> dict[str, Any]:
        """Output ``number`` from line ``start_line`` on: the whole lines that
        fit in ``budget`` characters (at least one, a line longer than the
        budget cut to it), and ``next_line`` when more follow.  Raises
        :class:`FileNotFoundError` for an output not kept."""
        lines: list[str] = []
        used = 0
        reply: dict[str, Any] = {"output_id": number, "start_line": start_line}
        first, offset = self._nearest_start(number, start_line)
        with open(self._path(number), "rb") as raw:
            raw.seek(offset)
            # Lines end at "\n" only: a progress bar's "\r"s stay inside its line.
            f = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n")
            for line_number, line in enumerate(_cut_lines(f, budget), first):
                if line_number < start_line:
                    continue
                if lines and used + len(line) > budget:
                    reply["next_line"] = line_number
                    break
                lines.append(line)
                used += len(line)
        reply["output"] = "".join(lines)
        return reply

    def _nearest_start(self, number: int, line: int) -> tuple[int, int]:
        """The nearest line at or before ``line`` whose start in output
        ``number`` is known, and the byte offset it starts at.  The first
        read past line 1 finds them (:func:`_line_starts`); they are kept
        with the output, so that a later page is not looked for from line 1."""
        if line == 1:
            return 1, 0
        with self._lock:
            starts = self._line_starts.get(number)
        if starts is None:
            with open(self._path(number), "rb") as f:
                starts = _line_starts(f)
            with self._lock:
                if number in self._kept:  # not one being written, nor one gone
                    self._line_starts[number] = starts
        return starts[bisect.bisect_right(starts, line, key=lambda start: start[0]) - 1]


def _budget(max_output_tokens: int | None, default: int) -> int:
    """The characters ``max_output_tokens`` (None: ``default``) allows, as
    :func:`~corral._format.chars_for_tokens` counts them.  Raises
    :class:`ToolError` for fewer than one token."""
    tokens = default if max_output_tokens is None else max_output_tokens
    try:
        return chars_for_tokens(tokens, "max_output_tokens")
    except ValueError as exc:
        raise ToolError(str(exc)) from None


#: Bytes of an output per line start kept for it: a read skips at most
#: twice this to reach its first line, or more across a longer line.
_LINE_START_STRIDE = 64 * 1024


def _line_starts(f: BinaryIO) -> list[tuple[int, int]]:
    """Line numbers in ``f`` and the byte offsets they start at, ascending:
    line 1, and in each block of :data:`_LINE_START_STRIDE` bytes holding a
    newline, the line after its first.  Lines end at ``"\\n"`` (a start right
    after the last is the end of ``f``).  Found by counting newlines, with
    nothing decoded."""
    starts = [(1, 0)]
    line, offset = 1, 0  # the line the block begins in, and where the block begins
    while block := f.read(_LINE_START_STRIDE):
        after_newline = block.find(b"\n") + 1
        if after_newline:
            starts.append((line + 1, offset + after_newline))
        line += block.count(b"\n")
        offset += len(block)
    return starts


def _cut_lines(f: TextIO, limit: int) -> Iterator[str]:
    """The lines of ``f``, each cut to its first ``limit`` characters and a
    marker saying how many more it had: a line of gigabytes is never held
    whole."""
    while line := f.readline(limit):
        skipped = 0
        rest = line
        while not rest.endswith("\n") and (rest := f.readline(limit)):
            skipped += len(rest) - rest.endswith("\n")  # its newline is none of them
        if skipped:
            yield f"{line}…[{skipped} characters cut]\n"
        elif rest.endswith("\n") and not line.endswith("\n"):
            yield line + "\n"  # exactly ``limit`` characters: nothing cut
        else:
            yield line


#: How much the complete outputs a server keeps may take, all together: past
#: it, the oldest go (the last one stays, whatever its size).
KEPT_OUTPUT_BYTES = 256 * 1024 * 1024


def _reader(number: int) -> str:
    """How the model reads output ``number``, as the output's notice names it."""
    return f"read_output(output_id={number})"


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def serve_http(server: MCPServer, host: str, port: int, token: str) -> None:
    """Serves ``server`` over streamable HTTP at ``http://host:port/mcp``,
    answering only requests that carry ``Authorization: Bearer <token>``."""
    import uvicorn

    app = _RequireToken(server.streamable_http_app(host=host), token)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()


class _RequireToken:
    """ASGI middleware: HTTP requests without the bearer token get 401."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import hmac

        if scope["type"] == "http":
            given = dict(scope.get("headers", ())).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body",
                            "body": b"corral mcp: a bearer token is required\n"})
                return
        await self.app(scope, receive, send)
