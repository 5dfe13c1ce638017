"""The ``corral`` command line.

``corral run [options] -- CMD ARGS...`` runs a command the way the library
does, streaming its output live, and exits with the command's exit code:
124 when the timeout killed it, 128+N when signal N did, 137 when it was
interrupted (Ctrl-C, SIGTERM).  corral's own failures use the codes of
``env`` and ``timeout``: 125 (bad usage, corral could not run it),
126 (program not executable), 127 (program not found).

Start-up matters here (an agent may call it for every command), so this
module imports only what ``run`` needs; JSON and the rest load on demand.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable, Sequence

from ._record import record, replace
from ._request import DEFAULT_TIMEOUT, DefaultTimeout

# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import NoReturn

    from ._policy import SandboxPolicy
else:  # signal's C core: signal itself makes IntEnums of every constant, 2 ms of start-up
    import _signal as signal

EXIT_CORRAL_ERROR = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

VERSION = "corral 0.1.0"
USAGE = """\
usage: corral run [OPTIONS] [--] CMD [ARGS...]
       corral policy check [OPTIONS] [--] CMD [ARGS...]
       corral mcp [OPTIONS]
       corral doctor [--json]
       corral --version | --help"""
HELP = f"""{USAGE}

Run shell commands for AI coding agents: confined, bounded, observed.

commands:
  run            run a command, stream its output, exit with its exit code
  policy check   say whether a command would run, be asked about, or be refused
  mcp            serve corral's tools to an agent over MCP (stdio)
  doctor         show what this machine can enforce

`corral run --help` lists run's options."""
RUN_HELP = """\
usage: corral run [OPTIONS] [--] CMD [ARGS...]

Run CMD, stream its output live, and exit with its exit code: 124 when the
timeout killed it, 128+N when signal N did, 137 when interrupted (Ctrl-C,
SIGTERM).  corral's own failures exit 125 (usage, cannot run it),
126 (not executable) or 127 (not found).

options:
  --timeout S            seconds before the command and everything it started
                         is killed (default: $CORRAL_DEFAULT_TIMEOUT or 10;
                         'none' for no limit)
  --cwd DIR              working directory (default: the current one)
  --env NAME=VALUE       set a variable in the command's environment (repeatable)
  --unset-env NAME       remove a variable from it (repeatable)
  --env-inherit {all,core,none}
                         which host variables the command gets (default: all)
  --keep-secrets         keep host variables whose names contain KEY, SECRET,
                         TOKEN or PASSWORD (dropped by default)
  --policy {workspace-write,read-only,full-access}
                         sandbox policy (default: workspace-write: the command
                         writes only beneath --cwd and the --writable roots)
  --writable PATH        also let the command write beneath PATH (repeatable)
  --protect PATH         keep PATH read-only inside every writable root, even
                         if missing (repeatable; .git/hooks, .git/config, shell
                         rc files, .envrc, editor and agent config are by default)
  --no-default-protect   do not protect the default paths
  --network              let a sandboxed command use the network (off by default)
  --allow-unix-socket PATH
                         without --network, still let the command connect to
                         the host's Unix socket PATH (repeatable)
  --deny-read PATH       also hide PATH, or what a glob such as '~/.config/*/token'
                         matches, from a sandboxed command (repeatable;
                         ~/.ssh, ~/.aws and other secret stores are hidden by
                         default)
  --no-default-deny-read do not hide the default secret stores
  --accept-weaker NAME   accept a named weaker guarantee so that the Landlock
                         backend may run a sandboxed policy where bubblewrap
                         cannot (shared-tmp, no-deny-read, visible-processes,
                         changeable-attributes, unprotected-paths; repeatable;
                         the error says which are needed)
  --max-output SIZE      bytes kept per stream as head and tail (default 1M)
  --spill                also write the complete output to a new temporary file
  --spill-to PATH        also write the complete output to PATH
  --json                 print the whole result as one JSON object
  -h, --help             show this help

approvals (any of these puts the command through them; see `corral policy check`):
  --ask                  ask on the terminal when approval is needed (without
                         it, what needs approval is refused)
  --approval {untrusted,on-failure,on-request,never}
                         when to ask (default: on-request)
  --rules FILE           prefix rules file (repeatable; ~/.config/corral/rules/
                         *.rules are read too)
  --escalate             ask to run without the sandbox
  --justification TEXT   why, shown when asking"""
