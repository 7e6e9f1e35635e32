//! The audit rows of exec jobs on a shared queue (migrations-pg/0003): written by the machine
//! that runs the command, before it starts and when it ends, and read by every machine.

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;
use crate::exec::audit::{AuditEntry, Finish};

/// Write `entry` as run on `host` (ended at once when `ended`: a refusal); returns its id.
pub(crate) async fn record(shared: &Shared, host: &str, entry: &AuditEntry, ended: bool, now: Millis) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO exec_audit (host, at, requester, program, args, cwd, decision, rule_id, reason, approval, exit_code,
                                 signal, duration_ms, output_bytes, truncated, error_code, env, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id",
    )
    .bind(host)
    .bind(now)
    .bind(&entry.requester)
    .bind(&entry.program)
    .bind(serde_json::to_string(&entry.args).unwrap_or_default())
    .bind(&entry.cwd)
    .bind(&entry.decision)
    .bind(entry.rule_id)
    .bind(&entry.reason)
    .bind(&entry.approval)
    .bind(entry.exit_code)
    .bind(entry.signal)
    .bind(entry.duration_ms)
    .bind(entry.output_bytes)
    .bind(entry.truncated)
    .bind(&entry.error_code)
    .bind(serde_json::to_string(&entry.env).unwrap_or_default())
    .bind(ended.then_some(now))
    .fetch_one(&shared.db)
    .await
    .map_err(pg)
}

/// Complete the row of a command that has ended.
pub(crate) async fn finish(shared: &Shared, f: &Finish, now: Millis) -> Result<()> {
    sqlx::query(
        "UPDATE exec_audit SET exit_code = $2, duration_ms = $3, output_bytes = $4, truncated = $5, error_code = $6,
                               ended_at = $7, signal = $8
         WHERE id = $1",
    )
    .bind(f.id)
    .bind(f.exit_code)
    .bind(f.duration_ms)
    .bind(f.output_bytes)
    .bind(f.truncated)
    .bind(&f.error_code)
    .bind(now)
    .bind(f.signal)
    .execute(&shared.db)
    .await
    .map_err(pg)?;
    Ok(())
}

/// The newest `limit` rows, newest first.
pub(crate) async fn list(shared: &Shared, limit: i64) -> Result<Vec<AuditEntry>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT id, host, at, requester, program, args, cwd, decision, rule_id, reason, approval, exit_code, signal,
                duration_ms, output_bytes, truncated, error_code, env, ended_at
         FROM exec_audit ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&shared.db)
    .await
    .map_err(pg)?;
    rows.iter()
        .map(|r| {
            let args: String = r.try_get("args")?;
            let env: String = r.try_get("env")?;
            Ok(AuditEntry {
                id: r.try_get("id")?,
                host: Some(r.try_get("host")?),
                at: r.try_get("at")?,
                requester: r.try_get("requester")?,
                program: r.try_get("program")?,
                args: serde_json::from_str(&args).unwrap_or_default(),
                cwd: r.try_get("cwd")?,
                decision: r.try_get("decision")?,
                rule_id: r.try_get("rule_id")?,
                reason: r.try_get("reason")?,
                approval: r.try_get("approval")?,
                exit_code: r.try_get("exit_code")?,
                signal: r.try_get("signal")?,
                duration_ms: r.try_get("duration_ms")?,
                output_bytes: r.try_get("output_bytes")?,
                truncated: r.try_get("truncated")?,
                error_code: r.try_get("error_code")?,
                env: serde_json::from_str(&env).unwrap_or_default(),
                ended_at: r.try_get("ended_at")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(pg)
}
