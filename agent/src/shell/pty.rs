//! The agent's own terminal (`ShellKind::Terminal`), for nodes without sshd: a PTY pair,
//! the login shell (or `/bin/sh -c <command>`) as the leader of a new session with the
//! PTY as its controlling terminal, and the master read and written through tokio (two
//! copies of it, registered as a pipe's ends: `AsyncFd`'s safe constructor is
//! deprecated). Below `shell::mod`'s pump; knows nothing of frames.
//!
//! The session and controlling terminal are set by util-linux's (or busybox's)
//! `setsid -c`, which execs the shell in the same process: doing it ourselves between
//! fork and exec needs `pre_exec`, and the workspace forbids `unsafe`.
//!
//! Hang-up: every process of the shell's session gets `SIGHUP`, then `SIGKILL` after
//! [`GRACE`]; the shell is reaped by tokio.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use rustix::process::{Pid, Signal};
use rustix::pty::OpenptFlags;
use shardlyn_proto::shell::{ShellReady, ShellStart};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Control, Ends, Event, Session};

/// Between `SIGHUP` and `SIGKILL` on hang-up.
const GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the shell exited (background jobs may hold the
/// terminal open).
const DRAIN: Duration = Duration::from_millis(500);
/// How long after the shell exited this side keeps its copy of the slave. Without it,
/// the master can read EIO while the shell's last output is still on its way from the
/// slave (a full CI run once saw a terminal's last line, `got x`, lost that way).
const RELEASE: Duration = Duration::from_millis(50);
/// How long a write to a full PTY waits before trying again.
const FULL_WAIT: Duration = Duration::from_millis(5);
/// Bytes read from the master at most at once.
const READ_BYTES: usize = 64 * 1024;

/// Starts the shell on a new PTY of `start`'s size.
///
/// # Errors
/// The PTY or the process cannot be made (the message for the panel).
pub(crate) fn open(start: &ShellStart, shell: &str) -> Result<Session, String> {
    spawn(start, shell).map_err(|e| format!("starting the terminal: {e}"))
}

fn spawn(start: &ShellStart, shell: &str) -> io::Result<Session> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
    let (cols, rows) = super::size(start.cols, start.rows);
    set_size(&master, cols, rows)?;
    rustix::io::ioctl_fionbio(&master, true)?;

    let user = User::current();
    let mut command = tokio::process::Command::new("setsid");
    command.arg("-c");
    match &start.command {
        Some(line) => command.args(["/bin/sh", "-c", line]),
        None => command.args([shell, "-l"]),
    };
    command
        .env("TERM", &start.term)
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("SHELL", shell)
        .current_dir(if user.home.is_dir() {
            user.home.as_path()
        } else {
            std::path::Path::new("/")
        })
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    let child = command.spawn()?;
    // The command holds the slave's copies: dropped, the master reads EIO once the
    // shell's session closed them all and `drive` let go of `slave`.
    drop(command);
    let pid = child
        .id()
        .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
        .ok_or_else(|| io::Error::other("the shell has no pid"))?;

    let (session, ends) = super::channels(ShellReady {
        user: user.name,
        host_key: None,
    });
    let input = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
    let output = pipe::Receiver::from_owned_fd_unchecked(master)?;
    tokio::spawn(drive(output, input, child, pid, ends, slave));
    Ok(session)
}

fn set_size(master: impl AsFd, cols: u16, rows: u16) -> io::Result<()> {
    rustix::termios::tcsetwinsize(
        master,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok(())
}

/// The user the agent runs as, from `/etc/passwd` (its uid when not listed).
struct User {
    name: String,
    home: std::path::PathBuf,
}

impl User {
    fn current() -> Self {
        let uid = rustix::process::geteuid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7 && fields[2].parse() == Ok(uid)).then(|| Self {
                name: fields[0].to_owned(),
                home: fields[5].into(),
            })
        });
        entry.unwrap_or_else(|| Self {
            name: uid.to_string(),
            home: std::env::var_os("HOME")
                .unwrap_or_else(|| "/".into())
                .into(),
        })
    }
}

/// How the reading of the master ended.
#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    /// Every copy of the slave is closed.
    Closed,
    /// Nobody takes the events any more.
    Gone,
}

