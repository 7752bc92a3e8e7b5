/// Every built-in plugin, by its crate name in `plugins/`: the planners first, then the
/// attacks, then the probes. Read by build.rs (what to build) and by the crate (what to embed).
pub const BUILTIN_NAMES: [&str; 18] = [
    "exact-planner",
    "simple-planner",
    "cron-planner",
    "window-planner",
    "mtbf-planner",
    "api-request",
    "terminate-ec2-instance",
    "terminate-ec2-instance-not-excluded",
    "run-script",
    "kill-process",
    "stop-service",
    "network-fault",
    "stop-ec2-instances",
    "reboot-ec2-instances",
    "isolate-ec2-instances",
    "az-outage",
    "http-probe",
    "prometheus-probe",
];
