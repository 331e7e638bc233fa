"""Real archive servers on 127.0.0.1 serving a folder, for tests and the demo.

:class:`FtpTestServer` runs pyftpdlib in a thread; :class:`SftpTestServer`
runs asyncssh's SFTP server in a thread (asyncssh is needed for it only).
Both serve ``root`` read-only to one user and can misbehave on purpose:

* ``silent = True``: connections are accepted and never answered (a hung
  server; clients time out);
* ``drop_after = N`` (FTP): the first transfer of each file is cut, control
  and data connection alike, after N bytes (a dropped connection);
* ``offer_hash = True`` (FTP): the server advertises and answers ``HASH``
  with SHA-256;
* ``mlsd = False`` (FTP): MLSD/MLST are unknown commands, so clients list with LIST;
* ``extra_lines`` (FTP): ``{folder: [raw lines]}`` sent after a folder's real
  entries by MLSD (or by LIST with ``mlsd = False``: then in ``ls -l`` form),
  e.g. hostile names or garbage facts; ``endless = True`` makes every
  MLSD listing go on for ever (a broken or hostile server);
* ``extra_names`` (SFTP): ``{folder: [raw name bytes]}`` listed after a folder's
  real entries, each with the attributes of ``stand_in`` (a real file).

Example
-------
>>> with FtpTestServer(folder) as server:                     # doctest: +SKIP
...     table = server.archive_table()   # protocol/host/port/user/password_env
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

#: Environment variable the test servers' password is published in (archive_table()).
PASSWORD_ENV = "IOPREPORT_TEST_ARCHIVE_PASSWORD"


class FtpTestServer:
    """A pyftpdlib FTP server on 127.0.0.1 serving ``root`` in a background thread."""

    def __init__(
        self,
        root: Path | str,
        *,
        user: str = "iopreport",
        password: str = "secret",
        port: int = 0,
        encoding: str = "utf-8",
        mlsd: bool = True,
        offer_hash: bool = False,
        drop_after: int | None = None,
        extra_lines: dict[str, list[str | bytes]] | None = None,
        endless: bool = False,
    ):
        self.root = Path(root)
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self.encoding = encoding
        self.extra_lines = extra_lines or {}
        self.endless = endless
        self.mlsd = mlsd
        self.offer_hash = offer_hash
        self.drop_after = drop_after
        self.silent = False
        self.dropped: set[str] = set()  # files whose first transfer was cut
        self.retrievals: list[tuple[str, int]] = []  # (path, REST offset) of every RETR
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------
    def start(self) -> FtpTestServer:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.root), perm="elr")
        handler = _handler_class(self)
        handler.authorizer = authorizer
        # an IOLoop of its own: pyftpdlib's default one is shared by every server
        # of the process, and two threads polling it corrupt each other's transfers
        self._server = FTPServer((self.host, self._requested_port), handler, ioloop=IOLoop())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"timeout": 0.1, "blocking": True, "handle_exit": False},
            name="ftp-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FtpTestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.socket.getsockname()[1]

    def archive_table(self, root: str = "/", **extra) -> dict[str, Any]:
        """An ``[archives.<T>]`` table for this server; sets the password variable."""
        os.environ[PASSWORD_ENV] = self.password
        return {
            "enabled": True,
            "protocol": "ftp",
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password_env": PASSWORD_ENV,
            "root": root,
            "encoding": self.encoding,
            **extra,
        }


def _handler_class(server: FtpTestServer):
    """FTPHandler and DTPHandler subclasses bound to one server's switches."""
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.handlers.ftp.producers import BufferedIteratorProducer

    class CuttingDTPHandler(DTPHandler):
        _limit: int | None = None
        _decided = False

        def send(self, data):
            if not self._decided:  # the RETR this channel serves is known once data flows
                self._decided = True
                path = getattr(self.cmd_channel, "_retr_path", None)
                if server.drop_after is not None and path and path not in server.dropped:
                    server.dropped.add(path)
                    self._limit = server.drop_after
            if self._limit is not None and self.tot_bytes_sent + len(data) > self._limit:
                data = data[: max(0, self._limit - self.tot_bytes_sent)]
                if data:
                    super().send(data)
                self.cmd_channel.close()  # the connection drops, control channel included
                self.close()
                return 0
            return super().send(data)

    proto_cmds = dict(FTPHandler.proto_cmds)
    if not server.mlsd:
        proto_cmds.pop("MLSD", None)
        proto_cmds.pop("MLST", None)
    if server.offer_hash:
        proto_cmds["HASH"] = {
            "perm": "r",
            "auth": True,
            "arg": True,
            "help": "Syntax: HASH <SP> file-name (SHA-256 of a file).",
        }

    class TestFTPHandler(FTPHandler):
        dtp_handler = CuttingDTPHandler
        use_sendfile = False  # every byte goes through DTPHandler.send (drop_after)
        encoding = (
            server.encoding.replace("-", "") if server.encoding == "utf-8" else server.encoding
        )
        banner = "iopreport test archive"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.proto_cmds = proto_cmds
            if server.offer_hash:
                self._extra_feats = [*self._extra_feats, "HASH SHA-256*"]

        def handle(self):
            if server.silent:  # accept, never greet: the client's timeout must fire
                return
            super().handle()

        def ftp_MLSD(self, path):
            extra = server.extra_lines.get(self.fs.fs2ftp(path).rstrip("/") or "/")
            if not (extra or server.endless) or not self.fs.isdir(path):
                return super().ftp_MLSD(path)
            listing = self.run_as_current_user(self.fs.listdir, path)
            perms = self.authorizer.get_perms(self.username)
            real = self.fs.format_mlsx(path, listing, perms, self._current_facts)

            def lines():
                yield from real
                for line in extra or ():
                    raw = line if isinstance(line, bytes) else line.encode(self.encoding)
                    yield raw + b"\r\n"
                count = 0
                while server.endless:
                    count += 1
                    yield f"type=file;size=1; junk{count:012d}.txt\r\n".encode()

            self.push_dtp_data(BufferedIteratorProducer(lines()), isproducer=True, cmd="MLSD")
            return path

        def ftp_LIST(self, path):
            extra = server.extra_lines.get(self.fs.fs2ftp(path).rstrip("/") or "/")
            if not extra or not self.fs.isdir(path):
                return super().ftp_LIST(path)
            listing = sorted(self.run_as_current_user(self.fs.listdir, path))
            real = self.fs.format_list(path, listing)

            def lines():
                yield from real
                for line in extra:
                    raw = line if isinstance(line, bytes) else line.encode(self.encoding)
                    yield raw + b"\r\n"

            self.push_dtp_data(BufferedIteratorProducer(lines()), isproducer=True, cmd="LIST")
            return path

        def ftp_RETR(self, file):
            self._retr_path = file
            server.retrievals.append((self.fs.fs2ftp(file), self._restart_position))
            return super().ftp_RETR(file)

        def ftp_HASH(self, path):
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            size = os.path.getsize(path)
            self.respond(f"213 SHA-256 0-{size} {digest} {self.fs.fs2ftp(path)}")

    return TestFTPHandler


