//! Pterodactyl eggs (PTDL_v1 and PTDL_v2 JSON) and our normalized model of them.
//!
//! This module owns the [`Egg`] model and its error type. Import (`parse_egg`, lenient about
//! the shapes found in the wild), export back to PTDL_v2 (`export_egg`, `export_egg_json`)
//! and startup-command rendering (`render_startup`) live in the submodules.

mod export;
mod fields;
mod import;
mod ordered;
mod startup;

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use crate::rules::{Rule, RuleError, validate_named};

pub use export::{export_egg, export_egg_json};
pub use import::parse_egg;
pub use startup::render_startup;

/// An egg, independent of the PTDL version it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Egg {
    /// Display name, e.g. `Paper`.
    pub name: String,
    /// Author, usually an e-mail address.
    pub author: String,
    /// Free-form description (empty when the egg has none).
    pub description: String,
    /// The `_comment` line, if any.
    pub comment: Option<String>,
    /// `meta.update_url`.
    pub update_url: Option<String>,
    /// `exported_at`, kept verbatim.
    pub exported_at: Option<String>,
    /// Panel features such as `eula` or `java_version`.
    pub features: Vec<String>,
    /// Docker images in document order; the first is the default.
    pub images: Vec<DockerImage>,
    /// Files the user may not edit from the file manager.
    pub file_denylist: Vec<String>,
    /// Startup command template, e.g. `java -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}`.
    pub startup: String,
    /// Process configuration for the agent.
    pub config: EggConfig,
    /// Install script.
    pub install: InstallScript,
    /// User-facing variables, in document order.
    pub variables: Vec<EggVariable>,
}

/// One selectable Docker image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerImage {
    /// Label shown to users (`Java 17`); v1 eggs use the image itself.
    pub label: String,
    /// Image reference, e.g. `ghcr.io/pterodactyl/yolks:java_17`.
    pub image: String,
}

/// The egg's `config` block, with its JSON-in-a-string parts decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct EggConfig {
    /// Config files the agent edits before each start, in document order.
    pub files: Vec<ConfigFile>,
    /// How to tell that the server finished starting.
    pub startup: StartupDetection,
    /// Legacy log settings.
    pub logs: LogConfig,
    /// How to stop the server; `None` when inherited (`extends`).
    pub stop: Option<StopCommand>,
    /// `config.extends` (the egg configuration is inherited from another egg).
    pub extends: Option<String>,
}

/// One entry of `config.files`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// Path relative to the server root, e.g. `server.properties`.
    pub path: String,
    /// How the file is parsed.
    pub parser: Parser,
    /// Key (dotted path, wildcards allowed) → replacement value, often a `{{…}}` template.
    pub find: BTreeMap<String, Value>,
}

/// Config-file parsers understood by Wings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parser {
    /// Line-based search and replace.
    File,
    /// Java `.properties`.
    Properties,
    /// JSON.
    Json,
    /// INI.
    Ini,
    /// YAML written as `yaml`.
    Yaml,
    /// YAML written as `yml`.
    Yml,
    /// XML.
    Xml,
    /// Anything else, kept verbatim.
    Unknown(String),
}

impl Parser {
    /// Reads a parser name (case-insensitive for the known ones).
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "file" => Parser::File,
            "properties" => Parser::Properties,
            "json" => Parser::Json,
            "ini" => Parser::Ini,
            "yaml" => Parser::Yaml,
            "yml" => Parser::Yml,
            "xml" => Parser::Xml,
            _ => Parser::Unknown(name.to_owned()),
        }
    }

    /// The name as written in eggs.
    pub fn as_str(&self) -> &str {
        match self {
            Parser::File => "file",
            Parser::Properties => "properties",
            Parser::Json => "json",
            Parser::Ini => "ini",
            Parser::Yaml => "yaml",
            Parser::Yml => "yml",
            Parser::Xml => "xml",
            Parser::Unknown(name) => name,
        }
    }
}

/// `config.startup`: console lines that mark the server as started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupDetection {
    /// Substrings (or `regex:` patterns) meaning "done"; eggs write one string or a list.
    pub done: Vec<String>,
    /// Lines that need user interaction (e.g. the EULA prompt).
    pub user_interaction: Vec<String>,
    /// Whether to strip ANSI colours before matching, when the egg says.
    pub strip_ansi: Option<bool>,
}

/// `config.logs` (legacy; kept for export).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// Whether the log location is custom.
    pub custom: Option<bool>,
    /// Log file path.
    pub location: Option<String>,
}

/// How the agent stops a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCommand {
    /// A `^`-prefixed stop such as `^C` or `^^C`, kept raw.
    Signal(String),
    /// A console command such as `stop` or `end`.
    Command(String),
}

impl StopCommand {
    /// Classifies an egg's `config.stop` string.
    pub fn from_egg(stop: &str) -> Self {
        if stop.starts_with('^') {
            StopCommand::Signal(stop.to_owned())
        } else {
            StopCommand::Command(stop.to_owned())
        }
    }

    /// The string as written in eggs.
    pub fn as_str(&self) -> &str {
        match self {
            StopCommand::Signal(s) | StopCommand::Command(s) => s,
        }
    }

    /// The POSIX signal to send: `^C`, `^c` and `^^C` mean `SIGINT`; other signals are
    /// left to the caller (`None`), as are commands.
    pub fn signal_name(&self) -> Option<&'static str> {
        match self {
            StopCommand::Signal(s) if s.trim_start_matches('^').eq_ignore_ascii_case("c") => {
                Some("SIGINT")
            }
            _ => None,
        }
    }
}

/// The egg's install script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallScript {
    /// Shell script run in the install container.
    pub script: String,
    /// Install container image.
    pub container: String,
    /// Interpreter, e.g. `bash` or `ash`.
    pub entrypoint: String,
}

/// A user-facing variable.
#[derive(Debug, Clone, PartialEq)]
pub struct EggVariable {
    /// Display name, e.g. `Server Jar File`.
    pub name: String,
    /// Help text.
    pub description: String,
    /// Environment variable, e.g. `SERVER_JARFILE`.
    pub env_variable: String,
    /// Default value, normalized to a string (`null` becomes empty).
    pub default_value: String,
    /// Whether users can see it.
    pub user_viewable: bool,
    /// Whether users can change it.
    pub user_editable: bool,
    /// Parsed validation rules.
    pub rules: Vec<Rule>,
    /// Input kind; `text` unless the egg says otherwise.
    pub field_type: String,
    /// Optional ordering hint.
    pub sort: Option<i64>,
}

impl EggVariable {
    /// Validates a value for this variable; the message uses the variable's display name
    /// and the error `field` is its environment variable.
    pub fn validate(&self, value: Option<&str>) -> Result<(), RuleError> {
        validate_named(&self.name, &self.env_variable, value, &self.rules)
    }
}

/// Why an egg could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", self.describe())]
pub struct EggError {
    /// What kind of problem this is.
    pub kind: EggErrorKind,
    /// JSON path of the offending field (`variables[3].env_variable`, `config.files`,
    /// `config.files["server.properties"].parser`); empty for the document itself.
    pub field: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Coarse classification of an [`EggError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EggErrorKind {
    /// The input is not JSON; line and column are 1-based.
    Syntax {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// Valid JSON, but not an egg at all (no `meta` object).
    NotAnEgg,
    /// An egg whose `meta.version` is missing or not PTDL_v1/PTDL_v2.
    UnsupportedVersion,
    /// An egg with a missing or malformed field.
    Invalid,
}

impl EggError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: EggErrorKind::Invalid,
            field: field.into(),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}
