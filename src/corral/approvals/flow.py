"""Approval, then a sandboxed attempt, then (if the sandbox refused and the
user agrees) an attempt without it: the flow of Codex's tool orchestrator.

:class:`ApprovalSession` holds what one agent session decided: the approval
policy, the rules, the approver, and what the user approved "for the
session" (never shared with another session).  :meth:`ApprovalSession.run`:

1. assesses the request (:func:`.decide.assess`): forbidden requests do not
   run; a prompt asks the approver, unless this session already approved
   the same question about the same argv in the same directory for the
   session, with permissions that cover the ones asked for now (see
   :meth:`.Permissions.covers`);
2. runs it: in the sandbox, with the network or writable roots the request
   asked for once they are approved; without the sandbox only for an
   approved escalation;
3. if the sandbox refused something (``result.denials``) and the policy asks
   about denials (``on-failure``, ``untrusted``), asks "retry without the
   sandbox?" and, if approved, runs it again with full access.  Under
   ``on-request`` and ``never`` the denial goes back to the caller (whose
   model may ask again, for escalation, with a justification).

The approver is any callable taking an :class:`ApprovalRequest` and
returning a :class:`Reply` (or an :class:`Answer`), or an awaitable of one.
Each attempt's timeout starts when it starts: waiting for an answer costs
the command none of its time.  The outcome records the decision path.
"""

from __future__ import annotations

import enum
import inspect
import os
import shlex
import threading

from .._policy import PolicyKind, SandboxPolicy, resolve_policy
from .._record import record, replace
from .._result import Denial, ExecResult
from .decide import ApprovalPolicy, Assessment, Permissions, assess
from .rules import Decision, Rule, RuleSet, Scope, append_prefix_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Any, TypeVar

    from .._cancel import CancelToken

    T = TypeVar("T")
    # How the flow gets an approver's reply: sync, or bridged to an event loop.
    _Answering = Callable[[Callable[["ApprovalRequest"], Any], "ApprovalRequest"], "Reply"]

__all__ = ["Answer", "ApprovalRequest", "ApprovalSession", "ApprovedRun", "Authorization",
           "Question", "Reply"]


class Question(enum.Enum):
    """What the approver is asked."""

    RUN = "run"  # may this command run (with the permissions it asks for)?
    RETRY_UNSANDBOXED = "retry-unsandboxed"  # the sandbox refused it: run it without?


class Answer(enum.Enum):
    APPROVE_ONCE = "approve-once"
    # The same command in the same directory with the same or lesser
    # permissions, for the rest of this session.
    APPROVE_SESSION = "approve-session"
    # Commands starting with the request's prefix, always; without the
    # sandbox too only if that is what was asked (see ApprovalSession._ask).
    APPROVE_PREFIX = "approve-prefix"
    DENY = "deny"

    @property
    def approved(self) -> bool:
        return self is not Answer.DENY


@record
class Reply:
    """The approver's answer; ``message`` is passed back to the model on a denial."""

    answer: Answer
    message: str | None = None


@record
class ApprovalRequest:
    """What the approver sees: the command, where it runs, why it is asked,
    the model's justification, what the sandbox refused on the attempt that
    failed (for a retry), and the prefix "always" would allow."""

    argv: tuple[str, ...]
    cwd: str
    question: Question
    reason: str
    justification: str | None
    permissions: Permissions
    denials: tuple[Denial, ...] = ()
    prefix: tuple[str, ...] = ()


@record
class ApprovedRun:
    """What became of a request: the result of the attempt that counts (None
    if nothing ran), the decision, every step taken, and for the model a
    message when it was refused."""

    result: ExecResult | None
    decision: Decision
    path: tuple[str, ...]
    assessment: Assessment
    message: str | None = None

    @property
    def ran(self) -> bool:
        return self.result is not None

    def to_dict(self) -> dict[str, object]:
        return {"decision": self.decision.value, "path": list(self.path),
                "message": self.message, "assessment": self.assessment.to_dict(),
                "result": None if self.result is None else self.result.to_dict()}


