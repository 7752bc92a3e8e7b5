#!/usr/bin/env python3
"""Drives the fake DigitalOcean API (../digitalocean.py) with DigitalOcean's official
Python client, pydo: if the fake's routes, parameters or shapes drifted from the API the
client was generated from, these calls would fail or read nothing. Lists (paged, through
the fake's 429, which pydo's own retry policy waits out), stops and starts a droplet.

Usage: digitalocean.py URL TOKEN   (exits 0 when every check holds)
"""

import json
import sys
import time
import urllib.request

import pydo

url, token = sys.argv[1], sys.argv[2]


def fake(path, body):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"{}")


ids = [fake("/_fake/droplets", {"name": "conf-%d" % i, "region": "ams3", "tags": ["conformance:yes"]})["droplet"]["id"]
       for i in range(3)]
client = pydo.Client(token=token, endpoint=url)
# The fake serves plain HTTP on loopback: azure-core, under pydo, sends a bearer token
# only over TLS unless a call says otherwise.
PLAIN = {"enforce_https": False}

# Listing: by tag, a page at a time (the fake pages by 2), following links.pages.next.
seen, page = [], 1
while True:
    answer = client.droplets.list(tag_name="conformance:yes", per_page=2, page=page, **PLAIN)
    seen += [d["id"] for d in answer["droplets"]]
    assert answer["meta"]["total"] == 3, answer["meta"]
    if "next" not in answer["links"]["pages"]:
        break
    page += 1
assert sorted(seen) == sorted(ids), (seen, ids)
droplet = client.droplets.get(ids[0], **PLAIN)["droplet"]
assert droplet["status"] == "active" and droplet["region"]["slug"] == "ams3", droplet
assert {n["type"] for n in droplet["networks"]["v4"]} == {"private", "public"}, droplet["networks"]


def run(kind, want):
    action = client.droplet_actions.post(ids[0], {"type": kind}, **PLAIN)["action"]
    assert action["status"] == "in-progress" and action["type"] == kind, action
    for _ in range(20):
        action = client.actions.get(action["id"], **PLAIN)["action"]
        if action["status"] != "in-progress":
            break
        time.sleep(0.1)
    assert action["status"] == "completed", action
    assert client.droplets.get(ids[0], **PLAIN)["droplet"]["status"] == want


run("shutdown", "off")
run("power_on", "active")
listed = client.droplet_actions.list(ids[0], **PLAIN)["actions"]
assert [a["type"] for a in listed] == ["power_on", "shutdown"], listed

# A wrong token is refused as the API refuses it.
try:
    pydo.Client(token="wrong", endpoint=url).droplets.get(ids[0], **PLAIN)
    raise AssertionError("a wrong token was accepted")
except Exception as error:
    assert "401" in str(error) or "Unauthorized" in str(error) or "authenticate" in str(error), error
print("ok")
