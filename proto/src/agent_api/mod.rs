//! The agent API, declared once: every route the agent serves and the panel calls, with
//! its method, path template (axum syntax, `{id}`), path parameters, query, request body
//! and response types. The agent registers its router from these declarations and the
//! panel's tunnel client renders its requests from them, so renaming a route, a
//! parameter or a body type on one side fails to compile on the other.
//!
//! Wire layer: no I/O. Routes whose bodies are streamed (events, downloads, uploads) name
//! the [`Streamed`] marker. The files routes, whose answers the panel relays byte for
//! byte, still name their JSON types ([`crate::files`]) so both sides agree on them.

mod queries;
mod routes;

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use queries::*;
pub use routes::*;

/// The HTTP methods the agent API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The method's name on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// A body (request or response) that is a byte stream, not JSON: console events,
/// downloads, uploaded bytes, files relayed as they are. It implements no serde trait,
/// so the JSON client refuses it at compile time and the streaming one is needed.
#[derive(Debug, Clone, Copy)]
pub enum Streamed {}

/// The path parameters of a route, in template order: `()`, one `&str`, or two.
pub trait PathParams {
    /// How many `{...}` the template holds.
    const COUNT: usize;
    /// The values, in template order.
    fn values(&self) -> Vec<&str>;
}

impl PathParams for () {
    const COUNT: usize = 0;
    fn values(&self) -> Vec<&str> {
        Vec::new()
    }
}

impl PathParams for &str {
    const COUNT: usize = 1;
    fn values(&self) -> Vec<&str> {
        vec![self]
    }
}

impl PathParams for (&str, &str) {
    const COUNT: usize = 2;
    fn values(&self) -> Vec<&str> {
        vec![self.0, self.1]
    }
}

/// One route of the agent API (a zero-sized type per route, declared in `routes.rs`).
pub trait Endpoint {
    const METHOD: Method;
    /// The path template, in axum syntax: `/v1/instances/{id}/power`.
    const PATH: &'static str;
    /// The values of the template's parameters.
    type Params<'a>: PathParams;
    /// The query (`()` for none), serialized as `application/x-www-form-urlencoded`.
    type Query;
    /// The JSON request body (`()` for none), or [`Streamed`].
    type Request;
    /// The JSON answer (`()` for an empty one), or [`Streamed`].
    type Response;

    /// The path with `params` filled in, each percent-encoded.
    #[must_use]
    fn path(params: &Self::Params<'_>) -> String {
        render(Self::PATH, &params.values())
    }

    /// The path and query string of a request.
    ///
    /// # Errors
    /// The query does not serialize as a form (a nested value).
    fn uri(params: &Self::Params<'_>, query: &Self::Query) -> Result<String, UriError>
    where
        Self::Query: serde::Serialize,
    {
        let mut uri = Self::path(params);
        let q = serde_urlencoded::to_string(query).map_err(|e| UriError(e.to_string()))?;
        if !q.is_empty() {
            uri.push('?');
            uri.push_str(&q);
        }
        Ok(uri)
    }
}

/// A query that does not serialize as a form.
#[derive(Debug, thiserror::Error)]
#[error("agent query: {0}")]
pub struct UriError(String);

/// Bytes kept as they are in a path segment: RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `template` with each `{name}` replaced by the next of `values`, percent-encoded.
fn render(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 40);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        if let Some(v) = values.next() {
            let _ = write!(out, "{}", utf8_percent_encode(v, SEGMENT));
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// A route as data, for checks over all of them ([`ROUTES`]).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The route's type name, e.g. `InstancePower`.
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    /// How many path parameters its `Params` type carries.
    pub params: usize,
}

#[cfg(test)]
mod tests;
