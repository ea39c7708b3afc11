//! The syslog receivers with a real client (util-linux `logger`) on loopback: TCP with
//! octet-counting and newline framing, UDP; a client sending an oversized frame is cut off
//! while another connection goes on.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tansa_collect::syslog::{serve_tcp, serve_udp, Counters, Delivery, Sink};

type Got = Arc<Mutex<Vec<(String, String)>>>;

fn sink(got: &Got) -> Sink {
    let got = got.clone();
    Arc::new(move |d: Delivery| {
        let mut g = got.lock().unwrap();
        for (m, _) in d.messages {
            g.push((
                d.stream.name.clone(),
                String::from_utf8_lossy(&m).into_owned(),
            ));
        }
        true
    })
}

fn wait_for(got: &Got, n: usize) -> Vec<(String, String)> {
    let start = Instant::now();
    while got.lock().unwrap().len() < n && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    got.lock().unwrap().clone()
}

fn logger(args: &[&str], msg: &str) {
    let st = Command::new("logger")
        .args(args)
        .arg(msg)
        .status()
        .expect("util-linux logger (apt-get install bsdutils)");
    assert!(st.success(), "logger {args:?}");
}

#[test]
fn logger_over_tcp_and_udp() {
    let stop = Arc::new(AtomicBool::new(false));
    let got: Got = Arc::default();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = tcp.local_addr().unwrap().port().to_string();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port().to_string();
    let counters = Arc::new(Counters::default());
    let (s, st, c) = (sink(&got), stop.clone(), counters.clone());
    let t = std::thread::spawn(move || serve_tcp(tcp, s, st, c, 16));
    let (s, st, c) = (sink(&got), stop.clone(), Arc::new(Counters::default()));
    let u = std::thread::spawn(move || serve_udp(udp, s, st, c));

    let base = ["-n", "127.0.0.1", "-t", "sshd", "--rfc3164"];
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["-P", &tport, "--tcp", "--octet-count"]);
    logger(
        &a,
        "Failed password for root from 203.0.113.9 port 4242 ssh2",
    );
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["-P", &tport, "--tcp"]);
    logger(
        &a,
        "Accepted password for deploy from 203.0.113.9 port 4243 ssh2",
    );
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["-P", &uport, "--udp"]);
    logger(&a, "Invalid user admin from 203.0.113.10 port 4244");

    // a client that sends a frame over the limit is cut off; the next connection is served
    let mut bad = TcpStream::connect(format!("127.0.0.1:{tport}")).unwrap();
    bad.write_all(b"99999999 <13>too big").unwrap();
    let mut good = TcpStream::connect(format!("127.0.0.1:{tport}")).unwrap();
    good.write_all(b"<13>Mar 14 10:00:00 web01 app: after the bad one\n")
        .unwrap();
    drop(good);

    let g = wait_for(&got, 4);
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap().unwrap();
    u.join().unwrap().unwrap();
    let texts: Vec<&str> = g.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(g.len(), 4, "{texts:?}");
    for (want, via) in [
        ("Failed password for root from 203.0.113.9", "syslog+tcp://"),
        ("Accepted password for deploy", "syslog+tcp://"),
        ("Invalid user admin", "syslog+udp://"),
        ("after the bad one", "syslog+tcp://"),
    ] {
        let (name, m) = g
            .iter()
            .find(|(_, m)| m.contains(want))
            .unwrap_or_else(|| panic!("{want} not in {texts:?}"));
        assert!(name.starts_with(via), "{name}");
        assert!(
            m.starts_with("<13>") && (m.contains("sshd") || m.contains("app:")),
            "{m}"
        );
    }
    assert_eq!(counters.bad_frames.load(Ordering::Relaxed), 1);
    println!(
        "syslog: logger TCP (octet-counting, newline) and UDP received; 1 bad client cut off, {} connections",
        counters.connections.load(Ordering::Relaxed)
    );
}
