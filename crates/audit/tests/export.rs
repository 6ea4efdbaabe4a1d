//! Export: jsonl round trip, RFC 5424 syslog received by real TCP and UDP listeners bound
//! here on loopback (frames parsed by an RFC 5424 parser written in this file), OCSF, and
//! following a running log.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rampart_audit::export::{
    self, Destination, Exporter, Format, SyslogSender, SyslogTarget, jsonl,
};
use rampart_audit::reader::{self, scan};
use rampart_audit::{AuditLog, Decision, merkle};

/// A parsed RFC 5424 message.
#[derive(Debug)]
struct Syslog {
    pri: u8,
    timestamp: String,
    hostname: String,
    app: String,
    msgid: String,
    sd: BTreeMap<String, BTreeMap<String, String>>,
    msg: String,
}

fn parse_5424(m: &str) -> Syslog {
    let rest = m.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let rest = rest.strip_prefix("1 ").expect("version 1");
    let mut it = rest.splitn(6, ' ');
    let timestamp = it.next().unwrap().to_owned();
    let hostname = it.next().unwrap().to_owned();
    let app = it.next().unwrap().to_owned();
    let procid = it.next().unwrap();
    assert_eq!(procid, "-");
    let msgid = it.next().unwrap().to_owned();
    let mut rest = it.next().unwrap().chars().peekable();
    let mut sd = BTreeMap::new();
    assert_eq!(rest.peek(), Some(&'['), "structured data expected");
    while rest.peek() == Some(&'[') {
        rest.next();
        let id: String = rest
            .by_ref()
            .take_while(|c| *c != ' ' && *c != ']')
            .collect();
        let mut params = BTreeMap::new();
        loop {
            let name: String = rest.by_ref().take_while(|c| *c != '=').collect();
            assert_eq!(rest.next(), Some('"'));
            let mut value = String::new();
            loop {
                match rest.next().unwrap() {
                    '\\' => value.push(rest.next().unwrap()),
                    '"' => break,
                    ']' => panic!("unescaped ] in a param value"),
                    c => value.push(c),
                }
            }
            params.insert(name.trim_start().to_owned(), value);
            match rest.next() {
                Some(' ') => continue,
                Some(']') => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        sd.insert(id, params);
    }
    assert_eq!(rest.next(), Some(' '));
    let msg: String = rest.collect();
    let msg = msg.strip_prefix('\u{feff}').expect("BOM").to_owned();
    Syslog {
        pri: pri.parse().unwrap(),
        timestamp,
        hostname,
        app,
        msgid,
        sd,
        msg,
    }
}

fn check_syslog(dir: &std::path::Path, msgs: &[String]) {
    let mut i = 0;
    scan(dir, 0, |raw| {
        let e = raw.decode()?;
        let s = parse_5424(&msgs[i]);
        let r = &e.record;
        let sev = match r.decision {
            Decision::Allow => 6,
            Decision::Deny => 4,
            Decision::Error => 3,
        };
        assert_eq!(s.pri, 10 * 8 + sev);
        assert_eq!(s.timestamp, r.time.to_rfc3339(6));
        assert!(!s.hostname.is_empty());
        assert_eq!(s.app, "rampart");
        assert_eq!(s.msgid, r.action);
        let a = &s.sd["audit@32473"];
        assert_eq!(a["seq"], e.seq.to_string());
        assert_eq!(a["component"], r.component);
        assert_eq!(a["actor"], r.actor.id);
        assert_eq!(a["decision"], r.decision.as_str());
        assert_eq!(a["reason"], r.reason);
        assert_eq!(a["resource"], r.resource);
        assert_eq!(a["leaf"], rampart_audit::hex::encode(&raw.leaf_hash()));
        let det = &s.sd["details@32473"];
        assert_eq!(det.len(), r.details.len());
        for (k, v) in &r.details {
            // SD-NAMEs are printable ASCII without '=', ' ', ']' and '"' (RFC 5424 6.3.3).
            let name: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"') {
                        c
                    } else {
                        '_'
                    }
                })
                .take(32)
                .collect();
            assert_eq!(&det[name.as_str()], v, "{k}");
        }
        assert!(s.msg.contains(&format!("#{}", e.seq)));
        i += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(i, msgs.len());
}

async fn tricky_log(n: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), common::opts()).unwrap();
    let a = log.auditor();
    for i in 0..n {
        let r = common::rec(i)
            .reason(format!("why \"{i}\" ] \\ é"))
            .detail("weird key]=\"", "v]\"\\")
            .sensitive_detail("token", format!("tok-{i}"));
        a.record(r).await.unwrap();
    }
    log.shutdown().await.unwrap();
    d
}

#[tokio::test]
async fn jsonl_round_trips() {
    let d = tempfile::tempdir().unwrap();
    common::build(d.path(), 50, 10).await;
    let out = d.path().join("out.jsonl");
    let mut ex = Exporter::new(Format::Jsonl, Destination::file(&out).unwrap(), "out").unwrap();
    let n = export::run(
        d.path(),
        0,
        false,
        Duration::ZERO,
        &mut ex,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(n, 50);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50);
    for (i, line) in lines.iter().enumerate() {
        let e = jsonl::parse_line(line).unwrap();
        let (stored, loc) = reader::get(d.path(), i as u64).unwrap();
        assert_eq!(e, stored);
        assert_eq!(e.record, common::rec(i as u64));
        // Byte-identical: re-encoding gives the line, whose leaf hash is the log's.
        assert_eq!(e.encode().unwrap(), line.as_bytes());
        assert_eq!(merkle::leaf_hash(line.as_bytes()), loc.leaf_hash);
    }
    // From an id on.
    let out2 = d.path().join("out2.jsonl");
    let mut ex = Exporter::new(Format::Jsonl, Destination::file(&out2).unwrap(), "out2").unwrap();
    assert_eq!(
        export::run(
            d.path(),
            45,
            false,
            Duration::ZERO,
            &mut ex,
            &AtomicBool::new(false)
        )
        .unwrap(),
        5
    );
    assert!(jsonl::parse_line("{\"seq\":1}").is_err());
}

