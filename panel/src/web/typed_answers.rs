//! A check over the pages' own source (embedded at compile time): pages read the API's
//! answers as the API's response types (`WebState::fetch::<T>`, `kit::read::<T>`), never
//! as `serde_json::Value` picked apart by key. A page that goes back to `value["field"]`
//! or asks for an answer as `Value` fails this test with the file and the expression.
//!
//! Test code (after `#[cfg(test)]`) is not checked: tests build sample JSON freely.

/// Every page module, by file name.
const PAGES: &[(&str, &str)] = &[
    ("access_pages.rs", include_str!("access_pages.rs")),
    ("account_pages.rs", include_str!("account_pages.rs")),
    ("admin_pages.rs", include_str!("admin_pages.rs")),
    ("admin_ssh_pages.rs", include_str!("admin_ssh_pages.rs")),
    ("alert_pages.rs", include_str!("alert_pages.rs")),
    ("api.rs", include_str!("api.rs")),
    ("auth_pages.rs", include_str!("auth_pages.rs")),
    (
        "billing_admin_pages.rs",
        include_str!("billing_admin_pages.rs"),
    ),
    ("billing_answers.rs", include_str!("billing_answers.rs")),
    ("billing_pages.rs", include_str!("billing_pages.rs")),
    ("credential_pages.rs", include_str!("credential_pages.rs")),
    ("deploy_pages.rs", include_str!("deploy_pages.rs")),
    ("dns_pages.rs", include_str!("dns_pages.rs")),
    ("instance_pages.rs", include_str!("instance_pages.rs")),
    ("integration_pages.rs", include_str!("integration_pages.rs")),
    ("kit.rs", include_str!("kit.rs")),
    ("maintenance_pages.rs", include_str!("maintenance_pages.rs")),
    ("node_cloud_pages.rs", include_str!("node_cloud_pages.rs")),
    ("node_pages.rs", include_str!("node_pages.rs")),
    ("org_pages.rs", include_str!("org_pages.rs")),
    ("pages.rs", include_str!("pages.rs")),
    ("provision_pages.rs", include_str!("provision_pages.rs")),
    ("pterodactyl_pages.rs", include_str!("pterodactyl_pages.rs")),
    ("rule_pages.rs", include_str!("rule_pages.rs")),
    ("shell_pages.rs", include_str!("shell_pages.rs")),
    ("ssh_pages.rs", include_str!("ssh_pages.rs")),
    ("verify_pages.rs", include_str!("verify_pages.rs")),
    ("view.rs", include_str!("view.rs")),
    ("workload_pages.rs", include_str!("workload_pages.rs")),
];

/// Reads by key that are not API answers (file, indexed name, key): the workload page
/// outlines an egg the user pasted (and the API refused), whatever its shape.
const ALLOWED: &[(&str, &str, &str)] = &[
    ("workload_pages.rs", "v", "name"),
    ("workload_pages.rs", "v", "env_variable"),
];

/// Ways to ask for an answer untyped.
const UNTYPED: &[&str] = &[
    "WebResult<Value>",
    "WebResult<serde_json::Value>",
    "WebResult<Vec<Value>>",
    "fetch::<Value",
    "fetch::<serde_json::Value",
    "read::<Value",
    "read::<serde_json::Value",
    "write::<Value",
    "write::<serde_json::Value",
    ": Value =",
    ": serde_json::Value =",
    ": Vec<Value> =",
    "Page<Value>",
];

/// The code of a module before its tests.
fn code(source: &str) -> &str {
    source
        .find("#[cfg(test)]")
        .map_or(source, |end| &source[..end])
}

/// One `name["key"]` (a JSON value indexed by a literal key).
#[derive(Debug)]
struct Read<'a> {
    line: usize,
    /// The name indexed, empty after `]` or `)`.
    name: &'a str,
    key: &'a str,
}

/// Every read by key in `code`.
fn reads_by_key(code: &str) -> Vec<Read<'_>> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("[\"").map(|i| from + i) {
        from = at + 2;
        let indexes = at > 0 && (ident(bytes[at - 1]) || matches!(bytes[at - 1], b')' | b']'));
        let key_len = code[at + 2..].bytes().take_while(|b| ident(*b)).count();
        if !indexes || key_len == 0 || !code[at + 2 + key_len..].starts_with("\"]") {
            continue;
        }
        let start = code[..at]
            .bytes()
            .rposition(|b| !ident(b))
            .map_or(0, |i| i + 1);
        found.push(Read {
            line: code[..at].lines().count(),
            name: &code[start..at],
            key: &code[at + 2..at + 2 + key_len],
        });
    }
    found
}

/// What `file` does against the rule.
fn offences(file: &str, source: &str) -> Vec<String> {
    let code = code(source);
    let mut out: Vec<String> = reads_by_key(code)
        .into_iter()
        .filter(|r| !ALLOWED.contains(&(file, r.name, r.key)))
        .map(|r| {
            format!(
                "{file}:{}: reads `{}[\"{}\"]` by key",
                r.line, r.name, r.key
            )
        })
        .collect();
    out.extend(
        UNTYPED
            .iter()
            .filter(|p| code.contains(**p))
            .map(|p| format!("{file}: reads an answer untyped (`{p}`)")),
    );
    out
}

#[test]
fn pages_read_answers_as_the_api_types() {
    let found: Vec<String> = PAGES
        .iter()
        .flat_map(|(file, source)| offences(file, source))
        .collect();
    assert!(
        found.is_empty(),
        "pages read answers by key:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_reads_by_key() {
    let page = r#"
        let ok = answer["mfa_required"].as_bool();
        let page = &info["pagination"]["total"];
        let id = nodes[0]["id"].as_str();
        let fine = ["a", "b"];
        let answer: Value = kit::read(web, browser, user, "/v1/x").await?;
        #[cfg(test)]
        let ignored = sample["field"];
    "#;
    let found = offences("pages.rs", page);
    assert_eq!(
        found,
        [
            "pages.rs:2: reads `answer[\"mfa_required\"]` by key",
            "pages.rs:3: reads `info[\"pagination\"]` by key",
            "pages.rs:3: reads `[\"total\"]` by key",
            "pages.rs:4: reads `[\"id\"]` by key",
            "pages.rs: reads an answer untyped (`: Value =`)",
        ]
    );
    assert!(offences("workload_pages.rs", "let n = v[\"name\"];").is_empty());
}
