//! Process lifecycle shared by every binary (panel, agent, `shardlyn up`): the future that
//! resolves on SIGINT or SIGTERM.

/// A future resolving on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so call it before start-up work: a signal
/// arriving meanwhile still ends in a graceful stop instead of killing the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let int = async {
            match int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = term => {},
            () = int => {},
        }
    }
}
