"""python_pool_api: libmp.Pool against multiprocessing.Pool on the same inputs.

One cluster: mp-broker, a C mp-worker (libtest_tasks.so) and a Python worker
(pytasks.py as py_*). Every case runs the same call on multiprocessing.Pool(2)
with the Python function and on libmp.Pool with the task name, and compares
results, the order of results, and where and as what a failure is raised.
"""
import multiprocessing
import threading
import time
import unittest

import cluster
import pytasks

import libmp

C, PYW = "c", "py"


def builtin_base(e):
    """The built-in exception class an exception is (or derives from)."""
    for c in type(e).__mro__:
        if c.__module__ == "builtins":
            return c.__name__
    return None


def outcome(fn, types=True):
    try:
        return ("ok", fn())
    except Exception as e:
        return ("err", builtin_base(e) if types else None, str(e))


def outcomes_of(it, types=True):
    """Each next() of an iterator: its value or its exception, to the end."""
    out = []
    for _ in range(10000):
        try:
            out.append(("ok", next(it)))
        except StopIteration:
            return out
        except Exception as e:
            out.append(("err", builtin_base(e) if types else None, str(e)))
    raise AssertionError("iterator did not end")


def untyped(o):
    """An outcome with the exception types left out (nested lists too)."""
    if isinstance(o, tuple) and o and o[0] == "err":
        return ("err", None) + o[2:]
    if isinstance(o, (list, tuple)):
        return type(o)(untyped(x) for x in o)
    return o


def gen_raising_at(n, bad):
    for i in range(n):
        if i == bad:
            raise ZeroDivisionError("input %d" % i)
        yield i


