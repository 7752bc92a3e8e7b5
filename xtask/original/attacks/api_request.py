import requests

from chaosmonkey.attacks.attack import Attack


class ApiRequest(Attack):
    """Calls an HTTP API (reconstructed from the documented behaviour)."""

    ref = "api_request:ApiRequest"
    schema = {"type": "object", "properties": {"ref": {"type": "string"}, "args": {"type": "object",
              "properties": {"endpoint": {"type": "string"}, "method": {"type": "string"}, "payload": {"type": "object"}, "headers": {"type": "object"}},
              "required": ["endpoint", "method", "payload", "headers"]}}}
    example = {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://localhost:4500", "method": "POST", "payload": {"terminate": "1"}, "headers": {}}}

    def __init__(self, attack_config):
        super(ApiRequest, self).__init__(attack_config)

    def run(self):
        args = self.attack_config["args"]
        requests.request(args["method"], args["endpoint"], headers=args["headers"], data=args["payload"])

    @staticmethod
    def to_dict():
        return Attack._to_dict(ApiRequest.ref, ApiRequest.schema, ApiRequest.example)
