#!/usr/bin/env python3
"""A small SCIM 2.0 /Users endpoint that can lie, to test that a directory read fails closed.

  scim_fake_server.py --port-file PATH --mode MODE [--users N]

Serves GET /Users?startIndex=&count= over N users (ids u000001…, userName user000001…). Modes:
  honest              correct pages (also the baseline)
  short-pages         honest, but at most 3 resources per page whatever count asks (RFC 7644 allows it)
  wrong-total         totalResults claims N+5
  empty-page          page 2 is empty while users remain
  duplicate-ids       page 2 repeats the first user of page 1
  invalid-json        page 2 is not JSON
  error-page2         page 2 answers 500
  items-mismatch      itemsPerPage disagrees with the resources on page 1
  total-changes-once  totalResults changes on page 2 of the first listing only (a restart succeeds)
  total-changes       totalResults changes on every listing's page 2
  unauthorized        every request answers 401
--tls-cert/--tls-key serve HTTPS. Standard library only; TCP_NODELAY; quiet.
"""
import argparse
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"listings": 0}
LOCK = threading.Lock()


def make_handler(mode, users):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send(self, status, body, raw=False):
            data = body if raw else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path.rstrip("/") not in ("/Users", "/v2/Users"):
                return self.send(404, {"status": "404", "detail": "not found"})
            if mode == "unauthorized":
                return self.send(401, {"status": "401", "detail": "unauthorized"})
            q = urllib.parse.parse_qs(url.query)
            start = int(q.get("startIndex", ["1"])[0])
            count = int(q.get("count", ["100"])[0])
            if mode == "short-pages":
                count = min(count, 3)
            page_no = 1 if start == 1 else 2
            with LOCK:
                if start == 1:
                    STATE["listings"] += 1
                listing = STATE["listings"]
            total = len(users)
            items = users[start - 1:start - 1 + count]
            if mode == "wrong-total":
                total += 5
            if page_no == 2 and mode == "empty-page":
                items = []
            if page_no == 2 and mode == "duplicate-ids":
                items = [users[0]] + items[1:]
            if page_no == 2 and mode == "invalid-json":
                return self.send(200, b'{"totalResults": 1, "Resources": [', raw=True)
            if page_no == 2 and mode == "error-page2":
                return self.send(500, {"status": "500", "detail": "boom"})
            if page_no == 2 and (mode == "total-changes" or (mode == "total-changes-once" and listing == 1)):
                total += 1
            per_page = len(items) + (1 if mode == "items-mismatch" else 0)
            self.send(200, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                            "totalResults": total, "startIndex": start, "itemsPerPage": per_page, "Resources": items})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--mode", default="honest")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    users = [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u%06d" % i,
              "userName": "user%06d" % i, "active": i % 4 != 0} for i in range(1, args.users + 1)]
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args.mode, users))
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
