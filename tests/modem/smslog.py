#!/usr/bin/python3
"""smslog.py - what went through the GSM modem emulator, from its log.

usage: smslog.py messages LOG [--all]
       smslog.py count LOG EVENT [KEY=VALUE...]

messages: one JSON line per message sent through the emulator (gsmemu.py's
"submit" events), its parts put back together, in the order the first
part of each came:
  {"number", "text" (the parts' texts in seq order), "parts" (how many
   came), "total" (how many the UDH announces; 1 without a UDH), "ref"
   (the UDH reference or null), "coding", "mrs" (TP-MR of each part in
   seq order), "srr" (every part asked for a report), "complete" (parts
   1..total each came once), "consistent" (every part agrees on total and
   has 1 <= seq <= total)}
Only parts the modem accepted (+CMGS) count, unless --all (then parts
refused with +CMS ERROR, or lost to a vanishing modem, count too: their
mr is null).  Parts are grouped by number and UDH reference; a sequence
number coming twice starts a new message (a resend reusing a reference).

count: how many EVENTs (cmd, submit, report, deliver, read, delete, ...)
the log holds whose KEY equals VALUE (VALUE as JSON, or as the plain
string: mr=null, srr=true, number=+819012345678, st=65).
"""
import json
import sys


def events(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def messages(path, include_all=False):
    groups, open_by_key = [], {}
    for e in events(path):
        if e.get("ev") != "submit" or "number" not in e:
            continue
        if e.get("mr") is None and not include_all:
            continue
        udh = e.get("udh") or {}
        if "seq" not in udh:        # a single message
            groups.append({"key": None, "parts": {1: e}, "seqs": [1],
                           "totals": [1], "ref": None})
            continue
        key = (e["number"], udh["ref"], udh.get("bits", 8))
        g = open_by_key.get(key)
        if g is None or udh["seq"] in g["parts"]:
            g = {"key": key, "parts": {}, "seqs": [], "totals": [],
                 "ref": udh["ref"]}
            groups.append(g)
            open_by_key[key] = g
        g["parts"][udh["seq"]] = e
        g["seqs"].append(udh["seq"])
        g["totals"].append(udh["total"])
    for g in groups:
        parts = [g["parts"][s] for s in sorted(g["parts"])]
        total = g["totals"][0]
        consistent = all(t == total for t in g["totals"]) and \
            all(1 <= s <= total for s in g["seqs"])
        yield {
            "number": parts[0]["number"],
            "text": "".join(p.get("text") or "" for p in parts),
            "parts": len(parts),
            "total": total,
            "ref": g["ref"],
            "coding": parts[0].get("coding"),
            "mrs": [p.get("mr") for p in parts],
            "srr": all(p.get("srr") for p in parts),
            "complete": consistent and sorted(g["parts"]) ==
            list(range(1, total + 1)),
            "consistent": consistent,
        }


def matches(e, filters):
    for f in filters:
        key, _, want = f.partition("=")
        if key not in e:
            return False
        v = e[key]
        if json.dumps(v, ensure_ascii=False) != want and str(v) != want:
            return False
    return True


def main(argv):
    if len(argv) >= 2 and argv[0] == "messages":
        for m in messages(argv[1], "--all" in argv[2:]):
            print(json.dumps(m, ensure_ascii=False))
        return 0
    if len(argv) >= 3 and argv[0] == "count":
        print(sum(1 for e in events(argv[1])
                  if e.get("ev") == argv[2] and matches(e, argv[3:])))
        return 0
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