/// Runs the session: output out, input in, until the shell exited (its status is the
/// last event) or the session was hung up.
async fn drive(
    output: pipe::Receiver,
    input: pipe::Sender,
    mut child: tokio::process::Child,
    pid: Pid,
    ends: Ends,
    slave: std::os::fd::OwnedFd,
) {
    let mut slave = Some(slave);
    let mut release_at = Instant::now();
    let Ends {
        mut control,
        events,
    } = ends;
    let reader = read_output(&output, &events);
    let writer = write_input(&input, &mut control);
    tokio::pin!(reader, writer);
    let (mut reading, mut writing) = (true, true);
    let mut status: Option<i32> = None;
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut drain_until = Instant::now();
    let hang_up = |kill_at: &mut Option<Instant>, exited: bool| {
        if kill_at.is_none() && !exited {
            signal_session(pid, Signal::HUP, true);
            *kill_at = Some(Instant::now() + GRACE);
        }
    };
    while status.is_none() || reading {
        tokio::select! {
            end = &mut reader, if reading => {
                reading = false;
                if end == ReadEnd::Gone {
                    hang_up(&mut kill_at, status.is_some());
                }
            }
            () = &mut writer, if writing => {
                writing = false;
                hang_up(&mut kill_at, status.is_some());
            }
            // Nobody reads any more, even if the shell writes nothing.
            () = events.closed(), if kill_at.is_none() && !killed && status.is_none() => {
                hang_up(&mut kill_at, false);
            }
            exit = child.wait(), if status.is_none() => {
                status = Some(exit.map_or(-1, |s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))));
                drain_until = Instant::now() + DRAIN;
                release_at = Instant::now() + RELEASE;
            }
            () = tokio::time::sleep_until(release_at), if status.is_some() && slave.is_some() => {
                slave = None;
            }
            () = tokio::time::sleep_until(kill_at.unwrap_or_else(Instant::now)), if kill_at.is_some() && status.is_none() => {
                signal_session(pid, Signal::KILL, true);
                kill_at = None;
                killed = true;
            }
            () = tokio::time::sleep_until(drain_until), if status.is_some() && reading => break,
        }
    }
    // What the shell left running in its session hangs up with its terminal.
    signal_session(pid, Signal::HUP, status.is_none());
    if let Some(status) = status {
        let _ = events.send(Event::Exit(status)).await;
    }
}

/// Reads the master into `Output` events, each what was there at once (up to
/// [`READ_BYTES`]).
async fn read_output(master: &pipe::Receiver, events: &mpsc::Sender<Event>) -> ReadEnd {
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let mut filled = 0;
        let mut closed = false;
        while filled < buf.len() {
            if filled == 0 && master.readable().await.is_err() {
                closed = true;
                break;
            }
            match master.try_read(&mut buf[filled..]) {
                Ok(0) => closed = true,
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled == 0 => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EIO: the slave side is closed.
                Err(_) => closed = true,
            }
            break;
        }
        if filled > 0
            && events
                .send(Event::Output(Bytes::copy_from_slice(&buf[..filled])))
                .await
                .is_err()
        {
            return ReadEnd::Gone;
        }
        if closed {
            return ReadEnd::Closed;
        }
    }
}

/// Writes input to the master and applies resizes, until the panel hangs up (or the
/// terminal refuses input).
async fn write_input(master: &pipe::Sender, control: &mut mpsc::Receiver<Control>) {
    while let Some(message) = control.recv().await {
        match message {
            Control::Input(bytes) => {
                if write_all(master, &bytes).await.is_err() {
                    return;
                }
            }
            Control::Resize { cols, rows } => {
                let _ = set_size(master, cols, rows);
            }
        }
    }
}

