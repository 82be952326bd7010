//! Fuzzing the engine: mutated requests (bit flips, HTTP-shaped tokens spliced in, cuts,
//! repeats) fed to the request parser in memory and to a live server over loopback. The
//! verdict is never about time: no panic, parser invariants hold, and the server still
//! answers `/health` afterwards. Each test runs for `MONLIGHT_FUZZ_SECONDS` (default 2;
//! CI sets a longer budget) — `cargo fuzz` needs a nightly toolchain, which this project's
//! machines do not have, so this is the fuzz target CI runs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Conn, Framing};
use super::target::Target;
use super::{ApiError, Policy, Request, Response, Router, Server, ServerOptions};
use crate::fuzzing::{self, Mutator, Rng};
use crate::shutdown::Shutdown;

/// Well-formed requests the mutations start from.
const SEEDS: &[&[u8]] = &[
    b"GET /api/items?limit=5&q=a+b HTTP/1.1\r\nHost: h\r\nX-API-Key: k\r\n\r\n",
    b"POST /api/items HTTP/1.1\r\nHost: h\r\nX-API-Key: k\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
    b"POST /api/items HTTP/1.1\r\nHost: h\r\nX-API-Key: k\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\nT: 1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: h\r\n\r\nHEAD /health HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
];

/// Byte strings that matter to HTTP parsers, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b": ",
    b" ",
    b"\t",
    b"\0",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Host: x\r\n",
    b"chunked",
    b"0\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"%2F",
    b"%2e%2e",
    b"%00",
    b"%",
    b"//",
    b"/../",
    b"?",
    b"#",
    b"http://h",
    b"HTTP/1.1",
    b"\xff\xfe",
];

/// The engine's mutations: any seed, cuts of up to 16 bytes.
const MUTATOR: Mutator<'static> = Mutator {
    seeds: SEEDS,
    tokens: TOKENS,
    max_cut: 16,
};

/// Reads every request off `bytes` as the server would, checking the parser's promises.
fn parse_all(bytes: &[u8]) {
    let mut conn = Conn::resume(&[][..], bytes.to_vec(), Duration::from_secs(1));
    while let Ok(Some(head)) = conn.next_head() {
        if let Ok(target) = Target::parse(&head.method, &head.target) {
            let path = &target.path;
            assert!(path == "*" || path.starts_with('/'), "{path:?}");
            assert!(!path.contains("//") && !path.contains('\0'), "{path:?}");
            assert!(path.split('/').all(|s| s != "." && s != ".."), "{path:?}");
        }
        let Ok(framing) = head.framing() else { return };
        match conn.read_body(framing, 4096) {
            Ok(body) => {
                if let Framing::Length(n) = framing {
                    assert_eq!(body.len() as u64, n);
                }
                assert!(body.len() <= 4096);
            }
            Err(_) => return,
        }
    }
}

#[test]
fn fuzz_request_parser_never_panics_and_keeps_its_promises() {
    let mut rng = Rng::new(fuzzing::seed("fuzz_request_parser"));
    let deadline = Instant::now() + fuzzing::budget();
    let mut cases = 0u64;
    while Instant::now() < deadline {
        parse_all(&MUTATOR.mutated_seed(&mut rng));
        cases += 1;
    }
    eprintln!("fuzz_request_parser: {cases} inputs");
}

fn echo(_: &(), request: &Request) -> Result<Response, ApiError> {
    Ok(Response::bytes(200, "text/plain", request.body().to_vec()))
}

fn boom(_: &(), _: &Request) -> Result<Response, ApiError> {
    panic!("handler bug")
}

#[test]
fn fuzz_connection_loop_answers_or_closes_and_stays_healthy() {
    let seed = fuzzing::seed("fuzz_connection_loop");
    let options = ServerOptions {
        idle_timeout: Duration::from_secs(1),
        workers: 2,
        max_connections: 64,
        rate_limit: 0,
        max_body_size: 4096,
        api_key: Some(crate::secret::Secret::new("k")),
        body_budget: 64 * 1024,
    };
    let router = Router::new()
        .get("/health", Policy::open(), echo)
        .get("/api/items", Policy::api_key(), echo)
        .post("/api/items", Policy::api_key(), echo)
        .post("/api/boom", Policy::api_key(), boom)
        .unmatched("/api", Policy::api_key());
    let shutdown = Shutdown::new();
    let Ok(server) = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)), options) else {
        panic!("cannot bind a loopback port");
    };
    let addr = server.local_addr();
    let thread = server
        .spawn(router, Arc::new(()), shutdown.clone())
        .expect("server thread");
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + fuzzing::budget();
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let request = MUTATOR.mutated_seed(&mut rng);
        let mut stream = TcpStream::connect(addr).expect("connect");
        let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
        let _ = stream.write_all(&request);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
            "not an HTTP answer to {:?}: {:?}",
            String::from_utf8_lossy(&request),
            String::from_utf8_lossy(&answer)
        );
        cases += 1;
    }
    eprintln!("fuzz_connection_loop: {cases} connections");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    shutdown.trigger();
    let _ = thread.join();
}
