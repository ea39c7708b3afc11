//! Decisions (bans) and the record of every response action, as the responder
//! (`tansa-respond`) writes them. The store only keeps rows: what a decision means is decided
//! there.
//!
//! - `decisions`: one row per decision, written when made and updated once when revoked.
//!   Refused decisions (the allow list) and simulated ones are rows too, so that what Tansa
//!   would have done is on record.
//! - `actions`: append-only; every decision made, refused, revoked or expired, every change
//!   applied to a firewall and every hook run, with its outcome.
//! - `approvals`: response hooks that wait for a person (`tansa approvals`); written when
//!   asked for and updated once when approved, rejected or timed out.

use duckdb::params;
use serde::{Deserialize, Serialize};

use crate::{ts_text, DuckStore, Result};

/// One decision, as stored. Times are Unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub id: u64,
    pub created: i64,
    /// `None`: until revoked.
    pub until: Option<i64>,
    /// `ip`, `range` or `as`.
    pub scope: String,
    /// What was decided on: an address, a prefix, `AS64500`.
    pub value: String,
    /// The prefixes enforced (one for `ip`/`range`; an AS's announced prefixes).
    pub nets: Vec<String>,
    /// `ban`.
    pub action: String,
    pub reason: String,
    pub rule_id: Option<String>,
    pub alert_id: Option<String>,
    /// `tansa` (a rule), `manual`, `agent:NAME`, `api`.
    pub origin: String,
    /// Who made it (user@host for manual decisions, the server's name otherwise).
    pub actor: String,
    /// 1 for a first offence; escalated durations count up.
    pub offence: u32,
    pub simulated: bool,
    /// Why it was refused (it touched the allow list), when it was.
    pub refused: Option<String>,
    pub revoked: Option<i64>,
    pub revoked_by: Option<String>,
}

/// One response action and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRow {
    pub time: i64,
    /// `decision`, `refused`, `revoked`, `expired`, `firewall`, `hook`, `approval`, …
    pub kind: String,
    pub decision_id: Option<u64>,
    /// The backend, hook or person concerned.
    pub target: String,
    /// `ok`, `error`, `simulated`, `pending`, `approved`, `rejected`, `timeout`, …
    pub outcome: String,
    pub detail: String,
}

/// A response hook waiting for (or given) a person's approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRow {
    pub id: u64,
    pub created: i64,
    /// When the timeout policy decides (`None`: never).
    pub expires: Option<i64>,
    /// The hook that waits.
    pub hook: String,
    pub alert_id: Option<String>,
    pub rule_id: Option<String>,
    /// One line for the list.
    pub summary: String,
    /// What the hook is run with once approved (JSON).
    pub facts: String,
    /// `pending`, `approved`, `rejected`, `expired`.
    pub state: String,
    pub decided: Option<i64>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS decisions (
    id UBIGINT PRIMARY KEY,
    created TIMESTAMP,
    until TIMESTAMP,
    scope VARCHAR,
    value VARCHAR,
    nets VARCHAR[],
    action VARCHAR,
    reason VARCHAR,
    rule_id VARCHAR,
    alert_id VARCHAR,
    origin VARCHAR,
    actor VARCHAR,
    offence UINTEGER,
    simulated BOOLEAN,
    refused VARCHAR,
    revoked TIMESTAMP,
    revoked_by VARCHAR
);
CREATE TABLE IF NOT EXISTS approvals (
    id UBIGINT PRIMARY KEY,
    created TIMESTAMP,
    expires TIMESTAMP,
    hook VARCHAR,
    alert_id VARCHAR,
    rule_id VARCHAR,
    summary VARCHAR,
    facts VARCHAR,
    state VARCHAR,
    decided TIMESTAMP,
    decided_by VARCHAR,
    note VARCHAR
);
CREATE TABLE IF NOT EXISTS actions (
    time TIMESTAMP,
    kind VARCHAR,
    decision_id UBIGINT,
    target VARCHAR,
    outcome VARCHAR,
    detail VARCHAR
);
"#;

const SELECT: &str = "SELECT id, epoch_ns(created), epoch_ns(until), scope, value, \
    array_to_string(nets, ' '), action, reason, rule_id, alert_id, origin, actor, offence, \
    simulated, refused, epoch_ns(revoked), revoked_by FROM decisions";

fn opt_ts(t: Option<i64>) -> Option<String> {
    t.map(ts_text)
}

