"""python_curve: CURVE on (PROTOCOL.md 10). Keys from `mp-client keygen`;
the broker admits the Python client's key as a client and the Python
worker's as a worker. A C worker and the Python worker serve a Python client
and the mp-client CLI; a key not in the allow-list, or a client key used by
a worker... is refused (AuthError from Pool(), quickly)."""
import os
import subprocess
import time
import unittest

import cluster

import libmp


class Curve(unittest.TestCase):
    def test_curve_cluster(self):
        with cluster.Cluster() as cl:
            keys = os.path.join(cl.tmp, "keys")
            for part in ("workers", "clients"):
                os.makedirs(os.path.join(keys, "allow", part))
            for k in ("broker", "pyworker", "cworker", "client", "stranger"):
                subprocess.run([cluster.CLIENT, "keygen", os.path.join(keys, k)], check=True,
                               capture_output=True, timeout=10)
            for k, part in (("pyworker", "workers"), ("cworker", "workers"), ("client", "clients")):
                os.link(os.path.join(keys, k + ".key"), os.path.join(keys, "allow", part, k + ".key"))
            key = lambda k: os.path.join(keys, k)
            cl.broker("--curve-key", key("broker.key_secret"), "--allow-dir", key("allow"))
            cl.py_worker(None, 2, "--curve-key", key("pyworker.key_secret"),
                         "--curve-server-key", key("broker.key"))
            cl.c_worker(1, "--curve-key", key("cworker.key_secret"),
                        "--curve-server-key", key("broker.key"))
            ck = dict(curve_key=key("client.key_secret"), curve_server_key=key("broker.key"))
            cl.wait_processes(3, **ck)
            with libmp.Pool(cl.ep, heartbeat_ms=cluster.HB, **ck) as p:
                self.assertEqual(p.map("py_square", range(1000)), [x * x for x in range(1000)])
                self.assertEqual(p.map("square", range(1000)), [x * x for x in range(1000)])
            # the server key as 40 Z85 characters, as the CLI takes it
            with open(key("broker.key")) as f:
                z85 = f.read().split('public-key = "')[1][:40]
            with libmp.Pool(cl.ep, heartbeat_ms=cluster.HB, curve_key=ck["curve_key"],
                            curve_server_key=z85) as p:
                self.assertEqual(p.apply("py_add", (2, 3)), 5)
            r = subprocess.run(["timeout", "20", cluster.CLIENT, "-b", cl.ep, "--curve-key",
                                key("client.key_secret"), "--curve-server-key", key("broker.key"),
                                "apply", "py_square", "9"], capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout), (0, "81\n"), r.stderr)
            # refused: a stranger's key; a worker's key used by a client; no CURVE at all
            for own, exc in ((key("stranger.key_secret"), libmp.AuthError),
                             (key("pyworker.key_secret"), libmp.AuthError)):
                t0 = time.monotonic()
                with self.assertRaises(exc):
                    libmp.Pool(cl.ep, connect_timeout=8, curve_key=own,
                               curve_server_key=key("broker.key"))
                self.assertLess(time.monotonic() - t0, 5)
            with self.assertRaises(libmp.BrokerUnreachableError):
                libmp.Pool(cl.ep, connect_timeout=1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
