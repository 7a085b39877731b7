#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of the stateful fuzz targets:
tests/fuzz/corpus/broker/ (valid MPP/1 conversations in fuzz_broker.c's
script format), tests/fuzz/corpus/client/ (a broker's answers to the calls
fuzz_client.c has in flight), tests/fuzz/corpus/manager/ (Manager calls,
fuzz_manager.c's format), tests/fuzz/corpus/worker/ (a broker's TASKs,
CANCELs and DISCONNECTs, and partial-result slices, fuzz_worker.c's format)
and tests/fuzz/corpus/cli/ (mp-client input
lines and a broker STATUS, fuzz_cli.c's format), so that the fuzzers start from input
the code accepts and mutate from there. Standard library only (a tiny
msgpack writer)."""
import os
import struct
import sys


def mp(v):
    if v is None:
        return b"\xc0"
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, dict):
        out = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return out + b"".join(mp(k) + mp(x) for k, x in v.items())
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, list):
        out = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return out + b"".join(mp(x) for x in v)
    raise TypeError(v)


C, W = 0, 4  # op bits: a client or a worker


def msg(peer, role, cmd, header, *payload, tick=False):
    op = peer | role | (len(payload) << 3) | (0x40 if tick else 0)
    out = bytes([op, cmd])
    for frame in (mp(header),) + payload:
        out += struct.pack(">H", len(frame)) + frame
    return out


def ready(peer, names=("sq",), credit=4):
    return msg(peer, W, 0x01, [list(names), 2, credit, "host", 100 + peer])


hello = msg(0, C, 0x01, ["pool", 1000, 8])
err = mp([[0, -1, 0, "boom", "host", 101]])

seeds = {
    "result": ready(1) + hello
    + msg(0, C, 0x02, [1, "sq", 0, 3], mp([1, 2, 3]))
    + msg(1, W, 0x02, [1, 3, 0], mp([1, 4, 9])),
    "partial_return": ready(1) + hello
    + msg(0, C, 0x02, [1, "sq", 0, 4], mp([1, 2, 3, 4]))
    + msg(1, W, 0x07, [1, 0, 2, 0], mp([1, 4]))
    + msg(1, W, 0x06, [1, 3])
    + msg(1, W, 0x02, [1, 1, 0], mp([9]))
    + msg(1, W, 0x02, [2, 1, 0], mp([16])),
    "lost_errors": ready(1) + ready(2) + hello
    + msg(0, C, 0x02, [1, "sq", 0, 3], mp([1, 2, 3]))
    + msg(1, W, 0x03, [1, 1, "killed by signal 9 (SIGKILL)"])
    + msg(2, W, 0x02, [2, 1, 1], mp([None]), err)
    + msg(1, W, 0x03, [3, 0, "over its time limit", -4116], tick=True),
    "cancel_status": ready(1) + hello
    + msg(0, C, 0x02, [1, "sq", 1, 2, None, 500], mp([[1, 2], [3, 4]]), mp(["init", []]))
    + msg(0, C, 0x03, [1])
    + msg(0, C, 0x04, [])
    + msg(1, W, 0x03, [1, 0, "cancelled: killed", -4109])
    + msg(1, W, 0x04, [0])
    + msg(0, C, 0x06, [])
    + msg(1, W, 0x05, []),
    "unknown_task": ready(1, ("other",)) + hello
    + msg(0, C, 0x02, [1, "sq", 0, 1], mp([7]))
    + msg(3, W, 0x02, [9, 1, 0], mp([1]))
    + msg(2, C, 0x02, [1, "sq", 0, 1], mp([7])),
    "returned_whole": ready(1, credit=2) + ready(2) + hello
    + msg(0, C, 0x02, [1, "sq", 0, 2], mp([1, 2]))
    + msg(0, C, 0x02, [2, "sq", 0, 2], mp([3, 4]))
    + msg(1, W, 0x06, [2])
    + msg(1, W, 0x01, [["sq"], 2, 2, "host", 101])
    + msg(2, W, 0x02, [3, 2, 0], mp([9, 16]), tick=True),
}



def stream(conn, role, cmd, header, *payload, tick=False):
    """An MPP/1 message on stream peer conn (0, 1), framed as PROTOCOL.md
    9.2 says, in fuzz_broker.c's format for raw stream bytes (op bit 7)."""
    frames = [b"MPW01" if role == W else b"MPC01", bytes([cmd]), mp(header)] + list(payload)
    body = bytes([len(frames)]) + b"".join(struct.pack(">I", len(f)) + f for f in frames)
    data = struct.pack(">I", len(body)) + body
    return bytes([0x80 | conn | (0x40 if tick else 0)]) + struct.pack(">H", len(data)) + data


# a worker on a stream, a client on a stream and one on the ROUTER; then
# half a message, and a stream that is not MPP/1 at all
seeds["stream_peers"] = (
    stream(0, W, 0x01, [["sq"], 2, 4, "host", 200]) + hello
    + msg(0, C, 0x02, [1, "sq", 0, 3], mp([1, 2, 3]))
    + stream(0, W, 0x02, [1, 3, 0], mp([1, 4, 9]))
    + stream(1, C, 0x01, ["pool", 1000, 8])
    + stream(1, C, 0x02, [2, "sq", 0, 1], mp([5]), tick=True)
    + stream(0, W, 0x02, [2, 1, 0], mp([25]))[:9]
    + bytes([0x81, 0x00, 0x08]) + b"GET / HT")

status = {
    "version": "0.1.0", "uptime_ms": 1234, "clients": 1, "queued": {"sq": 2},
    "done": 10, "failed": 1, "lost": 0, "refused": 0, "malformed": 3, "returned": 1,
    "workers": [{"id": 1, "host": "host", "pid": 101, "processes": 2, "credit": 4,
                 "done": 10, "failed": 1,
                 "running": [{"dispatch": 5, "task": "sq", "count": 3, "attempt": 1}],
                 "names": ["sq", "add"]}],
}
cli = {
    "map_ints": b"\x00" + b"1\n2\n\n-3\n1e3\n\"x\"\n",
    "star_tuples": b"\x01" + b'[1, 2]\n[\"a\", [1, 2.5], {\"k\": null}]\n[]\n',
    "with_input_status": b"\x03" + b'[true, false]\n{"a": [1, {"b": "\\u00e9"}]}\n' + b"\x00" + mp(status),
    "status_only": b"\x00\x00" + mp(status),
}

def cmsg(cmd, header, *payload, chunk=None):
    """A broker-to-client message in fuzz_client.c's format; chunk k: the
    header's first byte, then the id of chunk k in flight, then the rest."""
    op = len(payload)
    h = mp(header)
    if chunk is not None:
        op |= 8 | (chunk << 4)
    out = bytes([op, cmd])
    for frame in (h,) + payload:
        out += struct.pack(">H", len(frame)) + frame
    return out


def res(chunk, base, count, nerrors, values, errors=None):
    # [chunk-id base count nerrors]: the array header, then (the id), then the rest
    head = bytes([0x94]) + mp(base) + mp(count) + mp(nerrors)
    frames = (mp(values),) + ((mp(errors),) if errors else ())
    op = len(frames) | 8 | (chunk << 4)
    out = bytes([op, 0x82])
    for frame in (head,) + frames:
        out += struct.pack(">H", len(frame)) + frame
    return out


client = {
    "whole": res(0, 0, 3, 0, [0, 1, 4]) + res(1, 0, 3, 0, [9, 16, 25]) + res(2, 0, 1, 0, [25]),
    "pieces": res(0, 1, 2, 0, [1, 4]) + res(0, 0, 1, 0, [0]) + res(1, 2, 1, 0, [25])
    + res(1, 0, 2, 1, [None, 16], [[0, -1, 0, "boom", "host", 101]]),
    "failed": bytes([8, 0x83]) + struct.pack(">H", 1 + len(mp(-4101)) + len(mp("unknown task")))
    + bytes([0x93]) + mp(-4101) + mp("unknown task")
    + cmsg(0x85, [4]) + res(2, 0, 1, 0, [25]),
    "welcome_status_disconnect": cmsg(0x81, ["9.9", 1000, 4, 1 << 20, 100, 16])
    + cmsg(0x84, [], mp({"done": 1})) + res(0, 0, 3, 0, [0, 1, 4])
    + cmsg(0x86, ["broker going away"]),
}

def mmsg(peer, cmd, body):
    """A message to the Manager server in fuzz_manager.c's format."""
    b = mp(body)
    return bytes([peer, cmd]) + struct.pack(">H", len(b)) + b


CALL, HELLO = 3, 1
manager = {
    "dict": mmsg(0, CALL, [1, 1, 1, None, "d"])
    + b"".join(mmsg(0, CALL, [2 + i, 2, slot, "k", i]) for i, slot in enumerate((1, 2, 3)))
    + mmsg(0, CALL, [9, 3, 2, "k"]) + mmsg(0, CALL, [10, 16, 2, "n", 5])
    + mmsg(0, CALL, [11, 10, 2]) + mmsg(0, CALL, [12, 18, 2, "k", 1, 2])
    + mmsg(0, CALL, [13, 12, 2, "k"]) + mmsg(0, CALL, [14, 15, 2]),
    "list": mmsg(0, CALL, [1, 1, 2, None, "l"])
    + mmsg(0, CALL, [2, 23, 2, "x"]) + mmsg(0, CALL, [3, 24, 2, [1, 2, 3]])
    + mmsg(0, CALL, [4, 25, 2, -1]) + mmsg(0, CALL, [5, 33, 2, 0, 2])
    + mmsg(0, CALL, [6, 27, 2, 0, "y"]) + mmsg(0, CALL, [7, 28, 2, 1])
    + mmsg(0, CALL, [8, 32, 2]) + mmsg(0, CALL, [9, 35, 2, "x"]),
    "queue_ns": mmsg(0, CALL, [1, 1, 4, None, "q"]) + mmsg(0, CALL, [2, 20, 1, "item"])
    + mmsg(0, CALL, [3, 22, 1]) + mmsg(0, CALL, [4, 21, 1])
    + mmsg(0, CALL, [5, 1, 3, None, "ns"]) + mmsg(0, CALL, [6, 2, 3, "attr", 1.5]),
    "handshake": mmsg(1, HELLO, []) + mmsg(1, 2, ["x" * 32])
    + mmsg(1, CALL, [1, 3, 1, "k"]) + mmsg(0, HELLO, []) + mmsg(0, 2, ["short"]),
}

def raw(conn, data):
    """Bytes written as they are on a connection (fuzz_manager_stream.c)."""
    return bytes([conn | 2, 0]) + struct.pack(">H", len(data)) + data


# fuzz_manager_stream.c reads the same messages (op bit 0: the connection),
# and raw bytes: half a frame finished by the next write, a wrong signature,
# a length over the limit, a body that is not an array
manager_stream = dict(manager)
manager_stream.update({
    "split_frame": raw(0, struct.pack(">I", 6 + len(mp([1, 1, 1, None, "d"]))) + b"MPM01")
    + raw(0, bytes([CALL]) + mp([1, 1, 1, None, "d"])) + mmsg(0, CALL, [2, 7, 1]),
    "bad_frames": raw(1, b"GET / HTTP/1.1\r\n\r\n") + raw(0, struct.pack(">I", 0xffffffff))
    + raw(0, struct.pack(">I", 7) + b"MPM01" + bytes([CALL, 5])),
    "unauth_big": raw(1, struct.pack(">I", 5000) + b"MPM01" + bytes([HELLO]) + b"\x90" * 200),
})


def wmsg(cmd, header, *payload, op=0):
    """A broker-to-worker message in fuzz_worker.c's format."""
    out = bytes([op | len(payload), cmd])
    for frame in (mp(header),) + payload:
        out += struct.pack(">H", len(frame)) + frame
    return out


def raw_slice(values, errors, start):
    """Command 0xEE: mp__partial_slice on values (header) and errors."""
    v, e = mp(values), bytes([0xDD, 0, 0, 0, len(errors)]) + b"".join(mp(x) for x in errors)
    return bytes([1 | (start << 4), 0xEE]) + struct.pack(">H", len(v)) + v + struct.pack(">H", len(e)) + e


worker = {
    "tasks_cancel": wmsg(0x81, [1, "square", 0, 3, 1], mp([1, 2, 3]))
    + wmsg(0x81, [2, "square", 1, 2, 1, None, 500], mp([[1, 2], [3, 4]]), mp(["init", []]))
    + wmsg(0x84, [1]) + wmsg(0x82, []) + wmsg(0x84, [99]),
    "disconnect": wmsg(0x81, [3, "add", 0, 1, 2], mp([5])) + wmsg(0x83, ["unknown worker: READY first"])
    + wmsg(0x83, ["broker shutting down"]),
    "slice": raw_slice(list(range(12)), [[1, -1, 0, "boom", "h", 1], [9, -2, 3, "bad", "h", 1]], 0)
    + raw_slice([None, "x", [1, 2], {"k": 1.5}] * 3, [[2, 5, 0, "e", "h", 7]], 2),
}

top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
for sub, corpus in (("broker", seeds), ("cli", cli), ("client", client), ("manager", manager),
                    ("manager_stream", manager_stream), ("worker", worker)):
    out = os.path.join(top, sub)
    os.makedirs(out, exist_ok=True)
    for name, data in corpus.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(corpus)} seeds in {out}")
