//! MLLP over TLS (rustls on the server): a rustls client and Python's `ssl`
//! module get AA beside a plain listener; plain TCP on the TLS port fails
//! cleanly; mutual TLS refuses clients without a certificate from its CA;
//! SIGHUP rotates the certificate without dropping open connections; a
//! stalled handshake is cut off at `connect_timeout`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::interop::{INTEROP_DIR, python};
use crate::support::tls::{CertFiles, Pki, TlsClient, peer_common_name, tls_config, tls_connect};
use crate::support::{Sluice, ack_field, adt, metric_sum, read_to_close, wait_until};

fn tls_server(server: &CertFiles, client_ca: Option<&Path>, extra: &str) -> Sluice {
    Sluice::start(&format!("{extra}\n{}", tls_config(server, client_ca)))
}

fn metric(sluice: &Sluice, name: &str) -> f64 {
    metric_sum(&sluice.admin_get("/metrics", None).1, name, &[])
}

fn connect(sluice: &Sluice, pki: &Pki, client: Option<&CertFiles>) -> std::io::Result<TlsClient> {
    tls_connect(sluice.tls_addr.expect("a TLS listener"), &pki.ca_file(), client)
}

/// Python's `ssl` + the `hl7` package's MLLP client: Ok(ACK lines) or Err(stderr).
fn python_tls_send(sluice: &Sluice, pki: &Pki, client: Option<&CertFiles>, messages: &[Vec<u8>]) -> Result<Vec<serde_json::Value>, String> {
    let addr = sluice.tls_addr.unwrap();
    let mut command = Command::new(python());
    command.arg(Path::new(INTEROP_DIR).join("tls_send.py")).arg(addr.ip().to_string()).arg(addr.port().to_string()).arg(pki.ca_file());
    if let Some(files) = client {
        command.arg("--cert").arg(&files.cert).arg("--key").arg(&files.key);
    }
    for message in messages {
        command.arg(String::from_utf8(message.clone()).unwrap());
    }
    let out = command.output().expect("run tls_send.py");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    match out.status.code() {
        Some(0) => Ok(stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()),
        Some(3) => Err(stderr),
        _ => panic!("tls_send.py failed:\n{stdout}{stderr}\nserver log:\n{}", sluice.log()),
    }
}

#[test]
fn rustls_and_python_ssl_clients_get_aa_beside_the_plain_listener() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let sluice = tls_server(&pki.server("server-one"), None, "");
    assert_ne!(sluice.tls_addr, Some(sluice.addr), "two listeners");

    let mut rustls_client = connect(&sluice, &pki, None).expect("TLS handshake");
    assert_eq!(peer_common_name(&rustls_client), "server-one");
    let ack = rustls_client.send(&adt("TLS-RUSTLS-1"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AA", "{}", String::from_utf8_lossy(&ack));
    assert_eq!(ack_field(&ack, "MSA", 2), "TLS-RUSTLS-1");

    let acks = python_tls_send(&sluice, &pki, None, &[adt("TLS-PY-1"), adt("TLS-PY-2")]).expect("Python's ssl module connects");
    assert_eq!(acks.len(), 2, "{acks:?}");
    for (ack, id) in acks.iter().zip(["TLS-PY-1", "TLS-PY-2"]) {
        assert_eq!(ack["msa1"], "AA", "{ack}");
        assert_eq!(ack["msa2"], id, "{ack}");
    }

    // Plain TCP keeps working on its own port.
    assert_eq!(ack_field(&sluice.client().send(&adt("PLAIN-1")), "MSA", 1), "AA");
    assert_eq!(sluice.outbox("archive"), ["TLS-RUSTLS-1", "TLS-PY-1", "TLS-PY-2", "PLAIN-1"]);
}

#[test]
fn plain_tcp_on_the_tls_port_fails_cleanly() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let sluice = tls_server(&pki.server("server-one"), None, "");

    let mut plain = std::net::TcpStream::connect(sluice.tls_addr.unwrap()).unwrap();
    std::io::Write::write_all(&mut plain, &[&[0x0B][..], &adt("CLEAR-1"), &[0x1C, 0x0D]].concat()).unwrap();
    let answer = read_to_close(&mut plain, Duration::from_secs(30));
    assert!(!answer.windows(3).any(|w| w == b"MSA"), "no HL7 answer in the clear: {answer:?}");
    // At most a TLS alert record (content type 21), then the close.
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");

    wait_until(Duration::from_secs(10), "the failed handshake counted", || metric(&sluice, "sluice_tls_handshake_failures") >= 1.0);
    assert!(sluice.log().contains("TLS handshake failed"), "{}", sluice.log());
    let mut client = connect(&sluice, &pki, None).unwrap();
    assert_eq!(ack_field(&client.send(&adt("TLS-AFTER")), "MSA", 1), "AA");
    assert_eq!(sluice.outbox("archive"), ["TLS-AFTER"], "nothing of the clear-text frame was stored");
}

