//! RFC 3339 timestamps, the one implementation berth uses: container state
//! and logs (UTC with nanoseconds, as docker prints them) and image configs
//! (whole seconds; offsets accepted when reading).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Howard Hinnant's days-to-civil: (year, month, day) of a day number.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The inverse: the day number of a civil date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date_time(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn format(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}Z", date_time(d.as_secs() as i64), d.subsec_nanos())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn format_secs(secs: u64) -> String {
    format!("{}Z", date_time(secs as i64))
}

/// Now, with nanoseconds.
pub fn now() -> String {
    format(SystemTime::now())
}

/// Now, in whole seconds.
pub fn now_secs() -> String {
    format_secs(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Parses `2024-01-02T03:04:05[.fraction](Z|±hh:mm)` into (seconds since
/// the epoch, nanoseconds).
fn parse_parts(text: &str) -> Option<(i64, u32)> {
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (year, month, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (h, m) = time.get(i + 1..)?.split_once(':')?;
        let sign = if time.get(i..=i)? == "-" { -1 } else { 1 };
        (time.get(..i)?, sign * (num(h)? * 3600 + num(m)? * 60))
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let nanos: u32 = format!("{fraction:0<9}").get(..9)?.parse().ok()?;
    let mut c = hms.splitn(3, ':');
    let (hh, mm, ss) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some((
        days_from_civil(year, month, day) * 86_400 + hh * 3600 + mm * 60 + ss - offset,
        nanos,
    ))
}

/// Parses a timestamp into a time (before the epoch: `None`).
pub fn parse(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = parse_parts(text)?;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// Parses a timestamp into whole seconds since the epoch.
pub fn parse_secs(text: &str) -> Option<i64> {
    parse_parts(text).map(|(secs, _)| secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_form_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789);
        let s = format(t);
        assert_eq!(s, "2025-11-24T16:00:00.123456789Z");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn second_form_and_offsets() {
        for secs in [0u64, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_secs(&format_secs(secs)), Some(secs as i64));
        }
        assert_eq!(format_secs(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_secs("2023-11-14T23:13:20.123456789+01:00"), Some(1_700_000_000));
        assert_eq!(parse_secs("yesterday"), None);
        assert_eq!(parse("2023-13-01T00:00:00Z"), None);
    }
}
