"""Policy decisions: is ``action`` on ``resource`` allowed for this connection?

IAM evaluation logic, as AWS IoT documents it: the default is deny; a request is allowed when
some statement of some attached policy allows it and no statement denies it; an explicit
``Deny`` always wins. Every statement is looked at, so a :class:`Decision` names *all* the
statements that decided it, and the outcome does not depend on policy or statement order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fleet_sim.policy.document import PolicyDocument, StatementRef
from fleet_sim.policy.variables import RequestContext

__all__ = ["Decision", "DecisionReason", "evaluate"]

DecisionReason = Literal["explicit_deny", "allowed", "implicit_deny"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one authorization check.

    Attributes:
        allowed: whether the request may proceed.
        reason: ``explicit_deny`` (a Deny statement matched), ``allowed`` (an Allow matched
            and no Deny), or ``implicit_deny`` (nothing matched).
        action: the action asked about, as given.
        resource: the resource ARN asked about.
        statements: the statements that decided: every matching Deny for ``explicit_deny``,
            every matching Allow for ``allowed``, none for ``implicit_deny``; in the order of
            the policies and statements given.
    """

    allowed: bool
    reason: DecisionReason
    action: str
    resource: str
    statements: tuple[StatementRef, ...] = ()

    @property
    def policy_name(self) -> str | None:
        """The name of the policy holding the first deciding statement, if any."""
        return self.statements[0].policy_name if self.statements else None

    @property
    def statement_number(self) -> int | None:
        """The 1-based number of the first deciding statement, if any."""
        return self.statements[0].statement_number if self.statements else None

    @property
    def sid(self) -> str | None:
        """The Sid of the first deciding statement, if any."""
        return self.statements[0].sid if self.statements else None

    @property
    def policy_names(self) -> tuple[str | None, ...]:
        """The distinct policies holding deciding statements, in order (for TestAuthorization)."""
        return tuple(dict.fromkeys(ref.policy_name for ref in self.statements))

    def explain(self) -> str:
        """A one-line human account, e.g. for reports and logs."""
        what = f"{self.action} on {self.resource}"
        if self.reason == "implicit_deny":
            return f"{what}: denied (no statement allows it)"
        verdict = "allowed" if self.allowed else "denied explicitly"
        return f"{what}: {verdict} by " + ", ".join(str(ref) for ref in self.statements)


def evaluate(
    policies: Sequence[PolicyDocument], action: str, resource: str, context: RequestContext
) -> Decision:
    """Decide whether ``context``'s connection may perform ``action`` on ``resource``.

    Args:
        policies: the policies attached to the principal (any order).
        action: the action, e.g. ``iot:Publish`` (matched case-insensitively).
        resource: the full resource ARN, e.g. ``arn:aws:iot:us-east-1:123456789012:topic/a``
            (matched case-sensitively).
        context: what is known about the connection, for variables and conditions.

    Returns:
        The decision, naming the statements that made it.
    """
    action_lower = action.lower()
    allows: list[StatementRef] = []
    denies: list[StatementRef] = []
    for policy in policies:
        for statement in policy.compiled:
            # once a Deny has matched, Allow statements can no longer change anything
            if (statement.deny or not denies) and statement.applies(
                action_lower, resource, context
            ):
                (denies if statement.deny else allows).append(statement.ref)
    if denies:
        return Decision(False, "explicit_deny", action, resource, tuple(denies))
    if allows:
        return Decision(True, "allowed", action, resource, tuple(allows))
    return Decision(False, "implicit_deny", action, resource)
