#!/usr/bin/env python3
"""TCP relay for scripts/bench-execute.sh: 127.0.0.1:<free port> → 127.0.0.1:<upstream port>.

The fake API server (tiny_http) writes a response larger than 1 KiB in two segments without
TCP_NODELAY; on a kept-alive connection Nagle then holds the second segment until kubectl's
delayed ACK (~40 ms), a stall per request that a real API server (Go sets TCP_NODELAY) does not
have. This relay sets TCP_NODELAY both ways and TCP_QUICKACK on its upstream socket, so both
approaches in the benchmark see a server that answers at its real speed. Prints the port.
"""
import socket
import sys
import threading


def pump(src, dst, quickack):
    try:
        while True:
            if quickack:
                src.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    upstream = int(sys.argv[1])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", upstream))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(client, server, False), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, True), daemon=True).start()


if __name__ == "__main__":
    main()
