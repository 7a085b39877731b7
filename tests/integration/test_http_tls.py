"""test_http_tls.py BUILD_DIR - the broker's HTTP port secured (docs/CLUSTER.md
7): HTTPS with the operator's certificate and a bearer token, what a request
without the token gets, and the loopback-or-secured rule for --http.

The certificate is a test fixture (tests/fixtures/tls: self-signed for
127.0.0.1, not a secret). Its own mp-broker processes, each killed and
waited for; every wait bounded. Run by /usr/bin/python3 (standard library).
"""
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "build"
BROKER = os.path.join(BUILD, "broker", "mp-broker")
TLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tls")
CERT, KEY = os.path.join(TLS, "cert.pem"), os.path.join(TLS, "key.pem")
TOKEN = "s3cret-token-of-the-test-0123"


class SecuredHttp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.token_file = os.path.join(self.tmp.name, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
            p.wait(timeout=10)
        self.tmp.cleanup()

    def broker(self, *args):
        """mp-broker ARGS on a free port: (its stdout lines, the process)."""
        p = subprocess.Popen([BROKER, "--bind", "tcp://127.0.0.1:0", "-q", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        lines = []
        deadline = time.monotonic() + 10
        while len(lines) < 2 and time.monotonic() < deadline and p.poll() is None:
            line = p.stdout.readline()
            if line:
                lines.append(line.strip())
        return lines, p

    def get(self, url, token=None):
        ctx = ssl.create_default_context(cafile=CERT)
        req = urllib.request.Request(url)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()

    def test_https_with_a_token(self):
        lines, _ = self.broker("--http", "127.0.0.1:0", "--http-cert", CERT, "--http-key", KEY,
                               "--http-token", self.token_file)
        self.assertEqual(len(lines), 2, "endpoint and URL printed")
        url = lines[1]
        self.assertTrue(url.startswith("https://127.0.0.1:") and url.endswith("/metrics"), url)
        base = url[:-len("/metrics")]
        status, ctype, body = self.get(url, TOKEN)
        self.assertEqual(status, 200)
        self.assertIn("mp_broker_uptime_seconds", body)
        status, _, body = self.get(base + "/api/status", TOKEN)
        self.assertEqual(status, 200)
        self.assertIn("workers", json.loads(body))
        status, _, body = self.get(base + "/?token=" + TOKEN)
        self.assertEqual(status, 200)
        self.assertIn("libmp cluster", body)
        # without the token, or a wrong one: 401, nothing of the cluster
        for tok in (None, "s3cret-token-of-the-test-0124", TOKEN + "x", ""):
            status, _, body = self.get(url, tok)
            self.assertEqual(status, 401, tok)
            self.assertNotIn("mp_broker", body)
        status, _, _ = self.get(base + "/api/status?token=nope")
        self.assertEqual(status, 401)
        # plain HTTP to the HTTPS port gets nothing
        with self.assertRaises(Exception):
            urllib.request.urlopen(url.replace("https:", "http:"), timeout=5).read()

    def test_off_loopback_needs_tls_and_token_or_insecure(self):
        # all three: it starts, and says https
        lines, p = self.broker("--http", "0.0.0.0:0", "--http-cert", CERT, "--http-key", KEY,
                               "--http-token", self.token_file)
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[1].startswith("https://"), lines[1])
        # without the token (or without TLS): refused, exit 2, said why
        for extra in (["--http-cert", CERT, "--http-key", KEY],
                      ["--http-token", self.token_file], []):
            lines, p = self.broker("--http", "0.0.0.0:0", *extra)
            self.assertEqual(p.wait(timeout=10), 2, extra)
            self.assertIn("secure it", p.stderr.read())
        # --insecure: it starts, plain HTTP
        lines, p = self.broker("--http", "0.0.0.0:0", "--insecure")
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[1].startswith("http://"), lines[1])

    def test_loopback_without_a_token_wants_a_loopback_host(self):
        # DNS rebinding: a page elsewhere naming its own host that resolves to 127.0.0.1
        lines, _ = self.broker("--http", "127.0.0.1:0")
        url = lines[1]
        for host, status in (("evil.example:80", 403), ("127.0.0.1", 200),
                             ("localhost:9470", 200)):
            req = urllib.request.Request(url, headers={"Host": host})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    got = r.status
            except urllib.error.HTTPError as e:
                got = e.code
            self.assertEqual(got, status, host)

    def test_bad_settings_are_refused(self):
        short = os.path.join(self.tmp.name, "short")
        with open(short, "w") as f:
            f.write("tooshort\n")
        cases = [(["--http-cert", CERT], "both --http-cert and --http-key"),
                 (["--http-token", short], "at least 16 characters"),
                 (["--http-token", os.path.join(self.tmp.name, "absent")], "absent")]
        for extra, said in cases:
            _, p = self.broker("--http", "127.0.0.1:0", *extra)
            self.assertEqual(p.wait(timeout=10), 1, extra)
            self.assertIn(said, p.stderr.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
