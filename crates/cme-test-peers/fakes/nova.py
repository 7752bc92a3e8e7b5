"""A local OpenStack Compute (Nova) API v2.1 for tests, written for cme from the Compute
API reference (servers, server actions) and openstacksdk's compute resources, not from
any other project's fixtures. Standard library only; served by openstack.py beside a
real Keystone, which it asks to validate every token (GET /v3/auth/tokens with the token
as both X-Auth-Token and X-Subject-Token, as a token's owner may), wanting it scoped to
the project it serves.

Routes (under /v2.1): GET servers/detail (limit, marker, name as a regular expression;
servers_links next), GET|DELETE servers/{id}, POST servers/{id}/action (os-stop,
os-start, reboot). As a real cloud does, and to exercise the engine's handling of it:
pages hold at most PAGE servers whatever limit says; the first listing is answered 429
with Retry-After; a stop keeps the server ACTIVE with task powering-off for SLOW reads;
a second stop of a stopped server is a 409 conflict; `POST /_fake/fail_next {"action":
A}` makes the next action A leave the server in ERROR. Test set-up: `POST /_fake/servers
{"name", "metadata", "status", "zone", "private", "public"}` adds a server and answers it; `GET
/_fake/requests` lists the requests seen (method, path, query).
"""

import json
import re
import ssl
import threading
import time
import urllib.parse
import urllib.request
import uuid

from fake_http import JsonHandler

PAGE = 2
SLOW = 2
LOCK = threading.Lock()
STATE = {"servers": {}, "order": [], "limited": False, "fail": set(), "requests": [], "tokens": {}}
CONFIG = {"keystone": None, "ca": None, "project": None}


def server_doc(s):
    return {
        "id": s["id"], "name": s["name"], "status": s["status"], "tenant_id": CONFIG["project"],
        "user_id": "fake-user", "metadata": s["metadata"], "hostId": "fake-host",
        "image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": []},
        "flavor": {"original_name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0,
                   "extra_specs": {}},
        "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:00Z",
        "addresses": {"private": [
            {"addr": s["private"], "version": 4, "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"},
            {"addr": s["public"], "version": 4, "OS-EXT-IPS:type": "floating",
             "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"},
        ]},
        "accessIPv4": "", "accessIPv6": "", "key_name": None, "security_groups": [{"name": "default"}],
        "OS-EXT-STS:task_state": s["task"], "OS-EXT-STS:vm_state": s["status"].lower(),
        "OS-EXT-STS:power_state": 1 if s["status"] == "ACTIVE" else 4,
        "OS-EXT-AZ:availability_zone": s["zone"], "locked": False, "tags": [],
        "links": [{"rel": "self", "href": "/v2.1/servers/" + s["id"]}],
    }


def advance(s):
    """One read's worth of progress of the server's current task."""
    if s["task"] is None:
        return
    s["reads"] += 1
    if s["reads"] < (SLOW if s["task"] == "powering-off" else 1):
        return
    task, s["task"], s["reads"] = s["task"], None, 0
    if s.pop("failing", False):
        s["status"] = "ERROR"
    elif task == "powering-off":
        s["status"] = "SHUTOFF"
    elif task == "powering-on":
        s["status"] = "ACTIVE"
    elif task == "reboot_started":
        s["status"] = "ACTIVE"
    elif task == "deleting":
        del STATE["servers"][s["id"]]
        STATE["order"].remove(s["id"])


def project_of(token):
    """The project a Keystone token is scoped to, asked of Keystone (cached 30 s)."""
    with LOCK:
        known = STATE["tokens"].get(token)
    if known and known[1] > time.time():
        return known[0]
    request = urllib.request.Request(CONFIG["keystone"] + "/auth/tokens",
                                     headers={"X-Auth-Token": token, "X-Subject-Token": token})
    context = ssl.create_default_context(cafile=CONFIG["ca"])
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            project = json.load(answer)["token"].get("project", {}).get("id")
    except Exception:
        project = None
    with LOCK:
        STATE["tokens"][token] = (project, time.time() + 30)
    return project


