//! Answering an endpoint: the question goes to every worker through its command queue
//! ([`Handle`]) with a reply channel, and the answer is written once every worker replied —
//! so a state change is in force in every loop when the operator reads "ok", and a listing
//! covers every loop. A worker that does not reply within [`ANSWER_WITHIN`] makes the answer
//! a 503 naming it.
//!
//! Changes are logged here, once for the process, at info.

use super::endpoint::{Endpoint, Refusal};
use super::response::Response;
use super::{page, views};
use crate::proxy::{Command, Handle, Missing, ServerRef};
use crate::stats::{ConnFilter, split_conn_id};
use log::info;
use serde_json::{Value, json};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the admin waits for the workers' replies (a loop replies within one turn).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// The workers of the process, to ask.
pub struct Workers {
    handles: Vec<Handle>,
}

impl Workers {
    /// The workers behind `handles`, in worker order.
    pub fn new(handles: Vec<Handle>) -> Workers {
        Workers { handles }
    }

    /// Sends `command` (made with a fresh reply channel) to the workers `which` selects and
    /// collects their replies, in worker order.
    fn ask<T>(
        &self,
        which: impl Fn(usize) -> bool,
        command: impl Fn(mpsc::Sender<T>) -> Command,
    ) -> Result<Vec<T>, Refusal> {
        let mut waiting = Vec::new();
        for (worker, handle) in self.handles.iter().enumerate().filter(|(w, _)| which(*w)) {
            let (tx, rx) = mpsc::channel();
            handle
                .send(command(tx))
                .map_err(|e| Refusal::new(503, format!("cannot reach worker {worker}: {e}")))?;
            waiting.push((worker, rx));
        }
        let deadline = Instant::now() + ANSWER_WITHIN;
        let mut replies = Vec::new();
        for (worker, rx) in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = rx.recv_timeout(left).map_err(|_| {
                Refusal::new(
                    503,
                    format!(
                        "worker {worker} did not answer within {}",
                        crate::display::Secs(ANSWER_WITHIN)
                    ),
                )
            })?;
            replies.push(reply);
        }
        Ok(replies)
    }

    /// Answers `endpoint`.
    pub fn answer(&self, endpoint: Endpoint) -> Response {
        self.try_answer(endpoint)
            .unwrap_or_else(|refusal| Response::refusal(&refusal))
    }

    fn try_answer(&self, endpoint: Endpoint) -> Result<Response, Refusal> {
        let all = |_| true;
        match endpoint {
            Endpoint::Page => {
                let servers = views::merge_servers(self.ask(all, Command::ListServers)?);
                let filter = ConnFilter {
                    busiest: Some(page::PAGE_CONNECTIONS),
                    ..ConnFilter::default()
                };
                let replies = self.ask(all, |tx| Command::Connections(filter.clone(), tx))?;
                let busiest = views::merge_connections(replies, &filter);
                Ok(Response::html(page::render(&servers, &busiest)))
            }
            Endpoint::Servers => {
                let servers = views::merge_servers(self.ask(all, Command::ListServers)?);
                let list: Vec<Value> = servers.iter().map(views::server_json).collect();
                Ok(Response::json(200, &Value::Array(list)))
            }
            Endpoint::SetState(at, state) => {
                let replies = self.ask(all, |tx| Command::SetState(at.clone(), state, tx))?;
                let before = found(&at, replies)?;
                let before = before.first().copied().unwrap_or(state);
                info!(
                    "admin: route {}: upstream {} state {} (was {})",
                    at.route,
                    at.server,
                    state.name(),
                    before.name()
                );
                Ok(Response::json(
                    200,
                    &json!({
                        "route": at.route,
                        "server": at.server.to_string(),
                        "state": state.name(),
                        "was": before.name(),
                    }),
                ))
            }
            Endpoint::Shutdown(at) => {
                let replies = self.ask(all, |tx| Command::ShutdownServer(at.clone(), tx))?;
                let closed: usize = found(&at, replies)?.iter().sum();
                info!(
                    "admin: route {}: upstream {}: {closed} connection(s) closed",
                    at.route, at.server
                );
                Ok(Response::json(
                    200,
                    &json!({
                        "route": at.route,
                        "server": at.server.to_string(),
                        "closed": closed,
                    }),
                ))
            }
            Endpoint::Connections(filter) => {
                let replies = self.ask(all, |tx| Command::Connections(filter.clone(), tx))?;
                let conns = views::merge_connections(replies, &filter);
                let list: Vec<Value> = conns.iter().map(views::conn_json).collect();
                Ok(Response::json(200, &Value::Array(list)))
            }
            Endpoint::Close(id) => {
                let (worker, _) = split_conn_id(id);
                let no_such = || Refusal::new(404, format!("no open connection {id}"));
                if worker >= self.handles.len() {
                    return Err(no_such());
                }
                let closed = self.ask(|w| w == worker, |tx| Command::CloseConnection(id, tx))?;
                if closed != [true] {
                    return Err(no_such());
                }
                info!("admin: connection {id} closed");
                Ok(Response::json(200, &json!({ "id": id, "closed": true })))
            }
        }
    }
}

/// The workers' replies about `at`, or a 404 if it is not there (every worker has the same
/// routes and servers, but one that missed it is enough).
fn found<T>(at: &ServerRef, replies: Vec<Result<T, Missing>>) -> Result<Vec<T>, Refusal> {
    replies
        .into_iter()
        .map(|reply| {
            reply.map_err(|missing| {
                let route = serde_json::Value::from(at.route.as_str());
                let message = match missing {
                    Missing::Route => format!("no route {route}"),
                    Missing::Server => format!("route {route} has no server {}", at.server),
                };
                Refusal::new(404, message)
            })
        })
        .collect()
}
