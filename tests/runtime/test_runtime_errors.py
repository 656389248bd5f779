"""runtime.errors: exception groups unwrapped once, messages a user reads on one line."""

from __future__ import annotations

import pytest
import trio

from runtime.errors import find_in_group, one_line, reraise_unwrapped, unwrap_group


def test_unwrap_group_single_members_only() -> None:
    leaf = KeyError("k")
    assert unwrap_group(leaf) is leaf
    assert unwrap_group(ExceptionGroup("a", [ExceptionGroup("b", [leaf])])) is leaf
    two = ExceptionGroup("two", [KeyError("x"), ValueError("y")])
    assert unwrap_group(two) is two  # several failures: nothing to pick
    assert unwrap_group(ExceptionGroup("outer", [two])) is two


def test_find_in_group_depth_first() -> None:
    target = ValueError("wanted")
    tree = ExceptionGroup("t", [KeyError("a"), ExceptionGroup("inner", [OSError("b"), target]), ValueError("later")])
    assert find_in_group(tree, ValueError) is target
    assert find_in_group(tree, (TypeError, OSError)) is tree.exceptions[1].exceptions[0]  # type: ignore[union-attr]
    assert find_in_group(tree, TypeError) is None
    assert find_in_group(target, ValueError) is target


async def test_reraise_unwrapped_from_a_nursery() -> None:
    async def fail() -> None:
        raise KeyError("from a task")

    with pytest.raises(KeyError, match="from a task"):
        with reraise_unwrapped():
            async with trio.open_nursery() as n:
                n.start_soon(fail)

    async def fail_other() -> None:
        raise ValueError("second")

    with pytest.raises(ExceptionGroup):  # two failures stay a group
        with reraise_unwrapped():
            async with trio.open_nursery() as n:
                n.start_soon(fail)
                n.start_soon(fail_other)


def test_one_line() -> None:
    assert one_line(ValueError("bad\n  value")) == "bad value"
    assert one_line(trio.TooSlowError()) == "TooSlowError"
