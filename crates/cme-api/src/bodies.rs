//! Request bodies as types. Each derives its JSON Schema (`cme_model::schema::schema_of`,
//! the rule plugin args follow too): the handlers validate with it first, so a problem
//! names the JSON pointer of what is wrong, then deserialize into the type; the OpenAPI
//! document shows the same schema. No schema is written beside a type by hand.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use cme_engine::{
    Misfire, NewBlackout, NewCredential, NewPlan, NewStep, NewStepAction, NewStopCondition, OnFailure, Overlap,
    PluginCall,
};
use cme_model::InventoryHost;

use crate::problem::ApiError;

/// The body of `POST /api/1/plans/` and of a forecast of a new plan: one `attack`, or an
/// experiment's `steps`.
#[derive(Deserialize, JsonSchema)]
#[schemars(extend("oneOf" = [{"required": ["attack"]}, {"required": ["steps"]}]))]
pub(crate) struct NewPlanBody {
    #[schemars(length(min = 1, max = 500))]
    name: String,
    attack: Option<CallBody>,
    planner: CallBody,
    /// an experiment: several faults, verifications and waits in one run, ordered by `after`, every fault reverted
    #[schemars(length(min = 1, max = cme_engine::MAX_STEPS))]
    steps: Option<Vec<StepBody>>,
    /// an experiment's longest run, all steps and reverts (default and most: the engine's max_experiment_seconds)
    #[schemars(range(min = 1, max = 604_800))]
    deadline_seconds: Option<u64>,
    #[serde(default)]
    dry_run: bool,
    #[schemars(range(max = 86_400))]
    grace_seconds: Option<u64>,
    /// IANA zone the planner works in (default: the engine's)
    #[schemars(length(min = 1, max = 64))]
    timezone: Option<String>,
    /// the planner's seed (default: random); a forecast with this seed shows the firings
    #[schemars(range(max = u64::MAX))]
    seed: Option<u64>,
    /// firings missed in an outage: skip (default), or one catch-up run
    misfire: Option<MisfireWord>,
    /// a firing due while the previous run runs: skipped (forbid, default) or run (allow)
    overlap: Option<OverlapWord>,
    /// probes checked right before each run (e.g. http_probe:HttpProbe); an unhealthy answer, or none, skips the run
    #[serde(default)]
    #[schemars(length(max = cme_engine::MAX_STEADY_STATE_PROBES))]
    steady_state: Vec<CallBody>,
    /// probes watching the plan's runs; an unhealthy answer cancels them and pauses the plan or halts the engine
    #[serde(default)]
    #[schemars(length(max = cme_engine::MAX_STEADY_STATE_PROBES))]
    stop_conditions: Vec<StopConditionBody>,
}

/// One side of a plan: a plugin by ref, with its args.
#[derive(Deserialize, JsonSchema)]
struct CallBody {
    #[serde(rename = "ref")]
    #[schemars(length(min = 1))]
    reference: String,
    args: Map<String, Value>,
}

/// One step of an experiment: exactly one of `attack`, `verify` or `wait_seconds`.
#[derive(Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["attack"]}, {"required": ["verify"]}, {"required": ["wait_seconds"]}]))]
struct StepBody {
    /// unique in the experiment; what `after` names
    #[schemars(length(min = 1, max = 64))]
    name: String,
    /// steps that must have ended (their faults reverted) first; none: the step starts with the run
    #[serde(default)]
    #[schemars(length(max = cme_engine::MAX_STEPS))]
    after: Vec<String>,
    /// a fault: an attack plugin by ref, with its args
    attack: Option<CallBody>,
    /// how long an attack step holds its fault before it is reverted (default: until the experiment ends)
    #[schemars(range(min = 1, max = 86_400))]
    duration_seconds: Option<u64>,
    /// the attack's plugin cannot revert this fault, and the experiment runs it anyway
    #[serde(default)]
    irreversible: bool,
    /// probes that must all answer healthy, else the hypothesis is refuted and the run aborted
    #[schemars(length(min = 1, max = 8))]
    verify: Option<Vec<CallBody>>,
    /// a pause
    #[schemars(range(min = 1, max = 86_400))]
    wait_seconds: Option<u64>,
}

