"""A fake of Pterodactyl Wings for the import tests: its SFTP server and the few routes of
its HTTP API the switch-over calls. Not Wings: an asyncssh SFTP server and a small
asyncio HTTP server written for the tests.

SFTP, like Wings: password logins `<panel user>.<server identifier>` (the identifier is
the first 8 characters of the server's UUID), each rooted at `ROOT/<identifier>`; the
password is checked against `--password` (Wings asks its panel; here one password opens
every server, like a root admin's). Every request that would write (open for writing,
mkdir, remove, rename, setstat, symlink...) is refused and recorded, so a test can
check that nothing was written on the old side.

    wings_sftp.py --root DIR --password PW [--user NAME] [--drop-after BYTES]
                  [--token TOKEN] [--stop-delay SECONDS]

`--drop-after N`: the first connection that has been served N bytes of file data is cut
(the source vanishing mid-copy); later connections are served whole.

HTTP (Wings' API, authenticated by `Authorization: Bearer TOKEN`):
  GET  /api/servers/{uuid}         -> {"state": "running"|"stopping"|"offline", ...}
  POST /api/servers/{uuid}/power   {"action": "start"|"stop"|"restart"|"kill"} -> 202
A stopped server goes `stopping`, then `offline` after `--stop-delay` seconds. Every
server starts `running`. And for the tests (no token):
  GET  /_fake/log                  -> {"writes": [...], "power": [...], "bytes_served": N,
                                       "dropped": bool, "logins": [...]}

Prints one JSON line on stdout once listening:
  {"sftp_port": P, "http_port": Q, "host_key": "ssh-ed25519 AAAA..."}
Stops on SIGTERM/SIGINT. scripts/dev-services installs asyncssh into
~/.cache/shardlyn/venv.
"""

import argparse
import asyncio
import json
import os
import signal
import sys

import asyncssh
import asyncssh.sftp


def decimal_handle(self):
    """Wings (Go's pkg/sftp) hands out decimal handles ("1", "2", ...); asyncssh's are
    4 raw bytes, which clients that keep handles as text (russh-sftp) mangle once a byte
    is past 0x7f. The fake hands out Wings' kind."""
    while True:
        handle = str(self._next_handle).encode()
        self._next_handle = (self._next_handle + 1) & 0xFFFFFFFF
        if handle not in self._file_handles and handle not in self._dir_handles:
            return handle


asyncssh.sftp.SFTPServerHandler._get_next_handle = decimal_handle


class State:
    def __init__(self, args):
        self.root = os.path.realpath(args.root)
        self.password = args.password
        self.user = args.user
        self.drop_after = args.drop_after
        self.token = args.token
        self.stop_delay = args.stop_delay
        self.bytes_served = 0
        self.dropped = False
        self.writes = []
        self.power = []
        self.logins = []
        self.servers = {}


STATE = None


def identifier_of(username):
    if "." not in username:
        return None, None
    user, ident = username.rsplit(".", 1)
    return user, ident


class Server(asyncssh.SSHServer):
    def begin_auth(self, username):
        return True

    def password_auth_supported(self):
        return True

    def kbdint_auth_supported(self):
        return False

    def public_key_auth_supported(self):
        return False

    def validate_password(self, username, password):
        user, ident = identifier_of(username)
        ok = (
            ident is not None
            and (STATE.user is None or user == STATE.user)
            and password == STATE.password
            and len(ident) == 8
            and os.path.isdir(os.path.join(STATE.root, ident))
        )
        STATE.logins.append({"username": username, "ok": ok})
        return ok


def refuse(what, path=b""):
    STATE.writes.append({"op": what, "path": path.decode("utf-8", "replace")})
    raise asyncssh.SFTPPermissionDenied("this fake is read only: " + what)


