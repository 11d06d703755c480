//! How the statuses of [`crate::units::status`] are stored: bound as their
//! exact strings, read back strictly. A string no variant stores (a row
//! written by a newer server, or by hand) is a `FromSqlError`, so the read
//! fails with an error instead of being taken for some other status.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

use crate::units::status::{ConflictKind, OrderStatus, SessionStatus, TicketStatus};

/// The stored value was not one of the status's strings.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {found:?} in the database")]
pub struct UnknownStatus {
    /// Which status column.
    pub what: &'static str,
    /// The string found.
    pub found: String,
}

/// Implements `ToSql` and `FromSql` for status enums through their
/// `as_str` and `parse`.
macro_rules! sql_status {
    ($($name:ident => $what:literal),+ $(,)?) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = value.as_str()?;
                $name::parse(s).ok_or_else(|| {
                    FromSqlError::Other(Box::new(UnknownStatus {
                        what: $what,
                        found: s.to_owned(),
                    }))
                })
            }
        }
    )+};
}

/// Implements [`ToValue`](super::sql::ToValue) and
/// [`FromValue`](super::sql::FromValue) (both backends) the same way.
macro_rules! value_status {
    ($($name:ident => $what:literal),+ $(,)?) => {$(
        impl super::sql::ToValue for $name {
            fn to_value(&self) -> super::sql::Value<'_> {
                super::sql::Value::Text(self.as_str())
            }
        }

        impl super::sql::FromValue for $name {
            fn from_cell(cell: super::sql::Cell<'_>) -> Result<Self, String> {
                let s = String::from_cell(cell)?;
                $name::parse(&s).ok_or_else(|| {
                    UnknownStatus {
                        what: $what,
                        found: s,
                    }
                    .to_string()
                })
            }
        }
    )+};
}

value_status! {
    OrderStatus => "order status",
    TicketStatus => "ticket status",
    SessionStatus => "session status",
    ConflictKind => "conflict kind",
}

sql_status! {
    OrderStatus => "order status",
    TicketStatus => "ticket status",
    SessionStatus => "session status",
    ConflictKind => "conflict kind",
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn statuses_are_stored_as_their_strings_and_unknown_ones_are_errors() {
        let c = Connection::open_in_memory().expect("opens");
        let stored: String = c
            .query_row("SELECT ?1", [OrderStatus::Refunded], |r| r.get(0))
            .expect("binds");
        assert_eq!(stored, "refunded");
        let read: TicketStatus = c
            .query_row("SELECT 'revoked'", [], |r| r.get(0))
            .expect("reads");
        assert_eq!(read, TicketStatus::Revoked);
        let unknown = c.query_row("SELECT 'lost'", [], |r| r.get::<_, SessionStatus>(0));
        assert!(
            matches!(unknown, Err(rusqlite::Error::FromSqlConversionFailure(..))),
            "{unknown:?}"
        );
        let wrong_type = c.query_row("SELECT 3", [], |r| r.get::<_, ConflictKind>(0));
        assert!(wrong_type.is_err());
    }

    #[test]
    fn through_the_neutral_interface_too() {
        use crate::db::StoreError;
        use crate::db::sql::{Conn, params};
        let raw = Connection::open_in_memory().expect("opens");
        let c = Conn::Sqlite(&raw);
        let stored: String = c
            .query_row("SELECT ?1", params![OrderStatus::Paid], |r| r.get(0))
            .expect("binds");
        assert_eq!(stored, "paid");
        let read: TicketStatus = c
            .query_row("SELECT 'valid'", params![], |r| r.get(0))
            .expect("reads");
        assert_eq!(read, TicketStatus::Valid);
        assert!(matches!(
            c.query_row("SELECT 'lost'", params![], |r| r.get::<SessionStatus>(0)),
            Err(StoreError::Decode { .. })
        ));
    }
}
