#!/usr/bin/env python3
"""A local Google Compute Engine API v1 and OAuth token endpoint for tests, written for cme
from the Compute discovery document shipped in google-api-python-client (resources
instances and zoneOperations: routes, parameters, Instance and Operation shapes) and
Google's service-account JWT bearer flow (RFC 7523), not from any other project's fixtures.
Needs the `cryptography` package (moto brings it) to check RS256 signatures.

Token endpoint: POST /token with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and
an RS256 assertion signed by the service account's key (its public half is given on the
command line), whose iss is the account, aud Google's token endpoint (what Google checks,
whatever URL a key's token_uri names), scope one the API takes, and
iat/exp current; answers a token that lives TOKEN_SECONDS (an expired one is refused 401,
as Google refuses it).

API: /compute/v1/projects/P/zones/Z/instances (GET: filter `labels.K = "V"`, maxResults,
pageToken), .../instances/N (GET, DELETE), .../instances/N/{stop,start,reset} (POST, with
requestId: the same requestId answers the same operation), .../zones/Z/operations/O (GET).

As the real API does where an engine can get it wrong: pages hold at most PAGE instances;
the first listing is answered 429 with Retry-After; a stop keeps the instance STOPPING (its
operation RUNNING) for SLOW reads of the operation, then TERMINATED;
`POST /_fake/fail_next_operation {"type": "reset"}` makes the next such operation end DONE
with an error (on a 200). Set-up: `POST /_fake/instances {"zone", "name", "labels",
"status"}`; `GET /_fake/requests`; `GET /_fake/tokens` (how many were issued).

Usage: gce.py PROJECT CLIENT_EMAIL PUBLIC_KEY_PEM_FILE
"""

import base64
import json
import sys
import threading
import time
import urllib.parse

from fake_http import JsonHandler, serve

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

PAGE = 2
SLOW = 2
TOKEN_SECONDS = 30
SCOPES = {"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/compute"}
PROJECT, CLIENT_EMAIL = sys.argv[1], sys.argv[2]
with open(sys.argv[3], "rb") as f:
    PUBLIC_KEY = serialization.load_pem_public_key(f.read())
LOCK = threading.Lock()
STATE = {"instances": {}, "operations": {}, "by_request": {}, "tokens": {}, "issued": 0, "limited": False,
         "fail": set(), "requests": [], "next": 1}


def b64decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def instance_doc(i, host):
    base = "http://%s/compute/v1/projects/%s/zones/%s" % (host, PROJECT, i["zone"])
    return {
        "kind": "compute#instance", "id": str(i["id"]), "name": i["name"], "status": i["status"],
        "zone": base, "selfLink": "%s/instances/%s" % (base, i["name"]),
        "machineType": "%s/machineTypes/e2-small" % base, "labels": i["labels"],
        "labelFingerprint": "42WmSpB8rSM=", "creationTimestamp": "2026-12-01T00:00:00.000-08:00",
        "networkInterfaces": [{"kind": "compute#networkInterface", "name": "nic0", "networkIP": i["ip"],
                               "accessConfigs": [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT",
                                                  "name": "External NAT", "natIP": i["nat"]}]}],
        "disks": [{"kind": "compute#attachedDisk", "boot": True, "autoDelete": True, "deviceName": "persistent-disk-0"}],
    }


def operation_doc(o, host):
    doc = {"kind": "compute#operation", "id": str(o["id"]), "name": o["name"], "operationType": o["type"],
           "status": o["status"], "progress": 100 if o["status"] == "DONE" else 0,
           "targetLink": "http://%s/compute/v1/projects/%s/zones/%s/instances/%s" % (host, PROJECT, o["zone"], o["instance"]),
           "zone": "http://%s/compute/v1/projects/%s/zones/%s" % (host, PROJECT, o["zone"]),
           "selfLink": "http://%s/compute/v1/projects/%s/zones/%s/operations/%s" % (host, PROJECT, o["zone"], o["name"]),
           "insertTime": "2026-12-01T00:00:00.000-08:00"}
    if o.get("error") and o["status"] == "DONE":
        doc["error"] = {"errors": [{"code": "RESOURCE_OPERATION_RATE_EXCEEDED" if o["type"] != "reset" else "UNSUPPORTED_OPERATION",
                                    "message": "The %s of %s failed." % (o["type"], o["instance"])}]}
        doc["httpErrorStatusCode"] = 400
    return doc


