#!/usr/bin/env python3
"""Independent RFC 2136 / TSIG client (dnspython) for tests/tests/api/dns_rfc2136.rs.

It proves what the panel's client wrote is at the server (an AXFR signed with TSIG,
printed as JSON in the panel's record-set form), and that the panel's client reads
what another client wrote (an UPDATE signed with TSIG).

Usage:
  dns_check.py axfr   --server 127.0.0.1 --port 5300 --key NAME --secret B64 [--algorithm hmac-sha256] --zone ZONE
      -> {"sets": [{"name", "type", "ttl", "contents": [...]}, ...]}  (SOA included)
  dns_check.py update --server ... --zone ZONE --replace NAME TYPE TTL CONTENT [--replace ...] [--delete NAME TYPE ...]
      -> {"rcode": "NOERROR"}   (exit status 0 when NOERROR, 1 otherwise)

Names are fully qualified without the trailing dot; contents are in the panel's
form (targets without trailing dots; TXT as its unquoted text; SRV
"priority weight port target").
"""

import argparse
import json
import sys

import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone


def keyring(args):
    return dns.tsigkeyring.from_text({args.key: (args.algorithm, args.secret)})


def text_of(rdata):
    t = rdata.rdtype
    if t == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if t in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
        return rdata.target.to_text().rstrip(".").lower()
    if t == dns.rdatatype.SRV:
        return f"{rdata.priority} {rdata.weight} {rdata.port} {rdata.target.to_text().rstrip('.').lower()}"
    if t == dns.rdatatype.MX:
        return f"{rdata.preference} {rdata.exchange.to_text().rstrip('.').lower()}"
    if t == dns.rdatatype.SOA:
        return " ".join(
            [rdata.mname.to_text().rstrip(".").lower(), rdata.rname.to_text().rstrip(".").lower()]
            + [str(v) for v in (rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum)]
        )
    return rdata.to_text()


def axfr(args):
    origin = dns.name.from_text(args.zone)
    xfr = dns.query.xfr(
        args.server,
        origin,
        port=args.port,
        keyring=keyring(args),
        keyname=args.key,
        keyalgorithm=args.algorithm,
        lifetime=10,
        relativize=False,
    )
    zone = dns.zone.from_xfr(xfr, relativize=False)
    sets = []
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            sets.append(
                {
                    "name": name.to_text().rstrip(".").lower(),
                    "type": dns.rdatatype.to_text(rds.rdtype),
                    "ttl": rds.ttl,
                    "contents": sorted(text_of(r) for r in rds),
                }
            )
    sets.sort(key=lambda s: (s["name"], s["type"]))
    print(json.dumps({"sets": sets}))


def rdata_of(rtype, content):
    """The panel's content form -> a zone-file token string dnspython parses."""
    t = rtype.upper()
    if t == "TXT":
        chunks = [content[i : i + 255] for i in range(0, len(content), 255)] or [""]
        return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
    if t in ("CNAME", "NS", "PTR"):
        return content.rstrip(".") + "."
    if t in ("SRV", "MX"):
        parts = content.split()
        parts[-1] = parts[-1].rstrip(".") + "."
        return " ".join(parts)
    return content


def update(args):
    up = dns.update.Update(
        args.zone,
        keyring=keyring(args),
        keyname=args.key,
        keyalgorithm=args.algorithm,
    )
    grouped = {}
    for name, rtype, ttl, content in args.replace or []:
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), rdata_of(rtype, content))
        grouped.setdefault((name, rtype.upper()), (int(ttl), []))[1].append(rd)
    for (name, _), (ttl, rds) in grouped.items():
        up.replace(dns.name.from_text(name), ttl, *rds)
    for name, rtype in args.delete or []:
        up.delete(dns.name.from_text(name), rtype)
    try:
        answer = dns.query.tcp(up, args.server, port=args.port, timeout=10)
    except dns.tsig.PeerError as e:
        # The server refused the signature; dnspython raises before the RCODE is seen.
        print(json.dumps({"rcode": "NOTAUTH", "tsig_error": type(e).__name__}))
        return 1
    code = dns.rcode.to_text(answer.rcode())
    print(json.dumps({"rcode": code}))
    return 0 if answer.rcode() == dns.rcode.NOERROR else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["axfr", "update"])
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--algorithm", default="hmac-sha256")
    p.add_argument("--zone", required=True)
    p.add_argument("--replace", nargs=4, action="append", metavar=("NAME", "TYPE", "TTL", "CONTENT"))
    p.add_argument("--delete", nargs=2, action="append", metavar=("NAME", "TYPE"))
    args = p.parse_args()
    if args.command == "axfr":
        axfr(args)
        return 0
    return update(args)


if __name__ == "__main__":
    sys.exit(main())
