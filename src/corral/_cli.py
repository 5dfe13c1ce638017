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

import argparse
import os
import signal
import sys
from collections.abc import Sequence
# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from ._policy import SandboxPolicy

EXIT_CORRAL_ERROR = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, minus its import of shutil on every argument
    (for the terminal width); start-up pays for that, help rarely runs."""

    def __init__(self, prog: str) -> None:
        try:
            width = os.get_terminal_size().columns - 2
        except OSError:
            width = 78
        super().__init__(prog, width=max(width, 40))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CORRAL_ERROR, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float | None:
    from ._request import parse_timeout

    try:
        return parse_timeout(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    scale = units.get(text[-1:].lower(), 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(number) * scale
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"not a size of at least 2 bytes (e.g. 1M, 64k): {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="corral",
        formatter_class=_Formatter,
        description="Run shell commands for AI coding agents: confined, bounded, observed.",
    )
    parser.add_argument("--version", action="version", version="corral 0.1.0")
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        formatter_class=_Formatter,
        help="run a command",
        description="Run CMD, stream its output, exit with its exit code "
        "(124 timeout, 128+N signal N, 137 interrupted; 125/126/127 corral's own errors).",
    )
    run.add_argument(
        "--timeout", type=_seconds, metavar="S", default=argparse.SUPPRESS,
        help="seconds before the command and everything it started is killed "
        "(default: $CORRAL_DEFAULT_TIMEOUT or 10; 'none' for no limit)",
    )
    run.add_argument("--cwd", metavar="DIR", help="working directory (default: the current one)")
    run.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="set a variable in the command's environment (repeatable)",
    )
    run.add_argument(
        "--unset-env", action="append", default=[], metavar="NAME",
        help="remove a variable from the command's environment (repeatable)",
    )
    run.add_argument(
        "--env-inherit", choices=("all", "core", "none"), default="all",
        help="which host variables the command gets (default: all)",
    )
    run.add_argument(
        "--keep-secrets", action="store_true",
        help="keep host variables whose names contain KEY, SECRET, TOKEN or PASSWORD "
        "(dropped by default)",
    )
    run.add_argument(
        "--policy", default="full-access", choices=("read-only", "full-access"),
        help="sandbox policy (default: full-access; read-only needs bubblewrap)",
    )
    run.add_argument(
        "--network", action="store_true",
        help="let a sandboxed command use the network (off by default)",
    )
    run.add_argument(
        "--deny-read", action="append", default=[], metavar="PATH",
        help="also hide PATH from a sandboxed command (repeatable; secret stores such as "
        "~/.ssh and ~/.aws are hidden by default)",
    )
    run.add_argument(
        "--no-default-deny-read", action="store_true",
        help="do not hide the default secret stores",
    )
    run.add_argument(
        "--max-output", type=_size, metavar="SIZE", default=argparse.SUPPRESS,
        help="bytes kept per stream as head and tail (default 1M)",
    )
    spill = run.add_mutually_exclusive_group()
    spill.add_argument(
        "--spill", action="store_const", const=True, default=False,
        help="also write the complete output to a new temporary file (path printed at the end)",
    )
    spill.add_argument(
        "--spill-to", dest="spill", metavar="PATH",
        help="also write the complete output to PATH",
    )
    run.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    doctor = commands.add_parser(
        "doctor",
        formatter_class=_Formatter,
        help="show what this machine can enforce",
        description="Probe this machine (by trying each mechanism) and show, per policy, "
        "what corral can enforce here.",
    )
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    return parser


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
        print(f"corral: {message}", file=sys.stderr)
    return code


def _policy(args: argparse.Namespace) -> SandboxPolicy | str:
    """The policy the flags describe; sandbox flags without a sandbox are an error."""
    from ._policy import DEFAULT_DENY_READ, SandboxPolicy

    if args.policy == "full-access":
        if args.network or args.deny_read or args.no_default_deny_read:
            raise ValueError("--network and --deny-read apply to sandboxed policies, "
                             "not to full-access")
        return str(args.policy)
    defaults = () if args.no_default_deny_read else DEFAULT_DENY_READ
    return SandboxPolicy.read_only(network=args.network,
                                   deny_read=(*defaults, *args.deny_read))


def _run(args: argparse.Namespace) -> int:
    from ._cancel import CancelToken
    from ._engine import execute
    from ._env import build_env, parse_env_assignment
    from ._errors import CorralError, NotExecutableError, ProgramNotFoundError, SpawnError
    from ._request import ExecRequest, OutputLimits

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
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
        limit_fields: dict[str, object] = {"spill": args.spill}
        if hasattr(args, "max_output"):
            limit_fields["max_bytes_per_stream"] = args.max_output
        fields: dict[str, object] = {}
        if hasattr(args, "timeout"):
            fields["timeout"] = args.timeout
        request = ExecRequest(
            argv=argv, cwd=args.cwd, env=env, cancel=cancel, policy=_policy(args),
            limits=OutputLimits(**limit_fields),  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
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
        notes.append(f"timed out after {result.duration:.3g} s; every process it started was killed")
    elif result.cancelled:
        notes.append("interrupted; every process it started was killed")
    elif result.signal is not None:
        notes.append(f"command killed by {result.signal_name}")
    if result.drain_timed_out:
        notes.append("output may be incomplete: its pipes were still held open")
    if result.spill_path is not None:
        notes.append(f"complete output in {result.spill_path}")
    for note in notes:
        print(f"corral: {note}", file=sys.stderr)
    return result.exit_code


def _yes_no(capability: object) -> str:
    from .sandbox.probe import Capability

    assert isinstance(capability, Capability)
    return f"{'yes' if capability.available else 'no'}: {capability.detail}"


def _doctor(args: argparse.Namespace) -> int:
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
    else:
        read_only = f"refused here: bubblewrap is needed ({probe.bwrap.detail})"
    missing = "not available in this version of corral yet"
    policies = {"full-access": lifecycle, "read-only": read_only, "workspace-write": missing}
    if args.json:
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
        ("user namespaces", _yes_no(probe.user_namespaces)),
        ("  with capabilities", _yes_no(probe.user_namespace_capabilities)),
        ("  /proc mountable", _yes_no(probe.proc_mount)),
        ("bubblewrap", _yes_no(probe.bwrap)),
        ("cgroup v2", _yes_no(probe.cgroup)),
    ]
    print("Machine")
    for name, value in rows:
        print(f"  {name:<22} {value}")
    print("Policies")
    for name, value in policies.items():
        print(f"  {name:<22} {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = _parser().parse_args(argv)
    if args.subcommand == "run":
        code = _run(args)
    elif args.subcommand == "doctor":
        code = _doctor(args)
    else:  # pragma: no cover - argparse rejects unknown subcommands
        code = EXIT_CORRAL_ERROR
    sys.stdout.flush()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
