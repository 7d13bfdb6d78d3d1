"""Drives the fake Cloudflare API v4 (tests/src/cloudflare.rs) with Cloudflare's official
Python SDK, `cloudflare` (installed by scripts/dev-services), so the fake is checked
against the real client's request encoding (query `name.exact`, paging, batch bodies)
and response models (envelopes, records, SRV `data`, errors).

Usage: cloudflare_check.py API_URL TOKEN ZONE_NAME. The zone must exist and be empty.
Prints "ok" and exits 0 when every step gave the typed result the real API would;
raises otherwise.
"""

import sys

import cloudflare
from cloudflare import Cloudflare


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    url, token, zone_name = sys.argv[1], sys.argv[2], sys.argv[3]

    # A wrong token: 403 with code 10000 in the envelope; verify says 401 "Invalid API Token".
    wrong = Cloudflare(api_token="wrong-token", base_url=url, max_retries=0)
    try:
        list(wrong.zones.list())
        raise AssertionError("a wrong token was accepted")
    except cloudflare.PermissionDeniedError as e:
        expect(e.status_code == 403, f"wrong token status {e.status_code}")
        expect(e.body["errors"][0]["code"] == 10000, f"wrong token body {e.body}")
        expect(e.errors[0].message == "Authentication error", f"errors {e.errors}")
    try:
        wrong.user.tokens.verify()
        raise AssertionError("a wrong token verified")
    except cloudflare.AuthenticationError as e:
        expect(e.body["errors"][0]["message"] == "Invalid API Token", f"verify body {e.body}")

    cf = Cloudflare(api_token=token, base_url=url, max_retries=0)
    verified = cf.user.tokens.verify()
    expect(verified.status == "active" and verified.id, f"verify {verified!r}")

    zones = list(cf.zones.list(name=zone_name))
    expect(len(zones) == 1 and zones[0].name == zone_name, f"zones {zones!r}")
    zone = zones[0]
    expect(zone.status == "active" and zone.account.id, f"zone {zone!r}")
    expect(zone.created_on.year >= 2024, "zone created_on parses as a datetime")
    expect(len(list(cf.zones.list(account={"id": "not-this-account"}))) == 0, "account.id filter")

    # A, TXT and SRV records.
    a = cf.dns.records.create(zone_id=zone.id, type="A", name="mc", content="203.0.113.10", ttl=300, proxied=False,
                              comment="check")
    expect(a.name == f"mc.{zone_name}" and a.content == "203.0.113.10" and a.ttl == 300, f"A {a!r}")
    expect(a.proxied is False and a.comment == "check" and len(a.id) == 32, f"A {a!r}")
    expect(a.modified_on >= a.created_on, "times parse")
    txt = cf.dns.records.create(zone_id=zone.id, type="TXT", name=f"_owner.mc.{zone_name}",
                                content='"heritage=shardlyn,owner=x"', ttl=1)
    expect(txt.type == "TXT" and txt.ttl == 1 and txt.content == '"heritage=shardlyn,owner=x"', f"TXT {txt!r}")
    srv = cf.dns.records.create(zone_id=zone.id, type="SRV", name=f"_minecraft._tcp.mc.{zone_name}",
                                data={"priority": 0, "weight": 5, "port": 25565, "target": f"mc.{zone_name}"}, ttl=120)
    expect(srv.type == "SRV" and srv.data.port == 25565 and srv.data.target == f"mc.{zone_name}", f"SRV {srv!r}")
    expect(srv.content == f"0 5 25565 mc.{zone_name}", f"SRV content {srv.content}")

    # Validation errors answered like Cloudflare: 400, a code and a message.
    try:
        cf.dns.records.create(zone_id=zone.id, type="A", name="bad", content="not-an-ip", ttl=300)
        raise AssertionError("an invalid A record was accepted")
    except cloudflare.BadRequestError as e:
        expect(e.body["errors"][0]["code"] == 9005, f"invalid A {e.body}")
    try:
        cf.dns.records.create(zone_id=zone.id, type="A", name="mc", content="203.0.113.10", ttl=300)
        raise AssertionError("an identical record was accepted")
    except cloudflare.BadRequestError as e:
        expect(e.body["errors"][0]["code"] == 81058, f"identical {e.body}")

    # Lists: filters the SDK encodes as name.exact / type, and paging.
    by_name = list(cf.dns.records.list(zone_id=zone.id, name={"exact": f"mc.{zone_name}"}))
    expect([r.id for r in by_name] == [a.id], f"name.exact {by_name!r}")
    by_type = list(cf.dns.records.list(zone_id=zone.id, type="SRV"))
    expect([r.id for r in by_type] == [srv.id], f"type {by_type!r}")
    for i in range(7):
        cf.dns.records.create(zone_id=zone.id, type="A", name=f"n{i}", content=f"198.51.100.{i}", ttl=60)
    first = cf.dns.records.list(zone_id=zone.id, per_page=5)
    expect(len(first.result) == 5 and first.result_info.page == 1, f"page 1 {first.result_info!r}")
    everything = list(cf.dns.records.list(zone_id=zone.id, per_page=5))
    expect(len(everything) == 10 and len({r.id for r in everything}) == 10, f"all pages: {len(everything)}")

    # Get, update (PUT), edit (PATCH), delete.
    got = cf.dns.records.get(dns_record_id=a.id, zone_id=zone.id)
    expect(got.id == a.id and got.content == "203.0.113.10", f"get {got!r}")
    put = cf.dns.records.update(dns_record_id=a.id, zone_id=zone.id, type="A", name="mc", content="203.0.113.20",
                                ttl=600)
    expect(put.content == "203.0.113.20" and put.ttl == 600 and put.comment is None, f"put {put!r}")
    patched = cf.dns.records.edit(dns_record_id=srv.id, zone_id=zone.id, type="SRV",
                                  name=f"_minecraft._tcp.mc.{zone_name}", ttl=120,
                                  data={"priority": 1, "weight": 5, "port": 25566, "target": f"mc.{zone_name}"})
    expect(patched.data.port == 25566 and patched.ttl == 120, f"patch {patched!r}")
    expect(patched.content == f"1 5 25566 mc.{zone_name}", f"patched content {patched.content}")
    gone = cf.dns.records.delete(dns_record_id=txt.id, zone_id=zone.id)
    expect(gone.id == txt.id, f"delete {gone!r}")
    try:
        cf.dns.records.get(dns_record_id=txt.id, zone_id=zone.id)
        raise AssertionError("a deleted record was found")
    except cloudflare.NotFoundError as e:
        expect(e.body["errors"][0]["code"] == 81044, f"deleted {e.body}")

    # A batch: deletes, patches, puts, posts in that order.
    n0 = [r for r in everything if r.name == f"n0.{zone_name}"][0]
    n1 = [r for r in everything if r.name == f"n1.{zone_name}"][0]
    n2 = [r for r in everything if r.name == f"n2.{zone_name}"][0]
    done = cf.dns.records.batch(
        zone_id=zone.id,
        deletes=[{"id": n0.id}],
        patches=[{"id": n1.id, "ttl": 3600}],
        puts=[{"id": n2.id, "type": "AAAA", "name": f"n2.{zone_name}", "content": "2001:db8::2", "ttl": 60}],
        # The deleted record's name and content again: possible because deletes go first.
        posts=[{"type": "A", "name": "n0", "content": "198.51.100.0", "ttl": 60},
               {"type": "SRV", "name": f"_ts3._udp.{zone_name}",
                "data": {"priority": 0, "weight": 0, "port": 9987, "target": f"n1.{zone_name}"}, "ttl": 60}],
    )
    expect([r.id for r in done.deletes] == [n0.id], f"batch deletes {done.deletes!r}")
    expect(done.patches[0].ttl == 3600 and done.puts[0].type == "AAAA", "batch patches/puts")
    expect(len(done.posts) == 2 and done.posts[1].data.port == 9987, f"batch posts {done.posts!r}")
    expect(done.posts[0].id != n0.id, "a posted record gets a new id")

    # A failing batch changes nothing.
    before = sorted(r.id for r in cf.dns.records.list(zone_id=zone.id))
    try:
        cf.dns.records.batch(zone_id=zone.id, deletes=[{"id": done.posts[0].id}],
                             posts=[{"type": "A", "name": "x", "content": "nope", "ttl": 60}])
        raise AssertionError("a batch with an invalid post succeeded")
    except cloudflare.BadRequestError as e:
        expect(e.body["success"] is False and e.body["errors"][0]["code"] == 9005, f"batch error {e.body}")
    after = sorted(r.id for r in cf.dns.records.list(zone_id=zone.id))
    expect(before == after, "the failed batch rolled back")

    print("ok")


if __name__ == "__main__":
    main()
