#!/usr/bin/env python3
"""Drives the local Nova (../nova.py), behind the real Keystone of ../openstack.py, with
OpenStack's official SDK, openstacksdk: if the fake's routes, parameters or shapes
drifted from the Compute API the SDK speaks, these calls would fail or read nothing.
Authenticates with the application credential, finds Nova in the catalog, lists servers
(paged, through the fake's 429), stops and starts one and waits for each status.

Usage: nova.py KEYSTONE_URL NOVA_URL CA_FILE APP_CREDENTIAL_ID APP_CREDENTIAL_SECRET
(run with the Keystone venv's Python, where openstacksdk is; exits 0 when every check holds)
"""

import json
import ssl
import sys
import time
import urllib.request

import openstack
from openstack import exceptions

keystone, nova, ca_file, credential_id, credential_secret = sys.argv[1:6]
context = ssl.create_default_context(cafile=ca_file)


def fake(path, body):
    request = urllib.request.Request(nova[:-len("/v2.1")] + "/_fake" + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context) as answer:
        return json.loads(answer.read() or b"{}")


ids = [fake("/servers", {"name": "conf-%d" % i, "metadata": {"conformance": "yes"}})["server"]["id"] for i in range(3)]
conn = openstack.connect(auth_url=keystone, auth_type="v3applicationcredential",
                         application_credential_id=credential_id,
                         application_credential_secret=credential_secret,
                         region_name="RegionOne", interface="public", cacert=ca_file)
assert conn.compute.get_endpoint().rstrip("/") == nova, conn.compute.get_endpoint()


def listed():
    # The fake answers the first listing 429 with Retry-After, as Nova's rate limits do.
    for attempt in range(2):
        try:
            return list(conn.compute.servers(details=True, limit=2))
        except exceptions.HttpException as error:
            assert error.status_code == 429 and attempt == 0, error
            assert error.response.headers.get("Retry-After") == "1", error.response.headers
            time.sleep(1)


servers = listed()
assert sorted(s.id for s in servers) == sorted(ids), ([s.id for s in servers], ids)
server = conn.compute.get_server(ids[0])
assert server.status == "ACTIVE" and server.metadata == {"conformance": "yes"}, server
kinds = {a["OS-EXT-IPS:type"] for a in server.addresses["private"]}
assert kinds == {"fixed", "floating"}, server.addresses
assert server.availability_zone == "nova", server.availability_zone

conn.compute.stop_server(server)
conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.2, wait=30)
conn.compute.start_server(server)
conn.compute.wait_for_server(server, status="ACTIVE", interval=0.2, wait=30)
conn.compute.reboot_server(server, "SOFT")
conn.compute.wait_for_server(server, status="ACTIVE", interval=0.2, wait=30)
victim = conn.compute.get_server(ids[2])
conn.compute.delete_server(victim)
conn.compute.wait_for_delete(victim, interval=0.2, wait=30)
assert len(listed()) == 2
print("ok")
