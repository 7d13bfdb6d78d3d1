"""Drives the fake Hetzner Cloud API (tests/src/hetzner.rs) with Hetzner's official
Python client, `hcloud` (installed by scripts/dev-services), so the fake is checked
against the real client's models and wire format.

Usage: hcloud_check.py API_URL TOKEN USER_DATA. Prints "ok" and exits 0 when every
step gave the typed result the real API would; raises otherwise.
"""

import sys

from hcloud import APIException, Client
from hcloud.firewalls.domain import FirewallRule
from hcloud.images.domain import Image
from hcloud.locations.domain import Location
from hcloud.server_types.domain import ServerType

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2i4w0m7VbM6u5bpW3gCh2c9fLkq0w1vX3mJ9nq8Yb check@shardlyn"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    url, token, user_data = sys.argv[1], sys.argv[2], sys.argv[3]

    try:
        Client(token="wrong", api_endpoint=url, poll_interval=0.01).servers.get_all()
        raise AssertionError("a wrong token was accepted")
    except APIException as e:
        expect(e.code == "unauthorized", f"wrong token: {e.code}")

    client = Client(token=token, api_endpoint=url, poll_interval=0.01)

    key = client.ssh_keys.create(name="check-key", public_key=PUBLIC_KEY, labels={"app": "shardlyn"})
    expect(key.id > 0 and key.name == "check-key", f"ssh key {key!r}")
    expect(key.public_key == PUBLIC_KEY, "ssh key public_key")
    expect(len(key.fingerprint.split(":")) == 16, f"fingerprint {key.fingerprint}")
    expect(client.ssh_keys.get_by_name("check-key").id == key.id, "ssh key by name")

    ssh_rule = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0", "::/0"])
    created_fw = client.firewalls.create(name="check-fw", rules=[ssh_rule], labels={"app": "shardlyn"})
    firewall = created_fw.firewall
    for action in created_fw.actions:
        action.wait_until_finished()
    expect(firewall.rules[0].port == "22" and firewall.rules[0].protocol == "tcp", "firewall rules")

    created = client.servers.create(
        name="check-node",
        server_type=ServerType(name="cx22"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name="fsn1"),
        ssh_keys=[key],
        firewalls=[firewall],
        user_data=user_data,
        labels={"app": "shardlyn"},
    )
    created.action.wait_until_finished()
    for action in created.next_actions:
        action.wait_until_finished()
    expect(created.root_password is None, "root password with keys")
    server = client.servers.get_by_id(created.server.id)
    expect(server.status == "running", f"status after create: {server.status}")
    expect(server.server_type.name == "cx22", "server type")
    expect(server.location.name == "fsn1", "location")
    expect(server.image.name == "ubuntu-24.04", "image")
    expect(server.public_net.ipv4.ip.startswith("203.0.113."), f"ipv4 {server.public_net.ipv4.ip}")
    expect(server.public_net.ipv6.ip.endswith("::/64"), f"ipv6 {server.public_net.ipv6.ip}")
    expect([f.firewall.id for f in server.public_net.firewalls] == [firewall.id], "firewall applied")
    expect(server.labels == {"app": "shardlyn"}, "labels")

    try:
        server.change_type(ServerType(name="cx32"), upgrade_disk=False)
        raise AssertionError("change_type on a running server was accepted")
    except APIException as e:
        expect(e.code == "server_not_stopped", f"change_type while running: {e.code}")

    server.power_off().wait_until_finished()
    expect(client.servers.get_by_id(server.id).status == "off", "status after poweroff")
    server.change_type(ServerType(name="cx32"), upgrade_disk=False).wait_until_finished()
    server.power_on().wait_until_finished()
    server = client.servers.get_by_id(server.id)
    expect(server.status == "running" and server.server_type.name == "cx32", "resized and running")
    actions = server.get_actions()
    expect({"stop_server", "change_server_type", "start_server"} <= {a.command for a in actions}, "server actions")

    game = FirewallRule(direction="in", protocol="udp", port="27015-27020", source_ips=["0.0.0.0/0"])
    for action in firewall.set_rules([ssh_rule, game]):
        action.wait_until_finished()
    rules = client.firewalls.get_by_id(firewall.id).rules
    expect([(r.protocol, r.port) for r in rules] == [("tcp", "22"), ("udp", "27015-27020")], "set_rules")

    try:
        firewall.delete()
        raise AssertionError("deleting an applied firewall was accepted")
    except APIException as e:
        expect(e.code == "resource_in_use", f"delete applied firewall: {e.code}")

    types = client.server_types.get_all()
    expect({"cx22", "cx32", "cax11"} <= {t.name for t in types}, "server types")
    arm = client.server_types.get_by_name("cax11")
    expect(arm.architecture == "arm", "cax11 is arm")
    expect(any(p["location"] == "fsn1" for p in arm.prices), "per-location prices")
    expect({"fsn1", "nbg1", "hel1", "ash"} <= {loc.name for loc in client.locations.get_all()}, "locations")
    pricing = client.request("GET", "/pricing")["pricing"]
    expect(pricing["currency"] == "EUR", "currency")
    cx22 = next(t for t in pricing["server_types"] if t["name"] == "cx22")
    expect(float(cx22["prices"][0]["price_monthly"]["net"]) > 0, "cx22 monthly price")

    server.delete().wait_until_finished()
    expect(client.servers.get_all() == [], "servers gone")
    expect(firewall.delete() is True, "firewall deleted once free")
    expect(key.delete() is True, "ssh key deleted")
    expect(client.firewalls.get_all() == [] and client.ssh_keys.get_all() == [], "all gone")

    try:
        client.servers.get_by_id(server.id)
        raise AssertionError("a deleted server was found")
    except APIException as e:
        expect(e.code == "not_found", f"deleted server: {e.code}")
    print("ok")


if __name__ == "__main__":
    main()