impl StepBody {
    fn into_step(self, index: usize) -> Result<NewStep, ApiError> {
        let at = |field: &str| Some(format!("/steps/{index}/{field}"));
        let action = match (self.attack, self.verify, self.wait_seconds) {
            (Some(attack), None, None) => NewStepAction::Attack {
                call: attack.into_call(),
                duration_seconds: self.duration_seconds,
                irreversible: self.irreversible,
            },
            (None, Some(probes), None) => NewStepAction::Verify(probes.into_iter().map(CallBody::into_call).collect()),
            (None, None, Some(seconds)) => NewStepAction::Wait { seconds },
            _ => {
                return Err(ApiError::bad_request(
                    "a step has exactly one of attack, verify or wait_seconds",
                    Some(format!("/steps/{index}")),
                ));
            }
        };
        if !matches!(action, NewStepAction::Attack { .. }) {
            if self.duration_seconds.is_some() {
                return Err(ApiError::bad_request("only an attack step has a duration", at("duration_seconds")));
            }
            if self.irreversible {
                return Err(ApiError::bad_request("only an attack step is irreversible", at("irreversible")));
            }
        }
        Ok(NewStep { name: self.name, after: self.after, action })
    }
}

/// A probe watching a plan's runs.
#[derive(Deserialize, JsonSchema)]
struct StopConditionBody {
    #[serde(rename = "ref")]
    #[schemars(length(min = 1))]
    reference: String,
    args: Map<String, Value>,
    /// how often it is asked while the plan's runs are in flight (default 10)
    #[schemars(range(min = 1, max = 3600))]
    interval_seconds: Option<u64>,
    /// how long it is still asked after the last run ended (default 30)
    #[schemars(range(max = 3600))]
    settle_seconds: Option<u64>,
    /// besides cancelling the plan's running attacks: pause the plan (default) or halt the engine
    on_failure: Option<OnFailureWord>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum MisfireWord {
    Skip,
    RunOnce,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum OverlapWord {
    Forbid,
    Allow,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum OnFailureWord {
    PausePlan,
    Halt,
}

impl CallBody {
    fn into_call(self) -> PluginCall {
        PluginCall { reference: self.reference, args: Value::Object(self.args) }
    }
}

impl NewPlanBody {
    /// The plan to create. An experiment's `attack` is its first attack step's (what the
    /// plan's one-attack fields show); refused when the body has both or neither.
    pub fn into_new(self) -> Result<NewPlan, ApiError> {
        let steps = match self.steps {
            Some(steps) => steps.into_iter().enumerate().map(|(i, s)| s.into_step(i)).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let first_attack = steps.iter().find_map(|s| match &s.action {
            NewStepAction::Attack { call, .. } => Some(call.clone()),
            _ => None,
        });
        let attack = match (self.attack, steps.is_empty()) {
            (Some(attack), true) => attack.into_call(),
            (None, false) => first_attack.ok_or_else(|| {
                ApiError::bad_request("an experiment has at least one attack step", Some("/steps".into()))
            })?,
            (Some(_), false) => {
                return Err(ApiError::bad_request(
                    "a plan has one attack or an experiment's steps, not both",
                    Some("/attack".into()),
                ));
            }
            (None, true) => {
                return Err(ApiError::bad_request("a plan needs an attack (or steps)", Some("/attack".into())));
            }
        };
        Ok(NewPlan {
            name: self.name,
            attack,
            steps,
            deadline_seconds: self.deadline_seconds,
            planner: self.planner.into_call(),
            dry_run: self.dry_run,
            grace_seconds: self.grace_seconds,
            timezone: self.timezone,
            seed: self.seed,
            misfire: match self.misfire {
                Some(MisfireWord::RunOnce) => Misfire::RunOnce,
                Some(MisfireWord::Skip) | None => Misfire::Skip,
            },
            overlap: match self.overlap {
                Some(OverlapWord::Allow) => Overlap::Allow,
                Some(OverlapWord::Forbid) | None => Overlap::Forbid,
            },
            steady_state: self.steady_state.into_iter().map(CallBody::into_call).collect(),
            stop_conditions: self
                .stop_conditions
                .into_iter()
                .map(|condition| NewStopCondition {
                    probe: PluginCall { reference: condition.reference, args: Value::Object(condition.args) },
                    interval_seconds: condition.interval_seconds,
                    settle_seconds: condition.settle_seconds,
                    on_failure: match condition.on_failure {
                        Some(OnFailureWord::Halt) => OnFailure::Halt,
                        Some(OnFailureWord::PausePlan) | None => OnFailure::PausePlan,
                    },
                })
                .collect(),
        })
    }
}

/// The body of `PUT /api/1/executors/{id}`: a new date for a pending executor.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct RescheduleBody {
    /// only "date" is supported
    #[serde(rename = "type")]
    pub kind: String,
    pub args: RescheduleArgs,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct RescheduleArgs {
    pub date: String,
}

/// The body of `POST /api/1/credentials/` (no `Debug`: it carries a private key).
#[derive(Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct NewCredentialBody {
    name: String,
    user: String,
    /// OpenSSH or PEM private key (ed25519, RSA, ECDSA)
    private_key: String,
    passphrase: Option<String>,
    /// token names and roles whose plans may use it (default: the creating token only)
    #[schemars(length(min = 1), inner(length(min = 1, max = 100)))]
    may_use: Option<Vec<String>>,
}

impl NewCredentialBody {
    pub fn into_new(self) -> NewCredential {
        NewCredential {
            name: self.name,
            user: self.user,
            private_key: self.private_key,
            passphrase: self.passphrase,
            may_use: self.may_use,
        }
    }
}

/// The body of `POST /api/1/blackouts/`.
#[derive(Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct NewBlackoutBody {
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// a date (RFC 3339), or a wall time "DAY HH:MM" (every week) or "HH:MM" (every day)
    #[schemars(length(min = 1, max = 64))]
    start: String,
    /// of the same kind as start; before start wraps (Friday to Monday, 22:00 to 06:00)
    #[schemars(length(min = 1, max = 64))]
    end: String,
    /// IANA zone of wall times and of dates without an offset (default: the engine's)
    #[schemars(length(min = 1, max = 64))]
    timezone: Option<String>,
    /// the one plan it holds (default: every plan)
    #[schemars(length(min = 1, max = 64))]
    plan_id: Option<String>,
    /// cancel the plans' running attacks when it starts (default: let them finish)
    #[serde(default)]
    stop_running: bool,
    /// what it is for
    #[schemars(length(max = 2000))]
    description: Option<String>,
}

impl NewBlackoutBody {
    pub fn into_new(self) -> NewBlackout {
        NewBlackout {
            name: self.name,
            description: self.description,
            plan_id: self.plan_id,
            start: self.start,
            end: self.end,
            timezone: self.timezone,
            stop_running: self.stop_running,
        }
    }
}

/// The body of `POST /api/1/calendars/` as JSON: a subscription to a calendar's URL.
#[derive(Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct SubscriptionBody {
    /// the calendar's name (its blackouts are named "<name>: <event>")
    #[schemars(length(min = 1, max = 100))]
    name: String,
    /// the calendar's iCal address (https, http or webcal); a secret: answers show its origin only
    #[schemars(length(min = 1, max = 2048))]
    url: String,
    /// how often it is fetched again (default 3600)
    #[schemars(range(min = 300))]
    refresh_seconds: Option<u64>,
    /// IANA zone of all-day events and floating times (default: the file's X-WR-TIMEZONE, else the engine's)
    #[schemars(length(min = 1, max = 64))]
    timezone: Option<String>,
    /// the one plan its blackouts hold (default: every plan)
    #[schemars(length(min = 1, max = 64))]
    plan_id: Option<String>,
    /// cancel the plans' running attacks when a blackout starts
    #[serde(default)]
    stop_running: bool,
    /// free (TRANSP:TRANSPARENT) events become blackouts too
    #[serde(default)]
    include_free: bool,
}

impl SubscriptionBody {
    pub fn into_new(self) -> cme_engine::NewSubscription {
        cme_engine::NewSubscription {
            name: self.name,
            url: self.url,
            refresh_seconds: self.refresh_seconds,
            timezone: self.timezone,
            plan_id: self.plan_id,
            stop_running: self.stop_running,
            include_free: self.include_free,
        }
    }
}

/// The body of `PUT /api/1/inventories/{name}`.
#[derive(Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct InventoryBody {
    #[schemars(length(max = cme_engine::inventory::MAX_HOSTS))]
    hosts: Vec<InventoryHostBody>,
}

