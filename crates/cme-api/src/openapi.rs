//! The OpenAPI 3.1 document at `/api/1/openapi.json`, generated from the route table
//! (`routes::ENDPOINTS`, which also builds the router), the request schemas the handlers
//! validate with, and the response schemas below (kept beside the documents they describe
//! by the schemathesis run in CI, which checks every answer against them).

use serde_json::{Map, Value, json};

use crate::bodies::{
    HaltBody, InventoryBody, InventoryHostBody, NewBlackoutBody, NewCredentialBody, NewPlanBody, RescheduleBody, schema,
};

use crate::auth::Role;

/// An HTTP method of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn method(self) -> actix_web::http::Method {
        use actix_web::http::Method;
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }
}

/// A query parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    name: &'static str,
    description: &'static str,
    kind: &'static str,
    required: bool,
}

impl Param {
    pub const fn text(name: &'static str, description: &'static str) -> Param {
        Param { name, description, kind: "string", required: false }
    }
    pub const fn int(name: &'static str, description: &'static str) -> Param {
        Param { name, description, kind: "integer", required: false }
    }
    pub const fn boolean(name: &'static str, description: &'static str) -> Param {
        Param { name, description, kind: "boolean", required: false }
    }
}

/// What a request carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body {
    None,
    /// JSON matching the named schema.
    Json(&'static str),
    /// JSON matching the named schema, or nothing.
    OptionalJson(&'static str),
    /// A WebAssembly component, raw or as the `file` part of a form.
    Wasm,
    /// An iCalendar file, or a subscription to one as JSON.
    CalendarOrSubscription,
    /// An Ansible inventory: INI, YAML or `ansible-inventory --list` JSON.
    Inventory,
}

/// A successful answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// `application/hal+json` matching the named schema.
    Hal(&'static str),
    /// `application/json` matching the named schema.
    Json(&'static str),
    /// `text/plain`.
    Text,
    /// A run's journal: `application/hal+json` matching the named schema, JUnit XML, or
    /// an event stream.
    Journal(&'static str),
}

/// An OpenAPI link: where a value of the answer can be used next (name, the target's
/// operationId, its path parameter, a runtime expression such as `$response.body#/id`).
pub(crate) type Link = (&'static str, &'static str, &'static str, &'static str);

/// One endpoint of the table.
pub(crate) struct Endpoint {
    pub verb: Verb,
    pub path: &'static str,
    operation: &'static str,
    summary: &'static str,
    /// The least role that may call it; None: no token needed.
    role: Option<Role>,
    params: &'static [Param],
    body: Body,
    answers: &'static [(u16, Answer)],
    /// OpenAPI links from the first answer: (name, operationId, parameter, expression).
    links: &'static [Link],
    /// Adds the handler to a route.
    pub handler: fn(actix_web::Route) -> actix_web::Route,
}

impl Endpoint {
    pub const fn new(
        verb: Verb,
        path: &'static str,
        operation: &'static str,
        summary: &'static str,
        role: Option<Role>,
        handler: fn(actix_web::Route) -> actix_web::Route,
    ) -> Endpoint {
        Endpoint {
            verb,
            path,
            operation,
            summary,
            role,
            params: &[],
            body: Body::None,
            answers: &[],
            links: &[],
            handler,
        }
    }
    pub const fn params(mut self, params: &'static [Param]) -> Endpoint {
        self.params = params;
        self
    }
    pub const fn body(mut self, body: Body) -> Endpoint {
        self.body = body;
        self
    }
    pub const fn answers(mut self, answers: &'static [(u16, Answer)]) -> Endpoint {
        self.answers = answers;
        self
    }
    pub const fn links(mut self, links: &'static [Link]) -> Endpoint {
        self.links = links;
        self
    }

    fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// The problem statuses this endpoint answers besides the universal ones.
    fn problems(&self) -> Vec<(u16, &'static str)> {
        let mut problems = Vec::new();
        let takes_input = !self.params.is_empty() || !matches!(self.body, Body::None);
        if takes_input {
            problems.push((400, "the request is malformed or invalid (the detail names what and where)"));
        }
        if self.role.is_some() {
            problems.push((401, "no token, or an unknown one (when the engine has tokens)"));
            problems.push((403, "the token's role may not do this, or the request came from another origin"));
        }
        if self.path_params().next().is_some() || matches!(self.body, Body::Json(_)) {
            problems.push((404, "no such resource (or a ref in the body names none)"));
        }
        if !matches!(self.body, Body::None) {
            problems.push((413, "the body is larger than this endpoint takes"));
            problems.push((415, "the body is not of the media type this endpoint takes"));
        }
        problems.push((421, "the Host header names a host this engine does not serve"));
        problems
    }

    fn operation(&self) -> Value {
        let mut parameters: Vec<Value> = self
            .path_params()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(self.params.iter().map(|p| {
            json!({"name": p.name, "in": "query", "required": p.required, "description": p.description, "schema": {"type": p.kind}})
        }));
        let mut responses = Map::new();
        for (i, (status, answer)) in self.answers.iter().enumerate() {
            let content = match answer {
                Answer::Hal(schema) => json!({"application/hal+json": {"schema": reference(schema)}}),
                Answer::Json(schema) => json!({"application/json": {"schema": reference(schema)}}),
                Answer::Text => json!({"text/plain": {"schema": {"type": "string"}}}),
                Answer::Journal(schema) => json!({
                    "application/hal+json": {"schema": reference(schema)},
                    "application/xml": {"schema": {"type": "string"}},
                    "text/event-stream": {"schema": {"type": "string"}},
                }),
            };
            let mut response = json!({"description": self.summary, "content": content});
            if i == 0 && !self.links.is_empty() {
                let links: Map<String, Value> = self
                    .links
                    .iter()
                    .map(|(name, operation, parameter, expression)| {
                        (name.to_string(), json!({"operationId": operation, "parameters": {*parameter: expression}}))
                    })
                    .collect();
                response["links"] = Value::Object(links);
            }
            responses.insert(status.to_string(), response);
        }
        for (status, why) in self.problems() {
            responses.entry(status.to_string()).or_insert_with(|| problem(why));
        }
        responses.insert(
            "default".into(),
            problem("a conflict (409), a cap (429), a plugin's fault (500) or an unavailable database (503)"),
        );
        let mut operation = json!({
            "operationId": self.operation,
            "summary": self.summary,
            "tags": [tag(self.path)],
            "parameters": parameters,
            "responses": responses,
        });
        match self.role {
            Some(role) => {
                operation["security"] = json!([{"bearer": []}]);
                operation["x-cme-role"] = json!(role.name());
                operation["description"] = json!(format!("Role: {} or above.", role.name()));
            }
            None => operation["security"] = json!([]),
        }
        let body = match self.body {
            Body::None => None,
            Body::Json(schema) => {
                Some(json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}}))
            }
            Body::OptionalJson(schema) => {
                Some(json!({"required": false, "content": {"application/json": {"schema": reference(schema)}}}))
            }
            Body::Wasm => Some(json!({"required": true, "content": {
                "application/wasm": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}, "sha256": {"type": "string"}}
                }}
            }})),
            Body::CalendarOrSubscription => Some(json!({"required": true, "content": {
                "text/calendar": {"schema": {"type": "string"}},
                "application/json": {"schema": reference("NewSubscription")}
            }})),
            Body::Inventory => {
                let text = json!({"schema": {"type": "string"}});
                Some(json!({"required": true, "content": {
                    "application/yaml": text, "text/x-ini": text, "text/plain": text,
                    "application/json": {"schema": {"type": "object"}},
                }}))
            }
        };
        if let Some(body) = body {
            operation["requestBody"] = body;
        }
        operation
    }
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": reference("Problem")}}})
}

