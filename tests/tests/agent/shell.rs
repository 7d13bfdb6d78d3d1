//! `POST /v1/shell` on the agent side, against a real OpenSSH server on loopback: the
//! agent logs in with a certificate `ssh-keygen` signed (the oracle), checks the sshd's
//! host key against the node's `*.pub` files, and bridges the session into frames; and
//! the agent's own terminal. The router is driven in process with a request body the
//! test keeps writing while it reads the answer, as the tunnel's HTTP/2 stream does.

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use shardlyn_agent::api::{AgentState, router};
use shardlyn_agent::config::Settings;
use shardlyn_agent::instances::Manager;
use shardlyn_proto::shell::{Decoder, Frame, ShellKind, ShellStart};
use shardlyn_tests::sshd::{Sshd, exec, user_key};
use tokio::sync::mpsc;
use tower::ServiceExt;

const NODE: &str = "shell-node";

/// A node: its sshd trusting a test CA, and an agent whose host keys dir holds only the
/// sshd's `host.pub`.
struct Node {
    dir: tempfile::TempDir,
    sshd: Sshd,
    app: axum::Router,
}

impl Node {
    async fn start() -> Self {
        Self::with_host_keys(|sshd_dir, keys| {
            std::fs::copy(
                sshd_dir.join("host.pub"),
                keys.join("ssh_host_ed25519_key.pub"),
            )
            .expect("host.pub");
        })
        .await
    }

    /// `fill` puts the host keys the agent trusts into its dir (given the sshd's dir).
    async fn with_host_keys(fill: impl FnOnce(&Path, &Path)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f"])
                .arg(dir.path().join("ca")),
        );
        assert!(ok, "{out}");
        let ca = std::fs::read_to_string(dir.path().join("ca.pub")).expect("ca.pub");
        let sshd_dir = dir.path().join("sshd");
        std::fs::create_dir_all(&sshd_dir).expect("mkdir");
        let sshd = Sshd::start(&sshd_dir, NODE, &ca).await;
        let keys = dir.path().join("host-keys");
        std::fs::create_dir_all(&keys).expect("mkdir");
        fill(&sshd_dir, &keys);
        let settings = Settings {
            ssh_port: sshd.port,
            ssh_host_keys_dir: keys.display().to_string(),
            ..Settings::default()
        };
        let manager =
            Manager::with_docker(&dir.path().join("data"), settings, None).expect("manager");
        let app = router(AgentState::new(NODE.into(), manager));
        Self { dir, sshd, app }
    }

    /// A fresh user key and its certificate for `principal`, as the panel sends them:
    /// (private key text, certificate line).
    fn credentials(&self, principal: &str) -> (String, String) {
        let name = format!("user-{}", uuid::Uuid::new_v4().simple());
        let (key, _) = user_key(self.dir.path(), &name);
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .arg("-s")
                .arg(self.dir.path().join("ca"))
                .args(["-I", "shell-test", "-n", principal, "-V", "+5m"])
                .arg(format!("{}.pub", key.display())),
        );
        assert!(ok, "{out}");
        (
            std::fs::read_to_string(&key).expect("key"),
            std::fs::read_to_string(format!("{}-cert.pub", key.display())).expect("cert"),
        )
    }

    fn ssh(&self, principal: &str, command: &str) -> ShellStart {
        let (key, cert) = self.credentials(principal);
        ShellStart {
            kind: ShellKind::Ssh,
            cols: 80,
            rows: 24,
            term: "xterm-256color".into(),
            command: Some(command.into()),
            login: Some("root".into()),
            private_key: Some(key),
            certificate: Some(cert),
        }
    }

    /// `ssh-keygen -l`'s fingerprint of the sshd's host key.
    fn host_fingerprint(&self) -> String {
        fingerprint(&self.sshd.dir.join("host.pub"))
    }
}

fn fingerprint(public: &Path) -> String {
    let (ok, out) = exec(Command::new("ssh-keygen").arg("-lf").arg(public));
    assert!(ok, "{out}");
    out.split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned()
}

fn terminal(command: &str) -> ShellStart {
    ShellStart {
        kind: ShellKind::Terminal,
        cols: 80,
        rows: 24,
        term: "xterm".into(),
        command: Some(command.into()),
        login: None,
        private_key: None,
        certificate: None,
    }
}

