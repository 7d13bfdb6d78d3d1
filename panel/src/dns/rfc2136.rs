//! The RFC 2136 client: dynamic updates (RFC 2136) and zone transfers (AXFR, RFC 5936),
//! every message signed with TSIG (RFC 8945) and every answer's signature checked.
//!
//! - `zones()` answers the credential's zones: the server is not asked (a DNS server
//!   has no "list my zones" query), so nothing is counted.
//! - `records(zone)` is one AXFR over TCP (one record list counted): every message of
//!   the transfer must carry a valid TSIG chained to the previous one.
//! - `apply(zone, changes)` is ONE UPDATE message over TCP (one write counted): for an
//!   upsert, "delete the RRset" (class ANY) then "add" each record (class IN, with the
//!   TTL); for a delete, "delete the RRset". The server applies the message as a whole
//!   or not at all (RFC 2136 section 3.4.1.1... 3.4.2), and answers an RCODE.
//!
//! Messages go over TCP (two-byte length prefix, RFC 1035 4.2.2): no truncation, and
//! AXFR needs it anyway. The server's address goes through the outbound guard.
//! hickory-proto encodes and parses the messages and computes the TSIG MACs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::provider::{Change, Context, DnsProvider, ProviderError, RecordSet, Zone};
use crate::credentials::providers::Parts;
use crate::error::{AppError, AppResult};

const PROVIDER: &str = "rfc2136";
/// The DNS port when `server` names none.
const DEFAULT_PORT: u16 = 53;
/// How far apart the two clocks may be, in seconds (BIND's and nsupdate's default).
const FUDGE: u16 = 300;
/// The algorithms accepted, by their TSIG names.
const ALGORITHMS: &[&str] = &["hmac-sha256", "hmac-sha384", "hmac-sha512"];
/// The longest character-string inside a TXT record.
const TXT_CHUNK: usize = 255;

/// The rfc2136 client.
pub struct Client {
    ctx: Context,
    host: String,
    port: u16,
    zones: Vec<String>,
    signer: TSigner,
}

impl Client {
    /// Builds the client from a credential's fields.
    ///
    /// # Errors
    /// 400 naming the credential field at fault.
    pub fn new(ctx: Context, parts: &Parts, _config: &crate::config::Config) -> AppResult<Self> {
        let fields = Fields::parse(parts)?;
        let key_name = Name::from_ascii(format!("{}.", fields.key_name)).map_err(|e| {
            AppError::invalid_field(
                "config.tsig_key_name",
                format!("tsig_key_name is not a DNS name: {e}"),
            )
        })?;
        let signer =
            TSigner::new(fields.secret, fields.algorithm, key_name, FUDGE).map_err(|e| {
                AppError::invalid_field(
                    "config.tsig_algorithm",
                    format!("the TSIG algorithm cannot be used: {e}"),
                )
            })?;
        Ok(Self {
            ctx,
            host: fields.host,
            port: fields.port,
            zones: fields.zones,
            signer,
        })
    }

    /// The server's name and port, as the credential gives them.
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn unreachable(&self, why: impl std::fmt::Display) -> ProviderError {
        ProviderError::Unreachable {
            provider: PROVIDER,
            message: format!("{}: {why}", self.server()),
        }
    }

    fn refused(message: impl Into<String>) -> ProviderError {
        ProviderError::Refused {
            provider: PROVIDER,
            status: None,
            message: message.into(),
        }
    }

    /// The zone, if the credential names it.
    fn own_zone(&self, zone: &Zone) -> Result<Name, ProviderError> {
        let wanted = zone.name.trim_end_matches('.').to_ascii_lowercase();
        if !self.zones.contains(&wanted) {
            return Err(ProviderError::NoZone {
                provider: PROVIDER,
                zone: zone.name.clone(),
            });
        }
        fqdn(&wanted).map_err(Self::refused)
    }

    /// A TCP connection to the server, through the outbound guard.
    async fn connect(&self) -> Result<TcpStream, ProviderError> {
        let addrs = self
            .ctx
            .outbound
            .resolve(&self.host, self.port)
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut last = String::from("no address");
        for addr in addrs {
            match tokio::time::timeout(self.ctx.timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: no connection in {:?}", self.ctx.timeout),
            }
        }
        Err(self.unreachable(last))
    }

