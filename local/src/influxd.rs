//! A local InfluxDB 1.x server (`influxd`) as a child process on 127.0.0.1, its data under a
//! folder the caller chooses, killed when dropped (also on panic), so nothing is left
//! listening. `make tools` installs the pinned Debian build into `.tools/influxdb/`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::moto::{NoFreePort, free_port};
use iotdp::adapters::influxdb::percent_encode;

/// Why influxd is not running or did not answer as asked.
#[derive(Debug, thiserror::Error)]
pub enum InfluxdError {
    #[error("influxd not found at {}: run `make tools`", binary.display())]
    NotInstalled { binary: PathBuf },
    #[error(transparent)]
    NoFreePort(#[from] NoFreePort),
    /// The data folder, its configuration or its log cannot be written.
    #[error("{}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("influxd log: {0}")]
    Log(#[source] std::io::Error),
    #[error("cannot start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("influxd exited with {status}; see {}", log.display())]
    Exited { status: ExitStatus, log: PathBuf },
    #[error("influxd did not answer on port {port} within 30 s")]
    NotReady { port: u16 },
    #[error("CREATE DATABASE {name}: HTTP {status}: {body}")]
    CreateDatabase {
        name: String,
        status: u16,
        body: String,
    },
    #[error("query {query}: HTTP {status}: {body}")]
    QueryRefused {
        query: String,
        status: u16,
        body: String,
    },
    #[error("query {query}: {source}: {body}")]
    QueryAnswer {
        query: String,
        body: String,
        source: serde_json::Error,
    },
    /// The HTTP exchange itself failed (connection refused or cut).
    #[error("{0}")]
    Http(#[source] std::io::Error),
    #[error("not an HTTP response: {response}")]
    NotHttp { response: String },
}

/// Where `make tools` puts `influxd`, relative to the repository root.
pub const INFLUXD_RELATIVE_PATH: &str = ".tools/influxdb/usr/bin/influxd";

pub struct InfluxProcess {
    child: Child,
    binary: PathBuf,
    pub port: u16,
    /// `http://127.0.0.1:<port>`: the v1 HTTP API (`/write`, `/query`, `/ping`).
    pub url: String,
    pub data_dir: PathBuf,
}

impl InfluxProcess {
    /// Start `binary` with its data, WAL and metadata under `data_dir`, on free ports, and wait
    /// until it answers `/ping`.
    pub fn start(binary: &Path, data_dir: &Path) -> Result<Self, InfluxdError> {
        if !binary.exists() {
            return Err(InfluxdError::NotInstalled {
                binary: binary.to_path_buf(),
            });
        }
        std::fs::create_dir_all(data_dir).map_err(|source| InfluxdError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let (port, rpc_port) = (free_port()?, free_port()?);
        let dir = data_dir.display();
        let config = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = false
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"#
        );
        let config_path = data_dir.join("influxdb.conf");
        std::fs::write(&config_path, config).map_err(|source| InfluxdError::DataDir {
            path: config_path.clone(),
            source,
        })?;
        let log = std::fs::File::create(data_dir.join("influxd.log")).map_err(InfluxdError::Log)?;
        let child = spawn(binary, &config_path, log)?;
        let mut influx = Self {
            child,
            binary: binary.to_path_buf(),
            port,
            url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
        };
        influx.wait_until_ready()?;
        Ok(influx)
    }

    /// Start the server again after [`Self::stop`], on the same ports with the same data
    /// (an outage and its recovery, as the outage tests need).
    pub fn restart(&mut self) -> Result<(), InfluxdError> {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.data_dir.join("influxd.log"))
            .map_err(InfluxdError::Log)?;
        self.child = spawn(&self.binary, &self.data_dir.join("influxdb.conf"), log)?;
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> Result<(), InfluxdError> {
        let started = Instant::now();
        while !matches!(self.http("GET", "/ping", ""), Ok((204, _))) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(InfluxdError::Exited {
                    status,
                    log: self.data_dir.join("influxd.log"),
                });
            }
            if started.elapsed() > Duration::from_secs(30) {
                self.stop();
                return Err(InfluxdError::NotReady { port: self.port });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `CREATE DATABASE` (idempotent in InfluxDB).
    pub fn create_database(&self, name: &str) -> Result<(), InfluxdError> {
        let query = format!("q=CREATE+DATABASE+%22{name}%22");
        match self.http("POST", &format!("/query?{query}"), "")? {
            (200, _) => Ok(()),
            (status, body) => Err(InfluxdError::CreateDatabase {
                name: name.to_owned(),
                status,
                body,
            }),
        }
    }

    /// Run an InfluxQL query against `database`; the JSON answer, times in epoch ms.
    pub fn query(&self, database: &str, query: &str) -> Result<serde_json::Value, InfluxdError> {
        let path = format!(
            "/query?db={}&epoch=ms&q={}",
            percent_encode(database),
            percent_encode(query)
        );
        let (status, body) = self.http("GET", &path, "")?;
        if status != 200 {
            return Err(InfluxdError::QueryRefused {
                query: query.to_owned(),
                status,
                body,
            });
        }
        serde_json::from_str(&body).map_err(|source| InfluxdError::QueryAnswer {
            query: query.to_owned(),
            body: body.clone(),
            source,
        })
    }

    /// A minimal HTTP/1.0 request (start-up checks only; the adapter uses a real client).
    fn http(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), InfluxdError> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(InfluxdError::Http)?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(InfluxdError::Http)?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(InfluxdError::Http)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| InfluxdError::NotHttp {
                response: response.clone(),
            })?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(binary: &Path, config_path: &Path, log: std::fs::File) -> Result<Child, InfluxdError> {
    Command::new(binary)
        .arg("-config")
        .arg(config_path)
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C at the terminal reaches iotdp, which drains and
        // then stops this server, instead of killing it under the last writes.
        .process_group(0)
        .spawn()
        .map_err(|source| InfluxdError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })
}

impl Drop for InfluxProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
