"""Rules files: prefix rules that allow, prompt for or forbid commands.

The format is Codex's ``.rules`` files, so users bring theirs along: Starlark
calls of ``prefix_rule(...)`` (and ``host_executable(...)``), read here with
:mod:`ast` (never evaluated)::

    prefix_rule(
        pattern = ["git", ["push", "fetch"]],   # tokens in order; a list = alternatives
        decision = "prompt",                    # allow | prompt | forbidden (default allow)
        justification = "talks to the remote",
        scope = "sandbox",                      # allow rules: sandbox | escalated (default sandbox)
        match = [["git", "push"], "git fetch origin"],   # examples checked at load
        not_match = ["git status"],
    )
    host_executable(name = "git", paths = ["/usr/bin/git"])

A rule matches a command whose first words are its pattern.  A command
given by absolute path (``/usr/bin/git``) matches rules for its basename
unless ``host_executable`` lists the paths that may, and this is not one.
Of all the rules that match, the strictest decision wins (forbidden, then
prompt, then allow).  An ``allow`` rule's ``scope`` (corral's addition to the
format) says where it lets a command run: ``sandbox`` (the default, and all a
Codex rules file gives) in the policy's sandbox as it is (a request for
network or another writable root asks); ``escalated`` also with them, and
without the sandbox, when the request asks to escalate.  ``match`` and ``not_match`` examples are checked when
the file is loaded: a rule whose examples fail is an error naming the file
and the line.
"""

from __future__ import annotations

import ast
import enum
import os
import shlex

from .._errors import CorralError
from .._record import record

__all__ = ["Decision", "Rule", "RuleMatch", "RuleSet", "RulesError", "Scope",
           "append_prefix_rule", "load_rules", "parse_rules"]


class Decision(enum.Enum):
    """What happens to a command: it runs, the user is asked, or it is refused."""

    ALLOW = "allow"
    PROMPT = "prompt"
    FORBIDDEN = "forbidden"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Decision.ALLOW: 0, Decision.PROMPT: 1, Decision.FORBIDDEN: 2}


class Scope(enum.Enum):
    """Where an ``allow`` rule lets a command run: in the policy's sandbox as
    it is, or with whatever a request asks for (``escalated``: network,
    writable roots, and no sandbox at all, are allowed without asking)."""

    SANDBOX = "sandbox"
    ESCALATED = "escalated"


class RulesError(CorralError, ValueError):
    """A rules file that cannot be used; the message names the file and line."""


@record
class Rule:
    """One ``prefix_rule``: ``pattern`` holds the alternatives for each word;
    ``scope`` is where an ``allow`` lets the command run (always ``sandbox``
    for the other decisions)."""

    pattern: tuple[tuple[str, ...], ...]
    decision: Decision
    justification: str | None = None
    source: str = "<rules>"
    line: int = 0
    scope: Scope = Scope.SANDBOX

    def prefix_of(self, argv: tuple[str, ...], executables: dict[str, tuple[str, ...]]
                  ) -> tuple[str, ...] | None:
        """The words of ``argv`` this rule matches, or None."""
        if len(argv) < len(self.pattern):
            return None
        first = argv[0]
        if first not in self.pattern[0]:
            name = os.path.basename(first)
            if not (first.startswith("/") and name in self.pattern[0]):
                return None
            allowed = executables.get(name)
            if allowed is not None and first not in allowed:
                return None
        for word, choices in zip(argv[1:], self.pattern[1:]):
            if word not in choices:
                return None
        return argv[:len(self.pattern)]

    def describe(self) -> str:
        words = " ".join(c[0] if len(c) == 1 else "[" + "|".join(c) + "]" for c in self.pattern)
        escalated = ", also without the sandbox" if self.scope is Scope.ESCALATED else ""
        return f"{words} -> {self.decision.value}{escalated} ({self.source}:{self.line})"


@record
class RuleMatch:
    """A rule that matched, and the words it matched."""

    rule: Rule
    prefix: tuple[str, ...]


