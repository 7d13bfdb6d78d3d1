"""Drives the fake Pterodactyl Application API (tests/src/fake_pterodactyl.rs) with
PyPI's py-dactyl, the Python client many hosts script their panel with, so the fake's
wire format is checked against a client written for the real panel.

Usage:
    pydactyl_check.py sample URL KEY   # the fake holds Dataset::sample()
    pydactyl_check.py many URL KEY N   # the fake holds Dataset::many(N)
    pydactyl_check.py badkey URL       # any key but the fake's

Prints "ok" and exits 0 when every check holds; an assertion fails otherwise.
"""

import sys

import requests
from pydactyl import PterodactylClient


def client(url, key):
    # No retries: a fault must show at once.
    return PterodactylClient(url, key, retries=0)


def by_id(items):
    return {item["id"]: item for item in items}


def check_sample(url, key):
    api = client(url, key)

    locations = api.locations.list_locations().collect()
    assert [l["attributes"]["short"] for l in locations] == ["de-fra", "us-nyc"], locations
    assert all(l["object"] == "location" for l in locations)

    nodes = [n["attributes"] for n in api.nodes.list_nodes().collect()]
    assert len(nodes) == 2, nodes
    for node in nodes:
        assert node["fqdn"].endswith(".example.com"), node
        assert node["daemon_sftp"] == 2022 and node["daemon_listen"] == 8080, node
        assert node["scheme"] == "https" and node["uuid"], node
        assert set(node["allocated_resources"]) == {"memory", "disk"}, node
    assert api.nodes.get_node_details(1)["attributes"]["location_id"] == 1

    nests = [n["attributes"] for n in api.nests.list_nests().collect()]
    assert [n["name"] for n in nests] == ["Minecraft"], nests
    eggs = api.nests.get_eggs_in_nest(nests[0]["id"], includes=["variables", "config", "script"])
    assert eggs["object"] == "list" and "meta" not in eggs, eggs.keys()
    eggs = by_id(e["attributes"] for e in eggs["data"])
    assert len(eggs) == 3, eggs.keys()
    # 0.7 shape: one docker_image, no docker_images.
    vanilla = eggs[1]
    assert vanilla["docker_image"] == "quay.io/pterodactyl/core:java", vanilla
    assert "docker_images" not in vanilla
    assert vanilla["config"]["files"]["server.properties"]["parser"] == "properties"
    assert vanilla["config"]["logs"] == [], vanilla["config"]
    assert vanilla["relationships"]["config"]["object"] == "null_resource"
    # 1.x shape: docker_images as label -> image, docker_image its first.
    paper = eggs[2]
    assert paper["docker_images"]["Java 17"] == "ghcr.io/pterodactyl/yolks:java_17", paper
    assert paper["docker_image"] in paper["docker_images"].values()
    variables = paper["relationships"]["variables"]["data"]
    assert [v["object"] for v in variables] == ["egg_variable"] * 3
    assert {v["attributes"]["env_variable"] for v in variables} == {
        "SERVER_JARFILE", "MINECRAFT_VERSION", "BUILD_NUMBER"}
    # Inheritance: null own fields, the parent named, one level resolved in includes.
    purpur = eggs[3]
    assert purpur["config"]["extends"] == 2 and purpur["config"]["files"] is None, purpur
    assert purpur["script"]["extends"] == 1 and purpur["script"]["install"] is None
    inherited = purpur["relationships"]["config"]["attributes"]
    assert inherited["stop"] == "stop" and "server.properties" in inherited["files"]
    script = purpur["relationships"]["script"]["attributes"]
    assert "vanilla" in script["install"], script
    one = api.nests.get_egg_info(1, 3, includes=["variables"])
    assert one["object"] == "egg" and one["attributes"]["name"] == "Purpur", one

    users = [u["attributes"] for u in api.user.list_users().collect()]
    assert [u["username"] for u in users] == ["admin", "alice", "bob"], users
    assert users[0]["root_admin"] is True and users[2]["2fa"] is True
    assert users[1]["first_name"] == "Alice" and users[1]["email"] == "alice@example.com"
    found = api.user.list_users(email="bob@example.com").collect()
    assert [u["attributes"]["id"] for u in found] == [3], found
    assert api.user.get_user_info(2)["attributes"]["uuid"] == users[1]["uuid"]

    servers = api.servers.list_servers(includes=["allocations", "variables", "subusers"])
    assert len(servers) == 4
    servers = by_id(s["attributes"] for s in servers.collect())
    survival = servers[2]
    assert survival["identifier"] == survival["uuid"][:8], survival
    assert survival["limits"]["memory"] == 2048 and survival["limits"]["threads"] == "0-1"
    assert survival["feature_limits"]["backups"] == 3
    assert survival["user"] == 2 and survival["node"] == 1 and survival["egg"] == 2
    allocations = survival["relationships"]["allocations"]["data"]
    assert {a["attributes"]["port"] for a in allocations} == {25566, 25575}, allocations
    assert survival["allocation"] in {a["attributes"]["id"] for a in allocations}
    values = {v["attributes"]["env_variable"]: v["attributes"]["server_value"]
              for v in survival["relationships"]["variables"]["data"]}
    assert values == {"SERVER_JARFILE": "paper.jar", "MINECRAFT_VERSION": "1.21.1",
                      "BUILD_NUMBER": None}, values
    assert survival["container"]["environment"]["BUILD_NUMBER"] == "latest"
    subusers = survival["relationships"]["subusers"]["data"]
    assert [s["attributes"]["user_id"] for s in subusers] == [3], subusers
    assert "file.read" in subusers[0]["attributes"]["permissions"]
    assert servers[4]["status"] == "suspended" and servers[4]["suspended"] is True
    assert servers[1]["status"] is None and servers[1]["suspended"] is False
    single = api.servers.get_server_info(server_id=3, includes=["allocations"])
    assert single["name"] == "Creative" and single["egg"] == 3, single
    assert len(single["relationships"]["allocations"]["data"]) == 1


def check_many(url, key, count):
    api = client(url, key)
    # py-dactyl follows meta.pagination.links.next at the panel's default page size.
    pages = 0
    seen = []
    for page in api.servers.list_servers():
        pages += 1
        seen.extend(s["attributes"]["id"] for s in page.data)
    assert seen == list(range(1, count + 1)), seen[:5]
    assert pages == -(-count // 50), pages
    identifiers = {s["attributes"]["identifier"] for s in api.servers.list_servers().collect()}
    assert len(identifiers) == count
    users = api.user.list_users().collect()
    assert len(users) == count // 5 + 1, len(users)


def check_bad_key(url):
    api = client(url, "ptla_not_the_key")
    try:
        api.servers.list_servers()
    except requests.HTTPError as e:
        assert e.response.status_code == 401, e
        body = e.response.json()
        assert body["errors"][0]["code"] == "AuthenticationException", body
        return
    raise AssertionError("a wrong key was accepted")


def main(argv):
    mode = argv[1]
    if mode == "sample":
        check_sample(argv[2], argv[3])
    elif mode == "many":
        check_many(argv[2], argv[3], int(argv[4]))
    elif mode == "badkey":
        check_bad_key(argv[2])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv)
