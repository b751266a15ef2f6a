//! aio-hyper against peers that are not aio, on every backend: curl as
//! the client of `serve` (HTTP/1.1 with a reused connection, HTTP/2 with
//! prior knowledge, a 1 MiB upload), and the pooled `Client` against a
//! plain Python server that closes each connection right after its
//! response, as a server with a short idle timeout does. Without `curl`
//! or `python3` a test says so and passes, unless `AIO_REQUIRE_PEERS=1`
//! (as `.ci/run` sets), where a missing peer fails.

use aio_hyper::hyper::body::Incoming;
use aio_hyper::hyper::service::service_fn;
use aio_hyper::hyper::{Request, Response};
use aio_hyper::{BodyExt, Bytes, Client, Empty, Full, serve};
use aio_net::{PIPE, TcpListener, create_subprocess_exec};
use aio_test::{Dir, TestResult, backend_tests, have_peer};

/// Runs `program args`, returns its standard output; a failure (with its
/// standard error) is the test's.
async fn output(program: &str, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let mut p = create_subprocess_exec(program, args.to_vec())
        .stdout(PIPE)
        .stderr(PIPE)
        .await?;
    let (out, err) = p.communicate(None).await?;
    let code = p.wait().await?;
    let (out, err) = (out.unwrap_or_default(), err.unwrap_or_default());
    if code != 0 {
        return Err(format!("{program} exited with {code}: {}", String::from_utf8_lossy(&err)).into());
    }
    Ok(String::from_utf8(out)?)
}

/// curl as the client of `serve`: two requests on one connection (curl
/// reuses it: one connect), HTTP/2 with prior knowledge, and an upload of
/// 1 MiB whose size the service reports.
async fn curl_against_serve() -> TestResult {
    if !have_peer("curl") {
        return Ok(());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let service = service_fn(|req: Request<Incoming>| async move {
        let what = format!("{} {:?}", req.uri().path(), req.version());
        let body = req.into_body().collect().await?.to_bytes();
        Ok::<_, aio_hyper::hyper::Error>(Response::new(Full::new(Bytes::from(format!("{what} {}", body.len())))))
    });
    let server = aio_core::create_task(async move { serve(&listener, service).await });

    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let got = output("curl", &["-sS", "--max-time", "20", "-w", "|%{num_connects}\n", &a, &b]).await?;
    assert_eq!(got, "/a HTTP/1.1 0|1\n/b HTTP/1.1 0|0\n");

    let h2 = format!("{base}/h2");
    let args = [
        "-sS",
        "--max-time",
        "20",
        "--http2-prior-knowledge",
        "-w",
        "|%{http_version}\n",
        &h2,
    ];
    assert_eq!(output("curl", &args).await?, "/h2 HTTP/2.0 0|2\n");

    let dir = Dir::new("curl-upload");
    let file = dir.path().join("upload");
    std::fs::write(&file, aio_test::payload(1 << 20, 3))?;
    let (post, data) = (format!("{base}/up"), format!("@{}", file.display()));
    let args = ["-sS", "--max-time", "20", "--data-binary", &data, &post];
    assert_eq!(output("curl", &args).await?, "/up HTTP/1.1 1048576");

    server.cancel();
    let _ = server.await;
    Ok(())
}

/// A Python server that answers one request per connection with a
/// keep-alive response and closes the connection right after it: the
/// client's pooled connection is dead by the time (or as) it is reused.
const PY_CLOSING_SERVER: &str = r#"
import socket, sys
n = int(sys.argv[1])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
for i in range(n):
    c, _ = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    if data:
        body = f"ok {i}".encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    c.close()
print("served", n, flush=True)
"#;

/// The pooled client against a server that closes idle connections: every
/// request gets its answer (a request that meets a dead pooled connection
/// is sent again on a new one), and the client opens no more connections
/// than the server accepted.
async fn client_against_a_server_that_closes_idle_connections() -> TestResult {
    if !have_peer("python3") {
        return Ok(());
    }
    const REQUESTS: usize = 5;
    let mut py = create_subprocess_exec("python3", ["-c", PY_CLOSING_SERVER, &REQUESTS.to_string()])
        .stdout(PIPE)
        .await?;
    let mut out = py.stdout.take().expect("piped");
    let port: u16 = String::from_utf8(out.readline().await?)?.trim().parse()?;
    let client: Client<Empty<Bytes>> = Client::new();
    for i in 0..REQUESTS {
        let res = client.get(format!("http://127.0.0.1:{port}/{i}").parse()?).await?;
        let body = res.into_body().collect().await?.to_bytes();
        assert_eq!(body, format!("ok {i}").as_bytes());
        // Let the server's close arrive before the next request, some of
        // the time; either way the request must get its answer.
        if i % 2 == 1 {
            aio_core::sleep(0.005).await?;
        }
    }
    assert_eq!(
        String::from_utf8(out.readline().await?)?,
        format!("served {REQUESTS}\n")
    );
    assert_eq!(py.wait().await?, 0);
    Ok(())
}

backend_tests!(curl_against_serve, client_against_a_server_that_closes_idle_connections);