/// One shell request in flight: the body the test writes, the answer it reads.
struct Shell {
    input: Option<mpsc::Sender<axum::body::Bytes>>,
    answer: axum::body::BodyDataStream,
    decoder: Decoder,
    /// Every frame read so far.
    frames: Vec<Frame>,
}

impl Shell {
    async fn open(app: &axum::Router, start: ShellStart) -> Self {
        let (tx, rx) = mpsc::channel::<axum::body::Bytes>(8);
        tx.send(Frame::Start(start).encode().into())
            .await
            .expect("queued");
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        let request = Request::post("/v1/shell")
            .body(Body::from_stream(body))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        Self {
            input: Some(tx),
            answer: response.into_body().into_data_stream(),
            decoder: Decoder::default(),
            frames: Vec::new(),
        }
    }

    async fn send(&self, frame: Frame) {
        self.input
            .as_ref()
            .expect("not hung up")
            .send(frame.encode().into())
            .await
            .expect("the agent reads");
    }

    /// Ends the request body: the panel hangs up.
    fn hang_up(&mut self) {
        self.input = None;
    }

    /// Reads frames until `until` holds for what was read, or the answer ends (`false`).
    async fn read_until(&mut self, secs: u64, until: impl Fn(&[Frame]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            while let Some(frame) = self.decoder.next_frame().expect("frames") {
                self.frames.push(frame);
            }
            if until(&self.frames) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.answer.next()).await {
                Ok(Some(chunk)) => self.decoder.push(&chunk.expect("chunk")),
                Ok(None) => return false,
                Err(_) => panic!("nothing within {secs} s; read {:?}", self.frames),
            }
        }
    }

    /// Reads to the end of the answer.
    async fn finish(&mut self, secs: u64) -> &[Frame] {
        self.read_until(secs, |_| false).await;
        &self.frames
    }

    async fn output_has(&mut self, text: &str) -> bool {
        self.read_until(10, |frames| output(frames).contains(text))
            .await
    }
}