impl DuckStore {
    /// Writes new decisions (one transaction, however many).
    pub fn put_decisions(&mut self, rows: &[DecisionRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE OR REPLACE TEMP TABLE decisions_in (id UBIGINT, created VARCHAR, until VARCHAR, \
             scope VARCHAR, value VARCHAR, nets VARCHAR, action VARCHAR, reason VARCHAR, \
             rule_id VARCHAR, alert_id VARCHAR, origin VARCHAR, actor VARCHAR, offence UINTEGER, \
             simulated BOOLEAN, refused VARCHAR, revoked VARCHAR, revoked_by VARCHAR);",
        )?;
        {
            let mut app = tx.appender("decisions_in")?;
            for d in rows {
                app.append_row(params![
                    d.id,
                    ts_text(d.created),
                    opt_ts(d.until),
                    d.scope,
                    d.value,
                    d.nets.join(" "),
                    d.action,
                    d.reason,
                    d.rule_id,
                    d.alert_id,
                    d.origin,
                    d.actor,
                    d.offence,
                    d.simulated,
                    d.refused,
                    opt_ts(d.revoked),
                    d.revoked_by,
                ])?;
            }
            app.flush()?;
        }
        tx.execute_batch(
            "INSERT INTO decisions SELECT id, created::TIMESTAMP, until::TIMESTAMP, scope, value, \
               list_filter(string_split(nets, ' '), lambda c: c <> ''), action, reason, rule_id, \
               alert_id, origin, actor, offence, simulated, refused, revoked::TIMESTAMP, revoked_by \
             FROM decisions_in; DROP TABLE decisions_in;",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a decision revoked.
    pub fn revoke_decision(&mut self, id: u64, at: i64, by: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE decisions SET revoked = ?::TIMESTAMP, revoked_by = ? WHERE id = ?",
            params![ts_text(at), by, id],
        )?;
        Ok(())
    }

    /// Decisions still in force at `now` or made since `since` (what the responder keeps in
    /// memory: the active ones and the history that escalation counts).
    pub fn decisions_since(&self, since: i64, now: i64) -> Result<Vec<DecisionRow>> {
        let mut st = self.conn.prepare(&format!(
            "{SELECT} WHERE created >= ?::TIMESTAMP OR (revoked IS NULL AND (until IS NULL OR until > ?::TIMESTAMP)) ORDER BY id"
        ))?;
        let rows = st.query_map(params![ts_text(since), ts_text(now)], |r| {
            let nets: Option<String> = r.get(5)?;
            Ok(DecisionRow {
                id: r.get(0)?,
                created: r.get(1)?,
                until: r.get(2)?,
                scope: r.get(3)?,
                value: r.get(4)?,
                nets: nets
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect(),
                action: r.get(6)?,
                reason: r.get(7)?,
                rule_id: r.get(8)?,
                alert_id: r.get(9)?,
                origin: r.get(10)?,
                actor: r.get(11)?,
                offence: r.get(12)?,
                simulated: r.get(13)?,
                refused: r.get(14)?,
                revoked: r.get(15)?,
                revoked_by: r.get(16)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The largest decision id so far (0 when there is none).
    pub fn last_decision_id(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM decisions", [], |r| {
                r.get(0)
            })?)
    }

    /// Appends to the record of actions.
    pub fn put_actions(&mut self, rows: &[ActionRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare("INSERT INTO actions VALUES (?::TIMESTAMP, ?, ?, ?, ?, ?)")?;
            for a in rows {
                st.execute(params![
                    ts_text(a.time),
                    a.kind,
                    a.decision_id,
                    a.target,
                    a.outcome,
                    a.detail
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The record of actions, oldest first (`decision`: only those of one decision).
    pub fn actions(&self, decision: Option<u64>) -> Result<Vec<ActionRow>> {
        let mut st = self.conn.prepare(
            "SELECT epoch_ns(time), kind, decision_id, target, outcome, detail FROM actions \
             WHERE ? IS NULL OR decision_id = ? ORDER BY time, rowid",
        )?;
        let rows = st.query_map(params![decision, decision], |r| {
            Ok(ActionRow {
                time: r.get(0)?,
                kind: r.get(1)?,
                decision_id: r.get(2)?,
                target: r.get(3)?,
                outcome: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

const SELECT_APPROVALS: &str = "SELECT id, epoch_ns(created), epoch_ns(expires), hook, \
    alert_id, rule_id, summary, facts, state, epoch_ns(decided), decided_by, note FROM approvals";

impl DuckStore {
    /// Writes a new approval request.
    pub fn put_approval(&mut self, a: &ApprovalRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO approvals VALUES (?, ?::TIMESTAMP, ?::TIMESTAMP, ?, ?, ?, ?, ?, ?, \
             ?::TIMESTAMP, ?, ?)",
            params![
                a.id,
                ts_text(a.created),
                opt_ts(a.expires),
                a.hook,
                a.alert_id,
                a.rule_id,
                a.summary,
                a.facts,
                a.state,
                opt_ts(a.decided),
                a.decided_by,
                a.note
            ],
        )?;
        Ok(())
    }

    /// Settles a pending approval (`approved`, `rejected`, `expired`); false when it was not
    /// pending (settled already, or no such id) — the first decision stands.
    pub fn settle_approval(
        &mut self,
        id: u64,
        state: &str,
        at: i64,
        by: &str,
        note: Option<&str>,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE approvals SET state = ?, decided = ?::TIMESTAMP, decided_by = ?, note = ? \
             WHERE id = ? AND state = 'pending'",
            params![state, ts_text(at), by, note, id],
        )?;
        Ok(n == 1)
    }

    /// Approvals, newest last: the pending ones, or (`all`) every one created since `since`.
    pub fn approvals(&self, all: bool, since: i64) -> Result<Vec<ApprovalRow>> {
        self.select_approvals(
            "state = 'pending' OR (? AND created >= ?::TIMESTAMP)",
            params![all, ts_text(since)],
        )
    }

    /// One approval.
    pub fn approval(&self, id: u64) -> Result<Option<ApprovalRow>> {
        Ok(self.select_approvals("id = ?", params![id])?.pop())
    }

    fn select_approvals(
        &self,
        filter: &str,
        args: &[&dyn duckdb::ToSql],
    ) -> Result<Vec<ApprovalRow>> {
        let mut st = self
            .conn
            .prepare(&format!("{SELECT_APPROVALS} WHERE {filter} ORDER BY id"))?;
        let rows = st.query_map(args, |r| {
            Ok(ApprovalRow {
                id: r.get(0)?,
                created: r.get(1)?,
                expires: r.get(2)?,
                hook: r.get(3)?,
                alert_id: r.get(4)?,
                rule_id: r.get(5)?,
                summary: r.get(6)?,
                facts: r.get(7)?,
                state: r.get(8)?,
                decided: r.get(9)?,
                decided_by: r.get(10)?,
                note: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The largest approval id so far (0 when there is none).
    pub fn last_approval_id(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM approvals", [], |r| {
                r.get(0)
            })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_round_trip_and_revoke() {
        let dir = std::env::temp_dir().join(format!("tansa-dec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = DuckStore::open(&dir, None).unwrap();
        assert_eq!(s.last_decision_id().unwrap(), 0);
        let t = 1_700_000_000_000_000_000;
        let d = DecisionRow {
            id: 7,
            created: t,
            until: Some(t + 3_600_000_000_000),
            scope: "range".into(),
            value: "203.0.113.0/24".into(),
            nets: vec!["203.0.113.0/24".into()],
            action: "ban".into(),
            reason: "ssh brute force".into(),
            rule_id: Some("tansa.ssh.bruteforce".into()),
            alert_id: Some("a1".into()),
            origin: "tansa".into(),
            actor: "web01".into(),
            offence: 2,
            simulated: false,
            refused: None,
            revoked: None,
            revoked_by: None,
        };
        let permanent = DecisionRow {
            id: 8,
            until: None,
            value: "AS64500".into(),
            scope: "as".into(),
            nets: vec!["198.51.100.0/24".into(), "2001:db8::/32".into()],
            ..d.clone()
        };
        s.put_decisions(&[d.clone(), permanent.clone()]).unwrap();
        assert_eq!(s.last_decision_id().unwrap(), 8);
        let got = s.decisions_since(t, t).unwrap();
        assert_eq!(got, vec![d.clone(), permanent.clone()]);
        s.revoke_decision(7, t + 5_000_000, "ops@host").unwrap();
        // long after: only the permanent one is still in force
        let later = t + 10 * 3_600_000_000_000;
        let got = s.decisions_since(later, later).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, 8);
        let all = s.decisions_since(0, later).unwrap();
        assert_eq!(all[0].revoked, Some(t + 5_000_000));
        assert_eq!(all[0].revoked_by.as_deref(), Some("ops@host"));
        s.put_actions(&[ActionRow {
            time: t,
            kind: "decision".into(),
            decision_id: Some(7),
            target: "nftables".into(),
            outcome: "ok".into(),
            detail: "added 1".into(),
        }])
        .unwrap();
        assert_eq!(s.actions(Some(7)).unwrap().len(), 1);
        assert_eq!(s.actions(Some(8)).unwrap().len(), 0);
        assert_eq!(s.actions(None).unwrap().len(), 1);

        let a = ApprovalRow {
            id: 1,
            created: t,
            expires: Some(t + 60_000_000_000),
            hook: "lock-account".into(),
            alert_id: Some("a1".into()),
            rule_id: Some("tansa.ssh.bruteforce".into()),
            summary: "lock root".into(),
            facts: "{}".into(),
            state: "pending".into(),
            decided: None,
            decided_by: None,
            note: None,
        };
        s.put_approval(&a).unwrap();
        s.put_approval(&ApprovalRow { id: 2, ..a.clone() }).unwrap();
        assert_eq!(s.last_approval_id().unwrap(), 2);
        assert_eq!(
            s.approvals(false, 0).unwrap(),
            vec![a.clone(), ApprovalRow { id: 2, ..a.clone() }]
        );
        assert!(s
            .settle_approval(1, "rejected", t + 1000, "ops", Some("false alarm"))
            .unwrap());
        // the first decision stands
        assert!(!s
            .settle_approval(1, "approved", t + 2000, "eve", None)
            .unwrap());
        assert!(!s
            .settle_approval(9, "approved", t + 2000, "eve", None)
            .unwrap());
        let pending = s.approvals(false, 0).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, 2);
        let all = s.approvals(true, 0).unwrap();
        assert_eq!(all[0].state, "rejected");
        assert_eq!(all[0].decided_by.as_deref(), Some("ops"));
        assert_eq!(all[0].note.as_deref(), Some("false alarm"));
        assert_eq!(all[0].decided, Some(t + 1000));
        assert_eq!(s.approval(1).unwrap().as_ref(), Some(&all[0]));
        assert_eq!(s.approval(9).unwrap(), None);
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
