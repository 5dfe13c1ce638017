"""Prefix rules files: Codex's format, checked examples, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.approvals import (Decision, RulesError, Scope, append_prefix_rule, load_rules,
                              parse_rules)

CODEX_RULES = '''
# Brought along from ~/.codex/rules/default.rules
prefix_rule(
    pattern = ["git", ["push", "fetch"]],
    decision = "prompt",
    justification = "talks to the remote",
    match = [["git", "push"], "git fetch origin"],
    not_match = [["git", "status"], "git pull"],
)
prefix_rule(pattern = ["npm", "test"], match = ["npm test -- --watch"])
prefix_rule(
    pattern = ["git", "push", "--force"],
    decision = "forbidden",
    justification = "Use `git push --force-with-lease` after review instead.",
)
host_executable(name = "git", paths = ["/usr/bin/git", "~/bin/git"])
'''


def test_codex_rules_load_and_match() -> None:
    rules = parse_rules(CODEX_RULES, "default.rules")
    assert len(rules) == 3
    assert rules.decision(["git", "fetch"]) is Decision.PROMPT
    assert rules.decision(["npm", "test", "--", "-k", "x"]) is Decision.ALLOW
    assert rules.decision(["npm", "install"]) is None
    assert rules.decision(["git", "status"]) is None
    # The strictest of all matching rules wins.
    assert rules.decision(["git", "push", "--force", "origin"]) is Decision.FORBIDDEN
    assert [m.prefix for m in rules.matches(["git", "push", "--force"])] == [
        ("git", "push"), ("git", "push", "--force")]


def test_absolute_programs_match_only_listed_host_executables() -> None:
    rules = parse_rules(CODEX_RULES, "default.rules")
    assert rules.decision(["/usr/bin/git", "push"]) is Decision.PROMPT
    assert rules.decision(["/tmp/evil/git", "push"]) is None
    assert rules.decision(["/usr/bin/npm", "test"]) is Decision.ALLOW  # npm is not pinned


BAD = {
    "an example that fails": ('prefix_rule(pattern = ["a"], match = ["b"])',
                              "f.rules:1: match example 'b' does not match"),
    "a not_match that matches": ('\n\nprefix_rule(pattern = ["a"], not_match = ["a x"])',
                                 "f.rules:3: not_match example 'a x' matches"),
    "syntax": ('prefix_rule(pattern = ["a"]', "f.rules:1: not valid rules syntax"),
    "code": ("import os", "f.rules:1: only prefix_rule(...) and host_executable(...) calls"),
    "an expression to evaluate": ('prefix_rule(pattern = [__import__("os").getcwd()])',
                                  "f.rules:1: pattern must be a literal"),
    "positional": ('prefix_rule(["a"])', "f.rules:1: prefix_rule() takes keyword arguments"),
    "unknown argument": ('prefix_rule(pattern = ["a"], decison = "allow")',
                         "f.rules:1: prefix_rule() has no argument 'decison'"),
    "unknown decision": ('prefix_rule(pattern = ["a"], decision = "maybe")',
                         "f.rules:1: decision must be allow, prompt or forbidden"),
    "empty pattern": ("prefix_rule(pattern = [])", "f.rules:1: pattern must be a non-empty"),
    "empty alternatives": ('prefix_rule(pattern = ["a", []])', "f.rules:1: each pattern entry"),
    "unknown call": ('allow(pattern = ["a"])', "f.rules:1: unknown call allow()"),
    "relative host executable": ('host_executable(name = "git", paths = ["bin/git"])',
                                 "f.rules:1: host_executable paths must be absolute"),
    "bad examples": ('prefix_rule(pattern = ["a"], match = [1])',
                     "f.rules:1: match must be a list of examples"),
    "unknown scope": ('prefix_rule(pattern = ["a"], scope = "host")',
                      "f.rules:1: scope must be sandbox or escalated, not 'host'"),
    "an escalated prompt": (
        'prefix_rule(pattern = ["a"], decision = "prompt", scope = "escalated")',
        'f.rules:1: scope = "escalated" goes with decision = "allow" only'),
}


@pytest.mark.parametrize("text,message", BAD.values(), ids=BAD.keys())
def test_a_malformed_rules_file_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, "f.rules")
    assert str(info.value).startswith(message), str(info.value)


def test_files_are_read_in_order_and_errors_name_them(tmp_path: Path) -> None:
    first, second = tmp_path / "a.rules", tmp_path / "b.rules"
    first.write_text('prefix_rule(pattern = ["make"], decision = "prompt")\n')
    second.write_text('prefix_rule(pattern = ["make", "test"])\n')
    rules = load_rules([str(first), str(second)])
    assert rules.decision(["make", "test"]) is Decision.PROMPT
    with pytest.raises(RulesError, match=f"{tmp_path}/missing.rules: cannot read"):
        load_rules([str(tmp_path / "missing.rules")])
    (tmp_path / "bin.rules").write_bytes(b"\xff\xfe")
    with pytest.raises(RulesError, match="not UTF-8"):
        load_rules([str(tmp_path / "bin.rules")])


def test_always_allow_appends_a_rule_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "rules" / "default.rules"
    append_prefix_rule(str(path), ("npm", "run"), 'the user said "always"')
    append_prefix_rule(str(path), ("make",))
    rules = load_rules([str(path)])
    assert rules.decision(["npm", "run", "build"]) is Decision.ALLOW
    assert rules.decision(["make", "all"]) is Decision.ALLOW
    assert [r.line for r in rules.rules] == [1, 2]
    with pytest.raises(RulesError, match="empty prefix"):
        append_prefix_rule(str(path), ())


def test_an_allow_rule_is_for_the_sandbox_unless_it_says_escalated(tmp_path: Path) -> None:
    rules = parse_rules(CODEX_RULES + 'prefix_rule(pattern = ["deploy"], scope = "escalated")\n',
                        "default.rules")
    assert [r.scope for r in rules.rules] == [Scope.SANDBOX] * 3 + [Scope.ESCALATED]
    assert rules.rules[3].describe() == (
        "deploy -> allow, also without the sandbox (default.rules:17)")
    path = tmp_path / "default.rules"
    append_prefix_rule(str(path), ("make",))
    append_prefix_rule(str(path), ("deploy",), scope=Scope.ESCALATED)
    assert [r.scope for r in load_rules([str(path)]).rules] == [Scope.SANDBOX, Scope.ESCALATED]
