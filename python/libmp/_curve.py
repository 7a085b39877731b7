"""CURVE keys from czmq certificate files (zcert, ZPL format), as written by
`mp-client keygen NAME` (docs/PROTOCOL.md section 10)."""
import os
import re

import zmq
from zmq.utils import z85

_Z85 = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


def _is_z85_key(s):
    return isinstance(s, str) and len(s) == 40 and set(s) <= _Z85


def read_cert(path):
    """{'public-key': bytes(32), 'secret-key': bytes(32) or None} of a zcert file.
    Only the `curve` section is read; values may be quoted or bare."""
    keys = {}
    section = None
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue  # a comment line (a Z85 key may itself hold '#')
            if not line[0].isspace():
                section = line.strip()
                continue
            m = re.match(r'\s+([A-Za-z0-9$\-_@.&+/]+)\s*=\s*(?:"([^"]*)"|\'([^\']*)\'|(\S+))', line)
            if m and section == "curve":
                keys[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
    out = {}
    for k in ("public-key", "secret-key"):
        v = keys.get(k)
        if v is not None and _is_z85_key(v):
            out[k] = z85.decode(v.encode())
        else:
            out[k] = None
    if out["public-key"] is None:
        raise ValueError("%s: no curve public-key (make one: mp-client keygen NAME)" % path)
    return out


def server_key(spec):
    """The broker's public key from a NAME.key file or 40 Z85 characters."""
    if _is_z85_key(spec) and not os.path.exists(spec):
        return z85.decode(spec.encode())
    return read_cert(spec)["public-key"]


def setup_client(sock, own_secret_file, broker_key):
    """Makes sock a CURVE client: own keys from NAME.key_secret, the
    broker's from its NAME.key (or 40 Z85 characters)."""
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq has no CURVE support")
    own = read_cert(own_secret_file)
    if own["secret-key"] is None or own["secret-key"] == bytes(32):
        raise ValueError("%s holds no secret key: give the NAME.key_secret file" % own_secret_file)
    sock.curve_secretkey = own["secret-key"]
    sock.curve_publickey = own["public-key"]
    sock.curve_serverkey = server_key(broker_key)
