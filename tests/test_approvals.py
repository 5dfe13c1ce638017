"""The approval flow: decisions per policy, the approver, a real sandbox
denial retried without the sandbox, and approvals scoped to their session."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corral
from corral.approvals import (Answer, ApprovalPolicy, ApprovalRequest, ApprovalSession,
                              Decision, Permissions, Question, Reply, assess, parse_rules)
from corral.sandbox.probe import probe_machine

_BWRAP = probe_machine().bwrap
sandboxed = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")

RULES = parse_rules('''
prefix_rule(pattern = ["make"], match = ["make test"])
prefix_rule(pattern = ["deploy"], scope = "escalated")
prefix_rule(pattern = ["git", "push"], decision = "prompt", justification = "talks to the remote")
prefix_rule(pattern = ["terraform", "apply"], decision = "forbidden",
            justification = "apply from CI only")
''', "team.rules")

DECISIONS = [
    # argv, approval policy, permissions, expected decision
    (["ls"], "untrusted", None, Decision.ALLOW),
    (["python3", "x.py"], "untrusted", None, Decision.PROMPT),
    (["python3", "x.py"], "on-request", None, Decision.ALLOW),
    (["python3", "x.py"], "on-failure", None, Decision.ALLOW),
    (["python3", "x.py"], "never", None, Decision.ALLOW),
    (["make", "test"], "untrusted", None, Decision.ALLOW),
    (["git", "push"], "never", None, Decision.PROMPT),  # the rule says so
    (["terraform", "apply"], "on-request", None, Decision.FORBIDDEN),
    (["bash", "-lc", "make && terraform apply -auto-approve"], "on-request", None,
     Decision.FORBIDDEN),
    (["rm", "-rf", "build"], "on-request", None, Decision.PROMPT),
    (["rm", "-rf", "build"], "never", None, Decision.FORBIDDEN),
    (["make", "clean"], "on-request", None, Decision.ALLOW),
    (["curl", "x"], "on-request", Permissions(network=True), Decision.PROMPT),
    (["curl", "x"], "never", Permissions(network=True), Decision.FORBIDDEN),
    # An allow rule grants the sandbox as it is: no network, no root more.
    (["make"], "on-request", Permissions(network=True), Decision.PROMPT),
    (["make"], "never", Permissions(writable=("/",)), Decision.FORBIDDEN),
    (["make"], "on-request", Permissions(escalate=True), Decision.PROMPT),  # in the sandbox only
    (["deploy"], "on-request", Permissions(escalate=True), Decision.ALLOW),  # also without it
    (["bash", "-lc", "deploy && make"], "on-request", Permissions(escalate=True), Decision.PROMPT),
    (["deploy"], "never", Permissions(escalate=True), Decision.ALLOW),
    (["make"], "never", Permissions(escalate=True), Decision.FORBIDDEN),
    (["ls"], "on-request", Permissions(escalate=True), Decision.PROMPT),
]


@pytest.mark.parametrize("argv,policy,permissions,expected", DECISIONS)
def test_decisions(argv, policy, permissions, expected) -> None:
    result = assess(argv, ApprovalPolicy(policy), RULES, permissions)
    assert result.decision is expected, result.reason
    assert result.reasons  # every decision says why


def test_a_rule_decision_names_its_rule_and_justification() -> None:
    result = assess(["terraform", "apply"], rules=RULES)
    assert "team.rules:5" in result.reason and "apply from CI only" in result.reason


class Recorder:
    """An approver that answers from a list (then denies) and keeps what it was asked."""

    def __init__(self, *answers: Answer | Reply) -> None:
        self.answers = list(answers)
        self.asked: list[ApprovalRequest] = []

    def __call__(self, request: ApprovalRequest) -> Answer | Reply:
        self.asked.append(request)
        return self.answers.pop(0) if self.answers else Answer.DENY


@pytest.fixture
def workspace(host_dir: Path) -> Path:
    (host_dir / "ws").mkdir()
    return host_dir / "ws"


def _write_outside(host_dir: Path) -> list[str]:
    return ["sh", "-c", f"echo written > {host_dir}/outside.txt"]


@sandboxed
def test_a_sandbox_denial_is_retried_without_the_sandbox_once_approved(host_dir, workspace):
    approver = Recorder(Answer.APPROVE_ONCE)
    session = ApprovalSession("on-failure", approver=approver)
    outcome = session.run(_write_outside(host_dir), cwd=workspace)
    assert outcome.ran and outcome.result is not None and outcome.result.exit_code == 0
    assert (host_dir / "outside.txt").read_text() == "written\n"
    [asked] = approver.asked
    assert asked.question is Question.RETRY_UNSANDBOXED
    assert [(d.kind, d.target) for d in asked.denials] == [
        (corral.DenialKind.WRITE, f"{host_dir}/outside.txt")]
    assert outcome.path[1].startswith("ran in the sandbox: exit ")
    assert "approved by the user once a re-run without it" in outcome.path[2]
    assert outcome.path[3] == "ran without the sandbox: exit 0"


@sandboxed
def test_a_declined_retry_keeps_the_sandboxed_result(host_dir, workspace):
    approver = Recorder(Reply(Answer.DENY, "write inside the workspace instead"))
    outcome = ApprovalSession("on-failure", approver=approver).run(_write_outside(host_dir),
                                                                   cwd=workspace)
    assert outcome.result is not None and outcome.result.exit_code != 0
    assert outcome.result.denials and not (host_dir / "outside.txt").exists()
    assert outcome.message == "write inside the workspace instead"
    assert "denied by the user: write inside the workspace instead" in outcome.path[-1]


@sandboxed
@pytest.mark.parametrize("policy", ["never", "on-request"])
def test_never_and_on_request_return_the_denial_without_asking(host_dir, workspace, policy):
    approver = Recorder()
    outcome = ApprovalSession(policy, approver=approver).run(_write_outside(host_dir),
                                                             cwd=workspace)
    assert approver.asked == [] and outcome.result is not None and outcome.result.denials
    assert f"approval policy {policy}: returned to the caller" in outcome.path[-1]
    assert not (host_dir / "outside.txt").exists()


@sandboxed
def test_an_escalation_runs_without_the_sandbox_only_once_approved(host_dir, workspace):
    asked_for = Permissions(escalate=True, justification="needs to write the shared cache")
    denied = ApprovalSession(approver=Recorder(Answer.DENY)).run(
        _write_outside(host_dir), cwd=workspace, permissions=asked_for)
    assert not denied.ran and denied.decision is Decision.PROMPT
    assert not (host_dir / "outside.txt").exists()
    approver = Recorder(Answer.APPROVE_ONCE)
    approved = ApprovalSession(approver=approver).run(
        _write_outside(host_dir), cwd=workspace, permissions=asked_for)
    assert approved.result is not None and approved.result.exit_code == 0
    assert (host_dir / "outside.txt").exists()
    assert approver.asked[0].justification == "needs to write the shared cache"
    assert approved.path[-1] == "ran without the sandbox: exit 0"


@sandboxed
def test_approved_network_is_granted_inside_the_sandbox(workspace, tcp_listener):
    host, port = tcp_listener
    code = (f"import socket; print(socket.create_connection(({host!r}, {port}), 2)"
            ".recv(100).decode().strip())")
    approver = Recorder(Answer.APPROVE_ONCE)
    outcome = ApprovalSession(approver=approver).run(
        [sys.executable, "-c", code], cwd=workspace, permissions=Permissions(network=True))
    assert outcome.result is not None and outcome.result.stdout == "hello from the host\n"
    assert outcome.result.sandbox is not None  # still sandboxed, with network
    without = ApprovalSession(approver=Recorder(Answer.DENY)).run(
        [sys.executable, "-c", code], cwd=workspace)
    assert without.result is not None and without.result.exit_code != 0


def test_forbidden_commands_never_run_nor_ask(host_dir):
    approver = Recorder()
    session = ApprovalSession(rules=RULES, approver=approver, policy="full-access")
    outcome = session.run(["terraform", "apply"], cwd=host_dir)
    assert not outcome.ran and outcome.decision is Decision.FORBIDDEN and approver.asked == []
    assert "apply from CI only" in (outcome.message or "")


def test_without_an_approver_what_needs_asking_is_refused(host_dir):
    outcome = ApprovalSession("untrusted", policy="full-access").run(
        ["touch", "made"], cwd=host_dir)
    assert not outcome.ran and not (host_dir / "made").exists()
    assert "nobody can be asked" in (outcome.message or "")


def test_session_approvals_do_not_leak_to_another_session(host_dir):
    first_approver = Recorder(Answer.APPROVE_SESSION)
    first = ApprovalSession("untrusted", approver=first_approver, policy="full-access")
    for _ in range(2):
        assert first.run(["touch", "a"], cwd=host_dir).ran
    assert len(first_approver.asked) == 1  # the second run was approved by the session
    assert "approved earlier in this session" in first.run(["touch", "a"], cwd=host_dir).path[1]
    assert not first.run(["touch", "b"], cwd=host_dir).ran  # another command asks again
    assert len(first_approver.asked) == 2
    other_approver = Recorder(Answer.DENY)
    other = ApprovalSession("untrusted", approver=other_approver, policy="full-access")
    assert not other.run(["touch", "a"], cwd=host_dir).ran
    assert len(other_approver.asked) == 1


def test_always_allow_saves_a_prefix_rule(host_dir, tmp_path):
    rules_file = tmp_path / "default.rules"
    approver = Recorder(Answer.APPROVE_PREFIX)
    session = ApprovalSession("untrusted", approver=approver, policy="full-access",
                              rules_file=str(rules_file))
    assert session.run(["touch", "x"], cwd=host_dir).ran
    assert approver.asked[0].prefix == ("touch", "x")
    assert session.run(["touch", "x", "y"], cwd=host_dir).ran  # the saved rule allows it
    assert len(approver.asked) == 1
    assert 'prefix_rule(pattern = ["touch", "x"], decision = "allow")' in rules_file.read_text()
    fresh = ApprovalSession("untrusted", rules=corral.load_rules([str(rules_file)]))
    assert fresh.assess(["touch", "x", "z"]).decision is Decision.ALLOW


def test_dangerous_commands_ask_even_when_rules_allow(host_dir):
    rules = parse_rules('prefix_rule(pattern = ["rm"])')
    approver = Recorder(Answer.DENY)
    session = ApprovalSession(rules=rules, approver=approver, policy="full-access")
    (host_dir / "keep").mkdir()
    assert not session.run(["rm", "-rf", "keep"], cwd=host_dir).ran
    assert (host_dir / "keep").is_dir() and "rm -rf" in approver.asked[0].reason


def test_waiting_for_an_answer_does_not_count_against_the_timeout(host_dir):
    def slow(request: ApprovalRequest) -> Answer:
        time.sleep(1.5)
        return Answer.APPROVE_ONCE

    outcome = ApprovalSession("untrusted", approver=slow, policy="full-access").run(
        ["sh", "-c", "sleep 0.2"], cwd=host_dir, timeout=1)
    assert outcome.result is not None and not outcome.result.timed_out
    assert outcome.result.exit_code == 0


def test_async_approvers_and_run_async(host_dir):
    async def approver(request: ApprovalRequest) -> Reply:
        await asyncio.sleep(0.01)
        return Reply(Answer.APPROVE_ONCE)

    session = ApprovalSession("untrusted", approver=approver, policy="full-access")
    sync_outcome = session.run(["touch", "sync"], cwd=host_dir)
    async_outcome = asyncio.run(session.run_async(["touch", "async"], cwd=host_dir))
    assert sync_outcome.ran and async_outcome.ran
    assert (host_dir / "sync").exists() and (host_dir / "async").exists()


def _corral(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "corral", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_policy_check_on_the_command_line(host_dir, tmp_path):
    rules = tmp_path / "team.rules"
    rules.write_text('prefix_rule(pattern = ["git", "push"], decision = "forbidden", '
                     'justification = "open a pull request")\n')
    allowed = _corral("policy", "check", "--", "ls", "-la", cwd=host_dir, home=tmp_path)
    assert allowed.returncode == 0 and allowed.stdout.startswith("allow: ls -la")
    asked = _corral("policy", "check", "--approval", "untrusted", "--", "make",
                    cwd=host_dir, home=tmp_path)
    assert asked.returncode == 1 and "approval policy untrusted asks" in asked.stdout
    refused = _corral("policy", "check", "--rules", str(rules), "--json", "--",
                      "bash", "-lc", "ls && git push origin main", cwd=host_dir, home=tmp_path)
    assert refused.returncode == 2
    report = json.loads(refused.stdout)
    assert report["decision"] == "forbidden"
    assert report["matched_rules"][0]["justification"] == "open a pull request"
    assert report["commands"] == [["ls"], ["git", "push", "origin", "main"]]
    # Rules in ~/.config/corral/rules are read too.
    (tmp_path / ".config" / "corral" / "rules").mkdir(parents=True)
    (tmp_path / ".config" / "corral" / "rules" / "mine.rules").write_text(
        'prefix_rule(pattern = ["make"], decision = "prompt")\n')
    assert _corral("policy", "check", "--", "make", cwd=host_dir, home=tmp_path).returncode == 1
    bad = tmp_path / "bad.rules"
    bad.write_text('\nprefix_rule(pattern = ["a"], match = ["b"])\n')
    broken = _corral("policy", "check", "--rules", str(bad), "--", "ls", cwd=host_dir,
                     home=tmp_path)
    assert broken.returncode == 125 and f"{bad}:2: match example 'b'" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_run_refuses_what_needs_approval_without_ask(host_dir, tmp_path):
    (host_dir / "keep").mkdir()
    proc = _corral("run", "--approval", "never", "--policy", "full-access", "--",
                   "rm", "-rf", "keep", cwd=host_dir, home=tmp_path)
    assert proc.returncode == 125 and (host_dir / "keep").is_dir()
    assert "forbidden" in proc.stderr and "approval policy never" in proc.stderr


def _ask_on_a_terminal(args: list[str], answer: bytes, cwd: Path, home: Path) -> tuple[int, str]:
    """Runs ``corral run --ask ...`` on a pseudo-terminal, answers its
    question with ``answer``, and returns its exit code and everything it wrote."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(cwd)
        os.environ["HOME"] = str(home)
        os.execv(sys.executable, [sys.executable, "-m", "corral", "run", "--ask", *args])
    seen = b""
    answered = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break  # the child is gone
            if not chunk:
                break
            seen += chunk
        if not answered and b"[n] no:" in seen:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_run_ask_prompts_on_the_terminal(host_dir, tmp_path):
    code, seen = _ask_on_a_terminal(["--approval", "untrusted", "--policy", "full-access", "--",
                                     "touch", "made"], b"y\n", host_dir, tmp_path)
    assert code == 0 and (host_dir / "made").exists(), seen
    assert "run it? [y] once, [s] this session, [a] always `touch made`" in seen
    assert "approved by the user once" in seen
    code, seen = _ask_on_a_terminal(["--approval", "untrusted", "--policy", "full-access", "--",
                                     "touch", "refused"], b"n\n", host_dir, tmp_path)
    assert code == 125 and not (host_dir / "refused").exists(), seen
    assert "denied by the user" in seen


