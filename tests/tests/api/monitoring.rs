//! Health for operators: `/metrics` behind its optional token, the panel's health
//! metrics moving with what they count, and the monitoring files `docs/` ships (the
//! alerting rules through the real `promtool`, the rules' and the Grafana dashboard's
//! queries against what a live panel exports).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::integrations::deliver::{self, Notification};
use shardlyn_tests::{TestApp, both_engines, spawn_app, spawn_app_with};

const TOKEN: &str = "scrape-token-0123456789abcdef";

/// The monitoring files, from the repository root.
fn monitoring_file(name: &str) -> std::path::PathBuf {
    shardlyn_tests::crate_path("../docs/operations/monitoring").join(name)
}

/// The value of the sample `series` (a name, or a name with its labels as the panel
/// writes them) in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

/// `GET /metrics` with no token, 200.
async fn scrape(app: &TestApp) -> String {
    app.get("/metrics", None).await.expect(200).text
}

/// Scrapes until `series` reads `want`.
///
/// # Panics
/// After 20 s, showing the last exposition.
async fn scrape_until(app: &TestApp, series: &str, want: f64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(app).await;
        if sample(&text, series) == Some(want) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never read {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_engines! {
    async fn metrics_token_guards_the_scrape(engine) {
        let app = spawn_app_with(engine, |c| {
            c.metrics.token = shardlyn_panel::config::Secret(TOKEN.into());
        }).await;
        app.get("/health", None).await.expect(200);

        let r = app.get("/metrics", None).await.expect_error(401, "UNAUTHORIZED");
        assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer realm=\"metrics\""));
        assert!(!r.text.contains("shardlyn_"), "no metrics without the token: {}", r.text);
        app.get("/metrics", Some("scrape-token-0123456789abcdeX")).await.expect_error(401, "UNAUTHORIZED");
        app.get("/metrics", Some(&TOKEN[..TOKEN.len() - 1])).await.expect_error(401, "UNAUTHORIZED");
        // The token in another scheme is no bearer token.
        let basic = app.client.get(format!("{}/metrics", app.base))
            .header("authorization", format!("Basic {TOKEN}"))
            .send().await.expect("request");
        assert_eq!(basic.status(), 401);
        let body: Value = basic.json().await.expect("JSON envelope");
        assert_eq!(body["code"], "UNAUTHORIZED");

        let ok = app.get("/metrics", Some(TOKEN)).await.expect(200);
        assert!(ok.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
        let text = ok.text;
        let version = format!("shardlyn_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
        assert_eq!(sample(&text, &version), Some(1.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_database_up"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_tunnels_connected"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_nodes{state=\"online\"}"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_db_pool_max_connections"), Some(8.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_event_bus_healthy{backend=\"local\"}"), Some(1.0), "{text}");
        // The refused scrapes were counted like any request, as 401s.
        assert!(text.lines().any(|l| l.starts_with("shardlyn_http_requests_total")
            && l.contains("path=\"/metrics\"") && l.contains("status=\"401\"")), "{text}");
        app.stop().await;

        // Without a token the scrape is public, as before.
        let open = spawn_app(engine).await;
        let text = open.get("/metrics", None).await.expect(200).text;
        assert_eq!(sample(&text, "shardlyn_database_up"), Some(1.0), "{text}");
        let text = open.get("/metrics", Some("any-token-at-all-really")).await.expect(200).text;
        assert!(text.contains("shardlyn_build_info"), "{text}");
    }

    async fn tunnel_node_and_lease_metrics_follow_the_agent(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let first = scrape(&app).await;
        assert_eq!(sample(&first, "shardlyn_tunnels_connected"), Some(0.0), "{first}");
        assert_eq!(sample(&first, "shardlyn_tunnel_connections_total"), Some(0.0), "{first}");
        assert_eq!(sample(&first, "shardlyn_jobs_enabled"), Some(1.0), "{first}");

        let (config, dir) = shardlyn_tests::agent::register_node(&app, &admin.access).await;
        let node = config.node_id.clone();
        // Registered, not connected: an offline node.
        scrape_until(&app, "shardlyn_nodes{state=\"offline\"}", 1.0).await;
        let agent = shardlyn_tests::agent::LocalAgent::start(config, dir.path());
        shardlyn_tests::agent::wait_node(&app, &admin.access, &node, "online").await;
        scrape_until(&app, "shardlyn_tunnels_connected", 1.0).await;
        let text = scrape_until(&app, "shardlyn_nodes{state=\"online\"}", 1.0).await;
        assert_eq!(sample(&text, "shardlyn_nodes{state=\"offline\"}"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_tunnel_connections_total"), Some(1.0), "{text}");
        // The one replica takes the cluster's job lease.
        scrape_until(&app, "shardlyn_job_lease_held", 1.0).await;

        // Cordoned nodes are counted too.
        app.post(&format!("/v1/nodes/{node}/cordon"), Some(&admin.access), json!({})).await.expect(200);
        scrape_until(&app, "shardlyn_nodes_cordoned", 1.0).await;

        agent.stop().await;
        scrape_until(&app, "shardlyn_tunnels_connected", 0.0).await;
        let text = scrape_until(&app, "shardlyn_nodes{state=\"offline\"}", 1.0).await;
        assert_eq!(sample(&text, "shardlyn_nodes{state=\"online\"}"), Some(0.0), "{text}");
    }

    async fn job_and_delivery_metrics_count_the_queues(engine) {
        // Without jobs nothing takes the rows over or delivers: the test moves them.
        let app = spawn_app_with(engine, |c| c.jobs.enabled = false).await;
        let owner = app.register("ops@example.com").await;
        let org = app.create_org(&owner.access, "Ops").await;
        let text = scrape(&app).await;
        assert_eq!(sample(&text, "shardlyn_jobs_enabled"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_job_lease_held"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_deliveries_pending"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_deliveries_oldest_due_seconds"), Some(0.0), "{text}");
        for outcome in ["delivered", "retried", "failed"] {
            let series = format!("shardlyn_delivery_attempts_total{{outcome=\"{outcome}\"}}");
            assert_eq!(sample(&text, &series), Some(0.0), "{text}");
        }
        for kind in ["deployment", "pterodactyl_import", "provision_run", "migration"] {
            for state in ["running", "lapsed"] {
                let series = format!("shardlyn_jobs{{kind=\"{kind}\",state=\"{state}\"}}");
                assert_eq!(sample(&text, &series), Some(0.0), "{series}:\n{text}");
            }
        }

        // Deployments: one whose replica renews its lease, one left without a lease, one done.
        let now = shardlyn_panel::db::now_ms();
        app.state.clock.set_ms(now);
        for (id, status, lease) in [("d-live", "running", Some(now + 60_000)), ("d-left", "pending", None), ("d-done", "completed", None)] {
            sqlx::query(
                "INSERT INTO deployments (id, org_id, template, name, status, created_by, lease_owner, lease_until, created_at, updated_at) \
                 VALUES ($1, $2, 'minecraft', $3, $4, $5, 'another-replica', $6, $7, $8)",
            )
            .bind(id).bind(&org).bind(id).bind(status).bind(&owner.user_id).bind(lease).bind(now).bind(now)
            .execute(&app.state.db.pool).await.expect("insert deployment");
        }
        let text = scrape(&app).await;
        assert_eq!(sample(&text, "shardlyn_jobs{kind=\"deployment\",state=\"running\"}"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_jobs{kind=\"deployment\",state=\"lapsed\"}"), Some(1.0), "{text}");
        // Its replica dies: the live lease lapses a minute on.
        app.state.clock.advance(Duration::from_secs(61));
        let text = scrape(&app).await;
        assert_eq!(sample(&text, "shardlyn_jobs{kind=\"deployment\",state=\"running\"}"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_jobs{kind=\"deployment\",state=\"lapsed\"}"), Some(2.0), "{text}");

        // Notifications to a receiver that refuses them: queued, waiting, then given up.
        let receiver = refusing_receiver().await;
        let hook = app.post("/v1/integrations", Some(&owner.access), json!({
            "organization_id": org, "name": "Hook", "type": "webhook", "config": {"url": format!("{receiver}/hook")},
        })).await.expect(201).body;
        let hook = hook["id"].as_str().expect("id").to_owned();
        for key in ["a:firing", "b:firing"] {
            assert!(deliver::enqueue(&app.state, &hook, &note(key)).await.expect("enqueue"));
        }
        let text = scrape(&app).await;
        assert_eq!(sample(&text, "shardlyn_deliveries_pending"), Some(2.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_deliveries_oldest_due_seconds"), Some(0.0), "{text}");
        app.state.clock.advance(Duration::from_secs(90));
        let text = scrape(&app).await;
        assert_eq!(sample(&text, "shardlyn_deliveries_oldest_due_seconds"), Some(90.0), "{text}");

        deliver::poll_once(&app.state).await.expect("one pass of the queue");
        let text = scrape(&app).await;
        assert_eq!(sample(&text, "shardlyn_deliveries_pending"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_deliveries_oldest_due_seconds"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_delivery_attempts_total{outcome=\"failed\"}"), Some(2.0), "{text}");
        assert_eq!(sample(&text, "shardlyn_delivery_attempts_total{outcome=\"delivered\"}"), Some(0.0), "{text}");
    }

    async fn rules_and_dashboard_name_only_exported_metrics(engine) {
        let app = spawn_app(engine).await;
        // Activity, so every family has samples: requests (latency buckets included).
        let s = app.register("watcher@example.com").await;
        app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        let text = scrape(&app).await;
        let exported = exported_series(&text);
        assert!(exported.contains("shardlyn_http_request_duration_seconds_bucket"), "{text}");

        let mut named = BTreeSet::new();
        let rules = std::fs::read_to_string(monitoring_file("rules.yml")).expect("rules.yml");
        let exprs = rule_exprs(&rules);
        assert_eq!(exprs.len(), rules.matches("- alert:").count(), "one single-line expr per alert");
        for expr in &exprs {
            named.extend(metric_names(expr));
        }
        let dashboard: Value = serde_json::from_str(
            &std::fs::read_to_string(monitoring_file("grafana-dashboard.json")).expect("dashboard"),
        ).expect("the dashboard is JSON");
        let queries = dashboard_queries(&dashboard);
        assert!(queries.len() >= 20, "{queries:#?}");
        for query in &queries {
            named.extend(metric_names(query));
        }
        // Every family of the panel's health is watched somewhere.
        for family in ["shardlyn_tunnels_connected", "shardlyn_nodes", "shardlyn_jobs", "shardlyn_deliveries_pending",
            "shardlyn_delivery_attempts_total", "shardlyn_db_pool_connections", "shardlyn_http_requests_total",
            "shardlyn_http_request_duration_seconds_bucket", "shardlyn_job_lease_held", "shardlyn_database_up"] {
            assert!(named.contains(family), "{family} is in no rule nor panel: {named:?}");
        }
        let unknown: Vec<&String> = named
            .iter()
            .filter(|n| !exported.contains(n.as_str()) && !PROMETHEUS_OWN.contains(&n.as_str()))
            .collect();
        assert!(unknown.is_empty(), "named but not exported: {unknown:?}\nexported: {exported:?}");
    }
}

/// Series Prometheus makes itself, not the panel.
const PROMETHEUS_OWN: &[&str] = &["up"];

/// A receiver answering every request 404 (not retried: given up at once).
async fn refusing_receiver() -> String {
    let app = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no such hook") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn note(key: &str) -> Notification {
    Notification {
        key: key.into(),
        title: "Node offline".into(),
        text: "node-1 stopped answering".into(),
        severity: "warn".into(),
        link: None,
        fields: Vec::new(),
    }
}

/// The names of the samples in an exposition (`_total`, `_bucket`, `_info`... as
/// Prometheus stores them).
fn exported_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The `expr:` of each rule (single-line, see the assertion that counts them).
fn rule_exprs(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .map(|e| e.trim().to_owned())
        .collect()
}

/// Every query of a Grafana dashboard: its panels' (and rows' panels') targets and its
/// query variables.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str());
            out.extend(query.map(str::to_owned));
        }
    }
    out
}

/// PromQL's keywords, aggregation operators (`sum by (le) (...)` puts a clause between
/// the operator and its parenthesis) and modifiers, which look like names.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

/// The metric names a PromQL query (or a Grafana `label_values(...)` query) reads:
/// what is left once strings, label matchers, ranges, grouping clauses, function
/// calls, numbers and keywords are taken out.
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut q = query.trim().to_owned();
    // Grafana's label_values(metric{...}, label): the last argument is a label.
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        q = inner.rsplit_once(',').map_or(inner, |(m, _)| m).to_owned();
    }
    let q = strip_between(&strip_between(&strip_strings(&q), '{', '}'), '[', ']');
    let chars: Vec<char> = q.chars().collect();
    let mut names = BTreeSet::new();
    let mut skip_group = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&word.as_str())
            {
                // Its parenthesised label list names labels, not metrics.
                skip_group = next == Some(&'(');
            } else if word == "offset" {
                // `offset 15m`: the duration follows.
                while i < chars.len() && chars[i].is_whitespace() {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else if next != Some(&'(')
                && !KEYWORDS.contains(&word.as_str())
                && !word.starts_with('$')
            {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number (0.99, 1e3, 2.5).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '$' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
        } else if c == '(' && skip_group {
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_group = false;
            i += 1;
        } else {
            i += 1;
        }
    }
    names
}

/// `s` without its double- and single-quoted strings.
fn strip_strings(s: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

/// `s` without what lies between `open` and `close` (strings already taken out).
fn strip_between(s: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// The extractor itself: it finds names where they are and nothing else, so a query
/// naming a metric the panel does not export is caught.
#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |q: &str| metric_names(q).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (job, le) (rate(shardlyn_http_request_duration_seconds_bucket{path!~"/v1/(a|b)", job=~"$job"}[5m]))"#
        ),
        ["shardlyn_http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum by (job) (shardlyn_job_lease_held) == 0 and on (job) sum by (job) (shardlyn_jobs_enabled) > 0"
        ),
        ["shardlyn_job_lease_held", "shardlyn_jobs_enabled"]
    );
    assert_eq!(
        names("sum(shardlyn_tunnels_connected) < sum(shardlyn_tunnels_connected offset 15m)"),
        ["shardlyn_tunnels_connected"]
    );
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum by (le) (rate(shardlyn_nope_seconds_bucket[$__rate_interval]))) > 2.5e0"
        ),
        ["shardlyn_nope_seconds_bucket"]
    );
    assert_eq!(
        names("time() - max(shardlyn_start_time_seconds)"),
        ["shardlyn_start_time_seconds"]
    );
    assert_eq!(
        names(r#"label_values(shardlyn_build_info{job=~"$job"}, instance)"#),
        ["shardlyn_build_info"]
    );
    assert_eq!(names(r#"up{job="shardlyn"} == 0"#), ["up"]);
    assert_eq!(names("absent(up)"), ["up"]);
    assert_eq!(
        names("max by (job) (shardlyn_nodes) > bool 0 unless count without (x) (shardlyn_jobs)"),
        ["shardlyn_jobs", "shardlyn_nodes"]
    );
    assert_eq!(
        names(
            "sum without (state) (shardlyn_db_pool_connections) / ignoring (x) shardlyn_db_pool_max_connections"
        ),
        [
            "shardlyn_db_pool_connections",
            "shardlyn_db_pool_max_connections"
        ]
    );
}

/// The shipped rules are valid, and their unit tests (each alert firing and not) pass,
/// with the real `promtool` (Debian's `prometheus` package, see `scripts/dev-services`).
#[test]
fn promtool_checks_and_tests_the_shipped_rules() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(monitoring_file(""))
            .output()
            .unwrap_or_else(|e| panic!("promtool (install it with scripts/dev-services): {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
        text
    };
    let checked = run(&["check", "rules", "rules.yml"]);
    let rules = std::fs::read_to_string(monitoring_file("rules.yml")).expect("rules.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert: "))
        .collect();
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{checked}"
    );
    run(&["test", "rules", "rules.test.yml"]);

    // Each alert is tested firing and not firing.
    let tests = std::fs::read_to_string(monitoring_file("rules.test.yml")).expect("rules.test.yml");
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for alert in alerts {
        let cases: Vec<&str> = lines
            .windows(2)
            .filter(|w| w[0] == format!("alertname: {alert}"))
            .map(|w| w[1])
            .collect();
        assert!(
            cases.contains(&"exp_alerts: []"),
            "{alert} is never tested not firing"
        );
        assert!(
            cases.contains(&"exp_alerts:"),
            "{alert} is never tested firing"
        );
    }
}
