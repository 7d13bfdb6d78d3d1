//! User path normalization: what a file-manager path means inside a volume.
//!
//! `/` (or the empty string) is the volume root; `a/b`, `/a/b` and `./a//b/` are the
//! same path. `..` pops one component and is refused once it would leave the root;
//! backslashes and NUL bytes are refused outright. The result is a relative path of
//! plain components: it never starts with `/` and never contains `.` or `..`, so it is
//! safe to hand to the capability handle (which would refuse an escape anyway).

use std::path::PathBuf;

use super::FileError;

/// The longest user path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// A normalized path inside a volume: plain components, possibly none (the root).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelPath(Vec<String>);

impl RelPath {
    /// Normalizes a user path (see the module doc).
    ///
    /// # Errors
    /// [`FileError::BadPath`] for NUL, backslash, an over-long path or a `..` leaving
    /// the root.
    pub fn parse(user: &str) -> Result<Self, FileError> {
        if user.len() > MAX_PATH_BYTES {
            return Err(FileError::BadPath("path is too long".into()));
        }
        if user.contains('\0') {
            return Err(FileError::BadPath("path contains a NUL byte".into()));
        }
        if user.contains('\\') {
            return Err(FileError::BadPath("path contains a backslash".into()));
        }
        let mut parts: Vec<String> = Vec::new();
        for part in user.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(FileError::BadPath("path leaves the server root".into()));
                    }
                }
                p => {
                    if p.len() > 255 {
                        return Err(FileError::BadPath("a path component is too long".into()));
                    }
                    parts.push(p.to_owned());
                }
            }
        }
        Ok(Self(parts))
    }

    /// Whether this is the volume root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path relative to the root, `.` for the root itself.
    #[must_use]
    pub fn as_path(&self) -> PathBuf {
        if self.0.is_empty() {
            PathBuf::from(".")
        } else {
            self.0.iter().collect()
        }
    }

    /// The parent path and the last component; `None` for the root.
    #[must_use]
    pub fn split_last(&self) -> Option<(Self, &str)> {
        let (last, rest) = self.0.split_last()?;
        Some((Self(rest.to_vec()), last.as_str()))
    }

    /// The last component; `None` for the root.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// This path with `name` appended (`name` must be one plain component).
    #[must_use]
    pub fn join(&self, name: &str) -> Self {
        let mut v = self.0.clone();
        v.push(name.to_owned());
        Self(v)
    }

    /// Whether `self` is `other` or inside it.
    #[must_use]
    pub fn starts_with(&self, other: &Self) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// The components.
    #[must_use]
    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The user-facing form: `/a/b`, `/` for the root.
    #[must_use]
    pub fn display(&self) -> String {
        format!("/{}", self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes() {
        assert!(RelPath::parse("/").unwrap().is_root());
        assert!(RelPath::parse("").unwrap().is_root());
        assert_eq!(RelPath::parse("./a//b/").unwrap().display(), "/a/b");
        assert_eq!(RelPath::parse("/a/../b").unwrap().display(), "/b");
        assert!(RelPath::parse("/..").is_err());
        assert!(RelPath::parse("a/../../etc").is_err());
        assert!(RelPath::parse("a\\b").is_err());
        assert!(RelPath::parse("a\0b").is_err());
        assert_eq!(
            RelPath::parse("/etc/passwd").unwrap().display(),
            "/etc/passwd"
        );
        // Percent-encoding is the HTTP layer's business: here it is a literal name.
        assert_eq!(RelPath::parse("%2e%2e").unwrap().display(), "/%2e%2e");
    }

    proptest! {
        #[test]
        fn never_leaves_the_root(s in "[a-z./\\\\%\\x00]{0,40}") {
            if let Ok(p) = RelPath::parse(&s) {
                let path = p.as_path();
                prop_assert!(path.is_relative());
                for c in path.components() {
                    prop_assert!(matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    ));
                }
            }
        }

        #[test]
        fn any_string_resolves_inside(s in ".{0,80}") {
            if let Ok(p) = RelPath::parse(&s) {
                prop_assert!(!p.as_path().has_root());
                prop_assert!(p.components().iter().all(|c| c != ".." && c != "." && !c.is_empty() && !c.contains('/')));
            }
        }
    }
}