POLICY_HELP = """\
usage: corral policy check [OPTIONS] [--] CMD [ARGS...]

Say what the approval rules decide for CMD: allow (runs, in the sandbox),
prompt (the user is asked) or forbidden; exit 0, 1 or 2 accordingly, 125 on
a bad rules file.

options:
  --rules FILE           prefix rules file (repeatable; ~/.config/corral/rules/
                         *.rules are read too)
  --no-default-rules     do not read ~/.config/corral/rules
  --approval {untrusted,on-failure,on-request,never}
                         the approval policy (default: on-request)
  --escalate             the command asks to run without the sandbox
  --network              the command asks for network access
  --writable PATH        the command asks to write beneath PATH (repeatable)
  --json                 print the decision, matched rules and reasons as JSON
  -h, --help             show this help"""
MCP_HELP = """\
usage: corral mcp [OPTIONS]

Serve corral's tools over the Model Context Protocol on stdin/stdout, for an
agent to run its shell commands through (needs pip install 'corral[mcp]').

options:
  --http [HOST:]PORT     serve streamable HTTP at http://HOST:PORT/mcp instead
                         (HOST defaults to 127.0.0.1); clients must send
                         Authorization: Bearer TOKEN
  --token-file FILE      the token (default: $CORRAL_MCP_TOKEN)
  --config FILE          TOML settings; the keys are these options' names
                         (policy, writable, network, approval, rules, timeout,
                         max-output-tokens, ...); flags win over the file
  --policy {workspace-write,read-only,full-access}
                         sandbox policy (default: workspace-write)
  --writable PATH        also writable (repeatable)
  --network              let commands use the network
  --allow-unix-socket PATH
                         a host Unix socket commands may connect to (repeatable)
  --deny-read PATH       also hide PATH (repeatable)
  --accept-weaker NAME   accept a weaker guarantee on the Landlock backend
  --approval {untrusted,on-failure,on-request,never}
                         when to ask the user (default: on-request)
  --rules FILE           prefix rules file (repeatable; ~/.config/corral/rules/
                         *.rules are read too)
  --timeout S            default timeout of a command (default 60; 'none')
  --max-output-tokens N  budget of the output returned to the model (default 10000)
  -h, --help             show this help"""
DOCTOR_HELP = """\
usage: corral doctor [--json]

Probe this machine by trying each mechanism, and show, per policy, what corral
can enforce here.

options:
  --json      print the findings as JSON
  -h, --help  show this help"""


class _UsageError(Exception):
    """Bad command line: reported with the usage, exit 125."""


class _Help(Exception):
    """-h/--help: the text to print, exit 0."""


