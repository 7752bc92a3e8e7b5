"""What every fake cloud API here shares: a JSON answer, the request body, the verbs
routed to one `route(method)`, and serving on a loopback port printed on the first line
of stdout (how cme_test_peers::clouds finds it)."""

import json
import ssl
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    def seen(self, method, requests, lock):
        """The request's URL, query and path segments, recorded in `requests` (what
        `GET /_fake/requests` answers)."""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with lock:
            requests.append({"method": method, "path": url.path, "query": query})
        return url, query, [p for p in url.path.split("/") if p]

    def route(self, method):
        raise NotImplementedError

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


def listen(handler, certfile=None, keyfile=None):
    """A server on a free loopback port, over TLS when given a certificate and key."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def serve(handler, certfile=None, keyfile=None):
    server = listen(handler, certfile, keyfile)
    print(server.server_address[1], flush=True)
    server.serve_forever()
