//! Node inventory from sysinfo: system, network interfaces, disks, users, processes, in
//! the `shardlyn_proto::inventory` types the panel reads them with. Collection runs on a
//! blocking thread; a process scan takes tens of milliseconds.

use axum::Json;
use axum::http::StatusCode;
use serde::Serialize;
use shardlyn_proto::inventory::{
    DiskInfo, Inventory, LoadAverage, NetworkInterface, ProcessInfo, SystemInfo, SystemUser,
};
use sysinfo::{Disks, Networks, ProcessesToUpdate, System, Users};

use crate::error::{ApiError, ApiResult};

/// `f` run on a blocking thread, answered as JSON (503 if the thread failed).
async fn blocking<T: Serialize + Send + 'static>(f: fn() -> T) -> ApiResult<Json<T>> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(Json(value)),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            format!("collecting the inventory failed: {e}"),
        )),
    }
}

fn system_info() -> SystemInfo {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_all();
    let load = System::load_average();
    SystemInfo {
        hostname: System::host_name(),
        os: System::name(),
        os_version: System::os_version(),
        kernel: System::kernel_version(),
        arch: System::cpu_arch(),
        uptime_secs: System::uptime(),
        cpu_count: u64::try_from(sys.cpus().len()).unwrap_or(u64::MAX),
        cpu_brand: sys.cpus().first().map(|c| c.brand().to_string()),
        memory_total_bytes: sys.total_memory(),
        memory_used_bytes: sys.used_memory(),
        swap_total_bytes: sys.total_swap(),
        load_average: LoadAverage {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        },
    }
}

fn network_info() -> Vec<NetworkInterface> {
    let networks = Networks::new_with_refreshed_list();
    networks
        .iter()
        .map(|(name, data)| NetworkInterface {
            name: name.clone(),
            mac: data.mac_address().to_string(),
            addresses: data
                .ip_networks()
                .iter()
                .map(|n| format!("{}/{}", n.addr, n.prefix))
                .collect(),
            received_bytes: data.total_received(),
            transmitted_bytes: data.total_transmitted(),
        })
        .collect()
}

fn disk_info() -> Vec<DiskInfo> {
    let disks = Disks::new_with_refreshed_list();
    disks
        .iter()
        .map(|d| DiskInfo {
            name: d.name().to_string_lossy().into_owned(),
            mount_point: d.mount_point().display().to_string(),
            file_system: d.file_system().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
            available_bytes: d.available_space(),
            removable: d.is_removable(),
        })
        .collect()
}

fn user_info() -> Vec<SystemUser> {
    let users = Users::new_with_refreshed_list();
    users
        .iter()
        .map(|u| SystemUser {
            name: u.name().to_owned(),
            uid: u.id().to_string(),
            gid: u.group_id().to_string(),
        })
        .collect()
}

fn process_info() -> Vec<ProcessInfo> {
    let mut sys = System::new();
    sys.refresh_processes(ProcessesToUpdate::All, true);
    let mut list: Vec<ProcessInfo> = sys
        .processes()
        .iter()
        .map(|(pid, p)| ProcessInfo {
            pid: pid.as_u32(),
            name: p.name().to_string_lossy().into_owned(),
            memory_bytes: p.memory(),
            cpu_percent: p.cpu_usage(),
            status: p.status().to_string(),
            started_at_unix: p.start_time(),
        })
        .collect();
    list.sort_by_key(|p| p.pid);
    list
}

pub async fn system() -> ApiResult<Json<SystemInfo>> {
    blocking(system_info).await
}

pub async fn network() -> ApiResult<Json<Vec<NetworkInterface>>> {
    blocking(network_info).await
}

pub async fn disks() -> ApiResult<Json<Vec<DiskInfo>>> {
    blocking(disk_info).await
}

pub async fn users() -> ApiResult<Json<Vec<SystemUser>>> {
    blocking(user_info).await
}

pub async fn processes() -> ApiResult<Json<Vec<ProcessInfo>>> {
    blocking(process_info).await
}

/// Everything at once.
pub async fn all() -> ApiResult<Json<Inventory>> {
    blocking(|| Inventory {
        system: system_info(),
        network: network_info(),
        disks: disk_info(),
        users: user_info(),
        processes: process_info(),
    })
    .await
}
