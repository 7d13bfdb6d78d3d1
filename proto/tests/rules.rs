//! Table tests for egg variable rules: parsing, Laravel semantics and error messages.

use proptest::prelude::*;
use shardlyn_proto::rules::{
    Rule, VALIDATION_ERROR_CODE, parse_rules, rules_to_string, validate, validate_named,
};

fn check(rules: &str, value: Option<&str>) -> Result<(), String> {
    let rules = parse_rules(rules).unwrap_or_else(|e| panic!("{rules}: {e}"));
    validate("SERVER_PORT", value, &rules).map_err(|e| e.rule)
}

/// `(rules, value, expected failing rule or "" for success)`.
const TABLE: &[(&str, Option<&str>, &str)] = &[
    // required / nullable / present
    ("required", Some("x"), ""),
    ("required", Some(""), "required"),
    ("required", Some("   "), "required"),
    ("required", None, "required"),
    ("nullable|string", Some(""), ""),
    ("nullable|string", None, ""),
    ("nullable|required|string", Some(""), "required"),
    ("string|max:20", None, ""),
    ("string|max:20", Some(""), "string"),
    ("present", Some(""), ""),
    ("present", None, "present"),
    ("nullable:string", Some(""), ""),
    // string / max / min / between / size on character counts
    ("required|string|max:5", Some("héllo"), ""),
    ("required|string|max:5", Some("hello!"), "max"),
    ("required|string|min:3", Some("ab"), "min"),
    ("required|string|between:3,5", Some("abcd"), ""),
    ("required|string|between:3,5", Some("abcdef"), "between"),
    ("required|between:1,10", Some("12345678901"), "between"),
    ("required|alpha_num|size:4", Some("ab12"), ""),
    ("required|alpha_num|size:4", Some("ab123"), "size"),
    ("max:30", Some("1234"), ""),
    // numeric sizes
    ("required|numeric|max:65535", Some("65535"), ""),
    ("required|numeric|max:65535", Some("65536"), "max"),
    ("required|integer|between:1,65535", Some("0"), "between"),
    ("required|numeric|between:0.1,64", Some("0.1"), ""),
    ("required|numeric|between:0.1,64", Some("0.05"), "between"),
    ("required|numeric|between:-1,255", Some("-1"), ""),
    ("required|int|max:64", Some("64"), ""),
    ("required|int|max:64", Some("65"), "max"),
    (
        "required|integer|max:76561202255233023",
        Some("76561202255233023"),
        "",
    ),
    (
        "required|integer|max:76561202255233023",
        Some("76561202255233024"),
        "max",
    ),
    ("required|integer|gt:0", Some("1"), ""),
    ("required|integer|gt:0", Some("0"), "gt"),
    ("nullable|integer|gt:0", Some(""), ""),
    ("required|string|integer|max:16", Some("16"), ""),
    ("required|string|integer|max:16", Some("17"), "max"),
    // numeric / integer / boolean
    ("required|numeric", Some("1e3"), ""),
    ("required|numeric", Some(" 1.5"), ""),
    ("required|numeric", Some("0x1A"), "numeric"),
    ("required|numeric", Some("abc"), "numeric"),
    ("required|integer", Some("-7"), ""),
    ("required|integer", Some("1.0"), "integer"),
    ("required|integer", Some("007"), "integer"),
    ("required|boolean", Some("1"), ""),
    ("required|boolean", Some("0"), ""),
    ("required|boolean", Some("true"), ""),
    ("required|boolean", Some("false"), ""),
    ("required|boolean", Some("yes"), "boolean"),
    ("boolean", Some(""), "boolean"),
    // digits_between / digits
    ("required|numeric|digits_between:1,3", Some("123"), ""),
    (
        "required|numeric|digits_between:1,3",
        Some("1234"),
        "digits_between",
    ),
    (
        "required|digits_between:17,18",
        Some("12345678901234567"),
        "",
    ),
    ("required|digits_between:1,5", Some("-12"), "digits_between"),
    ("required|digits_between:1,5", Some("1.5"), "digits_between"),
    ("digits:4", Some("0042"), ""),
    ("digits:4", Some("042"), "digits"),
    // in / not_in
    ("required|string|in:true,false", Some("true"), ""),
    ("required|string|in:true,false", Some("TRUE"), "in"),
    ("nullable|string|in:,beta", Some(""), ""),
    ("string|in:,beta", Some(""), "string"),
    ("in:,beta", Some(""), ""),
    (
        "required|string|in:/home/container",
        Some("/home/container"),
        "",
    ),
    (
        "required|string|in:vcrun2019 corefonts",
        Some("vcrun2019 corefonts"),
        "",
    ),
    ("required|string|in:gta:iii,gta:vc", Some("gta:vc"), ""),
    ("not_in:a,b", Some("a"), "not_in"),
    // regex
    (
        r"required|regex:/^([\w\d._-]+)(\.jar)$/",
        Some("server.jar"),
        "",
    ),
    (
        r"required|regex:/^([\w\d._-]+)(\.jar)$/",
        Some("server.zip"),
        "regex",
    ),
    (r"required|regex:/^(\w{1,20})$/", Some("abc"), ""),
    (r"required|regex:/^(\w{1,20})$/", Some("a b"), "regex"),
    (r"required|regex:/^[\w.-]*$/|max:64", Some("a.b-c"), ""),
    (r"required|regex:/^[\w.-]*$/|max:3", Some("abcd"), "max"),
    ("nullable|regex:([a-z-0-9]+$)", Some("abc-1"), ""),
    ("nullable|regex:([a-z-0-9]+$)", Some("ABC"), "regex"),
    (r"nullable|regex:/^([a-z0-9]{32} ?)*$/", Some(""), ""),
    (
        r"required|string|regex:/^(?:true)?(?:false)?\b/",
        Some("true"),
        "",
    ),
    ("required|regex:/^(open|closed)$/|max:6", Some("closed"), ""),
    (
        "required|regex:/^(open|closed)$/|max:6",
        Some("ajar"),
        "regex",
    ),
    ("required|regex:/^(open|closed)$/i", Some("OPEN"), ""),
    ("not_regex:/^x/", Some("xyz"), "not_regex"),
    // alpha_dash / alpha_num / alpha / url
    ("required|alpha_dash|between:1,30", Some("my_world-2"), ""),
    (
        "required|alpha_dash|between:1,30",
        Some("my world"),
        "alpha_dash",
    ),
    ("required|alpha_num|max:64", Some("abc123"), ""),
    ("required|alpha_num|max:64", Some("abc_123"), "alpha_num"),
    ("alpha", Some("abc"), ""),
    ("alpha", Some("ab1"), "alpha"),
    ("nullable|url", Some("https://example.com/a?b=c"), ""),
    ("nullable|url", Some("http://localhost:8080"), ""),
    ("nullable|url", Some("example.com"), "url"),
    ("nullable|url", Some("https://"), "url"),
    ("nullable|url", Some(""), ""),
];