class WingsSFTP(asyncssh.SFTPServer):
    def __init__(self, chan):
        _, ident = identifier_of(chan.get_extra_info("username"))
        super().__init__(chan, chroot=os.path.join(STATE.root, ident).encode())

    def open(self, path, pflags, attrs):
        if pflags & (
            asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
        ):
            refuse("open-write", path)
        return super().open(path, pflags, attrs)

    def read(self, file_obj, offset, size):
        data = super().read(file_obj, offset, size)
        STATE.bytes_served += len(data)
        if (
            STATE.drop_after is not None
            and not STATE.dropped
            and STATE.bytes_served >= STATE.drop_after
        ):
            STATE.dropped = True
            self.connection.abort()
        return data

    def write(self, file_obj, offset, data):
        refuse("write")

    def readlink(self, path):
        # The link's target as written (asyncssh's own resolves it against the chroot
        # and hides targets outside it; Wings answers the raw target).
        return os.readlink(self.map_path(path))

    def setstat(self, path, attrs):
        refuse("setstat", path)

    def fsetstat(self, file_obj, attrs):
        refuse("fsetstat")

    def remove(self, path):
        refuse("remove", path)

    def mkdir(self, path, attrs):
        refuse("mkdir", path)

    def rmdir(self, path):
        refuse("rmdir", path)

    def rename(self, oldpath, newpath):
        refuse("rename", oldpath)

    def posix_rename(self, oldpath, newpath):
        refuse("posix-rename", oldpath)

    def symlink(self, oldpath, newpath):
        refuse("symlink", newpath)

    def link(self, oldpath, newpath):
        refuse("link", newpath)


async def http_handler(reader, writer):
    try:
        request = await reader.readline()
        parts = request.decode("latin-1").split()
        if len(parts) < 2:
            return
        method, target = parts[0], parts[1]
        headers = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        body = await reader.readexactly(length) if length else b""
        status, answer = route(method, target, headers, body)
        payload = b"" if answer is None else json.dumps(answer).encode()
        reason = {200: "OK", 202: "Accepted", 204: "No Content", 401: "Unauthorized",
                  404: "Not Found", 422: "Unprocessable Entity"}.get(status, "OK")
        head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(payload)}\r\n"
        if payload:
            head += "Content-Type: application/json\r\n"
        head += "Connection: close\r\n\r\n"
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def server_state(uuid):
    entry = STATE.servers.setdefault(uuid, {"state": "running", "offline_at": None})
    loop = asyncio.get_running_loop()
    if entry["state"] == "stopping" and loop.time() >= entry["offline_at"]:
        entry["state"] = "offline"
    return entry


def route(method, target, headers, body):
    path = target.split("?", 1)[0]
    if path == "/_fake/log" and method == "GET":
        return 200, {
            "writes": STATE.writes,
            "power": STATE.power,
            "bytes_served": STATE.bytes_served,
            "dropped": STATE.dropped,
            "logins": STATE.logins,
        }
    if headers.get("authorization") != f"Bearer {STATE.token}":
        return 401, {"errors": [{"code": "HttpForbiddenException", "status": "401",
                                 "detail": "invalid token"}]}
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 3 and segments[:2] == ["api", "servers"]:
        uuid = segments[2]
        if len(segments) == 3 and method == "GET":
            entry = server_state(uuid)
            return 200, {"state": entry["state"], "is_suspended": False,
                         "utilization": {"state": entry["state"]}}
        if len(segments) == 4 and segments[3] == "power" and method == "POST":
            try:
                action = json.loads(body or b"{}").get("action")
            except ValueError:
                action = None
            if action not in ("start", "stop", "restart", "kill"):
                return 422, {"errors": [{"detail": "bad action"}]}
            STATE.power.append({"uuid": uuid, "action": action})
            entry = server_state(uuid)
            loop = asyncio.get_running_loop()
            if action in ("stop", "kill"):
                entry["state"] = "stopping"
                entry["offline_at"] = loop.time() + (0 if action == "kill" else STATE.stop_delay)
            else:
                entry["state"] = "running"
            return 202, None
    return 404, {"errors": [{"detail": "not found"}]}


async def main():
    global STATE
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--drop-after", type=int, default=None)
    parser.add_argument("--token", default="wings-token")
    parser.add_argument("--stop-delay", type=float, default=0.3)
    args = parser.parse_args()
    STATE = State(args)

    key = asyncssh.generate_private_key("ssh-ed25519")
    sftp = await asyncssh.create_server(
        Server,
        "127.0.0.1",
        0,
        server_host_keys=[key],
        sftp_factory=WingsSFTP,
        allow_scp=False,
    )
    http = await asyncio.start_server(http_handler, "127.0.0.1", 0)
    ready = {
        "sftp_port": sftp.sockets[0].getsockname()[1],
        "http_port": http.sockets[0].getsockname()[1],
        "host_key": key.export_public_key("openssh").decode().strip(),
    }
    print(json.dumps(ready), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    sftp.close()
    http.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
