"""The results of libmp.Pool's calls: multiprocessing.pool's ApplyResult,
MapResult, IMapIterator and IMapUnorderedIterator, with the same surface.

The pool's I/O thread fills them (_block: a run of answered items, with the
errors among them; _fail_range: a run of failed items); the callers' threads
wait on them. Each finishes once: then it tells its pool (_job_done) and runs
its callback on the I/O thread.
"""
import collections
import threading
import time
import traceback
from multiprocessing import TimeoutError

__all__ = ["AsyncResult", "ApplyResult", "MapResult", "IMapIterator", "IMapUnorderedIterator"]


def _run_callback(fn, arg):
    try:
        fn(arg)
    except Exception:
        traceback.print_exc()


class ApplyResult:
    """multiprocessing.pool.ApplyResult: the answer of apply_async."""

    def __init__(self, pool, name, callback=None, error_callback=None):
        self._pool = pool
        self._name = name
        self._event = threading.Event()
        self._callback = callback
        self._error_callback = error_callback
        self._success = None
        self._value = None
        self._left = 1

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError("{0!r} not ready".format(self))
        return self._success

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def get(self, timeout=None):
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    # ---- the I/O thread's side
    def _block(self, base, values, errors):
        if errors:
            self._success, self._value = False, errors[0]
        else:
            self._success, self._value = True, values[0]
        self._left = 0
        self._finish()

    def _fail_range(self, base, count, make_exc):
        self._success, self._value = False, make_exc(base)
        self._left = 0
        self._finish()

    def _finish(self):
        self._event.set()
        self._pool._job_done(self)
        fn = self._callback if self._success else self._error_callback
        if fn is not None:
            _run_callback(fn, self._value)


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """map_async / starmap_async: a list in input order, or the error of the
    failed item with the lowest index."""

    def __init__(self, pool, name, length, callback=None, error_callback=None):
        super().__init__(pool, name, callback, error_callback)
        self._value = [None] * length
        self._left = length
        self._error = None  # (index, exception)
        if length == 0:  # as multiprocessing: ready at once, and no callback
            self._success = True
            self._event.set()

    def _block(self, base, values, errors):
        self._value[base:base + len(values)] = values
        if errors:
            k = min(errors)
            if self._error is None or base + k < self._error[0]:
                self._error = (base + k, errors[k])
        self._left -= len(values)
        if self._left == 0:
            self._settle()

    def _fail_range(self, base, count, make_exc):
        if self._error is None or base < self._error[0]:
            self._error = (base, make_exc(base))
        self._left -= count
        if self._left == 0:
            self._settle()

    def _settle(self):
        if self._error is None:
            self._success = True
        else:
            self._success, self._value = False, self._error[1]
        self._finish()


class IMapIterator:
    """imap: results in input order; an item's error is raised at that item
    and iteration goes on after it."""

    def __init__(self, pool, name):
        self._pool = pool
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._items = {}
        self._index = 0
        self._length = None
        self._done = 0

    def __iter__(self):
        return self

    def next(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                got = self._pop()
                if got is not None:
                    break
                if self._length is not None and self._consumed() >= self._length:
                    raise StopIteration
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                self._cond.wait(left)
        ok, value = got
        if ok:
            return value
        raise value

    __next__ = next

    def _consumed(self):
        return self._index

    def _pop(self):
        got = self._items.pop(self._index, None)
        if got is not None:
            self._index += 1
        return got

    # ---- the I/O thread's side
    def _block(self, base, values, errors):
        with self._cond:
            for k, v in enumerate(values):
                self._items[base + k] = (False, errors[k]) if k in errors else (True, v)
            self._done += len(values)
            self._cond.notify_all()
        self._check_done()

    def _fail_range(self, base, count, make_exc):
        with self._cond:
            for i in range(base, base + count):
                self._items[i] = (False, make_exc(i))
            self._done += count
            self._cond.notify_all()
        self._check_done()

    def _set_length(self, n):
        with self._cond:
            self._length = n
            self._cond.notify_all()
        self._check_done()

    def _check_done(self):
        if self._length is not None and self._done >= self._length:
            self._pool._job_done(self)


class IMapUnorderedIterator(IMapIterator):
    """imap_unordered: results as they come."""

    def __init__(self, pool, name):
        super().__init__(pool, name)
        self._queue = collections.deque()
        self._yielded = 0

    def _pop(self):
        if self._queue:
            self._yielded += 1
            return self._queue.popleft()
        return None

    def _consumed(self):
        return self._yielded

    def _block(self, base, values, errors):
        with self._cond:
            for k, v in enumerate(values):
                self._queue.append((False, errors[k]) if k in errors else (True, v))
            self._done += len(values)
            self._cond.notify_all()
        self._check_done()

    def _fail_range(self, base, count, make_exc):
        with self._cond:
            for i in range(base, base + count):
                self._queue.append((False, make_exc(i)))
            self._done += count
            self._cond.notify_all()
        self._check_done()
