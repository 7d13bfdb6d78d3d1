//! API tests: a real panel over real sockets, each test on SQLite and on PostgreSQL.

mod audit;
mod auth;
mod contract;
mod health;
mod invites;
mod mfa;
mod nodes;
mod orgs;
mod ratelimit;
mod tokens;
mod users;
mod workloads;
