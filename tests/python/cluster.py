"""What the Python tests share: mp-broker, mp-worker and `python -m
libmp.worker` as child processes on loopback, each under `timeout`, all
stopped and waited for on close (SIGTERM, then SIGKILL after 3 s).

LIBMP_BUILD names the build directory (ctest sets it)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("LIBMP_BUILD", os.path.join(TOP, "build"))
BROKER = os.path.join(BUILD, "broker", "mp-broker")
WORKER = os.path.join(BUILD, "worker", "mp-worker")
CLIENT = os.path.join(BUILD, "client", "mp-client")
TASKS = os.path.join(BUILD, "tests", "libtest_tasks.so")
PY = sys.executable
HB = 300  # ms: every daemon and pool of the tests

# the Python tasks (tests/python/pytasks.py) served under these names
PY_TASKS = ["py_%s=pytasks:%s" % (n, n) for n in (
    "square", "add", "even_only", "parse_int", "raising", "sleep_ms", "getpid", "die_on",
    "spin_if_negative", "set_init", "get_init", "fail_with", "unencodable", "echo")]

sys.path[:0] = [os.path.join(TOP, "python"), HERE]


def need_programs():
    for f in (BROKER, WORKER, CLIENT, TASKS):
        if not os.path.exists(f):
            print("SKIP: %s is not built" % f)
            sys.exit(77)


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([os.path.join(TOP, "python"), HERE])
    return e


class Cluster:
    def __init__(self, limit=60):
        need_programs()
        self.limit = str(limit)
        self.tmp = tempfile.mkdtemp(prefix="libmp-python-")
        self.procs = []
        self.ep = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def bg(self, argv, name):
        out = open(os.path.join(self.tmp, name + ".out"), "wb")
        err = open(os.path.join(self.tmp, name + ".err"), "wb")
        p = subprocess.Popen(["timeout", self.limit] + argv, stdout=out, stderr=err, env=env())
        out.close()
        err.close()
        p.name = name
        self.procs.append(p)
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".err"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def broker(self, *args, bind="tcp://127.0.0.1:0", name="broker"):
        p = self.bg([BROKER, "--bind", bind, "--heartbeat", str(HB)] + list(args), name)
        path = os.path.join(self.tmp, name + ".out")
        for _ in range(100):
            with open(path) as f:
                line = f.readline().strip()
            if line:
                self.ep = line
                return p
            if p.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("mp-broker printed no endpoint: " + self.log(name))

    def c_worker(self, processes=2, *args, name="cworker"):
        return self.bg([WORKER, "--broker", self.ep, "--tasks", TASKS, "-p", str(processes),
                        "--heartbeat", str(HB)] + list(args), name)

    def py_worker(self, tasks=None, processes=2, *args, name="pyworker"):
        return self.bg([PY, "-m", "libmp.worker", self.ep] + (tasks or PY_TASKS) +
                       ["-p", str(processes), "--heartbeat", str(HB)] + list(args), name)

    def status(self, **kw):
        import libmp
        with libmp.Pool(self.ep, heartbeat_ms=HB, connect_timeout=5, **kw) as p:
            return p.status()

    def wait_processes(self, n, timeout=15, **kw):
        """Waits until the broker counts n executors in all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status(**kw)
            if sum(w["processes"] for w in st["workers"]) >= n:
                return st
            time.sleep(0.1)
        raise RuntimeError("workers did not join: %r" % (st,))

    def stop(self, p, sig=signal.SIGTERM):
        """SIGTERM reaches the daemon through `timeout`; SIGKILL goes to the
        process group (`timeout` and the daemon)."""
        if p.poll() is None:
            if sig == signal.SIGKILL:
                kill_group(p)
                return
            p.send_signal(sig)
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            kill_group(p)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_group(p)
        for p in self.procs:  # executors of a killed worker die with it (PDEATHSIG)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def kill_group(p):
    """`timeout` made its own process group: SIGKILL reaches the daemon too."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
