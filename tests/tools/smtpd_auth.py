#!/usr/bin/python3
"""smtpd_auth.py - an SMTP peer with STARTTLS and AUTH, for the tests.

usage: smtpd_auth.py PORT MAILDIR CERT KEY USER PASSWORD_FILE AUTHLOG

Listens on 127.0.0.1:PORT with aiosmtpd (Debian's python3-aiosmtpd):
STARTTLS with CERT/KEY is required before anything else, then AUTH
(PLAIN or LOGIN, over TLS only) as USER with the password in
PASSWORD_FILE (one trailing newline stripped).  Accepted mail goes to the
Maildir MAILDIR.  Each AUTH attempt appends "ok|fail LOGIN MECHANISM" to
AUTHLOG; the password itself is never written anywhere.
"""
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    port, maildir, cert, key, user, pwfile, log = sys.argv[1:8]
    with open(pwfile, "rb") as f:
        password = f.read()
    if password.endswith(b"\n"):
        password = password[:-1]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, data):
        ok = False
        login = "?"
        if isinstance(data, LoginPassword):
            login = data.login.decode("utf-8", "replace")
            ok = data.login == user.encode() and data.password == password
        with open(log, "a") as f:
            f.write("%s %s %s\n" % ("ok" if ok else "fail", login, mechanism))
        # handled=False: aiosmtpd then answers 535 itself
        return AuthResult(success=ok, handled=False)

    c = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port),
                   tls_context=ctx, require_starttls=True, auth_required=True,
                   auth_require_tls=True, authenticator=authenticator)
    c.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


if __name__ == "__main__":
    main()
