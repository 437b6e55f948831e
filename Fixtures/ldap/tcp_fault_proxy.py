#!/usr/bin/env python3
"""A TCP proxy that misbehaves on purpose, to test that a directory read fails closed.

Modes:
  --upstream HOST:PORT --cut-after BYTES   forward both ways, but close the client connection once
                                           BYTES bytes went from the server to the client (a server
                                           that drops the connection in the middle of paging)
  --blackhole                              accept connections and never answer (a hung server)

Listens on --port (default: a free port) and writes the bound port to --port-file once listening;
runs until SIGTERM. Standard library only.
"""
import argparse
import os
import signal
import socket
import sys
import threading


def pump(src, dst, limit, counter, lock, on_limit):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if limit is not None:
                with lock:
                    room = limit - counter[0]
                    if room <= 0:
                        on_limit()
                        return
                    data = data[:room]
                    counter[0] += len(data)
                dst.sendall(data)
                with lock:
                    if counter[0] >= limit:
                        on_limit()
                        return
            else:
                dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_client(client, args):
    if args.blackhole:
        # Read and discard forever; never answer.
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass
        return
    host, port = args.upstream.rsplit(":", 1)
    upstream = socket.create_connection((host, int(port)))
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    counter, lock = [0], threading.Lock()

    def cut():
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    threading.Thread(target=pump, args=(client, upstream, None, counter, lock, cut), daemon=True).start()
    pump(upstream, client, args.cut_after, counter, lock, cut)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream")
    parser.add_argument("--cut-after", type=int)
    parser.add_argument("--blackhole", action="store_true")
    args = parser.parse_args()
    if not args.blackhole and not (args.upstream and args.cut_after is not None):
        parser.error("give --blackhole, or --upstream with --cut-after")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve_client, args=(client, args), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
