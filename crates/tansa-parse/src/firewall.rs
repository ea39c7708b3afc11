//! Kernel firewall log lines: iptables/ip6tables `LOG`, UFW (`[UFW BLOCK]`), nftables `log`,
//! firewalld (`FINAL_REJECT:`, `filter_IN_public_REJECT:`), all sharing the netfilter
//! `IN= OUT= SRC= DST= PROTO= SPT= DPT=` format, and firewalld's own daemon messages.

use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::util::{parse_ip, parse_port, set};

/// A kernel message; firewall lines are recognised by their `IN=` field.
pub fn kernel(ev: &mut Event, line: &str, msg: &str) {
    let Some(i) = msg.find("IN=") else { return };
    if i > 0 && !msg[..i].ends_with(' ') {
        return;
    }
    ev.dataset = "firewall";
    ev.category = Category::Network;
    let prefix = msg[..i].trim();
    if !prefix.is_empty() {
        set(ev, line, Field::RULE_NAME, prefix);
    }
    let upper = prefix.to_ascii_uppercase();
    let (etype, action, outcome) = if [
        "BLOCK", "DROP", "REJECT", "DENY", "DENIED", "INVALID", "LIMIT",
    ]
    .iter()
    .any(|k| upper.contains(k))
    {
        (EventType::Denied, "firewall_block", Outcome::Failure)
    } else if ["ALLOW", "ACCEPT", "AUDIT"]
        .iter()
        .any(|k| upper.contains(k))
    {
        (EventType::Allowed, "firewall_allow", Outcome::Success)
    } else if prefix.is_empty() {
        // `-j LOG` without a prefix is the classic "log, then drop" pair
        (EventType::Denied, "firewall_block", Outcome::Failure)
    } else {
        (EventType::Connection, "firewall_log", Outcome::Unknown)
    };
    ev.event_type = etype;
    ev.action = Some(action);
    ev.outcome = outcome;
    let mut flags = Vec::new();
    for kvp in msg[i..].split(' ') {
        let Some((k, v)) = kvp.split_once('=') else {
            if !kvp.is_empty() && kvp.bytes().all(|c| c.is_ascii_uppercase()) {
                flags.push(kvp);
            }
            continue;
        };
        match k {
            "IN" if !v.is_empty() => set(ev, line, Field::OBSERVER_INGRESS, v),
            "OUT" if !v.is_empty() => set(ev, line, Field::OBSERVER_EGRESS, v),
            "MAC" if !v.is_empty() => set(ev, line, Field::LABELS_MAC, v),
            "SRC" => ev.source_ip = parse_ip(v),
            "DST" => ev.destination_ip = parse_ip(v),
            "SPT" => ev.source_port = parse_port(v),
            "DPT" => ev.destination_port = parse_port(v),
            "PROTO" => {
                let t = v.to_ascii_lowercase();
                ev.set(Field::NETWORK_TRANSPORT, Val::Str(t.into()));
            }
            "LEN" => {
                if let Ok(n) = v.parse::<i64>() {
                    ev.set(Field::SOURCE_BYTES, Val::Int(n));
                }
            }
            _ => {}
        }
    }
    if flags.contains(&"SYN") && !flags.contains(&"ACK") {
        ev.set(Field::TAGS, Val::Str("tcp_syn".into()));
    }
}

/// firewalld daemon messages (`WARNING: ...`, `ERROR: ...`): configuration events.
pub fn firewalld(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "firewalld";
    ev.category = Category::Configuration;
    ev.event_type = EventType::Info;
    if let Some((level, _)) = msg.split_once(": ") {
        if level.bytes().all(|c| c.is_ascii_uppercase()) {
            set(ev, line, Field::LOG_LEVEL, level);
        }
    }
    if msg.contains("IN=") {
        kernel(ev, line, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    #[test]
    fn ufw_block() {
        let l = "[UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:00:00:01 SRC=45.141.87.12 DST=10.0.0.5 LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=54321 PROTO=TCP SPT=43122 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0";
        let mut e = Event::new(
            bytes::Bytes::copy_from_slice(l.as_bytes()),
            Arc::new(Origin::default()),
            0,
        );
        let raw = e.raw.clone();
        let s = raw.as_str();
        kernel(&mut e, s, s);
        assert_eq!(e.action, Some("firewall_block"));
        assert_eq!(e.source_ip.unwrap().to_string(), "45.141.87.12");
        assert_eq!(e.destination_port, Some(3389));
        assert_eq!(e.get_str(Field::NETWORK_TRANSPORT).unwrap(), "tcp");
        assert_eq!(e.get_str(Field::RULE_NAME).unwrap(), "[UFW BLOCK]");
        assert_eq!(e.get_str(Field::TAGS).unwrap(), "tcp_syn");
    }
}