def _seconds(text: str) -> float | None:
    from ._request import parse_timeout

    return parse_timeout(text)


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    scale = units.get(text[-1:].lower(), 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(number) * scale
    except ValueError:
        value = 0
    if value < 2:
        raise ValueError(f"not a size of at least 2 bytes (e.g. 1M, 64k): {text!r}")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return check


@record
class _Option:
    dest: str
    convert: Callable[[str], object] | None = None  # None: a flag, takes no value
    repeat: bool = False


# The one table `corral run`'s options are parsed from (see RUN_HELP).
_RUN_OPTIONS = {
    "--timeout": _Option("timeout", _seconds),
    "--cwd": _Option("cwd", str),
    "--env": _Option("env", str, repeat=True),
    "--unset-env": _Option("unset_env", str, repeat=True),
    "--env-inherit": _Option("env_inherit", _choice("all", "core", "none")),
    "--keep-secrets": _Option("keep_secrets"),
    "--policy": _Option("policy", _choice("workspace-write", "read-only", "full-access")),
    "--writable": _Option("writable", str, repeat=True),
    "--protect": _Option("protect", str, repeat=True),
    "--no-default-protect": _Option("no_default_protect"),
    "--network": _Option("network"),
    "--allow-unix-socket": _Option("allow_unix_socket", str, repeat=True),
    "--deny-read": _Option("deny_read", str, repeat=True),
    "--no-default-deny-read": _Option("no_default_deny_read"),
    "--accept-weaker": _Option("accept_weaker", str, repeat=True),
    "--max-output": _Option("max_output", _size),
    "--spill": _Option("spill"),
    "--spill-to": _Option("spill_to", str),
    "--json": _Option("json"),
    "--ask": _Option("ask"),
    "--approval": _Option("approval", _choice("untrusted", "on-failure", "on-request", "never")),
    "--rules": _Option("rules", str, repeat=True),
    "--escalate": _Option("escalate"),
    "--justification": _Option("justification", str),
}
_POLICY_OPTIONS = {
    "--no-default-rules": _Option("no_default_rules"),
    **{name: _RUN_OPTIONS[name] for name in ("--rules", "--approval", "--escalate", "--network",
                                             "--writable", "--json")},
}
_MCP_OPTIONS = {
    "--config": _Option("config", str),
    "--http": _Option("http", str),
    "--token-file": _Option("token_file", str),
    "--max-output-tokens": _Option("max_output_tokens", int),
    **{name: _RUN_OPTIONS[name] for name in ("--policy", "--writable", "--network",
                                             "--allow-unix-socket", "--deny-read",
                                             "--accept-weaker", "--approval", "--rules",
                                             "--timeout")},
}
# Where "always allow this prefix" answers go, and rules are read from.
RULES_DIR = "~/.config/corral/rules"


@record
class RunArgs:
    """``corral run``'s command line, parsed."""

    argv: tuple[str, ...] = ()
    timeout: float | None | DefaultTimeout = DEFAULT_TIMEOUT
    cwd: str | None = None
    env: tuple[str, ...] = ()
    unset_env: tuple[str, ...] = ()
    env_inherit: str = "all"
    keep_secrets: bool = False
    policy: str = "workspace-write"
    writable: tuple[str, ...] = ()
    protect: tuple[str, ...] = ()
    no_default_protect: bool = False
    network: bool = False
    allow_unix_socket: tuple[str, ...] = ()
    deny_read: tuple[str, ...] = ()
    no_default_deny_read: bool = False
    accept_weaker: tuple[str, ...] = ()
    max_output: int | None = None
    spill: bool = False
    spill_to: str | None = None
    json: bool = False
    ask: bool = False
    approval: str | None = None
    rules: tuple[str, ...] = ()
    escalate: bool = False
    justification: str | None = None

    @property
    def approvals(self) -> bool:
        """Whether the command goes through approvals."""
        return bool(self.ask or self.approval or self.rules or self.escalate)


def _parse_options(args: Sequence[str], options: dict[str, _Option], help_text: str
                   ) -> tuple[dict[str, object], list[str]]:
    """Options up to ``--`` or the first non-option; returns them and the rest."""
    values: dict[str, object] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return values, list(args[index + 1:])
        if not arg.startswith("-") or arg == "-":
            break
        if arg in ("-h", "--help"):
            raise _Help(help_text)
        name, equals, inline = arg.partition("=")
        option = options.get(name)
        if option is None:
            raise _UsageError(f"unrecognized option {name!r}")
        if option.convert is None:
            if equals:
                raise _UsageError(f"{name} takes no value")
            value: object = True
        else:
            if not equals:
                index += 1
                if index == len(args):
                    raise _UsageError(f"{name} needs a value")
                inline = args[index]
            try:
                value = option.convert(inline)
            except ValueError as exc:
                raise _UsageError(f"{name}: {exc}") from None
        if option.repeat:
            values[option.dest] = (*values.get(option.dest, ()), value)  # type: ignore[misc]
        else:
            values[option.dest] = value
        index += 1
    return values, list(args[index:])


def parse_run(args: Sequence[str]) -> RunArgs:
    """Parses ``corral run``'s arguments (after ``run``)."""
    values, command = _parse_options(args, _RUN_OPTIONS, RUN_HELP)
    if values.get("spill") and "spill_to" in values:
        raise _UsageError("--spill and --spill-to are alternatives: give one")
    return RunArgs(argv=tuple(command), **values)  # type: ignore[arg-type]


def escape_controls(text: str) -> str:
    """``text`` as corral prints it about a run (paths, arguments, denials,
    reasons, messages): each control character escaped as repr writes it
    (``\\x1b``, ``\\n``, ``\\r``, ``\\x9b``), so that nothing a command
    or its arguments chose can recolour the terminal, move its cursor or
    start a line that reads as corral's.  The command's own output is
    copied as it is, never through this."""
    return text.translate(_escapes())


def _corral_line(text: str) -> str:
    """``text`` as a line of corral's own: ``corral: `` and then ``text``
    with its control characters escaped (:func:`escape_controls`).  Every
    such line, to stderr or to the terminal, is made here, so that none
    can print what it quotes unescaped."""
    return f"corral: {escape_controls(text)}"


@functools.cache  # made when first needed: 40 µs of every `corral run`'s start-up
def _escapes() -> dict[int, str]:
    """Each control character (C0, with ESC, newline and CR; DEL; C1) -> its
    escape as repr writes it; and each byte a name that is not UTF-8
    decodes to (a surrogate escape, PEP 383), which would reach the
    terminal as that byte (0x9b is an 8-bit CSI) -> ``\\xNN``."""
    escapes = {code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0))}
    escapes.update({code: f"\\x{code - 0xDC00:02x}" for code in range(0xDC80, 0xDD00)})
    return escapes


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _LiveOutput:
    """Copies each chunk to our own stdout/stderr as it arrives."""

    def __init__(self) -> None:
        self.broken: set[int] = set()

    def __call__(self, event: object) -> None:
        from ._result import OutputEvent, Stream

        assert isinstance(event, OutputEvent)
        fd = 1 if event.stream is Stream.STDOUT else 2
        if fd in self.broken:
            return
        try:
            _write_all(fd, event.data)
        except OSError:
            self.broken.add(fd)  # our reader went away; keep running the command