@record
class Authorization:
    """Whether a request may start: ``policy`` is the sandbox policy to run it
    under (None: it may not; ``message`` says why), with the decision path
    so far."""

    decision: Decision
    policy: SandboxPolicy | None
    path: tuple[str, ...]
    assessment: Assessment
    cwd: str
    message: str | None = None


class ApprovalSession:
    """One agent session's approvals: see the module docstring.

    ``policy`` is the sandbox policy runs get (default workspace-write);
    ``rules_file``, if given, is where "always allow this prefix" answers
    are appended as ``prefix_rule`` entries.
    """

    def __init__(self, approval: ApprovalPolicy | str = ApprovalPolicy.ON_REQUEST, *,
                 rules: RuleSet | None = None,
                 approver: Callable[[ApprovalRequest], Any] | None = None,
                 policy: SandboxPolicy | str = "workspace-write",
                 rules_file: str | None = None) -> None:
        self.approval = ApprovalPolicy(approval)
        self.rules = rules or RuleSet()
        self.approver = approver
        self.policy = resolve_policy(policy)
        self.rules_file = rules_file
        # What was approved for the session: per question, argv and cwd, the
        # permissions each approval granted.
        self._approved: dict[tuple[Question, tuple[str, ...], str], list[Permissions]] = {}
        self._lock = threading.Lock()

    def assess(self, argv: Sequence[str],
               permissions: Permissions | None = None) -> Assessment:
        """The decision the session would make for ``argv``, before asking anyone."""
        return assess(argv, self.approval, self.rules, permissions)

    def authorize(self, argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                  permissions: Permissions | None = None,
                  approver: Callable[[ApprovalRequest], Any] | None = None) -> Authorization:
        """The first step of :meth:`run` alone: decides, asking if needed,
        whether ``argv`` may start and under which policy (for a process the
        caller starts itself, such as a long-running session)."""
        return self._authorize(tuple(argv), cwd, permissions or Permissions(),
                               approver or self.approver, _answer_sync)

    async def authorize_async(self, argv: Sequence[str], *,
                              cwd: str | os.PathLike[str] | None = None,
                              permissions: Permissions | None = None,
                              approver: Callable[[ApprovalRequest], Any] | None = None
                              ) -> Authorization:
        """:meth:`authorize` for asyncio (an async approver runs on this loop)."""
        return await _threaded(lambda answer: self._authorize(
            tuple(argv), cwd, permissions or Permissions(), approver or self.approver, answer))

    def run(self, argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
            permissions: Permissions | None = None,
            approver: Callable[[ApprovalRequest], Any] | None = None,
            **options: Any) -> ApprovedRun:
        """Runs ``argv`` through the approval flow; ``approver`` (default: the
        session's) answers for this call; ``options`` go to :func:`corral.run`
        (``timeout``, ``env``, ``cancel``, ``on_output``...)."""
        from .._api import run

        return self._flow(tuple(argv), cwd, permissions or Permissions(),
                          lambda policy: run(list(argv), cwd=cwd, policy=policy, **options),
                          approver or self.approver, _answer_sync)

    async def run_async(self, argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                        permissions: Permissions | None = None,
                        approver: Callable[[ApprovalRequest], Any] | None = None,
                        **options: Any) -> ApprovedRun:
        """:meth:`run` for asyncio: the flow runs in a thread of its own (so
        that long runs do not hold a shared pool), an async approver on this
        event loop.  Cancelling the call cancels the run."""
        from .._api import run
        from .._cancel import CancelToken

        cancel = options.pop("cancel", None) or CancelToken()
        return await _threaded(lambda answer: self._flow(
            tuple(argv), cwd, permissions or Permissions(),
            lambda policy: run(list(argv), cwd=cwd, policy=policy, cancel=cancel, **options),
            approver or self.approver, answer), cancel)

    def _authorize(self, argv: tuple[str, ...], cwd: str | os.PathLike[str] | None,
                   permissions: Permissions, approver: Callable[[ApprovalRequest], Any] | None,
                   answer: _Answering) -> Authorization:
        where = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
        assessment = self.assess(argv, permissions)
        path = [f"{assessment.decision.value}: {assessment.reason}"]
        if assessment.decision is Decision.FORBIDDEN:
            return Authorization(Decision.FORBIDDEN, None, (*path, "not run"), assessment, where,
                                 f"refused: {assessment.reason}")
        escalate = permissions.escalate and assessment.rules_scope is Scope.ESCALATED
        if assessment.decision is Decision.PROMPT:
            reply = self._ask(approver, answer, ApprovalRequest(
                argv, where, Question.RUN, assessment.reason, permissions.justification,
                permissions, prefix=_prefix(assessment)))
            if reply is None or not reply[0].answer.approved:
                why = _denied(reply)
                return Authorization(Decision.PROMPT, None, (*path, why, "not run"), assessment,
                                     where, why)
            path.append(reply[1])
            escalate = permissions.escalate
        elif permissions.requested:
            path.append("the permissions it asks for are allowed by rules")
        policy = SandboxPolicy.full_access() if escalate else self._with(permissions)
        return Authorization(Decision.ALLOW, policy, tuple(path), assessment, where)

    def _flow(self, argv: tuple[str, ...], cwd: str | os.PathLike[str] | None,
              permissions: Permissions,
              execute: Callable[[SandboxPolicy], ExecResult],
              approver: Callable[[ApprovalRequest], Any] | None,
              answer: _Answering) -> ApprovedRun:
        granted = self._authorize(argv, cwd, permissions, approver, answer)
        if granted.policy is None:
            return ApprovedRun(None, granted.decision, granted.path, granted.assessment,
                               granted.message)
        assessment, path = granted.assessment, list(granted.path)
        escalate = not granted.policy.sandboxed
        result = execute(granted.policy)
        path.append(f"ran {'without the sandbox' if escalate else 'in the sandbox'}: "
                    f"exit {result.exit_code}")
        if escalate or not result.denials:
            return ApprovedRun(result, Decision.ALLOW, tuple(path), assessment)
        refused = "; ".join(f"{d.kind.value} {d.target or ''}".strip() for d in result.denials)
        if self.approval not in (ApprovalPolicy.ON_FAILURE, ApprovalPolicy.UNTRUSTED):
            path.append(f"the sandbox refused {refused}; approval policy "
                        f"{self.approval.value}: returned to the caller")
            return ApprovedRun(result, Decision.ALLOW, tuple(path), assessment)
        reply = self._ask(approver, answer, ApprovalRequest(
            argv, granted.cwd, Question.RETRY_UNSANDBOXED,
            f"the sandbox refused {refused}: run it again without the sandbox?",
            permissions.justification, permissions, result.denials, _prefix(assessment)))
        if reply is None or not reply[0].answer.approved:
            why = _denied(reply)
            path.append(f"the sandbox refused {refused}; re-run without it: {why}")
            return ApprovedRun(result, Decision.ALLOW, tuple(path), assessment,
                               None if reply is None else reply[0].message)
        path.append(f"the sandbox refused {refused}; {reply[1]} a re-run without it")
        second = execute(SandboxPolicy.full_access())
        path.append(f"ran without the sandbox: exit {second.exit_code}")
        return ApprovedRun(second, Decision.ALLOW, tuple(path), assessment)

    def _ask(self, approver: Callable[[ApprovalRequest], Any] | None, answer: _Answering,
             request: ApprovalRequest) -> tuple[Reply, str] | None:
        """The approver's reply and how it reads in the path; None when
        nobody can be asked.  Session approvals answer by themselves, for
        what they covered (see :class:`Answer`)."""
        key = (request.question, request.argv, request.cwd)
        with self._lock:
            if any(granted.covers(request.permissions) for granted in self._approved.get(key, ())):
                return Reply(Answer.APPROVE_SESSION), "approved earlier in this session"
        if approver is None:
            return None
        reply = answer(approver, request)
        if reply.answer is Answer.APPROVE_SESSION:
            with self._lock:
                self._approved.setdefault(key, []).append(request.permissions)
            return reply, "approved by the user for this session"
        if reply.answer is Answer.APPROVE_PREFIX:
            prefix = request.prefix or request.argv
            # The rule covers what the user was asked about: running without
            # the sandbox only if the question was about that.
            unsandboxed = (request.question is Question.RETRY_UNSANDBOXED
                           or request.permissions.escalate)
            scope = Scope.ESCALATED if unsandboxed else Scope.SANDBOX
            if self.rules_file:
                rule = append_prefix_rule(self.rules_file, prefix, request.justification, scope)
                saved = f" (saved to {self.rules_file})"
            else:  # nowhere to save it: it lasts as long as this session
                rule = Rule(tuple((word,) for word in prefix), Decision.ALLOW,
                            request.justification, "<this session>", scope=scope)
                saved = " (for this session: no rules file to save it to)"
            with self._lock:
                self._approved.setdefault(key, []).append(request.permissions)
                self.rules = self.rules + RuleSet((rule,))
            where = ", without the sandbox too" if unsandboxed else ""
            return reply, f"approved by the user for `{shlex.join(prefix)}` always{where}{saved}"
        if reply.answer is Answer.APPROVE_ONCE:
            return reply, "approved by the user once"
        return reply, "denied by the user"

    def _with(self, permissions: Permissions) -> SandboxPolicy:
        """The session's sandbox policy plus the approved extra permissions."""
        policy = self.policy
        if permissions.network:
            policy = replace(policy, network=True)
        if permissions.writable:
            if policy.kind is not PolicyKind.WORKSPACE_WRITE:
                from .._errors import PolicyError

                raise PolicyError(f"extra writable roots need workspace-write, not {policy.name}")
            policy = replace(policy, writable=(*policy.writable, *permissions.writable))
        return policy