#[tokio::test]
async fn syslog_over_tcp_reaches_a_listener() {
    let d = tricky_log(40).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        // RFC 6587 octet counting: "LEN SP MSG".
        let mut msgs = Vec::new();
        let mut rest = &all[..];
        while !rest.is_empty() {
            let sp = rest.iter().position(|b| *b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
            msgs.push(String::from_utf8(rest[sp + 1..sp + 1 + len].to_vec()).unwrap());
            rest = &rest[sp + 1 + len..];
        }
        msgs
    });
    let target = SyslogTarget::parse(&format!("tcp://{addr}")).unwrap();
    let mut ex = Exporter::new(
        Format::Syslog,
        Destination::Syslog(SyslogSender::connect(&target).unwrap()),
        "tcp",
    )
    .unwrap();
    export::run(
        d.path(),
        0,
        false,
        Duration::ZERO,
        &mut ex,
        &AtomicBool::new(false),
    )
    .unwrap();
    drop(ex);
    let msgs = server.join().unwrap();
    assert_eq!(msgs.len(), 40);
    check_syslog(d.path(), &msgs);
    assert!(
        !msgs.iter().any(|m| m.contains("tok-")),
        "a sensitive value was exported"
    );
}

#[tokio::test]
async fn syslog_over_udp_reaches_a_socket() {
    let d = tricky_log(30).await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = sock.local_addr().unwrap();
    let target = SyslogTarget::parse(&format!("udp://{addr}")).unwrap();
    let mut ex = Exporter::new(
        Format::Syslog,
        Destination::Syslog(SyslogSender::connect(&target).unwrap()),
        "udp",
    )
    .unwrap();
    let recv = std::thread::spawn(move || {
        let mut msgs = Vec::new();
        let mut buf = vec![0u8; 65536];
        while msgs.len() < 30 {
            let n = sock.recv(&mut buf).unwrap();
            msgs.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        msgs
    });
    export::run(
        d.path(),
        0,
        false,
        Duration::ZERO,
        &mut ex,
        &AtomicBool::new(false),
    )
    .unwrap();
    let msgs = recv.join().unwrap();
    check_syslog(d.path(), &msgs);
}

#[tokio::test]
async fn ocsf_events_are_api_activity() {
    let d = tricky_log(10).await;
    let out = d.path().join("ocsf.jsonl");
    let mut ex = Exporter::new(Format::Ocsf, Destination::file(&out).unwrap(), "ocsf").unwrap();
    export::run(
        d.path(),
        0,
        false,
        Duration::ZERO,
        &mut ex,
        &AtomicBool::new(false),
    )
    .unwrap();
    drop(ex);
    let text = std::fs::read_to_string(&out).unwrap();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["category_uid"], 6);
        assert_eq!(v["metadata"]["sequence"], i as u64);
        assert_eq!(v["src_endpoint"]["ip"], "192.0.2.7");
        let want = if i % 5 == 0 || i % 5 == 4 { 2 } else { 1 };
        assert_eq!(v["status_id"], want);
    }
    assert!(
        Exporter::new(
            Format::Jsonl,
            Destination::Syslog(
                SyslogSender::connect(&SyslogTarget::parse("udp://127.0.0.1:9").unwrap()).unwrap()
            ),
            "x"
        )
        .is_err()
    );
}

#[tokio::test]
async fn follow_exports_new_records_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_owned();
    let log = AuditLog::open(
        &dir,
        rampart_audit::AuditOptions {
            segment_max_bytes: 8192,
            ..common::opts()
        },
    )
    .unwrap();
    let a = log.auditor();
    for i in 0..5 {
        a.record(common::rec(i)).await.unwrap();
    }
    let out = dir.join("follow.jsonl");
    let stop = Arc::new(AtomicBool::new(false));
    let (dir2, out2, stop2) = (dir.clone(), out.clone(), Arc::clone(&stop));
    let follower = std::thread::spawn(move || {
        let mut ex = Exporter::new(Format::Jsonl, Destination::file(&out2).unwrap(), "f").unwrap();
        export::run(&dir2, 0, true, Duration::from_millis(10), &mut ex, &stop2).unwrap()
    });
    for i in 5..200 {
        a.record(common::rec(i)).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = std::fs::File::open(&out)
            .map(|f| BufReader::new(f).lines().count())
            .unwrap_or(0);
        if n >= 200 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = follower.join().unwrap();
    assert_eq!(n, 200);
    log.shutdown().await.unwrap();
    assert!(rampart_audit::segment::list(&dir).unwrap().len() > 3);
    let text = std::fs::read_to_string(&out).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert_eq!(jsonl::parse_line(line).unwrap().seq, i as u64);
    }
}
