//! The fake's fixed catalog: server types (x86 and one ARM), locations, pricing, images.

use super::*;

/// `(id, name, country, city, latitude, longitude, network zone)`.
pub(super) const LOCATIONS: &[(u64, &str, &str, &str, f64, f64, &str)] = &[
    (
        1,
        "fsn1",
        "DE",
        "Falkenstein",
        50.476_12,
        12.370_071,
        "eu-central",
    ),
    (
        2,
        "nbg1",
        "DE",
        "Nuremberg",
        49.452_102,
        11.076_665,
        "eu-central",
    ),
    (
        3,
        "hel1",
        "FI",
        "Helsinki",
        60.169_855,
        24.938_379,
        "eu-central",
    ),
    (
        4,
        "ash",
        "US",
        "Ashburn, VA",
        39.043_757,
        -77.487_442,
        "us-east",
    ),
];

/// `(id, name, cores, memory GB, disk GB, cpu type, architecture, monthly net EUR, locations)`.
pub(super) type TypeRow = (
    u64,
    &'static str,
    u64,
    f64,
    u64,
    &'static str,
    &'static str,
    f64,
    &'static [&'static str],
);
pub(super) const EU: &[&str] = &["fsn1", "nbg1", "hel1"];
pub(super) const ALL: &[&str] = &["fsn1", "nbg1", "hel1", "ash"];
pub(super) const SERVER_TYPES: &[TypeRow] = &[
    (22, "cpx11", 2, 2.0, 40, "shared", "x86", 4.35, ALL),
    (23, "cpx21", 3, 4.0, 80, "shared", "x86", 7.55, ALL),
    (104, "cx22", 2, 4.0, 40, "shared", "x86", 3.79, EU),
    (105, "cx32", 4, 8.0, 80, "shared", "x86", 6.80, EU),
    (106, "cx42", 8, 16.0, 160, "shared", "x86", 16.40, EU),
    (107, "cx52", 16, 32.0, 320, "shared", "x86", 32.40, EU),
    // The 2025 generation, as the planner's bundled table lists it.
    (114, "cx23", 2, 4.0, 40, "shared", "x86", 3.99, EU),
    (115, "cx33", 4, 8.0, 80, "shared", "x86", 6.49, EU),
    (116, "cx43", 8, 16.0, 160, "shared", "x86", 13.10, EU),
    (117, "cx53", 16, 32.0, 320, "shared", "x86", 22.46, EU),
    (45, "cax11", 2, 4.0, 40, "shared", "arm", 3.79, EU),
];

pub(super) fn money(net: f64) -> Value {
    json!({"net": format!("{net:.4}"), "gross": format!("{:.4}", net * 1.19)})
}

pub(super) fn type_prices(row: &TypeRow) -> Vec<Value> {
    row.8
        .iter()
        .map(|loc| {
            let monthly = if *loc == "ash" { row.7 * 1.2 } else { row.7 };
            json!({
                "location": loc,
                "price_hourly": money(monthly / 730.0 * 1.1),
                "price_monthly": money(monthly),
                "included_traffic": if *loc == "ash" { 1_099_511_627_776_u64 } else { 21_990_232_555_520_u64 },
                "price_per_tb_traffic": money(1.0),
            })
        })
        .collect()
}

pub(super) fn server_type_json(row: &TypeRow) -> Value {
    json!({
        "id": row.0,
        "name": row.1,
        "description": row.1.to_uppercase(),
        "category": if row.6 == "arm" { "cost_optimized" } else { "regular_purpose" },
        "cores": row.2,
        "memory": row.3,
        "disk": row.4,
        "deprecated": false,
        "deprecation": null,
        "prices": type_prices(row),
        "storage_type": "local",
        "cpu_type": row.5,
        "architecture": row.6,
        "locations": row.8.iter().filter_map(|l| catalog_location(l)).map(|l| json!({"id": l["id"], "name": l["name"], "deprecation": null, "available": true, "recommended": true})).collect::<Vec<_>>(),
    })
}

