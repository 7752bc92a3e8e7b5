#!/usr/bin/env python3
"""Drives the fake Azure Resource Manager (../azure.py) with Azure's official Python
clients, azure-mgmt-compute and azure-mgmt-network: if the fake's routes, parameters or
shapes drifted from the API the clients were generated from, these calls would fail or
read nothing. Lists VMs (paged by nextLink, through the fake's 429, which azure-core's
retry policy waits out) with their instance view, deallocates and starts one through the
clients' long-running-operation pollers, and reads its network interface and public IP.

The token comes from the fake's client-credentials endpoint (azure-identity refuses an
authority that is not https, and the fake serves plain http on loopback).

Usage: azure_arm.py URL SUBSCRIPTION TENANT CLIENT_ID CLIENT_SECRET   (exits 0 when every check holds)
"""

import json
import sys
import time
import urllib.parse
import urllib.request

from azure.core.credentials import AccessToken
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient

url, subscription, tenant, client_id, secret = sys.argv[1:6]


class ClientSecret:
    """The client-credentials flow, as azure-identity's ClientSecretCredential runs it."""

    def get_token(self, *scopes, **kwargs):
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": secret, "scope": " ".join(scopes)}).encode()
        request = urllib.request.Request("%s/%s/oauth2/v2.0/token" % (url, tenant), data=form, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request) as answer:
            token = json.loads(answer.read())
        return AccessToken(token["access_token"], int(time.time()) + int(token["expires_in"]))

    def get_token_info(self, *scopes, **kwargs):
        from azure.core.credentials import AccessTokenInfo
        token = self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)


def fake(path, body):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"{}")


ids = [fake("/_fake/vms", {"group": "conformance", "name": "conf-%d" % i, "tags": {"conformance": "yes"}})["id"]
       for i in range(3)]
# The fake serves plain HTTP on loopback: azure-core sends a bearer token only over TLS
# unless a call says otherwise; polling is shortened.
PLAIN = {"enforce_https": False}
compute = ComputeManagementClient(ClientSecret(), subscription, base_url=url, polling_interval=0.1)
network = NetworkManagementClient(ClientSecret(), subscription, base_url=url, polling_interval=0.1)

vms = list(compute.virtual_machines.list("conformance", expand="instanceView", **PLAIN))
assert sorted(vm.id for vm in vms) == sorted(ids), ([vm.id for vm in vms], ids)
vm = vms[0]
assert vm.tags == {"conformance": "yes"} and vm.location == "westeurope", vm.as_dict()
assert vm.hardware_profile.vm_size == "Standard_B1s", vm.as_dict()


def power(name):
    view = compute.virtual_machines.get("conformance", name, expand="instanceView", **PLAIN).instance_view
    return [s.code for s in view.statuses if s.code.startswith("PowerState/")][0]


assert power(vm.name) == "PowerState/running"
compute.virtual_machines.begin_deallocate("conformance", vm.name, **PLAIN).result()
assert power(vm.name) == "PowerState/deallocated", power(vm.name)
compute.virtual_machines.begin_start("conformance", vm.name, **PLAIN).result()
assert power(vm.name) == "PowerState/running", power(vm.name)

nic_id = vm.network_profile.network_interfaces[0].id
nic = network.network_interfaces.get("conformance", nic_id.rsplit("/", 1)[1], **PLAIN)
configuration = nic.ip_configurations[0]
assert configuration.private_ip_address.startswith("10."), nic.as_dict()
ip = network.public_ip_addresses.get("conformance", configuration.public_ip_address.id.rsplit("/", 1)[1], **PLAIN)
assert ip.ip_address.startswith("20."), ip.as_dict()
assert len(list(network.network_interfaces.list("conformance", **PLAIN))) == 3

compute.virtual_machines.begin_delete("conformance", vms[1].name, **PLAIN).result()
assert len(list(compute.virtual_machines.list("conformance", **PLAIN))) == 2
print("ok")