class Handler(JsonHandler):
    def error(self, status, reason, message):
        self.answer(status, {"error": {"code": status, "message": message,
                                       "errors": [{"message": message, "domain": "global", "reason": reason}]}})

    def route(self, method):
        url, query, parts = self.seen(method, STATE["requests"], LOCK)
        if parts[:1] == ["_fake"]:
            return self.fake(method, parts[1:])
        if method == "POST" and parts == ["token"]:
            return self.token(urllib.parse.parse_qs(self.body().decode()))
        auth = self.headers.get("Authorization", "")
        with LOCK:
            expires = STATE["tokens"].get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        if expires is None or expires < time.time():
            return self.error(401, "authError", "Request had invalid authentication credentials.")
        if parts[:4] != ["compute", "v1", "projects", PROJECT] or len(parts) < 7 or parts[4] != "zones":
            return self.error(404, "notFound", "The resource '%s' was not found" % url.path)
        zone, rest = parts[5], parts[6:]
        if rest == ["instances"] and method == "GET":
            return self.list(zone, query)
        if len(rest) == 2 and rest[0] == "instances":
            return self.instance(method, zone, rest[1], query)
        if len(rest) == 3 and rest[0] == "instances" and method == "POST" and rest[2] in ("stop", "start", "reset"):
            return self.operate(zone, rest[1], rest[2], query)
        if len(rest) == 2 and rest[0] == "operations" and method == "GET":
            return self.operation(zone, rest[1])
        self.error(404, "notFound", "The resource '%s' was not found" % url.path)

    def token(self, form):
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or "assertion" not in form:
            return self.answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            head, payload, signature = form["assertion"][0].split(".")
            header, claims = json.loads(b64decode(head)), json.loads(b64decode(payload))
            assert header.get("alg") == "RS256", "alg"
            PUBLIC_KEY.verify(b64decode(signature), (head + "." + payload).encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, AssertionError, InvalidSignature) as error:
            sys.stderr.write("gce fake: refused a token request: %r\n" % (error,))
            return self.answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature. (%s)" % error})
        # What Google checks, whichever URL the key's token_uri names.
        audience = "https://oauth2.googleapis.com/token"
        now = time.time()
        problems = []
        if claims.get("iss") != CLIENT_EMAIL:
            problems.append("iss")
        if claims.get("aud") != audience:
            problems.append("aud %r is not %r" % (claims.get("aud"), audience))
        if not SCOPES & set(str(claims.get("scope", "")).split()):
            problems.append("scope")
        if not (claims.get("iat", 0) <= now + 60 and claims.get("exp", 0) > now and claims.get("exp", 0) - claims.get("iat", 0) <= 3600):
            problems.append("iat/exp")
        if problems:
            sys.stderr.write("gce fake: refused a token request: %s\n" % ", ".join(problems))
            return self.answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT: " + ", ".join(problems)})
        with LOCK:
            STATE["issued"] += 1
            token = "ya29.fake-%d-%d" % (STATE["issued"], int(now))
            STATE["tokens"][token] = now + TOKEN_SECONDS
        self.answer(200, {"access_token": token, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"})

    def list(self, zone, query):
        with LOCK:
            if not STATE["limited"]:
                STATE["limited"] = True
                return self.answer(429, {"error": {"code": 429, "message": "Rate Limit Exceeded", "errors": [
                    {"message": "Rate Limit Exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded"}]}},
                    [("Retry-After", "1")])
            found = sorted((i for i in STATE["instances"].values() if i["zone"] == zone), key=lambda i: i["id"])
        flt = query.get("filter", "")
        if flt:
            key, _, value = flt.partition(" = ")
            if not key.startswith("labels.") or not (value.startswith('"') and value.endswith('"')):
                return self.error(400, "invalid", "Invalid value for field 'filter': '%s'." % flt)
            found = [i for i in found if i["labels"].get(key[len("labels."):]) == value[1:-1]]
        start = int(query.get("pageToken", "0") or 0)
        size = min(int(query.get("maxResults", 500)), PAGE)
        chunk = found[start:start + size]
        body = {"kind": "compute#instanceList", "id": "projects/%s/zones/%s/instances" % (PROJECT, zone),
                "items": [instance_doc(i, self.headers.get("Host")) for i in chunk],
                "selfLink": "http://%s%s" % (self.headers.get("Host"), self.path)}
        if start + size < len(found):
            body["nextPageToken"] = str(start + size)
        self.answer(200, body)

    def find(self, zone, name):
        return next((i for i in STATE["instances"].values() if i["zone"] == zone and i["name"] == name), None)

    def new_operation(self, zone, name, kind, query):
        request = query.get("requestId")
        if request and request in STATE["by_request"]:
            return STATE["operations"][STATE["by_request"][request]]
        STATE["next"] += 1
        o = {"id": 7000000000 + STATE["next"], "name": "operation-%d-fake" % STATE["next"], "type": kind,
             "zone": zone, "instance": name, "status": "RUNNING", "reads": 0, "error": kind in STATE["fail"]}
        STATE["fail"].discard(kind)
        STATE["operations"][o["name"]] = o
        if request:
            STATE["by_request"][request] = o["name"]
        return o

    def instance(self, method, zone, name, query):
        with LOCK:
            i = self.find(zone, name)
            if i is None:
                return self.error(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found" % (PROJECT, zone, name))
            if method == "GET":
                return self.answer(200, instance_doc(i, self.headers.get("Host")))
            if method == "DELETE":
                o = self.new_operation(zone, name, "delete", query)
                if not o["error"]:
                    i["status"] = "STOPPING"
                return self.answer(200, operation_doc(o, self.headers.get("Host")))
        self.error(405, "badRequest", "method not allowed")

    def operate(self, zone, name, kind, query):
        with LOCK:
            i = self.find(zone, name)
            if i is None:
                return self.error(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found" % (PROJECT, zone, name))
            o = self.new_operation(zone, name, kind, query)
            if kind == "stop" and not o["error"]:
                i["status"] = "STOPPING"
            return self.answer(200, operation_doc(o, self.headers.get("Host")))

    def operation(self, zone, name):
        with LOCK:
            o = STATE["operations"].get(name)
            if o is None or o["zone"] != zone:
                return self.error(404, "notFound", "The resource 'operations/%s' was not found" % name)
            if o["status"] == "RUNNING":
                o["reads"] += 1
                if o["reads"] >= (SLOW if o["type"] == "stop" else 1):
                    o["status"] = "DONE"
                    i = self.find(o["zone"], o["instance"])
                    if not o["error"] and i is not None:
                        if o["type"] == "delete":
                            del STATE["instances"][i["id"]]
                        else:
                            i["status"] = {"stop": "TERMINATED", "start": "RUNNING", "reset": "RUNNING"}[o["type"]]
            return self.answer(200, operation_doc(o, self.headers.get("Host")))

    def fake(self, method, parts):
        if method == "POST" and parts == ["instances"]:
            spec = json.loads(self.body())
            with LOCK:
                STATE["next"] += 1
                n = STATE["next"]
                i = {"id": 4500000000000000000 + n, "name": spec["name"], "zone": spec["zone"],
                     "labels": spec.get("labels", {}), "status": spec.get("status", "RUNNING"),
                     "ip": "10.132.0.%d" % (n % 250 + 2), "nat": "34.76.0.%d" % (n % 250 + 2)}
                STATE["instances"][i["id"]] = i
            return self.answer(200, instance_doc(i, self.headers.get("Host")))
        if method == "POST" and parts == ["fail_next_operation"]:
            with LOCK:
                STATE["fail"].add(json.loads(self.body())["type"])
            return self.answer(204)
        if method == "GET" and parts == ["requests"]:
            with LOCK:
                return self.answer(200, {"requests": STATE["requests"]})
        if method == "GET" and parts == ["tokens"]:
            with LOCK:
                return self.answer(200, {"issued": STATE["issued"]})
        self.error(404, "notFound", "no such fake route")


if __name__ == "__main__":
    serve(Handler)