pub(super) fn catalog_server_type(name: &str) -> Option<Value> {
    SERVER_TYPES
        .iter()
        .find(|r| r.1 == name)
        .map(server_type_json)
}

pub(super) fn location_json(row: &(u64, &str, &str, &str, f64, f64, &str)) -> Value {
    json!({
        "id": row.0, "name": row.1, "description": format!("{} DC Park 1", row.3),
        "country": row.2, "city": row.3, "latitude": row.4, "longitude": row.5,
        "network_zone": row.6,
    })
}

pub(super) fn catalog_location(name: &str) -> Option<Value> {
    LOCATIONS.iter().find(|r| r.1 == name).map(location_json)
}

pub(super) fn datacenter(location: &Value) -> Value {
    let name = location["name"].as_str().unwrap_or_default();
    let ids: Vec<u64> = SERVER_TYPES
        .iter()
        .filter(|r| r.8.contains(&name))
        .map(|r| r.0)
        .collect();
    json!({
        "id": location["id"],
        "name": format!("{name}-dc1"),
        "description": format!("{} 1 virtual DC 1", location["city"].as_str().unwrap_or_default()),
        "location": location,
        "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
    })
}

pub(super) fn image(name: &str) -> Value {
    let (flavor, version) = name.split_once('-').unwrap_or((name, "unknown"));
    json!({
        "id": 161_547_269, "type": "system", "status": "available", "name": name,
        "description": name, "image_size": null, "disk_size": 5, "created": "2024-04-25T00:00:00+00:00",
        "created_from": null, "bound_to": null, "os_flavor": flavor, "os_version": version,
        "rapid_deploy": true, "protection": {"delete": false}, "deprecated": null,
        "deleted": null, "labels": {}, "architecture": "x86",
    })
}

pub(super) async fn server_types_list(Query(q): Q) -> Answer {
    list(
        "server_types",
        &by_name(SERVER_TYPES.iter().map(server_type_json), &q),
    )
}

pub(super) async fn server_type_get(Path(id): Path<u64>) -> Answer {
    let row = SERVER_TYPES
        .iter()
        .find(|r| r.0 == id)
        .ok_or_else(|| ApiError::not_found("server type"))?;
    ok(200, &json!({"server_type": server_type_json(row)}))
}

pub(super) async fn locations_list(Query(q): Q) -> Answer {
    list(
        "locations",
        &by_name(LOCATIONS.iter().map(location_json), &q),
    )
}

pub(super) async fn pricing() -> Answer {
    let per_location = |monthly: f64| -> Vec<Value> {
        ALL.iter()
            .map(|l| json!({"location": l, "price_hourly": money(monthly / 730.0), "price_monthly": money(monthly)}))
            .collect()
    };
    let server_types: Vec<Value> = SERVER_TYPES
        .iter()
        .map(|r| json!({"id": r.0, "name": r.1, "prices": type_prices(r)}))
        .collect();
    let mut pricing = Map::new();
    pricing.insert("currency".into(), "EUR".into());
    pricing.insert("vat_rate".into(), "19.00".into());
    pricing.insert("image".into(), json!({"price_per_gb_month": money(0.0119)}));
    pricing.insert("floating_ip".into(), json!({"price_monthly": money(3.0)}));
    pricing.insert(
        "floating_ips".into(),
        json!([{"type": "ipv4", "prices": per_location(3.0)}, {"type": "ipv6", "prices": per_location(3.0)}]),
    );
    pricing.insert(
        "primary_ips".into(),
        json!([{"type": "ipv4", "prices": per_location(0.5)}, {"type": "ipv6", "prices": per_location(0.0)}]),
    );
    pricing.insert("server_backup".into(), json!({"percentage": "20.00"}));
    pricing.insert("server_types".into(), Value::Array(server_types));
    pricing.insert("load_balancer_types".into(), json!([]));
    pricing.insert("volume".into(), json!({"price_per_gb_month": money(0.044)}));
    pricing.insert("traffic".into(), json!({"price_per_tb": money(1.0)}));
    ok(200, &json!({"pricing": pricing}))
}