    /// Signs `message` now; the verifier of its answers.
    fn sign(&self, message: &mut Message) -> Result<(Vec<u8>, TSigVerifier), ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let verifier = message
            .finalize(&self.signer, now)
            .map_err(|e| Self::refused(format!("could not sign the message: {e}")))?
            .ok_or_else(|| Self::refused("could not sign the message"))?;
        let bytes = message
            .to_vec()
            .map_err(|e| Self::refused(format!("could not encode the message: {e}")))?;
        if bytes.len() > usize::from(u16::MAX) {
            return Err(Self::refused(format!(
                "the message is {} bytes; DNS over TCP carries 65535 at most (send fewer changes at once)",
                bytes.len()
            )));
        }
        Ok((bytes, verifier))
    }

    /// The AXFR of `origin`: every record of every message, the closing SOA left out.
    async fn transfer(&self, origin: &Name) -> Result<Vec<Record>, ProviderError> {
        let mut query = Message::query();
        query.metadata.recursion_desired = false;
        let mut q = Query::query(origin.clone(), RecordType::AXFR);
        q.set_query_class(DNSClass::IN);
        query.add_query(q);
        let id = query.metadata.id;
        let (bytes, mut verifier) = self.sign(&mut query)?;
        let mut stream = self.connect().await?;
        self.ctx.calls.record_list();
        self.exchange_write(&mut stream, &bytes).await?;
        let mut records = Vec::new();
        let mut soas = 0usize;
        loop {
            let raw = self.read_message(&mut stream).await?;
            let message = Message::from_vec(&raw)
                .map_err(|e| Self::refused(format!("the server's answer does not parse: {e}")))?;
            if message.metadata.id != id {
                return Err(Self::refused(
                    "the server answered another query (id differs)",
                ));
            }
            if message.metadata.response_code != ResponseCode::NoError {
                return Err(Self::refused(format!(
                    "the zone transfer of {} was refused: {}",
                    name_text(origin),
                    answered(&message)
                )));
            }
            verifier.verify(&raw).map_err(|e| {
                Self::refused(format!(
                    "the zone transfer's answer failed TSIG verification: {e}"
                ))
            })?;
            if records.is_empty() && message.answers.is_empty() {
                return Err(Self::refused(format!(
                    "the zone transfer of {} answered no records",
                    name_text(origin)
                )));
            }
            for record in message.answers {
                if records.is_empty() && record.record_type() != RecordType::SOA {
                    return Err(Self::refused(
                        "the zone transfer did not start with the zone's SOA",
                    ));
                }
                if record.record_type() == RecordType::SOA {
                    soas += 1;
                    if soas == 2 {
                        return Ok(records);
                    }
                }
                records.push(record);
            }
        }
    }

    async fn exchange_write(
        &self,
        stream: &mut TcpStream,
        bytes: &[u8],
    ) -> Result<(), ProviderError> {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(bytes);
        match tokio::time::timeout(self.ctx.timeout, stream.write_all(&framed)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.unreachable(format!("could not send: {e}"))),
            Err(_) => Err(self.unreachable("the server did not take the message in time")),
        }
    }

    async fn read_message(&self, stream: &mut TcpStream) -> Result<Vec<u8>, ProviderError> {
        let read = async {
            let len = stream.read_u16().await?;
            let mut buf = vec![0u8; usize::from(len)];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        match tokio::time::timeout(self.ctx.timeout, read).await {
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.unreachable("the server closed the connection before answering"))
            }
            Ok(Err(e)) => Err(self.unreachable(format!("could not read the answer: {e}"))),
            Err(_) => Err(self.unreachable(format!(
                "the server did not answer in {:?}",
                self.ctx.timeout
            ))),
        }
    }

    /// The UPDATE message of `changes` to `origin`.
    fn update_message(origin: &Name, changes: &[Change]) -> Result<Message, ProviderError> {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        let mut zone = Query::query(origin.clone(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        message.add_zone(zone);
        for change in changes {
            let (name, record_type) = change.key();
            let owner = fqdn(name).map_err(Self::refused)?;
            if !origin.zone_of(&owner) {
                return Err(Self::refused(format!(
                    "{name} is outside the zone {}",
                    name_text(origin)
                )));
            }
            let rtype: RecordType = record_type
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| Self::refused(format!("unknown record type {record_type}")))?;
            let mut delete = Record::update0(owner.clone(), 0, rtype);
            delete.dns_class = DNSClass::ANY;
            message.add_update(delete);
            if let Change::Upsert(set) = change {
                for content in &set.contents {
                    let data = rdata(rtype, content).map_err(|why| {
                        Self::refused(format!(
                            "the {record_type} record {name} cannot hold {content:?}: {why}"
                        ))
                    })?;
                    message.add_update(Record::from_rdata(owner.clone(), set.ttl, data));
                }
            }
        }
        Ok(message)
    }
}

