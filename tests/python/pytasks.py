"""Python tasks for the tests: served by `python -m libmp.worker`, and run
by multiprocessing.Pool for comparison (the same functions)."""
import os
import time


def square(x):
    return x * x


def add(a, b):
    return a + b


def parse_int(s):
    return int(s)  # ValueError on "x", as Python's


def raising():
    raise KeyError("key")


def even_only(x):
    if x % 2:
        raise ValueError("odd input %d" % x)
    return x


def sleep_ms(ms, value=None):
    time.sleep(ms / 1000.0)
    return ms if value is None else value


def getpid(_=None):
    return os.getpid()


def die_on(x, bad):
    """os._exit(3) on x == bad: the executor dies mid-dispatch."""
    if x == bad:
        os._exit(3)
    return x


def spin_if_negative(x):
    while x < 0:
        pass
    return x * x


_init = {"value": -1}


def set_init(v):
    _init["value"] = v


def get_init(_=None):
    return _init["value"]


def fail_with(code, message):
    from libmp import TaskFailure
    raise TaskFailure(code, message)


def unencodable(_=None):
    return object()


def echo(x):
    return x
