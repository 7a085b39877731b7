"""libmp.worker: serves Python functions as MPP/1 tasks (docs/PROTOCOL.md 4.4).

    python -m libmp.worker tcp://127.0.0.1:5555 mymodule:square other=mymodule:f -p 4

Shape (as mp-worker, PROTOCOL.md 2 and 9): a *supervisor* process holds the
DEALER connection to the broker, heartbeats and never runs task code; N
*executor* processes, forked from it, run the dispatches, one at a time each,
over a socketpair. Each executor publishes the index of the item it runs in a
shared page, so the supervisor can say which item a dead executor was on
(LOST), and kill one that overruns the dispatch's time limit (7.2) or whose
dispatch is cancelled (B-WCANCEL). A task that raises gives an error item;
one that kills its process costs that executor, which is replaced.

Credit is one dispatch per executor: nothing waits in a local queue that
another worker could start, so this worker never needs RETURN or PARTIAL
(both are a worker's option). The price: an executor idles for one round
trip between dispatches, small next to a Python task.

Rejected: running tasks in the supervisor (a task that never returns, or
calls os._exit, would silence the heartbeats or kill the worker; a time limit
could not be enforced); multiprocessing.Pool underneath (it hangs when a
worker dies, which is what this must survive).
"""
import argparse
import importlib
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import time
import traceback

import msgpack
import zmq

from . import _proto as P
from .errors import TaskFailure  # one class, also when this module runs as __main__

log = logging.getLogger("libmp.worker")

_SLOT = struct.Struct("<QI4x")  # per executor: item sequence number, index of the item running


def load_tasks(specs):
    """{name: function} from "module:function" or "name=module:function"."""
    tasks = {}
    for spec in specs:
        name, _, target = spec.rpartition("=")
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError("task %r: write module:function or name=module:function" % spec)
        fn = importlib.import_module(module)
        for part in attr.split("."):
            fn = getattr(fn, part)
        if not callable(fn):
            raise ValueError("task %r: %s is not callable" % (spec, target))
        name = name or attr.rsplit(".", 1)[-1]
        if not 1 <= len(name.encode()) <= P.MAX_NAME:
            raise ValueError("task name %r: 1..255 octets" % name)
        tasks[name] = fn
    if not tasks:
        raise ValueError("no task to serve")
    if len(tasks) > P.MAX_NAMES:
        raise ValueError("more than %d tasks" % P.MAX_NAMES)
    return tasks


# ---- executor ------------------------------------------------------------------------------


def _recv_exact(f, n):
    data = f.read(n)
    if data is None or len(data) != n:
        raise EOFError
    return data


def _message_of(e):
    text = str(e)
    return "%s: %s" % (type(e).__name__, text) if text else type(e).__name__


def _error_of(e):
    """(code, message) of a task's exception."""
    if isinstance(e, TaskFailure):
        return e.code, e.message
    return P.E_TASK, _message_of(e)


