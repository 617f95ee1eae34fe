//! A TCP relay in front of a backing service that a test can cut off and restore: while it is
//! down, open connections are closed and new ones are closed as soon as they are accepted, so
//! every client sees the service unreachable (the SDK's pooled keep-alive connections too).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    /// Where clients connect instead of the service.
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Relay 127.0.0.1:<free port> to `target`, up.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let (up, up_rx) = watch::channel(true);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    drop(client); // unreachable: closed at once
                    continue;
                }
                let mut up_rx = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = up_rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up, accept }
    }

    /// `http://<addr>`: the endpoint to give clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cut the service off: every connection through the relay closes.
    pub fn cut(&self) {
        let _ = self.up.send(false);
    }

    pub fn restore(&self) {
        let _ = self.up.send(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