/// Writes `bytes` to the master. A full PTY can poll writable and still refuse the write
/// (its room is counted before its buffers are allocated), so a refusal waits a moment
/// instead of asking again at once.
async fn write_all(master: &pipe::Sender, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        master.writable().await?;
        match master.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(FULL_WAIT).await;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends `signal` to every process of session `sid` (the shell's, led by it), and to
/// the leader itself when it is not reaped yet (it may not have made its session yet;
/// once reaped, its pid may be another process's).
fn signal_session(sid: Pid, signal: Signal, leader: bool) {
    if leader {
        let _ = rustix::process::kill_process(sid, signal);
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        if pid != sid && session_of(pid) == Some(sid.as_raw_pid()) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

/// The session of `pid`, from `/proc/<pid>/stat` (`getsid` in rustix cannot represent
/// the session 0 of kernel threads).
fn session_of(pid: Pid) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_pid())).ok()?;
    // After the command's `(name)`: state, ppid, pgrp, session.
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardlyn_proto::shell::ShellKind;

    fn start(command: &str) -> ShellStart {
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

    /// Output until `until` shows in it, or until the exit: (output, exit status).
    async fn read(
        events: &mut mpsc::Receiver<Event>,
        until: impl Fn(&str) -> bool,
    ) -> (String, Option<i32>) {
        let mut out = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .unwrap_or_else(|_| panic!("no exit within 10 s; output {out:?}"));
            match event {
                Some(Event::Output(bytes)) => {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    if until(&out) {
                        return (out, None);
                    }
                }
                Some(Event::Exit(status)) => return (out, Some(status)),
                None => panic!("events ended without an exit; output {out:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_command_runs_and_its_status_comes_back() {
        let mut session = open(&start("echo hi; exit 3"), "/bin/sh").expect("opens");
        assert!(!session.ready.user.is_empty());
        let (out, status) = read(&mut session.events, |_| false).await;
        assert!(out.contains("hi"), "{out:?}");
        assert_eq!(status, Some(3));
    }

    #[tokio::test]
    async fn a_signal_is_128_plus_its_number() {
        let mut session = open(&start("kill -TERM $$"), "/bin/sh").expect("opens");
        assert_eq!(read(&mut session.events, |_| false).await.1, Some(128 + 15));
    }

    #[tokio::test]
    async fn input_and_resize_reach_the_terminal() {
        let mut session = open(
            &start("stty size; read line; stty size; echo got $line"),
            "/bin/sh",
        )
        .expect("opens");
        let (out, _) = read(&mut session.events, |o| o.contains("24 80")).await;
        assert!(out.contains("24 80"), "{out:?}");
        session
            .control
            .send(Control::Resize {
                cols: 132,
                rows: 43,
            })
            .await
            .expect("resize");
        session
            .control
            .send(Control::Input(Bytes::from_static(b"word\n")))
            .await
            .expect("input");
        let (out, status) = read(&mut session.events, |_| false).await;
        assert!(out.contains("43 132"), "{out:?}");
        assert!(out.contains("got word"), "{out:?}");
        assert_eq!(status, Some(0));
    }

    /// Whether the output has a whole line with `marker`.
    fn line_with(marker: &str) -> impl Fn(&str) -> bool + '_ {
        move |out| {
            out.split_once(marker)
                .is_some_and(|(_, rest)| rest.contains('\n'))
        }
    }

    /// Alive and not a zombie.
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn a_hang_up_ends_the_shell_and_its_jobs() {
        let mut session =
            open(&start("sleep 600 & echo job=$! shell=$$; wait"), "/bin/sh").expect("opens");
        let (out, _) = read(&mut session.events, line_with("shell=")).await;
        let pids: Vec<i32> = out
            .split_whitespace()
            .filter_map(|w| w.split_once('=').and_then(|(_, n)| n.parse().ok()))
            .collect();
        assert_eq!(pids.len(), 2, "{out:?}");
        assert!(pids.iter().all(|p| alive(*p)), "{out:?}");
        drop(session.control);
        let (_, status) = read(&mut session.events, |_| false).await;
        assert_eq!(status, Some(128 + 1), "SIGHUP");
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|p| alive(*p)) {
            assert!(Instant::now() < deadline, "{pids:?} outlived the hang-up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn dropping_the_events_hangs_up_too() {
        let mut session = open(&start("echo shell=$$; sleep 600"), "/bin/sh").expect("opens");
        let (out, _) = read(&mut session.events, line_with("shell=")).await;
        let pid: i32 = out
            .trim()
            .trim_start_matches("shell=")
            .parse()
            .expect("pid");
        drop(session);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(Instant::now() < deadline, "{pid} outlived the hang-up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
