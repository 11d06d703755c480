//! The audit log: who did what, from where, to what. Append-only (the
//! schema's triggers refuse UPDATE and DELETE); every admin action writes its
//! entry with [`audit`] inside the action's own transaction, so an action and
//! its entry commit together or not at all.

use super::sql::{Conn, params};

use super::{Store, StoreResult};

/// Who performs an admin action, and from where (for the audit log).
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id of the admin.
    pub id: i64,
    /// Username of the admin.
    pub username: String,
    /// Client address of the request.
    pub ip: String,
}

/// Appends an audit entry (inside the caller's transaction).
pub fn audit(
    c: &Conn<'_>,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
    at: i64,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO audit_log (at, actor_id, actor, action, target, detail, client_ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at,
            actor.id,
            actor.username,
            action,
            target,
            detail,
            actor.ip
        ],
    )?;
    Ok(())
}

/// One audit entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Row id (pagination cursor).
    pub id: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// Admin's username.
    pub actor: String,
    /// Action code, e.g. `offer.create`.
    pub action: String,
    /// Target, e.g. `offer:3`.
    pub target: String,
    /// Details (new values, reason…).
    pub detail: String,
    /// Client address.
    pub client_ip: String,
}

impl Store {
    /// Audit entries older than `before` (all when `None`), newest first.
    pub async fn admin_audit(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.pool
            .read_blocking_sql(move |c| {
                c.query_map(
                    "SELECT id, at, actor, action, target, detail, client_ip FROM audit_log
                     WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                    params![before.unwrap_or(i64::MAX), limit],
                    |r| {
                        Ok(AuditEntry {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            action: r.get(3)?,
                            target: r.get(4)?,
                            detail: r.get(5)?,
                            client_ip: r.get(6)?,
                        })
                    },
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_log_is_append_only() {
        let mut raw = rusqlite::Connection::open_in_memory().expect("opens");
        crate::db::migrations::apply(&mut raw).expect("migrates");
        let c = Conn::Sqlite(&raw);
        c.execute(
            "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, role, created_at)
             VALUES ('a', 'a@x.fr', 'A', 'B', 'h', zeroblob(32), 'admin', 0)",
            params![],
        )
        .expect("user");
        let actor = Actor {
            id: 1,
            username: "a".into(),
            ip: "127.0.0.1".into(),
        };
        audit(&c, &actor, "offer.create", "offer:1", "", 5).expect("audits");
        assert!(
            c.execute("UPDATE audit_log SET actor = 'b'", params![])
                .is_err()
        );
        assert!(c.execute("DELETE FROM audit_log", params![]).is_err());
    }
}
