//! The DNS pages (`/dns`, `/dns/zones/{credential}/{zone}`, `/dns/auto`, the server
//! page's Address box) against a real PowerDNS Authoritative server
//! (`shardlyn_tests::pdns::Pdns`: Debian's `pdns-server` on loopback, its HTTP API and
//! DNS), the records checked with real `dig` queries:
//!
//! - over plain HTTP on both engines: the navigation links to `/dns`; without a DNS
//!   credential `/dns` and `/dns/auto` link to `/credentials`; with one they list it
//!   (a Hetzner credential is not listed); the zone page carries its form; another
//!   user's credential, a credential that is not a DNS provider's and a malformed zone
//!   id are 404s;
//! - in a real headless Chromium: follow the zone from `/dns`, a refused content shown
//!   beside its field, an A record, an SRV record (four inputs) and an A record that
//!   follows a node created through the form and answered by PowerDNS, a name held by
//!   a record the panel did not make refused with `DNS_RECORD_CLASH` (nothing
//!   overwritten), the A record edited (content and TTL), the SRV record deleted from
//!   `/dns` after the confirmation, the auto-DNS settings saved (a refused TTL shown
//!   beside its field), and a server's Address box showing its name for players and
//!   taking a new subdomain.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use shardlyn_tests::pdns::Pdns;
use shardlyn_tests::{Engine, PASSWORD, TestApp, both_engines, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const ZONE: &str = "example.com";
const GIB: i64 = 1024 * 1024 * 1024;
/// How long PowerDNS may take to answer what the panel wrote (it answers from its
/// database without caches, so this is a bound, not a wait).
const RESOLVE: Duration = Duration::from_secs(15);

/// A PowerDNS credential for `pdns` in the caller's personal organization; its id.
async fn powerdns_credential(app: &TestApp, access: &str, pdns: &Pdns, name: &str) -> String {
    let r = app
        .post(
            "/v1/credentials",
            Some(access),
            json!({"name": name, "provider": "powerdns",
                   "config": {"api_url": pdns.api_url, "api_key": pdns.api_key}}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("credential id").to_owned()
}

fn has(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(html.contains(part), "{part} in {html}");
    }
}

/// `GET path` answering 200; its HTML.
async fn shown(app: &TestApp, jar: &str, path: &str) -> String {
    let (status, html) = page(app, jar, path).await;
    assert_eq!(status, 200, "{path}: {html}");
    html
}

both_engines! {
    async fn the_dns_pages_list_dns_credentials_and_refuse_others(engine) {
        let pdns = Pdns::start().await;
        pdns.create_zone(ZONE).await;
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let (jar, _) = sign_in(&app).await;

        // The navigation links here; with no DNS credential both pages say where to add one.
        let home = shown(&app, &jar, "/").await;
        has(&home, &[r#"href="/dns" id="nav-dns""#]);
        let html = shown(&app, &jar, "/dns").await;
        has(&html, &[r#"id="dns-no-credential""#, r#"href="/credentials""#, "/static/dns.js",
            r#"id="subnav-dns-auto""#, r#"aria-current="page">DNS<"#]);
        let html = shown(&app, &jar, "/dns/auto").await;
        has(&html, &[r#"id="dns-no-credential""#, r#"id="auto-form""#, "/static/dns_auto.js",
            "{server}.{zone}", r#"id="auto-type-SRV""#]);

        // A PowerDNS credential is listed with its provider; a Hetzner one is not.
        let cred = powerdns_credential(&app, &admin.access, &pdns, "PowerDNS main").await;
        app.post(
            "/v1/credentials",
            Some(&admin.access),
            json!({"name": "Hetzner servers", "provider": "hetzner",
                   "config": {"token": "hcloud-dns-page-0123456789abcdef"}}),
        )
        .await
        .expect(201);
        let hetzner = app.get("/v1/credentials?provider=hetzner", Some(&admin.access)).await.expect(200);
        let hetzner = hetzner.body["data"][0]["id"].as_str().expect("hetzner id").to_owned();
        let html = shown(&app, &jar, "/dns").await;
        has(&html, &[&format!(r#"data-credential="{cred}""#), "PowerDNS main", "PowerDNS"]);
        assert!(!html.contains("dns-no-credential"), "{html}");
        assert!(!html.contains("Hetzner servers"), "{html}");
        let html = shown(&app, &jar, "/dns/auto").await;
        has(&html, &[&format!(r#"<option value="{cred}">PowerDNS main (PowerDNS)</option>"#)]);
        assert!(!html.contains(&hetzner), "{html}");

        // The zone page: the credential, the zone and the record form.
        let html = shown(&app, &jar, &format!("/dns/zones/{cred}/{ZONE}.")).await;
        has(&html, &[
            &format!(r#"data-credential="{cred}" data-zone="{ZONE}.""#),
            r#"id="record-form""#,
            r#"<label for="rec-name">Name</label>"#,
            r#"<option value="SRV">"#,
            r#"id="rec-srv-priority""#,
            r#"id="rec-srv-weight""#,
            r#"id="rec-srv-port""#,
            r#"id="rec-srv-target""#,
            r#"id="rec-node""#,
            r#"id="ask""#,
        ]);

        // What is not ours, or not a zone, is a 404.
        let other = app.register("other@example.com").await;
        let theirs = powerdns_credential(&app, &other.access, &pdns, "Theirs").await;
        for path in [
            format!("/dns/zones/{theirs}/{ZONE}."),
            format!("/dns/zones/{hetzner}/{ZONE}."),
            format!("/dns/zones/{cred}/a%20b"),
            format!("/dns/zones/no%2Fsuch/{ZONE}."),
        ] {
            let (status, html) = page(&app, &jar, &path).await;
            assert_eq!(status, 404, "{path}: {html}");
        }
        let (status, html) = page(&app, &jar, "/dns").await;
        assert_eq!(status, 200);
        assert!(!html.contains("Theirs"), "{html}");
    }
}

/// Signs in through the login form.
async fn browser_sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", "admin@example.com").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Waits until `dig name rtype` at `pdns` answers `want` (sorted lines).
async fn resolves(pdns: &Pdns, name: &str, rtype: &str, want: &[&str]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + RESOLVE;
    loop {
        let got = pdns.dig(name, rtype);
        if got == want {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("dig {name} {rtype} answers {got:?}, not {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The message shown right after the control `css`.
async fn field_error(c: &Client, css: &str, needle: &str) -> anyhow::Result<String> {
    wait_text(
        c,
        &format!("{css} + .field-error"),
        needle,
        Duration::from_secs(20),
    )
    .await
    .with_context(|| format!("the error beside {css}"))
}

/// Controls of the page without a label.
async fn unlabeled(c: &Client) -> anyhow::Result<i64> {
    let n = c
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length;",
            vec![],
        )
        .await?;
    Ok(n.as_i64().unwrap_or(-1))
}

/// The value of `attr` of `css`.
async fn attr(c: &Client, css: &str, attr: &str) -> anyhow::Result<String> {
    find(c, css)
        .await?
        .attr(attr)
        .await?
        .with_context(|| format!("{css} has no {attr}"))
}

/// Waits until no element matches `css`.
async fn gone(c: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while c.find(Locator::Css(css)).await.is_ok() {
        if tokio::time::Instant::now() >= deadline {
            bail!("{css} is still there");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Fills the record form of the zone page and sends it.
async fn add_record(c: &Client, rtype: &str, name: &str, content: &str) -> anyhow::Result<()> {
    find(c, "#rec-type").await?.select_by_value(rtype).await?;
    fill(c, "#rec-name", name).await?;
    if rtype != "SRV" {
        fill(c, "#rec-content", content).await?;
    }
    click(c, "#rec-submit").await
}

/// The row of the zone page for `name` and `rtype`.
fn zone_row(name: &str, rtype: &str) -> String {
    format!("tr.zone-record[data-name='{name}'][data-type='{rtype}']")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_records_and_auto_dns_in_the_browser() {
    let pdns = Pdns::start().await;
    pdns.create_zone(ZONE).await;
    // A record the panel did not make: never overwritten.
    pdns.replace(
        ZONE,
        &[("taken.example.com", "A", 300, vec!["198.51.100.1".into()])],
    )
    .await;
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let access = admin.access.clone();
    let cred = powerdns_credential(&app, &access, &pdns, "PowerDNS main").await;
    let node = app.register_node(&access, None, "node-a").await;
    app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
    app.put(
        &format!("/v1/nodes/{node}"),
        Some(&access),
        json!({"public_ipv4": "203.0.113.10"}),
    )
    .await
    .expect(200);
    let base = app.base.clone();
    let (app_ref, pdns_ref) = (&app, &pdns);
    Chrome::start(false)
        .await
        .run("dns_records_and_auto_dns_in_the_browser", |c| async move {
            browser_sign_in(&c, &base).await?;
            click(&c, "#nav-dns").await?;
            wait_path(&c, "/dns").await?;
            // The zones come from PowerDNS; the zone's link leads to its page.
            let link = format!("#credential-{cred} .zone-link[data-zone='{ZONE}.']");
            wait_text(&c, &link, ZONE, Duration::from_secs(20)).await?;
            wait_text(
                &c,
                "#records-status",
                "no record yet",
                Duration::from_secs(20),
            )
            .await?;
            click(&c, &link).await?;
            wait_path(&c, &format!("/dns/zones/{cred}/{ZONE}.")).await?;
            find(&c, "#dns-zone[data-script='on']").await?;
            wait_text(&c, "#zone-name", ZONE, Duration::from_secs(10)).await?;
            // PowerDNS's own records are listed, not the panel's.
            let soa = attr(&c, &zone_row(ZONE, "SOA"), "data-managed").await?;
            ensure!(soa == "false", "the SOA is not managed: {soa}");
            ensure!(
                unlabeled(&c).await? == 0,
                "every control of the zone page has a label"
            );

            // A refused content: the API's message beside the field, nothing written.
            add_record(&c, "A", "mc", "not-an-address").await?;
            field_error(&c, "#rec-content", "").await?;
            ensure!(
                pdns_ref.dig("mc.example.com", "A").is_empty(),
                "nothing written"
            );

            // An A record.
            fill(&c, "#rec-content", "203.0.113.7").await?;
            click(&c, "#rec-submit").await?;
            let a_row = zone_row("mc.example.com", "A");
            wait_text(
                &c,
                &format!("{a_row} .managed-badge"),
                "managed",
                Duration::from_secs(20),
            )
            .await?;
            resolves(pdns_ref, "mc.example.com", "A", &["203.0.113.7"]).await?;
            let a_id = attr(&c, &a_row, "data-record").await?;

            // An SRV record from its four inputs.
            find(&c, "#rec-type").await?.select_by_value("SRV").await?;
            ensure!(
                !find(&c, "#rec-content").await?.is_displayed().await?,
                "the single content input is hidden for SRV"
            );
            fill(&c, "#rec-name", "_minecraft._tcp.mc").await?;
            fill(&c, "#rec-srv-priority", "0").await?;
            fill(&c, "#rec-srv-weight", "5").await?;
            fill(&c, "#rec-srv-port", "25565").await?;
            fill(&c, "#rec-srv-target", "mc.example.com").await?;
            click(&c, "#rec-submit").await?;
            let srv_row = zone_row("_minecraft._tcp.mc.example.com", "SRV");
            wait_text(
                &c,
                &format!("{srv_row} .managed-badge"),
                "managed",
                Duration::from_secs(20),
            )
            .await?;
            resolves(
                pdns_ref,
                "_minecraft._tcp.mc.example.com",
                "SRV",
                &["0 5 25565 mc.example.com."],
            )
            .await?;
            let srv_id = attr(&c, &srv_row, "data-record").await?;

            // An A record that follows the node's public address: no content typed.
            find(&c, "#rec-type").await?.select_by_value("A").await?;
            fill(&c, "#rec-name", "node").await?;
            fill(&c, "#rec-content", "").await?;
            find(&c, "#rec-node").await?.select_by_value(&node).await?;
            click(&c, "#rec-submit").await?;
            find(
                &c,
                &format!("{} .managed-badge", zone_row("node.example.com", "A")),
            )
            .await?;
            resolves(pdns_ref, "node.example.com", "A", &["203.0.113.10"]).await?;
            find(&c, "#rec-node").await?.select_by_value("").await?;

            // A name someone else's record holds: refused with its message, kept as it was.
            add_record(&c, "A", "taken", "203.0.113.9").await?;
            wait_text(
                &c,
                "#record-error",
                "DNS_RECORD_CLASH",
                Duration::from_secs(20),
            )
            .await?;
            ensure!(
                pdns_ref.dig("taken.example.com", "A") == ["198.51.100.1"],
                "the foreign record is untouched"
            );
            let taken = attr(&c, &zone_row("taken.example.com", "A"), "data-managed").await?;
            ensure!(taken == "false", "the foreign record is not marked managed");

            // Edit the A record: new content and TTL.
            click(&c, &format!("#edit-{a_id}")).await?;
            wait_text(
                &c,
                "#record-form-title",
                "Edit A mc.example.com",
                Duration::from_secs(10),
            )
            .await?;
            ensure!(
                find(&c, "#rec-name").await?.prop("value").await?.as_deref() == Some("mc"),
                "the name is shown relative to the zone"
            );
            fill(&c, "#rec-content", "203.0.113.8").await?;
            fill(&c, "#rec-ttl", "600").await?;
            click(&c, "#rec-submit").await?;
            wait_text(
                &c,
                "#record-status",
                "Saved A mc.example.com",
                Duration::from_secs(20),
            )
            .await?;
            resolves(pdns_ref, "mc.example.com", "A", &["203.0.113.8"]).await?;
            wait_text(
                &c,
                &format!("{a_row} td:nth-child(3)"),
                "600",
                Duration::from_secs(10),
            )
            .await?;
            let sets = pdns_ref.rrsets(ZONE).await;
            let ttl = sets
                .as_array()
                .and_then(|s| {
                    s.iter()
                        .find(|r| r["name"] == "mc.example.com." && r["type"] == "A")
                })
                .map(|r| r["ttl"].clone());
            ensure!(ttl == Some(json!(600)), "PowerDNS holds TTL 600: {ttl:?}");

            // /dns lists what the panel manages, with its status; delete the SRV there.
            c.goto(&format!("{base}/dns")).await?;
            wait_text(
                &c,
                &format!("#record-{a_id}"),
                "synced",
                Duration::from_secs(20),
            )
            .await?;
            wait_text(
                &c,
                &format!("#record-{a_id} .origin"),
                "manual",
                Duration::from_secs(5),
            )
            .await?;
            find(&c, &format!("#record-{srv_id}")).await?;
            click(&c, &format!("#delete-{srv_id}")).await?;
            wait_text(&c, "#ask-title", "Delete SRV", Duration::from_secs(10)).await?;
            click(&c, "#ask-ok").await?;
            gone(&c, &format!("#record-{srv_id}")).await?;
            resolves(pdns_ref, "_minecraft._tcp.mc.example.com", "SRV", &[]).await?;
            find(&c, &format!("#record-{a_id}")).await?;
            // The Edit link opens the record in the zone page's form.
            click(&c, &format!("#record-{a_id} a.edit")).await?;
            wait_text(
                &c,
                "#record-form-title",
                "Edit A mc.example.com",
                Duration::from_secs(20),
            )
            .await?;

            // Automatic DNS: a refused TTL beside its field, then saved.
            c.goto(&format!("{base}/dns/auto")).await?;
            find(&c, "#auto-form[data-script='on']").await?;
            ensure!(
                unlabeled(&c).await? == 0,
                "every control of the auto page has a label"
            );
            if !find(&c, "#auto-enabled").await?.is_selected().await? {
                click(&c, "#auto-enabled").await?;
            }
            find(&c, "#auto-credential")
                .await?
                .select_by_value(&cred)
                .await?;
            let zone_option = format!("#auto-zone option[value='{ZONE}.']");
            find(&c, &zone_option).await?;
            find(&c, "#auto-zone")
                .await?
                .select_by_value(&format!("{ZONE}."))
                .await?;
            fill(&c, "#auto-ttl", "5").await?;
            click(&c, "#auto-save").await?;
            field_error(&c, "#auto-ttl", "").await?;
            fill(&c, "#auto-ttl", "120").await?;
            click(&c, "#auto-save").await?;
            wait_text(&c, "#auto-status", "Saved", Duration::from_secs(20)).await?;
            wait_text(&c, "#auto-reserved", "www", Duration::from_secs(5)).await?;
            let config = app_ref
                .get("/v1/dns/auto-config", Some(&access))
                .await
                .expect(200)
                .body;
            ensure!(config["enabled"] == true, "{config}");
            ensure!(config["credential_id"] == cred.as_str(), "{config}");
            ensure!(config["zone_name"] == ZONE, "{config}");
            ensure!(config["ttl"] == 120, "{config}");
            ensure!(config["name_pattern"] == "{server}.{zone}", "{config}");

            // A Minecraft server made now gets its name; its page says what players type.
            let (server, port) = minecraft_server(app_ref, &access, &node, "lobby-1").await;
            c.goto(&format!("{base}/instances/{server}")).await?;
            find(&c, "#dns-address[data-script='on']").await?;
            wait_text(
                &c,
                "#dns-player-address",
                "lobby-1.example.com",
                Duration::from_secs(20),
            )
            .await?;
            wait_text(
                &c,
                "#dns-address-names",
                "SRV record",
                Duration::from_secs(5),
            )
            .await?;
            resolves(pdns_ref, "lobby-1.example.com", "A", &["203.0.113.10"]).await?;
            let srv = pdns_ref.dig("_minecraft._tcp.lobby-1.example.com", "SRV");
            ensure!(
                srv.len() == 1 && srv[0].ends_with(&format!(" {port} lobby-1.example.com.")),
                "the server's SRV record carries its port {port}: {srv:?}"
            );
            // A reserved subdomain is refused beside the field; a free one is taken.
            fill(&c, "#dns-subdomain", "www").await?;
            click(&c, "#dns-subdomain-save").await?;
            field_error(&c, "#dns-subdomain", "").await?;
            fill(&c, "#dns-subdomain", "hub").await?;
            click(&c, "#dns-subdomain-save").await?;
            wait_text(
                &c,
                "#dns-subdomain-status",
                "Saved",
                Duration::from_secs(20),
            )
            .await?;
            wait_text(
                &c,
                "#dns-player-address",
                "hub.example.com",
                Duration::from_secs(20),
            )
            .await?;
            resolves(pdns_ref, "hub.example.com", "A", &["203.0.113.10"]).await?;
            // Another server may not take a subdomain in use.
            let (other, _) = minecraft_server(app_ref, &access, &node, "lobby-2").await;
            c.goto(&format!("{base}/instances/{other}")).await?;
            find(&c, "#dns-address[data-script='on']").await?;
            fill(&c, "#dns-subdomain", "hub").await?;
            click(&c, "#dns-subdomain-save").await?;
            field_error(&c, "#dns-subdomain", "").await?;
            let taken = app_ref
                .put(
                    &format!("/v1/instances/{other}"),
                    Some(&access),
                    json!({"dns_subdomain": "hub"}),
                )
                .await;
            ensure!(
                taken.status == 409 && taken.body["code"] == "DNS_SUBDOMAIN_TAKEN",
                "the API refuses it the same way: {} {}",
                taken.status,
                taken.body
            );
            ensure!(
                pdns_ref.dig("hub.example.com", "A") == ["203.0.113.10"],
                "hub still names the first server only"
            );
            Ok(())
        })
        .await;
}

/// A server `name` of the Minecraft (Paper) template, whose workload declares the SRV
/// service `_minecraft._tcp`, placed on `node`; its id and primary port.
async fn minecraft_server(app: &TestApp, access: &str, node: &str, name: &str) -> (String, u64) {
    let workload = app
        .post(
            "/v1/workloads/from-template",
            Some(access),
            json!({"template": "minecraft-paper"}),
        )
        .await
        .expect(201);
    let workload: Value = workload.body;
    assert_eq!(workload["dns_srv_service"], "_minecraft._tcp", "{workload}");
    let r = app
        .post(
            "/v1/instances",
            Some(access),
            json!({"name": name, "workload_id": workload["id"], "node_id": node,
                   "limits": {"memory_mb": 1024, "disk_mb": 1024}}),
        )
        .await
        .expect(201);
    let port = r.body["allocations"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["primary"] == true))
        .and_then(|a| a["port"].as_u64())
        .unwrap_or_else(|| panic!("a primary port: {}", r.body));
    (r.body["id"].as_str().expect("instance id").to_owned(), port)
}