class RuleSet:
    """Rules from any number of files, evaluated together."""

    def __init__(self, rules: tuple[Rule, ...] = (),
                 executables: dict[str, tuple[str, ...]] | None = None) -> None:
        self.rules = rules
        self.executables = dict(executables or {})

    def __len__(self) -> int:
        return len(self.rules)

    def __add__(self, other: RuleSet) -> RuleSet:
        executables = dict(self.executables)
        for name, paths in other.executables.items():
            executables[name] = executables.get(name, ()) + paths
        return RuleSet(self.rules + other.rules, executables)

    def matches(self, argv: tuple[str, ...] | list[str]) -> list[RuleMatch]:
        """Every rule that matches ``argv``, in file order."""
        argv = tuple(argv)
        found = []
        for rule in self.rules:
            prefix = rule.prefix_of(argv, self.executables)
            if prefix is not None:
                found.append(RuleMatch(rule, prefix))
        return found

    def decision(self, argv: tuple[str, ...] | list[str]) -> Decision | None:
        """The strictest decision of the rules matching ``argv`` (None: no rule matches)."""
        found = self.matches(argv)
        return max((m.rule.decision for m in found), key=lambda d: d.severity, default=None)


def load_rules(paths: list[str] | tuple[str, ...]) -> RuleSet:
    """The rules of ``paths``, in order.  Raises :class:`RulesError`."""
    rules = RuleSet()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise RulesError(f"{path}: cannot read the rules file: {reason}") from None
        rules = rules + parse_rules(text, path)
    return rules


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parses the text of a rules file.  Raises :class:`RulesError`."""
    try:
        module = ast.parse(text, filename=source)
    except SyntaxError as exc:
        raise RulesError(f"{source}:{exc.lineno or 0}: not valid rules syntax: {exc.msg}") from None
    rules: list[tuple[Rule, list[str | list[str]], list[str | list[str]]]] = []
    executables: dict[str, tuple[str, ...]] = {}
    for statement in module.body:
        where = _Where(source, statement.lineno)
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
                and isinstance(statement.value.func, ast.Name)):
            raise where.error("only prefix_rule(...) and host_executable(...) calls are allowed")
        call = statement.value
        name = call.func.id  # type: ignore[attr-defined]
        if call.args:
            raise where.error(f"{name}() takes keyword arguments only (pattern = [...], ...)")
        arguments: dict[str, object] = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise where.error(f"{name}() does not take **arguments")
            try:
                arguments[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                raise where.error(f"{keyword.arg} must be a literal (strings and lists)") from None
        if name == "prefix_rule":
            rules.append(_prefix_rule(arguments, where))
        elif name == "host_executable":
            executable, paths = _host_executable(arguments, where)
            executables[executable] = executables.get(executable, ()) + paths
        else:
            raise where.error(f"unknown call {name}(): expected prefix_rule or host_executable")
    ruleset = RuleSet(tuple(rule for rule, _, _ in rules), executables)
    for rule, match, not_match in rules:
        _check_examples(rule, match, not_match, ruleset)
    return ruleset


@record
class _Where:
    source: str
    line: int

    def error(self, message: str) -> RulesError:
        return RulesError(f"{self.source}:{self.line}: {message}")


def _prefix_rule(arguments: dict[str, object], where: _Where
                 ) -> tuple[Rule, list[str | list[str]], list[str | list[str]]]:
    known = {"pattern", "decision", "justification", "match", "not_match", "scope"}
    unknown = set(arguments) - known
    if unknown:
        raise where.error(f"prefix_rule() has no argument {sorted(unknown)[0]!r} "
                          f"(expected {', '.join(sorted(known))})")
    pattern = arguments.get("pattern")
    if not isinstance(pattern, list) or not pattern:
        raise where.error("pattern must be a non-empty list of words")
    tokens = []
    for token in pattern:
        choices = token if isinstance(token, list) else [token]
        if not choices or not all(isinstance(c, str) and c for c in choices):
            raise where.error("each pattern entry must be a word or a non-empty list of words")
        tokens.append(tuple(choices))
    decision_text = arguments.get("decision", "allow")
    try:
        decision = Decision(decision_text)
    except ValueError:
        raise where.error(
            f"decision must be allow, prompt or forbidden, not {decision_text!r}") from None
    justification = arguments.get("justification")
    if justification is not None and not isinstance(justification, str):
        raise where.error("justification must be a string")
    scope_text = arguments.get("scope", Scope.SANDBOX.value)
    try:
        scope = Scope(scope_text)
    except ValueError:
        raise where.error(f"scope must be sandbox or escalated, not {scope_text!r}") from None
    if scope is Scope.ESCALATED and decision is not Decision.ALLOW:
        raise where.error(f"scope = \"escalated\" goes with decision = \"allow\" only, "
                          f"not {decision.value!r}")
    examples: dict[str, list[str | list[str]]] = {}
    for key in ("match", "not_match"):
        given = arguments.get(key, [])
        if not isinstance(given, list):
            given = [None]
        examples[key] = []
        for example in given:
            if isinstance(example, list) and all(isinstance(w, str) for w in example):
                examples[key].append([str(w) for w in example])
            elif isinstance(example, str):
                examples[key].append(example)
            else:
                raise where.error(f"{key} must be a list of examples (strings or lists of words)")
    rule = Rule(tuple(tokens), decision, justification, where.source, where.line, scope)
    return rule, examples["match"], examples["not_match"]


def _check_examples(rule: Rule, match: list[str | list[str]], not_match: list[str | list[str]],
                    ruleset: RuleSet) -> None:
    where = _Where(rule.source, rule.line)
    for expected, group in ((True, match), (False, not_match)):
        for example in group:
            try:
                argv = tuple(shlex.split(example) if isinstance(example, str) else example)
            except ValueError as exc:
                raise where.error(f"example {example!r} does not parse: {exc}") from None
            if (rule.prefix_of(argv, ruleset.executables) is not None) != expected:
                word = "match" if expected else "not_match"
                shown = [list(c) if len(c) > 1 else c[0] for c in rule.pattern]
                raise where.error(
                    f"{word} example {shlex.join(argv)!r} "
                    f"{'does not match' if expected else 'matches'} the pattern {shown!r}")


def _host_executable(arguments: dict[str, object], where: _Where) -> tuple[str, tuple[str, ...]]:
    name, paths = arguments.get("name"), arguments.get("paths")
    if set(arguments) - {"name", "paths"}:
        raise where.error("host_executable() takes name and paths")
    if not isinstance(name, str) or not name or "/" in name:
        raise where.error("host_executable name must be a program name without /")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise where.error("host_executable paths must be a list of absolute paths")
    resolved = tuple(os.path.expanduser(p) for p in paths)
    if not all(os.path.isabs(p) for p in resolved):
        raise where.error("host_executable paths must be absolute (or start with ~/)")
    return name, resolved


def append_prefix_rule(path: str, prefix: tuple[str, ...], justification: str | None = None,
                       scope: Scope = Scope.SANDBOX) -> Rule:
    """Appends an ``allow`` rule for ``prefix`` in ``scope`` to the rules file
    at ``path`` (created if missing), as an "always allow this prefix"
    approval does.  The ``scope`` argument is written only when it is
    ``escalated``, so that the file stays a Codex rules file otherwise."""
    if not prefix:
        raise RulesError(f"{path}: an empty prefix would allow every command")
    words = ", ".join(_starlark_string(w) for w in prefix)
    text = f"prefix_rule(pattern = [{words}], decision = \"allow\""
    if justification:
        text += f", justification = {_starlark_string(justification)}"
    if scope is Scope.ESCALATED:
        text += f", scope = {_starlark_string(scope.value)}"
    text += ")\n"
    try:
        with open(path, encoding="utf-8") as f:
            existing = f.read()
    except FileNotFoundError:
        existing = ""
    parse_rules(existing + ("" if not existing or existing.endswith("\n") else "\n") + text, path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        if existing and not existing.endswith("\n"):
            f.write("\n")
        f.write(text)
    return Rule(tuple((w,) for w in prefix), Decision.ALLOW, justification, path,
                existing.count("\n") + (1 if existing and not existing.endswith("\n") else 0) + 1,
                scope)


def _starlark_string(value: str) -> str:
    # JSON string syntax is valid in Starlark and in Python.
    import json

    return json.dumps(value, ensure_ascii=False)
