"""A zero-latency OpenAI-compatible chat server for client benchmarks (``benchmarks/generate.py --scale``).

It answers every ``POST .../chat/completions`` at once with one canned, valid per-level answer, so
that the *client* is what a benchmark measures. It is a bare ``asyncio.Protocol`` speaking
HTTP/1.1 with keep-alive (request head up to the blank line, body by ``Content-Length``), run in
its own process (the other core), with no JSON parsing: on this 2-core machine it serves far more
requests per second than any Python client sends (the benchmark prints its own ceiling).

    python benchmarks/zero_latency_server.py        # prints "port N", serves until killed
"""

from __future__ import annotations

import asyncio
import json
import sys

ANSWER = {"passages": ["A canned passage of the zero-latency benchmark server, long enough to pass every check "
                       "that a generated passage must pass before it is stored as done by the pipeline."]}
BODY = json.dumps({"id": "zl", "object": "chat.completion", "model": "zero-latency",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(ANSWER)},
                                "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 60, "completion_tokens": 40, "total_tokens": 100}}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode()
            + b"\r\n\r\n" + BODY)


class ChatProtocol(asyncio.Protocol):
    """One connection: answers each complete request in the buffer with :data:`RESPONSE`."""

    def connection_made(self, transport) -> None:
        self.transport, self.buffer = transport, bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in bytes(self.buffer[:head_end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            del self.buffer[:end]
            self.transport.write(RESPONSE)


async def serve() -> None:
    server = await asyncio.get_running_loop().create_server(ChatProtocol, "127.0.0.1", 0, backlog=4096)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
