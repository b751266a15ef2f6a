//! TLS on asyncio's streams, on every backend, with certificates made in
//! the test (a CA of its own, rcgen): echo of 0 B to 4 MiB, SNI and ALPN,
//! verification failures (wrong name, expired, self-signed, no common
//! ALPN protocol), peers that do not speak TLS, handshake timeouts on both
//! sides, close_notify, cancelled reads that lose nothing, bounded drain,
//! and STARTTLS upgrades with `start_tls`.
#![cfg(feature = "tls")]
// The cancellation test shares one reader between tasks that take turns.
#![allow(clippy::await_holding_refcell_ref)]

mod servers;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use aio_core::{sleep, timeout};
use aio_net::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use aio_net::rustls::{self, CertificateError, RootCertStore};
use aio_net::{
    StreamError, StreamReader, StreamWriter, TlsAcceptor, TlsConnector, TlsError, open_connection, open_connection_tls,
    start_tls, start_tls_server,
};
use aio_test::{backend_tests, payload};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use servers::{echo_round_trip, echo_server_tls, local_server, local_server_tls};

/// A certificate authority of the test's own, and leaf certificates from it.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "aio test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        Pki {
            ca: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A server certificate for `names`, signed by the CA (or by itself).
    fn leaf(
        &self,
        names: &[&str],
        expired: bool,
        self_signed: bool,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.insert_extended_key_usage(ExtendedKeyUsagePurpose::ServerAuth);
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = if self_signed {
            p.self_signed(&key).unwrap()
        } else {
            p.signed_by(&key, &self.ca).unwrap()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    fn acceptor(&self, names: &[&str]) -> TlsAcceptor {
        let (certs, key) = self.leaf(names, false, false);
        TlsAcceptor::new(certs, key).unwrap()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        TlsConnector::with_roots(roots)
    }
}

/// The `TlsError` inside an `io::Error`, if any.
fn tls_error(e: &io::Error) -> Option<&TlsError> {
    e.get_ref().and_then(|i| i.downcast_ref::<TlsError>())
}

async fn echo_round_trips() -> io::Result<()> {
    let pki = Pki::new();
    let server = echo_server_tls(pki.acceptor(&["localhost", "127.0.0.1"])).await?;
    let port = server.sockets()[0].port();
    let tls = pki.connector();
    for (i, size) in [0usize, 1, 100, 16 * 1024 + 1, 64 * 1024, 1 << 20, 4 << 20]
        .into_iter()
        .enumerate()
    {
        let (mut r, w) = open_connection_tls("127.0.0.1", port, &tls).await?;
        let w = echo_round_trip(&mut r, w, payload(size, i as u64), 100_000).await?;
        w.close();
        w.wait_closed().await?;
    }
    server.close();
    server.wait_closed().await?;
    Ok(())
}

async fn lines_sni_and_alpn() -> io::Result<()> {
    let pki = Pki::new();
    let seen = Rc::new(RefCell::new(None));
    let seen2 = seen.clone();
    let server = local_server_tls(
        move |mut r: StreamReader, w: StreamWriter| {
            let seen = seen2.clone();
            async move {
                *seen.borrow_mut() = w.tls_info();
                while let Ok(line) = r.readline().await {
                    if line.is_empty() {
                        break;
                    }
                    w.write(&line.to_ascii_uppercase());
                }
                w.close();
                Ok::<_, io::Error>(())
            }
        },
        pki.acceptor(&["localhost"]).alpn_protocols(["h2", "echo/1"]),
    )
    .await?;
    let port = server.sockets()[0].port();
    let tls = pki.connector().alpn_protocols(["echo/1"]);
    let (mut r, w) = open_connection_tls("localhost", port, &tls).await?;
    let info = w.tls_info().expect("a TLS writer has TLS info");
    assert_eq!(info.alpn_protocol.as_deref(), Some(&b"echo/1"[..]));
    assert_eq!(info.protocol_version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert!(info.cipher_suite.is_some());
    assert_eq!(info.peer_certificates.len(), 1);
    w.writelines([&b"one\n"[..], b"two\n", b"three"]);
    w.write_eof();
    assert_eq!(r.readline().await?, b"ONE\n");
    assert_eq!(r.readexactly(4).await?, b"TWO\n");
    assert_eq!(r.read(-1).await?, b"THREE");
    assert!(r.at_eof());
    let server_info = seen.borrow().clone().expect("the handler ran");
    assert_eq!(server_info.server_name.as_deref(), Some("localhost"), "SNI");
    assert_eq!(server_info.alpn_protocol.as_deref(), Some(&b"echo/1"[..]));
    assert!(server_info.peer_certificates.is_empty());
    // A plain connection has no TLS info.
    let (_r, w) = open_connection("127.0.0.1", port).await?;
    assert!(w.tls_info().is_none());
    server.close();
    Ok(())
}

/// The handshake error a client gets from a server with `acceptor`.
async fn client_error(acceptor: TlsAcceptor, connector: &TlsConnector, host: &str) -> io::Result<io::Error> {
    let ran = Rc::new(Cell::new(false));
    let ran2 = ran.clone();
    let server = local_server_tls(
        move |_r: StreamReader, _w: StreamWriter| {
            ran2.set(true);
            async {}
        },
        acceptor,
    )
    .await?;
    let port = server.sockets()[0].port();
    let res = open_connection_tls(host, port, connector).await;
    let e = res.expect_err("the handshake must fail");
    assert!(!ran.get(), "the handler must not run after a failed handshake");
    server.close();
    Ok(e)
}

async fn wrong_hostname() -> io::Result<()> {
    let pki = Pki::new();
    // The certificate names "localhost"; the client asks for 127.0.0.1.
    let e = client_error(pki.acceptor(&["localhost"]), &pki.connector(), "127.0.0.1").await?;
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    let t = tls_error(&e).expect("a TlsError inside");
    assert!(t.is_handshake());
    assert!(
        matches!(
            t.error(),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
                | rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("127.0.0.1") && msg.contains("not valid for name"), "{msg}");

    // start_tls with a server_hostname that is not a name at all.
    let server = echo_server_tls(pki.acceptor(&["localhost"])).await?;
    let (r, w) = open_connection("127.0.0.1", server.sockets()[0].port()).await?;
    let e = start_tls(r, w, &pki.connector(), "not a host name!").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    server.close();
    Ok(())
}

async fn expired_certificate() -> io::Result<()> {
    let pki = Pki::new();
    let (certs, key) = pki.leaf(&["localhost"], true, false);
    let e = client_error(TlsAcceptor::new(certs, key)?, &pki.connector(), "localhost").await?;
    let t = tls_error(&e).expect("a TlsError inside");
    assert!(
        matches!(
            t.error(),
            rustls::Error::InvalidCertificate(CertificateError::Expired)
                | rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("expired"), "{e}");
    Ok(())
}

async fn self_signed_certificate() -> io::Result<()> {
    let pki = Pki::new();
    let (certs, key) = pki.leaf(&["localhost"], false, true);
    // Our CA does not vouch for it, and neither do the default roots.
    for connector in [pki.connector(), TlsConnector::new()] {
        let e = client_error(
            TlsAcceptor::new(certs.clone(), key.clone_key())?,
            &connector,
            "localhost",
        )
        .await?;
        let t = tls_error(&e).expect("a TlsError inside");
        assert!(
            matches!(
                t.error(),
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
            ),
            "{e}"
        );
    }
    Ok(())
}

async fn no_common_alpn_protocol() -> io::Result<()> {
    let pki = Pki::new();
    let e = client_error(
        pki.acceptor(&["localhost"]).alpn_protocols(["h2"]),
        &pki.connector().alpn_protocols(["http/1.1"]),
        "localhost",
    )
    .await?;
    assert!(tls_error(&e).is_some(), "{e}");
    assert!(e.to_string().contains("NoApplicationProtocol"), "{e}");
    Ok(())
}

/// A plain-text server: answers anything with an HTTP error, or says nothing.
async fn plain_server(reply: &'static [u8]) -> io::Result<aio_net::Server> {
    local_server(move |mut r: StreamReader, w: StreamWriter| async move {
        if !reply.is_empty() {
            let _ = r.read(1024).await;
            w.write(reply);
            w.close();
        } else {
            // Never answers; the client's timeout must end it.
            let _ = r.read(-1).await;
        }
    })
    .await
}

async fn peer_not_speaking_tls() -> io::Result<()> {
    let pki = Pki::new();
    let server = plain_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await?;
    let e = open_connection_tls("127.0.0.1", server.sockets()[0].port(), &pki.connector())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("not speaking TLS"), "{e}");
    server.close();

    // A plain client on a TLS server: the server refuses it, the handler
    // never runs, and the client reads the end of the connection.
    let ran = Rc::new(Cell::new(false));
    let ran2 = ran.clone();
    let server = local_server_tls(
        move |_r: StreamReader, _w: StreamWriter| {
            ran2.set(true);
            async {}
        },
        pki.acceptor(&["localhost"]),
    )
    .await?;
    let (mut r, w) = open_connection("127.0.0.1", server.sockets()[0].port()).await?;
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = timeout(10.0, r.read(-1)).await??;
    // Whatever came back (an alert at most) is not HTTP.
    assert!(!got.starts_with(b"HTTP"), "{got:?}");
    assert!(!ran.get());
    server.close();
    Ok(())
}

async fn handshake_timeouts() -> io::Result<()> {
    let pki = Pki::new();
    // Client side: a server that never answers the ClientHello.
    let server = plain_server(b"").await?;
    let tls = pki.connector().handshake_timeout(Duration::from_millis(100));
    let e = open_connection_tls("127.0.0.1", server.sockets()[0].port(), &tls)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("handshake"), "{e}");
    server.close();

    // Server side: a client that connects and says nothing is dropped.
    let server = echo_server_tls(
        pki.acceptor(&["localhost"])
            .handshake_timeout(Duration::from_millis(100)),
    )
    .await?;
    let (mut r, _w) = open_connection("127.0.0.1", server.sockets()[0].port()).await?;
    let got = timeout(10.0, r.read(-1)).await??;
    assert!(got.is_empty() || got[0] == 21, "only an alert may come: {got:?}");
    assert!(r.at_eof());
    server.close();
    server.wait_closed().await?;
    Ok(())
}

async fn close_sends_close_notify() -> io::Result<()> {
    let pki = Pki::new();
    let clean = Rc::new(RefCell::new(None));
    let clean2 = clean.clone();
    let server = local_server_tls(
        move |mut r: StreamReader, w: StreamWriter| {
            let clean = clean2.clone();
            async move {
                let all = r.read(-1).await;
                *clean.borrow_mut() = Some(all.map(|d| d.len()).map_err(|e| e.to_string()));
                w.close();
            }
        },
        pki.acceptor(&["localhost"]),
    )
    .await?;
    let (mut r, w) = open_connection_tls("localhost", server.sockets()[0].port(), &pki.connector()).await?;
    w.write(b"bye");
    w.close();
    w.wait_closed().await?;
    assert!(w.is_closing());
    aio_test::until("the server saw the end", || clean.borrow().is_some()).await?;
    assert_eq!(clean.take(), Some(Ok(3)), "a clean EOF after the data");
    // Our own side shut down too: the reader ends.
    let _ = timeout(10.0, r.read(-1)).await?;
    server.close();
    Ok(())
}

/// Many records waiting at once (one per write, all sent before the
/// client reads), read a few bytes at a time: every byte, in order.
async fn many_records_read_in_small_pieces() -> io::Result<()> {
    let pki = Pki::new();
    let data = payload(64 * 257, 3);
    let expect = data.clone();
    let server = local_server_tls(
        move |_r: StreamReader, w: StreamWriter| {
            let data = data.clone();
            async move {
                for chunk in data.chunks(257) {
                    w.write(chunk);
                }
                w.drain().await?;
                w.close();
                Ok::<_, io::Error>(())
            }
        },
        pki.acceptor(&["localhost"]),
    )
    .await?;
    let (mut r, _w) = open_connection_tls("localhost", server.sockets()[0].port(), &pki.connector()).await?;
    // Let every record arrive before the first read.
    sleep(0.05).await?;
    let mut got = Vec::new();
    loop {
        let piece = r.read(5).await?;
        if piece.is_empty() {
            break;
        }
        assert!(piece.len() <= 5);
        got.extend_from_slice(&piece);
        assert!(got.len() <= expect.len(), "more bytes than were sent");
    }
    assert!(got == expect, "the bytes differ ({} of {})", got.len(), expect.len());
    server.close();
    Ok(())
}

async fn cancelled_reads_lose_nothing() -> io::Result<()> {
    let pki = Pki::new();
    let total = 300_000usize;
    let data = payload(total, 7);
    let expect = data.clone();
    // A server that trickles the payload in odd-sized pieces, and halfway
    // waits until a read of the client's was cancelled.
    let go = Rc::new(Cell::new(false));
    let go2 = go.clone();
    let server = local_server_tls(
        move |_r: StreamReader, w: StreamWriter| {
            let data = data.clone();
            let go = go2.clone();
            async move {
                for (i, chunk) in data.chunks(7_777).enumerate() {
                    w.write(chunk);
                    w.drain().await?;
                    if i % 3 == 0 {
                        sleep(0.001).await?;
                    }
                    if i == 20 {
                        aio_test::until("a cancelled read", || go.get()).await?;
                    }
                }
                w.close();
                Ok::<_, io::Error>(())
            }
        },
        pki.acceptor(&["localhost"]),
    )
    .await?;
    let (r, _w) = open_connection_tls("localhost", server.sockets()[0].port(), &pki.connector()).await?;
    let r = Rc::new(RefCell::new(r));
    let mut got = Vec::new();
    let mut timeouts = 0;
    loop {
        let r2 = r.clone();
        // Readers with a tiny deadline, many of them cancelled midway.
        let res = timeout(0.0005, async move { r2.borrow_mut().readexactly(1000).await }).await;
        match res {
            Ok(Ok(chunk)) => got.extend_from_slice(&chunk),
            Ok(Err(StreamError::IncompleteRead { partial, .. })) => {
                got.extend_from_slice(&partial);
                break;
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                timeouts += 1;
                go.set(true);
            }
        }
    }
    assert!(timeouts > 0);
    assert_eq!(got.len(), total, "({timeouts} reads were cancelled)");
    assert!(got == expect, "the bytes differ ({timeouts} reads were cancelled)");
    server.close();
    Ok(())
}

async fn drain_is_bounded() -> io::Result<()> {
    let pki = Pki::new();
    let go = Rc::new(Cell::new(false));
    let go2 = go.clone();
    let server = local_server_tls(
        move |mut r: StreamReader, _w: StreamWriter| {
            let go = go2.clone();
            async move {
                // A reader that does not read until told to.
                while !go.get() {
                    sleep(0.001).await?;
                }
                let all = r.read(-1).await?;
                Ok::<_, StreamError>(all.len())
            }
        },
        pki.acceptor(&["localhost"]),
    )
    .await?;
    let (_r, w) = open_connection_tls("localhost", server.sockets()[0].port(), &pki.connector()).await?;
    w.set_write_buffer_limits(64 * 1024, None);
    let chunk = payload(16 * 1024, 3);
    let mut most = 0;
    let mut stalled = false;
    for _ in 0..2000 {
        w.write(&chunk);
        most = most.max(w.write_buffer_size());
        match timeout(0.05, w.drain()).await {
            Ok(r) => r?,
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    assert!(
        stalled,
        "32 MB went out with nobody reading: the kernel buffers are that large?"
    );
    // Ciphertext adds a few bytes per 16 KiB record.
    assert!(most <= 64 * 1024 + 17 * 1024, "buffered {most} bytes");
    go.set(true);
    w.close();
    server.close();
    Ok(())
}

async fn starttls_upgrade() -> io::Result<()> {
    let pki = Pki::new();
    let acceptor = pki.acceptor(&["mail.test"]);
    // A line protocol that switches to TLS after "STARTTLS".
    let server = local_server(move |mut r: StreamReader, w: StreamWriter| {
        let acceptor = acceptor.clone();
        async move {
            assert_eq!(r.readline().await?, b"STARTTLS\n");
            w.write(b"220 go ahead\n");
            let (mut r, w) = start_tls_server(r, w, &acceptor).await?;
            let line = r.readline().await?;
            w.write(b"secret: ");
            w.write(&line);
            assert_eq!(w.tls_info().unwrap().server_name.as_deref(), Some("mail.test"));
            w.close();
            Ok::<_, io::Error>(())
        }
    })
    .await?;
    let (mut r, w) = open_connection("127.0.0.1", server.sockets()[0].port()).await?;
    w.write(b"STARTTLS\n");
    assert_eq!(r.readline().await?, b"220 go ahead\n");
    let (mut r, w) = start_tls(r, w, &pki.connector(), "mail.test").await?;
    w.write(b"hello\n");
    assert_eq!(r.read(-1).await?, b"secret: hello\n");
    assert!(w.tls_info().is_some());
    // A second upgrade is refused.
    let e = start_tls(r, w, &pki.connector(), "mail.test").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    server.close();
    Ok(())
}

/// The server's handshake error, when a client sends a handshake that is
/// not TLS at all, is not reported outside debug mode (asyncio's rule) and
/// the server keeps serving.
async fn server_survives_bad_handshakes() -> io::Result<()> {
    let pki = Pki::new();
    let server = echo_server_tls(pki.acceptor(&["localhost"])).await?;
    let port = server.sockets()[0].port();
    for garbage in [&b"\x16\x03\x01\x00\x05hello"[..], b"\x00\x00\x00", b"hello\r\n\r\n"] {
        let (mut r, w) = open_connection("127.0.0.1", port).await?;
        w.write(garbage);
        let _ = timeout(10.0, r.read(-1)).await?;
    }
    let (mut r, w) = open_connection_tls("localhost", port, &pki.connector()).await?;
    w.write(b"still there\n");
    assert_eq!(r.readline().await?, b"still there\n");
    server.close();
    Ok(())
}

/// `sendfile` on a TLS connection encrypts what it sends (the file's
/// bytes cannot go to the socket as they are).
async fn sendfile_over_tls() -> io::Result<()> {
    let pki = Pki::new();
    let data = payload(300_000, 77);
    let path = std::env::temp_dir().join(format!("aio-tls-sendfile-{}-{:p}", std::process::id(), &data));
    std::fs::write(&path, &data)?;
    let p2 = path.clone();
    let server = local_server_tls(
        move |_r: StreamReader, w: StreamWriter| {
            let p = p2.clone();
            async move {
                let f = std::fs::File::open(&p)?;
                w.write(b"<");
                let n = w.sendfile(&f, 10, None).await?;
                w.write(b">");
                w.close();
                w.wait_closed().await?;
                Ok::<_, io::Error>(n)
            }
        },
        pki.acceptor(&["localhost", "127.0.0.1"]),
    )
    .await?;
    let port = server.sockets()[0].port();
    let (mut r, _w) = open_connection_tls("127.0.0.1", port, &pki.connector()).await?;
    let got = r.read(-1).await.map_err(io::Error::from)?;
    let mut want = b"<".to_vec();
    want.extend_from_slice(&data[10..]);
    want.push(b'>');
    assert!(got == want, "{} bytes received, {} expected", got.len(), want.len());
    server.close();
    server.wait_closed().await?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// `Server::close_clients` while a client's handshake is under way (no
/// writer yet): the connection is shut down, the handshake fails, the
/// handler never runs, and `wait_closed` returns; the client reads EOF.
/// Once a TLS connection is up, the close goes through its writer, which
/// sends close_notify first.
async fn close_clients_during_and_after_handshakes() -> io::Result<()> {
    let pki = Pki::new();
    let served = Rc::new(Cell::new(0));
    let s2 = served.clone();
    let server = local_server_tls(
        move |mut r: StreamReader, w: StreamWriter| {
            s2.set(s2.get() + 1);
            async move {
                w.write(b"hi\n");
                let _ = r.readline().await;
            }
        },
        pki.acceptor(&["localhost", "127.0.0.1"]),
    )
    .await?;
    let port = server.sockets()[0].port();
    let (mut up_r, _up_w) = open_connection_tls("127.0.0.1", port, &pki.connector()).await?;
    assert_eq!(up_r.readline().await.map_err(io::Error::from)?, b"hi\n");
    // Connected over TCP, silent: the server waits for its ClientHello.
    let (mut raw_r, _raw_w) = open_connection("127.0.0.1", port).await?;
    aio_test::until("both connections are handled", || server.connections() == 2).await?;

    server.close();
    server.close_clients();
    timeout(10, server.wait_closed()).await.expect("wait_closed hung")?;
    assert_eq!(served.get(), 1, "the silent client never got to the handler");
    let raw = timeout(10, raw_r.read(-1))
        .await
        .expect("the raw read hung")
        .map_err(io::Error::from)?;
    assert!(raw.is_empty(), "nothing but EOF for the silent client: {raw:?}");
    // The TLS client sees a clean end (close_notify), not a truncation.
    let end = timeout(10, up_r.read(-1))
        .await
        .expect("the TLS read hung")
        .map_err(io::Error::from)?;
    assert!(end.is_empty(), "{end:?}");
    Ok(())
}

backend_tests!(
    close_clients_during_and_after_handshakes,
    sendfile_over_tls,
    echo_round_trips,
    lines_sni_and_alpn,
    wrong_hostname,
    expired_certificate,
    self_signed_certificate,
    no_common_alpn_protocol,
    peer_not_speaking_tls,
    handshake_timeouts,
    close_sends_close_notify,
    cancelled_reads_lose_nothing,
    many_records_read_in_small_pieces,
    drain_is_bounded,
    starttls_upgrade,
    server_survives_bad_handshakes,
);
