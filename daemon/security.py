"""ZeroMQ CURVE for the daemon, hub and listen: key folders, the loopback rule, and socket set-up.

Events and the control socket are plaintext and unauthenticated on loopback. Anything reachable from another machine
must be encrypted and limited to known clients, so binding (or connecting) to a non-loopback address is refused unless
a CURVE key folder is given. The folder `wordstamp keys DIR` makes:

    DIR/server.key, DIR/server.key_secret        the daemon's (or hub's) key pair
    DIR/client.key, DIR/client.key_secret        a subscriber's key pair
    DIR/authorized_clients/client.key            public keys the server accepts (add more .key files to allow more)

Secret files are mode 0600. A server needs server.key_secret + authorized_clients/; a client needs server.key +
client.key_secret. A client whose public key is not authorised, or who has not the server's public key, gets nothing.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class CurveError(ValueError):
    """A key folder that cannot be used; str() is one line."""


LOCAL_SCHEMES = ("ipc://", "inproc://")


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost (never `*` or 0.0.0.0)."""
    if endpoint.startswith(LOCAL_SCHEMES):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    rest = endpoint[len("tcp://"):]
    if ";" in rest:  # tcp://src;dst form: judge the destination
        rest = rest.split(";", 1)[1]
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # `*`, an interface name or a host name: not provably loopback
        return False


def create_keys(folder: str | os.PathLike) -> dict[str, Path]:
    """Make server and client key pairs in `folder` (refuses to overwrite); secret files 0600."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        for suffix in (".key", ".key_secret"):
            if (d / f"{name}{suffix}").exists():
                raise CurveError(f"{d / (name + suffix)}: exists, not overwritten")
    old = os.umask(0o077)  # the secret files never exist with wider permissions, even briefly
    try:
        server_pub, server_sec = zmq.auth.create_certificates(str(d), "server")
        client_pub, client_sec = zmq.auth.create_certificates(str(d), "client")
    finally:
        os.umask(old)
    for sec in (server_sec, client_sec):
        os.chmod(sec, 0o600)
    for pub in (server_pub, client_pub):
        os.chmod(pub, 0o644)
    auth = d / "authorized_clients"
    auth.mkdir(exist_ok=True)
    shutil.copyfile(client_pub, auth / "client.key")
    return {"server_public": Path(server_pub), "server_secret": Path(server_sec),
            "client_public": Path(client_pub), "client_secret": Path(client_sec), "authorized": auth}


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise CurveError(f"{path}: no such key file (make one with `wordstamp keys {path.parent}`)")
    if secret and path.stat().st_mode & 0o077:
        raise CurveError(f"{path}: secret key is readable by others (chmod 600 it)")
    try:
        pub, sec = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise CurveError(f"{path}: not a ZeroMQ certificate ({str(exc).splitlines()[0]})") from None
    if secret and sec is None:
        raise CurveError(f"{path}: holds no secret key")
    return pub, sec


@dataclass
class Curve:
    """A loaded key folder: makes sockets CURVE servers (with client authentication) or clients."""

    folder: Path
    _auth: ThreadAuthenticator | None = None

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Curve":
        d = Path(folder)
        if not d.is_dir():
            raise CurveError(f"{d}: no such key folder (make one with `wordstamp keys {d}`)")
        return cls(d)

    def check_server(self) -> None:
        _load(self.folder / "server.key_secret", True)
        if not (self.folder / "authorized_clients").is_dir():
            raise CurveError(f"{self.folder / 'authorized_clients'}: no such folder of client public keys")

    def check_client(self) -> None:
        _load(self.folder / "server.key", False)
        _load(self.folder / "client.key_secret", True)

    def start_auth(self, ctx: zmq.Context) -> None:
        """ZAP handler for `ctx`: only clients whose public key is in authorized_clients/ get through."""
        if self._auth is None:
            self._auth = ThreadAuthenticator(ctx)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(self.folder / "authorized_clients"))

    def stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def server(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE server (call before bind); start_auth on its context first."""
        pub, sec = _load(self.folder / "server.key_secret", True)
        sock.curve_secretkey = sec
        sock.curve_publickey = pub
        sock.curve_server = True

    def client(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE client of the server in this folder (call before connect)."""
        server_pub, _ = _load(self.folder / "server.key", False)
        pub, sec = _load(self.folder / "client.key_secret", True)
        sock.curve_secretkey = sec
        sock.curve_publickey = pub
        sock.curve_serverkey = server_pub


def require_keys(endpoints: dict[str, str | None], curve: str | None) -> None:
    """Refuse non-loopback endpoints without a key folder: ValueError naming the key."""
    if curve:
        return
    for key, ep in endpoints.items():
        if ep and not is_loopback(ep):
            raise ValueError(f"key '{key}': {ep} is not a loopback address; exposing events or control to the "
                             "network needs CURVE keys (`wordstamp keys DIR`, then --curve DIR)")
