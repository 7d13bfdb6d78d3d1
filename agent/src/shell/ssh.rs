//! SSH shells (`ShellKind::Ssh`): a russh client session to this node's own sshd on
//! `127.0.0.1:<ssh_port>`, logged in with the certificate the panel's SSH CA made for
//! this session, with a PTY and the login shell or the given command. Below
//! `shell::mod`'s pump; knows nothing of frames.
//!
//! The sshd must show one of this node's host keys (every `*.pub` of
//! `ssh_host_keys_dir`): anything else on that port is refused, naming its fingerprint.
//! Hang-up closes the channel (sshd then hangs the remote session up) and the
//! connection.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, HashAlg, PrivateKey, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Disconnect, Preferred, Sig, cipher};
use shardlyn_proto::shell::{ShellReady, ShellStart};

use super::{Control, Ends, Event, Session, ShellSettings};

/// From connecting to the running shell.
const OPEN_WAIT: Duration = Duration::from_secs(20);
/// The login when the panel names none.
const DEFAULT_LOGIN: &str = "shardlyn";

/// Opens the session.
///
/// # Errors
/// Why not, for the panel: an unknown host key (with its fingerprint), a refused
/// certificate, an sshd that is not there.
pub(crate) async fn open(start: &ShellStart, settings: &ShellSettings) -> Result<Session, String> {
    tokio::time::timeout(OPEN_WAIT, connect(start, settings))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the node's sshd did not answer within {OPEN_WAIT:?}"
            ))
        })
}

async fn connect(start: &ShellStart, settings: &ShellSettings) -> Result<Session, String> {
    let dir = settings.ssh_host_keys_dir.clone();
    let known = tokio::task::spawn_blocking(move || host_keys(&dir))
        .await
        .map_err(|e| e.to_string())??;
    let key = PrivateKey::from_openssh(start.private_key.as_deref().unwrap_or_default())
        .map_err(|e| format!("the private key does not read: {e}"))?;
    let certificate =
        Certificate::from_openssh(start.certificate.as_deref().unwrap_or_default().trim())
            .map_err(|e| format!("the certificate does not read: {e}"))?;
    let login = start
        .login
        .clone()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| DEFAULT_LOGIN.into());

    let port = settings.ssh_port;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("the node's sshd (127.0.0.1:{port}): {e}"))?;
    let _ = tcp.set_nodelay(true);
    let seen = Arc::new(Mutex::new(None));
    let checker = HostKeys {
        known,
        seen: Arc::clone(&seen),
    };
    let mut handle = client::connect_stream(Arc::new(config()), tcp, checker)
        .await
        .map_err(|e| match e {
            russh::Error::UnknownKey => format!(
                "the sshd on 127.0.0.1:{port} showed host key {}, which is none of this node's ({}/*.pub)",
                seen.lock().map(|s| s.clone()).unwrap_or_default().unwrap_or_default(),
                settings.ssh_host_keys_dir.display()
            ),
            e => format!("the node's sshd (127.0.0.1:{port}): {e}"),
        })?;
    let host_key = seen.lock().map(|s| s.clone()).unwrap_or_default();

    let auth = handle
        .authenticate_openssh_cert(login.clone(), Arc::new(key), certificate)
        .await
        .map_err(|e| format!("logging in as {login}: {e}"))?;
    if !auth.success() {
        return Err(format!(
            "the node's sshd refused the certificate for {login}"
        ));
    }
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| format!("opening a session: {e}"))?;
    let (cols, rows) = super::size(start.cols, start.rows);
    let mut early = Vec::new();
    channel
        .request_pty(true, &start.term, cols.into(), rows.into(), 0, 0, &[])
        .await
        .map_err(|e| format!("asking for a terminal: {e}"))?;
    replied(&mut channel, &mut early, "a terminal").await?;
    match &start.command {
        Some(command) => channel.exec(true, command.as_bytes()).await,
        None => channel.request_shell(true).await,
    }
    .map_err(|e| format!("starting the shell: {e}"))?;
    replied(&mut channel, &mut early, "the shell").await?;

    let (session, ends) = super::channels(ShellReady {
        user: login,
        host_key,
    });
    tokio::spawn(drive(handle, channel, early, ends));
    Ok(session)
}

/// Every `*.pub` key of `dir` (certificates and comments aside).
fn host_keys(dir: &Path) -> Result<Vec<KeyData>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("reading the node's host keys in {}: {e}", dir.display()))?;
    let mut keys = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pub") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        keys.extend(
            text.lines()
                .filter_map(|line| PublicKey::from_openssh(line.trim()).ok())
                .map(|key| key.key_data().clone()),
        );
    }
    if keys.is_empty() {
        return Err(format!("no host keys (*.pub) in {}", dir.display()));
    }
    Ok(keys)
}

