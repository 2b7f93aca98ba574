#!/usr/bin/python3
"""escalation_smtpd.py - an SMTP sink that refuses some recipients, for
tests/integration/28-escalation.sh (scripted failures per recipient).

usage: escalation_smtpd.py PORT MAILDIR RCPTLOG

Listens on 127.0.0.1:PORT with aiosmtpd (Debian's python3-aiosmtpd).
RCPT TO an address whose local part starts with "bad" is answered
"550 5.1.1 <addr>: Recipient address rejected: User unknown" (a permanent,
per-recipient refusal, which neither aiosmtpd's Mailbox handler nor
smtp-sink can give: smtp-sink's -f faults hit every recipient); RCPT TO
an address whose local part starts with "busy" is answered "451 4.2.1
Mailbox busy, try again later" the first time that address is asked
for, and accepted from then on (a temporary failure that a retry gets
past).  RCPT TO an address whose local part contains "slow" is answered
only after 0.25 s (other sessions go on meanwhile), so that its outcome
comes after that of a message to the same recipient on another sink.
Every other recipient is accepted and the message is stored in
the Maildir MAILDIR as aiosmtpd's Mailbox handler does (X-Peer,
X-MailFrom and X-RcptTo headers added).

Every RCPT TO, accepted or not, and every message stored, is appended to
RCPTLOG as one JSON line {"t": time.time(), "ev": "rcpt"|"data",
"addr": ..., "code": ...}, so that a test sees what the peer was asked,
at what time, including the recipients it refused.
"""
import asyncio
import json
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


class Handler(Mailbox):
    def __init__(self, maildir, log):
        super().__init__(maildir)
        self.log = log
        self.lock = threading.Lock()
        self.busy_seen = set()

    def record(self, ev, addrs, code):
        t = time.time()
        with self.lock, open(self.log, "a", encoding="utf-8") as f:
            for a in addrs:
                f.write(json.dumps({"t": t, "ev": ev, "addr": a,
                                    "code": code}) + "\n")

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if "slow" in address.split("@", 1)[0].lower():
            await asyncio.sleep(0.25)
        if address.split("@", 1)[0].lower().startswith("bad"):
            self.record("rcpt", [address], 550)
            return ("550 5.1.1 <%s>: Recipient address rejected: "
                    "User unknown" % address)
        if (address.split("@", 1)[0].lower().startswith("busy") and
                address.lower() not in self.busy_seen):
            self.busy_seen.add(address.lower())
            self.record("rcpt", [address], 451)
            return "451 4.2.1 Mailbox busy, try again later"
        self.record("rcpt", [address], 250)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        self.record("data", envelope.rcpt_tos, int(reply[:3]))
        return reply


def main():
    port, maildir, log = sys.argv[1:4]
    c = Controller(Handler(maildir, log), hostname="127.0.0.1",
                   port=int(port))
    c.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


if __name__ == "__main__":
    main()