class _Executor:
    """Runs dispatches in a child process; the loop of executor_main."""

    def __init__(self, tasks, slot, area, host):
        self.tasks = tasks
        self.slot = slot
        self.area = area
        self.host = host
        self.pid = os.getpid()
        self.inits_done = set()
        self.seq = 0

    def run(self, name, mode, attempt, items_bytes, init_bytes):
        """(values frame, errors frame or None, nerrors)."""
        try:
            items = msgpack.unpackb(items_bytes, raw=False, strict_map_key=False, use_list=True)
        except Exception:
            items = None
        errors = []
        fn = self.tasks.get(name)
        init_error = None
        if fn is None:
            init_error = (P.E_UNKNOWN_TASK, P.KIND_UNKNOWN_TASK, "unknown task: %s" % name)
        elif init_bytes is not None and init_bytes not in self.inits_done:
            init_error = self.run_init(init_bytes)
        if not isinstance(items, list):
            return P.pack([None]), P.pack([[0, P.E_BAD_ARGS, P.KIND_BAD_ARGS, "malformed items",
                                            self.host, self.pid]]), 1
        values = []
        for i, x in enumerate(items):
            self.seq += 1
            _SLOT.pack_into(self.area, self.slot * _SLOT.size, self.seq, i)
            if init_error is not None:
                values.append(None)
                errors.append([i, init_error[0], init_error[1], init_error[2], self.host, self.pid])
                continue
            try:
                if mode == P.MODE_STAR:
                    if not isinstance(x, list):
                        values.append(None)
                        errors.append([i, P.E_BAD_ARGS, P.KIND_BAD_ARGS,
                                       "%s: starmap item is not an argument tuple (array)" % name,
                                       self.host, self.pid])
                        continue
                    values.append(fn(*x))
                else:
                    values.append(fn(x))
            except Exception as e:
                log.debug("task %s item %d failed:\n%s", name, i, traceback.format_exc())
                code, message = _error_of(e)
                values.append(None)
                errors.append([i, code, P.KIND_TASK, message, self.host, self.pid])
        try:
            vframe = P.pack(values)
        except Exception:
            vframe = self.pack_each(values, errors)
        eframe = None
        if errors:
            errors.sort(key=lambda e: e[0])
            eframe = P.pack(errors)
        return vframe, eframe, len(errors)

    def pack_each(self, values, errors):
        """The values frame when a value cannot be encoded: that item fails
        (multiprocessing: MaybeEncodingError)."""
        parts = []
        for i, v in enumerate(values):
            try:
                parts.append(P.pack(v))
            except Exception as e:
                parts.append(P.pack(None))
                errors.append([i, P.E_TASK, P.KIND_TASK,
                               "MaybeEncodingError: cannot encode the result %r: %s" % (
                                   type(v).__name__, e), self.host, self.pid])
        head = msgpack.Packer().pack_array_header(len(parts))
        return head + b"".join(parts)

    def run_init(self, init_bytes):
        """PROTOCOL.md 6: the init task once per executor per init frame;
        None or (code, kind, message) for every item."""
        try:
            init = msgpack.unpackb(init_bytes, raw=False, strict_map_key=False)
            iname, iargs = init[0], init[1]
            if not isinstance(iname, str) or not isinstance(iargs, list):
                raise ValueError
        except Exception:
            return (P.E_BAD_ARGS, P.KIND_BAD_ARGS, "malformed init frame")
        fn = self.tasks.get(iname)
        if fn is None:
            return (P.E_UNKNOWN_TASK, P.KIND_UNKNOWN_TASK, "unknown init task: %s" % iname)
        try:
            fn(*iargs)
        except Exception as e:
            code, message = _error_of(e)
            return (code, P.KIND_TASK, "initializer %s failed: %s" % (iname, message))
        self.inits_done.add(init_bytes)
        return None


def _executor_main(sock, tasks, slot, area, host, maxtasks):
    """The child's loop: one request, one reply, until EOF (or maxtasks)."""
    try:
        import ctypes  # die with the supervisor, even mid-task (Linux)
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ex = _Executor(tasks, slot, area, host)
    rf = sock.makefile("rb")
    done = 0
    while True:
        try:
            (n,) = struct.unpack("<I", _recv_exact(rf, 4))
            name, mode, attempt, items_bytes, init_bytes = msgpack.unpackb(
                _recv_exact(rf, n), raw=False)
        except (EOFError, OSError):
            return 0
        vframe, eframe, nerrors = ex.run(name, mode, attempt, items_bytes, init_bytes)
        reply = P.pack([vframe, eframe, nerrors])
        sock.sendall(struct.pack("<I", len(reply)) + reply)
        done += 1
        if maxtasks and done >= maxtasks:
            return 0  # replaced by the supervisor (maxtasksperchild)


# ---- supervisor ----------------------------------------------------------------------------


class _Exec:
    """The supervisor's record of one executor."""

    def __init__(self, slot):
        self.slot = slot
        self.pid = 0
        self.sock = None
        self.job = None  # (session, dispatch-id, time-limit ms) of what it runs
        self.seq_seen = 0
        self.seen_at = 0.0
        self.kill_code = 0  # the lost-code of a kill we made: TIME_LIMIT or CANCELLED
        self.kill_cause = None
        self.dispatches = 0


