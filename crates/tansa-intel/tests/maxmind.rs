//! MaxMind's own test databases and the source data they were written from: every network in
//! the source JSON must come back with its record, and broken files must give an error, not a
//! crash. Prints one `maxmind oracle:` line per database.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::Value;
use tansa_event::{IpFlags, IpInfo};
use tansa_intel::GeoIp;

fn corpus() -> PathBuf {
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    let d = base.join("maxmind-test-db");
    assert!(
        d.is_dir(),
        "conformance corpus (maxmind-test-db) not found: set TANSA_CONFORMANCE"
    );
    d
}

/// A source-data key as a network: `::a.b.c.d/n` (n ≥ 96) is the IPv4 network the writer
/// stores under `::/96`.
fn network(key: &str) -> IpNet {
    let net: IpNet = key.parse().unwrap();
    if let IpNet::V6(v6) = net {
        let s = v6.addr().segments();
        if s[..6].iter().all(|&x| x == 0) && v6.prefix_len() >= 96 && key.contains('.') {
            let o = v6.addr().octets();
            let v4 = std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
            return IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap();
        }
    }
    net
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::to_owned)
}

/// What the record says, read straight from the JSON.
fn expected(rec: &Value) -> IpInfo {
    let asn = rec
        .get("autonomous_system_number")
        .or_else(|| {
            rec.get("traits")
                .and_then(|t| t.get("autonomous_system_number"))
        })
        .and_then(Value::as_u64)
        .map(|n| n as u32);
    let org = s(rec, &["autonomous_system_organization"])
        .or_else(|| s(rec, &["traits", "autonomous_system_organization"]));
    let mut flags = IpFlags::default();
    for (k, f) in [
        ("is_tor_exit_node", IpFlags::TOR_EXIT),
        ("is_hosting_provider", IpFlags::HOSTING),
        ("is_anonymous_vpn", IpFlags::ANONYMOUS_VPN),
        ("is_public_proxy", IpFlags::PUBLIC_PROXY),
    ] {
        let v = rec
            .get(k)
            .or_else(|| rec.get("traits").and_then(|t| t.get(k)));
        if v.and_then(Value::as_bool) == Some(true) {
            flags.insert(f);
        }
    }
    let loc = rec.get("location");
    IpInfo {
        continent_code: s(rec, &["continent", "code"]).map(Into::into),
        country_iso_code: s(rec, &["country", "iso_code"]).map(Into::into),
        country_name: s(rec, &["country", "names", "en"]).map(Into::into),
        region_name: rec
            .get("subdivisions")
            .and_then(|d| d.get(0))
            .and_then(|d| s(d, &["names", "en"]))
            .map(Into::into),
        city_name: s(rec, &["city", "names", "en"]).map(Into::into),
        location: loc
            .and_then(|l| Some((l.get("latitude")?.as_f64()?, l.get("longitude")?.as_f64()?))),
        as_number: asn,
        as_organization: org.map(Into::into),
        flags,
        ..IpInfo::default()
    }
}

fn first_and_last(n: &IpNet) -> [IpAddr; 2] {
    [n.network(), n.broadcast()]
}

