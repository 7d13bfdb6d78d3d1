//! Reading instance bodies: shapes (unknown fields are a 400, like every input) and the
//! checks behind them, each failing with a 422 `VALIDATION_ERROR` whose `field` names
//! the offending part (`limits.memory_mb`, `ports[1]`, `variables.SERVER_JARFILE`).
//!
//! Variables: the stored map holds the resolved value of every egg variable (the value
//! given, else the one stored before, else the egg default), so a spec is built from it
//! without guessing and a later change of an egg default does not change running servers.
//! A variable the egg is not `user_editable` for may only be changed by organization
//! owners and admins; anyone else gets 403 (sending it back unchanged is fine).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use shardlyn_proto::egg::{Egg, EggVariable};
use shardlyn_proto::instance::Limits;

use crate::error::{AppError, AppResult};

/// Longest instance name, in characters.
pub const MAX_NAME_CHARS: usize = 191;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Most ports one instance may hold.
pub const MAX_PORTS: usize = 20;
/// Highest CPU limit, in percent of one core (64 cores).
pub const MAX_CPU_PERCENT: i64 = 6400;
/// Highest memory, swap and disk values, in MiB (1 PiB: guards the arithmetic).
pub const MAX_MB: i64 = 1 << 30;

/// Body of `POST /v1/instances`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub workload_id: String,
    /// Where to place it; the best-fitting node of the organization when absent.
    #[serde(default)]
    pub node_id: Option<String>,
    /// One of the egg's images; the first by default.
    #[serde(default)]
    pub image: Option<String>,
    /// Env name → value (strings, numbers or booleans; null means the default).
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub limits: Option<LimitsInput>,
    /// Explicit ports, the first is the primary.
    #[serde(default)]
    pub ports: Option<Vec<i64>>,
    /// How many ports to take from the configured range (default 1).
    #[serde(default)]
    pub port_count: Option<i64>,
    /// Start the server once it is installed.
    #[serde(default)]
    pub start_on_completion: Option<bool>,
}

/// Body of `PUT /v1/instances/{id}`: every field is optional, what is left out keeps
/// its value; `variables` and `limits` are merged into the current ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub limits: Option<LimitsInput>,
    /// The subdomain its auto-DNS records get (`mc` for `mc.example.com` under the
    /// default pattern); `null` goes back to the server's name.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub dns_subdomain: Option<Option<String>>,
}

/// A field that is present (`Some(None)` when `null`) or absent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Limits as sent; absent values keep the current (or default) ones.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    pub memory_mb: Option<i64>,
    pub swap_mb: Option<i64>,
    pub cpu_percent: Option<i64>,
    pub disk_mb: Option<i64>,
    pub pids: Option<i64>,
    pub io_weight: Option<i64>,
}

/// Checks an instance name.
///
/// # Errors
/// 422 on `name`.
pub fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::unprocessable(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Checks a description.
///
/// # Errors
/// 422 on `description`.
pub fn check_description(description: &str) -> AppResult<String> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::unprocessable(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description.to_owned())
}

/// `given` applied over `base`, every value range-checked.
///
/// # Errors
/// 422 naming the limit, e.g. `limits.io_weight`.
pub fn limits(base: &Limits, given: Option<&LimitsInput>) -> AppResult<Limits> {
    let default = LimitsInput::default();
    let given = given.unwrap_or(&default);
    let l = Limits {
        memory_mb: given.memory_mb.unwrap_or(base.memory_mb),
        swap_mb: given.swap_mb.unwrap_or(base.swap_mb),
        cpu_percent: given.cpu_percent.unwrap_or(base.cpu_percent),
        disk_mb: given.disk_mb.unwrap_or(base.disk_mb),
        pids: given.pids.unwrap_or(base.pids),
        io_weight: given.io_weight.unwrap_or(base.io_weight),
    };
    let check = |ok: bool, name: &str, rule: &str| {
        if ok {
            Ok(())
        } else {
            Err(AppError::unprocessable(
                format!("limits.{name}"),
                format!("limits.{name} must be {rule}"),
            ))
        }
    };
    check(
        l.memory_mb == 0 || (64..=MAX_MB).contains(&l.memory_mb),
        "memory_mb",
        "0 (unlimited) or between 64 and 1073741824 MiB",
    )?;
    check(
        (-1..=MAX_MB).contains(&l.swap_mb),
        "swap_mb",
        "-1 (unlimited), 0 (none) or a size in MiB",
    )?;
    check(
        (0..=MAX_CPU_PERCENT).contains(&l.cpu_percent),
        "cpu_percent",
        "between 0 (unlimited) and 6400 (percent of one core)",
    )?;
    check(
        (0..=MAX_MB).contains(&l.disk_mb),
        "disk_mb",
        "0 (unlimited) or a size in MiB",
    )?;
    check(
        (0..=32_768).contains(&l.pids),
        "pids",
        "between 0 (the node's default) and 32768",
    )?;
    check(
        (10..=1000).contains(&l.io_weight),
        "io_weight",
        "between 10 and 1000",
    )?;
    Ok(l)
}