def _fail(message: str, code: int, as_json: bool, kind: str) -> int:
    if as_json:
        import json

        print(json.dumps({"error": {"type": kind, "message": message}}))
    else:
        print(_corral_line(message), file=sys.stderr)
    return code


def _policy(args: RunArgs) -> SandboxPolicy:
    """The policy the flags describe; sandbox flags without a sandbox are an error."""
    from ._policy import policy_from_options

    return policy_from_options(
        args.policy, writable=args.writable, network=args.network, protect=args.protect,
        default_protect=not args.no_default_protect, allow_unix_sockets=args.allow_unix_socket,
        deny_read=args.deny_read, default_deny_read=not args.no_default_deny_read,
        accept_weaker=args.accept_weaker)


def _run(args: RunArgs) -> int:
    from ._cancel import CancelToken
    from ._engine import execute
    from ._env import build_env, parse_env_assignment
    from ._errors import CorralError, NotExecutableError, ProgramNotFoundError, SpawnError
    from ._request import ExecRequest, OutputLimits

    argv = list(args.argv)
    if not argv:
        return _fail("no command given: corral run [options] -- CMD ARGS...",
                     EXIT_CORRAL_ERROR, args.json, "usage")
    cancel = CancelToken()

    def on_signal(signum: int, frame: object) -> None:
        cancel.cancel()

    try:
        assignments = dict(parse_env_assignment(text) for text in args.env)
        env = build_env(
            args.env_inherit, set=assignments, unset=args.unset_env,
            exclude_secrets=not args.keep_secrets,
        )
        limits = OutputLimits(spill=args.spill_to or args.spill)
        if args.max_output is not None:
            limits = OutputLimits(max_bytes_per_stream=args.max_output, spill=limits.spill)
        request = ExecRequest(
            argv=argv, cwd=args.cwd, env=env, cancel=cancel, policy=_policy(args),
            limits=limits, timeout=args.timeout,
        )
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            # One ignored by whoever started corral (nohup; a background job
            # of a shell without job control, safe from the terminal's
            # Ctrl-C) stays ignored, for corral and for the command.
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, on_signal)
        if args.approvals:
            return _run_approved(args, request)
        result = execute(request, None if args.json else _LiveOutput())
    except ProgramNotFoundError as exc:
        return _fail(str(exc), EXIT_NOT_FOUND, args.json, "program-not-found")
    except NotExecutableError as exc:
        return _fail(str(exc), EXIT_NOT_EXECUTABLE, args.json, "not-executable")
    except (SpawnError, CorralError, ValueError) as exc:
        return _fail(str(exc), EXIT_CORRAL_ERROR, args.json, type(exc).__name__)

    if args.json:
        import json

        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return result.exit_code
    notes = []
    if result.timed_out:
        notes.append(f"timed out after {result.duration:.3g} s; "
                     "every process it started was killed")
    elif result.cancelled:
        notes.append("interrupted; every process it started was killed")
    elif result.signal is not None:
        notes.append(f"command killed by {result.signal_name}")
    if result.drain_timed_out:
        notes.append("output may be incomplete: its pipes were still held open")
    if result.spill_path is not None:
        notes.append(f"complete output in {result.spill_path}")
    for denial in result.denials:
        target = f" {denial.target}" if denial.target else ""
        notes.append(f"sandbox denied {denial.kind.value}{target}: {denial.remedy}")
    for note in notes:
        print(_corral_line(note), file=sys.stderr)
    return result.exit_code