class Handler(JsonHandler):
    def error(self, status, kind, message):
        self.answer(status, {kind: {"code": status, "message": message}})

    def json_body(self):
        return json.loads(self.body() or b"{}")

    def route(self, method):
        url, query, parts = self.seen(method, STATE["requests"], LOCK)
        if parts[:1] == ["_fake"]:
            return self.fake(method, parts[1:])
        token = self.headers.get("X-Auth-Token") or ""
        if not token or project_of(token) != CONFIG["project"]:
            return self.error(401, "unauthorized", "The request you have made requires authentication.")
        if parts[:1] != ["v2.1"]:
            return self.error(404, "itemNotFound", "Not found")
        rest = parts[1:]
        if method == "GET" and rest == ["servers", "detail"]:
            return self.list(query)
        if len(rest) == 2 and rest[0] == "servers":
            return self.one_server(method, rest[1])
        if method == "POST" and len(rest) == 3 and rest[0] == "servers" and rest[2] == "action":
            return self.act(rest[1], self.json_body())
        return self.error(404, "itemNotFound", "Not found")

    def list(self, query):
        with LOCK:
            if not STATE["limited"]:
                STATE["limited"] = True
                return self.answer(429, {"overLimit": {"code": 429, "message": "Over limit", "retryAfter": "1"}},
                                   [("Retry-After", "1")])
            for s in list(STATE["servers"].values()):
                advance(s)
            servers = [STATE["servers"][i] for i in STATE["order"]]
        if "name" in query:
            servers = [s for s in servers if re.search(query["name"], s["name"])]
        if "marker" in query:
            ids = [s["id"] for s in servers]
            if query["marker"] not in ids:
                return self.error(400, "badRequest", "marker [%s] not found" % query["marker"])
            servers = servers[ids.index(query["marker"]) + 1:]
        limit = min(int(query.get("limit", 1000)), PAGE)
        chunk = servers[:limit]
        links = []
        if len(servers) > limit:
            rest = dict(query, limit=str(limit), marker=chunk[-1]["id"])
            links.append({"rel": "next", "href": "https://%s/v2.1/servers/detail?%s" % (
                self.headers.get("Host"), urllib.parse.urlencode(rest))})
        self.answer(200, {"servers": [server_doc(s) for s in chunk], "servers_links": links})

    def one_server(self, method, ident):
        with LOCK:
            s = STATE["servers"].get(ident)
            if s is not None and method == "GET":
                advance(s)
                s = STATE["servers"].get(ident)
            if s is None:
                return self.error(404, "itemNotFound", "Instance %s could not be found." % ident)
            if method == "GET":
                return self.answer(200, {"server": server_doc(s)})
            if method == "DELETE":
                s["task"], s["reads"] = "deleting", 0
                return self.answer(204)
        self.error(405, "badMethod", "Method not allowed")

    def act(self, ident, body):
        action = next(iter(body), None)
        with LOCK:
            s = STATE["servers"].get(ident)
            if s is None:
                return self.error(404, "itemNotFound", "Instance %s could not be found." % ident)
            wanted = {"os-stop": ("ACTIVE", "powering-off"), "os-start": ("SHUTOFF", "powering-on"),
                      "reboot": ("ACTIVE", "reboot_started")}.get(action)
            if wanted is None:
                return self.error(400, "badRequest", "There is no such action: %s" % action)
            if action == "reboot" and (body["reboot"] or {}).get("type") not in ("SOFT", "HARD"):
                return self.error(400, "badRequest", "Invalid input for field/attribute type.")
            if s["status"] != wanted[0] or s["task"] is not None:
                return self.error(409, "conflictingRequest",
                                  "Cannot '%s' instance %s while it is in vm_state %s" % (
                                      action, ident, s["status"].lower()))
            s["task"], s["reads"] = wanted[1], 0
            if action == "reboot":
                s["status"] = "REBOOT"
            if action in STATE["fail"]:
                STATE["fail"].discard(action)
                s["failing"] = True
        self.answer(202)

    def fake(self, method, parts):
        if method == "POST" and parts == ["servers"]:
            spec = self.json_body()
            with LOCK:
                n = len(STATE["order"]) + 2
                ident = str(uuid.uuid4())
                s = {"id": ident, "name": spec["name"], "metadata": spec.get("metadata", {}),
                     "status": spec.get("status", "ACTIVE"), "zone": spec.get("zone", "nova"), "task": None,
                     "reads": 0, "private": spec.get("private", "10.0.0.%d" % (n % 250)),
                     "public": spec.get("public", "172.24.4.%d" % (n % 250))}
                STATE["servers"][ident] = s
                STATE["order"].append(ident)
            return self.answer(201, {"server": server_doc(s)})
        if method == "POST" and parts == ["fail_next"]:
            with LOCK:
                STATE["fail"].add(self.json_body()["action"])
            return self.answer(204)
        if method == "GET" and parts == ["requests"]:
            with LOCK:
                return self.answer(200, {"requests": STATE["requests"]})
        self.error(404, "itemNotFound", "no such fake route")

