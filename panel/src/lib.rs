//! The Shardlyn panel: REST API, web pages and background jobs.
//!
//! `app` holds the one route table; each area of the API (`auth`, `users`, `orgs`, ...)
//! owns its router, handlers and SQL. Cross-cutting pieces sit at the top level.

pub mod admin;
pub mod alerts;
pub mod api_tokens;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod backups;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod db;
pub mod error;
pub mod events;
pub mod files;
pub mod git;
pub mod health;
pub mod instances;
pub mod integrations;
pub mod jobs;
pub mod mailer;
pub mod metrics;
pub mod migrations;
pub mod nodes;
pub mod openapi;
pub mod orgs;
pub mod pagination;
pub mod ratelimit;
pub mod readcache;
pub mod respond;
pub mod routes;
pub mod schedules;
pub mod sealed;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod sftp;
pub mod sigv4;
pub mod ssh;
pub mod state;
pub mod support;
pub mod tls;
pub mod tunnel;
pub mod types;
pub mod uploads;
pub mod users;
pub mod web;
pub mod webhooks;
pub mod workloads;
