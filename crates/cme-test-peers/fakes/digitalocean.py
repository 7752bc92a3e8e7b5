#!/usr/bin/env python3
"""A local DigitalOcean API v2 for tests, written for cme from the routes, parameters and
shapes of DigitalOcean's official client (pydo: operations/_operations.py), not from any
other project's fixtures. Standard library only.

Routes: GET /v2/droplets (per_page, page, tag_name, name; links.pages.next),
GET|DELETE /v2/droplets/{id}, GET|POST /v2/droplets/{id}/actions (shutdown, power_off,
power_on, reboot), GET /v2/actions/{id}. Every route wants `Authorization: Bearer TOKEN`.

As real clouds do, and to exercise the engine's handling of it: pages hold at most
PAGE droplets whatever per_page says; the first listing is answered 429 with Retry-After;
a shutdown keeps the droplet active (its action in-progress) for SLOW reads of the action;
`POST /_fake/fail_next_action {"type": T}` makes the next action of type T end errored.
Test set-up: `POST /_fake/droplets {"name", "region", "tags", "status"}` adds a droplet and
answers it; `GET /_fake/requests` lists the requests seen (method, path, query).

Usage: digitalocean.py TOKEN  (prints the port it listens on, then serves on 127.0.0.1)
"""

import json
import sys
import threading
import urllib.parse

from fake_http import JsonHandler, serve

PAGE = 2
SLOW = 2
TOKEN = sys.argv[1]
LOCK = threading.Lock()
STATE = {"droplets": {}, "actions": {}, "next_id": 3164000, "next_action": 36800000,
         "limited": False, "fail": set(), "requests": []}


def droplet_doc(d):
    return {
        "id": d["id"], "name": d["name"], "memory": 1024, "vcpus": 1, "disk": 25, "locked": False,
        "status": d["status"], "created_at": "2026-12-01T00:00:00Z", "features": [], "backup_ids": [],
        "snapshot_ids": [], "volume_ids": [], "tags": d["tags"], "size_slug": "s-1vcpu-1gb",
        "image": {"id": 7555620, "name": "24.04 (LTS) x64", "distribution": "Ubuntu", "slug": "ubuntu-24-04-x64",
                  "public": True, "regions": [d["region"]], "type": "base"},
        "region": {"slug": d["region"], "name": d["region"], "sizes": ["s-1vcpu-1gb"], "available": True,
                   "features": ["private_networking"]},
        "networks": {"v4": [
            {"ip_address": d["private"], "netmask": "255.255.240.0", "gateway": "", "type": "private"},
            {"ip_address": d["public"], "netmask": "255.255.240.0", "gateway": "203.0.113.1", "type": "public"},
        ], "v6": []},
        "kernel": None, "next_backup_window": None, "vpc_uuid": "5a4981aa-0000-0000-0000-000000000000",
    }


def action_doc(a):
    return {"id": a["id"], "status": a["status"], "type": a["type"], "started_at": "2026-12-01T00:00:00Z",
            "completed_at": None if a["status"] == "in-progress" else "2026-12-01T00:00:05Z",
            "resource_id": a["droplet"], "resource_type": "droplet", "region_slug": a["region"]}


