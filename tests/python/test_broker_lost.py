"""python_broker_lost: a lost broker never hangs a libmp.Pool call. With no
broker coming back, outstanding calls fail with BrokerLostError after
reconnect_timeout; with a broker restarted at the same address, the pool
resends the unanswered items (PROTOCOL.md 7.1) and the call completes, each
item once. Also: no broker at all -> BrokerUnreachableError from Pool()."""
import socket
import time
import unittest

import cluster

import libmp


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class BrokerLost(unittest.TestCase):
    def test_no_broker(self):
        t0 = time.monotonic()
        with self.assertRaises(libmp.BrokerUnreachableError):
            libmp.Pool("tcp://127.0.0.1:%d" % free_port(), connect_timeout=0.5)
        self.assertLess(time.monotonic() - t0, 3)

    def test_lost_for_good_fails_outstanding_calls(self):
        with cluster.Cluster() as cl:
            b = cl.broker()
            cl.c_worker(2)
            cl.wait_processes(2)
            p = libmp.Pool(cl.ep, heartbeat_ms=cluster.HB, reconnect_timeout=1.0)
            r = p.map_async("sleep_ms", [3000] * 4, chunksize=1)
            a = p.apply_async("sleep_ms", (3000,))
            time.sleep(0.3)
            cl.stop(b, signal_kill())
            t0 = time.monotonic()
            self.assertRaises(libmp.BrokerLostError, r.get, 15)
            self.assertRaises(libmp.BrokerLostError, a.get, 15)
            # 3 silent intervals, then reconnect_timeout
            self.assertLess(time.monotonic() - t0, 3 * cluster.HB / 1000 + 1.0 + 2)
            # a new call while no broker answers fails too, it does not wait forever
            self.assertRaises(libmp.BrokerLostError, p.apply_async("square", (2,)).get, 15)
            p.terminate()

    def test_broker_restart_resends(self):
        with cluster.Cluster() as cl:
            port = free_port()
            ep = "tcp://127.0.0.1:%d" % port
            b = cl.broker(bind=ep)
            cl.c_worker(2)
            cl.wait_processes(2)
            with libmp.Pool(ep, heartbeat_ms=cluster.HB, reconnect_timeout=20) as p:
                r = p.map_async("sleep_ms", [100] * 40, chunksize=2)
                time.sleep(0.5)
                cl.stop(b, signal_kill())
                cl.broker(bind=ep, name="broker2")
                self.assertEqual(r.get(30), [100] * 40)
                self.assertEqual(p.map("square", range(10)), [x * x for x in range(10)])


def signal_kill():
    import signal
    return signal.SIGKILL


if __name__ == "__main__":
    unittest.main(verbosity=2)