/// The image to run: `given` when it is one of the egg's, else the egg's first.
///
/// # Errors
/// 422 on `image` for an image the egg does not list.
pub fn image(egg: &Egg, given: Option<&str>) -> AppResult<String> {
    match given {
        None => egg
            .images
            .first()
            .map(|i| i.image.clone())
            .ok_or_else(|| AppError::unprocessable("image", "the workload declares no image")),
        Some(wanted) => egg
            .images
            .iter()
            .find(|i| i.image == wanted)
            .map(|i| i.image.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = egg.images.iter().map(|i| i.image.as_str()).collect();
                AppError::unprocessable(
                    "image",
                    format!(
                        "image `{wanted}` is not one of the workload's images ({})",
                        known.join(", ")
                    ),
                )
            }),
    }
}

/// How ports are requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRequest {
    /// These ports, the first primary.
    Explicit(Vec<u16>),
    /// This many from the configured range.
    Auto(usize),
}

/// Reads `ports` / `port_count`.
///
/// # Errors
/// 422 on `ports[i]` or `port_count`.
pub fn ports(ports: Option<&[i64]>, count: Option<i64>) -> AppResult<PortRequest> {
    match (ports, count) {
        (Some(_), Some(_)) => Err(AppError::unprocessable(
            "port_count",
            "give either ports or port_count, not both",
        )),
        (Some(list), None) => {
            if list.is_empty() || list.len() > MAX_PORTS {
                return Err(AppError::unprocessable(
                    "ports",
                    format!("ports must list 1 to {MAX_PORTS} ports"),
                ));
            }
            let mut out: Vec<u16> = Vec::with_capacity(list.len());
            for (i, p) in list.iter().enumerate() {
                let port = u16::try_from(*p)
                    .ok()
                    .filter(|p| *p >= 1024)
                    .ok_or_else(|| {
                        AppError::unprocessable(
                            format!("ports[{i}]"),
                            format!("ports[{i}]: {p} is not a port between 1024 and 65535"),
                        )
                    })?;
                if out.contains(&port) {
                    return Err(AppError::unprocessable(
                        format!("ports[{i}]"),
                        format!("ports[{i}]: port {port} is listed twice"),
                    ));
                }
                out.push(port);
            }
            Ok(PortRequest::Explicit(out))
        }
        (None, count) => {
            let n = count.unwrap_or(1);
            usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_PORTS).contains(n))
                .map(PortRequest::Auto)
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "port_count",
                        format!("port_count must be between 1 and {MAX_PORTS}"),
                    )
                })
        }
    }
}

/// A variable value as text: strings as they are, numbers and booleans written out;
/// `None` for null (the default).
fn value_text(env: &str, value: &Value) -> AppResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(if *b { "1" } else { "0" }.to_owned())),
        _ => Err(AppError::unprocessable(
            format!("variables.{env}"),
            format!("variables.{env}: must be a string, a number, a boolean or null"),
        )),
    }
}

/// The value of `var` in a stored map, falling back to the egg default.
#[must_use]
pub fn current_value<'a>(var: &'a EggVariable, stored: &'a BTreeMap<String, String>) -> &'a str {
    stored
        .get(&var.env_variable)
        .map_or(var.default_value.as_str(), String::as_str)
}

/// Every egg variable's value, in the egg's vocabulary: `stored` where set, else the
/// default. Variables the egg no longer has are dropped.
#[must_use]
pub fn resolved(egg: &Egg, stored: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    egg.variables
        .iter()
        .map(|v| (v.env_variable.clone(), current_value(v, stored).to_owned()))
        .collect()
}

