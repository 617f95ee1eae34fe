//! moto's server as a child process on 127.0.0.1, killed when dropped (also on panic), so
//! nothing is left listening.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Why moto's server is not running.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server not found at {}: run `make tools`", binary.display())]
    NotInstalled { binary: PathBuf },
    #[error(transparent)]
    NoFreePort(#[from] NoFreePort),
    #[error("cannot start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("moto_server exited with {status} (is port {port} free?)")]
    Exited { status: ExitStatus, port: u16 },
    #[error("moto_server did not listen on port {port} within 30 s")]
    NotListening { port: u16 },
}

/// The loopback interface has no port left to give (or cannot be bound at all).
#[derive(Debug, thiserror::Error)]
#[error("no free port on 127.0.0.1: {0}")]
pub struct NoFreePort(#[source] pub std::io::Error);

pub struct MotoProcess {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

impl MotoProcess {
    /// Start `binary` on `port` (0: a free one) and wait until it accepts connections.
    pub fn start(binary: &Path, port: u16) -> Result<Self, MotoError> {
        if !binary.exists() {
            return Err(MotoError::NotInstalled {
                binary: binary.to_path_buf(),
            });
        }
        let port = if port == 0 { free_port()? } else { port };
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C at the terminal reaches iotdp, which drains and
            // then stops this server, instead of killing it under the last writes.
            .process_group(0)
            .spawn()
            .map_err(|source| MotoError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let mut moto = Self {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(MotoError::Exited { status, port });
            }
            if started.elapsed() > Duration::from_secs(30) {
                moto.stop();
                return Err(MotoError::NotListening { port });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> Result<u16, NoFreePort> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(NoFreePort)
}
