"""IAM actions, declared beside the calls that need them: the one source for every policy.

Each AWS adapter method that calls AWS is decorated with the actions its calls need and the
*logical* resource they act on::

    @requires("s3:GetObject", "s3:GetObjectVersion", resource="frames")
    def get_frame(self, ...): ...

A logical resource name ("frames", "model", "results-table", ...) is resolved to ARNs in one
place outside the Lambda package (``infra/deploy/policy.py``): into CloudFormation for the packaged
template, and into the local stack's names for the principal moto enforces. Deriving the
policy from these declarations means the role and the code cannot drift apart.

Pure bookkeeping: the decorator returns the function unchanged and costs nothing per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__camsort_iam__"


@dataclass(frozen=True, order=True)
class Permission:
    """``actions`` on one logical resource (resolved to ARNs by infra/deploy/policy.py)."""

    resource: str
    actions: tuple[str, ...]


def requires(*actions: str, resource: str) -> Callable[[F], F]:
    """Declare that the decorated function calls AWS with ``actions`` on ``resource``."""
    if not actions:
        raise ValueError("requires() needs at least one IAM action")
    permission = Permission(resource=resource, actions=tuple(sorted(set(actions))))

    def mark(function: F) -> F:
        declared = getattr(function, _ATTRIBUTE, ())
        setattr(function, _ATTRIBUTE, (*declared, permission))
        return function

    return mark


def declared_permissions(*users: Any) -> list[Permission]:
    """Every permission declared on the given functions, or on any method of the given classes."""
    found: set[Permission] = set()
    for user in users:
        for function in _callables(user):
            found.update(getattr(function, _ATTRIBUTE, ()))
    return sorted(found)


def actions_by_resource(permissions: Iterable[Permission]) -> dict[str, tuple[str, ...]]:
    """``{resource: sorted unique actions}``: the shape a policy statement is built from."""
    merged: dict[str, set[str]] = {}
    for permission in permissions:
        merged.setdefault(permission.resource, set()).update(permission.actions)
    return {resource: tuple(sorted(actions)) for resource, actions in sorted(merged.items())}


def _callables(user: Any) -> Iterable[Any]:
    if isinstance(user, type):
        for klass in user.__mro__:
            for value in vars(klass).values():
                yield getattr(value, "__func__", value)
    else:
        yield user
