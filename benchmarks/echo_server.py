#!/usr/bin/env python3
"""A bare trio echo server with authhost's framing: the baseline of the load benchmark.

It reads frames (the same ``FrameDecoder`` authhost uses) and answers each with a frame of the
same body, doing no ISO 8583 work at all. Whatever throughput it reaches on this machine is
the most a trio server with this framing can do; authhost's figures are reported as a share
of it, measured in the same run. Answers to the frames of one read go out in one write, as
any competent server would batch them (this makes the baseline harder to reach, not easier).

    python benchmarks/echo_server.py --port 9583 [--framing binary2|ascii4] [--tpdu]
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys

import trio

from authhost.iso.framing import FrameDecoder, FrameError, Framing, encode_frame


async def echo(stream: trio.SocketStream, framing: Framing) -> None:
    decoder = FrameDecoder(framing)
    try:
        async with stream:
            while data := await stream.receive_some(65536):
                decoder.feed(data)
                replies = []
                while (body := decoder.next_frame()) is not None:
                    replies.append(encode_frame(body, framing, decoder.last_tpdu))
                if replies:
                    await stream.send_all(b"".join(replies))
    except (trio.BrokenResourceError, trio.ClosedResourceError, FrameError):
        return  # the client went away or sent garbage: this connection ends, others go on


async def serve(host: str, port: int, framing: Framing) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            handler = functools.partial(echo, framing=framing)
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, host=host), handler, port
            )
            bound = listeners[0].socket.getsockname()[1]
            print(f"echo server listening on {host}:{bound}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9583, help="0 picks a free port")
    parser.add_argument("--framing", default="binary2", choices=("binary2", "ascii4"))
    parser.add_argument("--tpdu", action="store_true", help="frames carry a 5-byte TPDU")
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.host, args.port, Framing(header=args.framing, tpdu=args.tpdu))
    except OSError as error:
        print(f"echo server: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