impl DnsProvider for Client {
    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        Ok(self
            .zones
            .iter()
            .map(|z| Zone {
                id: z.clone(),
                name: z.clone(),
            })
            .collect())
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        let origin = self.own_zone(zone)?;
        let records =
            match tokio::time::timeout(self.ctx.timeout.saturating_mul(4), self.transfer(&origin))
                .await
            {
                Ok(r) => r?,
                Err(_) => return Err(self.unreachable("the zone transfer did not finish in time")),
            };
        Ok(group(records))
    }

    async fn apply(&self, zone: &Zone, changes: &[Change]) -> Result<(), ProviderError> {
        if changes.is_empty() {
            return Ok(());
        }
        let origin = self.own_zone(zone)?;
        let mut message = Self::update_message(&origin, changes)?;
        let id = message.metadata.id;
        let (bytes, mut verifier) = self.sign(&mut message)?;
        let mut stream = self.connect().await?;
        self.ctx.calls.write();
        self.exchange_write(&mut stream, &bytes).await?;
        let raw = self.read_message(&mut stream).await?;
        let answer = Message::from_vec(&raw)
            .map_err(|e| Self::refused(format!("the server's answer does not parse: {e}")))?;
        if answer.metadata.id != id {
            return Err(Self::refused(
                "the server answered another message (id differs)",
            ));
        }
        if answer.metadata.response_code != ResponseCode::NoError {
            return Err(Self::refused(format!(
                "the update of {} was refused: {}",
                name_text(&origin),
                answered(&answer)
            )));
        }
        verifier.verify(&raw).map_err(|e| {
            Self::refused(format!(
                "the server said NOERROR but its answer failed TSIG verification: {e}"
            ))
        })?;
        Ok(())
    }
}

/// "the server answered NOTAUTH (TSIG error BADSIG)" and the like.
fn answered(message: &Message) -> String {
    let code = u16::from(message.metadata.response_code);
    let tsig = message
        .signature()
        .and_then(|s| s.data.error)
        .map(|e| format!(" (TSIG error {})", tsig_error_name(e)))
        .unwrap_or_default();
    format!("the server answered {}{tsig}", rcode_name(code))
}

fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADSIG".into(),
        17 => "BADKEY".into(),
        18 => "BADTIME".into(),
        other => format!("RCODE {other}"),
    }
}

fn tsig_error_name(e: TsigError) -> String {
    match e {
        TsigError::BadSig => "BADSIG".into(),
        TsigError::BadKey => "BADKEY".into(),
        TsigError::BadTime => "BADTIME".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(code) => rcode_name(code),
    }
}

/// `name` (no trailing dot) as an absolute DNS name.
fn fqdn(name: &str) -> Result<Name, String> {
    let name = name.trim().trim_end_matches('.');
    Name::from_ascii(format!("{name}.")).map_err(|e| format!("{name} is not a DNS name: {e}"))
}

/// A name inside record content: lower case, no trailing dot (the root stays `.`).
fn name_text(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// A record's content as the module of `provider` says: as in a zone file, targets
/// without their trailing dot, TXT as its text.
fn content(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name_text(&n.0),
        RData::NS(n) => name_text(&n.0),
        RData::PTR(n) => name_text(&n.0),
        RData::ANAME(n) => name_text(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name_text(&mx.exchange)),
        RData::SRV(srv) => format!(
            "{} {} {} {}",
            srv.priority,
            srv.weight,
            srv.port,
            name_text(&srv.target)
        ),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name_text(&soa.mname),
            name_text(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        other => other.to_string(),
    }
}

/// The record data of `content` for a record of `rtype`.
fn rdata(rtype: RecordType, content: &str) -> Result<RData, String> {
    let content = content.trim();
    let number = |s: &str, what: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("{what} must be a number from 0 to 65535"))
    };
    Ok(match rtype {
        RecordType::A => RData::A(A(content
            .parse()
            .map_err(|_| "not an IPv4 address".to_owned())?)),
        RecordType::AAAA => RData::AAAA(AAAA(
            content
                .parse()
                .map_err(|_| "not an IPv6 address".to_owned())?,
        )),
        RecordType::CNAME => RData::CNAME(CNAME(fqdn(content)?)),
        RecordType::NS => RData::NS(NS(fqdn(content)?)),
        RecordType::PTR => RData::PTR(PTR(fqdn(content)?)),
        RecordType::MX => {
            let (pref, target) = content
                .split_once(char::is_whitespace)
                .ok_or("MX content is \"preference exchange\"")?;
            RData::MX(MX::new(
                number(pref, "the preference")?,
                fqdn(target.trim())?,
            ))
        }
        RecordType::SRV => {
            let parts: Vec<&str> = content.split_whitespace().collect();
            let [priority, weight, port, target] = parts[..] else {
                return Err("SRV content is \"priority weight port target\"".into());
            };
            RData::SRV(SRV::new(
                number(priority, "the priority")?,
                number(weight, "the weight")?,
                number(port, "the port")?,
                fqdn(target)?,
            ))
        }
        RecordType::TXT => {
            if content.is_empty() {
                return Err("TXT content is empty".into());
            }
            let chunks: Vec<&[u8]> = content.as_bytes().chunks(TXT_CHUNK).collect();
            RData::TXT(TXT::from_bytes(chunks))
        }
        other => RData::try_from_str(other, content).map_err(|e| e.to_string())?,
    })
}

