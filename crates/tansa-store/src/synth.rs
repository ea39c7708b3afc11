//! Synthetic auth.log-like events generated inside DuckDB, for the large-store benchmark
//! (`scripts/gen-store`): 30 days from a given day (2026-10-01 by default), 20 hosts
//! (`node00`…`node19`), 200 000 source addresses with a heavy-tailed distribution (address
//! 11.0.0.1 is the busiest), ten user names, 5% successful logins, whole-second timestamps as
//! syslog writes them. Deterministic: row i is the same in every run.

use duckdb::params;

use crate::{DuckStore, Result, HOT};

impl DuckStore {
    /// Inserts rows `start..end` of the synthetic series of `total` rows spread over the 30
    /// days from `from` (`YYYY-MM-DD`).
    pub fn generate(&self, start: u64, end: u64, total: u64, from: &str) -> Result<()> {
        let step_us = (30u64 * 86_400 * 1_000_000) / total.max(1);
        let sql = format!(
            "INSERT INTO {HOT} (source, time_at, time_len, day, ts, ingested, kind, dataset, \
               category, type, action, outcome, host, source_ip, source_port, user_name, \
               process_name, process_pid, log_path, log_offset, agent_id, fields, raw) \
             WITH g AS ( \
               SELECT i, date_trunc('second', CAST(? AS TIMESTAMP) + to_microseconds(CAST(i * ? AS BIGINT))) AS t, \
                 CAST(floor(pow((hash(i) % 1000003) / 1000003.0, 4) * 200000) AS BIGINT) AS k, \
                 ['root','admin','ubuntu','test','oracle','postgres','git','user','deploy','alice'][1 + CAST(hash(i + 7) % 10 AS INTEGER)] AS usr, \
                 hash(i + 3) % 20 = 0 AS ok, \
                 CAST(1000 + i % 30000 AS BIGINT) AS pid, \
                 CAST(1024 + i % 60000 AS USMALLINT) AS port \
               FROM range(?, ?) r(i)), \
             h AS (SELECT *, (11 + k % 200) || '.' || (k // 200 % 250) || '.' || (k // 50000) || '.' || (1 + k % 250) AS ip, \
                   'node' || lpad(CAST(i % 20 AS VARCHAR), 2, '0') AS host FROM g) \
             SELECT 1, 0, 15, CAST(t AS DATE), t, t + INTERVAL 1 SECOND, \
               'event', 'sshd', 'authentication', 'start', 'ssh_login', CASE WHEN ok THEN 'success' ELSE 'failure' END, \
               host, ip, port, usr, 'sshd', pid, '/var/log/auth.log', CAST(i * 100 AS UBIGINT), 'local', '{{\"ssh.method\":\"password\"}}', \
               strftime(t, '%b %d %H:%M:%S') || ' ' || host || ' sshd[' || pid || ']: ' || \
               CASE WHEN ok THEN 'Accepted password for ' ELSE 'Failed password for ' END || usr || \
               ' from ' || ip || ' port ' || port || ' ssh2' \
             FROM h"
        );
        self.conn().execute(
            &sql,
            params![from, step_us as i64, start as i64, end as i64],
        )?;
        Ok(())
    }
}