/// One machine of an inventory, as an operator writes it.
#[derive(Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct InventoryHostBody {
    /// unique within the inventory, e.g. web-1
    #[schemars(length(min = 1, max = 255))]
    name: String,
    /// a DNS name or an IP address
    #[schemars(length(min = 1, max = 255))]
    address: String,
    /// default 22
    #[schemars(range(min = 1, max = 65535))]
    port: Option<u16>,
    /// login user (default: the credential's own)
    #[schemars(length(max = 255))]
    user: Option<String>,
    /// a stored SSH credential (POST /api/1/credentials/); none: stored without one, and
    /// attacks on the host fail saying so
    #[schemars(length(min = 1, max = 255))]
    credential: Option<String>,
    /// what attacks filter on, e.g. {"zone": "a"}
    #[serde(default)]
    #[schemars(extend("maxProperties" = cme_engine::inventory::MAX_TAGS))]
    tags: BTreeMap<String, TagValue>,
}

/// A tag's value: at most 256 bytes of text.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
struct TagValue(#[schemars(length(max = 256))] String);

impl InventoryBody {
    pub fn into_hosts(self) -> Vec<InventoryHost> {
        self.hosts
            .into_iter()
            .map(|host| InventoryHost {
                name: host.name,
                address: host.address,
                port: host.port.unwrap_or(22),
                user: host.user.unwrap_or_default(),
                credential: host.credential,
                tags: host.tags.into_iter().map(|(key, TagValue(value))| (key, value)).collect(),
            })
            .collect()
    }
}

/// The body of `POST /api/1/halt` (optional).
#[derive(Deserialize, JsonSchema)]
pub(crate) struct HaltBody {
    /// why; shown with the switch and in the audit log
    pub reason: Option<String>,
}

/// The schema of a body type.
pub(crate) fn schema<T: JsonSchema>() -> Value {
    cme_model::schema::schema_of::<T>()
}

/// A body the schema accepted, as its type. The schema and the type describe the same
/// document, so this fails only if they drift; the problem still names where.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("invalid payload: {e}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan body's schema without what experiments added (`steps`, `deadline_seconds`,
    /// and `attack` or `steps`): the one-attack shape, which must judge as it always did.
    fn one_attack_shape(mut schema: Value) -> Value {
        let object = schema.as_object_mut().unwrap();
        object.remove("oneOf");
        let properties = object["properties"].as_object_mut().unwrap();
        properties.remove("steps");
        properties.remove("deadline_seconds");
        object["required"] = serde_json::json!(["name", "attack", "planner"]);
        schema
    }

    #[test]
    fn a_plan_body_has_an_attack_or_steps_and_each_step_exactly_one_action() {
        let validator = jsonschema::validator_for(&schema::<NewPlanBody>()).unwrap();
        let call = serde_json::json!({"ref": "noop:Noop", "args": {}});
        let attack = serde_json::json!({"name": "a", "attack": call, "duration_seconds": 5});
        let verify = serde_json::json!({"name": "v", "after": ["a"], "verify": [call]});
        let wait = serde_json::json!({"name": "w", "wait_seconds": 3});
        let body = |extra: Value| {
            let mut body = serde_json::json!({"name": "p", "planner": call});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body
        };
        assert!(validator.is_valid(&body(serde_json::json!({"attack": call}))));
        assert!(
            validator.is_valid(&body(serde_json::json!({"steps": [attack, verify, wait], "deadline_seconds": 60})))
        );
        assert!(!validator.is_valid(&body(serde_json::json!({}))), "neither");
        assert!(!validator.is_valid(&body(serde_json::json!({"attack": call, "steps": [attack]}))), "both");
        assert!(!validator.is_valid(&body(serde_json::json!({"steps": []}))));
        let two_actions = serde_json::json!({"name": "x", "attack": call, "wait_seconds": 3});
        assert!(!validator.is_valid(&body(serde_json::json!({"steps": [two_actions]}))));
        let unknown = serde_json::json!({"name": "x", "wait_seconds": 3, "startAfter": ["a"]});
        assert!(!validator.is_valid(&body(serde_json::json!({"steps": [unknown]}))));
    }

    /// The derived schemas judge as the hand-written ones they replaced did, kept in
    /// `tests/fixtures/request-schemas/` (problem pointers included).
    #[test]
    fn derived_request_schemas_judge_as_the_hand_written_ones_did() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/request-schemas");
        let old = |name: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}.json")).unwrap()).unwrap()
        };
        let call =
            serde_json::json!({"ref": "api_request:ApiRequest", "args": {"endpoint": "http://x/", "method": "GET"}});
        let cases: Vec<(&str, Value, Value, Vec<Value>)> = vec![
            (
                "NewPlan",
                one_attack_shape(schema::<NewPlanBody>()),
                serde_json::json!({
                    "name": "p", "attack": call, "planner": call, "dry_run": true, "grace_seconds": 60,
                    "timezone": "Europe/Madrid", "seed": 7, "misfire": "run_once", "overlap": "allow",
                    "steady_state": [call],
                    "stop_conditions": [{"ref": "http_probe:HttpProbe", "args": {}, "interval_seconds": 5, "settle_seconds": 0, "on_failure": "halt"}]
                }),
                vec![
                    serde_json::json!({"name": "p", "attack": {"ref": ""}, "planner": call}),
                    serde_json::json!({"name": "p", "attack": call, "planner": call, "stop_conditions": [{"ref": "x", "args": {}, "interval_seconds": 0}]}),
                    serde_json::json!({"name": "p", "attack": call, "planner": call, "stop_conditions": [{"ref": "x", "args": {}, "on_failure": "explode"}]}),
                    serde_json::json!({"name": "p", "attack": call, "planner": call, "steady_state": [call, call, call, call, call, call, call, call, call, call, call]}),
                    serde_json::json!({"name": "p", "attack": call, "planner": call, "seed": 18446744073709551616.0}),
                ],
            ),
            (
                "Reschedule",
                schema::<RescheduleBody>(),
                serde_json::json!({"type": "date", "args": {"date": "2030-01-01T00:00:00Z"}}),
                vec![
                    serde_json::json!({"type": "cron", "args": {}}),
                    serde_json::json!({"type": "date", "args": {"date": 5}}),
                ],
            ),
            (
                "NewCredential",
                schema::<NewCredentialBody>(),
                serde_json::json!({"name": "k", "user": "u", "private_key": "-----BEGIN", "passphrase": "p", "may_use": ["ops"]}),
                vec![serde_json::json!({"name": "k", "user": "u", "private_key": "x", "may_use": [""]})],
            ),
            (
                "NewBlackout",
                schema::<NewBlackoutBody>(),
                serde_json::json!({"name": "b", "start": "FRI 18:00", "end": "MON 08:00", "timezone": "UTC", "plan_id": "p", "stop_running": true}),
                vec![],
            ),
            (
                "NewInventory",
                schema::<InventoryBody>(),
                serde_json::json!({"hosts": [{"name": "web-1", "address": "10.0.0.1", "port": 22, "user": "u", "credential": "k", "tags": {"zone": "a"}}]}),
                vec![
                    serde_json::json!({"hosts": [{"name": "web-1", "address": "a", "credential": "k", "tags": {"zone": "a".repeat(257)}}]}),
                    serde_json::json!({"hosts": [{"name": "web-1", "address": "a", "credential": "k", "tags": {"zone": 1}}]}),
                    serde_json::json!({"hosts": [{"name": "web-1", "address": "a", "credential": "k", "group": "g"}]}),
                    serde_json::json!({"hosts": [{"name": "web-1", "address": "a", "credential": "k", "port": 0}]}),
                ],
            ),
        ];
        for (name, new, example, extra) in cases {
            let judged = cme_test_peers::schema_corpus::assert_same_judgement(name, &old(name), &new, &example, &extra);
            assert!(judged > 20, "{name}: only {judged} documents");
        }
    }
}