/// The transferred records as record sets (by name and type, first TTL seen), sorted.
fn group(records: Vec<Record>) -> Vec<RecordSet> {
    let mut sets: Vec<RecordSet> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> =
        std::collections::HashMap::new();
    for record in records {
        let name = name_text(&record.name);
        let rtype = record.record_type().to_string().to_ascii_uppercase();
        let text = content(&record.data);
        match index.get(&(name.clone(), rtype.clone())) {
            Some(&i) => sets[i].contents.push(text),
            None => {
                index.insert((name.clone(), rtype.clone()), sets.len());
                sets.push(RecordSet {
                    name,
                    record_type: rtype,
                    ttl: record.ttl,
                    contents: vec![text],
                });
            }
        }
    }
    let mut sets: Vec<RecordSet> = sets.into_iter().map(RecordSet::normalized).collect();
    sets.sort_by(|a, b| (&a.name, &a.record_type).cmp(&(&b.name, &b.record_type)));
    sets
}

/// A credential's fields, checked.
struct Fields {
    host: String,
    port: u16,
    zones: Vec<String>,
    key_name: String,
    algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
}

/// A domain name: labels of letters, digits, hyphens and underscores (1 to 63 each),
/// 253 characters in all; a trailing dot is fine.
fn valid_domain(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `server`: `host`, `host:port`, an IP address, `[v6]:port` or a bare IPv6 address.
fn parse_server(given: &str) -> Option<(String, u16)> {
    let port_of = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    let (host, port) = if let Some(rest) = given.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match tail {
            "" => DEFAULT_PORT,
            t => port_of(t.strip_prefix(':')?)?,
        };
        (host.to_owned(), port)
    } else if given.matches(':').count() > 1 {
        given.parse::<std::net::Ipv6Addr>().ok()?;
        (given.to_owned(), DEFAULT_PORT)
    } else if let Some((host, port)) = given.split_once(':') {
        (host.to_owned(), port_of(port)?)
    } else {
        (given.to_owned(), DEFAULT_PORT)
    };
    let ok = host.parse::<std::net::IpAddr>().is_ok() || valid_domain(&host);
    ok.then(|| (host.trim_end_matches('.').to_ascii_lowercase(), port))
}

impl Fields {
    fn parse(parts: &Parts) -> AppResult<Self> {
        let server = text(&parts.public, "server");
        let (host, port) = parse_server(server).ok_or_else(|| {
            AppError::invalid_field(
                "config.server",
                "server must be a host or IP address, optionally with a port (ns1.example.net:53, 192.0.2.53, [2001:db8::53]:5353)",
            )
        })?;
        let mut zones: Vec<String> = Vec::new();
        for zone in text(&parts.public, "zones").split(',') {
            let zone = zone.trim();
            if zone.is_empty() {
                continue;
            }
            if !valid_domain(zone) {
                return Err(AppError::invalid_field(
                    "config.zones",
                    format!("zones must be domain names separated by commas; {zone:?} is not one"),
                ));
            }
            let zone = zone.trim_end_matches('.').to_ascii_lowercase();
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        if zones.is_empty() {
            return Err(AppError::invalid_field(
                "config.zones",
                "zones must name at least one zone (example.com, example.net)",
            ));
        }
        let key_name = text(&parts.public, "tsig_key_name");
        if !valid_domain(key_name) {
            return Err(AppError::invalid_field(
                "config.tsig_key_name",
                "tsig_key_name must be a DNS name (like shardlyn-key or shardlyn.example.com)",
            ));
        }
        let algorithm = match text(&parts.public, "tsig_algorithm").to_ascii_lowercase() {
            a if a.is_empty() || a == "hmac-sha256" => TsigAlgorithm::HmacSha256,
            a if a == "hmac-sha384" => TsigAlgorithm::HmacSha384,
            a if a == "hmac-sha512" => TsigAlgorithm::HmacSha512,
            _ => {
                return Err(AppError::invalid_field(
                    "config.tsig_algorithm",
                    format!("tsig_algorithm must be one of {}", ALGORITHMS.join(", ")),
                ));
            }
        };
        let secret_text: String = text(&parts.secrets, "tsig_secret")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let secret = base64::engine::general_purpose::STANDARD
            .decode(&secret_text)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                AppError::invalid_field(
                    "config.tsig_secret",
                    "tsig_secret must be the key's secret in base64 (as in the key file's secret \"...\")",
                )
            })?;
        Ok(Self {
            host,
            port,
            zones,
            key_name: key_name.trim_end_matches('.').to_ascii_lowercase(),
            algorithm,
            secret,
        })
    }
}