/// The server judges a TLS 1.3 client's certificate after the client
/// finished its side, so a refusal shows at the client's first read.
fn refused(result: std::io::Result<TlsClient>, control_id: &str) -> bool {
    let Ok(mut client) = result else { return true };
    if client.try_send_frame(&adt(control_id)).is_err() {
        return true;
    }
    !matches!(client.try_read_frame(), Ok(Some(_)))
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_from_its_ca() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let stranger = Pki::new(scratch.path(), "stranger");
    let sluice = tls_server(&pki.server("server-one"), Some(&pki.ca_file()), "");

    assert!(refused(connect(&sluice, &pki, None), "NO-CERT"), "a client without a certificate is refused");
    assert!(refused(connect(&sluice, &pki, Some(&stranger.client("outsider"))), "WRONG-CA"), "a certificate from another CA is refused");
    let without = python_tls_send(&sluice, &pki, None, &[adt("PY-NO-CERT")]);
    assert!(without.is_err(), "Python without a certificate is refused: {without:?}");

    let lab = pki.client("lab-analyser");
    let mut client = connect(&sluice, &pki, Some(&lab)).expect("handshake with a certificate");
    assert_eq!(ack_field(&client.send(&adt("WITH-CERT")), "MSA", 1), "AA");
    let acks = python_tls_send(&sluice, &pki, Some(&lab), &[adt("PY-WITH-CERT")]).expect("Python with a certificate");
    assert_eq!(acks[0]["msa1"], "AA");

    assert_eq!(sluice.outbox("archive"), ["WITH-CERT", "PY-WITH-CERT"], "nothing from refused clients");
    let log = sluice.log();
    let refusals = log.lines().filter(|l| l.contains("TLS handshake failed") && l.contains("mutual TLS") && l.contains("peer=127.0.0.1:")).count();
    assert!(refusals >= 3, "each refusal logged with the client's address:\n{log}");
}

/// Replaces a file the way deployment tools do: written beside, renamed over.
fn replace(target: &Path, from: &Path) {
    let staging = target.with_extension("new");
    std::fs::copy(from, &staging).unwrap();
    std::fs::rename(&staging, target).unwrap();
}

#[test]
fn sighup_rotates_the_certificate_without_dropping_open_connections() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let live = CertFiles { cert: scratch.path().join("live.pem"), key: scratch.path().join("live.key") };
    let (one, two) = (pki.server("server-one"), pki.server("server-two"));
    replace(&live.cert, &one.cert);
    replace(&live.key, &one.key);
    let sluice = tls_server(&live, None, "");

    let mut before = connect(&sluice, &pki, None).unwrap();
    assert_eq!(peer_common_name(&before), "server-one");
    assert_eq!(ack_field(&before.send(&adt("ROT-1")), "MSA", 1), "AA");

    replace(&live.cert, &two.cert);
    replace(&live.key, &two.key);
    sluice.signal("HUP");
    wait_until(Duration::from_secs(10), "the reload logged", || sluice.log().contains("TLS certificate, key and client CA reloaded"));

    assert_eq!(ack_field(&before.send(&adt("ROT-2")), "MSA", 1), "AA", "the connection opened before SIGHUP still works");
    let mut after = connect(&sluice, &pki, None).unwrap();
    assert_eq!(peer_common_name(&after), "server-two", "a new connection sees the new certificate");
    assert_eq!(ack_field(&after.send(&adt("ROT-3")), "MSA", 1), "AA");

    // A broken certificate is refused; the current one keeps serving.
    std::fs::write(scratch.path().join("broken.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").unwrap();
    replace(&live.cert, &scratch.path().join("broken.pem"));
    sluice.signal("HUP");
    wait_until(Duration::from_secs(10), "the refusal logged", || sluice.log().contains("TLS reload refused"));
    assert!(sluice.log().contains("live.pem"), "the refusal names the file:\n{}", sluice.log());
    let mut still = connect(&sluice, &pki, None).unwrap();
    assert_eq!(peer_common_name(&still), "server-two");
    assert_eq!(ack_field(&still.send(&adt("ROT-4")), "MSA", 1), "AA");
    assert_eq!(ack_field(&before.send(&adt("ROT-5")), "MSA", 1), "AA");
    assert_eq!(metric(&sluice, "sluice_tls_reload_failures"), 1.0);
    assert_eq!(sluice.outbox("archive"), ["ROT-1", "ROT-2", "ROT-3", "ROT-4", "ROT-5"]);
}