class Handler(JsonHandler):
    def error(self, status, ident, message):
        self.answer(status, {"id": ident, "message": message, "request_id": "fake"})

    def json_body(self):
        return json.loads(self.body() or b"{}")

    def route(self, method):
        url, query, parts = self.seen(method, STATE["requests"], LOCK)
        if parts[:1] == ["_fake"]:
            return self.fake(method, parts[1:])
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.error(401, "unauthorized", "Unable to authenticate you.")
        if parts[:1] != ["v2"]:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        rest = parts[1:]
        if method == "GET" and rest == ["droplets"]:
            return self.list(query, url.path)
        if len(rest) == 2 and rest[0] == "droplets" and rest[1].isdigit():
            return self.droplet(method, int(rest[1]))
        if method == "POST" and len(rest) == 3 and rest[0] == "droplets" and rest[2] == "actions" and rest[1].isdigit():
            return self.act(int(rest[1]), self.json_body())
        if method == "GET" and len(rest) == 3 and rest[0] == "droplets" and rest[2] == "actions" and rest[1].isdigit():
            return self.droplet_actions(int(rest[1]))
        if method == "GET" and len(rest) == 2 and rest[0] == "actions" and rest[1].isdigit():
            return self.action(int(rest[1]))
        return self.error(404, "not_found", "The resource you were accessing could not be found.")

    def list(self, query, path):
        with LOCK:
            if not STATE["limited"]:
                STATE["limited"] = True
                return self.answer(429, {"id": "too_many_requests", "message": "API Rate limit exceeded."},
                                   [("Retry-After", "1")])
            droplets = sorted(STATE["droplets"].values(), key=lambda d: d["id"])
        if "tag_name" in query:
            droplets = [d for d in droplets if query["tag_name"] in d["tags"]]
        if "name" in query:
            droplets = [d for d in droplets if d["name"].lower() == query["name"].lower()]
        per_page = min(int(query.get("per_page", 20)), PAGE)
        page = int(query.get("page", 1))
        chunk = droplets[(page - 1) * per_page: page * per_page]
        pages = {}
        if page * per_page < len(droplets):
            rest = {k: v for k, v in query.items() if k != "page"}
            rest["page"] = str(page + 1)
            host = self.headers.get("Host")
            pages["next"] = "http://%s%s?%s" % (host, path, urllib.parse.urlencode(rest))
            pages["last"] = "http://%s%s?%s" % (host, path, urllib.parse.urlencode(
                dict(rest, page=str((len(droplets) + per_page - 1) // per_page))))
        self.answer(200, {"droplets": [droplet_doc(d) for d in chunk], "links": {"pages": pages},
                          "meta": {"total": len(droplets)}})

    def droplet(self, method, ident):
        with LOCK:
            d = STATE["droplets"].get(ident)
            if d is None:
                return self.error(404, "not_found", "The resource you were accessing could not be found.")
            if method == "GET":
                return self.answer(200, {"droplet": droplet_doc(d)})
            if method == "DELETE":
                del STATE["droplets"][ident]
                return self.answer(204)
        self.error(405, "method_not_allowed", "Method not allowed")

    def act(self, ident, body):
        kind = body.get("type")
        if kind not in ("shutdown", "power_off", "power_on", "reboot"):
            return self.error(422, "unprocessable_entity", "Action type is not valid")
        with LOCK:
            d = STATE["droplets"].get(ident)
            if d is None:
                return self.error(404, "not_found", "The resource you were accessing could not be found.")
            STATE["next_action"] += 1
            a = {"id": STATE["next_action"], "type": kind, "droplet": ident, "region": d["region"],
                 "status": "in-progress", "reads": 0, "failed": kind in STATE["fail"]}
            STATE["fail"].discard(kind)
            STATE["actions"][a["id"]] = a
            if kind == "power_off":
                d["status"] = "off"
                a["status"] = "completed"
            answer = action_doc(a)
        self.answer(201, {"action": answer})

    def droplet_actions(self, ident):
        with LOCK:
            if ident not in STATE["droplets"]:
                return self.error(404, "not_found", "The resource you were accessing could not be found.")
            actions = [action_doc(a) for a in STATE["actions"].values() if a["droplet"] == ident]
        actions.sort(key=lambda a: -a["id"])
        self.answer(200, {"actions": actions, "links": {"pages": {}}, "meta": {"total": len(actions)}})

    def action(self, ident):
        with LOCK:
            a = STATE["actions"].get(ident)
            if a is None:
                return self.error(404, "not_found", "The resource you were accessing could not be found.")
            if a["status"] == "in-progress":
                a["reads"] += 1
                if a["reads"] >= (SLOW if a["type"] == "shutdown" else 1):
                    d = STATE["droplets"].get(a["droplet"])
                    if a["failed"]:
                        a["status"] = "errored"
                    else:
                        a["status"] = "completed"
                        if d is not None:
                            d["status"] = {"shutdown": "off", "power_on": "active", "reboot": "active"}[a["type"]]
            return self.answer(200, {"action": action_doc(a)})

    def fake(self, method, parts):
        if method == "POST" and parts == ["droplets"]:
            spec = self.json_body()
            with LOCK:
                STATE["next_id"] += 1
                n = STATE["next_id"]
                d = {"id": n, "name": spec["name"], "region": spec.get("region", "ams3"), "tags": spec.get("tags", []),
                     "status": spec.get("status", "active"), "private": "10.110.0.%d" % (n % 250 + 2),
                     "public": "203.0.113.%d" % (n % 250 + 2)}
                STATE["droplets"][n] = d
            return self.answer(201, {"droplet": droplet_doc(d)})
        if method == "POST" and parts == ["fail_next_action"]:
            with LOCK:
                STATE["fail"].add(self.json_body()["type"])
            return self.answer(204)
        if method == "GET" and parts == ["requests"]:
            with LOCK:
                return self.answer(200, {"requests": STATE["requests"]})
        self.error(404, "not_found", "no such fake route")


if __name__ == "__main__":
    serve(Handler)