/// The client's settings: AES-GCM first (fastest with AES-NI; the throughput of a
/// `cat` depends on it), no keepalive needed on loopback.
fn config() -> client::Config {
    let preferred = Preferred {
        cipher: std::borrow::Cow::Borrowed(&[
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
        ]),
        ..Preferred::default()
    };
    client::Config {
        preferred,
        nodelay: true,
        ..client::Config::default()
    }
}

/// Accepts the node's own host keys only, remembering the fingerprint it was shown.
struct HostKeys {
    known: Vec<KeyData>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeys {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let data = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data(),
            PublicKeyOrCertificate::Certificate(certificate) => certificate.public_key(),
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(data.fingerprint(HashAlg::Sha256).to_string());
        }
        Ok(self.known.contains(data))
    }
}

/// Waits for sshd's answer to a request; what the channel says meanwhile is kept.
async fn replied(
    channel: &mut Channel<client::Msg>,
    early: &mut Vec<ChannelMsg>,
    what: &str,
) -> Result<(), String> {
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return Ok(()),
            Some(ChannelMsg::Failure) => return Err(format!("the node's sshd refused {what}")),
            Some(ChannelMsg::Close) | None => {
                return Err(format!(
                    "the node's sshd closed the session asking for {what}"
                ));
            }
            Some(message) => early.push(message),
        }
    }
}

/// How the channel's reading ended.
enum ReadEnd {
    /// The channel closed, with the exit status when sshd sent one.
    Closed(Option<i32>),
    /// Nobody takes the events any more.
    Gone,
}

/// Runs the session until the channel closes or the panel hangs up.
async fn drive(
    handle: Handle<HostKeys>,
    channel: Channel<client::Msg>,
    early: Vec<ChannelMsg>,
    ends: Ends,
) {
    let Ends {
        mut control,
        events,
    } = ends;
    let (mut read, write) = channel.split();
    let reader = async {
        let mut status = None;
        for message in early {
            if !deliver(message, &events, &mut status).await {
                return ReadEnd::Gone;
            }
        }
        while let Some(message) = read.wait().await {
            if matches!(message, ChannelMsg::Close) {
                break;
            }
            if !deliver(message, &events, &mut status).await {
                return ReadEnd::Gone;
            }
        }
        ReadEnd::Closed(status)
    };
    let writer = async {
        while let Some(message) = control.recv().await {
            let sent = match message {
                Control::Input(bytes) => write.data_bytes(bytes).await,
                Control::Resize { cols, rows } => {
                    write.window_change(cols.into(), rows.into(), 0, 0).await
                }
            };
            if sent.is_err() {
                return;
            }
        }
    };
    tokio::pin!(reader, writer);
    let status = tokio::select! {
        end = &mut reader => match end {
            ReadEnd::Closed(status) => status,
            ReadEnd::Gone => None,
        },
        () = &mut writer => {
            // The panel hung up: closing the channel and the connection makes sshd hang
            // the remote session up. (russh forgets a channel it closed, so sshd's
            // answer is not waited for.)
            let _ = write.close().await;
            Some(128 + 1)
        }
        // Nobody reads any more, even if the shell writes nothing.
        () = events.closed() => {
            let _ = write.close().await;
            None
        }
    };
    let _ = handle
        .disconnect(Disconnect::ByApplication, "session ended", "en")
        .await;
    if let Some(status) = status {
        let _ = events.send(Event::Exit(status)).await;
    }
}

/// Passes one channel message on: `false` when the events are not taken any more.
async fn deliver(
    message: ChannelMsg,
    events: &tokio::sync::mpsc::Sender<Event>,
    status: &mut Option<i32>,
) -> bool {
    match message {
        ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
            events.send(Event::Output(data)).await.is_ok()
        }
        ChannelMsg::ExitStatus { exit_status } => {
            *status = Some(i32::try_from(exit_status).unwrap_or(i32::MAX));
            true
        }
        ChannelMsg::ExitSignal { signal_name, .. } => {
            *status = Some(128 + signal_number(&signal_name));
            true
        }
        _ => true,
    }
}

/// The Linux number of a signal sshd names.
fn signal_number(signal: &Sig) -> i32 {
    match signal {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(name) => match name.as_str() {
            "BUS" => 7,
            "USR2" => 12,
            "STKFLT" => 16,
            "CHLD" => 17,
            "CONT" => 18,
            "STOP" => 19,
            "TSTP" => 20,
            "TTIN" => 21,
            "TTOU" => 22,
            "URG" => 23,
            "XCPU" => 24,
            "XFSZ" => 25,
            "VTALRM" => 26,
            "PROF" => 27,
            "WINCH" => 28,
            "IO" => 29,
            "PWR" => 30,
            "SYS" => 31,
            _ => 0,
        },
    }
}
