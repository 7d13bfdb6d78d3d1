//! The create/update body and its checks: every field validated, the error naming it
//! (malformed JSON or unknown fields: 400; well-formed values the schedule cannot take,
//! limits included: 422 `VALIDATION_ERROR` with `field`).

use serde::Deserialize;
use shardlyn_proto::instance::PowerAction;

use super::cron::When;
use super::store::{Action, Task};
use crate::error::{AppError, AppResult};
use crate::instances::ops::power::MAX_COMMAND;

/// Most tasks in one schedule.
pub const MAX_TASKS: usize = 20;
/// Longest wait before one task, in seconds.
pub const MAX_OFFSET_SECS: i64 = 900;
/// Longest schedule name, in characters.
const MAX_NAME: usize = 191;
/// Longest backup ignore list, in bytes.
const MAX_IGNORED: usize = 64 * 1024;

/// `POST` and `PUT` body: every field optional on `PUT` (the stored value stays).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub name: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    #[serde(alias = "is_active")]
    pub enabled: Option<bool>,
    pub only_when_online: Option<bool>,
    pub tasks: Option<Vec<TaskBody>>,
}

/// One task as sent.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskBody {
    pub action: String,
    #[serde(default)]
    pub payload: Option<String>,
    /// Backup tasks: the backup's name (default: the time it was taken).
    #[serde(default)]
    pub backup_name: Option<String>,
    #[serde(default)]
    pub time_offset: Option<i64>,
    #[serde(default)]
    pub continue_on_failure: bool,
}

/// A checked name.
///
/// # Errors
/// 422 when empty or too long.
pub fn name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::unprocessable("name", "name must not be empty"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "name",
            format!("name must be at most {MAX_NAME} printable characters"),
        ));
    }
    Ok(name.to_string())
}

/// A checked cron expression and zone.
///
/// # Errors
/// 422 naming `cron` or `timezone`.
pub fn when(cron: &str, timezone: &str) -> AppResult<When> {
    When::parse(cron, timezone).map_err(|(field, why)| AppError::unprocessable(field, why))
}

/// Checked tasks, in order.
///
/// # Errors
/// 422 naming the task field at fault, or `tasks` past [`MAX_TASKS`].
pub fn tasks(raw: Vec<TaskBody>) -> AppResult<Vec<Task>> {
    if raw.len() > MAX_TASKS {
        return Err(AppError::unprocessable(
            "tasks",
            format!("a schedule has at most {MAX_TASKS} tasks"),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| task(i, t))
        .collect()
}

fn task(i: usize, t: TaskBody) -> AppResult<Task> {
    let field = |f: &str| format!("tasks[{i}].{f}");
    let action = Action::parse(&t.action).ok_or_else(|| {
        AppError::unprocessable(field("action"), "action is command, power or backup")
    })?;
    let time_offset = t.time_offset.unwrap_or(0);
    if !(0..=MAX_OFFSET_SECS).contains(&time_offset) {
        return Err(AppError::unprocessable(
            field("time_offset"),
            format!("time_offset is between 0 and {MAX_OFFSET_SECS} seconds"),
        ));
    }
    let payload = t.payload.unwrap_or_default();
    if action != Action::Backup && t.backup_name.is_some() {
        return Err(AppError::unprocessable(
            field("backup_name"),
            "backup_name is for backup tasks",
        ));
    }
    let payload = match action {
        Action::Command => {
            let command = payload.trim_end_matches(['\r', '\n']);
            if command.trim().is_empty() {
                return Err(AppError::unprocessable(
                    field("payload"),
                    "a command task needs the command line as payload",
                ));
            }
            if command.len() > MAX_COMMAND || command.contains(['\r', '\n']) {
                return Err(AppError::unprocessable(
                    field("payload"),
                    format!("the command is one line of at most {MAX_COMMAND} bytes"),
                ));
            }
            command.to_string()
        }
        Action::Power => {
            let p = payload.trim();
            PowerAction::parse(p).ok_or_else(|| {
                AppError::unprocessable(
                    field("payload"),
                    "a power task's payload is start, stop, restart or kill",
                )
            })?;
            p.to_string()
        }
        Action::Backup => {
            if payload.len() > MAX_IGNORED {
                return Err(AppError::unprocessable(
                    field("payload"),
                    "the ignore list is too long",
                ));
            }
            payload
        }
    };
    let backup_name = t
        .backup_name
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    if backup_name.chars().count() > MAX_NAME {
        return Err(AppError::unprocessable(
            field("backup_name"),
            format!("backup_name is at most {MAX_NAME} characters"),
        ));
    }
    Ok(Task {
        action,
        payload,
        backup_name,
        time_offset,
        continue_on_failure: t.continue_on_failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(action: &str, payload: Option<&str>, offset: Option<i64>) -> TaskBody {
        TaskBody {
            action: action.into(),
            payload: payload.map(str::to_string),
            backup_name: None,
            time_offset: offset,
            continue_on_failure: false,
        }
    }

    fn field_of(e: AppError) -> Option<String> {
        match e {
            AppError::Unprocessable { field, .. } => field,
            other => panic!("not a 422: {other:?}"),
        }
    }

    #[test]
    fn tasks_are_checked_field_by_field() {
        let ok = tasks(vec![
            body("command", Some("say hi\n"), None),
            body("power", Some("restart"), Some(900)),
            body("backup", None, Some(5)),
        ])
        .expect("valid");
        assert_eq!(ok[0].payload, "say hi");
        assert_eq!(ok[1].time_offset, 900);
        let bad = |t| field_of(tasks(vec![body("command", Some("x"), None), t]).expect_err("bad"));
        assert_eq!(
            bad(body("reboot", None, None)).as_deref(),
            Some("tasks[1].action")
        );
        assert_eq!(
            bad(body("command", Some(" "), None)).as_deref(),
            Some("tasks[1].payload")
        );
        assert_eq!(
            bad(body("command", Some("a\nb"), None)).as_deref(),
            Some("tasks[1].payload")
        );
        assert_eq!(
            bad(body("power", Some("explode"), None)).as_deref(),
            Some("tasks[1].payload")
        );
        assert_eq!(
            bad(body("power", Some("stop"), Some(901))).as_deref(),
            Some("tasks[1].time_offset")
        );
        assert_eq!(
            bad(body("power", Some("stop"), Some(-1))).as_deref(),
            Some("tasks[1].time_offset")
        );
        let too_many = (0..=MAX_TASKS)
            .map(|_| body("backup", None, None))
            .collect();
        assert_eq!(
            field_of(tasks(too_many).expect_err("limit")).as_deref(),
            Some("tasks")
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  nightly ").expect("ok"), "nightly");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(192)).is_err());
        assert!(name("a\u{0}b").is_err());
    }
}
