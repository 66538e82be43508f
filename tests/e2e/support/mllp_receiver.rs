//! A scripted fake MLLP receiver for the `mllp` connector: it records every
//! message in arrival order and answers the way its rules say (AA when none
//! applies), including the wrong ACKs real systems send. It can stop
//! listening (closing its connections) and listen again on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the receiver answers to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// AA, MSA-2 = MSH-10.
    Accept,
    /// AR with this text in MSA-3 and ERR.
    Reject(String),
    /// AE with this text in MSA-3 and ERR.
    Error(String),
    /// AA, but MSA-2 names another message.
    WrongControlId,
}

#[derive(Debug, Clone)]
struct Rule {
    when: Option<String>,
    reply: Reply,
    times: Option<usize>,
}

#[derive(Default)]
struct State {
    /// Every message received, without framing, in arrival order.
    messages: Vec<Vec<u8>>,
    rules: Vec<Rule>,
    connections: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

pub struct MllpReceiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Set while listening: `true` sent on it stops the listener and closes connections.
    running: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    runtime: tokio::runtime::Runtime,
}

impl MllpReceiver {
    /// Listening on a free port of 127.0.0.1, answering AA.
    pub fn start() -> MllpReceiver {
        let mut receiver = MllpReceiver::reserve();
        receiver.listen();
        receiver
    }

    /// A free port, not listened on yet (a receiver that is down):
    /// connections to it are refused until [`MllpReceiver::listen`].
    pub fn reserve() -> MllpReceiver {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("mllp-receiver").enable_all().build().unwrap();
        MllpReceiver { addr, shared: Arc::new(Shared { state: Mutex::default(), changed: Condvar::new() }), running: None, runtime }
    }

    /// Starts listening on [`MllpReceiver::addr`].
    pub fn listen(&mut self) {
        assert!(self.running.is_none(), "already listening");
        // The port was ours a moment ago; std sets SO_REUSEADDR, so a
        // connection in TIME_WAIT does not stand in the way.
        let listener = self.runtime.block_on(TcpListener::bind(self.addr)).unwrap_or_else(|e| panic!("listen again on {}: {e}", self.addr));
        let (stop, stopped) = watch::channel(false);
        let shared = self.shared.clone();
        let accept = self.runtime.spawn(async move {
            let mut stopped_accept = stopped.clone();
            loop {
                tokio::select! {
                    _ = stopped_accept.wait_for(|s| *s) => return,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        lock(&shared).connections += 1;
                        tokio::spawn(serve(stream, shared.clone(), stopped.clone()));
                    }
                }
            }
        });
        self.running = Some((stop, accept));
    }

    /// Stops listening and closes every open connection.
    pub fn stop(&mut self) {
        let (stop, accept) = self.running.take().expect("listening");
        stop.send_replace(true);
        self.runtime.block_on(accept).unwrap();
    }

    /// The next `times` messages get `reply`, then the other rules apply.
    pub fn reply_next(&self, times: usize, reply: Reply) -> &Self {
        lock(&self.shared).rules.push(Rule { when: None, reply, times: Some(times) });
        self
    }

    /// Messages containing `needle` get `reply`.
    pub fn reply_when(&self, needle: &str, reply: Reply) -> &Self {
        lock(&self.shared).rules.push(Rule { when: Some(needle.into()), reply, times: None });
        self
    }

    /// Every message gets `reply` (unless an earlier rule applies).
    pub fn reply_always(&self, reply: Reply) -> &Self {
        lock(&self.shared).rules.push(Rule { when: None, reply, times: None });
        self
    }

    pub fn messages(&self) -> Vec<Vec<u8>> {
        lock(&self.shared).messages.clone()
    }

    /// MSH-10 of every message received, in arrival order.
    pub fn control_ids(&self) -> Vec<String> {
        lock(&self.shared).messages.iter().map(|m| super::control_id(m)).collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.shared).connections
    }

    /// Waits until at least `n` messages arrived; their control IDs.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        self.wait(limit, &format!("{n} messages"), |ids| ids.len() >= n)
    }

    /// Waits until `done` holds for the control IDs received so far.
    pub fn wait(&self, limit: Duration, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut state = lock(&self.shared);
        loop {
            let ids: Vec<String> = state.messages.iter().map(|m| super::control_id(m)).collect();
            if done(&ids) {
                return ids;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let shown = if ids.len() > 50 { format!("{:?} … {:?}", &ids[..20], &ids[ids.len() - 20..]) } else { format!("{ids:?}") };
                panic!("the MLLP receiver did not get {what} within {limit:?}; it got {} messages: {shown}", ids.len());
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

impl Drop for MllpReceiver {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            stop.send_replace(true);
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// One connection: frames in, one ACK out per frame, until the peer or `stop` closes it.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            read = stream.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(start) = buf.iter().position(|&b| b == 0x0B) {
            let Some(end) = buf[start..].windows(2).position(|w| w == [0x1C, 0x0D]) else { break };
            let message = buf[start + 1..start + end].to_vec();
            buf.drain(..start + end + 2);
            let reply = {
                let mut state = lock(&shared);
                let text = String::from_utf8_lossy(&message).into_owned();
                let rule = state.rules.iter_mut().find(|r| r.times != Some(0) && r.when.as_ref().is_none_or(|needle| text.contains(needle.as_str())));
                let reply = match rule {
                    Some(rule) => {
                        if let Some(times) = rule.times.as_mut() {
                            *times -= 1;
                        }
                        rule.reply.clone()
                    }
                    None => Reply::Accept,
                };
                state.messages.push(message.clone());
                reply
            };
            shared.changed.notify_all();
            let ack = ack(&message, &reply);
            if stream.write_all(&[&[0x0B][..], ack.as_bytes(), &[0x1C, 0x0D]].concat()).await.is_err() {
                return;
            }
        }
    }
}

/// The ACK `reply` stands for, to `message`.
fn ack(message: &[u8], reply: &Reply) -> String {
    let id = super::control_id(message);
    let msh = format!("MSH|^~\\&|RECV|FAKE|EHR|HOSP|20260101120000||ACK^A01^ACK|ACK{id}|P|2.5.1\r");
    match reply {
        Reply::Accept => format!("{msh}MSA|AA|{id}\r"),
        Reply::WrongControlId => format!("{msh}MSA|AA|NOT{id}\r"),
        Reply::Reject(text) => format!("{msh}MSA|AR|{id}|{text}\rERR|||207^Application internal error^HL70357|E||||{text}\r"),
        Reply::Error(text) => format!("{msh}MSA|AE|{id}|{text}\rERR|||207^Application internal error^HL70357|E||||{text}\r"),
    }
}