def _rule_files(given: tuple[str, ...], defaults: bool = True) -> list[str]:
    """The default rules files (``~/.config/corral/rules/*.rules``), then ``given``."""
    found = []
    if defaults:
        directory = os.path.expanduser(RULES_DIR)
        try:
            found = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                           if n.endswith(".rules"))
        except OSError:
            pass
    return [*found, *given]


def _run_approved(args: RunArgs, request: object) -> int:
    """``corral run`` through the approval flow; the result's exit code, or
    125 with the reason when the command was not run."""
    from ._request import ExecRequest
    from .approvals import ApprovalSession, Permissions, load_rules

    assert isinstance(request, ExecRequest)
    session = ApprovalSession(
        args.approval or "on-request", rules=load_rules(_rule_files(args.rules)),
        approver=_terminal_approver if args.ask else None, policy=request.resolved_policy,
        rules_file=os.path.join(os.path.expanduser(RULES_DIR), "default.rules"))
    outcome = session.run(
        request.argv, cwd=request.cwd, permissions=Permissions(
            escalate=args.escalate, justification=args.justification),
        env=request.env, timeout=request.timeout, cancel=request.cancel, limits=request.limits,
        on_output=None if args.json else _LiveOutput())
    if args.json:
        import json

        print(json.dumps(outcome.to_dict(), ensure_ascii=False))
    else:
        for step in outcome.path:
            print(_corral_line(step), file=sys.stderr)
    if outcome.result is None:
        return EXIT_CORRAL_ERROR
    return outcome.result.exit_code


def _terminal_approver(request: object) -> object:
    """Asks on the terminal (not stdin, which may be the command's)."""
    import shlex

    from .approvals import Answer, ApprovalRequest, Question, Reply

    assert isinstance(request, ApprovalRequest)
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return Reply(Answer.DENY, "no terminal to ask on")
    try:
        what = ("run it again without the sandbox?" if request.question is
                Question.RETRY_UNSANDBOXED else "run it?")
        lines = [f"`{shlex.join(request.argv)}` in {request.cwd}", request.reason]
        if request.justification:
            lines.append(f"justification: {request.justification}")
        for denial in request.denials:
            lines.append(f"refused {denial.kind.value} {denial.target or ''}".rstrip())
        prefix = shlex.join(request.prefix or request.argv)
        lines.append(f"{what} [y] once, [s] this session, [a] always `{prefix}`, [n] no: ")
        _write_all(tty, "\n".join(_corral_line(line) for line in lines).encode())
        typed = b""
        while not typed.endswith(b"\n") and len(typed) < 256:
            chunk = os.read(tty, 256)
            if not chunk:
                break
            typed += chunk
    finally:
        os.close(tty)
    choice = typed.decode(errors="replace").strip().lower()[:1]
    answers = {"y": Answer.APPROVE_ONCE, "s": Answer.APPROVE_SESSION,
               "a": Answer.APPROVE_PREFIX}
    return Reply(answers.get(choice, Answer.DENY))


def _policy_check(rest: list[str]) -> int:
    import json
    import shlex

    from ._errors import CorralError
    from .approvals import ApprovalPolicy, Permissions, assess, load_rules

    values, command = _parse_options(rest, _POLICY_OPTIONS, POLICY_HELP)
    if not command:
        raise _UsageError("no command given: corral policy check [options] -- CMD ARGS...")
    as_json = bool(values.get("json"))
    try:
        rules = load_rules(_rule_files(values.get("rules", ()),  # type: ignore[arg-type]
                                       not values.get("no_default_rules")))
    except CorralError as exc:
        return _fail(str(exc), EXIT_CORRAL_ERROR, as_json, "rules")
    permissions = Permissions(escalate=bool(values.get("escalate")),
                              network=bool(values.get("network")),
                              writable=tuple(values.get("writable", ())))  # type: ignore[arg-type]
    assessment = assess(command, ApprovalPolicy(values.get("approval", "on-request")), rules,
                        permissions)
    if as_json:
        print(json.dumps(assessment.to_dict(), ensure_ascii=False))
    else:
        print(f"{assessment.decision.value}: {escape_controls(shlex.join(command))}")
        for reason in assessment.reasons:
            print(f"  {escape_controls(reason)}")
        if assessment.matched:
            print("matched rules:")
            for match in assessment.matched:
                print(f"  {escape_controls(match.rule.describe())}")
    return assessment.decision.severity


