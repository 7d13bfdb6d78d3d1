//! The outbound guard for git remotes: the remote's host is resolved and checked with
//! the node's [`Outbound`] policy before `git` runs, and `git` is made to reach exactly
//! the checked address: for http(s) with `http.curloptResolve` and no redirects
//! (`http.followRedirects=false`, so a redirect to another host is never followed), for
//! `git://` by putting the address in the URL, and for ssh with `HostName` (the host
//! key is still checked under the name, `HostKeyAlias`).

use std::net::{IpAddr, SocketAddr};

use shardlyn_net::outbound::Outbound;
use shardlyn_proto::git::{UrlKind, remote};

use super::GitError;

/// How one fetch reaches the checked remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The URL to give `git` (a `git://` URL names the checked address).
    pub url: String,
    /// `-c key=value` settings of the fetch.
    pub config: Vec<(String, String)>,
    /// For ssh: the host name as written and the checked address to connect to.
    pub ssh: Option<(String, IpAddr)>,
}

/// `ip` as the host part of a URL or a curl `--resolve` entry.
fn host_form(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Resolves and checks the remote of `url`.
///
/// # Errors
/// [`GitError::Outbound`] when the guard refuses it or it does not resolve,
/// [`GitError::Invalid`] for an unusable URL.
pub async fn pin(outbound: &Outbound, url: &str) -> Result<Pinned, GitError> {
    let remote = remote(url).ok_or_else(|| GitError::Invalid("unusable repository URL".into()))?;
    let addrs = outbound.resolve(&remote.host, remote.port).await?;
    Ok(pinned(url, &remote.host, remote.port, remote.kind, &addrs))
}

/// The [`Pinned`] of a remote whose addresses (at least one) were checked.
fn pinned(url: &str, host: &str, port: u16, kind: UrlKind, addrs: &[SocketAddr]) -> Pinned {
    let first = addrs
        .first()
        .map_or(IpAddr::from([0, 0, 0, 0]), SocketAddr::ip);
    let literal = host.parse::<IpAddr>().is_ok();
    match kind {
        UrlKind::Http => {
            let mut config = vec![("http.followRedirects".to_owned(), "false".to_owned())];
            if !literal {
                let list: Vec<String> = addrs.iter().map(|a| host_form(a.ip())).collect();
                config.push((
                    "http.curloptResolve".to_owned(),
                    format!("{host}:{port}:{}", list.join(",")),
                ));
            }
            Pinned {
                url: url.to_owned(),
                config,
                ssh: None,
            }
        }
        UrlKind::Git => {
            // `git://[user@]host[:port]/path` -> `git://address:port/path`.
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            let path = rest.find('/').map_or("", |i| &rest[i..]);
            Pinned {
                url: format!("git://{}:{port}{path}", host_form(first)),
                config: Vec::new(),
                ssh: None,
            }
        }
        UrlKind::Ssh => Pinned {
            url: url.to_owned(),
            config: Vec::new(),
            ssh: (!literal).then(|| (host.to_owned(), first)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().expect("addr")).collect()
    }

    #[test]
    fn http_remotes_pin_every_address_and_follow_no_redirect() {
        let p = pinned(
            "https://git.example/o/r",
            "git.example",
            443,
            UrlKind::Http,
            &addrs(&["93.184.216.34:443", "[2606:2800::1]:443"]),
        );
        assert_eq!(p.url, "https://git.example/o/r");
        assert_eq!(
            p.config,
            vec![
                ("http.followRedirects".into(), "false".into()),
                (
                    "http.curloptResolve".into(),
                    "git.example:443:93.184.216.34,[2606:2800::1]".into()
                ),
            ]
        );
        let literal = pinned(
            "http://1.2.3.4:8080/r",
            "1.2.3.4",
            8080,
            UrlKind::Http,
            &addrs(&["1.2.3.4:8080"]),
        );
        assert_eq!(literal.config.len(), 1, "a literal needs no resolve entry");
    }

    #[test]
    fn git_remotes_name_the_checked_address() {
        let p = pinned(
            "git://git.example/r.git",
            "git.example",
            9418,
            UrlKind::Git,
            &addrs(&["93.184.216.34:9418"]),
        );
        assert_eq!(p.url, "git://93.184.216.34:9418/r.git");
        let p = pinned(
            "git://git.example:9000/a/b",
            "git.example",
            9000,
            UrlKind::Git,
            &addrs(&["[2606:2800::1]:9000"]),
        );
        assert_eq!(p.url, "git://[2606:2800::1]:9000/a/b");
    }

    #[test]
    fn ssh_remotes_connect_to_the_checked_address() {
        let p = pinned(
            "git@git.example:o/r.git",
            "git.example",
            22,
            UrlKind::Ssh,
            &addrs(&["93.184.216.34:22"]),
        );
        assert_eq!(
            p.ssh,
            Some(("git.example".into(), "93.184.216.34".parse().expect("ip")))
        );
        assert_eq!(p.url, "git@git.example:o/r.git");
    }

    #[tokio::test]
    async fn refused_remotes_never_reach_git() {
        let none = Outbound::default();
        for url in [
            "http://127.0.0.1:8080/r",
            "https://localhost/r",
            "git://169.254.169.254/r",
            "ssh://git@[::1]/r",
            "git@10.0.0.7:o/r",
            "https://[::ffff:127.0.0.1]/r",
        ] {
            let err = pin(&none, url).await.expect_err(url);
            assert!(matches!(err, GitError::Outbound(_)), "{url}: {err}");
            assert_eq!(err.status_code().1, "OUTBOUND_DENIED", "{url}");
        }
        let allowed = Outbound::new(vec!["127.0.0.1".into()]).expect("allow list");
        let p = pin(&allowed, "git://127.0.0.1:9418/r")
            .await
            .expect("allowed");
        assert_eq!(p.url, "git://127.0.0.1:9418/r");
    }
}
