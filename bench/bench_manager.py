"""Python's multiprocessing.Manager() on the workloads of bench_manager.c.

Prints "name <TAB> unit <TAB> value" lines (median of RUNS runs), in
microseconds per operation. dict_incr_atomic is what Python needs for an
atomic d[k] += 1 from several processes: a manager Lock around the get and
the set.
"""
import multiprocessing as mp
import multiprocessing.managers
import statistics
import time

RUNS = 3
OPS = 20_000
KEYS = 1000


def per_op(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) / OPS * 1e6


def dict_set(d):
    for i in range(OPS):
        d[i % KEYS] = i


def dict_get(d):
    for i in range(OPS):
        d[i % KEYS]


def dict_incr(d, lock):
    for _ in range(OPS):
        with lock:
            d["counter"] = d.get("counter", 0) + 1


def list_append(lst):
    for i in range(OPS):
        lst.append(i)


def nested_set(d):
    """d['supplies']['water'] = i: a dict proxy stored in a dict proxy."""
    for i in range(OPS // 10):
        d["supplies"]["water"] = i


def remote_dict_ops():
    """A manager served on tcp loopback (BaseManager(address, authkey)):
    a get and a set through a proxy, us per call."""
    server = mp.managers.SyncManager(address=("127.0.0.1", 0), authkey=b"key")
    server.start()
    try:
        client = mp.managers.SyncManager(address=server.address, authkey=b"key")
        client.connect()
        d = client.dict()
        for i in range(KEYS):
            d[i] = i
        get = statistics.median(per_op(dict_get, d) for _ in range(RUNS))
        put = statistics.median(per_op(dict_set, d) for _ in range(RUNS))
        return get, put
    finally:
        server.shutdown()


def main():
    runs = {"dict_set": [], "dict_get": [], "dict_incr_atomic": [], "list_append": [],
            "nested_dict_set": []}
    with mp.Manager() as m:
        for _ in range(RUNS):
            d, lst, lock = m.dict(), m.list(), m.Lock()
            runs["dict_set"].append(per_op(dict_set, d))
            runs["dict_get"].append(per_op(dict_get, d))
            runs["dict_incr_atomic"].append(per_op(dict_incr, d, lock))
            runs["list_append"].append(per_op(list_append, lst))
            outer = m.dict(supplies=m.dict(water=0))
            runs["nested_dict_set"].append(per_op(nested_set, outer) * 10)  # OPS // 10 done
    for name, values in runs.items():
        print(f"{name}\tus/op\t{statistics.median(values):.4f}")
    remote, remote_set = remote_dict_ops()
    print(f"remote_dict_get_tcp\tus/op\t{remote:.4f}")
    print(f"remote_dict_set_tcp\tus/op\t{remote_set:.4f}")
    # Python's proxies have no batched get or set: a loop of proxy calls is
    # what a Python user writes, so the batched rows meet its per-call time
    print(f"remote_dict_get_many_tcp\tus/op\t{remote:.4f}")
    print(f"remote_dict_set_many_tcp\tus/op\t{remote:.4f}")


if __name__ == "__main__":
    main()
