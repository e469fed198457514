//! A unix-socket proxy in front of the real Docker socket, for tests that need Docker to vanish,
//! answer late or lose an answer after it acted — faults a real engine cannot be asked to make.
//!
//! Every accepted client connection opens one upstream connection and bytes are copied both ways
//! unchanged. The client side is parsed just enough to know each request line (HTTP/1.1 keep-alive,
//! bodies by Content-Length or chunked), so tests can count the calls swarmpilot makes. Clients do
//! not pipeline (hyper waits for an answer before the next request), so whatever the engine sends
//! after a request was forwarded is that request's answer: this is what lets a fault target the
//! answer of one kind of request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{AbortHandle, JoinHandle};

/// What the proxy does to the traffic from now on (connections already open included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Forward `POST …/services/<id>/update` (so Docker applies it), swallow its answer and close
    /// the client connection: an answer lost after the fact.
    DropUpdateAnswers,
    /// Hold the answer of a service update for this long before passing it on.
    DelayUpdateAnswers(Duration),
    /// Accept and close every new connection at once, and close the open ones: Docker vanished.
    RefuseAll,
}

/// The proxy; it stops (listener and connections aborted, socket file removed) when dropped.
pub struct DockerProxy {
    socket: PathBuf,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    // Kept for its Drop: the directory that holds the socket.
    _dir: tempfile::TempDir,
}

/// State the accept loop, the connections and the test share. std Mutex: never held across an await.
struct Shared {
    upstream: PathBuf,
    fault: Mutex<Fault>,
    lines: Mutex<Vec<String>>,
    connections: Mutex<Vec<AbortHandle>>,
}

