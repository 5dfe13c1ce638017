"""Which commands are known to be safe, and which are dangerous.

*Known safe* means read-only by construction: it runs without asking under
every approval policy (still in the sandbox).  The set is Codex's: commands
that only read (``cat``, ``ls``, ``grep``...), and commands that are safe
with some arguments only (``find`` without the actions that run, delete or
write, ``rg`` without the options that run a program, ``git`` subcommands
that only show, ``sed -n Np FILE``, ``base64`` without ``-o``, ``uniq``
without an output file).  An option that runs or writes is caught in the
abbreviations ``getopt_long`` and git accept too (``--outp=x``); for
``sed``, any option or script not known to only print is not safe.  A shell
script is known safe only if it is plain (see
:func:`.shell.plain_commands`: no word bash would expand, such as
``{--pre=sh,x}`` or ``*``) and each of its commands is.

*Dangerous* means destructive in a way the sandbox does not undo inside the
workspace: ``rm`` with ``-f`` or ``-r``, ``git reset``, ``git rm``, ``git
clean -f``, a forced ``git push``; also behind ``sudo``, ``env`` (``-S``
included), ``xargs``, ``nice``, ``nohup``, ``timeout``, ``command``,
``builtin``, ``exec``, ``time``, ``setsid`` and ``find -exec``, and anywhere
in a script: inside substitutions and subshells, in the script of any
``SHELL -...c SCRIPT ARGS`` call (see :func:`.shell.shell_script`), and in
what ``eval`` runs, nested in one another to any depth corral reads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from .shell import every_command, plain_commands, plain_shell_script, shell_script

__all__ = ["danger", "is_known_safe"]

_ALWAYS_SAFE = frozenset({
    "cat", "cd", "cut", "echo", "expr", "false", "grep", "head", "id", "ls", "nl", "paste", "pwd",
    "rev", "seq", "stat", "tail", "tr", "true", "uname", "wc", "which", "whoami",
    "numfmt", "tac",
})
_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint",
                           "-fprint0", "-fprintf"})
_RG_RUNS = ("--pre", "--hostname-bin", "--search-zip")
_GIT_SHOW = frozenset({"status", "log", "diff", "show"})
# Options of git's showing subcommands that write a file or run a program.
_GIT_RUNS_OR_WRITES = ("--output", "--ext-diff", "--exec", "--upload-pack")
# git branch forms that list and change nothing.
_GIT_BRANCH_LISTING = frozenset({"-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose",
                                 "--list", "-l", "--show-current", "--no-color", "--color"})
_SED_PRINT = re.compile(r"\d+(,\d+)?p")
_SED_QUIET = frozenset({"-n", "--quiet", "--silent"})
# uniq's options that take the next word as their value.
_UNIQ_VALUED = frozenset({"-f", "-s", "-w", "--skip-fields", "--skip-chars", "--check-chars"})
# Wrappers that run the rest of their arguments as a command, and how many
# option words that take a value each one knows.
_WRAPPERS = {
    "sudo": frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-R", "-T", "-U", "--user",
                       "--group", "--host", "--prompt", "--chdir", "--chroot"}),
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "xargs": frozenset({"-a", "-d", "-E", "-e", "-I", "-i", "-L", "-l", "-n", "-P", "-s",
                        "--arg-file", "--delimiter", "--max-args", "--max-procs",
                        "--max-chars", "--replace"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "nohup": frozenset(),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "setsid": frozenset(),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
}
# How deep danger reads scripts in scripts; deeper is taken to be dangerous.
_MAX_DEPTH = 8


def is_known_safe(argv: tuple[str, ...] | list[str]) -> bool:
    """Whether ``argv`` (a command, or a shell's ``-c`` script) only reads."""
    script = plain_shell_script(argv)
    if script is None:
        return _safe_command(tuple(argv))
    commands = plain_commands(script)
    return commands is not None and all(_safe_command(c) for c in commands)


def danger(argv: tuple[str, ...] | list[str], depth: int = 0) -> str | None:
    """Why ``argv`` is dangerous (``"rm -rf"``, ``"git reset"``...), or None.
    Wrappers are read through to what they run, and a shell's script or
    ``eval``'s arguments (joined, as eval does) as a script: every command
    in it, nested ones (``env sh -c "bash -ec 'eval ...'"``) too."""
    argv = _unwrap(tuple(argv))
    script = shell_script(argv)
    if script is None and argv[:1] == ("eval",):
        script = " ".join(argv[1:])
    if script is None:
        return _dangerous_command(argv, depth)
    if depth >= _MAX_DEPTH:
        return "scripts nested too deep to read"
    for command in every_command(script):
        reason = danger(command, depth + 1)
        if reason is not None:
            return reason
    return None


def _safe_command(argv: tuple[str, ...]) -> bool:
    if not argv or "/" in argv[0]:
        return False  # a path may name anything, a planted ./ls included
    name, args = argv[0], argv[1:]
    if name in _ALWAYS_SAFE:
        return True
    if name == "find":
        return not any(a in _FIND_ACTIONS for a in args)
    if name == "rg":
        return not any(_long_option(a, _RG_RUNS) or _short_option(a, "z") for a in args)
    if name == "base64":
        return not any(_long_option(a, ("--output",)) or _short_option(a, "o") for a in args)
    if name == "uniq":  # a second operand is the file it writes
        return len(_operands(args, _UNIQ_VALUED)) <= 1
    if name == "sed":
        return _safe_sed(args)
    if name == "git":
        return _safe_git(args)
    return False


def _safe_git(args: tuple[str, ...]) -> bool:
    # An option before the subcommand (-c core.pager=..., --git-dir, -C) can
    # make any subcommand run a program: never safe.
    if not args or args[0].startswith("-"):
        return False
    sub, rest = args[0], args[1:]
    if any(a.startswith(_GIT_RUNS_OR_WRITES) or _long_option(a, _GIT_RUNS_OR_WRITES)
           for a in rest):
        return False
    if sub in _GIT_SHOW:
        return True
    if sub == "branch":
        return all(a in _GIT_BRANCH_LISTING for a in rest)
    return False


def _safe_sed(args: tuple[str, ...]) -> bool:
    """``sed -n`` printing lines by number from one file: ``-n``, scripts
    (each ``-e S``, ``--expression=S``, or else the first operand) that are
    all ``Np`` or ``N,Mp``, and one file operand.  Any other option (``-i``,
    ``-f FILE``, ``-s``, an abbreviation such as ``--expr``) or script (so
    never ``e``, ``w``, ``W``, ``r``, ``R`` nor ``s///e``) is not safe."""
    quiet = False
    scripts: list[str] = []
    operands: list[str] = []
    for option, word in _words(args, frozenset(("-e", "--expression"))):
        if option is None:
            operands.append(word)
        elif option in _SED_QUIET:
            quiet = True
        elif option in ("-e", "--expression"):
            scripts.append(word)
        elif option.startswith("--expression="):
            scripts.append(option.partition("=")[2])
        else:
            return False
    if not scripts and operands:
        scripts.append(operands.pop(0))
    return (quiet and bool(scripts) and len(operands) == 1
            and all(_SED_PRINT.fullmatch(script) for script in scripts))


def _long_option(word: str, options: tuple[str, ...]) -> bool:
    """Whether ``word`` is one of the long ``options`` (``--name`` or
    ``--name=VALUE``) or an abbreviation of one (``--outp=x``), which
    ``getopt_long`` and git accept."""
    name = word.partition("=")[0]
    return word.startswith("--") and len(name) > 2 and any(o.startswith(name) for o in options)


def _short_option(word: str, letter: str) -> bool:
    """Whether ``word`` is a cluster of short options (``-iz``) that holds
    ``letter``; a letter that is another option's value counts too."""
    return word.startswith("-") and not word.startswith("--") and letter in word


def _operands(args: tuple[str, ...], valued: frozenset[str]) -> list[str]:
    """The words of ``args`` that are neither options nor the values of the
    ``valued`` options."""
    return [word for option, word in _words(args, valued) if option is None]


def _words(args: tuple[str, ...],
           valued: frozenset[str]) -> Iterator[tuple[str | None, str]]:
    """``args`` read as getopt reads them: ``(option, value)`` for each
    option (its value the next word for one of ``valued``, else ""), and
    ``(None, operand)`` for each operand, every word after ``--`` and a
    lone ``-`` included."""
    words = iter(args)
    for word in words:
        if word == "--":
            yield from ((None, rest) for rest in words)
            return
        if word == "-" or not word.startswith("-"):
            yield None, word
        else:
            yield word, next(words, "") if word in valued else ""


def _dangerous_command(argv: tuple[str, ...], depth: int) -> str | None:
    """Why the command ``argv`` (no wrapper, no shell script) is dangerous,
    or None; ``depth`` is how deep in scripts it is, for ``find -exec``'s."""
    if not argv:
        return None
    name, args = os.path.basename(argv[0]), argv[1:]
    if name == "rm":
        forced = recursive = False
        for a in args:
            if a == "--":
                break
            if _long_option(a, ("--force",)):
                forced = True
            elif _long_option(a, ("--recursive",)):
                recursive = True
            elif a.startswith("-") and not a.startswith("--"):
                forced |= "f" in a
                recursive |= "r" in a or "R" in a
        if forced or recursive:
            return "rm " + "-" + ("r" if recursive else "") + ("f" if forced else "")
        return None
    if name == "git":
        sub, rest = _git_subcommand(args)
        if sub in ("reset", "rm"):
            return f"git {sub}"
        if sub == "clean" and any(_long_option(a, ("--force",)) or _short_option(a, "f")
                                  for a in rest):
            return "git clean -f"
        if sub == "push" and any(_long_option(a, ("--force", "--force-with-lease",
                                                  "--force-if-includes"))
                                 or a.startswith("+") or _short_option(a, "f") for a in rest):
            return "git push --force"
        return None
    if name == "find":
        for i, a in enumerate(args):
            if a in ("-exec", "-execdir", "-ok", "-okdir"):
                inner = []
                for word in args[i + 1:]:
                    if word in (";", "+"):
                        break
                    inner.append(word)
                reason = danger(tuple(inner), depth + 1)
                if reason is not None:
                    return reason
            if a == "-delete":
                return "find -delete"
    return None


def _git_subcommand(args: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """git's subcommand and its arguments, past the global options."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-c", "-C", "--git-dir", "--work-tree", "--namespace") else 1
    return (args[i], args[i + 1:]) if i < len(args) else ("", ())


def _unwrap(argv: tuple[str, ...]) -> tuple[str, ...]:
    """The command a chain of wrappers (``sudo -u x env A=1 nice cmd``) runs.
    ``env -S STRING ARGS`` splits STRING into words much as a shell would:
    it becomes ``eval STRING ARGS``, read as a script."""
    for _ in range(16):
        if not argv:
            return argv
        valued = _WRAPPERS.get(os.path.basename(argv[0]))
        if valued is None:
            return argv
        i = 1
        wrapper = os.path.basename(argv[0])
        while i < len(argv):
            word = argv[i]
            if word == "--":
                i += 1
                break
            if wrapper == "env" and _long_option(word, ("--split-string",)):
                value = word.partition("=")[2]
                return ("eval", *((value,) if "=" in word else ()), *argv[i + 1:])
            if wrapper == "env" and _short_option(word, "S"):
                # -S in a cluster of short options (-iS...): the rest is its string
                attached = word[word.index("S", 1) + 1:]
                return ("eval", *((attached,) if attached else ()), *argv[i + 1:])
            if word in valued:
                i += 2
            elif word.startswith("-"):
                i += 1
            elif wrapper == "env" and "=" in word:
                i += 1
            elif wrapper == "timeout" and i == _first_positional(argv, valued):
                i += 1  # the duration
            elif wrapper == "nice" and word.lstrip("-").isdigit():
                i += 1
            else:
                break
        argv = argv[i:]
    return argv


def _first_positional(argv: tuple[str, ...], valued: frozenset[str]) -> int:
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in valued else 1
    return i