/// The output frames' bytes, as text.
fn output(frames: &[Frame]) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Output(b) => Some(b.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

async fn gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{pid} outlived the hang-up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pid_after(text: &str, marker: &str) -> u32 {
    text.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {marker} in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_shell_runs_the_command_and_brings_back_its_output_and_status() {
    let node = Node::start().await;
    let start = node.ssh(
        &format!("node:{NODE}:root"),
        "echo hello from $(whoami) on $(tty); exit 5",
    );
    let mut shell = Shell::open(&node.app, start).await;
    let frames = shell.finish(20).await.to_vec();
    let Some(Frame::Ready(ready)) = frames.first() else {
        panic!("{frames:?}")
    };
    assert_eq!(ready.user, "root");
    assert_eq!(
        ready.host_key.as_deref(),
        Some(node.host_fingerprint().as_str())
    );
    let text = output(&frames);
    assert!(text.contains("hello from root on /dev/pts/"), "{text:?}");
    assert_eq!(frames.last(), Some(&Frame::Exit(5)), "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_resize_reaches_the_remote_terminal() {
    let node = Node::start().await;
    let start = node.ssh(
        &format!("node:{NODE}:root"),
        "stty size; read line; stty size; echo got $line",
    );
    let mut shell = Shell::open(&node.app, start).await;
    assert!(shell.output_has("24 80").await, "{:?}", shell.frames);
    shell
        .send(Frame::Resize {
            cols: 132,
            rows: 43,
        })
        .await;
    shell.send(Frame::Input(b"typed\n".to_vec())).await;
    let frames = shell.finish(10).await.to_vec();
    let text = output(&frames);
    assert!(text.contains("43 132"), "{text:?}");
    assert!(text.contains("got typed"), "{text:?}");
    assert_eq!(frames.last(), Some(&Frame::Exit(0)), "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sshd_with_an_unknown_host_key_is_refused() {
    let node = Node::with_host_keys(|_, keys| {
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(keys.join("ssh_host_ed25519_key")),
        );
        assert!(ok, "{out}");
    })
    .await;
    let start = node.ssh(&format!("node:{NODE}:root"), "echo should not run");
    let mut shell = Shell::open(&node.app, start).await;
    let frames = shell.finish(20).await.to_vec();
    let [Frame::Error(message)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert!(message.contains(&node.host_fingerprint()), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_principal_is_refused_by_sshd() {
    let node = Node::start().await;
    let start = node.ssh("node:another-node:root", "echo should not run");
    let mut shell = Shell::open(&node.app, start).await;
    let frames = shell.finish(20).await.to_vec();
    let [Frame::Error(message)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert!(
        message.contains("refused the certificate for root"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_hang_up_ends_the_remote_process() {
    let node = Node::start().await;
    let start = node.ssh(&format!("node:{NODE}:root"), "echo pid= $$; exec sleep 600");
    let mut shell = Shell::open(&node.app, start).await;
    assert!(
        shell
            .read_until(10, |f| output(f)
                .split("pid=")
                .nth(1)
                .is_some_and(|r| r.contains('\n')))
            .await
    );
    let pid = pid_after(&output(&shell.frames), "pid=");
    assert!(alive(pid));
    shell.hang_up();
    let frames = shell.finish(10).await;
    assert_eq!(frames.last(), Some(&Frame::Exit(129)), "SIGHUP: {frames:?}");
    gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_runs_on_the_agent_and_hangs_up_with_the_panel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = Manager::with_docker(dir.path(), Settings::default(), None).expect("manager");
    let state = AgentState::new(NODE.into(), manager);
    let sessions = state.shells.clone();
    let app = router(state);

    let mut shell = Shell::open(&app, terminal("echo hi from $(whoami); exit 3")).await;
    let frames = shell.finish(10).await.to_vec();
    assert!(
        matches!(frames.first(), Some(Frame::Ready(r)) if r.user == "root" && r.host_key.is_none()),
        "{frames:?}"
    );
    assert!(output(&frames).contains("hi from root"), "{frames:?}");
    assert_eq!(frames.last(), Some(&Frame::Exit(3)));

    let mut shell = Shell::open(&app, terminal("sleep 600 & echo shell= $$ job= $!; wait")).await;
    assert!(
        shell
            .read_until(10, |f| output(f)
                .split("job=")
                .nth(1)
                .is_some_and(|r| r.contains('\n')))
            .await
    );
    shell
        .send(Frame::Resize {
            cols: 100,
            rows: 30,
        })
        .await;
    let job = pid_after(&output(&shell.frames), "job=");
    let leader = pid_after(&output(&shell.frames), "shell=");
    assert_eq!(sessions.open(), 1);
    shell.hang_up();
    let frames = shell.finish(10).await;
    assert_eq!(frames.last(), Some(&Frame::Exit(129)), "SIGHUP: {frames:?}");
    gone(job).await;
    // The shell was the agent's child: reaped, not left a zombie.
    assert!(
        !Path::new(&format!("/proc/{leader}")).exists(),
        "{leader} was not reaped"
    );
    assert_eq!(sessions.open(), 0, "the session's place is free");
}

/// Bytes of a `head -c` through each kind of shell: how fast, for the record (the
/// benchmark goal is half of a direct `ssh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_fast_through_both_kinds() {
    const BYTES: usize = 64 * 1024 * 1024;
    let node = Node::start().await;
    let command = format!("stty raw -echo; head -c {BYTES} /dev/zero");
    let starts = [
        ("ssh", node.ssh(&format!("node:{NODE}:root"), &command)),
        ("terminal", terminal(&command)),
    ];
    for (kind, start) in starts {
        let began = Instant::now();
        let mut shell = Shell::open(&node.app, start).await;
        let (mut bytes, mut frames, mut status) = (0usize, 0usize, None);
        loop {
            match shell.answer.next().await {
                Some(chunk) => shell.decoder.push(&chunk.expect("chunk")),
                None => break,
            }
            while let Some(frame) = shell.decoder.next_frame().expect("frames") {
                match frame {
                    Frame::Output(b) => {
                        bytes += b.len();
                        frames += 1;
                    }
                    Frame::Exit(s) => status = Some(s),
                    Frame::Error(e) => panic!("{kind}: {e}"),
                    _ => {}
                }
            }
        }
        let secs = began.elapsed().as_secs_f64();
        eprintln!(
            "{kind}: {bytes} bytes in {frames} frames, {secs:.2} s, {:.0} MiB/s",
            bytes as f64 / secs / 1048576.0
        );
        assert_eq!(status, Some(0), "{kind}");
        assert!(bytes >= BYTES, "{kind}: {bytes}");
        assert!(frames < BYTES / 4096, "{kind}: output is batched");
    }
}