impl DockerProxy {
    /// Listen on a fresh socket in a temporary directory, forwarding to `upstream`.
    pub async fn start(upstream: &Path) -> DockerProxy {
        let dir = tempfile::tempdir().expect("tempdir for the proxy socket");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the proxy socket");
        let shared = Arc::new(Shared {
            upstream: upstream.to_path_buf(),
            fault: Mutex::new(Fault::None),
            lines: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        DockerProxy {
            socket,
            shared,
            accept,
            _dir: dir,
        }
    }

    /// The `docker.host` value that reaches Docker through this proxy.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
        if fault == Fault::RefuseAll {
            self.shared.close_connections();
        }
    }

    /// How many requests so far have a request line (`GET /v1.41/services?… HTTP/1.1`) containing
    /// `needle`.
    pub fn count(&self, needle: &str) -> usize {
        lock(&self.shared.lines)
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Every request line seen so far, in order.
    pub fn request_lines(&self) -> Vec<String> {
        lock(&self.shared.lines).clone()
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.close_connections();
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Shared {
    fn fault(&self) -> Fault {
        *lock(&self.fault)
    }

    fn close_connections(&self) {
        for connection in lock(&self.connections).drain(..) {
            connection.abort();
        }
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.fault() == Fault::RefuseAll {
            drop(client);
            continue;
        }
        let task = tokio::spawn(serve(client, shared.clone()));
        let mut connections = lock(&shared.connections);
        connections.retain(|c| !c.is_finished());
        connections.push(task.abort_handle());
    }
}

/// What to do with the answer of the request most recently forwarded on one connection.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Pass,
    Drop,
    Delay(Duration),
}

async fn serve(client: UnixStream, shared: Arc<Shared>) {
    let Ok(upstream) = UnixStream::connect(&shared.upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let answer = Arc::new(Mutex::new(Answer::Pass));
    let requests = forward_requests(client_read, upstream_write, shared, answer.clone());
    let answers = forward_answers(upstream_read, client_write, answer);
    tokio::pin!(requests, answers);
    tokio::select! {
        // The client is done sending; let the last answer drain.
        _ = &mut requests => answers.await,
        // The engine closed, or an answer was dropped: the connection is over either way.
        _ = &mut answers => {}
    }
}

/// Client → engine: record each request line and decide the fate of its answer *before* its bytes
/// reach the engine, so the answer can never overtake the decision.
async fn forward_requests(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    answer: Arc<Mutex<Answer>>,
) {
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in parser.feed(&buf[..n]) {
            *lock(&answer) = answer_for(&line, shared.fault());
            lock(&shared.lines).push(line);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn answer_for(request_line: &str, fault: Fault) -> Answer {
    let is_update = request_line.starts_with("POST ")
        && request_line
            .split_whitespace()
            .nth(1)
            .is_some_and(|target| target.split('?').next().unwrap_or("").ends_with("/update"))
        && request_line.contains("/services/");
    match fault {
        Fault::DropUpdateAnswers if is_update => Answer::Drop,
        Fault::DelayUpdateAnswers(d) if is_update => Answer::Delay(d),
        _ => Answer::Pass,
    }
}

/// Engine → client, applying the fault chosen for the request being answered.
async fn forward_answers(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    answer: Arc<Mutex<Answer>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fate = *lock(&answer);
        match fate {
            Answer::Drop => return,
            Answer::Delay(d) => {
                // Only the first bytes wait; the rest of the same answer follows at once.
                *lock(&answer) = Answer::Pass;
                tokio::time::sleep(d).await;
            }
            Answer::Pass => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Incremental HTTP/1.1 request framing: it only finds where each request starts and ends.
#[derive(Debug)]
enum Framing {
    /// Reading a request head up to the blank line.
    Head(Vec<u8>),
    /// This many body bytes left (Content-Length).
    Body(usize),
    /// Reading a chunk-size line.
    ChunkSize(Vec<u8>),
    /// This many chunk bytes left, then the chunk's CRLF.
    ChunkData(usize),
    /// Skipping the CRLF after a chunk's data.
    ChunkEnd(usize),
    /// Reading trailer lines after the last chunk, up to the blank line.
    Trailer(Vec<u8>),
}

impl Default for Framing {
    fn default() -> Self {
        Framing::Head(Vec::new())
    }
}

#[derive(Debug, Default)]
struct RequestParser {
    framing: Framing,
}

impl RequestParser {
    /// Consume `data`; return the request line of every request whose head completed in it.
    fn feed(&mut self, mut data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !data.is_empty() {
            let (used, line) = self.step(data);
            lines.extend(line);
            data = &data[used..];
        }
        lines
    }

    /// Consume a prefix of `data` (at least one byte) within the current framing state.
    fn step(&mut self, data: &[u8]) -> (usize, Option<String>) {
        match &mut self.framing {
            Framing::Head(head) => {
                head.push(data[0]);
                if head == b"\r\n" || head == b"\n" {
                    // Stray line break between requests: tolerated, as servers do.
                    head.clear();
                } else if head.ends_with(b"\r\n\r\n") {
                    let head = std::mem::take(head);
                    return (1, Some(self.finish_head(&head)));
                }
                (1, None)
            }
            Framing::Body(left) | Framing::ChunkData(left) | Framing::ChunkEnd(left) => {
                let used = (*left).min(data.len());
                *left -= used;
                if *left == 0 {
                    self.framing = match self.framing {
                        Framing::ChunkData(_) => Framing::ChunkEnd(2),
                        Framing::ChunkEnd(_) => Framing::ChunkSize(Vec::new()),
                        _ => Framing::default(),
                    };
                }
                (used, None)
            }
            Framing::ChunkSize(line) => {
                line.push(data[0]);
                if line.ends_with(b"\r\n") {
                    let text = String::from_utf8_lossy(line);
                    let hex = text.trim().split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16).unwrap_or(0);
                    self.framing = if size == 0 {
                        Framing::Trailer(Vec::new())
                    } else {
                        Framing::ChunkData(size)
                    };
                }
                (1, None)
            }
            Framing::Trailer(line) => {
                line.push(data[0]);
                if line == b"\r\n" {
                    self.framing = Framing::default();
                } else if line.ends_with(b"\r\n") {
                    line.clear();
                }
                (1, None)
            }
        }
    }

    /// Parse a complete head: return its request line and set up the body's framing.
    fn finish_head(&mut self, head: &[u8]) -> String {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("").to_string();
        let mut length = 0usize;
        let mut chunked = false;
        for header in lines {
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        self.framing = if chunked {
            Framing::ChunkSize(Vec::new())
        } else if length > 0 {
            Framing::Body(length)
        } else {
            Framing::default()
        };
        request_line
    }
}

#[cfg(test)]
mod framing_tests {
    use super::RequestParser;

    #[test]
    fn finds_every_request_line_across_bodies_and_split_reads() {
        let stream =
            b"POST /v1.41/services/abc/update?version=3 HTTP/1.1\r\nContent-Length: 5\r\n\r\n\
hello\
POST /v1.41/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext\r\nabc\r\n0\r\nX-T: 1\r\n\r\n\
GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
        for split in [1, 2, 7, stream.len()] {
            let mut parser = RequestParser::default();
            let lines: Vec<String> = stream.chunks(split).flat_map(|c| parser.feed(c)).collect();
            assert_eq!(
                lines,
                [
                    "POST /v1.41/services/abc/update?version=3 HTTP/1.1",
                    "POST /v1.41/x HTTP/1.1",
                    "GET /_ping HTTP/1.1"
                ],
                "split every {split} bytes"
            );
        }
    }
}
