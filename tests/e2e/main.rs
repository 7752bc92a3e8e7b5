//! End-to-end tests: the real `cme` binary over HTTP, with real local peers (an HTTP
//! server capturing what attacks send; PostgreSQL when `CME_TEST_POSTGRES_URL` is set;
//! moto when `CME_TEST_MOTO_URL` is set; OpenSSH sshd on loopback addresses).

mod ansible_inventories;
mod api;
mod auth;
mod browser;
mod budgets;
mod calendar_subscriptions;
mod calendars;
mod cli;
mod cloud_ec2;
mod cloud_ssh;
mod continuous;
mod credentials;
mod dashboard;
mod ec2_faults;
mod egress;
mod experiments;
mod fences;
mod firing;
mod frequent_plans;
mod guards;
mod hostile;
mod http_credentials;
mod inventories;
mod lists;
mod openapi;
mod operations;
mod peers;
mod plugin_authors;
mod polyglot;
mod registry;
mod replicas;
mod secrets;
mod support;
mod upgrade;
mod webhooks;
