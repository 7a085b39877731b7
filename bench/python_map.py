"""The Python client's map against multiprocessing.Pool, in one run.

    /usr/bin/python3 bench/python_map.py tcp://HOST:PORT

libmp: libmp.Pool(broker).map("square", range(10**6)) on the cluster behind
the broker (bench/run python: mp-broker + two mp-worker -p 1 serving
libbench_tasks.so's square); python: multiprocessing.Pool(2).map(square,
range(10**6)) locally. Both with their default chunksize (Python's rule:
len / (4 * processes)), each timed after an untimed warm-up run, the median
of RUNS runs, building the input and receiving every result included.
Prints "name <TAB> unit <TAB> libmp <TAB> python <TAB> ratio" (ratio > 1:
the libmp client is faster).
"""
import multiprocessing
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import libmp  # noqa: E402

RUNS = 5
N = 10**6


def square(x):
    return x * x


def rate(pool, fn):
    pool.map(fn, range(N))  # warm-up
    rates = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        out = pool.map(fn, range(N))
        rates.append(N / (time.perf_counter() - t0))
        assert len(out) == N and out[-1] == (N - 1) ** 2
    return statistics.median(rates)


def main():
    broker = sys.argv[1]
    with libmp.Pool(broker, connect_timeout=10) as pool:
        ours = rate(pool, "square")
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        theirs = rate(pool, square)
    finally:
        pool.terminate()
        pool.join()
    print("python_client_map_1e6_ints_tcp\titems/s\t%.3f\t%.3f\t%.2f" % (ours, theirs, ours / theirs))


if __name__ == "__main__":
    main()
