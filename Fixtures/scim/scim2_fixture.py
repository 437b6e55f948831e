#!/usr/bin/env python3
"""Starts the real SCIM 2.0 server from PyPI (`scim2-server`) on 127.0.0.1 and seeds it.

  scim2_fixture.py --port-file PATH [--users N] [--inactive-every K] [--token T]

Picks a free port, starts `scim2-server` (installed with `pip install scim2-server`), waits until it
answers, creates N users `user000001`… through /Bulk (1,000 operations per request), every K-th one
with `active: false` and every user with `externalId` = uuid5(NAMESPACE_URL, "user:" + userName)
(the same ids as the slapd fixture's entryUUIDs), writes the port to PATH, and stays in the foreground
until SIGTERM, which it passes on to the server. Standard library only.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/scim+json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--inactive-every", type=int, default=0)
    parser.add_argument("--token")
    args = parser.parse_args()
    repo_venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv", "bin", "scim2-server")
    exe = shutil.which("scim2-server") or (repo_venv if os.access(repo_venv, os.X_OK) else None)
    if not exe:
        sys.exit("scim2-server is not installed: pip install scim2-server")
    port = free_port()
    cmd = [exe, "--hostname", "127.0.0.1", "--port", str(port)]
    if args.token:
        cmd += ["--bearer-token", args.token]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Only pass the signal on: the main thread is (or will be) in server.wait(), whose lock a handler
    # calling wait() again would deadlock on.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    base = "http://127.0.0.1:%d" % port
    for _ in range(200):
        try:
            request("GET", base + "/ServiceProviderConfig", args.token)
            break
        except Exception:
            if server.poll() is not None:
                sys.exit("scim2-server exited with %s" % server.returncode)
            time.sleep(0.05)
    else:
        server.terminate()
        sys.exit("scim2-server did not answer on %s" % base)
    ops = []
    for i in range(1, args.users + 1):
        name = "user%06d" % i
        ops.append({"method": "POST", "path": "/Users", "bulkId": name, "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "externalId": str(uuid.uuid5(uuid.NAMESPACE_URL, "user:" + name)),
            "active": not (args.inactive_every and i % args.inactive_every == 0)}})
        if len(ops) == 1000 or i == args.users:
            status, body = request("POST", base + "/Bulk", args.token,
                                   {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
            results = json.loads(body).get("Operations", [])
            bad = [r for r in results if str(r.get("status")) != "201"]
            if bad:
                server.terminate()
                sys.exit("seeding failed: %s" % bad[:3])
            ops = []
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.port_file)
    server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
