//! Times as a listing shows them: `YYYY-MM-DD HH:MM` and ISO 8601 in the page, RFC 1123 in
//! JSON; always UTC, computed without a time zone database.

use std::fmt::Write;

/// A moment in UTC, split into its civil fields.
pub struct Utc {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 0 is Sunday.
    weekday: i64,
}

/// `secs` since 1970-01-01 00:00:00 UTC as a civil date and time (Howard Hinnant's
/// days-to-civil algorithm).
pub fn utc(secs: i64) -> Utc {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Utc {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        weekday: (days + 4).rem_euclid(7),
    }
}

impl Utc {
    /// `2001-09-09 01:46`, as nginx's autoindex shows it.
    pub fn short(&self, out: &mut String) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        );
    }

    /// `2001-09-09T01:46:40Z`, for `<time datetime>`.
    pub fn iso(&self, out: &mut String) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
    }

    /// `Sun, 09 Sep 2001 01:46:40 GMT` (RFC 1123, as in HTTP dates and nginx's JSON).
    pub fn rfc1123(&self, out: &mut String) {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let _ = write!(
            out,
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            DAYS[self.weekday as usize],
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        );
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn all(secs: i64) -> (String, String, String) {
        let t = utc(secs);
        let (mut a, mut b, mut c) = (String::new(), String::new(), String::new());
        t.short(&mut a);
        t.iso(&mut b);
        t.rfc1123(&mut c);
        (a, b, c)
    }

    #[test]
    fn times_are_shown_in_utc_in_three_forms() {
        let (short, iso, rfc) = all(1_000_000_000);
        assert_eq!(short, "2001-09-09 01:46");
        assert_eq!(iso, "2001-09-09T01:46:40Z");
        assert_eq!(rfc, "Sun, 09 Sep 2001 01:46:40 GMT");
        assert_eq!(all(1_795_999_602).0, "2026-11-30 00:46");
        assert_eq!(all(951_782_400).2, "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(all(0).2, "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(all(-1).1, "1969-12-31T23:59:59Z");
    }
}
