"""What a hostile or broken client of the admin port meets, over real TCP: a flood of idle
connections beyond ``admin.max_connections`` is closed at once while the ISO 8583 listener
and the admitted admin connections are served; a process out of file descriptors logs its
failed accepts once a second, not a traceback storm, and serves again when they are back; a
client that pipelines requests and never reads the answers is closed after
``admin.timeout_s``; headers over 16 KiB are refused however they arrive."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio
from conftest import free_port
from iso_client import Switch
from test_admin_support import (
    AUDITOR_TOKEN,
    OPERATOR_TOKEN,
    call,
    open_service,
    raw_exchange,
    running_admin,
)
from test_e2e_auth import purchase, start_host

import authhost
from authhost.config import AdminConfig, ConfigError, load_config

TESTS = Path(__file__).parent
SRC = Path(authhost.__file__).parent.parent  # the server runs the code under test
AUTH = f"Authorization: Bearer {AUDITOR_TOKEN}\r\n".encode()


async def _admitted(port: int) -> trio.SocketStream:
    """A kept-alive admin connection that has had one request answered (so it is counted)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET /v1/products HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
    received = b""
    with trio.fail_after(10):
        while b'{"products":' not in received:
            chunk = await stream.receive_some(65536)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received
    return stream


async def _closed_by_server(port: int) -> bool:
    """The server closes the connection without answering the request sent on it."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return True
    try:
        await stream.send_all(b"GET /v1/products HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
        with trio.fail_after(10):  # not the 30 s an admitted idle connection is kept
            return await stream.receive_some(65536) == b""
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return True  # reset
    finally:
        await trio.aclose_forcefully(stream)


async def test_connections_beyond_the_cap_are_closed_and_iso_and_admin_go_on(
    nursery, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="authhost.admin.http")
    monkeypatch.chdir(tmp_path)  # the demo export is written to the working directory
    port = free_port()
    tokens = f"{OPERATOR_TOKEN}:operator,{AUDITOR_TOKEN}:auditor"
    admin = AdminConfig(port=port, tokens=tokens, max_connections=4)
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}", admin=admin)
    switch = await Switch.connect(host.port)
    held = [await _admitted(port) for _ in range(4)]
    extra = 40
    for _ in range(extra):
        assert await _closed_by_server(port)
    # the switch is served meanwhile, and so are the admitted admin connections
    assert (await switch.send(purchase(host.cards["active-visa"])))["39"] == "00"
    await held[0].send_all(b"GET /v1/lists HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
    with trio.fail_after(10):
        assert (await held[0].receive_some(65536)).startswith(b"HTTP/1.1 200")
    refusals = [r for r in caplog.records if "connection refused" in r.getMessage()]
    assert 1 <= len(refusals) < extra  # logged, at most once a second
    for stream in held:
        await stream.aclose()
    for _ in range(200):  # the server notices the closes: room again
        try:
            reply = await call(port, "GET", "/v1/products", token=AUDITOR_TOKEN)
        except OSError:  # refused: a close not seen yet
            await trio.sleep(0.05)
            continue
        assert reply.status == 200, reply
        break
    else:
        raise AssertionError("the admin API never admitted a connection again")
    assert (await switch.send(purchase(host.cards["active-visa"])))["39"] == "00"
    await switch.aclose()


SERVER = textwrap.dedent(
    """
    import logging, os, resource, sys
    from pathlib import Path
    import trio
    sys.path.insert(0, sys.argv[1])
    from test_admin_support import open_service
    from authhost.admin.http import serve_admin
    from authhost.admin.tokens import TokenTable
    from authhost.config import AdminConfig

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")

    async def main():
        async with open_service(Path(sys.argv[2])) as service:
            config = AdminConfig(host="127.0.0.1", port=int(sys.argv[3]), max_connections=0)
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: serve_admin(
                    service, config, tokens=TokenTable.of(**{sys.argv[4]: "auditor"}),
                    task_status=task_status))
                opened = len(os.listdir("/proc/self/fd"))
                resource.setrlimit(resource.RLIMIT_NOFILE, (opened + 8, opened + 8))
                print("ready", flush=True)

    trio.run(main)
    """
)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts its fds in /proc")
async def test_out_of_file_descriptors_accepts_are_logged_once_a_second_and_serving_goes_on(
    tmp_path,
):
    """With no cap (0) and 8 file descriptors to spare, 60 connections leave the process
    none: each failed accept was logged by trio with its traceback, ten a second."""
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    log_file = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}"}
    with log_file.open("w") as log_out:
        process = subprocess.Popen(
            [sys.executable, str(script), str(TESTS), str(tmp_path), str(port), AUDITOR_TOKEN],
            stdout=subprocess.PIPE, stderr=log_out, env=env, text=True,
        )  # fmt: skip
    try:
        ready = await trio.to_thread.run_sync(process.stdout.readline)
        assert ready.strip() == "ready", log_file.read_text()
        started = trio.current_time()
        clients = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(60)]
        with trio.fail_after(20):
            while "Too many open files" not in log_file.read_text():
                await trio.sleep(0.05)
        await trio.sleep(1.5)  # a second and a half of failing accepts
        failed = [line for line in log_file.read_text().splitlines() if "accept failed" in line]
        elapsed = trio.current_time() - started
        text = log_file.read_text()
        assert "Traceback" not in text and "EMFILE" not in text, text[:3000]
        assert "Too many open files" in failed[0]
        assert len(failed) <= elapsed + 1, failed  # once a second
        for client in clients:
            await trio.aclose_forcefully(client)
        for _ in range(200):  # the server gets its descriptors back and serves again
            try:
                reply = await call(port, "GET", "/v1/products", token=AUDITOR_TOKEN)
            except OSError:
                await trio.sleep(0.05)
                continue
            assert reply.status == 200, reply
            break
        else:
            raise AssertionError(f"not served again: {log_file.read_text()[-2000:]}")
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


async def test_a_client_that_never_reads_its_answers_is_closed_after_the_timeout(tmp_path):
    """300 pipelined GET /openapi.json (50 MB of answers) and no read: the server's send
    stalls once the TCP buffers are full, and the connection is closed after timeout_s (it
    stayed open for good: the send had no time limit)."""
    async with open_service(tmp_path) as service, running_admin(service, timeout_s=0.5) as port:
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
        one = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
        await stream.send_all(one * 300)
        await trio.sleep(2)  # reads nothing for four times the timeout
        answers = b""
        with trio.fail_after(20):
            try:
                while chunk := await stream.receive_some(1 << 20):
                    answers += chunk
            except trio.BrokenResourceError:
                pass  # reset: closed with answers unsent
        await stream.aclose()
        assert 0 < answers.count(b"HTTP/1.1 200 OK") < 300
        # the server serves others as before
        assert (await call(port, "GET", "/v1/products")).status == 200


@pytest.mark.parametrize("pieces", [1, 40], ids=["one packet", "in pieces"])
async def test_headers_over_16_kib_are_refused_however_they_arrive(tmp_path, pieces):
    big = b"X-Filler: " + b"a" * 24_000 + b"\r\n"
    head = b"GET /v1/products HTTP/1.1\r\nHost: x\r\n" + AUTH + big + b"\r\n"
    async with open_service(tmp_path) as service, running_admin(service) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            size = len(head) // pieces + 1
            received = b""
            try:
                for start in range(0, len(head), size):
                    await stream.send_all(head[start : start + size])
                    await trio.sleep(0.01 if pieces > 1 else 0)
                with trio.fail_after(10):
                    while chunk := await stream.receive_some(65536):
                        received += chunk
            except trio.BrokenResourceError:
                assert pieces > 1  # refused before the rest came: the reset may beat the 431
        if pieces == 1 or received:
            assert received.startswith(b"HTTP/1.1 431"), received[:200]
        assert b'"products"' not in received
        # 12 KB of headers is within the limit
        fits = b"X-Filler: " + b"a" * 12_000 + b"\r\n"
        close = b"Connection: close\r\n"
        reply = await raw_exchange(
            port, b"GET /v1/products HTTP/1.1\r\nHost: x\r\n" + AUTH + close + fits + b"\r\n"
        )
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_the_cap_and_the_timeout_are_configured_and_checked(tmp_path):
    assert AdminConfig().max_connections == 64 and AdminConfig().timeout_s == 30.0
    config = load_config(
        None, env={"AUTHHOST_ADMIN_MAX_CONNECTIONS": "8", "AUTHHOST_ADMIN_TIMEOUT_S": "5"}
    )
    assert (config.admin.max_connections, config.admin.timeout_s) == (8, 5.0)
    with pytest.raises(ConfigError, match="max_connections"):
        AdminConfig(max_connections=-1)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="timeout_s"):
            AdminConfig(timeout_s=bad)


WRITE_AUTH = f"Authorization: Bearer {OPERATOR_TOKEN}\r\n".encode()


async def test_a_body_that_stops_half_way_gets_408_and_others_are_served(tmp_path):
    """A client that sends its headers and half its body, then nothing: answered 408 with a
    message after timeout_s, nothing is written, and the server serves the next client."""
    head = (
        b"PUT /v1/lists/half HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 40\r\n" + WRITE_AUTH + b"\r\n"
    )
    async with open_service(tmp_path) as service, running_admin(service, timeout_s=0.5) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(head + b'{"values": ["ab')
        answer = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                answer += chunk
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b"timed out" in answer
        assert await service.list_names() == []
        assert (await call(port, "GET", "/v1/products")).status == 200


async def test_a_client_gone_mid_body_leaves_nothing_written(tmp_path):
    head = (
        b"PUT /v1/lists/gone HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 40\r\n" + WRITE_AUTH + b"\r\n"
    )
    async with open_service(tmp_path) as service, running_admin(service) as port:
        for _ in range(20):  # none of them leaks a connection slot or a task
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(head + b'{"values": [')
            await stream.aclose()
        assert (await call(port, "GET", "/v1/products")).status == 200
        assert await service.list_names() == []


async def test_expect_100_continue_is_honoured(tmp_path):
    """curl (for large bodies) and .NET's HttpClient (for every body, by default) send
    ``Expect: 100-continue`` and wait for the go-ahead before sending the body."""
    body = json.dumps({"values": [f"v{i:05d}" for i in range(300)]}).encode()  # 3 KB
    head = (
        b"PUT /v1/lists/curl HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + b"Expect: 100-continue\r\n"
        + WRITE_AUTH
        + b"\r\n"
    )
    async with open_service(tmp_path) as service, running_admin(service) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(head)
        with trio.fail_after(5):
            first = await stream.receive_some(65536)
        assert first.startswith(b"HTTP/1.1 100 "), first
        await stream.send_all(body)
        answer = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                answer += await stream.receive_some(65536)
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert await service.list_names() == ["curl"]
        # the API lives on (the go-ahead used to raise in the connection's task, which ended
        # the API's nursery: the admin API was down until a restart)
        assert (await call(port, "GET", "/v1/products")).status == 200


async def test_a_chunked_body_over_the_limit_is_refused_with_413(tmp_path):
    """No Content-Length to refuse up front: the body is counted as it comes."""
    head = (
        b"PUT /v1/lists/chunks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n" + WRITE_AUTH + b"\r\n"
    )
    chunk = b"a" * 65536
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(20))  # 1.25 MB
    start = b'{"values": ["'
    async with open_service(tmp_path) as service, running_admin(service) as port:
        answer = await raw_exchange(port, head + b"%x\r\n" % len(start) + start + b"\r\n" + chunks)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
        assert await service.list_names() == []
        assert (await call(port, "GET", "/v1/products")).status == 200