def test_authorize_decides_without_running(host_dir):
    """For a process the caller starts itself (a long-running session)."""
    approver = Recorder(Answer.APPROVE_ONCE)
    session = ApprovalSession(rules=RULES, approver=approver)
    refused = session.authorize(["terraform", "apply"], cwd=host_dir)
    assert refused.policy is None and refused.decision is Decision.FORBIDDEN
    granted = session.authorize(["touch", "x"], cwd=host_dir,
                                permissions=Permissions(escalate=True))
    assert granted.policy is not None and not granted.policy.sandboxed
    assert granted.path[-1] == "approved by the user once"
    assert not (host_dir / "x").exists()  # nothing ran
    sandboxed = session.authorize(["make"], cwd=host_dir, permissions=Permissions(network=True))
    assert sandboxed.policy is None  # the rule allows the sandbox as it is: asked, and denied
    assert "rules allow it in the sandbox as it is only" in approver.asked[-1].reason


def test_always_without_a_rules_file_covers_the_prefix_for_the_session(host_dir):
    approver = Recorder(Answer.APPROVE_PREFIX)
    session = ApprovalSession("untrusted", approver=approver, policy="full-access")
    first = session.run(["touch", "x"], cwd=host_dir)
    assert "for this session: no rules file to save it to" in first.path[1]
    assert session.run(["touch", "x", "y"], cwd=host_dir).ran  # the prefix, not just the argv
    assert len(approver.asked) == 1


