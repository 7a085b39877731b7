"""python_worker: C clients (the mp-client CLI) call Python tasks served by
`python -m libmp.worker`; a mixed cluster (C and Python workers serving the
same name) completes a map; killing a Python worker mid-map, and one of its
executors mid-task, loses no result (the broker retries elsewhere)."""
import json
import os
import signal
import subprocess
import time
import unittest

import cluster

import libmp


def cli(ep, *args, stdin=None):
    r = subprocess.run(["timeout", "30", cluster.CLIENT, "-b", ep] + list(args), input=stdin,
                       capture_output=True, text=True, env=cluster.env())
    return r.returncode, r.stdout, r.stderr


class CClientToPythonWorker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cl = cluster.Cluster()
        cls.cl.broker()
        cls.w = cls.cl.py_worker(processes=2)
        cls.cl.wait_processes(2)

    @classmethod
    def tearDownClass(cls):
        cls.cl.close()

    def test_apply_map_starmap(self):
        ep = self.cl.ep
        self.assertEqual(cli(ep, "apply", "py_square", "7")[:2], (0, "49\n"))
        self.assertEqual(cli(ep, "apply", "py_echo", "hello")[:2], (0, '"hello"\n'))
        rc, out, _ = cli(ep, "map", "py_square", "--chunksize", "7",
                         stdin="".join("%d\n" % i for i in range(1, 1001)))
        self.assertEqual((rc, out.split()), (0, [str(i * i) for i in range(1, 1001)]))
        rc, out, _ = cli(ep, "starmap", "py_add",
                         stdin="".join("[%d, %d]\n" % (i, 2 * i) for i in range(200)))
        self.assertEqual((rc, out.split()), (0, [str(3 * i) for i in range(200)]))

    def test_errors_have_the_structured_fields(self):
        rc, out, err = cli(self.cl.ep, "map", "py_even_only", stdin="2\n3\n4\n")
        lines = out.splitlines()
        self.assertEqual((rc, lines[0], lines[2]), (1, "2", "4"), err)
        e = json.loads(lines[1])["error"]
        self.assertEqual((e["code"], e["message"], e["task"], e["index"]),
                         (-4103, "ValueError: odd input 3", "py_even_only", 1))
        self.assertTrue(e["host"] and e["pid"] > 0)
        rc, out, _ = cli(self.cl.ep, "apply", "py_fail_with", "77", '"own code"')
        e = json.loads(out)["error"]
        self.assertEqual((rc, e["code"], e["task_code"], e["message"]), (1, -4103, 77, "own code"))
        rc, out, _ = cli(self.cl.ep, "apply", "no_such_task", "1")
        self.assertEqual((rc, json.loads(out)["error"]["code"]), (1, -4101))

    def test_executor_death_is_retried_then_worker_lost(self):
        # item 1 kills its executor every time: WORKER_LOST after 3 attempts,
        # the others complete; the worker lives on
        rc, out, err = cli(self.cl.ep, "starmap", "py_die_on", stdin="[1, 9]\n[9, 9]\n[3, 9]\n")
        lines = out.splitlines()
        self.assertEqual((rc, lines[0], lines[2]), (1, "1", "3"), err)
        e = json.loads(lines[1])["error"]
        self.assertEqual(e["code"], -4102)
        self.assertIn("exit status 3", e["message"])
        self.assertIsNone(self.w.poll())
        self.assertEqual(cli(self.cl.ep, "apply", "py_square", "5")[:2], (0, "25\n"))

    def test_time_limit_and_cancel(self):
        t0 = time.monotonic()
        rc, out, _ = cli(self.cl.ep, "--task-timeout", "300", "apply", "py_spin_if_negative", "-1")
        self.assertEqual((rc, json.loads(out)["error"]["code"]), (1, -4116))
        self.assertLess(time.monotonic() - t0, 5)
        # a cancelled call (the pool terminated) frees the executors at once
        p = libmp.Pool(self.cl.ep, heartbeat_ms=cluster.HB)
        p.map_async("py_sleep_ms", [20000, 20000], chunksize=1)
        time.sleep(0.5)
        p.terminate()
        with libmp.Pool(self.cl.ep, heartbeat_ms=cluster.HB) as q:
            t0 = time.monotonic()
            self.assertEqual(q.map("py_square", range(4), 1), [0, 1, 4, 9])
            self.assertLess(time.monotonic() - t0, 3)


class KilledAndMixed(unittest.TestCase):
    def test_worker_killed_mid_map_and_mixed_cluster(self):
        with cluster.Cluster() as cl:
            cl.broker()
            tasks = ["square=pytasks:square", "sleep_ms=pytasks:sleep_ms", "getpid=pytasks:getpid"]
            a = cl.py_worker(tasks, 2, name="pyA")
            b = cl.py_worker(tasks, 2, name="pyB")
            cl.c_worker(1)  # serves square and sleep_ms too (C)
            st = cl.wait_processes(5)
            self.assertEqual(len(st["workers"]), 3)
            with libmp.Pool(cl.ep, heartbeat_ms=cluster.HB) as p:
                # mixed: C and Python executors answer the same name
                self.assertEqual(p.map("square", range(20000), 50), [x * x for x in range(20000)])
                done = p.status()["workers"]
                self.assertTrue(all(w["done"] > 0 for w in done), done)
                # kill worker A (supervisor and executors) mid-map
                pid_a = next(w["pid"] for w in done if w["pid"] == self.real_pid(a))
                r = p.map_async("sleep_ms", [50] * 60, chunksize=1)
                time.sleep(0.4)
                os.kill(pid_a, signal.SIGKILL)
                self.assertEqual(r.get(20), [50] * 60)
                st = p.status()
                self.assertNotIn(pid_a, [w["pid"] for w in st["workers"]])
                self.assertEqual(p.map("square", range(100)), [x * x for x in range(100)])
            self.assertIsNone(b.poll())

    @staticmethod
    def real_pid(timeout_proc):
        """The pid of the program `timeout` runs (its only child)."""
        with open("/proc/%d/task/%d/children" % (timeout_proc.pid, timeout_proc.pid)) as f:
            return int(f.read().split()[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
