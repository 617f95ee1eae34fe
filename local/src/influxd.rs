//! A local InfluxDB 1.x server (`influxd`) as a child process on 127.0.0.1, its data under a
//! folder the caller chooses, killed when dropped (also on panic), so nothing is left
//! listening. `make tools` installs the pinned Debian build into `.tools/influxdb/`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::moto::free_port;
use iotdp::adapters::influxdb::percent_encode;

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
    pub fn start(binary: &Path, data_dir: &Path) -> Result<Self, String> {
        if !binary.exists() {
            return Err(format!(
                "influxd not found at {}: run `make tools`",
                binary.display()
            ));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
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
        std::fs::write(&config_path, config)
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let log = std::fs::File::create(data_dir.join("influxd.log"))
            .map_err(|e| format!("influxd log: {e}"))?;
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
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.data_dir.join("influxd.log"))
            .map_err(|e| format!("influxd log: {e}"))?;
        self.child = spawn(&self.binary, &self.data_dir.join("influxdb.conf"), log)?;
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        while self.http("GET", "/ping", "").map(|(status, _)| status) != Ok(204) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "influxd exited with {status}; see {}",
                    self.data_dir.join("influxd.log").display()
                ));
            }
            if started.elapsed() > Duration::from_secs(30) {
                self.stop();
                return Err(format!(
                    "influxd did not answer on port {} within 30 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `CREATE DATABASE` (idempotent in InfluxDB).
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        let query = format!("q=CREATE+DATABASE+%22{name}%22");
        match self.http("POST", &format!("/query?{query}"), "")? {
            (200, _) => Ok(()),
            (status, body) => Err(format!("CREATE DATABASE {name}: HTTP {status}: {body}")),
        }
    }

    /// Run an InfluxQL query against `database`; the JSON answer, times in epoch ms.
    pub fn query(&self, database: &str, query: &str) -> Result<serde_json::Value, String> {
        let path = format!(
            "/query?db={}&epoch=ms&q={}",
            percent_encode(database),
            percent_encode(query)
        );
        let (status, body) = self.http("GET", &path, "")?;
        if status != 200 {
            return Err(format!("query {query}: HTTP {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("query {query}: {e}: {body}"))
    }

    /// A minimal HTTP/1.0 request (start-up checks only; the adapter uses a real client).
    fn http(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {response}"))?;
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

fn spawn(binary: &Path, config_path: &Path, log: std::fs::File) -> Result<Child, String> {
    Command::new(binary)
        .arg("-config")
        .arg(config_path)
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C at the terminal reaches iotdp, which drains and
        // then stops this server, instead of killing it under the last writes.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))
}

impl Drop for InfluxProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
