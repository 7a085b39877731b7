"""test_dashboard.py BUILD_DIR - the broker's web dashboard in a real browser
(docs/CLUSTER.md 7): headless Chromium, driven over the DevTools protocol,
opens http://BROKER/ while a map runs, and the page's worker count, done
counter, plot and errors table change by themselves, without a reload.

Its own mp-broker (--http on a free loopback port), two mp-worker and the
map's mp-client; Chromium in a profile of its own; every process is killed
and waited for, every wait is bounded. Run by /usr/bin/python3 (Debian's
python3-websocket); test_dashboard.sh installs what it needs first.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import websocket  # python3-websocket

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "build"
BROKER = os.path.join(BUILD, "broker", "mp-broker")
WORKER = os.path.join(BUILD, "worker", "mp-worker")
CLIENT = os.path.join(BUILD, "client", "mp-client")
TASKS = os.path.join(BUILD, "tests", "libtest_tasks.so")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def until(what, timeout, pause=0.1):
    """what() until it is true, at most timeout seconds: its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = what()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(pause)


class Page:
    """One Chromium tab, through the DevTools protocol."""

    def __init__(self, profile):
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-allow-origins=*",
             "--user-data-dir=" + profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = m and int(m.group(1))
        if port is None:
            raise RuntimeError("Chromium did not start its DevTools endpoint")
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port,
                                                   timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10,
                                              suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")

    def text(self, element_id):
        return self.eval("(document.getElementById(%s) || {}).textContent" % json.dumps(element_id))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_dashboard.")
        self.procs = []
        out = open(os.path.join(self.tmp, "broker.out"), "w+")
        self.procs.append(subprocess.Popen(
            [BROKER, "--bind", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--heartbeat", "300",
             "-q"], stdout=out, stderr=subprocess.DEVNULL))
        def printed():
            out.seek(0)
            words = out.read().split()
            return words if len(words) >= 2 else None
        lines = until(printed, 10)
        self.assertGreaterEqual(len(lines or []), 2, "mp-broker printed its endpoint and URL")
        self.endpoint, self.url = lines[0], lines[1].replace("/metrics", "/")
        for _ in range(2):
            self.procs.append(subprocess.Popen(
                [WORKER, "--broker", self.endpoint, "--tasks", TASKS, "-p", "2", "--heartbeat",
                 "300", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.page = Page(os.path.join(self.tmp, "profile"))

    def tearDown(self):
        self.page.close()
        for p in reversed(self.procs):
            p.kill()
            p.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def plot_points(self):
        return self.page.eval("document.getElementById('plot-rate').getAttribute('points')") or ""

    def test_dashboard_follows_a_running_map(self):
        self.page.call("Page.enable")
        self.page.call("Page.navigate", url=self.url)
        self.assertTrue(until(lambda: self.page.text("workers") == "2", 15),
                        "the page shows 2 workers (it shows %r)" % self.page.text("workers"))
        self.assertEqual(self.page.text("executors"), "4")
        rows = self.page.eval("document.querySelectorAll('#workers-table tbody tr').length")
        self.assertEqual(rows, 2)

        # 600 items of 30 ms on 4 executors: about 4.5 s of work
        items = "".join("[30, %d]\n" % i for i in range(600))
        mapper = subprocess.Popen([CLIENT, "--broker", self.endpoint, "--no-progress", "starmap",
                                   "sleep_ms"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.procs.append(mapper)
        mapper.stdin.write(items)
        mapper.stdin.close()
        self.assertTrue(until(lambda: int(self.page.text("done") or 0) > 0, 10),
                        "the done counter moved")
        done1, points1 = int(self.page.text("done")), self.plot_points()
        self.assertTrue(until(lambda: self.page.eval(
            "[...document.querySelectorAll('#workers-table td')].some(td => td.textContent == 'busy')"),
            5), "a worker shows busy")
        time.sleep(2.2)
        done2, points2 = int(self.page.text("done")), self.plot_points()
        self.assertGreater(done2, done1, "the done counter grows without a reload")
        self.assertGreater(len(points2.split()), len(points1.split()), "the plot grows")
        self.assertNotEqual(points2, points1)
        heights = [float(p.split(",")[1]) for p in points2.split()]
        self.assertLess(min(heights), 165 - 1, "the throughput line rose above zero")
        self.assertEqual(mapper.wait(timeout=60), 0)
        self.assertTrue(until(lambda: self.page.text("done") == "600", 5),
                        "all 600 shown done (%r)" % self.page.text("done"))

        # an error appears in the table with its structured fields
        subprocess.run([CLIENT, "--broker", self.endpoint, "apply", "fail_with", "7", "dashboard"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        self.assertTrue(until(lambda: "dashboard" in (self.page.text("errors-table") or ""), 5),
                        "the error is listed")
        cells = self.page.eval(
            "[...document.querySelectorAll('#errors-table tbody tr')[0].cells].map(c => c.textContent)")
        self.assertEqual(cells[1], "fail_with")
        self.assertEqual(cells[3], "7")
        self.assertEqual(cells[4], "task error")
        self.assertEqual(cells[5], "dashboard")


if __name__ == "__main__":
    if not CHROMIUM:
        print("SKIPPED: no chromium (scripts/deps.sh --browser installs it)")
        sys.exit(77)
    unittest.main(verbosity=2)