def _cause_of(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            sname = signal.Signals(sig).name
        except ValueError:
            sname = "signal %d" % sig
        return "killed by signal %d (%s)" % (sig, sname)
    if os.WIFEXITED(status):
        return "exit status %d" % os.WEXITSTATUS(status)
    return "ended (status %d)" % status


class Worker:
    def __init__(self, broker, tasks, processes=None, heartbeat_ms=1000, maxtasksperchild=0,
                 curve_key=None, curve_server_key=None):
        self.broker = broker
        self.tasks = tasks
        self.names = sorted(tasks)
        self.n = processes or os.cpu_count() or 1
        self.hb = heartbeat_ms / 1000.0
        self.broker_hb = None  # the broker's interval, as measured between its heartbeats
        self.maxtasks = maxtasksperchild
        self.curve = (curve_key, curve_server_key) if curve_key else None
        self.host = socket.gethostname()
        self.area = mmap.mmap(-1, max(mmap.PAGESIZE, _SLOT.size * self.n))
        self.ex = [_Exec(i) for i in range(self.n)]
        self.queue = []  # dispatches waiting for an executor (only after a reconnect)
        self.session = 0
        self.stopping = False
        self.ctx = None
        self.sock = None

    # ---- executors
    def spawn(self, e):
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                parent.close()
                code = _executor_main(child, self.tasks, e.slot, self.area, self.host, self.maxtasks)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        child.close()
        e.pid, e.sock, e.job, e.kill_code, e.kill_cause = pid, parent, None, 0, None
        e.dispatches = 0
        _SLOT.pack_into(self.area, e.slot * _SLOT.size, 0, 0)
        e.seq_seen = 0

    def reap(self, e):
        """Waits for a dead executor; its exit status as a cause."""
        e.sock.close()
        e.sock = None
        status = 0
        for _ in range(200):
            pid, status = os.waitpid(e.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.005)
        else:
            os.kill(e.pid, signal.SIGKILL)
            _, status = os.waitpid(e.pid, 0)
        e.pid = 0
        return _cause_of(status)

    def on_executor(self, e):
        try:
            head = e.sock.recv(4, socket.MSG_WAITALL)
            if len(head) != 4:
                raise EOFError
            (n,) = struct.unpack("<I", head)
            data = bytearray(n)
            view, got = memoryview(data), 0
            while got < n:
                k = e.sock.recv_into(view[got:], n - got)
                if not k:
                    raise EOFError
                got += k
        except (EOFError, OSError):
            self.executor_died(e)
            return
        job, e.job = e.job, None
        vframe, eframe, nerrors = msgpack.unpackb(data, raw=False)
        if job is not None and job[0] == self.session:
            self.send(P.W_RESULT, [job[1], self.count_of(vframe), nerrors],
                      vframe, *([eframe] if nerrors else []))
        e.dispatches += 1
        if self.maxtasks and e.dispatches >= self.maxtasks:
            self.reap(e)  # it exits after its reply (maxtasksperchild)
            self.spawn(e)
        self.assign()

    @staticmethod
    def count_of(vframe):
        b = vframe[0]
        if b & 0xF0 == 0x90:
            return b & 0x0F
        return struct.unpack(">H" if b == 0xDC else ">I", vframe[1:3] if b == 0xDC else vframe[1:5])[0]

    def executor_died(self, e):
        job = e.job
        cause = self.reap(e)
        if job is not None and job[0] == self.session:
            seq, index = _SLOT.unpack_from(self.area, e.slot * _SLOT.size)
            code = e.kill_code
            if code:
                cause = e.kill_cause
            log.warning("executor %d (dispatch %d, item %d): %s", e.slot, job[1], index, cause)
            self.send(P.W_LOST, [job[1], index, cause] + ([code] if code else []))
        elif job is None and not self.stopping:
            log.warning("executor %d: %s", e.slot, cause)
        if not self.stopping:
            self.spawn(e)
            self.assign()

    def assign(self):
        for e in self.ex:
            if not self.queue:
                return
            if e.job is None and e.sock is not None:
                session, dispatch, name, mode, attempt, limit, items, init = self.queue.pop(0)
                req = P.pack([name, mode, attempt, items, init])
                e.job = (session, dispatch, limit)
                e.seq_seen, e.seen_at = -1, time.monotonic()
                try:
                    e.sock.sendall(struct.pack("<I", len(req)) + req)
                except OSError:
                    pass  # it died: its EOF reports it

    def check_limits(self, now):
        for e in self.ex:
            if e.job is None or not e.job[2] or e.kill_code:
                continue
            seq, _ = _SLOT.unpack_from(self.area, e.slot * _SLOT.size)
            if seq != e.seq_seen:
                e.seq_seen, e.seen_at = seq, now
            elif now - e.seen_at > e.job[2] / 1000.0:
                e.kill_code = P.E_TIME_LIMIT
                e.kill_cause = "over the time limit of %d ms" % e.job[2]
                os.kill(e.pid, signal.SIGKILL)

    # ---- the broker
    def open_socket(self):
        s = self.ctx.socket(zmq.DEALER)
        s.linger = 0
        s.sndhwm = 0
        s.rcvhwm = 0
        s.reconnect_ivl = 100
        s.reconnect_ivl_max = 5000
        s.maxmsgsize = P.MAX_MESSAGE
        if self.curve:
            from . import _curve
            _curve.setup_client(s, *self.curve)
        s.connect(self.broker)
        self.sock = s
        self.session += 1
        self.last_heard = time.monotonic()
        self.queue = []
        self.send_ready()

    def send(self, cmd, header, *payload):
        try:
            self.sock.send_multipart(P.frames(P.SIG_WORKER, cmd, header, *payload), copy=False)
        except zmq.ZMQError as e:
            log.warning("send to broker failed: %s", e)

    def send_ready(self):
        self.send(P.W_READY, [self.names, self.n, self.n, self.host, os.getpid()])

    def reconnect(self, why):
        log.warning("broker %s %s; reconnecting", self.broker, why)
        self.sock.close(0)
        self.open_socket()

    def on_broker(self):
        for _ in range(1000):
            try:
                msg = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            now = time.monotonic()
            try:
                cmd, h, payload = P.parse(msg, P.SIG_WORKER)
            except ValueError as e:
                log.warning("malformed message from the broker dropped: %s", e)
                continue
            self.last_heard = now
            if cmd == P.B_TASK:
                self.on_task(h, payload)
            elif cmd == P.B_WHEARTBEAT:
                if self.last_hb_at is not None:
                    ivl = now - self.last_hb_at
                    self.broker_hb = ivl if self.broker_hb is None else min(self.broker_hb, ivl)
                self.last_hb_at = now
            elif cmd == P.B_WCANCEL:
                self.on_cancel(h)
            elif cmd == P.B_WDISCONNECT:
                why = h[0] if h and isinstance(h[0], str) else ""
                log.info("broker says: %s", why[:100])
                if len(h) >= 2 and h[1] is True:  # [reason, stop]: drained (mp-client drain)
                    log.info("drained: stopping")
                    self.stopping = True
                    return
                # "unknown worker": it does not know this session (it restarted,
                # or declared us dead): READY again on a new session; anything
                # else: it is going away, the next one gets a READY
                self.reconnect("disconnected (%s)" % why[:100])
                return
            else:
                log.warning("unknown command 0x%02x from the broker dropped", cmd)

    def on_task(self, h, payload):
        if (len(h) < 5 or not P.is_uint(h[0]) or not isinstance(h[1], str)
                or not 1 <= len(h[1].encode()) <= P.MAX_NAME or h[2] not in (0, 1)
                or not P.is_uint(h[3]) or not P.is_uint(h[4]) or len(payload) not in (1, 2)):
            log.warning("malformed TASK from the broker dropped")
            return
        limit = 0
        if len(h) >= 6 and h[5] is not None:
            # task-shm: the shared-memory extension is for embedded pools only
            log.warning("TASK with shared-memory items dropped (not an embedded pool's worker)")
            return
        if len(h) >= 7:
            if not P.is_uint(h[6]):
                log.warning("malformed TASK (time limit) dropped")
                return
            limit = h[6]
        items = payload[0].bytes
        init = payload[1].bytes if len(payload) == 2 else None
        self.queue.append((self.session, h[0], h[1], h[2], h[4], limit, items, init))
        self.assign()

    def on_cancel(self, h):
        if not h or not P.is_uint(h[0]):
            log.warning("malformed CANCEL from the broker dropped")
            return
        for k, q in enumerate(self.queue):
            if q[1] == h[0]:
                del self.queue[k]
                self.send(P.W_LOST, [h[0], 0, "cancelled before it ran", P.E_CANCELLED])
                return
        for e in self.ex:
            if e.job is not None and e.job[1] == h[0] and e.job[0] == self.session and not e.kill_code:
                e.kill_code, e.kill_cause = P.E_CANCELLED, "cancelled"
                os.kill(e.pid, signal.SIGKILL)
                return

    def running(self):
        return sum(1 for e in self.ex if e.job is not None and e.job[0] == self.session) + len(self.queue)

    # ---- the loop
    def run(self):
        for e in self.ex:  # before the ZeroMQ context: the children inherit no threads
            self.spawn(e)
        self.ctx = zmq.Context()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)

        def on_signal(signum, frame):
            self.stopping = True
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.last_hb_at = None
        self.open_socket()
        log.info("serving %s with %d executor(s) at %s", ", ".join(self.names), self.n, self.broker)
        next_hb = time.monotonic() + self.hb
        try:
            while not self.stopping:
                poller = zmq.Poller()
                poller.register(self.sock, zmq.POLLIN)
                poller.register(wake_r, zmq.POLLIN)
                by_fd = {}
                for e in self.ex:
                    if e.sock is not None:
                        poller.register(e.sock.fileno(), zmq.POLLIN)
                        by_fd[e.sock.fileno()] = e
                limits = [e.job[2] for e in self.ex if e.job is not None and e.job[2]]
                step = min([max(5, min(250, lim // 8)) / 1000.0 for lim in limits] or [1.0])
                timeout = max(0.0, min(step, next_hb - time.monotonic()))
                events = dict(poller.poll(int(timeout * 1000) + 1))
                if wake_r in events:
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                for fd in events:
                    if fd in by_fd:
                        self.on_executor(by_fd[fd])
                if self.sock in events:
                    self.on_broker()
                now = time.monotonic()
                self.check_limits(now)
                if now >= next_hb:
                    ivl = min(self.hb, self.broker_hb or self.hb)
                    next_hb = now + ivl
                    if now - self.last_heard > P.LIVENESS * max(ivl, self.broker_hb or ivl):
                        self.reconnect("silent for %.0f ms" % ((now - self.last_heard) * 1000))
                    else:
                        self.send(P.W_HEARTBEAT, [self.running()])
        finally:
            self.stop()
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
        return 0

    def stop(self):
        """DISCONNECT (the broker re-queues what we hold without counting an
        attempt), then the executors are killed and reaped."""
        self.stopping = True
        if self.sock is not None:
            self.send(P.W_DISCONNECT, [])
            self.sock.close(linger=500)  # let the DISCONNECT leave
            self.sock = None
        for e in self.ex:
            if e.pid:
                try:
                    os.kill(e.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for e in self.ex:
            if e.pid:
                self.reap(e)
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None
        log.info("stopped")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m libmp.worker",
        description="Serves Python functions as libmp Pool tasks (MPP/1): a supervisor connected "
                    "to mp-broker plus N executor processes.")
    ap.add_argument("broker", nargs="?", default=os.environ.get("MP_BROKER"),
                    help="tcp://HOST:PORT or ipc://PATH of mp-broker (default $MP_BROKER)")
    ap.add_argument("tasks", nargs="+", metavar="TASK",
                    help="module:function, or name=module:function (served as name)")
    ap.add_argument("-p", "--processes", type=int, default=int(os.environ.get("MP_PROCESSES", 0)),
                    help="executor processes (default: CPU count)")
    ap.add_argument("-m", "--maxtasksperchild", type=int, default=0,
                    help="replace an executor after N dispatches")
    ap.add_argument("--heartbeat", type=int, default=int(os.environ.get("MP_HEARTBEAT_MS", 1000)),
                    help="heartbeat interval in ms (default 1000; the broker's, when shorter, wins)")
    ap.add_argument("--curve-key", default=os.environ.get("MP_CURVE_KEY"),
                    help="CURVE: this worker's certificate (NAME.key_secret)")
    ap.add_argument("--curve-server-key", default=os.environ.get("MP_CURVE_SERVER_KEY"),
                    help="CURVE: the broker's NAME.key, or its 40 Z85 characters")
    ap.add_argument("--path", action="append", default=[],
                    help="a directory to put in front of sys.path (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s libmp.worker[%(process)d] "
                        "%(levelname)s %(message)s",
                        level=logging.DEBUG if a.verbose else logging.WARNING if a.quiet
                        else logging.INFO)
    if not a.broker or "://" not in a.broker:
        ap.error("give the broker's endpoint (tcp://HOST:PORT) first, or set MP_BROKER")
    if not 10 <= a.heartbeat <= 60000:
        ap.error("--heartbeat: 10..60000")
    if bool(a.curve_key) != bool(a.curve_server_key):
        ap.error("CURVE needs both --curve-key and --curve-server-key")
    if a.processes < 0 or a.maxtasksperchild < 0:
        ap.error("--processes and --maxtasksperchild are >= 0")
    sys.path[:0] = a.path + ([os.getcwd()] if "" not in sys.path else [])
    try:
        tasks = load_tasks(a.tasks)
    except Exception as e:
        log.error("cannot load the tasks: %s", e)
        return 1
    w = Worker(a.broker, tasks, a.processes or None, a.heartbeat, a.maxtasksperchild,
               a.curve_key, a.curve_server_key)
    return w.run()


if __name__ == "__main__":
    sys.exit(main())