class SftpTestServer:
    """An asyncssh SFTP server on 127.0.0.1, chrooted to ``root``, in a background thread."""

    def __init__(
        self,
        root: Path | str,
        *,
        user: str = "iopreport",
        password: str = "secret",
        port: int = 0,
        extra_names: dict[str, list[bytes]] | None = None,
        stand_in: Path | None = None,
    ):
        self.root = Path(root)
        self.extra_names = extra_names or {}
        self.stand_in = stand_in
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self._requested_port = port
        self._port = 0
        self._loop: Any = None
        self._listener: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> SftpTestServer:
        import asyncio

        import asyncssh

        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        ready = threading.Event()
        failure: list[BaseException] = []
        outer = self

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username):
                return True

            def password_auth_supported(self):
                return True

            def validate_password(self, username, password):
                return username == outer.user and password == outer.password

        class RootedSFTP(asyncssh.SFTPServer):
            def __init__(self, chan):
                super().__init__(chan, chroot=str(outer.root).encode())

            async def scandir(self, path):
                async for entry in super().scandir(path):
                    yield entry
                extra = outer.extra_names.get(path.decode(errors="replace").rstrip("/") or "/")
                if extra and outer.stand_in is not None:
                    attrs = asyncssh.SFTPAttrs.from_local(os.stat(outer.stand_in))
                    for name in extra:
                        yield asyncssh.SFTPName(name, name, attrs)

        async def serve():
            key = asyncssh.generate_private_key("ssh-ed25519")
            self._listener = await asyncssh.listen(
                self.host,
                self._requested_port,
                server_host_keys=[key],
                server_factory=Server,
                sftp_factory=RootedSFTP,
                allow_scp=False,
            )
            self._port = self._listener.sockets[0].getsockname()[1]

        def run():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="sftp-test-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._listener is not None:
            import asyncio

            async def shut():
                self._listener.close()
                await self._listener.wait_closed()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> SftpTestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    def archive_table(self, root: str = "/", **extra) -> dict[str, Any]:
        """An ``[archives.<T>]`` table for this server; sets the password variable."""
        os.environ[PASSWORD_ENV] = self.password
        return {
            "enabled": True,
            "protocol": "sftp",
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password_env": PASSWORD_ENV,
            "root": root,
            **extra,
        }


@contextlib.contextmanager
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