def _mcp(rest: list[str]) -> int:
    """``corral mcp``: serves until the client closes stdin."""
    from ._errors import CorralError
    from .server.config import ServerConfig, load_config

    values, extra = _parse_options(rest, _MCP_OPTIONS, MCP_HELP)
    if extra:
        raise _UsageError(f"mcp takes no arguments, got {extra[0]!r}")
    http = values.pop("http", None)
    token_file = values.pop("token_file", None)
    try:
        config_path = values.pop("config", None)
        config = load_config(str(config_path)) if config_path else ServerConfig()
        if "timeout" in values and values["timeout"] is None:
            config = replace(config, timeout=None)  # "none": no limit (merged skips None)
            values.pop("timeout")
        config = config.merged(**values)
        config = config.merged(rules=(*_rule_files(()), *config.rules))
        try:
            from .server.app import build_server
        except ImportError as exc:
            return _fail(f"corral mcp needs the MCP SDK ({exc.name} is missing): "
                         "pip install 'corral[mcp]'", EXIT_CORRAL_ERROR, False, "missing")
        server = build_server(config, os.path.join(os.path.expanduser(RULES_DIR),
                                                   "default.rules"))
        if http is None:
            if token_file is not None:
                raise ValueError("--token-file goes with --http")
            server.run()
            return 0
        host, _, port = str(http).rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--http: {http!r} is not [HOST:]PORT")
        token = _read_token(token_file)
    except (CorralError, ValueError) as exc:
        return _fail(str(exc), EXIT_CORRAL_ERROR, False, type(exc).__name__)
    from .server.app import serve_http

    serve_http(server, host or "127.0.0.1", int(port), token)
    return 0


