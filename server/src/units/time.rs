//! Paris local time without a time-zone database.
//!
//! The programme is written in Europe/Paris local time. France follows the EU
//! rule since 1996: summer time (CEST, UTC+2) from the last Sunday of March at
//! 01:00 UTC to the last Sunday of October at 01:00 UTC, else CET (UTC+1).
//! That rule is all the shop needs, so it is written here (and unit-tested)
//! rather than pulling in chrono-tz and its whole IANA database.
//!
//! Also the server's clock ([`now`]) and the UTC timestamps of exports
//! ([`iso_utc`]), so that storage and the shop read time the same way.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day of the week, 0 = Monday … 6 = Sunday.
pub fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    u32::try_from((days + 3).rem_euclid(7)).unwrap_or(0)
}

fn last_sunday(y: i64, m: u32) -> i64 {
    let last = days_from_civil(y, m, 31);
    last - i64::from(weekday(last) + 1) % 7
}

/// Paris's offset from UTC at instant `utc` (Unix seconds), in seconds.
pub fn paris_offset_secs(utc: i64) -> i64 {
    let (y, _, _) = civil_from_days(utc.div_euclid(86_400));
    let start = last_sunday(y, 3) * 86_400 + 3_600;
    let end = last_sunday(y, 10) * 86_400 + 3_600;
    if (start..end).contains(&utc) {
        7_200
    } else {
        3_600
    }
}

/// The UTC instant of a Paris local date and time. Local times that do not
/// exist (the spring-forward hour) or exist twice (autumn) resolve to the
/// summer-time reading, which is what a programme printed in summer means.
pub fn paris_to_utc(days: i64, minute_of_day: i64) -> i64 {
    let local = days * 86_400 + minute_of_day * 60;
    let summer = local - 7_200;
    if paris_offset_secs(summer) == 7_200 {
        summer
    } else {
        local - 3_600
    }
}

/// A Paris local moment, broken down for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// Days since 1970-01-01 (local date).
    pub days: i64,
    /// Year.
    pub year: i64,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
    /// Hour 0–23.
    pub hour: u32,
    /// Minute 0–59.
    pub minute: u32,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u32,
}

/// The Paris local time of `utc`.
pub fn paris(utc: i64) -> Local {
    let local = utc + paris_offset_secs(utc);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Local {
        days,
        year,
        month,
        day,
        hour: u32::try_from(secs / 3_600).unwrap_or(0),
        minute: u32::try_from(secs % 3_600 / 60).unwrap_or(0),
        weekday: weekday(days),
    }
}

const DAYS_FR: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Local {
    fn names(&self, fr: bool) -> (&'static str, &'static str) {
        let wd = usize::try_from(self.weekday).unwrap_or(0).min(6);
        let mo = usize::try_from(self.month.saturating_sub(1))
            .unwrap_or(0)
            .min(11);
        if fr {
            (DAYS_FR[wd], MONTHS_FR[mo])
        } else {
            (DAYS_EN[wd], MONTHS_EN[mo])
        }
    }

    /// "samedi 3 août 2024" / "Saturday 3 August 2024".
    pub fn date_long(&self, fr: bool) -> String {
        let (wd, mo) = self.names(fr);
        format!("{wd} {} {mo} {}", self.day, self.year)
    }

    /// "19:30".
    pub fn hm(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }

    /// "2024-08-03", the date filter's value.
    pub fn iso_date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Parses "YYYY-MM-DD" into days since 1970-01-01.
pub fn parse_iso_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Refuses 2024-02-31 and the like: the round trip must agree.
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2024-08-03T17:30:00Z`: a Unix time in UTC, as exports write it.
pub fn iso_utc(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_format_for_exports() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(1_722_706_200), "2024-08-03T17:30:00Z");
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 7, 26), 19_930);
        for z in [-1_000, 0, 19_930, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        // 2024-07-26 was a Friday.
        assert_eq!(weekday(days_from_civil(2024, 7, 26)), 4);
    }

    #[test]
    fn paris_summer_and_winter_time() {
        // 2024-08-04 21:50 CEST = 19:50 UTC (the 100 m final).
        let d = days_from_civil(2024, 8, 4);
        let t = paris_to_utc(d, 21 * 60 + 50);
        assert_eq!(t, d * 86_400 + 19 * 3_600 + 50 * 60);
        assert_eq!(paris(t).hm(), "21:50");
        // Winter: 2024-12-01 10:00 CET = 09:00 UTC.
        let d = days_from_civil(2024, 12, 1);
        assert_eq!(paris_to_utc(d, 600), d * 86_400 + 9 * 3_600);
        // Switches: 2024-03-31 01:00 UTC and 2024-10-27 01:00 UTC.
        let spring = days_from_civil(2024, 3, 31) * 86_400 + 3_600;
        assert_eq!(paris_offset_secs(spring - 1), 3_600);
        assert_eq!(paris_offset_secs(spring), 7_200);
        let autumn = days_from_civil(2024, 10, 27) * 86_400 + 3_600;
        assert_eq!(paris_offset_secs(autumn - 1), 7_200);
        assert_eq!(paris_offset_secs(autumn), 3_600);
    }

    #[test]
    fn long_dates_in_both_languages() {
        let t = paris_to_utc(days_from_civil(2024, 8, 3), 19 * 60 + 30);
        let l = paris(t);
        assert_eq!(l.date_long(true), "samedi 3 août 2024");
        assert_eq!(l.date_long(false), "Saturday 3 August 2024");
        assert_eq!(l.iso_date(), "2024-08-03");
    }

    #[test]
    fn iso_dates_are_checked() {
        assert_eq!(parse_iso_date("2024-07-26"), Some(19_930));
        for bad in [
            "2024-02-31",
            "2024-13-01",
            "24-07-26",
            "2024/07/26",
            "",
            "2024-07-2x",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }
}
