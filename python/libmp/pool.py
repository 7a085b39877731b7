"""libmp.Pool: multiprocessing.Pool's API on a libmp cluster (MPP/1 client).

One I/O thread per pool owns the ZeroMQ DEALER socket: it says HELLO, cuts
calls into chunks as the window allows (docs/PROTOCOL.md 4.1), places the
RESULTs, heartbeats, and notices a lost broker. Callers' threads only queue
jobs and wait on their results; they never touch the socket.

Invariants: each item of a call is answered exactly once (a chunk keeps a
byte per item: a duplicate or late answer is dropped); every wait ends (a
lost broker fails what is outstanding after reconnect_timeout, terminate
fails it at once). Callbacks run on the I/O thread, as multiprocessing runs
them on its result-handler thread: they must not block.

Rejected: a socket shared under a lock by the calling threads (idle pools
must still heartbeat, or the broker drops their queued work); pickle on the
wire (MPP/1 is msgpack: C workers must read the arguments).
"""
import atexit
import collections
import itertools
import logging
import os
import socket
import threading
import time
import traceback
import weakref
from multiprocessing import TimeoutError

import zmq

from . import _proto as P
from .errors import (AuthError, BadArgsError, BrokerLostError, BrokerUnreachableError,
                     CancelledError, make_error)
from .results import (ApplyResult, AsyncResult, IMapIterator, IMapUnorderedIterator,  # noqa: F401
                      MapResult)