def _read_token(path: object) -> str:
    """The bearer token an HTTP server demands: from a file, or the environment."""
    if path is not None:
        try:
            with open(str(path), encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise ValueError(f"--token-file {path}: {exc.strerror}") from None
    else:
        token = os.environ.get("CORRAL_MCP_TOKEN", "").strip()
    if len(token) < 16:
        raise ValueError("serving over HTTP needs a bearer token of at least 16 characters: "
                         "--token-file FILE or CORRAL_MCP_TOKEN")
    return token


def _yes_no(capability: object) -> str:
    from .sandbox.probe import Capability

    assert isinstance(capability, Capability)
    return f"{'yes' if capability.available else 'no'}: {capability.detail}"


def _doctor(as_json: bool) -> int:
    from .sandbox.landlock import LandlockBackend
    from .sandbox.probe import probe_machine

    probe = probe_machine()
    if probe.cgroup.available:
        lifecycle = "runs; every process it starts ends with it (cgroup)"
    else:
        lifecycle = ("runs; its processes end with it by process group, which a process "
                     "calling setsid escapes (no usable cgroup)")
    if probe.bwrap.available and probe.seccomp.available:
        read_only = ("enforced by bubblewrap + seccomp: writes only to a private /tmp, no host "
                     "network or Unix sockets, secret stores hidden, no privileges")
        workspace = ("enforced by bubblewrap + seccomp: as read-only, plus writes beneath the "
                     "working directory and --writable roots; .git/hooks, .git/config, rc files, "
                     ".envrc, editor and agent config stay read-only and cannot be created; "
                     "Unix sockets reach only the command's own and --allow-unix-socket ones")
    elif probe.landlock_abi >= LandlockBackend.MINIMUM_ABI:
        weaker = ("shared-tmp, visible-processes, changeable-attributes and, with a secret "
                  "store inside a writable root, no-deny-read")
        read_only = (f"no usable bubblewrap ({probe.bwrap.detail}); Landlock + seccomp can run "
                     f"it if you accept its weaker guarantees (--accept-weaker {weaker}); "
                     "there secret stores outside the writable roots and the host's terminals "
                     "stay unreadable, the gate gives each run System V IPC objects, "
                     "POSIX shared memory, message queues and terminals of its own, and the "
                     "sessions its processes make (daemons) end with it")
        stand_ins = [what for abi, what in (
            (LandlockBackend.SIGNAL_SCOPING_ABI, "signals to processes outside the run"),
            (LandlockBackend.TCP_ABI, "TCP beyond loopback"),
            (LandlockBackend.TRUNCATE_ABI, "truncating files outside the writable roots"))
            if probe.landlock_abi < abi]
        if stand_ins:
            read_only += (f"; at Landlock ABI {probe.landlock_abi} the gate alone, not the "
                          f"kernel, refuses {', '.join(stand_ins)}")
        workspace = (f"no usable bubblewrap; Landlock + seccomp can run it if you accept "
                     f"{weaker}, and unprotected-paths (protected paths stay writable)")
    else:
        read_only = workspace = (
            f"refused here: bubblewrap is needed ({probe.bwrap.detail}) and Landlock "
            f"is not enough ({probe.landlock.detail}; ABI {LandlockBackend.MINIMUM_ABI} "
            "needed)")
    policies = {"full-access": lifecycle, "read-only": read_only, "workspace-write": workspace}
    if as_json:
        import json

        print(json.dumps({"machine": probe.to_dict(), "policies": policies}, indent=2))
        return 0
    where = f", in a container ({probe.container})" if probe.container else ""
    who = "root" if probe.root else "an unprivileged user"
    rows = [
        ("kernel", f"{probe.kernel} ({probe.arch}), running as {who}{where}"),
        ("Landlock", _yes_no(probe.landlock)),
        ("seccomp", _yes_no(probe.seccomp)),
        ("  user notification", _yes_no(probe.seccomp_user_notification)),
        ("  socket gate", _yes_no(probe.socket_gate)),
        ("user namespaces", _yes_no(probe.user_namespaces)),
        ("  with capabilities", _yes_no(probe.user_namespace_capabilities)),
        ("  /proc mountable", _yes_no(probe.proc_mount)),
        ("bubblewrap", _yes_no(probe.bwrap)),
        ("  sandbox init", _yes_no(probe.sandbox_init)),
        ("cgroup v2", _yes_no(probe.cgroup)),
    ]
    print("Machine")
    for name, value in rows:
        print(f"  {name:<22} {value}")
    print("Policies")
    for name, value in policies.items():
        print(f"  {name:<22} {value}")
    return 0


def _dispatch(args: list[str]) -> int:
    if not args:
        raise _UsageError("no command given")
    command, rest = args[0], args[1:]
    if command != "run":
        gc.enable()  # the corral command's start-up turned it off (scripts/corral)
    if command in ("-h", "--help"):
        raise _Help(HELP)
    if command == "--version":
        print(VERSION)
        return 0
    if command == "run":
        return _run(parse_run(rest))
    if command == "policy":
        if not rest or rest[0] in ("-h", "--help"):
            raise _Help(POLICY_HELP)
        if rest[0] != "check":
            raise _UsageError(f"unknown policy command {rest[0]!r}: use policy check")
        return _policy_check(rest[1:])
    if command == "mcp":
        return _mcp(rest)
    if command == "doctor":
        values, extra = _parse_options(rest, {"--json": _Option("json")}, DOCTOR_HELP)
        if extra:
            raise _UsageError(f"doctor takes no arguments, got {extra[0]!r}")
        return _doctor(bool(values.get("json")))
    raise _UsageError(f"unknown command {command!r}: use run, policy, mcp or doctor")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``corral`` console script: runs the command line, then ends the process."""
    try:
        code = _dispatch(list(sys.argv[1:] if argv is None else argv))
    except _Help as text:
        print(text)
        code = 0
    except _UsageError as exc:
        print(f"{_corral_line(str(exc))}\n{USAGE}", file=sys.stderr)
        code = EXIT_CORRAL_ERROR
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    """Ends the process without tearing the interpreter down.

    The run is over and everything corral must clean up is in its exit
    handlers, which run here; what normal shutdown would add is freeing
    every module, about 2 ms of every command's latency.
    """
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1  # the reader went away: as Python itself would, report it
    os._exit(code)


if __name__ == "__main__":
    main()
