//! Node inventory from sysinfo: system, network interfaces, disks, users, processes.
//! Collection runs on a blocking thread; a process scan takes tens of milliseconds.

use axum::Json;
use serde_json::{Value, json};
use sysinfo::{Disks, Networks, ProcessesToUpdate, System, Users};

async fn blocking(f: fn() -> Value) -> Json<Value> {
    Json(tokio::task::spawn_blocking(f).await.unwrap_or(Value::Null))
}

fn system_info() -> Value {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_all();
    json!({
        "hostname": System::host_name(),
        "os": System::name(),
        "os_version": System::os_version(),
        "kernel": System::kernel_version(),
        "arch": System::cpu_arch(),
        "uptime_secs": System::uptime(),
        "cpu_count": sys.cpus().len(),
        "cpu_brand": sys.cpus().first().map(|c| c.brand().to_string()),
        "memory_total_bytes": sys.total_memory(),
        "memory_used_bytes": sys.used_memory(),
        "swap_total_bytes": sys.total_swap(),
        "load_average": {
            "one": System::load_average().one,
            "five": System::load_average().five,
            "fifteen": System::load_average().fifteen,
        },
    })
}

fn network_info() -> Value {
    let networks = Networks::new_with_refreshed_list();
    let list: Vec<Value> = networks
        .iter()
        .map(|(name, data)| {
            json!({
                "name": name,
                "mac": data.mac_address().to_string(),
                "addresses": data.ip_networks().iter().map(|n| format!("{}/{}", n.addr, n.prefix)).collect::<Vec<_>>(),
                "received_bytes": data.total_received(),
                "transmitted_bytes": data.total_transmitted(),
            })
        })
        .collect();
    json!(list)
}

fn disk_info() -> Value {
    let disks = Disks::new_with_refreshed_list();
    let list: Vec<Value> = disks
        .iter()
        .map(|d| {
            json!({
                "name": d.name().to_string_lossy(),
                "mount_point": d.mount_point().display().to_string(),
                "file_system": d.file_system().to_string_lossy(),
                "total_bytes": d.total_space(),
                "available_bytes": d.available_space(),
                "removable": d.is_removable(),
            })
        })
        .collect();
    json!(list)
}

fn user_info() -> Value {
    let users = Users::new_with_refreshed_list();
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "name": u.name(),
                "uid": u.id().to_string(),
                "gid": u.group_id().to_string(),
            })
        })
        .collect();
    json!(list)
}

fn process_info() -> Value {
    let mut sys = System::new();
    sys.refresh_processes(ProcessesToUpdate::All, true);
    let mut list: Vec<Value> = sys
        .processes()
        .iter()
        .map(|(pid, p)| {
            json!({
                "pid": pid.as_u32(),
                "name": p.name().to_string_lossy(),
                "memory_bytes": p.memory(),
                "cpu_percent": p.cpu_usage(),
                "status": p.status().to_string(),
                "started_at_unix": p.start_time(),
            })
        })
        .collect();
    list.sort_by_key(|p| p["pid"].as_u64());
    json!(list)
}

pub async fn system() -> Json<Value> {
    blocking(system_info).await
}

pub async fn network() -> Json<Value> {
    blocking(network_info).await
}

pub async fn disks() -> Json<Value> {
    blocking(disk_info).await
}

pub async fn users() -> Json<Value> {
    blocking(user_info).await
}

pub async fn processes() -> Json<Value> {
    blocking(process_info).await
}

/// Everything at once.
pub async fn all() -> Json<Value> {
    blocking(|| {
        json!({
            "system": system_info(),
            "network": network_info(),
            "disks": disk_info(),
            "users": user_info(),
            "processes": process_info(),
        })
    })
    .await
}