class PoolVsMultiprocessing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cl = cluster.Cluster(limit=120)
        cls.cl.broker()
        cls.cl.c_worker(2)
        cls.cl.py_worker(processes=2)
        cls.cl.wait_processes(4)
        cls.mp = multiprocessing.get_context("fork").Pool(2)
        cls.pool = libmp.Pool(cls.cl.ep, heartbeat_ms=cluster.HB)

    @classmethod
    def tearDownClass(cls):
        cls.pool.terminate()
        cls.mp.terminate()
        cls.mp.join()
        cls.cl.close()

    def names(self, name):
        """(libmp name on the C worker, on the Python worker, the function)."""
        return [(C, name), (PYW, "py_" + name)], getattr(pytasks, name)

    def same(self, name, call):
        """call(pool, task) on multiprocessing and on both workers: equal
        results; equal exceptions (a C task's has no Python type: only its
        place and message are compared)."""
        tasks, fn = self.names(name)
        want = outcome(lambda: call(self.mp, fn))
        for side, task in tasks:
            got = outcome(lambda: call(self.pool, task))
            if side == C:
                self.assertEqual(untyped(got), untyped(want), "%s on the C worker" % task)
            else:
                self.assertEqual(got, want, "%s on the Python worker" % task)
        return want

    # ---- results and their order
    def test_map_in_order_any_chunksize(self):
        for cs in (None, 1, 7, 1000):
            w = self.same("square", lambda p, f: p.map(f, range(500), chunksize=cs))
            self.assertEqual(w, ("ok", [x * x for x in range(500)]))

    def test_map_of_a_generator_and_of_nothing(self):
        self.same("square", lambda p, f: p.map(f, (x for x in range(33))))
        self.assertEqual(self.same("square", lambda p, f: p.map(f, [])), ("ok", []))

    def test_starmap_and_apply(self):
        self.same("add", lambda p, f: p.starmap(f, [(i, 2 * i) for i in range(300)], 9))
        self.same("add", lambda p, f: p.starmap_async(f, ((i, i) for i in range(30))).get(10))
        self.same("add", lambda p, f: p.apply(f, (20, 22)))
        self.same("square", lambda p, f: p.apply_async(f, (12,)).get(10))

    def test_imap_and_unordered(self):
        for cs in (1, 4):
            self.same("square", lambda p, f: list(p.imap(f, range(100), cs)))
            self.same("square", lambda p, f: sorted(p.imap_unordered(f, iter(range(100)), cs)))
        self.same("square", lambda p, f: list(p.imap(f, [])))

    def test_large_map(self):
        n = 200000
        self.assertEqual(self.pool.map("square", range(n)), [x * x for x in range(n)])
        self.assertEqual(self.pool.map("py_square", range(n // 10)),
                         self.mp.map(pytasks.square, range(n // 10)))

    # ---- failures: where, and as what
    def test_map_fails_with_the_first_error(self):
        w = self.same("even_only", lambda p, f: p.map(f, [0, 2, 4, 5, 6, 8]))
        self.assertEqual(w, ("err", "ValueError", "odd input 5"))
        self.same("parse_int", lambda p, f: p.map(f, ["1", "2", "x", "4"], 1))
        self.same("parse_int", lambda p, f: p.starmap(f, [("7",), ("y",)]))

    def test_apply_raises_the_task_error(self):
        self.same("raising", lambda p, f: p.apply(f))
        self.same("parse_int", lambda p, f: p.apply_async(f, ("zz",)).get(10))
        try:
            self.pool.apply("py_raising")
        except KeyError as e:
            self.assertIsInstance(e, libmp.TaskError)
            self.assertEqual((e.task, e.index, e.code), ("py_raising", 0, -4103))
            self.assertTrue(e.host and e.pid > 0)
        else:
            self.fail("no KeyError")

    def test_error_fields(self):
        with self.assertRaises(libmp.TaskError) as cm:
            self.pool.map("even_only", [2, 4, 7, 8], chunksize=2)
        e = cm.exception
        self.assertEqual((e.code, e.kind, e.message, e.task, e.index), (42, 0, "odd input 7",
                                                                       "even_only", 2))
        self.assertTrue(isinstance(e.host, str) and e.pid > 0)

    def test_imap_raises_at_the_item_and_goes_on(self):
        # chunksize 1: multiprocessing raises at each failed item and goes on
        self.same("even_only", lambda p, f: outcomes_of(p.imap(f, range(8))))
        self.same("even_only", lambda p, f: sorted(outcomes_of(p.imap_unordered(f, range(8))),
                                                   key=repr))

    def test_imap_input_that_raises(self):
        w = self.same("square", lambda p, f: outcomes_of(p.imap(f, gen_raising_at(6, 3))))
        self.assertEqual(w[1], [("ok", 0), ("ok", 1), ("ok", 4),
                                ("err", "ZeroDivisionError", "input 3")])

    def test_unknown_task(self):
        with self.assertRaises(libmp.UnknownTaskError) as cm:
            self.pool.map("no_such_task", range(10))
        self.assertEqual((cm.exception.code, cm.exception.task), (-4101, "no_such_task"))
        it = self.pool.imap("no_such_task", range(3))
        self.assertRaises(libmp.UnknownTaskError, next, it)

    def test_first_argument_is_a_name(self):
        self.assertRaises(TypeError, self.pool.apply, pytasks.square, (1,))
        self.assertRaises(TypeError, self.pool.apply, "square", (1,), {"x": 1})

    # ---- AsyncResult
    def test_async_result_surface(self):
        for p, f in ((self.mp, pytasks.sleep_ms), (self.pool, "sleep_ms"),
                     (self.pool, "py_sleep_ms")):
            r = p.apply_async(f, (400, 5))
            self.assertFalse(r.ready())
            self.assertRaises(ValueError, r.successful)
            t0 = time.monotonic()
            self.assertRaises(multiprocessing.TimeoutError, r.get, 0.05)
            self.assertLess(time.monotonic() - t0, 1.0)
            r.wait(0.01)
            self.assertEqual(r.get(10), 5)
            self.assertTrue(r.ready() and r.successful())
            r = p.map_async(f, [10, 20])
            r.wait(10)
            self.assertEqual((r.ready(), r.successful(), r.get(0)), (True, True, [10, 20]))

    def test_callbacks(self):
        for p, f, g in ((self.mp, pytasks.square, pytasks.even_only),
                        (self.pool, "square", "even_only"), (self.pool, "py_square", "py_even_only")):
            got, errs = [], []
            done = threading.Event()
            p.map_async(f, range(5), callback=got.append).wait(10)
            p.apply_async(f, (3,), callback=got.append).wait(10)
            p.starmap_async(f, [(2,)], callback=got.append).wait(10)
            r = p.map_async(g, [1, 2], callback=got.append,
                            error_callback=lambda e: (errs.append(str(e)), done.set()))
            r.wait(10)
            done.wait(10)
            self.assertFalse(r.successful())
            p.map_async(f, [], callback=got.append).wait(10)  # ready, no callback (!)
            time.sleep(0.05)  # multiprocessing runs callbacks on its own thread, after the event
            self.assertEqual((got, errs), ([[0, 1, 4, 9, 16], 9, [4]], ["odd input 1"]),
                             repr(p))

    # ---- life cycle
    def test_close_join_terminate(self):
        for make, f in ((lambda: multiprocessing.get_context("fork").Pool(2), pytasks.square),
                        (lambda: libmp.Pool(self.cl.ep, heartbeat_ms=cluster.HB), "square"),
                        (lambda: libmp.Pool(self.cl.ep, heartbeat_ms=cluster.HB), "py_square")):
            p = make()
            self.assertRaises(ValueError, p.join)  # still running
            r = p.map_async(f, range(50))
            p.close()
            self.assertRaises(ValueError, p.apply, f, (1,))
            self.assertRaises(ValueError, p.map, f, [1])
            p.join()
            self.assertEqual(r.get(0), [x * x for x in range(50)])
            with make() as q:
                self.assertEqual(q.apply(f, (3,)), 9)
            self.assertRaises(ValueError, q.apply, f, (1,))
            self.assertRaises(ValueError, q.map, f, range(3), 0)  # closed first; both ValueError
            q.join()

    def test_bad_chunksize(self):
        for p, f in ((self.mp, pytasks.square), (self.pool, "square")):
            self.assertRaises(ValueError, lambda: list(p.imap(f, range(3), 0)))
        # multiprocessing's map returns Nones for chunksize 0 (no check, items
        # dropped); libmp refuses it as imap does (docs/PYTHON.md)
        self.assertEqual(self.mp.map(pytasks.square, range(3), 0), [None] * 3)
        self.assertRaises(ValueError, self.pool.map, "square", range(3), 0)

    def test_terminate_fails_what_runs(self):
        p = libmp.Pool(self.cl.ep, heartbeat_ms=cluster.HB)
        r = p.map_async("sleep_ms", [3000] * 4, chunksize=1)
        time.sleep(0.2)
        t0 = time.monotonic()
        p.terminate()
        self.assertRaises(libmp.CancelledError, r.get, 5)
        self.assertLess(time.monotonic() - t0, 5)
        # the broker withdrew them: the workers are free again at once
        t0 = time.monotonic()
        self.assertEqual(self.pool.map("sleep_ms", [10] * 4, chunksize=1), [10] * 4)
        self.assertLess(time.monotonic() - t0, 2.5)

    # ---- initializer and time limit (PROTOCOL.md 6 and 7.2)
    def test_initializer(self):
        with libmp.Pool(self.cl.ep, "set_init", (7,), heartbeat_ms=cluster.HB) as p:
            self.assertEqual(p.map("get_init", range(8), 1), [7] * 8)
        with libmp.Pool(self.cl.ep, "py_set_init", (9,), heartbeat_ms=cluster.HB) as p:
            self.assertEqual(p.map("py_get_init", range(8), 1), [9] * 8)
        mp = multiprocessing.get_context("fork").Pool(2, pytasks.set_init, (9,))
        self.assertEqual(mp.map(pytasks.get_init, range(8), 1), [9] * 8)
        mp.terminate()
        mp.join()

    def test_time_limit(self):
        with libmp.Pool(self.cl.ep, heartbeat_ms=cluster.HB, time_limit=0.3) as p:
            for task in ("spin_if_negative", "py_spin_if_negative"):
                t0 = time.monotonic()
                with self.assertRaises(libmp.TimeLimitError) as cm:
                    p.map(task, [1, -1, 3], chunksize=3)
                self.assertEqual((cm.exception.code, cm.exception.index), (-4116, 1))
                self.assertLess(time.monotonic() - t0, 5)
                self.assertEqual(outcomes_of(p.imap(task, [2, -2, 4]), False)[::2],
                                 [("ok", 4), ("ok", 16)])

    def test_task_failure_code_and_unencodable(self):
        with self.assertRaises(libmp.TaskError) as cm:
            self.pool.apply("py_fail_with", (12, "boom"))
        self.assertEqual((cm.exception.code, str(cm.exception)), (12, "boom"))
        self.assertRaises(libmp.BadArgsError, self.pool.apply, "py_echo", (object(),))
        self.assertEqual(self.pool.apply("py_echo", ([1, "a", b"b", {"k": 2.5}, None],)),
                         [1, "a", b"b", {"k": 2.5}, None])
        with self.assertRaises(libmp.TaskError) as cm:
            self.pool.apply("py_unencodable")
        self.assertIn("MaybeEncodingError", cm.exception.message)

    def test_limits_from_welcome(self):
        self.assertEqual(self.pool.limits["max_count"], 1048576)
        self.assertGreaterEqual(self.pool.processes, 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
