"""The decision for one command: allow, prompt or forbidden, and why.

``assess`` judges every command of a request (each command of a plain
``bash -lc`` script, see :func:`.shell.plain_shell_script`; a script that is
not plain is judged as one command):

1. rules that match decide, the strictest winning (see :mod:`.rules`);
2. otherwise, as in Codex: a known-safe command is allowed under every
   approval policy; ``untrusted`` prompts for anything else; the other
   policies allow it, to run in the sandbox;
3. a dangerous command (see :func:`.safety.danger`) prompts whatever rules
   or safety say, and is forbidden under ``never``, which cannot ask;
4. a request for extra permissions (network, another writable root, no
   sandbox) prompts (under ``never`` it is forbidden), unless rules of
   scope ``escalated`` allow every command of it (see :class:`.rules.Scope`):
   a rule of scope ``sandbox`` grants the policy's sandbox as it is.

The request's strictest decision is the decision; every step adds a reason.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence

from .._record import record
from .rules import Decision, RuleMatch, RuleSet, Scope
from .safety import danger, is_known_safe
from .shell import plain_commands, plain_shell_script

__all__ = ["ApprovalPolicy", "Assessment", "Permissions", "assess"]


class ApprovalPolicy(enum.Enum):
    """When the user is asked (Codex's ``AskForApproval``).

    ``untrusted``: only known-safe commands run without asking (and a
    sandbox denial asks to re-run without the sandbox).  ``on-failure``:
    everything runs sandboxed; a sandbox denial asks to re-run without it.
    ``on-request`` (the default): everything runs sandboxed; the user is
    asked only when the request asks for escalation or extra permissions;
    denials go back to the caller.  ``never``: nobody is asked; what would
    need asking is refused and denials go straight back to the caller.
    Dangerous commands ask under all but ``never``, which refuses them.
    """

    UNTRUSTED = "untrusted"
    ON_FAILURE = "on-failure"
    ON_REQUEST = "on-request"
    NEVER = "never"


@record
class Permissions:
    """What a request asks for beyond its sandbox: to run without it
    (``escalate``), or inside it with network or more writable roots; and
    why (``justification``, shown to the user)."""

    escalate: bool = False
    network: bool = False
    writable: tuple[str, ...] = ()
    justification: str | None = None

    @property
    def requested(self) -> bool:
        return self.escalate or self.network or bool(self.writable)

    def covers(self, other: Permissions) -> bool:
        """Whether granting these permissions grants ``other``'s too: running
        without the sandbox covers everything; inside it, network only if
        granted and each writable root only if granted (justifications aside)."""
        return self.escalate or (not other.escalate and (self.network or not other.network)
                                 and set(other.writable) <= set(self.writable))

    def describe(self) -> str:
        """What is asked, as in "asks to run without the sandbox"."""
        if self.escalate:
            return "to run without the sandbox"
        extra = (["network access"] if self.network else []) + [
            f"write access to {w}" for w in self.writable]
        return "for " + " and ".join(extra)


@record
class Assessment:
    """The decision for a request, the reasons for it, and the rules that matched.

    ``rules_scope``: where explicit rules allow every command to run (None:
    not every command is allowed by a rule): ``escalated`` when each command
    is allowed by a rule of that scope (the extra permissions the request
    asks for, an escalation included, need no prompt), else ``sandbox``
    (the request runs in the policy's sandbox as it is, and any extra
    permission prompts).
    """

    decision: Decision
    reasons: tuple[str, ...]
    matched: tuple[RuleMatch, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    rules_scope: Scope | None = None
    dangerous: str | None = None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision.value,
            "reasons": list(self.reasons),
            "matched_rules": [
                {"prefix": list(m.prefix), "decision": m.rule.decision.value,
                 "scope": m.rule.scope.value, "rule": m.rule.describe(),
                 "justification": m.rule.justification}
                for m in self.matched],
            "commands": [list(c) for c in self.commands],
            "dangerous": self.dangerous,
        }


def assess(argv: Sequence[str], policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST,
           rules: RuleSet | None = None, permissions: Permissions | None = None) -> Assessment:
    """Decides whether ``argv`` may run, must be asked about, or is refused."""
    rules = rules or RuleSet()
    permissions = permissions or Permissions()
    argv = tuple(argv)
    script = plain_shell_script(argv)
    commands = plain_commands(script) if script is not None else None
    judged = commands if commands is not None else [argv]
    verdicts: list[tuple[Decision, str]] = []  # each step's decision, and why
    matched: list[RuleMatch] = []
    scopes: list[Scope | None] = []  # where rules allow each command (None: they do not)
    for command in judged:
        found = rules.matches(command)
        shown = f"`{shlex.join(command)}`"
        if found:
            matched += found
            rule = max(found, key=lambda m: m.rule.decision.severity).rule
            if rule.decision is not Decision.ALLOW:
                scopes.append(None)
            elif any(m.rule.scope is Scope.ESCALATED for m in found):
                # Said explicitly; an allow rule for the sandbox that also
                # matches does not take it back.
                scopes.append(Scope.ESCALATED)
            else:
                scopes.append(Scope.SANDBOX)
            why = f" ({rule.justification})" if rule.justification else ""
            verdicts.append((rule.decision,
                             f"{shown}: {rule.decision.value} by rule {rule.describe()}{why}"))
        elif is_known_safe(command):
            scopes.append(None)
            verdicts.append((Decision.ALLOW, f"{shown}: known safe (only reads)"))
        elif policy is ApprovalPolicy.UNTRUSTED:
            scopes.append(None)
            verdicts.append((Decision.PROMPT, f"{shown}: not known to be safe, and approval "
                                              "policy untrusted asks"))
        else:
            scopes.append(None)
            verdicts.append((Decision.ALLOW, f"{shown}: runs in the sandbox"))
    never = policy is ApprovalPolicy.NEVER
    dangerous = danger(argv)
    if dangerous is not None:
        verdicts.append((Decision.FORBIDDEN, f"dangerous ({dangerous}), and approval policy "
                                             "never cannot ask") if never else
                        (Decision.PROMPT, f"dangerous ({dangerous}): always asks"))
    rules_scope: Scope | None = Scope.SANDBOX
    if not scopes or None in scopes:
        rules_scope = None
    elif all(scope is Scope.ESCALATED for scope in scopes):
        rules_scope = Scope.ESCALATED
    if permissions.requested:
        asked = f"asks {permissions.describe()}"
        # A rule "in the sandbox" grants the policy's sandbox, no network or
        # root more: the user who made it answered a question about that.
        if rules_scope is Scope.ESCALATED and dangerous is None:
            verdicts.append((Decision.ALLOW, f"{asked}: allowed by rules"))
        else:
            if rules_scope is Scope.SANDBOX:
                asked += " (rules allow it in the sandbox as it is only)"
            verdicts.append((Decision.FORBIDDEN, f"{asked}, and approval policy never cannot "
                                                 "ask") if never else (Decision.PROMPT, asked))
    decision = max((d for d, _ in verdicts), key=lambda d: d.severity)
    reasons = [reason for _, reason in verdicts]
    return Assessment(decision, tuple(reasons), tuple(matched), tuple(judged), rules_scope,
                      dangerous)