def test_a_session_approval_covers_only_what_was_asked(host_dir):
    """Approved for the session with network, in one directory: the same
    command asks again for more (escalation, another root) or elsewhere."""
    approver = Recorder(Answer.APPROVE_SESSION)  # then denies
    session = ApprovalSession(approver=approver)
    network = Permissions(network=True)
    roots = Permissions(network=True, writable=(str(host_dir / "a"),))
    argv = ["python3", "fetch.py"]
    assert session.authorize(argv, cwd=host_dir, permissions=network).policy is not None
    escalated = session.authorize(argv, cwd=host_dir, permissions=Permissions(escalate=True))
    assert escalated.policy is None and len(approver.asked) == 2  # asked, and denied
    assert session.authorize(argv, cwd=host_dir.parent, permissions=network).policy is None
    assert len(approver.asked) == 3  # another directory asks again
    assert session.authorize(argv, cwd=host_dir, permissions=roots).policy is None
    assert len(approver.asked) == 4  # another writable root asks again
    again = session.authorize(argv, cwd=host_dir, permissions=network)
    assert again.policy is not None and again.policy.network and again.policy.sandboxed
    assert again.path[-1] == "approved earlier in this session" and len(approver.asked) == 4


def test_always_allowing_a_sandboxed_run_does_not_allow_escalation(host_dir, tmp_path):
    """"Always" answered about a run in the sandbox adds a rule for the
    sandbox only; answered about a run without it, one that covers that too."""
    rules_file = tmp_path / "default.rules"
    approver = Recorder(Answer.APPROVE_PREFIX, Answer.DENY, Answer.APPROVE_PREFIX)
    session = ApprovalSession("untrusted", approver=approver, rules_file=str(rules_file))
    assert session.authorize(["python3", "-c", "print(1)"], cwd=host_dir).policy is not None
    assert rules_file.read_text() == 'prefix_rule(pattern = ["python3"], decision = "allow")\n'
    writes = ["python3", "-c", "open('/root/x', 'w').write('x')"]
    escalated = Permissions(escalate=True)
    refused = session.authorize(writes, cwd=host_dir, permissions=escalated)
    assert refused.policy is None and len(approver.asked) == 2  # asked, and denied
    assert "rules allow it in the sandbox as it is only" in approver.asked[1].reason
    fresh = ApprovalSession("untrusted", rules=corral.load_rules([str(rules_file)]))
    assert fresh.assess(writes, escalated).decision is Decision.PROMPT
    assert fresh.assess(writes).decision is Decision.ALLOW
    granted = session.authorize(writes, cwd=host_dir, permissions=escalated)
    assert granted.policy is not None and not granted.policy.sandboxed
    assert "always, without the sandbox too" in granted.path[-1]
    assert rules_file.read_text().endswith(
        'prefix_rule(pattern = ["python3"], decision = "allow", scope = "escalated")\n')
    fresh = ApprovalSession("untrusted", rules=corral.load_rules([str(rules_file)]))
    assert fresh.assess(writes, escalated).decision is Decision.ALLOW


@pytest.mark.parametrize("command", [
    ["env", "sh", "-c", "rm -rf ~"], ["bash", "-ec", "rm -rf ~"], ["bash", "-c", "rm -rf ~", "x"],
    ["bash", "-lc", "eval rm -rf x"], ["bash", "-lc", "builtin rm -rf x"]])
def test_policy_check_refuses_dangerous_commands_in_any_shell_form(host_dir, tmp_path, command):
    refused = _corral("policy", "check", "--approval", "never", "--", *command,
                      cwd=host_dir, home=tmp_path)
    assert refused.returncode == 2, refused.stdout
    assert "dangerous (rm -rf), and approval policy never cannot ask" in refused.stdout
