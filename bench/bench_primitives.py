"""Python multiprocessing on the same workloads as bench_primitives.c.

Prints "name <TAB> unit <TAB> value" lines (median of RUNS runs).
"""
import multiprocessing as mp
import statistics
import sys
import time

RUNS = 3


def lock_ns(n=1_000_000):
    lock = mp.Lock()
    t0 = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - t0) / n * 1e9


def value_incr_ns(n=500_000):
    v = mp.Value('l', 0)
    t0 = time.perf_counter()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    assert v.value == n
    return (time.perf_counter() - t0) / n * 1e9


def _consume(q, n):
    for i in range(n):
        if q.get() != i:
            raise SystemExit(1)


def queue_rate(n=200_000):
    q = mp.Queue()
    p = mp.Process(target=_consume, args=(q, n))
    p.start()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    p.join()
    assert p.exitcode == 0
    return n / (time.perf_counter() - t0)


def _echo(conn, other):
    other.close()  # or our copy would hide the EOF
    try:
        while True:
            conn.send(conn.recv())
    except EOFError:
        pass


def pipe_rtt_us(n=10_000):
    a, b = mp.Pipe()
    p = mp.Process(target=_echo, args=(b, a))
    p.start()
    b.close()
    t0 = time.perf_counter()
    for _ in range(n):
        a.send(12345)
        a.recv()
    us = (time.perf_counter() - t0) / n * 1e6
    a.close()
    p.join()
    return us


def main():
    mp.set_start_method('fork')
    for name, unit, fn in [
        ('lock_acquire_release', 'ns', lock_ns),
        ('value_increment_locked', 'ns', value_incr_ns),
        ('queue_put_get_2proc', 'items/s', queue_rate),
        ('pipe_round_trip', 'us', pipe_rtt_us),
    ]:
        value = statistics.median(fn() for _ in range(RUNS))
        print(f'{name}\t{unit}\t{value:.3f}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
