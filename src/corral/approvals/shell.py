"""Shell scripts as commands: what ``bash -lc "<script>"`` would run.

An agent's command is often a script handed to a shell.  To judge it, the
script is parsed with tree-sitter-bash (the grammar Codex uses) into the
commands it would run:

* :func:`plain_commands` accepts only *plain* scripts: commands of literal
  words joined by ``&&``, ``||``, ``;`` and ``|``.  Anything else (a
  redirection, a variable or command substitution, a subshell, a variable
  assignment, control flow, a background job, a heredoc, an unquoted word
  that bash would expand as braces, a glob or a tilde) makes it not plain,
  because what it runs or touches is no longer visible in its words.
* :func:`every_command` finds every command anywhere in a script, inside
  substitutions and subshells included, for the checks that must not miss
  one (a dangerous ``rm -rf`` inside ``$(...)``); words that are not literal
  are kept as written.
"""

from __future__ import annotations

import os
import re
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tree_sitter import Node, Parser

__all__ = ["ShellSyntaxError", "every_command", "plain_commands", "plain_shell_script",
           "shell_script"]

# The shells whose -c script corral reads.
_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
# The shells' long options that take the next word as their value.
_SHELL_VALUED = frozenset({"--rcfile", "--init-file"})
# The options of a shell that runs nothing but its script (see plain_shell_script).
_PLAIN_SHELL_OPTION = re.compile(r"-[celux]+|--login|--noprofile|--norc|--")
# Nodes a plain script may contain besides words.
_PLAIN_STRUCTURE = frozenset({"program", "list", "pipeline", "command", "command_name",
                              "&&", "||", ";", "|", "comment"})
_WORDS = frozenset({"word", "number", "raw_string", "string", "concatenation"})
# In an unquoted word (its escaped characters blanked out): what bash may
# expand as braces, a glob or a tilde.  Any brace or glob character counts,
# whether it expands or not; a tilde at the start, or after = or : (where
# bash expands it in a word that looks like an assignment).
_ESCAPED = re.compile(r"\\.", re.DOTALL)
_EXPANDS = re.compile(r"[{*?\[]|(^|[=:])~")

_parser_lock = threading.Lock()
_parser: Parser | None = None


class ShellSyntaxError(ValueError):
    """The script is not valid shell syntax (as tree-sitter-bash reads it)."""


def shell_script(argv: tuple[str, ...] | list[str]) -> str | None:
    """The script of ``SHELL [OPTIONS] SCRIPT [ARG0 ARGS...]`` where SHELL is
    bash, sh, zsh, dash or ksh (by name or path) and OPTIONS hold ``c``: any
    single-letter options in clusters (``-c``, ``-lc``, ``-ec``, ``+e``, the
    value of each ``o`` or ``O`` following), long ones (``--rcfile FILE``),
    then ``--`` or ``-`` perhaps; the script is the first word after them.
    None if ``argv`` is not such a call (a shell running a file or stdin)."""
    call = _shell_call(argv)
    return None if call is None else call[1]


def plain_shell_script(argv: tuple[str, ...] | list[str]) -> str | None:
    """The script of a :func:`shell_script` call whose options make the
    shell run nothing but that script, else None: the options are clusters
    of ``c``, ``e``, ``l``, ``u`` and ``x``, ``--login``, ``--noprofile``,
    ``--norc`` and ``--`` only (not ``-i`` with an rc file, nor ``-O``
    changing how the script parses).  What the script runs then stands for
    what ``argv`` runs (a login shell's profile aside)."""
    call = _shell_call(argv)
    if call is None or not all(_PLAIN_SHELL_OPTION.fullmatch(o) for o in call[0]):
        return None
    return call[1]


