"""UndoHistory: the one undo/redo list (the tab's edits; here with packed masks as an engine caller keeps them)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segfill.errors import InputError
from segfill.history import UndoHistory
from segfill.masks import CombineOp, combine, pack_mask, unpack_mask


def _rect(shape, x0, y0, x1, y1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_push_undo_redo_and_the_redo_branch():
    history = UndoHistory("a")
    assert history.current == "a" and not history.can_undo and not history.can_redo
    assert history.push("b") and history.push("c")
    assert not history.push("c")  # the same state is not recorded
    assert history.depth == 2
    assert history.undo() == "b" and history.can_redo
    assert not history.push("b")  # no change: the redo branch survives
    assert history.can_redo and history.redo() == "c"
    history.undo()
    assert history.push("d")  # a real change drops the redo branch
    assert not history.can_redo and list(history) == ["a", "b", "d"]
    for _ in range(5):
        history.undo()
    assert history.current == "a" and not history.can_undo  # undo at the start is harmless
    history.reset("z")
    assert list(history) == ["z"] and history.depth == 0


def test_depth_is_bounded_and_packed_masks_stay_small():
    shape = (2000, 3000)
    history = UndoHistory(pack_mask(np.zeros(shape, bool)), max_depth=3)
    for step in range(6):
        history.push(pack_mask(_rect(shape, step * 10, 0, step * 10 + 500, 1000)))
    assert history.depth == 3 and len(history) == 4
    for _ in range(5):
        history.undo()
    np.testing.assert_array_equal(unpack_mask(history.current, shape), _rect(shape, 20, 0, 520, 1000))
    assert sum(len(state) for state in history) < 4 * 2000 * 3000 / 8 / 10  # far below bit-packed masks
    with pytest.raises(InputError, match="at least 1"):
        UndoHistory(0, max_depth=0)


def test_same_decides_what_is_a_change_and_replace_is_not_a_step():
    history = UndoHistory([1], same=lambda a, b: a is b)
    assert history.push([1])  # equal but not the same object: recorded
    history.replace(0, ["compact"])
    assert list(history)[0] == ["compact"] and history.depth == 1


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["add", "subtract", "intersect", "replace"]), st.integers(0, 2**16 - 1)),
                min_size=1, max_size=12))
def test_undo_all_and_redo_all_walk_the_same_mask_states(steps):
    shape = (4, 4)
    history = UndoHistory(np.zeros(shape, bool), max_depth=100, same=np.array_equal)
    expected = [np.zeros(shape, bool)]
    for op, bits in steps:
        selection = np.array([(bits >> i) & 1 for i in range(16)], bool).reshape(shape)
        after = np.asarray(combine(history.current, selection, CombineOp(op)), bool)
        history.push(after)
        if not np.array_equal(after, expected[-1]):
            expected.append(after)
        np.testing.assert_array_equal(history.current, expected[-1])
    assert history.depth == len(expected) - 1
    for state in reversed(expected[:-1]):
        np.testing.assert_array_equal(history.undo(), state)
    assert not history.can_undo
    for state in expected[1:]:
        np.testing.assert_array_equal(history.redo(), state)
    assert not history.can_redo
