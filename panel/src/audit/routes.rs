//! `GET /v1/admin/audit-logs` (filters and pages) and `/export` (CSV or JSON).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::store::{self, Entry, Filter};
use crate::auth::extract::AdminUser;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::pagination::{Page, PageParams};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// Most rows one export returns.
const EXPORT_LIMIT: i64 = 100_000;

/// `/v1/admin/audit-logs*`.
pub fn router() -> Routes {
    Routes::new("admin")
        .get(
            "/v1/admin/audit-logs",
            Access::Admin,
            "List audit logs",
            list,
        )
        .get(
            "/v1/admin/audit-logs/export",
            Access::Admin,
            "Export audit logs",
            export,
        )
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct FilterQuery {
    action: Option<String>,
    actor: Option<String>,
    /// RFC 3339 time or unix milliseconds.
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
}

fn parse_time(name: &str, value: Option<&str>) -> AppResult<Option<i64>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            AppError::Validation(format!(
                "{name} must be an RFC 3339 time or unix milliseconds"
            ))
        })
}

fn filter(q: &FilterQuery) -> AppResult<Filter> {
    for (name, v) in [("action", &q.action), ("actor", &q.actor)] {
        if v.as_ref().is_some_and(|v| v.len() > 200) {
            return Err(AppError::Validation(format!(
                "{name} must be at most 200 bytes"
            )));
        }
    }
    Ok(Filter {
        action: q.action.clone().filter(|s| !s.is_empty()),
        actor: q.actor.clone().filter(|s| !s.is_empty()),
        since_ms: parse_time("since", q.since.as_deref())?,
        until_ms: parse_time("until", q.until.as_deref())?,
    })
}

async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(page): AppQuery<PageParams>,
    AppQuery(q): AppQuery<FilterQuery>,
) -> AppResult<AppJson<Page<Entry>>> {
    let f = filter(&q)?;
    let (limit, offset) = page.limit_offset()?;
    let (entries, total) = store::list(&state.db.pool, &f, limit, offset).await?;
    Ok(AppJson(Page::new(entries, page, total)))
}

async fn export(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(q): AppQuery<FilterQuery>,
) -> AppResult<Response> {
    let f = filter(&q)?;
    let (entries, _) = store::list(&state.db.pool, &f, EXPORT_LIMIT, 0).await?;
    match q.format.as_deref().unwrap_or("csv") {
        "json" => Ok((
            [(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-logs.json\"",
            )],
            AppJson(entries),
        )
            .into_response()),
        "csv" => {
            let mut out = csv::Writer::from_writer(Vec::new());
            out.write_record([
                "id",
                "at",
                "actor_id",
                "actor_email",
                "action",
                "method",
                "path",
                "target",
                "ip",
                "status",
                "result",
            ])
            .map_err(|e| AppError::Internal(e.into()))?;
            for e in &entries {
                out.write_record([
                    e.id.as_str(),
                    &crate::db::rfc3339(e.at),
                    e.actor_id.as_deref().unwrap_or(""),
                    &csv_safe(e.actor_email.as_deref().unwrap_or("")),
                    &csv_safe(&e.action),
                    &e.method,
                    &csv_safe(&e.path),
                    &csv_safe(e.target.as_deref().unwrap_or("")),
                    e.ip.as_deref().unwrap_or(""),
                    &e.status.to_string(),
                    &e.result,
                ])
                .map_err(|e| AppError::Internal(e.into()))?;
            }
            let bytes = out
                .into_inner()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"audit-logs.csv\"",
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        _ => Err(AppError::Validation("format must be csv or json".into())),
    }
}

/// Neutralizes spreadsheet formulas (`=`, `+`, `-`, `@` at the start of a cell).
fn csv_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}