#[test]
fn a_stalled_handshake_is_closed_at_connect_timeout() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let sluice = tls_server(&pki.server("server-one"), None, "connect_timeout = \"1s\"");
    let mut silent = std::net::TcpStream::connect(sluice.tls_addr.unwrap()).unwrap();
    let started = std::time::Instant::now();
    assert!(read_to_close(&mut silent, Duration::from_secs(30)).is_empty());
    assert!(started.elapsed() < Duration::from_secs(20), "closed by connect_timeout, not idle_timeout (30 s)");
    wait_until(Duration::from_secs(10), "the timeout logged", || sluice.log().contains("within connect_timeout"));
}

#[test]
fn tls_only_and_bad_tls_settings() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let server = pki.server("server-one");

    // `listen = "off"`: TLS alone, announced as the listening address.
    let mut only = Sluice::prepare(&format!("{}\n[connectors.archive]\n", tls_config(&server, None)));
    only.launch_with_env(&[("SLUICE_LISTEN", "off")]);
    assert_eq!(only.tls_addr, Some(only.addr));
    let mut client = connect(&only, &pki, None).unwrap();
    assert_eq!(ack_field(&client.send(&adt("ONLY-TLS")), "MSA", 1), "AA");

    // A missing key file stops start-up, naming the file.
    let missing = CertFiles { cert: server.cert.clone(), key: scratch.path().join("nowhere.key") };
    let config = scratch.path().join("bad.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{}", scratch.path().join("data").display().to_string(), tls_config(&missing, None)),
    )
    .unwrap();
    let out = Command::new(crate::support::SLUICE).args(["serve", "--config"]).arg(&config).env("SLUICE_ADMIN__LISTEN", "off").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nowhere.key") && stderr.contains("cannot read"), "{stderr}");
}

// ------------------------------------------------------------ outbound

/// `[outbound_tls]` for the destination `localhost:PORT`.
fn outbound_tls(port: u16, ca: &Path, client: Option<&CertFiles>) -> String {
    let mut table = format!("[outbound_tls.\"localhost:{port}\"]\nca = {:?}\n", ca.display().to_string());
    if let Some(files) = client {
        table += &format!("cert = {:?}\nkey = {:?}\n", files.cert.display().to_string(), files.key.display().to_string());
    }
    table
}

fn forwarding_to(port: u16) -> String {
    let destination = format!("localhost:{port}");
    format!(
        "[connectors.lab]\nplugin = \"mllp\"\nconfig = {{ destination = \"{destination}\" }}\nretry = {{ initial_backoff = \"50ms\", max_backoff = \"200ms\", max_attempts = 1000, jitter = 0.0 }}\n\
         [plugins.mllp]\nallow = {{ mllp = [\"{destination}\"] }}\n"
    )
}

