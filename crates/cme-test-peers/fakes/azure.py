#!/usr/bin/env python3
"""A local Azure Resource Manager (compute and network) and Azure AD token endpoint for
tests, written for cme from the routes, parameters and models of Azure's official
clients (azure-mgmt-compute: virtual_machines list/get/deallocate/start/restart/delete;
azure-mgmt-network: network_interfaces, public_ip_addresses), not from any other
project's fixtures. Standard library only.

Routes: POST /{tenant}/oauth2/v2.0/token (the client-credentials form: grant_type,
client_id, client_secret, scope; answers 30-second tokens);
GET .../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines ($expand,
nextLink), GET|DELETE .../virtualMachines/{name}, POST .../virtualMachines/{name}/
{deallocate|start|restart}, GET .../providers/Microsoft.Compute/locations/{l}/
operations/{id} (the Azure-AsyncOperation status; with monitor=true, a Location: 202
while running, as a delete answers), and the network interfaces and public IPs of a group,
listed or read one by one. Every ARM route wants a token this endpoint issued and an
api-version.

As the real API does, and to exercise the engine's handling of it: pages hold at most
PAGE items with a nextLink; the first VM listing is answered 429 with Retry-After; a
deallocate keeps the VM `deallocating` for SLOW reads of its operation;
`POST /_fake/fail_next {"action": A}` makes the next operation A end Failed. Test set-up:
`POST /_fake/vms {"group", "name", "tags", "location", "zone", "power", "nic_group"}`
adds a VM (and its NIC, in nic_group, default the VM's group, with a public IP) and
answers its id; `GET /_fake/requests` and `GET /_fake/tokens` tell what was seen.

Usage: azure.py SUBSCRIPTION TENANT CLIENT_ID CLIENT_SECRET
"""

import json
import secrets
import sys
import threading
import time
import urllib.parse
import uuid

from fake_http import JsonHandler, serve

PAGE = 2
SLOW = 2
TOKEN_SECONDS = 30
SUBSCRIPTION, TENANT, CLIENT_ID, CLIENT_SECRET = sys.argv[1:5]
LOCK = threading.Lock()
STATE = {"vms": {}, "nics": {}, "ips": {}, "operations": {}, "tokens": {}, "issued": 0, "limited": False,
         "fail": set(), "requests": []}


def group_path(group):
    return "/subscriptions/%s/resourceGroups/%s" % (SUBSCRIPTION, group)


def vm_doc(vm, expand):
    doc = {
        "id": vm["id"], "name": vm["name"], "type": "Microsoft.Compute/virtualMachines", "location": vm["location"],
        "tags": vm["tags"],
        "properties": {
            "vmId": vm["vm_id"], "provisioningState": vm["provisioning"],
            "hardwareProfile": {"vmSize": "Standard_B1s"},
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                  "sku": "server", "version": "latest"},
                               "osDisk": {"osType": "Linux", "name": vm["name"] + "-osdisk", "createOption": "FromImage",
                                          "deleteOption": "Detach"}},
            "networkProfile": {"networkInterfaces": [{"id": vm["nic"], "properties": {"primary": True}}]},
        },
    }
    if vm["zone"]:
        doc["zones"] = [vm["zone"]]
    if expand == "instanceView":
        doc["properties"]["instanceView"] = {
            "computerName": vm["name"], "osName": "ubuntu",
            "statuses": [
                {"code": "ProvisioningState/" + vm["provisioning"].lower(), "level": "Info",
                 "displayStatus": "Provisioning " + vm["provisioning"].lower()},
                {"code": "PowerState/" + vm["power"], "level": "Info", "displayStatus": "VM " + vm["power"]},
            ],
        }
    return doc


def nic_doc(nic):
    return {"id": nic["id"], "name": nic["name"], "type": "Microsoft.Network/networkInterfaces",
            "location": nic["location"],
            "properties": {"provisioningState": "Succeeded", "ipConfigurations": [{
                "id": nic["id"] + "/ipConfigurations/ipconfig1", "name": "ipconfig1",
                "properties": {"privateIPAddress": nic["private"], "privateIPAllocationMethod": "Dynamic",
                               "publicIPAddress": {"id": nic["public_ip"]}, "primary": True}}]}}


def ip_doc(ip):
    return {"id": ip["id"], "name": ip["name"], "type": "Microsoft.Network/publicIPAddresses",
            "location": ip["location"],
            "properties": {"provisioningState": "Succeeded", "ipAddress": ip["address"],
                           "publicIPAllocationMethod": "Static"}}


def advance(op):
    """One read's worth of progress of an operation."""
    if op["status"] != "InProgress":
        return
    op["reads"] += 1
    if op["reads"] < (SLOW if op["action"] == "deallocate" else 1):
        return
    vm = STATE["vms"].get(op["vm"])
    if op["failing"]:
        op["status"] = "Failed"
        if vm is not None:
            vm["power"] = "running"
        return
    op["status"] = "Succeeded"
    if vm is None:
        return
    if op["action"] == "delete":
        del STATE["vms"][op["vm"]]
    else:
        vm["power"] = {"deallocate": "deallocated", "start": "running", "restart": "running"}[op["action"]]


