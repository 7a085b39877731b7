"""Python multiprocessing.Pool(2) on the same workloads as bench_pool.c.

Prints "name <TAB> unit <TAB> value" lines (median of RUNS runs). As in
bench_pool.c, each workload runs on one pool started beforehand, after one
untimed warm-up run (start-up is measured alone by pool_startup: Pool(2)
until a 2-item map with chunksize 1 has returned), and the timed region
includes building the input and receiving every result.

imap over 10^8 lazily produced items (libmp's imap_1e8_lazy, a peak-RSS
figure) is not run here: Python's Pool.imap has no bound on results the
reader has not taken yet (its task thread feeds the workers as fast as the
pipe takes tasks), so its memory is not constant by design, only when the
reader happens to keep up.

    python3 bench/bench_pool.py [FILTER]
"""
import multiprocessing as mp
import signal
import statistics
import sys
import time

RUNS = 3
STARTUP_RUNS = 5
MAP_ITEMS = 10**6


def square(x):
    return x * x


def add(a, b):
    return a + b


def map_rate(pool):
    t0 = time.perf_counter()
    out = pool.map(square, range(MAP_ITEMS), chunksize=1000)
    rate = MAP_ITEMS / (time.perf_counter() - t0)
    assert len(out) == MAP_ITEMS and out[-1] == (MAP_ITEMS - 1)**2
    return rate


def map_1e7_rate(pool, n=10**7):
    t0 = time.perf_counter()
    out = pool.map(square, range(n))  # chunksize: automatic, as libmp's
    rate = n / (time.perf_counter() - t0)
    assert len(out) == n and out[-1] == (n - 1)**2
    return rate


def starmap_rate(pool):
    t0 = time.perf_counter()
    out = pool.starmap(add, [(i, i) for i in range(MAP_ITEMS)])
    rate = MAP_ITEMS / (time.perf_counter() - t0)
    assert len(out) == MAP_ITEMS and out[-1] == 2 * (MAP_ITEMS - 1)
    return rate


def apply_async_rate(pool, n=10**5):
    t0 = time.perf_counter()
    res = [pool.apply_async(square, (i,)) for i in range(n)]
    out = [r.get() for r in res]
    rate = n / (time.perf_counter() - t0)
    assert out[-1] == (n - 1)**2
    return rate


def apply_sync_us(pool, n=10**4):
    t0 = time.perf_counter()
    for i in range(n):
        assert pool.apply(square, (i,)) == i * i
    return (time.perf_counter() - t0) / n * 1e6


def imap_unordered_rate(pool, n=10**5):
    t0 = time.perf_counter()
    total = sum(pool.imap_unordered(square, (i for i in range(n)), chunksize=1))
    rate = n / (time.perf_counter() - t0)
    assert total == (n - 1) * n * (2 * n - 1) // 6
    return rate


def startup_ms():
    """Pool(2) until both workers answered a task (ready, as mp_pool_new)."""
    times = []
    for _ in range(STARTUP_RUNS):
        t0 = time.perf_counter()
        with mp.Pool(2) as pool:  # leaving it terminates the pool
            pool.map(square, [0, 1], chunksize=1)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


LIFECYCLE_CYCLES = 200


def lifecycle_ms():
    """Pool(2), a map of 1,000 ints, close and join: 200 times (as
    bench_pool.c's pool_lifecycle); the median, and the slowest."""
    times = []
    for _ in range(LIFECYCLE_CYCLES):
        t0 = time.perf_counter()
        pool = mp.Pool(2)
        out = pool.map(square, range(1000))
        pool.close()
        pool.join()
        times.append((time.perf_counter() - t0) * 1e3)
        assert out[-1] == 999 * 999
    return statistics.median(times), max(times)


def main():
    mp.set_start_method('fork')
    # stopped by bench/run: unwind, so that the pools terminate their workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = sys.argv[1] if len(sys.argv) > 1 else ''
    with mp.Pool(2) as pool:
        for name, unit, fn in [
            ('map_1e6_ints', 'items/s', map_rate),
            ('map_1e7_ints', 'items/s', map_1e7_rate),
            ('starmap_1e6_pairs', 'items/s', starmap_rate),
            ('apply_async_1e5', 'tasks/s', apply_async_rate),
            ('apply_sync_1e4', 'us', apply_sync_us),
            ('imap_unordered_1e5_chunksize1', 'items/s', imap_unordered_rate),
        ]:
            if only in name:
                fn(pool)  # warm-up, as bench_pool.c
                value = statistics.median(fn(pool) for _ in range(RUNS))
                print(f'{name}\t{unit}\t{value:.3f}', flush=True)
    if only in 'pool_startup':
        print(f'pool_startup\tms\t{startup_ms():.3f}', flush=True)
    if only in 'pool_lifecycle':
        med, worst = lifecycle_ms()
        print(f'pool_lifecycle\tms\t{med:.3f}', flush=True)
        print(f'pool_lifecycle_max\tms\t{worst:.3f}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
