"""A store whose every transaction first checks that this server still holds a lease.

The controller writes through one (``Fenced``): a server that lost the controller lease
(paused, cut off, or slower than its lease) has each transaction refused with `LeaseLost`
before it writes anything, since the check and the writes share the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from berth.core.errors import LeaseLost
from berth.store import leases
from berth.store.db import Database


class Transactions(Protocol):
    def transaction(self) -> AbstractContextManager[Session]: ...


@dataclass(frozen=True, slots=True)
class Term:
    """One holding of a lease: who, under which fencing token."""

    holder: str
    token: int


class Fenced:
    def __init__(self, db: Database, name: str) -> None:
        self._db = db
        self._name = name
        self.term: Term | None = None
        """The holding of lease ``name`` this server believes it has; None: it has none."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._db.transaction() as session:
            term = self.term
            if term is None:
                raise LeaseLost(f"This server does not hold the {self._name!r} lease.")
            leases.check(session, self._name, term.holder, term.token)
            yield session
