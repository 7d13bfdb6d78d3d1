//! The SSH side: host key, accept loop with connection limits, and the per-connection
//! russh handler that authenticates through the [`Gate`] (password, public key or OpenSSH
//! user certificate: the panel decides each) and starts the SFTP subsystem.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Certificate, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use shardlyn_proto::sftp::AuthRequest;

use super::Gate;
use super::fs::SftpFs;
use super::limits::{Connections, Failures};
use crate::config::Settings;
use crate::files::Sandbox;
use crate::instances::Manager;

/// File name of the host key in the data dir.
const HOST_KEY_FILE: &str = "sftp_host_ed25519_key";
/// Longest username and password looked at; longer ones are refused outright.
const MAX_CREDENTIAL_BYTES: usize = 1024;
/// Session channels per connection.
const MAX_CHANNELS: usize = 4;

/// Loads the host key of `data_dir`, generating it (mode 0600) on first use.
///
/// # Errors
/// An unreadable or unwritable key file.
pub fn host_key(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let file = data_dir.join(HOST_KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&file) {
        return PrivateKey::from_openssh(text.as_bytes())
            .with_context(|| format!("parsing {}", file.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()));
    let pem = key
        .to_openssh(LineEnding::LF)
        .context("encoding the host key")?;
    let tmp = file.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        out.write_all(pem.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
    Ok(key)
}

/// What every connection shares.
struct Shared {
    gate: Gate,
    manager: Manager,
    failures: Failures,
}

/// The running SFTP server; dropping it stops accepting (open sessions run on).
pub struct Listening {
    /// The bound address (the real port when `sftp_port` is 0).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `sftp_bind:sftp_port` and serves SFTP for the instances of `manager`.
///
/// # Errors
/// The host key cannot be loaded or the port cannot be bound.
pub async fn start(
    settings: &Settings,
    data_dir: &Path,
    manager: Manager,
    gate: Gate,
) -> anyhow::Result<Listening> {
    let key = host_key(data_dir)?;
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard(format!("SSH-2.0-Shardlyn_{}", crate::VERSION).into()),
        methods: MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        max_auth_attempts: 6,
        inactivity_timeout: Some(Duration::from_secs(30 * 60)),
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind((settings.sftp_bind.as_str(), settings.sftp_port))
        .await
        .with_context(|| {
            format!(
                "binding SFTP on {}:{}",
                settings.sftp_bind, settings.sftp_port
            )
        })?;
    let addr = listener.local_addr()?;
    let connections = Connections::new(
        settings.sftp_max_connections.max(1),
        settings.sftp_max_connections_per_ip.max(1),
    );
    let shared = Arc::new(Shared {
        gate,
        manager,
        failures: Failures::default(),
    });
    tracing::info!(sftp.addr = %addr, "SFTP server listening");
    let task = tokio::spawn(accept_loop(listener, config, connections, shared));
    Ok(Listening { addr, task })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    config: Arc<russh::server::Config>,
    connections: Arc<Connections>,
    shared: Arc<Shared>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "SFTP accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = connections.admit(peer.ip()) else {
            tracing::info!(sftp.peer = %peer, "SFTP connection refused: connection limit");
            drop(stream);
            continue;
        };
        let handler = Conn {
            shared: shared.clone(),
            ip: peer.ip(),
            session: None,
            channels: HashMap::new(),
        };
        let config = config.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match russh::server::run_stream(config, stream, handler).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!(sftp.peer = %peer, error = %e, "SFTP session ended");
                    }
                }
                Err(e) => tracing::debug!(sftp.peer = %peer, error = %e, "SFTP handshake"),
            }
        });
    }
}

/// A logged-in session: where it is rooted and what it may do.
struct Authed {
    sandbox: Sandbox,
    read: bool,
    write: bool,
}

