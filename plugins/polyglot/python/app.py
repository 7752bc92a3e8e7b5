"""py-http-check: an attack written in Python (componentize-py).

It sends one HTTP request through the host's `http` capability and fails unless the
answer has the expected status. Built from this file and the SDK's WIT:

    componentize-py -d ../../../crates/cme-plugin-sdk/wit -w attack componentize app -o py_http_check.wasm
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import http, log, types

SCHEMA = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "pattern": "^https?://", "description": "The URL to call."},
        "method": {"type": "string", "enum": ["GET", "POST", "PUT", "DELETE"], "default": "GET"},
        "body": {"type": "string", "description": "Sent as the request body (text)."},
        "expect_status": {"type": "integer", "minimum": 100, "maximum": 599, "default": 200},
    },
}


def failed(message: str) -> Err:
    return Err(types.PluginError_Failed(message))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name="py-http-check",
            version="0.1.0",
            refs=["py_http_check:PyHttpCheck"],
            description="Sends one HTTP request and fails unless it answers the expected status (written in Python).",
            args_schema=json.dumps(SCHEMA),
            example_args=json.dumps({"url": "http://service.internal/health", "expect_status": 200}),
            capabilities=[types.Capability_Http(["*"])],
        )

    def run(self, ctx: wit_world.RunContext, args: str) -> wit_world.AttackReport:
        # The engine validated the args against SCHEMA before the plan was stored.
        parsed = json.loads(args)
        method = parsed.get("method", "GET")
        expected = parsed.get("expect_status", 200)
        body = parsed["body"].encode() if "body" in parsed else None
        log.log(log.Level.INFO, f"{method} {parsed['url']} (run {ctx.run_id})")
        request = http.Request(method=method, url=parsed["url"], headers=[], body=body, timeout_ms=5000)
        try:
            response = http.send(request)
        except Err as error:
            # A refusal stays a refusal; any other host error fails the attack.
            if isinstance(error.value, types.HostError_Denied):
                raise Err(types.PluginError_Denied(error.value.value))
            raise failed(f"{method} {parsed['url']}: {error.value.value}")
        summary = f"{method} {parsed['url']} -> {response.status}"
        if not ctx.dry_run and response.status != expected:
            raise failed(f"{summary}, expected {expected}")
        details = {"status": response.status, "elapsed_ms": response.elapsed_ms, "language": "python"}
        return wit_world.AttackReport(summary=summary, targets=[parsed["url"]], details=json.dumps(details))
