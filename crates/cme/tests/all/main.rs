//! End-to-end tests: the real `cme` binary over HTTP, with real local peers (an HTTP
//! server capturing what attacks send; PostgreSQL when `CME_TEST_POSTGRES_URL` is set).

mod api;
mod auth;
mod cli;
mod credentials;
mod firing;
mod replicas;
mod support;
