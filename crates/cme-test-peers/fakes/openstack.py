#!/usr/bin/env python3
"""A small OpenStack for tests: a real Keystone (PyPI `keystone`, under gunicorn) whose
catalog points at the local Nova of nova.py, both over HTTPS with a CA made for this
run. Keystone gets a project `chaos`, a user `chaos` with the member role on it, an
application credential of that user, and a `compute` service with public and internal
endpoints in RegionOne.

Usage: openstack.py KEYSTONE_PYTHON WORKDIR
Prints one JSON line (keystone, nova, ca_file, project, project_id, username, password,
application_credential_id, application_credential_secret), then serves until killed;
Keystone dies with it.
"""

import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import nova
from fake_http import listen

KEYSTONE_PYTHON, WORKDIR = sys.argv[1], sys.argv[2]


def write_certificates():
    """A CA and a certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cme test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(WORKDIR, name) for name in ("ca.pem", "server.pem", "server.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.pem"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """Run in the child: SIGKILL when this launcher dies (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def keystone_manage(*args):
    code = "import sys; sys.argv[0] = 'keystone-manage'; from keystone.cmd.manage import main; sys.exit(main())"
    done = subprocess.run([KEYSTONE_PYTHON, "-c", code, "--config-file", os.path.join(WORKDIR, "keystone.conf"),
                           *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit("keystone-manage %s failed:\n%s" % (" ".join(args), done.stdout[-3000:]))


class Keystone:
    def __init__(self, url, ca):
        self.url = url
        self.context = ssl.create_default_context(cafile=ca)

    def call(self, method, path, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:
            text = answer.read()
            return answer.headers, (json.loads(text) if text else None)

    def token(self, user, password, project):
        headers, _ = self.call("POST", "/auth/tokens", {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        return headers["X-Subject-Token"]


def main():
    os.makedirs(WORKDIR, exist_ok=True)
    tls = write_certificates()
    nova_server = listen(nova.Handler, tls["server.pem"], tls["server.key"])
    nova_url = "https://127.0.0.1:%d/v2.1" % nova_server.server_address[1]
    threading.Thread(target=nova_server.serve_forever, daemon=True).start()

    port = free_port()
    keystone_url = "https://127.0.0.1:%d/v3" % port
    with open(os.path.join(WORKDIR, "keystone.conf"), "w") as f:
        f.write("""[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///{db}
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = {keys}
[fernet_receipts]
key_repository = {keys}
[credential]
key_repository = {credential_keys}
""".format(db=os.path.join(WORKDIR, "keystone.db"), keys=os.path.join(WORKDIR, "fernet-keys"),
           credential_keys=os.path.join(WORKDIR, "credential-keys")))
    with open(os.path.join(WORKDIR, "keystone_wsgi.py"), "w") as f:
        f.write("import sys\n# Keystone's configuration reads the command line: gunicorn's is not Keystone's.\n"
                "sys.argv = sys.argv[:1]\n"
                "from keystone.server.wsgi import initialize_public_application\n"
                "application = initialize_public_application()\n")
    admin_password = secrets.token_urlsafe(16)
    user = os.getuid(), os.getgid()
    keystone_manage("db_sync")
    keystone_manage("fernet_setup", "--keystone-user", str(user[0]), "--keystone-group", str(user[1]))
    keystone_manage("credential_setup", "--keystone-user", str(user[0]), "--keystone-group", str(user[1]))
    # `--option=value`: a url-safe token may begin with "-", which argparse would take for
    # an option of its own (one run in 64 failed so).
    keystone_manage("bootstrap", "--bootstrap-password=" + admin_password, "--bootstrap-public-url=" + keystone_url + "/",
                    "--bootstrap-region-id=RegionOne")
    environment = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=os.path.join(WORKDIR, "keystone.conf"))
    log = open(os.path.join(WORKDIR, "gunicorn.log"), "wb")
    gunicorn = subprocess.Popen(
        [KEYSTONE_PYTHON, "-m", "gunicorn", "--chdir", WORKDIR, "--bind", "127.0.0.1:%d" % port,
         "--workers", "2", "--certfile", tls["server.pem"], "--keyfile", tls["server.key"],
         "keystone_wsgi:application"],
        env=environment, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    signal.signal(signal.SIGTERM, lambda *_: (gunicorn.kill(), sys.exit(0)))
    keystone = Keystone(keystone_url, tls["ca.pem"])
    for _ in range(240):
        try:
            keystone.call("GET", "")
            break
        except OSError:
            if gunicorn.poll() is not None:
                sys.exit("gunicorn ended: see %s" % os.path.join(WORKDIR, "gunicorn.log"))
            time.sleep(0.25)
    else:
        sys.exit("Keystone did not answer within 60 s")

    admin = keystone.token("admin", admin_password, "admin")
    _, project = keystone.call("POST", "/projects", {"project": {"name": "chaos", "domain_id": "default"}}, admin)
    project_id = project["project"]["id"]
    password = secrets.token_urlsafe(16)
    _, created = keystone.call("POST", "/users", {"user": {"name": "chaos", "domain_id": "default",
                                                           "password": password}}, admin)
    user_id = created["user"]["id"]
    _, roles = keystone.call("GET", "/roles?name=member", token=admin)
    role_id = roles["roles"][0]["id"]
    keystone.call("PUT", "/projects/%s/users/%s/roles/%s" % (project_id, user_id, role_id), token=admin)
    _, service = keystone.call("POST", "/services", {"service": {"type": "compute", "name": "nova"}}, admin)
    for interface in ("public", "internal"):
        keystone.call("POST", "/endpoints", {"endpoint": {"service_id": service["service"]["id"],
                                                          "interface": interface, "region_id": "RegionOne",
                                                          "url": nova_url}}, admin)
    own = keystone.token("chaos", password, "chaos")
    _, credential = keystone.call("POST", "/users/%s/application_credentials" % user_id,
                                  {"application_credential": {"name": "cme"}}, own)

    nova.CONFIG.update(keystone=keystone_url, ca=tls["ca.pem"], project=project_id)
    print(json.dumps({
        "keystone": keystone_url, "nova": nova_url, "ca_file": tls["ca.pem"], "project": "chaos",
        "project_id": project_id, "username": "chaos", "password": password,
        "application_credential_id": credential["application_credential"]["id"],
        "application_credential_secret": credential["application_credential"]["secret"],
    }), flush=True)
    try:
        while gunicorn.poll() is None:
            time.sleep(1)
    finally:
        gunicorn.kill()


if __name__ == "__main__":
    main()
