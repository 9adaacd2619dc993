//! `--from`/`--to` times: RFC 3339 (`2026-12-01T10:02:13.25Z`, or with an
//! offset such as `+01:00`; a space may stand for the `T`) or seconds since
//! the Unix epoch with a fraction (`1796119333.25`). Nanoseconds since the
//! epoch out.

/// Parses a time; the error says what was expected.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("{text:?} is not a time: expected RFC 3339 (2026-12-01T10:02:13Z, or with an offset such as +01:00) or epoch seconds (1796119333.25)")
    };
    let parsed = if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        epoch(text)
    } else {
        rfc3339(text)
    };
    parsed.ok_or_else(bad)
}

/// `SECONDS[.FRACTION]`.
fn epoch(text: &str) -> Option<u64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    secs.checked_mul(1_000_000_000)?
        .checked_add(fraction_ns(frac)?)
}

/// Up to nine digits of a fraction of a second, in ns (more are cut).
fn fraction_ns(digits: &str) -> Option<u64> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kept: String = digits.chars().take(9).collect();
    let padded = format!("{kept:0<9}");
    padded.parse().ok()
}

fn rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut frac_ns = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        frac_ns = fraction_ns(&after_dot[..digits])?;
        rest = &after_dot[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (
                rest[1..3].parse::<i64>().ok()?,
                rest[4..6].parse::<i64>().ok()?,
            );
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let secs = u64::try_from(secs).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

fn leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_and_epoch_seconds() {
        let s = 1_000_000_000u64;
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2026-12-01T10:02:13Z"), Ok(1_796_119_333 * s));
        assert_eq!(
            parse_time("2026-12-01 11:02:13.5+01:00"),
            Ok(1_796_119_333 * s + s / 2)
        );
        assert_eq!(
            parse_time("2026-12-01T05:02:13.000000001-05:00"),
            Ok(1_796_119_333 * s + 1)
        );
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800 * s));
        assert_eq!(parse_time("1796119333.25"), Ok(1_796_119_333 * s + s / 4));
        assert_eq!(parse_time("1796119333"), Ok(1_796_119_333 * s));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-12-01T10:02:13",
            "2026-12-01T25:00:00Z",
            "2026-12-01T10:02:13+1",
            "1.2.3",
            ".5",
            "2026-12-01T10:02:13.Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }
}
