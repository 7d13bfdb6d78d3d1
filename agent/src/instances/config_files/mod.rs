//! Applies an egg's `config.files` to the server files before each start.
//!
//! Owns the whole pipeline: turning a [`ConfigFileSpec`]'s `find` map into
//! [`replacement::Replacement`]s (placeholders resolved, `if_value` conditions compiled),
//! reading the file safely under the server root, running the right parser, and writing
//! the result back atomically. Each parser lives in its own submodule and is a pure
//! `&str -> String` edit so it can be tested without a file system.
//!
//! Semantics follow Pterodactyl Wings' `parser` package and Pelican's fixes to it; the
//! places where we deliberately differ are documented on the parser modules.

mod fs;
mod ini;
mod placeholders;
mod properties;
mod replacement;
mod text;
mod tree;
mod xml;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use shardlyn_proto::instance::ConfigFileSpec;

use replacement::Replacement;

/// What `{{...}}` placeholders in `find` values resolve to.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    /// The instance's environment (`{{server.build.env.X}}`, `{{env.X}}`).
    pub env: BTreeMap<String, String>,
    /// `{{server.build.default.ip}}`.
    pub default_ip: String,
    /// `{{server.build.default.port}}`.
    pub default_port: u16,
    /// `{{server.build.memory}}` in MiB.
    pub memory_mb: i64,
    /// `{{config.X}}`: the agent's own settings, e.g. `docker.interface`.
    pub config: BTreeMap<String, String>,
}

/// Why one configuration file was skipped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("unknown parser `{0}`")]
    UnknownParser(String),
    #[error("refusing unsafe path: {0}")]
    UnsafePath(String),
    #[error("file does not exist (the `file` parser only edits existing files)")]
    MissingTextFile,
    #[error("file is not valid UTF-8 text")]
    NotUtf8,
    #[error("file is larger than {} bytes", fs::MAX_BYTES)]
    TooLarge,
    #[error("malformed {parser} file: {reason}")]
    Malformed {
        parser: &'static str,
        reason: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
}

impl Error {
    fn malformed(parser: &'static str, reason: &impl std::fmt::Display) -> Self {
        Self::Malformed {
            parser,
            reason: reason.to_string(),
        }
    }
}

/// The parsers Wings knows; `yml` is an alias of `yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    Properties,
    File,
    Yaml,
    Json,
    Ini,
    Xml,
}

impl Parser {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "properties" => Self::Properties,
            "file" => Self::File,
            "yaml" | "yml" => Self::Yaml,
            "json" => Self::Json,
            "ini" => Self::Ini,
            "xml" => Self::Xml,
            _ => return None,
        })
    }

    /// Edits `content` (empty when the file does not exist yet).
    fn edit(self, content: &str, replacements: &[Replacement]) -> Result<String, Error> {
        match self {
            Self::Properties => Ok(properties::edit(content, replacements)),
            Self::File => Ok(text::edit(content, replacements)),
            Self::Ini => Ok(ini::edit(content, replacements)),
            Self::Yaml => tree::edit_yaml(content, replacements),
            Self::Json => tree::edit_json(content, replacements),
            Self::Xml => xml::edit(content, replacements),
        }
    }
}

/// Applies every file in order; a file that cannot be parsed or written is skipped and
/// reported (Wings logs and goes on). Returns one message per skipped file (or per file
/// whose `find` had entries that could not be used, such as an invalid `regex:`).
#[must_use]
pub fn apply(root: &Path, files: &[ConfigFileSpec], placeholders: &Placeholders) -> Vec<String> {
    let mut messages = Vec::new();
    for spec in files {
        // The parsers are written not to panic; this is the belt to those braces, so a bug
        // in one of them costs one file, never the start of the server.
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| apply_one(root, spec, placeholders)));
        match outcome {
            Ok(Ok(notes)) if notes.is_empty() => {}
            Ok(Ok(notes)) => messages.push(format!("{}: {}", spec.path, notes.join("; "))),
            Ok(Err(error)) => {
                tracing::warn!(config.path = %spec.path, %error, "config file skipped");
                messages.push(format!("{}: {error}", spec.path));
            }
            Err(_) => messages.push(format!("{}: internal error, file skipped", spec.path)),
        }
    }
    messages
}

/// Applies one file; returns notes about unusable `find` entries.
fn apply_one(
    root: &Path,
    spec: &ConfigFileSpec,
    placeholders: &Placeholders,
) -> Result<Vec<String>, Error> {
    let parser =
        Parser::from_name(&spec.parser).ok_or_else(|| Error::UnknownParser(spec.parser.clone()))?;
    let mut notes = Vec::new();
    let replacements = replacement::build(&spec.find, placeholders, &mut notes);
    let target = fs::Target::resolve(root, &spec.path)?;
    let existing = target.read()?;
    let original = match &existing {
        Some(file) => file.content.as_str(),
        None if parser == Parser::File => return Err(Error::MissingTextFile),
        None => "",
    };
    let edited = parser.edit(original, &replacements)?;
    if existing.is_some() && edited == original {
        return Ok(notes);
    }
    target.write(&edited, existing.as_ref())?;
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, parser: &str, find: serde_json::Value) -> ConfigFileSpec {
        ConfigFileSpec {
            path: path.to_owned(),
            parser: parser.to_owned(),
            find: serde_json::from_value(find).expect("find map"),
        }
    }

    #[test]
    fn unknown_parser_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let messages = apply(
            dir.path(),
            &[spec("a.toml", "toml", serde_json::json!({"a": "b"}))],
            &Placeholders::default(),
        );
        assert_eq!(messages, vec!["a.toml: unknown parser `toml`".to_owned()]);
    }

    #[test]
    fn unchanged_file_is_not_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yml");
        std::fs::write(&path, "# keep me\nport: 1\n").expect("write");
        let messages = apply(
            dir.path(),
            &[spec("c.yml", "yaml", serde_json::json!({"port": "1"}))],
            &Placeholders::default(),
        );
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "# keep me\nport: 1\n"
        );
    }

    #[test]
    fn parser_names_match_wings() {
        for (name, parser) in [
            ("properties", Parser::Properties),
            ("file", Parser::File),
            ("yaml", Parser::Yaml),
            ("yml", Parser::Yaml),
            ("json", Parser::Json),
            ("ini", Parser::Ini),
            ("xml", Parser::Xml),
        ] {
            assert_eq!(Parser::from_name(name), Some(parser));
        }
        assert_eq!(Parser::from_name("toml"), None);
    }
}