#[test]
fn rule_table() {
    for (rules, value, expected) in TABLE {
        let got = check(rules, *value).err().unwrap_or_default();
        assert_eq!(got, *expected, "rules {rules:?} value {value:?}");
    }
}

#[test]
fn messages_name_the_variable_like_laravel() {
    let rules = parse_rules("required|integer|between:1,65535").expect("parses");
    let err = validate("SERVER_PORT", Some("70000"), &rules).expect_err("fails");
    assert_eq!(
        err.message,
        "The Server Port field must be between 1 and 65535."
    );
    assert_eq!(
        (err.field.as_str(), err.rule.as_str()),
        ("SERVER_PORT", "between")
    );
    assert_eq!(
        err.to_json(),
        serde_json::json!({
            "error": "The Server Port field must be between 1 and 65535.",
            "code": VALIDATION_ERROR_CODE,
            "field": "SERVER_PORT",
            "rule": "between",
        })
    );

    let cases = [
        (
            "required|string",
            None,
            "The Server Port field is required.",
        ),
        (
            "string|max:3",
            Some("abcd"),
            "The Server Port field must not be greater than 3 characters.",
        ),
        (
            "numeric|min:10",
            Some("5"),
            "The Server Port field must be at least 10.",
        ),
        ("in:a,b", Some("c"), "The selected Server Port is invalid."),
        (
            "regex:/^a$/",
            Some("b"),
            "The Server Port field format is invalid.",
        ),
        (
            "boolean",
            Some("x"),
            "The Server Port field must be true or false.",
        ),
        (
            "digits_between:1,3",
            Some("1234"),
            "The Server Port field must be between 1 and 3 digits.",
        ),
        (
            "url",
            Some("x"),
            "The Server Port field must be a valid URL.",
        ),
    ];
    for (rules, value, message) in cases {
        let rules = parse_rules(rules).expect("parses");
        let err = validate("SERVER_PORT", value, &rules).expect_err("fails");
        assert_eq!(err.message, message);
        assert_eq!(err.to_string(), message);
    }

    let rules = parse_rules("required").expect("parses");
    let err =
        validate_named("Server Jar File", "SERVER_JARFILE", Some(""), &rules).expect_err("fails");
    assert_eq!(err.message, "The Server Jar File field is required.");
    assert_eq!(err.field, "SERVER_JARFILE");
    let err = validate("srv_name", None, &rules).expect_err("fails");
    assert_eq!(err.message, "The srv_name field is required.");
}