/// What a client logs in with; russh has checked the client holds the key (of the
/// certificate) before a key or certificate gets here.
enum Credential<'a> {
    Password(&'a str),
    /// OpenSSH one-line form.
    PublicKey(String),
    /// OpenSSH one-line form; the panel decides whether its CA is trusted.
    Certificate(String),
}

/// One SSH connection.
struct Conn {
    shared: Arc<Shared>,
    ip: IpAddr,
    session: Option<Authed>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Conn {
    /// Asks the panel; on success opens the instance's sandbox.
    async fn login(&mut self, user: &str, credential: Credential<'_>) -> Auth {
        let mut request = AuthRequest {
            id: String::new(),
            username: user.to_owned(),
            password: None,
            public_key: None,
            certificate: None,
            remote_ip: self.ip.to_string(),
        };
        let per_user = matches!(credential, Credential::Password(_));
        match credential {
            Credential::Password(p) if p.len() <= MAX_CREDENTIAL_BYTES => {
                request.password = Some(p.to_owned());
            }
            Credential::Password(_) => return Auth::reject(),
            Credential::PublicKey(k) => request.public_key = Some(k),
            Credential::Certificate(c) => request.certificate = Some(c),
        }
        if user.len() > MAX_CREDENTIAL_BYTES {
            return Auth::reject();
        }
        if self.shared.failures.blocked(self.ip, user) {
            tracing::info!(sftp.user = %user, sftp.peer = %self.ip, "SFTP login refused: too many failures");
            return Auth::reject();
        }
        let answer = self.shared.gate.ask(request).await;
        let instance = answer.instance.clone().unwrap_or_default();
        if !answer.allow || instance.is_empty() {
            tracing::info!(
                sftp.user = %user,
                sftp.peer = %self.ip,
                reason = answer.reason.as_deref().unwrap_or("refused"),
                "SFTP login refused"
            );
            self.shared.failures.record(self.ip, user, per_user);
            return Auth::reject();
        }
        let manager = self.shared.manager.clone();
        let opened = {
            let id = instance.clone();
            tokio::task::spawn_blocking(move || Sandbox::for_instance(&manager, &id)).await
        };
        let Ok(Ok(sandbox)) = opened else {
            tracing::warn!(instance.id = %instance, "SFTP login: the instance is not on this node");
            return Auth::reject();
        };
        tracing::info!(
            sftp.user = %user,
            sftp.peer = %self.ip,
            instance.id = %instance,
            user.id = answer.user_id.as_deref().unwrap_or(""),
            read = answer.read,
            write = answer.write,
            "SFTP login"
        );
        self.session = Some(Authed {
            sandbox,
            read: answer.read,
            write: answer.write,
        });
        Auth::Accept
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.login(user, Credential::Password(password)).await)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Ok(openssh) = key.public_key.to_openssh() else {
            return Ok(Auth::reject());
        };
        Ok(self.login(user, Credential::PublicKey(openssh)).await)
    }

    /// Called by russh only after the client's signature was verified with the
    /// certified key (and the certificate's own signature and validity window checked);
    /// the panel checks the rest: that its CA is trusted, that the panel issued it and did
    /// not revoke it, its principal, and the user's permissions.
    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let Ok(openssh) = certificate.to_openssh() else {
            return Ok(Auth::reject());
        };
        Ok(self.login(user, Credential::Certificate(openssh)).await)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.session.is_none() || self.channels.len() >= MAX_CHANNELS {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(authed), "sftp") = (self.session.as_ref(), name) else {
            return session.channel_failure(channel_id);
        };
        let Some(channel) = self.channels.remove(&channel_id) else {
            return session.channel_failure(channel_id);
        };
        session.channel_success(channel_id)?;
        let fs = SftpFs::new(authed.sandbox.clone(), authed.read, authed.write);
        russh_sftp::server::run(channel.into_stream(), fs).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = host_key(dir.path()).unwrap();
        let b = host_key(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let mode = std::fs::metadata(dir.path().join(HOST_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
