"""``python app.py`` with the network watched: run by the browser tests as the one app they share.

Every socket connection, datagram and name lookup towards a non-loopback address is refused and written, one
JSON line each, to the file named by ``$GEODISTILL_NET_LOG`` (the test asserts it stays empty). The arguments
are app.py's.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys

NET_LOG = os.environ["GEODISTILL_NET_LOG"]
_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_getaddrinfo, _gethostbyname = socket.getaddrinfo, socket.gethostbyname


def is_local(host) -> bool:
    if host in (None, "", "localhost", b"localhost"):
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a name other than localhost would need a lookup
    return address.is_loopback or address.is_unspecified


def refuse(what: str, target) -> None:
    with open(NET_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"what": what, "target": repr(target)}) + "\n")
    raise OSError(f"the test refuses network access: {what} {target!r}")


def _inet(sock) -> bool:
    return sock.family in (socket.AF_INET, socket.AF_INET6)


def connect(self, address):
    if _inet(self) and not is_local(address[0]):
        refuse("connect", address)
    return _connect(self, address)


def connect_ex(self, address):
    if _inet(self) and not is_local(address[0]):
        refuse("connect", address)
    return _connect_ex(self, address)


def sendto(self, data, *args):
    address = args[-1]
    if _inet(self) and not is_local(address[0]):
        refuse("sendto", address)
    return _sendto(self, data, *args)


def getaddrinfo(host, *args, **kwargs):
    if not is_local(host):
        refuse("getaddrinfo", host)
    return _getaddrinfo(host, *args, **kwargs)


def gethostbyname(host):
    if not is_local(host):
        refuse("gethostbyname", host)
    return _gethostbyname(host)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
socket.getaddrinfo, socket.gethostbyname = getaddrinfo, gethostbyname

if __name__ == "__main__":
    import app

    app.main(sys.argv[1:])