def _prefix(assessment: Assessment) -> tuple[str, ...]:
    """What "always allow" would cover: the first command's program and
    subcommand (``git push``), not its arguments."""
    first = assessment.commands[0] if assessment.commands else ()
    return first[:2] if len(first) > 1 and not first[1].startswith("-") else first[:1]


def _denied(reply: tuple[Reply, str] | None) -> str:
    if reply is None:
        return "needs approval, and nobody can be asked (no approver)"
    message = reply[0].message
    return f"denied by the user{': ' + message if message else ''}"


def _reply(value: object) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, Answer):
        return Reply(value)
    raise TypeError(f"an approver returns a Reply or an Answer, not {type(value).__name__}")


def _answer_sync(approver: Callable[[ApprovalRequest], Any], request: ApprovalRequest) -> Reply:
    reply = approver(request)
    if inspect.isawaitable(reply):
        import asyncio

        reply = asyncio.run(_awaited(reply))
    return _reply(reply)


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


async def _threaded(work: Callable[[_Answering], T], cancel: CancelToken | None = None) -> T:
    """Runs ``work`` in a thread of its own, bridging an async approver to
    this event loop; cancelling the await cancels ``cancel``."""
    import asyncio

    loop = asyncio.get_running_loop()

    def answer(approver: Callable[[ApprovalRequest], Any], request: ApprovalRequest) -> Reply:
        reply = approver(request)
        if inspect.isawaitable(reply):
            reply = asyncio.run_coroutine_threadsafe(_awaited(reply), loop).result()
        return _reply(reply)

    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def run() -> None:
        try:
            value = work(answer)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=run, name="corral-approval", daemon=True).start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if cancel is not None:
            cancel.cancel()
        raise
