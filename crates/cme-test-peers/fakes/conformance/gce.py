#!/usr/bin/env python3
"""Drives the fake Compute Engine API and token endpoint (../gce.py) with Google's official
Python client (google-api-python-client, built from the Compute v1 discovery document it
ships) and google-auth's service-account credentials: if the fake's routes, parameters,
shapes or token checks drifted from what the client sends and reads, these calls would
fail. Lists (paged, through the fake's 429, which the client's own retries wait out),
stops and starts an instance.

Usage: gce.py URL PROJECT KEY_JSON_FILE   (exits 0 when every check holds)
"""

import json
import sys
import time
import urllib.request

from google.oauth2 import service_account
from googleapiclient import discovery

url, project, key_file = sys.argv[1], sys.argv[2], sys.argv[3]
zone = "europe-west1-d"


def fake(path, body):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"{}")


names = [fake("/_fake/instances", {"zone": zone, "name": "conf-%d" % i, "labels": {"conformance": "yes"}})["name"]
         for i in range(3)]
with open(key_file) as f:
    info = json.load(f)
credentials = service_account.Credentials.from_service_account_info(
    info, scopes=["https://www.googleapis.com/auth/compute"])
compute = discovery.build("compute", "v1", credentials=credentials, static_discovery=True,
                          client_options={"api_endpoint": url + "/compute/v1/"})

seen = []
request = compute.instances().list(project=project, zone=zone, filter='labels.conformance = "yes"', maxResults=2)
while request is not None:
    answer = request.execute(num_retries=3)
    seen += [i["name"] for i in answer.get("items", [])]
    request = compute.instances().list_next(previous_request=request, previous_response=answer)
assert sorted(seen) == sorted(names), (seen, names)
instance = compute.instances().get(project=project, zone=zone, instance=names[0]).execute()
assert instance["status"] == "RUNNING" and instance["labels"]["conformance"] == "yes", instance
assert instance["networkInterfaces"][0]["accessConfigs"][0]["natIP"], instance


def run(verb, want):
    operation = getattr(compute.instances(), verb)(project=project, zone=zone, instance=names[0],
                                                   requestId="00000000-0000-4000-8000-%012d" % len(verb)).execute()
    assert operation["kind"] == "compute#operation" and operation["operationType"] == verb, operation
    for _ in range(20):
        operation = compute.zoneOperations().get(project=project, zone=zone, operation=operation["name"]).execute()
        if operation["status"] == "DONE":
            break
        time.sleep(0.1)
    assert operation["status"] == "DONE" and "error" not in operation, operation
    state = compute.instances().get(project=project, zone=zone, instance=names[0]).execute()["status"]
    assert state == want, (verb, state)


run("stop", "TERMINATED")
run("start", "RUNNING")
print("ok")
