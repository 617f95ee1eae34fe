//! moto's server as a child process on 127.0.0.1, killed when dropped (also on panic), so
//! nothing is left listening.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MotoProcess {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

impl MotoProcess {
    /// Start `binary` on `port` (0: a free one) and wait until it accepts connections.
    pub fn start(binary: &Path, port: u16) -> Result<Self, String> {
        if !binary.exists() {
            return Err(format!(
                "moto_server not found at {}: run `make tools`",
                binary.display()
            ));
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
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut moto = Self {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "moto_server exited with {status} (is port {port} free?)"
                ));
            }
            if started.elapsed() > Duration::from_secs(30) {
                moto.stop();
                return Err(format!(
                    "moto_server did not listen on port {port} within 30 s"
                ));
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

pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}
