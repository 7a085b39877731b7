"""MPP/1 constants and framing (docs/PROTOCOL.md sections 3 and 4).

Every message is [signature, command, header, payload...]; the header is one
msgpack array. Nothing here keeps state.
"""
import msgpack

SIG_CLIENT = b"MPC01"
SIG_WORKER = b"MPW01"

# client <-> broker
C_HELLO, C_SUBMIT, C_CANCEL, C_STATUS, C_HEARTBEAT, C_DISCONNECT = 1, 2, 3, 4, 5, 6
B_WELCOME, B_RESULT, B_FAILED, B_STATUS, B_HEARTBEAT, B_DISCONNECT = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86
# worker <-> broker
W_READY, W_RESULT, W_LOST, W_HEARTBEAT, W_DISCONNECT, W_RETURN, W_PARTIAL = 1, 2, 3, 4, 5, 6, 7
B_TASK, B_WHEARTBEAT, B_WDISCONNECT, B_WCANCEL = 0x81, 0x82, 0x83, 0x84

MODE_MAP, MODE_STAR = 0, 1

# error kinds (the `kind` of an error entry) and the codes that go with them
KIND_TASK, KIND_WORKER_LOST, KIND_UNKNOWN_TASK, KIND_BAD_ARGS, KIND_TIME_LIMIT, KIND_CANCELLED = range(6)

E_UNKNOWN_TASK = -4101
E_WORKER_LOST = -4102
E_TASK = -4103
E_BROKER_LOST = -4104
E_BAD_ARGS = -4105
E_BAD_REQUEST = -4107
E_OVERLOADED = -4108
E_CANCELLED = -4109
E_SHUTDOWN = -4110
E_AUTH = -4112
E_BROKER_UNREACHABLE = -4114
E_TIME_LIMIT = -4116

KIND_CODE = {KIND_TASK: E_TASK, KIND_WORKER_LOST: E_WORKER_LOST, KIND_UNKNOWN_TASK: E_UNKNOWN_TASK,
             KIND_BAD_ARGS: E_BAD_ARGS, KIND_TIME_LIMIT: E_TIME_LIMIT, KIND_CANCELLED: E_CANCELLED}
CODE_KIND = {v: k for k, v in KIND_CODE.items() if k != KIND_TASK}

MAX_NAME = 255
MAX_NAMES = 4096
MAX_COUNT = 1048576
MAX_MESSAGE = 64 << 20
MAX_QUEUED = 4096
MAX_HEADER = 4096
MAX_READY_HEADER = 65536
LIVENESS = 3
DEFAULT_HEARTBEAT_MS = 1000

_packer_kw = dict(use_bin_type=True)


def pack(obj):
    return msgpack.packb(obj, **_packer_kw)


def unpack(data):
    """One msgpack value from bytes or a buffer; raises ValueError on
    anything malformed (extra bytes included)."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception as e:  # msgpack raises several types; all mean "malformed"
        raise ValueError("malformed msgpack: %s" % e) from None


def frames(sig, cmd, header, *payload):
    return [sig, bytes((cmd,)), pack(header)] + list(payload)


def parse(msg, sig, max_header=MAX_HEADER):
    """(cmd, header list, payload frames) of a received message, or raises
    ValueError. msg is a list of zmq.Frame or bytes."""
    if len(msg) < 3 or len(msg) > 5:
        raise ValueError("%d frames" % len(msg))
    b = [f.bytes if hasattr(f, "bytes") and len(f) < 4096 else f for f in msg[:3]]
    b0 = b[0] if isinstance(b[0], bytes) else b[0].bytes
    b1 = b[1] if isinstance(b[1], bytes) else b[1].bytes
    if b0 != sig:
        raise ValueError("bad signature")
    if len(b1) != 1:
        raise ValueError("bad command frame")
    hb = b[2] if isinstance(b[2], bytes) else b[2].bytes
    if len(hb) > max_header:
        raise ValueError("header of %d octets" % len(hb))
    header = unpack(hb)
    if not isinstance(header, list):
        raise ValueError("header is not an array")
    return b1[0], header, msg[3:]


def buf(frame):
    """The bytes of a payload frame without a copy where possible."""
    return frame.buffer if hasattr(frame, "buffer") else frame


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)
