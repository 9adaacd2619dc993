//! nats-server for the tests: one server or a 3-node JetStream cluster, on
//! loopback ports only, each with a store of its own, stopped when dropped;
//! and a small JetStream client to set streams up and look into them.

use crate::TempDir;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One nats-server process.
pub struct Server {
    pub port: u16,
    pub monitor: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    fn spawn(args: Vec<String>, port: u16, monitor: u16) -> Server {
        let mut server = Server {
            port,
            monitor,
            args,
            child: None,
        };
        server.start();
        server
    }

    /// Starts it (again, on the same ports and store) and waits until it
    /// takes connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("nats-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is required (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (SIGTERM: it flushes its store) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it at once (SIGKILL): a node lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET path` of its monitoring port.
    pub fn monitor_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.monitor)) else {
            return String::new();
        };
        let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server, with JetStream unless `jetstream` is false.
pub struct Single {
    pub server: Server,
    _store: TempDir,
}

impl Single {
    pub fn start(name: &str, jetstream: bool) -> Single {
        let store = TempDir::new(&format!("nats-{name}"));
        let (port, monitor) = (free_port(), free_port());
        let mut args = vec![
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-m".to_owned(),
            monitor.to_string(),
            "-sd".to_owned(),
            store.path("js").display().to_string(),
        ];
        if jetstream {
            args.push("-js".to_owned());
        }
        Single {
            server: Server::spawn(args, port, monitor),
            _store: store,
        }
    }

    /// `nats://127.0.0.1:PORT/STREAM`.
    pub fn url(&self, stream: &str) -> String {
        format!("nats://127.0.0.1:{}/{stream}", self.server.port)
    }
}

/// Three JetStream nodes routed to each other on loopback.
pub struct Cluster {
    pub nodes: Vec<Server>,
    _store: TempDir,
}

impl Cluster {
    pub fn start(name: &str) -> Cluster {
        let store = TempDir::new(&format!("nats-cluster-{name}"));
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes = ports
            .iter()
            .map(|(_, route, _)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, &(port, route, monitor))| {
                let dir: PathBuf = store.path(&format!("n{i}"));
                let args = ["-a", "127.0.0.1", "-js", "--cluster_name", "zcap-test"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([
                        "-n".to_owned(),
                        format!("n{i}"),
                        "-p".to_owned(),
                        port.to_string(),
                        "-m".to_owned(),
                        monitor.to_string(),
                        "--cluster".to_owned(),
                        format!("nats://127.0.0.1:{route}"),
                        "--routes".to_owned(),
                        routes.clone(),
                        "-sd".to_owned(),
                        dir.display().to_string(),
                    ])
                    .collect();
                Server::spawn(args, port, monitor)
            })
            .collect();
        let cluster = Cluster {
            nodes,
            _store: store,
        };
        cluster.wait_for_leader();
        cluster.wait_for_placement();
        cluster
    }

    /// Waits until an R=3 stream can be placed: a meta leader may be known
    /// before it knows its peers ("no suitable peers for placement").
    fn wait_for_placement(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = self.nodes[0].port;
        loop {
            let placed = with_jetstream(port, async |js| {
                let config = async_nats::jetstream::stream::Config {
                    name: "PLACEMENT".to_owned(),
                    subjects: vec!["placement.>".to_owned()],
                    num_replicas: 3,
                    ..Default::default()
                };
                let made = js.create_stream(config).await.is_ok();
                if made {
                    let _ = js.delete_stream("PLACEMENT").await;
                }
                made
            });
            if placed {
                return;
            }
            assert!(Instant::now() < deadline, "no R=3 stream could be placed");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until JetStream's meta group has a leader (streams can be made).
    fn wait_for_leader(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let jsz = self.nodes[0].monitor_get("/jsz");
            if jsz.contains("\"leader\"") {
                return;
            }
            assert!(Instant::now() < deadline, "no JetStream leader: {jsz}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every node's address.
    pub fn url(&self, stream: &str) -> String {
        let servers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("nats://{}/{stream}", servers.join(","))
    }
}

/// Runs `body` on a client of `server` (a current-thread runtime).
fn with_jetstream<T>(port: u16, body: impl AsyncFnOnce(async_nats::jetstream::Context) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .expect("connect");
        body(async_nats::jetstream::new(client)).await
    })
}

/// Creates stream `name` on `subjects`, with messages of at most
/// `max_message` bytes (`-1`: the server's limit).
pub fn create_stream(port: u16, name: &str, subjects: &[&str], max_message: i32) {
    with_jetstream(port, async |js| {
        js.create_stream(async_nats::jetstream::stream::Config {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            max_message_size: max_message,
            ..Default::default()
        })
        .await
        .expect("create stream");
    })
}

/// Lowers stream `name`'s largest message to `max_message` bytes.
pub fn set_max_message(port: u16, name: &str, max_message: i32) {
    with_jetstream(port, async |js| {
        let mut stream = js.get_stream(name).await.expect("stream");
        let mut config = stream.info().await.expect("info").config.clone();
        config.max_message_size = max_message;
        js.update_stream(config).await.expect("update stream");
    })
}

/// Stream `name`'s message count, replicas and subjects.
pub fn stream_state(port: u16, name: &str) -> (u64, usize, Vec<String>) {
    with_jetstream(port, async |js| {
        let mut stream = js.get_stream(name).await.expect("stream");
        let info = stream.info().await.expect("info");
        (
            info.state.messages,
            info.config.num_replicas,
            info.config.subjects.clone(),
        )
    })
}

/// Stream `name`'s message count; `None` while it does not exist.
pub fn stream_messages(port: u16, name: &str) -> Option<u64> {
    with_jetstream(port, async |js| {
        let mut stream = js.get_stream(name).await.ok()?;
        Some(stream.info().await.ok()?.state.messages)
    })
}
