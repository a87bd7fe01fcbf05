"""What the admin API's lockout counts a client under, and its table's bound
(``admin.lockout``; the lockout itself is tested over the real server in test_admin_http)."""

from __future__ import annotations

from authhost.admin import lockout as lockout_module
from authhost.admin.lockout import AdminLockout, peer_host


def test_an_ipv6_client_is_counted_by_its_64_network():
    """One machine takes addresses from a whole /64 at will: counted per address, it had 10
    tries for each of 2^64 addresses."""
    assert peer_host("2001:db8:1:2:aaaa::1:5555") == peer_host("2001:db8:1:2:bbbb::9:6666")
    assert peer_host("2001:db8:1:2::1:5555") == "2001:db8:1:2::/64"
    assert peer_host("2001:db8:1:3::1:5555") != peer_host("2001:db8:1:2::1:5555")
    assert peer_host("::ffff:10.1.2.3:5555") == "10.1.2.3"
    assert peer_host("10.1.2.3:5555") == "10.1.2.3" and peer_host("") == ""


def test_a_spray_from_many_addresses_does_not_free_a_locked_one(monkeypatch):
    monkeypatch.setattr(lockout_module, "MAX_PEERS", 5)
    now = [0.0]
    lockout = AdminLockout(failures=2, window_s=60, lockout_s=600, clock=lambda: now[0])
    assert not lockout.failed("10.0.0.1") and lockout.failed("10.0.0.1")
    for i in range(2, 40):  # one wrong token each from many addresses
        lockout.failed(f"10.0.0.{i}")
    assert lockout.retry_after("10.0.0.1") == 600


def test_a_full_table_frees_a_tenth_of_itself_at_once(monkeypatch):
    """A spray from many addresses each with a recent wrong token: a full table freed one
    address per new one, scanning every address each time (on the event loop the
    authorisations share); it frees a tenth at once, so the next new ones find room."""
    monkeypatch.setattr(lockout_module, "MAX_PEERS", 100)
    lockout = AdminLockout(failures=3, window_s=60, lockout_s=600, clock=lambda: 0.0)
    for i in range(100):
        lockout.failed(f"10.0.0.{i}")
    lockout.failed("10.0.1.0")
    assert len(lockout._peers) == 91  # 90 kept, and the new one
    assert "10.0.0.0" not in lockout._peers and "10.0.0.10" in lockout._peers