#[test]
fn parser_handles_corpus_shapes() {
    let rules = parse_rules("required|string|").expect("trailing pipe");
    assert_eq!(rules, vec![Rule::Required, Rule::String]);
    let rules = parse_rules("nullable:string").expect("params on nullable are ignored");
    assert_eq!(rules, vec![Rule::Nullable]);
    assert_eq!(
        parse_rules("required|int").expect("int"),
        vec![Rule::Required, Rule::Integer]
    );
    let rules = parse_rules(r"required|regex:/^(a|b),(c)$/|in:x,y").expect("regex with | and ,");
    assert_eq!(rules.len(), 3);
    assert_eq!(
        rules_to_string(&rules),
        r"required|regex:/^(a|b),(c)$/|in:x,y"
    );
    assert!(matches!(&rules[2], Rule::In(v) if v == &["x", "y"]));
    assert_eq!(parse_rules("").expect("empty"), vec![]);
}

#[test]
fn unknown_and_malformed_rules_are_errors() {
    for (rules, segment) in [
        ("required|frobnicate", "frobnicate"),
        ("max:", "max:"),
        ("between:5", "between:5"),
        ("digits_between:1,x", "digits_between:1,x"),
        ("size:big", "size:big"),
        ("regex:/(?=a)/", "regex:/(?=a)/"),
        ("gt:other_field", "gt:other_field"),
    ] {
        let err = parse_rules(rules).expect_err(rules);
        assert_eq!(err.rule, segment, "{rules}");
    }
}

proptest! {
    #[test]
    fn rules_parser_never_panics(input in ".{0,80}") {
        if let Ok(rules) = parse_rules(&input) {
            let printed = rules_to_string(&rules);
            prop_assert_eq!(parse_rules(&printed).ok(), Some(rules.clone()));
            let _ = validate("V", Some(&input), &rules);
            let _ = validate("V", None, &rules);
        }
    }

    #[test]
    fn rule_like_strings_never_panic(input in "(required|nullable|string|max:[0-9]{1,3}|in:[a-z,]{0,6}|regex:[/(][a-z|^$]{0,6}[/)]?|between:[0-9.,-]{0,6}|[a-z_]{1,8})(\\|[a-z_:0-9,|/]{0,10}){0,4}", value in ".{0,20}") {
        if let Ok(rules) = parse_rules(&input) {
            let _ = validate("V", Some(&value), &rules);
            let printed = rules_to_string(&rules);
            prop_assert_eq!(parse_rules(&printed).ok(), Some(rules));
        }
    }
}