fn tag(path: &str) -> &str {
    path.strip_prefix("/api/1/")
        .and_then(|rest| rest.split('/').next())
        .filter(|t| !t.is_empty())
        .unwrap_or("operations")
}

/// The whole document.
pub(crate) fn document(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints {
        let item = paths.entry(endpoint.path.to_string()).or_insert_with(|| json!({}));
        item[endpoint.verb.key()] = endpoint.operation();
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cme",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Chaos Monkey Engine's HAL+JSON API. Errors are problem+json documents (RFC 9457) that also carry the original engine's `msg`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a token from the engine's configuration; not needed on loopback when it has none"}},
            "schemas": schemas(),
        },
    })
}

/// Request schemas (the very ones handlers validate with) and response schemas.
fn schemas() -> Value {
    let date = json!({"type": "string", "format": "date-time"});
    let date_or_null = json!({"type": ["string", "null"], "format": "date-time"});
    let text_or_null = json!({"type": ["string", "null"]});
    let links = json!({"type": "object", "additionalProperties": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}});
    let statuses: Vec<&str> = cme_engine::ExecutorStatus::ALL.iter().map(|s| s.as_str()).collect();
    let executor = json!({
        "type": "object",
        "required": ["id", "next_run_time", "plan_id", "executed", "status", "attempts", "_links"],
        "properties": {
            "id": {"type": "string"},
            "next_run_time": date,
            "plan_id": {"type": "string"},
            "executed": {"type": "boolean"},
            "status": {"enum": statuses},
            "attempts": {"type": "integer", "minimum": 0},
            "started_at": date_or_null,
            "finished_at": date_or_null,
            "result": {"type": ["object", "null"]},
            "error": text_or_null,
            "reason": text_or_null,
            "dry_run": {"type": ["boolean", "null"]},
            "outcome": {"enum": ["held", "refuted", "aborted", null]},
            "log": {"type": "object"},
            "plugin": {"type": "string"},
            "msg": {"type": "string"},
            "_links": links,
        }
    });
    let call = json!({"type": "object", "required": ["ref", "plugin", "args"], "properties": {"ref": {"type": "string"}, "plugin": {"type": "string"}, "args": {}}});
    let plan = json!({
        "type": "object",
        "required": ["id", "name", "created", "executors_count", "executed", "dry_run", "paused", "attack", "planner", "_links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "created": date,
            "executors_count": {"type": "integer", "minimum": 0},
            "next_execution": date_or_null,
            "executed": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "paused": {"type": "boolean"},
            "paused_since": date_or_null,
            "timezone": text_or_null,
            "grace_seconds": {"type": "integer", "minimum": 0},
            "recurring": {"type": "boolean"},
            "planned_until": date_or_null,
            "misfire": {"enum": ["skip", "run_once"]},
            "overlap": {"enum": ["forbid", "allow"]},
            "seed": {"type": ["integer", "null"]},
            "attack": call,
            "planner": call,
            "steady_state": {"type": "array", "items": call},
            "stop_conditions": {"type": "array", "items": {"type": "object", "required": ["ref", "plugin", "args", "interval_seconds", "settle_seconds", "on_failure"]}},
            "steps": {"type": "array", "items": {"type": "object", "required": ["name", "after", "kind"], "properties": {
                "name": {"type": "string"}, "after": {"type": "array", "items": {"type": "string"}}, "kind": {"enum": ["attack", "verify", "wait"]},
                "attack": call, "duration_seconds": {"type": ["integer", "null"]}, "irreversible": {"type": "boolean"},
                "verify": {"type": "array", "items": call}, "wait_seconds": {"type": "integer"}
            }}},
            "deadline_seconds": {"type": ["integer", "null"]},
            "executors_embedded": {"type": "integer"},
            "executors_truncated": {"type": "boolean"},
            "msg": {"type": "string"},
            "_links": links,
            "_embedded": {"type": "object", "properties": {"executors": {"type": "array", "items": reference("Executor")}}},
        }
    });
    let plugin = json!({
        "type": "object",
        "required": ["id", "ref", "refs", "name", "version", "kind", "status", "builtin", "_links"],
        "properties": {
            "id": {"type": "string"},
            "ref": {"type": "string"},
            "schema": {"type": "object"},
            "example": {"type": "object"},
            "refs": {"type": "array", "items": {"type": "string"}},
            "name": {"type": "string"},
            "version": {"type": "string"},
            "kind": {"enum": ["attack", "planner", "probe"]},
            "description": {},
            "capabilities": {},
            "granted": {"type": ["object", "null"]},
            "status": {"type": "string"},
            "sha256": {},
            "size": {},
            "builtin": {"type": "boolean"},
            "uploaded_by": text_or_null,
            "uploaded_at": date_or_null,
            "signed_by": text_or_null,
            "compile_ms": {"type": "integer"},
            "_links": links,
        }
    });
    let blackout = json!({
        "type": "object",
        "required": ["id", "name", "recurring", "start", "end", "stop_running", "created", "_links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "plan_id": text_or_null,
            "calendar": text_or_null,
            "stop_running": {"type": "boolean"},
            "created": date,
            "created_by": {"type": "string"},
            "recurring": {"type": "boolean"},
            "every": {"enum": ["week", "day", "rule"]},
            "start": {"type": "string"},
            "end": {"type": "string"},
            "timezone": {"type": "string"},
            "description": text_or_null,
            "rule": text_or_null,
            "until": date_or_null,
            "length_days": {"type": "integer"},
            "length_seconds": {"type": "integer"},
            "rdates": {"type": "array", "items": date},
            "exdates": {"type": "array", "items": date},
            "next": {"type": "array", "items": {"type": "object", "properties": {"start": date, "end": date}}},
            "_links": links,
        }
    });
    let calendar = json!({
        "type": "object",
        "required": ["name", "kind", "blackouts", "_links"],
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["upload", "subscription"]},
            "url": text_or_null,
            "refresh_seconds": {"type": ["integer", "null"]},
            "timezone": text_or_null,
            "plan_id": text_or_null,
            "stop_running": {"type": "boolean"},
            "include_free": {"type": "boolean"},
            "created": date,
            "created_by": {"type": "string"},
            "last_fetched": date_or_null,
            "last_error": text_or_null,
            "next_fetch": date_or_null,
            "blackouts": {"type": "integer"},
            "msg": {"type": "string"},
            "_links": links,
        }
    });
    // A stored host shows `"credential": null` when it has none; a request may leave it out
    // or send it back so.
    let mut stored_host = schema::<InventoryHostBody>();
    stored_host["properties"]["credential"]["type"] = json!(["string", "null"]);
    let mut new_inventory = schema::<InventoryBody>();
    new_inventory["properties"]["hosts"]["items"] = stored_host.clone();
    let embedded = |key: &str, item: Value| {
        json!({
            "type": "object",
            "required": ["_links"],
            "properties": {"_links": links, "_embedded": {"type": "object", "properties": {key: {"type": "array", "items": item}}}}
        })
    };
    json!({
        "NewPlan": schema::<NewPlanBody>(),
        "Reschedule": schema::<RescheduleBody>(),
        "NewCredential": schema::<NewCredentialBody>(),
        "NewBlackout": schema::<NewBlackoutBody>(),
        "NewSubscription": schema::<crate::bodies::SubscriptionBody>(),
        "NewInventory": new_inventory,
        "HaltRequest": schema::<HaltBody>(),
        "Grant": cme_grant::Grant::json_schema(),
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail", "msg"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "msg": {"type": "string", "description": "the detail again, under the original engine's name"},
                "pointer": {"type": "string", "description": "a JSON pointer to what is wrong in the body"},
            }
        },
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "Readiness": {"type": "object", "required": ["status", "database", "scheduler"], "properties": {
            "status": {"enum": ["ready", "not ready"]}, "database": {"type": "boolean"}, "scheduler": {"type": "boolean"}
        }},
        "OpenApi": {"type": "object", "required": ["openapi", "paths"]},
        "Entry": {"type": "object", "required": ["name", "version", "dry_run", "_links"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}, "dry_run": {"type": "boolean"}, "_links": links
        }},
        "Message": {"type": "object", "required": ["msg"], "properties": {"msg": {"type": "string"}, "_links": links}},
        "Executor": executor,
        "ExecutorList": embedded("executors", reference("Executor")),
        "Plan": plan,
        "PlanList": {"type": "object", "required": ["plans", "_links"], "properties": {"plans": {"type": "array", "items": reference("Plan")}, "_links": links}},
        "Plugin": plugin,
        "PluginList": {"type": "object", "required": ["_links"], "properties": {
            "attacks": {"type": "array", "items": reference("Plugin")},
            "planners": {"type": "array", "items": reference("Plugin")},
            "probes": {"type": "array", "items": reference("Plugin")},
            "plugins": {"type": "array", "items": reference("Plugin")},
            "_links": links,
        }},
        "Schedule": {"type": "object", "required": ["from", "until", "firings", "blackouts", "notes"], "properties": {
            "from": date, "until": date, "notes": {"type": "array", "items": {"type": "string"}},
            "firings": {"type": "array", "items": {"type": "object", "required": ["plan_id", "plan", "due", "status"], "properties": {
                "plan_id": {"type": "string"}, "plan": {"type": "string"}, "due": date, "status": {"enum": statuses},
                "reason": text_or_null, "executor_id": text_or_null
            }}},
            "blackouts": {"type": "array", "items": {"type": "object", "required": ["id", "name", "start", "end"], "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "plan_id": text_or_null, "calendar": text_or_null,
                "start": date, "end": date
            }}},
            "_links": links
        }},
        "Forecast": {"type": "object", "required": ["from", "until", "recurring", "count", "truncated", "notes", "firings"], "properties": {
            "from": date, "until": date, "recurring": {"type": "boolean"}, "count": {"type": "integer"}, "truncated": {"type": "boolean"},
            "notes": {"type": "array", "items": {"type": "string"}},
            "firings": {"type": "array", "items": {"type": "object", "required": ["due", "status"], "properties": {
                "due": date, "status": {"enum": statuses}, "reason": text_or_null, "executor_id": {"type": "string"}
            }}},
            "_links": links,
        }},
        "Blackout": blackout,
        "Inventory": {"type": "object", "required": ["name", "count", "hosts", "updated", "updated_by", "_links"], "properties": {
            "name": {"type": "string"}, "count": {"type": "integer"}, "hosts": {"type": "array", "items": stored_host},
            "updated": date, "updated_by": {"type": "string"}, "_links": links
        }},
        "InventoryList": {"type": "object", "required": ["count", "inventories"], "properties": {
            "count": {"type": "integer"}, "inventories": {"type": "array", "items": reference("Inventory")}, "_links": links
        }},
        "InventoryImport": {"type": "object", "required": ["count", "format", "imported", "skipped", "inventories"], "properties": {
            "msg": {"type": "string"}, "count": {"type": "integer"}, "format": {"enum": ["ini", "yaml", "json"]},
            "imported": {"type": "array", "items": {"type": "object", "required": ["name", "hosts"], "properties": {"name": {"type": "string"}, "hosts": {"type": "integer"}}}},
            "skipped": {"type": "array", "items": {"type": "object", "required": ["group", "reason"], "properties": {"group": {"type": "string"}, "reason": {"type": "string"}}}},
            "inventories": {"type": "array", "items": reference("Inventory")}, "_links": links
        }},
        "Journal": {"type": "object", "required": ["executor_id", "plan_id", "status", "live", "steps", "readings", "reverts", "_links"], "properties": {
            "executor_id": {"type": "string"}, "plan_id": {"type": "string"}, "status": {"enum": statuses}, "live": {"type": "boolean"},
            "outcome": {"enum": ["held", "refuted", "aborted"]}, "aborted": {"type": "string"},
            "steps": {"type": "array", "items": {"type": "object", "required": ["name", "kind", "after", "status"], "properties": {
                "name": {"type": "string"}, "kind": {"enum": ["attack", "verify", "wait"]}, "after": {"type": "array", "items": {"type": "string"}},
                "plugin": {"type": "string"},
                "status": {"enum": ["waiting", "running", "succeeded", "failed", "cancelled", "not_run"]},
                "started": date, "ended": date, "reverting": date, "targets": {"type": "array", "items": {"type": "string"}},
                "summary": {"type": "string"}, "error": {"type": "string"}
            }}},
            "readings": {"type": "array", "items": {"type": "object", "required": ["probe", "at", "phase", "healthy"], "properties": {
                "step": {"type": "string"}, "probe": {"type": "string"}, "at": date, "phase": {"enum": ["before", "during", "after"]},
                "healthy": {"type": "boolean"}, "reason": {"type": "string"}
            }}},
            "reverts": {"type": "array", "items": {"type": "object", "required": ["undo_id", "target", "at", "state", "why"], "properties": {
                "step": {"type": "string"}, "undo_id": {"type": "string"}, "target": {"type": "string"}, "at": date,
                "state": {"enum": ["pending", "done", "failed"]}, "outcome": {"type": "string"}, "why": {"type": "string"}
            }}},
            "_links": links
        }},
        "Undo": {"type": "object", "required": ["id", "state", "target", "command", "plugin", "executor_id", "plan_id", "armed", "due", "attempts", "_links"], "properties": {
            "id": {"type": "string"}, "state": {"enum": ["pending", "done", "failed"]}, "kind": {"enum": ["ssh", "http", "ec2"]}, "target": {"type": "string"}, "command": {"type": "string"},
            "plugin": {"type": "string"}, "executor_id": {"type": "string"}, "plan_id": {"type": "string"}, "step": text_or_null, "armed": date, "due": date,
            "attempts": {"type": "integer", "minimum": 0}, "outcome": text_or_null, "finished": date_or_null, "_links": links
        }},
        "UndoList": {"type": "object", "required": ["count", "pending", "undos"], "properties": {
            "count": {"type": "integer"}, "pending": {"type": "integer"}, "undos": {"type": "array", "items": reference("Undo")}, "_links": links
        }},
        "BlackoutList": {"type": "object", "required": ["count", "blackouts"], "properties": {
            "count": {"type": "integer"}, "blackouts": {"type": "array", "items": reference("Blackout")}, "_links": links
        }},
        "Calendar": calendar.clone(),
        "CalendarList": {"type": "object", "required": ["count", "calendars"], "properties": {
            "count": {"type": "integer"}, "calendars": {"type": "array", "items": reference("Calendar")}, "_links": links
        }},
        "CalendarCreated": {"anyOf": [reference("CalendarImport"), reference("Calendar")]},
        "CalendarImport": {"type": "object", "required": ["calendar", "count", "blackouts"], "properties": {
            "msg": {"type": "string"}, "calendar": {"type": "string"}, "timezone": {"type": "string"}, "count": {"type": "integer"},
            "blackouts": {"type": "array", "items": reference("Blackout")},
            "skipped": {"type": "array", "items": {"type": "object", "required": ["event", "reason"], "properties": {
                "event": {"type": "string"}, "reason": {"type": "string"}
            }}},
            "_links": links
        }},
        "Halt": {"type": "object", "required": ["halted", "persisted"], "properties": {
            "halted": {"type": "boolean"}, "since": date_or_null, "reason": text_or_null, "persisted": {"type": "boolean"}, "_links": links
        }},
        "AuditList": embedded("audit", json!({"type": "object", "required": ["id", "at", "source", "actor", "action", "decision"], "properties": {
            "id": {"type": "integer"}, "at": date, "source": {"enum": ["plugin", "api"]}, "run_id": {"type": "string"}, "actor": {"type": "string"},
            "action": {"type": "string"}, "target": {"type": "string"}, "decision": {"enum": ["allowed", "denied", "unavailable"]},
            "reason": text_or_null, "dry_run": {"type": "boolean"}, "outcome": text_or_null
        }})),
        "Credential": {"type": "object", "required": ["name", "user", "fingerprint", "created"], "properties": {
            "name": {"type": "string"}, "user": {"type": "string"}, "algorithm": {"type": "string"}, "fingerprint": {"type": "string"},
            "created": date, "may_use": {}, "owner_plan": text_or_null, "_links": links
        }},
        "CredentialList": embedded("credentials", reference("Credential")),
        "WebhookList": {"type": "object", "required": ["event_kinds", "_links"], "properties": {
            "event_kinds": {"type": "array", "items": {"type": "string"}},
            "_links": links,
            "_embedded": {"type": "object", "properties": {"webhooks": {"type": "array", "items": {
                "type": "object",
                "required": ["name", "url", "events", "pending", "delivered", "failed"],
                "properties": {
                    "name": {"type": "string"}, "url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}},
                    "pending": {"type": "integer"}, "delivered": {"type": "integer"}, "failed": {"type": "integer"},
                    "oldest_pending": date_or_null, "next_attempt": date_or_null, "last_delivered": date_or_null,
                    "last_failure": date_or_null, "last_error": text_or_null
                }
            }}}}
        }},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_names_a_schema_and_every_operation_id_is_unique() {
        let document = document(crate::routes::ENDPOINTS);
        let text = document.to_string();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        let mut ids = std::collections::HashSet::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                assert!(ids.insert(operation["operationId"].as_str().unwrap().to_string()), "{operation}");
            }
        }
        for endpoint in crate::routes::ENDPOINTS {
            for (name, target, parameter, _) in endpoint.links {
                let target = crate::routes::ENDPOINTS.iter().find(|e| e.operation == *target);
                let target =
                    target.unwrap_or_else(|| panic!("link {name} of {} names no operation", endpoint.operation));
                assert!(
                    target.path_params().any(|p| p == *parameter),
                    "link {name}: {} has no {parameter}",
                    target.path
                );
            }
        }
        for name in schemas.keys() {
            // Within the document, so that references resolve.
            let root = json!({"components": document["components"], "$ref": format!("#/components/schemas/{name}")});
            jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
