//! A Server-Sent Events client for `GET /v1/events`: opens the stream with a bearer
//! token (or any headers), then reads it one event at a time, as the WHATWG parser does
//! (fields `event`, `id`, `data`; comment lines skipped; an empty line ends an event).

use std::time::Duration;

use serde_json::Value;

/// One event read off the stream.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `message` when the event had no `event:` field.
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// An open stream.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// Opens `url` with `headers`; the answer's status and, when not 200, its body.
    ///
    /// # Errors
    /// A non-200 answer: `(status, body)`.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn open(
        client: &reqwest::Client,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, (u16, Value)> {
        let mut request = client.get(url).header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("event stream request");
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.json().await.unwrap_or(Value::Null);
            return Err((status, body));
        }
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next event, waiting `wait` at most. `Ok(None)` when the server ended the
    /// stream.
    ///
    /// # Errors
    /// Nothing arrived within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<SseEvent>, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Ok(Some(event));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| format!("no event within {wait:?}"))?;
            match chunk {
                Ok(Some(bytes)) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                Ok(None) | Err(_) => return Ok(None),
            }
        }
    }

    /// The next event named `name`, skipping others; panics when none comes in `wait`.
    ///
    /// # Panics
    /// No such event within `wait`, or the stream ended.
    pub async fn expect(&mut self, name: &str, wait: Duration) -> SseEvent {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(Some(e)) if e.event == name => return e,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended before a {name} event"),
                Err(e) => panic!("waiting for a {name} event: {e}"),
            }
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if event.is_none() && data.is_empty() {
        return None;
    }
    let text = data.join("\n");
    Some(SseEvent {
        event: event.unwrap_or_else(|| "message".into()),
        id,
        data: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    })
}
