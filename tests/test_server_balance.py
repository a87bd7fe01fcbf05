"""Least-connections between workers: who may accept the next connection."""

from __future__ import annotations

from authhost.server.balance import NOT_ACCEPTING, ConnectionBalance


def test_a_worker_leaves_the_next_connection_to_one_with_fewer():
    counts = [NOT_ACCEPTING, NOT_ACCEPTING, NOT_ACCEPTING]
    first, second, third = (ConnectionBalance(counts, i) for i in range(3))
    first.accepting()
    assert first.may_accept()  # the others are not accepting yet: nobody to leave it to
    first.opened()
    assert first.may_accept()
    second.accepting()
    assert not first.may_accept() and second.may_accept()
    second.opened()
    third.accepting()
    assert not first.may_accept() and not second.may_accept() and third.may_accept()
    third.opened()
    assert all(w.may_accept() for w in (first, second, third))  # 1, 1, 1: anyone
    second.closed()
    assert not first.may_accept() and second.may_accept() and not third.may_accept()
    second.stopped()  # shutting down: the others stop leaving connections to it
    assert first.may_accept() and third.may_accept()
    second.closed()  # its last connection ends while it shuts down
    assert counts[1] == NOT_ACCEPTING and first.may_accept() and third.may_accept()
