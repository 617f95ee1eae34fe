//! `iotdp local` runs on the lake by default, its simulated fleet's readings coming back through
//! the local query API; it stops within 5 seconds of Ctrl-C, also with its output piped (`make
//! local | tee log`), and leaves nothing listening: Ctrl-C is sent to its whole process group,
//! as a terminal sends it.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of a GET to the local API ("" if it does not answer).
fn get(port: u16, path: &str) -> String {
    use std::io::Write as _;
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn ctrl_c_stops_everything_within_five_seconds_with_output_piped() {
    let (mqtt, api) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_iotdp"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "local",
            "--mqtt",
            &format!("127.0.0.1:{mqtt}"),
            "--api",
            &format!("127.0.0.1:{api}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start iotdp local");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    while !(listening(api) && listening(mqtt)) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "iotdp local never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // On the default store, the lake: the simulated fleet's readings come back through the
    // local query API.
    let path = "/devices/battery-0001/readings/voltage?from=-10m";
    while !get(api, path).contains(r#""value":"#) {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no readings of battery-0001 through the API: {}",
            get(api, path)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let group = child.id().to_string();
    let interrupted = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if interrupted.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = interrupted.elapsed();
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(exit.success(), "{exit:?}");
    assert!(!listening(api) && !listening(mqtt), "a port is still open");
    let output = reader.join().unwrap();
    assert!(output.contains("stopped: moto"), "{output}");
    assert!(
        output.contains("time-series store the lake (Parquet on S3)"),
        "{output}"
    );
    eprintln!("stopped {took:?} after Ctrl-C");
}
