//! API tests: a real panel over real sockets, each test on SQLite and on PostgreSQL.

mod audit;
mod auth;
mod contract;
mod github;
mod health;
mod instances;
mod invites;
mod mail;
mod mfa;
mod nodes;
mod orgs;
mod ratelimit;
mod servers;
mod tokens;
mod users;
mod workloads;
