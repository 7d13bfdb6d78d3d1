//! API tests: a real panel over real sockets, each test on SQLite and on PostgreSQL.

mod audit;
mod auth;
mod backups;
mod contract;
mod files;
mod github;
mod health;
mod instances;
mod invites;
mod mail;
mod mfa;
mod nodes;
mod orgs;
mod permissions;
mod ratelimit;
mod servers;
mod tokens;
mod uploads;
mod users;
mod webhooks;
mod workloads;
