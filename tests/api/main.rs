//! Behaviour through the real HTTP server (port 0) and the real swarm. Docker must be reachable:
//! run `scripts/test.sh`, which sets it up; these tests fail, never skip, without it.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

mod actions;
mod bad_input;
mod cluster;
mod cooldown_owner;
mod disk_full;
mod hostile;
mod lost_answer;
mod observability;
mod pages;
mod proxy;
mod restart;
mod safety;
mod scaling;
mod server;
mod target;
mod target_query;
