//! The two NDJSON streams: one instance's console (`/v1/instances/{id}/events`) and
//! every instance's state changes (`/v1/events`). Each is fed by a task writing into a
//! small channel; the body ends when the client goes away.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use shardlyn_proto::agent_api::ReplayQuery;
use shardlyn_proto::backup::BACKUP_PROGRESS;
use shardlyn_proto::instance::{Event, events};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::AgentState;
use super::instances::check_id;
use crate::error::ApiResult;

/// Bytes gathered into one write when chunks queue up.
const BATCH_BYTES: usize = 256 * 1024;
/// Stats cadence while somebody watches.
const STATS_EVERY: Duration = Duration::from_secs(2);

fn ndjson(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        [
            (http::header::CONTENT_TYPE, "application/x-ndjson"),
            (http::header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn event_line(event: &Event) -> Bytes {
    let mut v = serde_json::to_vec(event).unwrap_or_default();
    v.push(b'\n');
    v.into()
}

pub async fn instance(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> ApiResult<Response> {
    check_id(&id)?;
    let sub = state.instances.subscribe(&id, q.replay.unwrap_or(0))?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let manager = state.instances;
    tokio::spawn(async move {
        let mut receiver = sub.receiver;
        let mut expected = sub.next_seq;
        if tx.send(sub.replay).await.is_err() {
            return;
        }
        let mut stats = tokio::time::interval(STATS_EVERY);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        stats.tick().await;
        loop {
            let first = tokio::select! {
                r = receiver.recv() => r,
                _ = stats.tick() => {
                    let Ok(s) = manager.stats(&id).await else { continue };
                    let e = Event {
                        event: events::STATS.into(),
                        args: vec![serde_json::to_value(s).unwrap_or_default()],
                    };
                    if tx.send(event_line(&e)).await.is_err() {
                        return;
                    }
                    continue;
                }
                () = tx.closed() => return,
            };
            let mut batch = BytesMut::new();
            let mut next = Some(first);
            while let Some(r) = next.take() {
                match r {
                    Ok(chunk) => {
                        if chunk.seq > expected {
                            let lost = chunk.seq - expected;
                            batch.extend_from_slice(&event_line(&Event::new(
                                events::DAEMON_MESSAGE,
                                &[&format!(
                                    "{lost} console lines dropped: the connection is too slow"
                                )],
                            )));
                        }
                        expected = chunk.seq + chunk.lines;
                        batch.extend_from_slice(&chunk.data);
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => {
                        let _ = tx.send(batch.freeze()).await;
                        return;
                    }
                }
                if batch.len() < BATCH_BYTES {
                    next = match receiver.try_recv() {
                        Ok(c) => Some(Ok(c)),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                            Some(Err(RecvError::Lagged(n)))
                        }
                        Err(_) => None,
                    };
                }
            }
            if !batch.is_empty() && tx.send(batch.freeze()).await.is_err() {
                return;
            }
        }
    });
    Ok(ndjson(rx))
}

pub async fn states(State(state): State<AgentState>) -> Response {
    let mut receiver = state.instances.state_events();
    // SFTP logins to check travel on this stream too (`crate::sftp`).
    let mut sftp = state.sftp.subscribe();
    // So do backups' and restores' progress reports (`crate::backups::progress`).
    let mut backups = state.backups.progress();
    let snapshot = state.instances.state_snapshot();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut first = Vec::new();
        for e in &snapshot {
            if serde_json::to_writer(&mut first, e).is_ok() {
                first.push(b'\n');
            }
        }
        if !first.is_empty() && tx.send(first.into()).await.is_err() {
            return;
        }
        loop {
            let mut line = tokio::select! {
                r = receiver.recv() => match r {
                    Ok(e) => serde_json::to_vec(&e).unwrap_or_default(),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "state events lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                r = sftp.recv() => match r {
                    Ok(request) => serde_json::to_vec(&Event {
                        event: events::SFTP_AUTH.into(),
                        args: vec![serde_json::to_value(request).unwrap_or_default()],
                    })
                    .unwrap_or_default(),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                r = backups.recv() => match r {
                    Ok(progress) => serde_json::to_vec(&Event {
                        event: BACKUP_PROGRESS.into(),
                        args: vec![serde_json::to_value(progress).unwrap_or_default()],
                    })
                    .unwrap_or_default(),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "backup progress reports lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                () = tx.closed() => return,
            };
            line.push(b'\n');
            if tx.send(line.into()).await.is_err() {
                return;
            }
        }
    });
    ndjson(rx)
}
