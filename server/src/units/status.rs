//! The statuses rows carry (order, ticket, session, conflict kind), as
//! enums: a handler or template compares variants, never spelled strings.
//! Each keeps the exact string the database stores ([`OrderStatus::as_str`]
//! and the like), and [`OrderStatus::parse`] and the like refuse any other,
//! so that an unknown value read back is an error, not a guess. Storage
//! binds and reads them through `ToSql`/`FromSql` (in `db::status`); this
//! layer knows nothing of SQL.

/// Declares a status enum with its stored strings, `as_str`, `parse`,
/// `ALL` and `Display` (the stored string, as message keys and CSS classes
/// use it), so the four statuses cannot differ in how they map.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order they are shown.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The string stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The value of a stored string; `None` for any other string.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Status of an order.
    OrderStatus {
        /// Waiting for payment; seats held.
        Pending => "pending",
        /// Paid; tickets issued.
        Paid => "paid",
        /// Hold expired unpaid; seats returned.
        Expired => "expired",
        /// Refunded.
        Refunded => "refunded",
    }
}

status_enum! {
    /// Status of a ticket.
    TicketStatus {
        /// Admits at the gates.
        Valid => "valid",
        /// On the revocation list (refund, cancellation, re-issue, fraud…).
        Revoked => "revoked",
    }
}

status_enum! {
    /// Status of a session (épreuve).
    SessionStatus {
        /// Takes place; on sale until it starts.
        Scheduled => "scheduled",
        /// Cancelled: off sale, its tickets revoked.
        Cancelled => "cancelled",
    }
}

status_enum! {
    /// Kind of a conflict found in the scans the gates uploaded, in the
    /// order the console shows them.
    ConflictKind {
        /// A ticket admitted more often than its session allows.
        DoubleAdmit => "double_admit",
        /// A ticket admitted after its revocation was on the list.
        AdmittedAfterRevocation => "admitted_after_revocation",
        /// An admission of a ticket the server never issued.
        UnknownTicket => "unknown_ticket",
        /// Records missing in a device's hash chain.
        ChainGap => "chain_gap",
        /// A record that does not continue its device's hash chain.
        ChainBreak => "chain_break",
        /// Scans uploaded long after they were made, or dated ahead.
        LateUpload => "late_upload",
        /// An admission without a valid proof of the ticket.
        UnprovenAdmission => "unproven_admission",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_stored_string() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(*s));
        }
        for s in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(s.as_str()), Some(*s));
        }
        for s in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(s.as_str()), Some(*s));
        }
        for s in ConflictKind::ALL {
            assert_eq!(ConflictKind::parse(s.as_str()), Some(*s));
        }
        assert_eq!(OrderStatus::parse("Paid"), None);
        assert_eq!(TicketStatus::parse(""), None);
        assert_eq!(
            ConflictKind::UnprovenAdmission.to_string(),
            "unproven_admission"
        );
    }
}