/// Applies `given` over `stored` and validates the result against the egg.
///
/// Every given variable must exist in the egg; a variable that is not `user_editable`
/// may only change when `may_edit_locked`. With `validate_all`, every variable is checked
/// against its rules (creation); otherwise only the given ones (update).
///
/// # Errors
/// 422 on `variables.ENV` for an unknown variable or a value failing its rules; 403 for
/// a locked variable changed without `may_edit_locked`.
pub fn variables(
    egg: &Egg,
    stored: &BTreeMap<String, String>,
    given: Option<&Map<String, Value>>,
    may_edit_locked: bool,
    validate_all: bool,
) -> AppResult<BTreeMap<String, String>> {
    let mut values = resolved(egg, stored);
    let empty = Map::new();
    let given = given.unwrap_or(&empty);
    for (env, value) in given {
        let Some(var) = egg.variables.iter().find(|v| v.env_variable == *env) else {
            return Err(AppError::unprocessable(
                format!("variables.{env}"),
                format!("variables.{env}: the workload has no variable {env}"),
            ));
        };
        let value = value_text(env, value)?.unwrap_or_else(|| var.default_value.clone());
        if !var.user_editable && !may_edit_locked && value != current_value(var, stored) {
            return Err(AppError::Forbidden(format!(
                "variable {env} is not user-editable: only organization owners and admins may change it"
            )));
        }
        values.insert(env.clone(), value);
    }
    for var in &egg.variables {
        if !validate_all && !given.contains_key(&var.env_variable) {
            continue;
        }
        let value = values.get(&var.env_variable).map(String::as_str);
        var.validate(value).map_err(|e| {
            AppError::unprocessable(
                format!("variables.{}", e.field),
                format!("variables.{}: {}", e.field, e.message),
            )
        })?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shardlyn_proto::egg::parse_egg;

    use super::*;

    fn egg() -> Egg {
        parse_egg(
            &json!({
                "meta": {"version": "PTDL_v2"},
                "name": "T",
                "docker_images": {"A": "img:a", "B": "img:b"},
                "startup": "run",
                "config": {"stop": "^C"},
                "variables": [
                    {"name": "Jar", "env_variable": "JAR", "default_value": "server.jar",
                     "user_viewable": true, "user_editable": true, "rules": "required|string|max:20"},
                    {"name": "Key", "env_variable": "KEY", "default_value": "k",
                     "user_viewable": false, "user_editable": false, "rules": "nullable|string"}
                ]
            })
            .to_string(),
        )
        .expect("egg")
    }

    fn field(e: AppError) -> Option<String> {
        match e {
            AppError::Unprocessable { field, .. } => field,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    fn map(v: &Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn variables_resolve_validate_and_lock() {
        let egg = egg();
        let none = BTreeMap::new();
        let all = variables(&egg, &none, None, false, true).expect("defaults");
        assert_eq!(all["JAR"], "server.jar");
        assert_eq!(all["KEY"], "k");
        let set = variables(&egg, &none, Some(&map(&json!({"JAR": 7}))), false, true).expect("set");
        assert_eq!(set["JAR"], "7");
        let long = map(&json!({"JAR": "x".repeat(30)}));
        let e = variables(&egg, &none, Some(&long), false, true).expect_err("too long");
        assert_eq!(field(e).as_deref(), Some("variables.JAR"));
        let e = variables(&egg, &none, Some(&map(&json!({"NOPE": "1"}))), true, true)
            .expect_err("unknown");
        assert_eq!(field(e).as_deref(), Some("variables.NOPE"));
        let locked = map(&json!({"KEY": "other"}));
        assert!(matches!(
            variables(&egg, &none, Some(&locked), false, true),
            Err(AppError::Forbidden(_))
        ));
        assert!(variables(&egg, &none, Some(&map(&json!({"KEY": "k"}))), false, true).is_ok());
        assert_eq!(
            variables(&egg, &none, Some(&locked), true, true).expect("admin")["KEY"],
            "other"
        );
        let e =
            variables(&egg, &none, Some(&map(&json!({"JAR": []}))), true, true).expect_err("array");
        assert_eq!(field(e).as_deref(), Some("variables.JAR"));
    }

    #[test]
    fn limits_are_range_checked() {
        let base = Limits::default();
        assert_eq!(limits(&base, None).expect("default"), base);
        let bad = |input: LimitsInput| field(limits(&base, Some(&input)).expect_err("bad"));
        assert_eq!(
            bad(LimitsInput {
                memory_mb: Some(10),
                ..LimitsInput::default()
            })
            .as_deref(),
            Some("limits.memory_mb")
        );
        assert_eq!(
            bad(LimitsInput {
                swap_mb: Some(-2),
                ..LimitsInput::default()
            })
            .as_deref(),
            Some("limits.swap_mb")
        );
        assert_eq!(
            bad(LimitsInput {
                io_weight: Some(5),
                ..LimitsInput::default()
            })
            .as_deref(),
            Some("limits.io_weight")
        );
        assert_eq!(
            bad(LimitsInput {
                pids: Some(40_000),
                ..LimitsInput::default()
            })
            .as_deref(),
            Some("limits.pids")
        );
        assert!(
            limits(
                &base,
                Some(&LimitsInput {
                    memory_mb: Some(0),
                    swap_mb: Some(-1),
                    ..LimitsInput::default()
                })
            )
            .is_ok()
        );
    }

    #[test]
    fn ports_and_images() {
        assert_eq!(ports(None, None).expect("one"), PortRequest::Auto(1));
        assert_eq!(
            ports(Some(&[30_000, 30_001]), None).expect("explicit"),
            PortRequest::Explicit(vec![30_000, 30_001])
        );
        assert_eq!(
            field(ports(Some(&[30_000, 80]), None).expect_err("low")).as_deref(),
            Some("ports[1]")
        );
        assert_eq!(
            field(ports(Some(&[30_000, 30_000]), None).expect_err("dup")).as_deref(),
            Some("ports[1]")
        );
        assert_eq!(
            field(ports(Some(&[70_000]), None).expect_err("high")).as_deref(),
            Some("ports[0]")
        );
        assert_eq!(
            field(ports(None, Some(0)).expect_err("zero")).as_deref(),
            Some("port_count")
        );
        let egg = egg();
        assert_eq!(image(&egg, None).expect("first"), "img:a");
        assert_eq!(image(&egg, Some("img:b")).expect("second"), "img:b");
        assert_eq!(
            field(image(&egg, Some("img:c")).expect_err("unknown")).as_deref(),
            Some("image")
        );
    }
}