/// Checks a credential's fields before it is saved.
///
/// # Errors
/// 400 naming the field (`config.<name>`).
pub fn check_fields(parts: &Parts) -> AppResult<()> {
    Fields::parse(parts).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(public: &Value, secret: &str) -> Parts {
        let mut secrets = Map::new();
        secrets.insert("tsig_secret".into(), json!(secret));
        Parts {
            public: public.as_object().cloned().unwrap_or_default(),
            secrets,
        }
    }

    #[test]
    fn fields_are_checked() {
        let good = json!({"server": "127.0.0.1:5300", "zones": "Example.com., example.net", "tsig_key_name": "k1"});
        let f = Fields::parse(&parts(&good, "c2VjcmV0")).unwrap();
        assert_eq!((f.host.as_str(), f.port), ("127.0.0.1", 5300));
        assert_eq!(f.zones, vec!["example.com", "example.net"]);
        assert_eq!(f.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(
            parse_server("ns1.example.net"),
            Some(("ns1.example.net".into(), 53))
        );
        assert_eq!(parse_server("[::1]:5353"), Some(("::1".into(), 5353)));
        assert_eq!(
            parse_server("2001:db8::1"),
            Some(("2001:db8::1".into(), 53))
        );
        assert_eq!(parse_server("bad host:53"), None);
        assert_eq!(parse_server("host:99999"), None);
        for (public, secret, field) in [
            (
                json!({"server": "a b", "zones": "x.com", "tsig_key_name": "k"}),
                "c2VjcmV0",
                "config.server",
            ),
            (
                json!({"server": "ns", "zones": "x..com", "tsig_key_name": "k"}),
                "c2VjcmV0",
                "config.zones",
            ),
            (
                json!({"server": "ns", "zones": " , ", "tsig_key_name": "k"}),
                "c2VjcmV0",
                "config.zones",
            ),
            (
                json!({"server": "ns", "zones": "x.com", "tsig_key_name": "a b"}),
                "c2VjcmV0",
                "config.tsig_key_name",
            ),
            (
                json!({"server": "ns", "zones": "x.com", "tsig_key_name": "k", "tsig_algorithm": "hmac-md5"}),
                "c2VjcmV0",
                "config.tsig_algorithm",
            ),
            (
                json!({"server": "ns", "zones": "x.com", "tsig_key_name": "k"}),
                "not base64!",
                "config.tsig_secret",
            ),
        ] {
            let e = Fields::parse(&parts(&public, secret))
                .err()
                .expect("refused");
            assert!(format!("{e:?}").contains(field), "{field}: {e:?}");
        }
    }

    #[test]
    fn contents_round_trip() {
        for (t, c) in [
            (RecordType::A, "203.0.113.10"),
            (RecordType::AAAA, "2001:db8::10"),
            (RecordType::CNAME, "mc.example.com"),
            (RecordType::SRV, "0 5 25565 mc.example.com"),
            (RecordType::MX, "10 mail.example.com"),
            (RecordType::TXT, "heritage=shardlyn,owner=x,type=A"),
        ] {
            assert_eq!(content(&rdata(t, c).unwrap()), c);
        }
        let long = "x".repeat(600);
        let RData::TXT(txt) = rdata(RecordType::TXT, &long).unwrap() else {
            panic!("not TXT")
        };
        assert_eq!(txt.txt_data.len(), 3);
        assert_eq!(content(&RData::TXT(txt)), long);
        assert!(rdata(RecordType::SRV, "0 5 mc.example.com").is_err());
    }
}
