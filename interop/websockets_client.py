"""Python `websockets` (compression on) against a melody `server` example.

    python3 websockets_client.py ws://127.0.0.1:PORT broadcast|echo [MODE]

broadcast: three clients that offer permessage-deflate and one that does not join the
room at `/ws`; the plain one sends JSON chat messages (200-2,000 bytes) and a short
one, and every client must get each, in order. The compressing clients only send
uncompressed frames here, so this runs before the server inflates anything.

echo: a compressing client sends messages of every length class to `/echo` (so its
own frames are compressed) and must get each back: this needs the server's inbound
inflate.

MODE (shared or dedicated) is the server's `--compression`: the agreed parameters
are checked against it. Every wait is bounded; the script exits non-zero on failure
and prints one line per check.
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.extensions import permessage_deflate

TIMEOUT = 10

# Counts the compressed frames the clients inflated: proof the server compressed.
inflated_frames = 0
_decode = permessage_deflate.PerMessageDeflate.decode


def _counting_decode(self, frame, *, max_size=None):
    global inflated_frames
    if frame.rsv1:
        inflated_frames += 1
    return _decode(self, frame, max_size=max_size)


permessage_deflate.PerMessageDeflate.decode = _counting_decode


def chat_messages():
    """JSON chat messages of 200 to 2,000 bytes, and one below the threshold."""
    out = []
    for i, size in enumerate([200, 450, 800, 1200, 1600, 2000]):
        body = {"user": f"user{i % 3}", "room": "lobby", "text": ""}
        filler = "hello from the lobby, how is everyone doing today? "
        while len(json.dumps(body)) < size:
            body["text"] += filler
        out.append(json.dumps(body)[:size])
    out.append("hi")
    return out


def agreed(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions", "")


def check_agreed(ws, mode):
    header = agreed(ws)
    assert header.startswith("permessage-deflate"), f"not agreed: {header!r}"
    if mode == "shared":
        assert "server_no_context_takeover" in header, header


async def broadcast(base, mode):
    receivers = [await connect(f"{base}/ws", compression="deflate") for _ in range(3)]
    sender = await connect(f"{base}/ws", compression=None)
    for ws in receivers:
        check_agreed(ws, mode)
    assert agreed(sender) == "", "a client that offers nothing gets nothing"
    print(f"broadcast: 101 agreed {agreed(receivers[0])!r}")
    messages = chat_messages()
    for text in messages:
        await sender.send(text)
    for ws in receivers + [sender]:
        for text in messages:
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert got == text, f"got {got[:40]!r}, wanted {text[:40]!r}"
    # Six of the seven messages reach the threshold; each of three receivers inflates them.
    assert inflated_frames == 3 * (len(messages) - 1), inflated_frames
    print(f"broadcast: {len(messages)} messages to 4 clients, {inflated_frames} compressed frames inflated")
    for ws in receivers + [sender]:
        await ws.close()


async def echo(base, mode):
    ws = await connect(f"{base}/echo", compression="deflate", max_size=2**20)
    check_agreed(ws, mode)
    sizes = [0, 1, 125, 126, 65535, 65536]
    for size in sizes:
        data = bytes((i * 7 + i // 251) % 256 for i in range(size))
        await ws.send(data)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert got == data, f"echo of {size} bytes differs"
    for text in chat_messages():
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == text
    print(f"echo: {len(sizes)} binary sizes and 7 texts echoed, {inflated_frames} compressed frames inflated")
    await ws.close()


async def main():
    base, test = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "shared"
    await asyncio.wait_for({"broadcast": broadcast, "echo": echo}[test](base, mode), 60)


asyncio.run(main())