#[test]
fn every_source_network_returns_its_record() {
    let root = corpus();
    let mut total = 0;
    for name in [
        "GeoLite2-City-Test",
        "GeoLite2-Country-Test",
        "GeoLite2-ASN-Test",
        "GeoIP2-City-Test",
        "GeoIP2-Country-Test",
        "GeoIP2-Anonymous-IP-Test",
        "GeoIP2-ISP-Test",
        "GeoIP2-Enterprise-Test",
    ] {
        let src: Vec<Value> = serde_json::from_slice(
            &std::fs::read(root.join(format!("source-data/{name}.json"))).unwrap(),
        )
        .unwrap();
        let nets: Vec<(IpNet, &Value)> = src
            .iter()
            .flat_map(|o| o.as_object().unwrap().iter())
            .map(|(k, v)| (network(k), v))
            .collect();
        let geo = GeoIp::open(&[root.join(format!("test-data/{name}.mmdb"))]).unwrap();
        let mut ok = 0;
        let mut failures = Vec::new();
        for (net, _) in &nets {
            let mut good = true;
            for ip in first_and_last(net) {
                // the most specific listed network holding the address decides
                let (_, rec) = nets
                    .iter()
                    .filter(|(n, _)| n.contains(&ip))
                    .max_by_key(|(n, _)| n.prefix_len())
                    .unwrap();
                let want = expected(rec);
                let got = geo.lookup_strict(ip).unwrap();
                if got != want {
                    good = false;
                    failures.push(format!("{name} {net} {ip}: got {got:?}, want {want:?}"));
                }
            }
            ok += usize::from(good);
        }
        println!("maxmind oracle: {name} {ok}/{} networks", nets.len());
        assert!(
            failures.is_empty(),
            "{}",
            failures[..failures.len().min(5)].join("\n")
        );
        total += ok;
    }
    assert!(total > 1000, "the source data has over a thousand networks");
}

#[test]
fn broken_databases_give_an_error_not_a_crash() {
    let root = corpus().join("test-data");
    let tmp = std::env::temp_dir().join(format!("tansa-mmdb-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let text = tmp.join("notes.mmdb");
    std::fs::write(&text, "this is not a database\n").unwrap();
    let city = std::fs::read(root.join("GeoIP2-City-Test.mmdb")).unwrap();
    let truncated = tmp.join("truncated.mmdb");
    std::fs::write(&truncated, &city[..city.len() / 3]).unwrap();
    let empty = tmp.join("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    for p in [&text, &truncated, &empty] {
        let e = GeoIp::open(std::slice::from_ref(p))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&*p.to_string_lossy()), "{e}");
    }
    assert!(GeoIp::open(&[tmp.join("missing.mmdb")]).is_err());
    // files whose header is fine but whose tree or data is broken: opening may succeed,
    // a full check fails, and lookups over the whole address space never panic
    for name in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ] {
        let Ok(geo) = GeoIp::open(&[root.join(name)]) else {
            println!("{name}: refused when opened");
            continue;
        };
        println!("{name}: opened, refused by the full check");
        assert!(geo.verify().is_err(), "{name} passes the full check");
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 81, 128, 255] {
                let _ = geo.lookup(IpAddr::from([a, b, 1, 1]));
                let _ = geo.lookup_strict(IpAddr::from([a, b, 1, 1]));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// What an AS ban covers: every network the source data gives the AS, no other address (the
/// database merges adjacent networks with the same record, so the networks are compared by
/// the addresses they cover).
#[test]
fn asn_prefixes_are_the_source_networks_of_the_as() {
    let d = corpus();
    let geo = GeoIp::open(&[d.join("test-data/GeoLite2-ASN-Test.mmdb")]).unwrap();
    let text = std::fs::read_to_string(d.join("source-data/GeoLite2-ASN-Test.json")).unwrap();
    let src: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for asn in [237u32, 174, 11456, 7132] {
        let mut want: Vec<IpNet> = src
            .iter()
            .flat_map(|m| m.iter())
            .filter(|(_, v)| v["autonomous_system_number"].as_u64() == Some(asn.into()))
            .map(|(k, _)| network(k))
            .collect();
        want.sort();
        want.dedup();
        let got = geo.asn_prefixes(asn);
        for w in &want {
            assert!(
                got.iter().any(|g| g.contains(w)),
                "AS{asn}: {w} not covered"
            );
        }
        let size = |n: &IpNet| 1u128 << (n.max_prefix_len() - n.prefix_len());
        assert_eq!(
            got.iter().map(size).sum::<u128>(),
            want.iter().map(size).sum::<u128>(),
            "AS{asn}: {got:?} covers other addresses"
        );
        checked += want.len();
    }
    assert!(geo.asn_prefixes(4_000_000_000).is_empty());
    println!("maxmind asn prefixes: {checked} source networks of 4 ASes covered exactly");
}