class Handler(JsonHandler):
    def error(self, status, code, message, headers=()):
        self.answer(status, {"error": {"code": code, "message": message}}, headers)

    def route(self, method):
        url, query, parts = self.seen(method, STATE["requests"], LOCK)
        if parts[:1] == ["_fake"]:
            return self.fake(method, parts[1:])
        if method == "POST" and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self.token(parts[0])
        if not self.authorized():
            return self.error(401, "InvalidAuthenticationToken", "The access token is invalid.",
                              [("WWW-Authenticate", 'Bearer authorization_uri="https://login.microsoftonline.com/%s"'
                                % TENANT)])
        if not query.get("api-version"):
            return self.error(400, "MissingApiVersionParameter",
                              "The api-version query parameter (?api-version=) is required for all requests.")
        if parts[:2] != ["subscriptions", SUBSCRIPTION]:
            return self.error(404, "SubscriptionNotFound", "The subscription could not be found.")
        rest = parts[2:]
        lower = [p.lower() for p in rest]
        if len(rest) == 6 and lower[:3] == ["providers", "microsoft.compute", "locations"] and lower[4] == "operations":
            # The same operation as a status document, or (monitor=true) as a Location.
            return self.location(rest[5]) if query.get("monitor") == "true" else self.operation(rest[5])
        if len(rest) < 5 or lower[0] != "resourcegroups" or lower[2] != "providers":
            return self.error(404, "InvalidResourceType", "The resource type could not be found.")
        group, namespace, kind, tail = rest[1], lower[3], lower[4], rest[5:]
        if namespace == "microsoft.compute" and kind == "virtualmachines":
            if method == "GET" and not tail:
                return self.list_vms(group, query)
            if len(tail) == 1 and method in ("GET", "DELETE"):
                return self.vm(method, group, tail[0], query)
            if len(tail) == 2 and method == "POST" and tail[1] in ("deallocate", "start", "restart"):
                return self.act(group, tail[0], tail[1])
        if namespace == "microsoft.network" and kind in ("networkinterfaces", "publicipaddresses") and method == "GET":
            table = STATE["nics"] if kind == "networkinterfaces" else STATE["ips"]
            doc = nic_doc if kind == "networkinterfaces" else ip_doc
            prefix = (group_path(group) + "/providers/" + rest[3] + "/" + rest[4]).lower()
            if not tail:
                with LOCK:
                    items = [doc(v) for k, v in sorted(table.items()) if k.startswith(prefix + "/")]
                return self.page(items, query)
            if len(tail) == 1:
                with LOCK:
                    item = table.get(prefix + "/" + tail[0].lower())
                if item is None:
                    return self.error(404, "ResourceNotFound", "The resource was not found.")
                return self.answer(200, doc(item))
        return self.error(404, "InvalidResourceType", "The resource type could not be found.")

    def authorized(self):
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            return False
        with LOCK:
            expires = STATE["tokens"].get(header[len("Bearer "):])
        return expires is not None and expires > time.time()

    def token(self, tenant):
        form = dict(urllib.parse.parse_qsl(self.body().decode()))
        if tenant != TENANT:
            return self.answer(400, {"error": "invalid_request",
                                     "error_description": "AADSTS90002: Tenant '%s' not found." % tenant})
        if form.get("grant_type") != "client_credentials":
            return self.answer(400, {"error": "unsupported_grant_type",
                                     "error_description": "AADSTS70003: The grant type is not supported."})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self.answer(401, {"error": "invalid_client",
                                     "error_description": "AADSTS7000215: Invalid client secret provided."})
        if not (form.get("scope") or "").endswith("/.default"):
            return self.answer(400, {"error": "invalid_scope",
                                     "error_description": "AADSTS1002012: The provided value for scope is not valid."})
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-arm." + secrets.token_urlsafe(24)
        with LOCK:
            STATE["tokens"][token] = time.time() + TOKEN_SECONDS
            STATE["issued"] += 1
        self.answer(200, {"token_type": "Bearer", "expires_in": TOKEN_SECONDS, "ext_expires_in": TOKEN_SECONDS,
                          "access_token": token})

    def page(self, items, query):
        start = int(query.get("$skiptoken") or 0)
        chunk = items[start:start + PAGE]
        answer = {"value": chunk}
        if start + PAGE < len(items):
            rest = dict(query, **{"$skiptoken": str(start + PAGE)})
            answer["nextLink"] = "http://%s%s?%s" % (self.headers.get("Host"), urllib.parse.urlsplit(self.path).path,
                                                     urllib.parse.urlencode(rest))
        self.answer(200, answer)

    def list_vms(self, group, query):
        with LOCK:
            if not STATE["limited"]:
                STATE["limited"] = True
                return self.error(429, "TooManyRequests", "The request is being throttled.", [("Retry-After", "1")])
            for op in STATE["operations"].values():
                advance(op)
            prefix = (group_path(group) + "/providers/Microsoft.Compute/virtualMachines/").lower()
            items = [vm_doc(v, query.get("$expand")) for k, v in sorted(STATE["vms"].items()) if k.startswith(prefix)]
        self.page(items, query)

    def vm(self, method, group, name, query):
        key = (group_path(group) + "/providers/Microsoft.Compute/virtualMachines/" + name).lower()
        with LOCK:
            for op in STATE["operations"].values():
                if op["vm"] == key:
                    advance(op)
            vm = STATE["vms"].get(key)
            if vm is None:
                return self.error(404, "ResourceNotFound",
                                  "The Resource 'Microsoft.Compute/virtualMachines/%s' under resource group '%s' "
                                  "was not found." % (name, group))
            if method == "GET":
                return self.answer(200, vm_doc(vm, query.get("$expand")))
            op = self.start_operation(key, "delete")
            vm["provisioning"] = "Deleting"
            location = vm["location"]
        # A delete answers with a Location only (the engine follows either header).
        self.answer(202, None, [("Location", self.operation_url(location, op) + "&monitor=true"), ("Retry-After", "0")])

    def act(self, group, name, action):
        key = (group_path(group) + "/providers/Microsoft.Compute/virtualMachines/" + name).lower()
        with LOCK:
            vm = STATE["vms"].get(key)
            if vm is None:
                return self.error(404, "ResourceNotFound", "The Resource was not found.")
            op = self.start_operation(key, action)
            vm["power"] = {"deallocate": "deallocating", "start": "starting", "restart": "starting"}[action]
            location = vm["location"]
        status = self.operation_url(location, op)
        self.answer(202, None, [("Azure-AsyncOperation", status), ("Location", status + "&monitor=true"),
                                ("Retry-After", "0")])

    def operation_url(self, location, op):
        return "http://%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=2024-07-01" % (
            self.headers.get("Host"), SUBSCRIPTION, location, op)

    def start_operation(self, key, action):
        op = str(uuid.uuid4())
        STATE["operations"][op] = {"vm": key, "action": action, "status": "InProgress", "reads": 0,
                                   "failing": action in STATE["fail"]}
        STATE["fail"].discard(action)
        return op

    def operation(self, ident):
        with LOCK:
            op = STATE["operations"].get(ident)
            if op is None:
                return self.error(404, "ResourceNotFound", "The operation was not found.")
            advance(op)
            doc = {"name": ident, "status": op["status"], "startTime": "2026-12-01T00:00:00Z"}
            if op["status"] == "Failed":
                doc["error"] = {"code": "VMAgentStatusCommunicationError",
                                "message": "The VM agent did not report in time."}
        self.answer(200, doc)

    def location(self, ident):
        with LOCK:
            op = STATE["operations"].get(ident)
            if op is None:
                return self.error(404, "ResourceNotFound", "The operation was not found.")
            advance(op)
            status = op["status"]
        if status == "InProgress":
            location = "http://%s%s" % (self.headers.get("Host"), self.path)
            return self.answer(202, None, [("Location", location), ("Retry-After", "0")])
        if status == "Failed":
            return self.error(500, "InternalOperationError", "The operation failed.")
        self.answer(200, None)

    def fake(self, method, parts):
        if method == "POST" and parts == ["vms"]:
            spec = json.loads(self.body() or b"{}")
            group, name = spec.get("group", "chaos"), spec["name"]
            location = spec.get("location", "westeurope")
            nic_group = spec.get("nic_group", group)
            with LOCK:
                n = len(STATE["vms"]) + 4
                vm_id = group_path(group) + "/providers/Microsoft.Compute/virtualMachines/" + name
                ip_id = group_path(nic_group) + "/providers/Microsoft.Network/publicIPAddresses/" + name + "-ip"
                nic_id = group_path(nic_group) + "/providers/Microsoft.Network/networkInterfaces/" + name + "-nic"
                STATE["ips"][ip_id.lower()] = {"id": ip_id, "name": name + "-ip", "location": location,
                                               "address": "20.0.0.%d" % (n % 250)}
                STATE["nics"][nic_id.lower()] = {"id": nic_id, "name": name + "-nic", "location": location,
                                                 "private": "10.1.0.%d" % (n % 250), "public_ip": ip_id}
                STATE["vms"][vm_id.lower()] = {"id": vm_id, "name": name, "location": location,
                                               "zone": spec.get("zone"), "tags": spec.get("tags", {}),
                                               "power": spec.get("power", "running"), "provisioning": "Succeeded",
                                               "vm_id": str(uuid.uuid4()), "nic": nic_id}
            return self.answer(201, {"id": vm_id})
        if method == "POST" and parts == ["fail_next"]:
            with LOCK:
                STATE["fail"].add(json.loads(self.body())["action"])
            return self.answer(204)
        if method == "GET" and parts == ["requests"]:
            with LOCK:
                return self.answer(200, {"requests": STATE["requests"]})
        if method == "GET" and parts == ["tokens"]:
            with LOCK:
                return self.answer(200, {"issued": STATE["issued"]})
        self.error(404, "NotFound", "no such fake route")


if __name__ == "__main__":
    serve(Handler)
