"""SMTP sink for the mail tests: an aiosmtpd server on 127.0.0.1 that stores every
message it receives as one JSON file (envelope, headers, decoded text and HTML parts),
parsed with Python's own `email` package, independently of the panel's mail code.

    smtp_sink.py --port PORT --dir DIR [--auth USER:PASSWORD]
                 [--tls starttls|tls --tls-cert PEM --tls-key PEM]

Prints `READY <port>` once listening (port 0 picks a free one). Stops on SIGTERM/SIGINT.
scripts/dev-services installs aiosmtpd into ~/.cache/shardlyn/venv.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        # Implicit TLS (SMTPS): every connection is TLS; aiosmtpd marks only STARTTLS.
        self.implicit_tls = False

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
            "tls": self.implicit_tls or session.ssl is not None,
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        self.count += 1
        name = os.path.join(self.directory, f"{self.count:05}.json")
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(name + ".tmp", name)
        return "250 OK stored"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--auth", default=None, help="USER:PASSWORD required to send")
    parser.add_argument("--tls", choices=["starttls", "tls"], default=None)
    parser.add_argument("--tls-cert", default=None)
    parser.add_argument("--tls-key", default=None)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Sink(args.dir)
    options = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        options = {
            "authenticator": Authenticator(user, password),
            "auth_required": True,
            # Loopback only: the test checks that credentials are sent, not TLS.
            "auth_require_tls": False,
        }
    wrap = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            wrap = context
            handler.implicit_tls = True
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="shardlyn-test-sink", **options),
        "127.0.0.1",
        args.port,
        ssl=wrap,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