__all__ = ["Pool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "IMapUnorderedIterator", "TimeoutError"]

log = logging.getLogger("libmp")

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
_ids = itertools.count(1)
_live_pools = weakref.WeakSet()


@atexit.register
def _terminate_live_pools():
    for pool in list(_live_pools):
        try:
            pool.terminate()
        except Exception:
            pass


# ---- what the I/O thread sends ------------------------------------------------------------


class _Feed:
    """A job's input, cut into chunks on the I/O thread as the window allows."""

    def __init__(self, job, name, mode, items, chunksize, length):
        self.job = job
        self.name = name
        self.mode = mode
        self.it = iter(items)
        self.chunksize = chunksize
        self.length = length  # None: an iterator (imap), known when exhausted
        self.next_index = 0
        self.done = False

    def take(self):
        """(base, items) of the next chunk, or None when the input is over."""
        if self.done:
            return None
        base = self.next_index
        items = []
        try:
            for x in itertools.islice(self.it, self.chunksize):
                items.append(x)
        except Exception as e:  # the caller's iterable raised: as multiprocessing, at that item
            self.done = True
            at, exc = base + len(items), e
            self.next_index = at + 1
            self.job._fail_range(at, 1, lambda i: exc)
            if self.length is None:
                self.job._set_length(at + 1)
            return (base, self._args(items)) if items else None
        items = self._args(items)
        self.next_index += len(items)
        if len(items) < self.chunksize or (self.length is not None and self.next_index >= self.length):
            self.done = True
            if self.length is None:
                self.job._set_length(self.next_index)
        return (base, items) if items else None

    def _args(self, items):
        if self.mode == P.MODE_STAR:
            return [x if isinstance(x, (list, tuple)) else _as_args(x) for x in items]
        return items


def _as_args(x):
    try:
        return tuple(x)
    except TypeError:
        return x  # not iterable: the worker answers BAD_ARGS, Python a TypeError


class _Chunk:
    __slots__ = ("id", "feed", "base", "items", "count", "answered", "left", "frame")

    def __init__(self, feed, base, items, frame):
        self.id = next(_ids)
        self.feed = feed
        self.base = base  # index in the job of items[0]
        self.items = items
        self.count = len(items)
        self.answered = bytearray(self.count)
        self.left = self.count
        self.frame = frame


# ---- the pool -----------------------------------------------------------------------------


class Pool:
    """multiprocessing.Pool on a libmp cluster: the first argument of every
    call is the NAME of a task registered in the cluster's workers.

    Pool(broker, initializer=None, initargs=(), *, heartbeat_ms=1000,
         connect_timeout=10.0, reconnect_timeout=30.0, window=None,
         time_limit=None, curve_key=None, curve_server_key=None, name=None)

    broker: "tcp://host:port" or "ipc://path" (default: $MP_BROKER).
    initializer/initargs: a task NAME run once per executor before its first
    item of this pool (PROTOCOL.md 6). time_limit: seconds one item may run
    (killed past it: TimeLimitError). curve_key: this client's
    NAME.key_secret; curve_server_key: the broker's NAME.key or its 40 Z85
    characters (default: $MP_CURVE_KEY, $MP_CURVE_SERVER_KEY).
    """

    def __init__(self, broker=None, initializer=None, initargs=(), *, heartbeat_ms=1000,
                 connect_timeout=10.0, reconnect_timeout=30.0, window=None, time_limit=None,
                 curve_key=None, curve_server_key=None, name=None, processes=None):
        broker = broker or os.environ.get("MP_BROKER")
        if not broker:
            raise ValueError("Pool: give the broker's address (tcp://host:port) or set MP_BROKER")
        if initializer is not None and not isinstance(initializer, str):
            raise TypeError("initializer must be a task name (str)")
        if not 100 <= int(heartbeat_ms) <= 60000:
            raise ValueError("heartbeat_ms must be 100..60000")
        self._broker = broker
        self._hb = int(heartbeat_ms) / 1000.0
        self._broker_hb = self._hb
        self._reconnect_timeout = float(reconnect_timeout)
        self._window_set = window
        self._time_limit_ms = 0 if not time_limit else max(1, int(round(time_limit * 1000)))
        self._init = P.pack([initializer, list(initargs)]) if initializer else None
        self._curve = None
        curve_key = curve_key or os.environ.get("MP_CURVE_KEY")
        curve_server_key = curve_server_key or os.environ.get("MP_CURVE_SERVER_KEY")
        if curve_key or curve_server_key:
            if not (curve_key and curve_server_key):
                raise ValueError("CURVE needs both curve_key and curve_server_key")
            self._curve = (curve_key, curve_server_key)
        self._name = name or "python@%s:%d" % (socket.gethostname(), os.getpid())
        # limits of WELCOME (PROTOCOL.md 4.1), defaults until it comes
        self._processes = 0
        self._max_message = P.MAX_MESSAGE
        self._max_count = P.MAX_COUNT
        self._max_queued = P.MAX_QUEUED
        self._version = None

        self._state = RUN
        self._lock = threading.Lock()  # _cmds, _jobs, _state
        self._cmds = collections.deque()
        self._jobs = set()  # jobs not finished
        self._idle = threading.Condition(self._lock)
        self._welcomed = threading.Event()
        self._connect_error = None
        self._status_waiters = collections.deque()

        # I/O thread state
        self._feeds = collections.deque()  # feeds with input left
        self._resend = collections.deque()  # (feed, base, items) to send first
        self._chunks = {}  # chunk id -> _Chunk in flight
        self._held = []  # chunks of a lost broker, waiting for the next one
        self._connected = False
        self._lost_at = None
        self._stop = None

        self._ctx = zmq.Context()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sock = None
        self._monitor = None
        try:
            self._open_socket()
        except Exception:
            self._ctx.destroy(linger=0)
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise
        self._thread = threading.Thread(target=self._io_main, name="libmp-pool-io", daemon=True)
        self._thread.start()
        if not self._welcomed.wait(connect_timeout) or self._connect_error:
            err = self._connect_error or BrokerUnreachableError(
                "no broker answered at %s within %.1f s" % (broker, connect_timeout))
            self._shutdown("terminate")
            raise err
        _live_pools.add(self)

    # ---- public API -----------------------------------------------------------------------

    def __repr__(self):
        return "<libmp.Pool state=%s broker=%s processes=%d>" % (self._state, self._broker,
                                                                 self._processes)

    @property
    def processes(self):
        """The cluster's executor count (WELCOME, then each HEARTBEAT)."""
        return self._processes

    @property
    def limits(self):
        """WELCOME's limits: max_message, max_count, max_queued."""
        return {"max_message": self._max_message, "max_count": self._max_count,
                "max_queued": self._max_queued}

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        self._check_running()
        self._check_name(func)
        if kwds:
            raise TypeError("libmp: keyword arguments cannot be sent to a task (MPP/1 has "
                            "positional arguments only)")
        job = ApplyResult(self, func, callback, error_callback)
        self._submit(_Feed(job, func, P.MODE_STAR, [tuple(args)], 1, 1))
        return job

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, P.MODE_MAP, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, P.MODE_MAP, chunksize, callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, P.MODE_STAR, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, P.MODE_STAR, chunksize, callback, error_callback)

    def imap(self, func, iterable, chunksize=1):
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def close(self):
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE

    def terminate(self):
        """Withdraws every call still running (the broker cancels them on its
        workers) and fails what is outstanding with CancelledError."""
        with self._lock:
            self._state = TERMINATE
        if self._thread.is_alive():
            self._shutdown("terminate")

    def join(self, timeout=None):
        """Waits for every call to finish (after close()), then ends the session."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._jobs and self._state == CLOSE:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                self._idle.wait(left)
        self._shutdown("close")

    def status(self, timeout=5.0):
        """The broker's STATUS map (PROTOCOL.md 4.3)."""
        self._check_alive()
        box = {"event": threading.Event()}
        self._command(("status", box))
        if not box["event"].wait(timeout):
            raise TimeoutError
        return box["value"]

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __del__(self):
        try:
            if getattr(self, "_thread", None) is not None and self._thread.is_alive():
                self._shutdown("terminate", wait=False)
        except Exception:
            pass

    # ---- callers' side ----------------------------------------------------------------------

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")
        self._check_alive()

    def _check_alive(self):
        if not self._thread.is_alive():
            raise ValueError("Pool not running (its I/O thread has stopped)")

    @staticmethod
    def _check_name(func):
        if not isinstance(func, str):
            raise TypeError("libmp.Pool calls tasks by name: the first argument is the task's "
                            "name (str), not %r" % (func,))
        if not 1 <= len(func.encode()) <= P.MAX_NAME:
            raise ValueError("a task name is 1..255 octets")

    def _map_async(self, func, iterable, mode, chunksize, callback=None, error_callback=None):
        self._check_running()
        self._check_name(func)
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        n = len(iterable)
        if chunksize is None:
            # Python's rule, on the cluster's executor count
            chunksize, extra = divmod(n, max(1, self._processes) * 4)
            if extra:
                chunksize += 1
        elif chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
        chunksize = max(1, min(chunksize, self._max_count))
        job = MapResult(self, func, n, callback, error_callback)
        if n:
            self._submit(_Feed(job, func, mode, iterable, chunksize, n))
        return job

    def _imap(self, cls, func, iterable, chunksize):
        self._check_running()
        self._check_name(func)
        if chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
        job = cls(self, func)
        self._submit(_Feed(job, func, P.MODE_MAP, iterable, min(chunksize, self._max_count), None))
        return job

    def _submit(self, feed):
        with self._lock:
            self._jobs.add(feed.job)
        self._command(("feed", feed))

    def _command(self, cmd):
        with self._lock:
            self._cmds.append(cmd)
            if self._wake_w is None:
                return  # the I/O thread has ended
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # a wake-up is pending anyway

    def _job_done(self, job):
        with self._lock:
            self._jobs.discard(job)
            if not self._jobs:
                self._idle.notify_all()

    def _shutdown(self, how, wait=True):
        self._command(("stop", how))
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(10.0)
        _live_pools.discard(self)

    # ---- the I/O thread -----------------------------------------------------------------------

    def _open_socket(self):
        s = self._ctx.socket(zmq.DEALER)
        s.linger = 0
        s.sndhwm = 0  # a dropped message would be a lost call: the window bounds memory
        s.rcvhwm = 0
        if self._curve:
            from . import _curve
            _curve.setup_client(s, *self._curve)
            self._monitor = s.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            self._handshake_failures = 0
        s.connect(self._broker)
        self._sock = s
        self._last_heard = time.monotonic()
        self._send(P.C_HELLO, [self._name, int(self._hb * 1000), self._window()])

    def _close_socket(self):
        if self._monitor is not None:
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(0)
            self._monitor = None
        self._sock.close(0)
        self._sock = None

    def _window(self):
        w = self._window_set or max(8, 4 * self._processes)
        return max(1, min(w, self._max_queued))

    def _send(self, cmd, header, *payload):
        try:
            self._sock.send_multipart(P.frames(P.SIG_CLIENT, cmd, header, *payload), copy=False)
        except zmq.ZMQError as e:
            log.warning("libmp pool: send to %s failed: %s", self._broker, e)

    def _io_main(self):
        try:
            self._io_loop()
        except Exception:
            log.error("libmp pool: I/O thread failed:\n%s", traceback.format_exc())
            self._fail_everything(lambda job, i: BrokerLostError(
                "libmp pool I/O thread failed", code=P.E_BROKER_LOST, task=job._name, index=i))
        finally:
            if self._sock is not None:
                self._close_socket()
            self._ctx.destroy(linger=0)
            with self._lock:
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_w = None
                self._idle.notify_all()
            self._welcomed.set()

    def _io_loop(self):
        next_hb = time.monotonic() + self._hb
        while True:
            poller = zmq.Poller()
            poller.register(self._sock, zmq.POLLIN)
            poller.register(self._wake_r, zmq.POLLIN)
            if self._monitor is not None:
                poller.register(self._monitor, zmq.POLLIN)
            sock = self._sock
            while sock is self._sock:
                timeout = max(0.0, next_hb - time.monotonic())
                events = dict(poller.poll(int(timeout * 1000) + 1))
                if self._wake_r in events:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                if self._run_commands():
                    return
                if self._monitor is not None and self._monitor in events:
                    self._on_monitor()
                    if self._stop:
                        return
                if self._sock in events:
                    self._receive()
                if self._sock is not sock:
                    break
                self._pump()
                now = time.monotonic()
                if now >= next_hb:
                    next_hb = now + min(self._hb, self._broker_hb)
                    self._tick(now)

    def _run_commands(self):
        """True when the thread must end."""
        while True:
            with self._lock:
                if not self._cmds:
                    return False
                cmd = self._cmds.popleft()
            if cmd[0] == "feed":
                feed = cmd[1]
                if self._connected or self._lost_at is None or not self._lost_for_good():
                    self._feeds.append(feed)
                else:
                    self._fail_feed(feed, self._broker_lost_error)
            elif cmd[0] == "status":
                self._status_waiters.append(cmd[1])
                self._send(P.C_STATUS, [])
            elif cmd[0] == "stop":
                self._stop = cmd[1]
                if self._connected:
                    self._send(P.C_DISCONNECT, [])  # the broker withdraws what runs
                self._fail_everything(lambda job, i: CancelledError(
                    "the pool was terminated", code=P.E_CANCELLED, task=job._name, index=i))
                return True

    def _pump(self):
        """Sends chunks while the window has room (PROTOCOL.md 4.1)."""
        if not self._connected:
            return
        window = self._window()
        while len(self._chunks) < window:
            if self._resend:
                feed, base, items = self._resend.popleft()
            elif self._feeds:
                feed = self._feeds[0]
                got = feed.take()
                if feed.done:
                    self._feeds.popleft()
                if got is None:
                    continue
                base, items = got
            else:
                return
            self._send_chunk(feed, base, items)

    def _send_chunk(self, feed, base, items):
        try:
            frame = P.pack(items)
        except Exception:
            self._send_encodable(feed, base, items)
            return
        # keep within WELCOME's max-message (headers and init included)
        overhead = 64 + len(feed.name) + (len(self._init) if self._init else 0)
        if len(frame) + overhead > self._max_message:
            if len(items) == 1:
                feed.job._fail_range(base, 1, lambda i: BadArgsError(
                    "item of %d octets over the broker's max-message (%d)" % (
                        len(frame), self._max_message), code=P.E_BAD_ARGS, task=feed.name, index=i))
                return
            half = len(items) // 2
            self._send_chunk(feed, base, items[:half])
            self._send_chunk(feed, base + half, items[half:])
            return
        ch = _Chunk(feed, base, items, frame)
        header = [ch.id, feed.name, feed.mode, ch.count]
        if self._time_limit_ms:
            header += [None, self._time_limit_ms]
        payload = [frame] + ([self._init] if self._init else [])
        self._chunks[ch.id] = ch
        self._send(P.C_SUBMIT, header, *payload)

    def _send_encodable(self, feed, base, items):
        """A chunk with an item msgpack cannot encode: that item fails with
        BadArgsError (multiprocessing: a pickling error), the rest is sent."""
        run = []
        for k, x in enumerate(items):
            try:
                P.pack(x)
            except Exception as e:
                if run:
                    self._send_chunk(feed, base + k - len(run), run)
                    run = []
                why = "cannot encode the item: %s" % e
                feed.job._fail_range(base + k, 1, lambda i, why=why: BadArgsError(
                    why, code=P.E_BAD_ARGS, task=feed.name, index=i))
            else:
                run.append(x)
        if run:
            self._send_chunk(feed, base + len(items) - len(run), run)

    def _receive(self):
        for _ in range(1000):
            try:
                msg = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._last_heard = time.monotonic()
            try:
                cmd, header, payload = P.parse(msg, P.SIG_CLIENT)
                self._on_message(cmd, header, payload)
            except ValueError as e:
                log.warning("libmp pool: malformed message from the broker dropped: %s", e)
            if self._sock is None or self._stop:
                return

    def _on_message(self, cmd, h, payload):
        if cmd == P.B_RESULT:
            self._on_result(h, payload)
        elif cmd == P.B_HEARTBEAT:
            if h and P.is_uint(h[0]):
                self._processes = h[0]
        elif cmd == P.B_FAILED:
            self._on_failed(h)
        elif cmd == P.B_WELCOME:
            self._on_welcome(h)
        elif cmd == P.B_STATUS:
            if len(payload) != 1:
                raise ValueError("STATUS without its map")
            value = P.unpack(P.buf(payload[0]))
            if self._status_waiters:
                box = self._status_waiters.popleft()
                box["value"] = value
                box["event"].set()
        elif cmd == P.B_DISCONNECT:
            why = h[0] if h and isinstance(h[0], str) else ""
            if not self._welcomed.is_set() and why.startswith("refused:"):
                self._connect_error = AuthError("the broker at %s refused this client: %s" % (
                    self._broker, why))
                self._welcomed.set()
                return
            log.warning("libmp pool: broker %s says: %s", self._broker, why[:200])
            self._broker_lost("the broker disconnected: %s" % why[:200])
        else:
            raise ValueError("unknown command 0x%02x" % cmd)

    def _on_welcome(self, h):
        if len(h) < 4 or not all(P.is_uint(v) for v in h[1:4]):
            raise ValueError("bad WELCOME header")
        self._version = h[0]
        if 100 <= h[1] <= 60000:
            self._broker_hb = h[1] / 1000.0
        self._processes = h[2]
        if h[3] >= 4096:
            self._max_message = h[3]
        if len(h) >= 5 and P.is_uint(h[4]) and 1 <= h[4] <= P.MAX_COUNT:
            self._max_count = h[4]
        if len(h) >= 6 and P.is_uint(h[5]) and h[5] >= 1:
            self._max_queued = h[5]
        was_lost = self._lost_at is not None
        self._connected = True
        self._lost_at = None
        if was_lost:
            # PROTOCOL.md 7.1: what the old broker did not answer goes again,
            # each gap as a new chunk; what was answered is never asked again
            log.warning("libmp pool: broker %s answers again; resending %d chunk(s)",
                        self._broker, len(self._held))
            for ch in self._held:
                k = 0
                while k < ch.count:
                    if ch.answered[k]:
                        k += 1
                        continue
                    end = ch.answered.find(1, k)
                    end = ch.count if end < 0 else end
                    self._resend.append((ch.feed, ch.base + k, ch.items[k:end]))
                    k = end
            self._held = []
        self._welcomed.set()

    def _on_result(self, h, payload):
        if (len(h) < 4 or not all(P.is_uint(v) for v in h[:4]) or len(h) >= 5
                or len(payload) != (2 if h[3] else 1)):
            raise ValueError("bad RESULT header or frames")
        cid, base, count, nerrors = h[:4]
        ch = self._chunks.get(cid)
        if ch is None:
            return  # late: a chunk already answered, or failed
        if count < 1 or base + count > ch.count or nerrors > count:
            raise ValueError("RESULT range outside chunk %d" % cid)
        if ch.answered.find(1, base, base + count) >= 0:
            raise ValueError("RESULT answers items of chunk %d twice" % cid)
        values = P.unpack(P.buf(payload[0]))
        if not isinstance(values, list) or len(values) != count:
            raise ValueError("values frame does not hold count values")
        errors = {}
        if nerrors:
            entries = P.unpack(P.buf(payload[1]))
            if not isinstance(entries, list) or len(entries) != nerrors:
                raise ValueError("errors frame does not hold nerrors entries")
            for e in entries:
                if (not isinstance(e, list) or len(e) < 6 or not P.is_uint(e[0]) or e[0] >= count
                        or not P.is_int(e[1]) or not P.is_uint(e[2])):
                    raise ValueError("bad error entry")
                index = ch.base + base + e[0]
                errors[e[0]] = make_error(e[1], e[2], e[3], ch.feed.name,
                                          e[4] if isinstance(e[4], str) else None,
                                          e[5] if P.is_uint(e[5]) else None, index)
        ch.answered[base:base + count] = b"\x01" * count
        ch.left -= count
        if ch.left == 0:
            del self._chunks[cid]
        ch.feed.job._block(ch.base + base, values, errors)

    def _on_failed(self, h):
        if len(h) < 3 or not P.is_uint(h[0]) or not P.is_int(h[1]):
            raise ValueError("bad FAILED header")
        ch = self._chunks.pop(h[0], None)
        if ch is None:
            return
        message = h[2] if isinstance(h[2], str) else str(h[2])
        self._fail_chunk(ch, lambda i: make_error(h[1], None, message, ch.feed.name, None, None, i))

    @staticmethod
    def _fail_chunk(ch, make_exc):
        """Fails the items of ch not answered yet."""
        k = 0
        while k < ch.count:
            if ch.answered[k]:
                k += 1
                continue
            end = ch.answered.find(1, k)
            end = ch.count if end < 0 else end
            ch.feed.job._fail_range(ch.base + k, end - k, make_exc)
            k = end
        ch.left = 0

    def _fail_feed(self, feed, make):
        """Fails the input of feed not sent yet."""
        while True:
            got = feed.take()
            if got is not None:
                base, items = got
                feed.job._fail_range(base, len(items), lambda i: make(feed.job, i))
            if feed.done:
                return

    def _fail_everything(self, make):
        chunks = list(self._chunks.values()) + self._held
        self._chunks, self._held = {}, []
        for ch in chunks:
            self._fail_chunk(ch, lambda i, job=ch.feed.job: make(job, i))
        while self._resend:
            feed, base, items = self._resend.popleft()
            feed.job._fail_range(base, len(items), lambda i, job=feed.job: make(job, i))
        while self._feeds:
            self._fail_feed(self._feeds.popleft(), make)
        with self._lock:
            cmds, self._cmds = list(self._cmds), collections.deque()
        for cmd in cmds:
            if cmd[0] == "feed":
                self._fail_feed(cmd[1], make)

    def _broker_lost_error(self, job, i):
        return BrokerLostError("the broker at %s was lost and no broker answered within %.1f s"
                               % (self._broker, self._reconnect_timeout),
                               code=P.E_BROKER_LOST, task=job._name, index=i)

    def _lost_for_good(self):
        return time.monotonic() - self._lost_at >= self._reconnect_timeout

    def _broker_lost(self, why):
        """The broker is silent or said DISCONNECT: hold what is in flight
        for the next broker (7.1), open a new session."""
        if self._connected:
            log.warning("libmp pool: broker %s lost (%s)", self._broker, why)
            self._connected = False
            self._lost_at = time.monotonic()
            self._held.extend(self._chunks.values())
            self._chunks = {}
        if self._lost_at is not None and self._lost_for_good():
            self._fail_everything(self._broker_lost_error)
        self._close_socket()
        self._open_socket()

    def _tick(self, now):
        silent = now - self._last_heard
        if silent > P.LIVENESS * max(self._hb, self._broker_hb):
            if self._welcomed.is_set():
                self._broker_lost("silent for %.0f ms" % (silent * 1000))
            return
        if self._lost_at is not None and self._lost_for_good():
            self._fail_everything(self._broker_lost_error)
        self._send(P.C_HEARTBEAT, [])

    def _on_monitor(self):
        from zmq.utils.monitor import recv_monitor_message
        while True:
            try:
                ev = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            e = ev["event"]
            if e == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshake_failures = 0
            elif not self._welcomed.is_set():
                self._handshake_failures += 1
                if e == zmq.EVENT_HANDSHAKE_FAILED_AUTH or self._handshake_failures >= 3:
                    self._connect_error = AuthError(
                        "the broker at %s refused this client (CURVE handshake failed: check "
                        "the client's key is in the broker's allow-list clients/ and the "
                        "broker's public key)" % self._broker)
                    self._welcomed.set()