def _shell_call(argv: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], str] | None:
    """The option words (values included) and the script of a shell's
    ``-c`` call, as :func:`shell_script` reads it; None if it is not one."""
    if not argv or os.path.basename(argv[0]) not in _SHELLS:
        return None
    options: list[str] = []
    command = False
    i = 1
    while i < len(argv):
        word = argv[i]
        taken = 1
        if word in ("--", "-"):
            options.append(word)
            i += 1
            break
        if word in _SHELL_VALUED:
            taken = 2
        elif word.startswith("--"):
            pass  # another long option: a flag
        elif word[:1] in ("-", "+") and len(word) > 1:
            command |= word.startswith("-") and "c" in word
            taken += word.count("o") + word.count("O")  # each takes a value
        else:
            break  # the script, or the file a shell without -c runs
        options += argv[i:i + taken]
        i += taken
    if not command or i >= len(argv):
        return None
    return tuple(options), argv[i]


def plain_commands(script: str) -> list[tuple[str, ...]] | None:
    """The commands of a plain script, as argv tuples, in order; None if the
    script is anything more than literal words joined by ``&&``, ``||``,
    ``;`` and ``|`` (or is empty)."""
    source = script.encode()
    root = _parse(source)
    if root.has_error:
        return None
    commands: list[tuple[str, ...]] = []

    def visit(node: Node) -> bool:
        kind = node.type
        if kind == "command":
            words = []
            for child in node.children:
                target = child.children[0] if child.type == "command_name" else child
                word = _literal(target, source)
                if word is None:
                    return False
                words.append(word)
            commands.append(tuple(words))
            return True
        if kind not in _PLAIN_STRUCTURE:
            return False
        return all(visit(child) for child in node.children)

    if not visit(root) or not commands:
        return None
    return commands


def every_command(script: str) -> list[tuple[str, ...]]:
    """Every command in ``script``, wherever it is (in substitutions,
    subshells, conditions, loops); a word that is not literal is kept as
    written.  A script that does not parse yields what could be read of it."""
    found: list[tuple[str, ...]] = []
    source = script.encode()
    stack = [_parse(source)]
    while stack:
        node = stack.pop()
        if node.type == "command":
            words = []
            for child in node.children:
                target = child.children[0] if child.type == "command_name" else child
                if target.type in _WORDS or child.type == "command_name":
                    literal = _literal(target, source)
                    words.append(literal if literal is not None else _text(target, source))
            if words:
                found.append(tuple(words))
        stack.extend(reversed(node.children))
    return found


def _parse(source: bytes) -> Node:
    global _parser
    with _parser_lock:
        if _parser is None:
            import tree_sitter
            import tree_sitter_bash

            _parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
        return _parser.parse(source).root_node


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte:node.end_byte].decode(errors="replace")


def _literal(node: Node, source: bytes) -> str | None:
    """The value of a word that expands to itself alone, else None (a word
    with a brace expansion, a glob or a tilde too: its value depends on what
    bash finds, not on the script)."""
    kind = node.type
    text = _text(node, source)
    if kind in ("word", "number"):
        if any(c in text for c in "$`") or _EXPANDS.search(_ESCAPED.sub("_", text)):
            return None
        return _unescape(text)
    if kind == "raw_string":
        return text[1:-1]
    if kind == "string":
        parts = node.children[1:-1]
        if any(p.type != "string_content" for p in parts):
            return None
        return _unescape_double(text[1:-1])
    if kind == "concatenation":
        pieces = [_literal(child, source) for child in node.children]
        return None if None in pieces else "".join(p for p in pieces if p is not None)
    return None


def _unescape(word: str) -> str:
    out, chars = [], iter(word)
    for c in chars:
        out.append(next(chars, "") if c == "\\" else c)
    return "".join(out)


def _unescape_double(content: str) -> str:
    # Inside double quotes a backslash escapes only $ ` " \ and a newline.
    out, i = [], 0
    while i < len(content):
        c = content[i]
        if c == "\\" and i + 1 < len(content) and content[i + 1] in '$`"\\\n':
            if content[i + 1] != "\n":
                out.append(content[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)
