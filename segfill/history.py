"""Bounded undo/redo over immutable states: one history, used by the tab for its edits and by any engine caller
that keeps a sequence of states (a state can be anything immutable: an ``Edit``, a packed mask...)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from segfill.errors import InputError

T = TypeVar("T")


class UndoHistory(Generic[T]):
    """A list of states with a cursor. ``push`` drops the redo branch and records a state unless ``same`` says it
    equals the current one; at most ``max_depth`` steps can be undone (the oldest are forgotten)."""

    def __init__(self, initial: T, max_depth: int = 100, same: Callable[[T, T], bool] = operator.eq) -> None:
        if max_depth < 1:
            raise InputError("The undo depth must be at least 1.")
        self.max_depth = int(max_depth)
        self._same = same
        self._states: list[T] = [initial]
        self._position = 0

    @property
    def current(self) -> T:
        return self._states[self._position]

    @property
    def can_undo(self) -> bool:
        return self._position > 0

    @property
    def can_redo(self) -> bool:
        return self._position < len(self._states) - 1

    @property
    def depth(self) -> int:
        """How many steps can be undone right now."""
        return self._position

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._states))

    def push(self, state: T) -> bool:
        """Make ``state`` current; False (nothing recorded, the redo branch kept) when it is the same."""
        if self._same(state, self.current):
            return False
        del self._states[self._position + 1 :]
        self._states.append(state)
        if len(self._states) > self.max_depth + 1:
            del self._states[: len(self._states) - self.max_depth - 1]
        self._position = len(self._states) - 1
        return True

    def undo(self) -> T:
        if self.can_undo:
            self._position -= 1
        return self.current

    def redo(self) -> T:
        if self.can_redo:
            self._position += 1
        return self.current

    def reset(self, initial: T) -> None:
        """Forget everything; ``initial`` is the only state."""
        self._states = [initial]
        self._position = 0

    def drop_oldest(self, count: int = 1) -> None:
        """Forget the ``count`` oldest states (never the current one)."""
        count = max(0, min(int(count), self._position))
        del self._states[:count]
        self._position -= count

    def replace(self, index: int, state: T) -> None:
        """Swap the stored state at ``index`` for an equivalent one (e.g. a compacted copy); not an undo step."""
        self._states[index] = state
