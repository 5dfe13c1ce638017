"""Approvals: which commands run, sandboxed or not, with a reason for every decision.

The layers, each usable alone: :mod:`.shell` reads a ``bash -lc`` script
into its commands; :mod:`.safety` knows the safe and the dangerous ones;
:mod:`.rules` reads prefix rules files; :mod:`.decide` turns all of them and
an approval policy into a decision; :mod:`.flow` runs a command through
approval, the sandbox and, on a denial, a re-run the user approved.
"""

from __future__ import annotations

from .decide import ApprovalPolicy, Assessment, Permissions, assess
from .flow import (Answer, ApprovalRequest, ApprovalSession, ApprovedRun, Authorization, Question,
                   Reply)
from .rules import (Decision, Rule, RuleMatch, RuleSet, RulesError, Scope, append_prefix_rule,
                    load_rules, parse_rules)
from .safety import danger, is_known_safe
from .shell import every_command, plain_commands, plain_shell_script, shell_script

__all__ = [
    "Answer", "ApprovalPolicy", "ApprovalRequest", "ApprovalSession", "ApprovedRun", "Authorization",
    "Assessment", "Decision", "Permissions", "Question", "Reply", "Rule", "RuleMatch", "RuleSet",
    "RulesError", "Scope", "append_prefix_rule", "assess", "danger", "every_command",
    "is_known_safe", "load_rules", "parse_rules", "plain_commands", "plain_shell_script",
    "shell_script",
]