/// The stock `mllp` connector forwards over mutual TLS to a second Sluice:
/// with the receiver's CA and a client certificate every message arrives in
/// order; a sender that does not trust the receiver's certificate delivers
/// nothing and says why.
#[test]
fn mllp_forwarding_over_mutual_tls_to_a_second_sluice() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let stranger = Pki::new(scratch.path(), "stranger");
    let mut receiver = Sluice::prepare(&format!("{}[connectors.inbox]\n", tls_config(&pki.server("receiver"), Some(&pki.ca_file()))));
    receiver.launch();
    let port = receiver.tls_addr.unwrap().port();

    let mut sender = Sluice::prepare(&format!("{}{}", forwarding_to(port), outbound_tls(port, &pki.ca_file(), Some(&pki.client("sender")))));
    sender.launch();
    let mut client = sender.client();
    for id in ["FWD-1", "FWD-2", "FWD-3"] {
        assert_eq!(ack_field(&client.send(&adt(id)), "MSA", 1), "AA");
    }
    let mut inbox = Vec::new();
    wait_until(Duration::from_secs(30), "the forwarded messages at the receiver", || {
        inbox = receiver.outbox("inbox");
        inbox.len() >= 3
    });
    assert_eq!(inbox, ["FWD-1", "FWD-2", "FWD-3"]);

    let mut doubter = Sluice::prepare(&format!("{}{}", forwarding_to(port), outbound_tls(port, &stranger.ca_file(), Some(&pki.client("doubter")))));
    doubter.launch();
    assert_eq!(ack_field(&doubter.client().send(&adt("FWD-UNTRUSTED")), "MSA", 1), "AA");
    let mut last_error = String::new();
    wait_until(Duration::from_secs(30), "a failed attempt noted", || {
        let queued = doubter.cli_json(&["outbox", "list", "lab"]);
        last_error = queued[0]["last_error"].as_str().unwrap_or_default().to_string();
        !last_error.is_empty()
    });
    assert!(last_error.contains("TLS handshake") && last_error.contains("certificate"), "{last_error}");
    assert_eq!(receiver.outbox("inbox").len(), 3, "nothing reached the receiver from a sender that does not trust it");
}

/// A one-request-at-a-time HTTPS server in this process: answers 200 to
/// every POST and hands over the bodies it got.
fn https_sink(server: &CertFiles) -> (std::net::SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    use rustls::pki_types::pem::PemObject;
    use std::io::{BufRead, BufReader, Read, Write};
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&server.cert).unwrap().map(Result::unwrap).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&server.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = std::sync::Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            let mut length = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let stream = reader.get_mut();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
            let _ = tx.send(body);
        }
    });
    (addr, rx)
}

/// The stock `http` connector posts over HTTPS to a server whose
/// certificate comes from a private CA named in `[outbound_tls]`.
#[test]
fn https_delivery_to_a_server_with_a_private_ca() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let (addr, bodies) = https_sink(&pki.server("ehr"));
    let port = addr.port();
    let mut sender = Sluice::prepare(&format!(
        "[connectors.ehr]\nplugin = \"http\"\nconfig = {{ url = \"https://localhost:{port}/hl7\" }}\nretry = {{ initial_backoff = \"50ms\", max_attempts = 3, jitter = 0.0 }}\n\
         [plugins.http]\nallow = {{ http = [\"localhost:{port}\"] }}\n{}",
        outbound_tls(port, &pki.ca_file(), None)
    ));
    sender.launch();
    assert_eq!(ack_field(&sender.client().send(&adt("HTTPS-1")), "MSA", 1), "AA");
    let body = bodies.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no HTTPS request arrived; sender log:\n{}", sender.log()));
    assert_eq!(body, adt("HTTPS-1"), "the message, byte for byte");
    wait_until(Duration::from_secs(30), "the outbox drained", || sender.depths("ehr") == (0, 0));
}

/// A named interface with `tls = "default"` speaks TLS with the `[tls]`
/// certificate, beside a plain default interface, with no `tls.listen`.
#[test]
fn a_named_interface_uses_the_default_tls_certificate() {
    let scratch = tempfile::tempdir().unwrap();
    let pki = Pki::new(scratch.path(), "site");
    let server = pki.server("lab-server");
    let sluice = Sluice::start(&format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n[interfaces.lab]\nlisten = \"127.0.0.1:0\"\ntls = \"default\"\n",
        server.cert.display().to_string(),
        server.key.display().to_string()
    ));
    assert_eq!(sluice.tls_addr, None, "no TLS listener on the default interface");
    let interfaces = sluice.interfaces();
    let lab = interfaces.iter().find(|i| i["name"] == "lab").expect("lab listed");
    assert_eq!(lab["listeners"][0]["tls"], true, "{lab}");
    let addr = lab["listeners"][0]["addr"].as_str().unwrap().parse().unwrap();
    let mut client = tls_connect(addr, &pki.ca_file(), None).expect("TLS handshake");
    assert_eq!(peer_common_name(&client), "lab-server");
    assert_eq!(ack_field(&client.send(&adt("LAB-TLS-1")), "MSA", 1), "AA");
    assert_eq!(ack_field(&sluice.client().send(&adt("PLAIN-1")), "MSA", 1), "AA", "the default interface stays plain");
    let lab = sluice.interfaces().into_iter().find(|i| i["name"] == "lab").unwrap();
    assert_eq!(lab["connections"][0]["tls"], true, "{lab}");
}
