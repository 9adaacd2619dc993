//! Names of rotated files: strftime-style patterns (UTC) for `-G`, and a
//! sequence number before the extension for `-C` and SIGHUP.

use std::path::{Path, PathBuf};

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Expands `%Y %m %d %H %M %S %s %%` in `pattern` for `unix_secs` (UTC).
/// Other `%` sequences are kept as they are.
pub(crate) fn strftime_utc(pattern: &str, unix_secs: u64) -> String {
    let secs = unix_secs as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{year:04}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('s') => out.push_str(&unix_secs.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Inserts `-NNNN` before the extension: `cap.pcap` → `cap-0003.pcap`, so
/// rotated files keep the extension tools recognise (`cap.pcap.zst` →
/// `cap-0003.pcap.zst`).
pub(crate) fn with_sequence(path: &Path, seq: u64) -> PathBuf {
    if let Some(inner) = path.to_str().and_then(|p| p.strip_suffix(".zst")) {
        let numbered = with_sequence(Path::new(inner), seq);
        return PathBuf::from(format!("{}.zst", numbered.display()));
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{seq:04}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{seq:04}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_utc_fields() {
        // 2023-11-14 22:13:20 UTC
        assert_eq!(
            strftime_utc("cap-%Y%m%d-%H%M%S.pcap", 1_700_000_000),
            "cap-20231114-221320.pcap"
        );
        assert_eq!(strftime_utc("%s-%%-%q", 60), "60-%-%q");
        // a leap day
        assert_eq!(strftime_utc("%Y-%m-%d", 951_782_400), "2000-02-29");
        assert_eq!(strftime_utc("%Y-%m-%d %H:%M:%S", 0), "1970-01-01 00:00:00");
    }

    #[test]
    fn sequence_goes_before_the_extension() {
        assert_eq!(
            with_sequence(Path::new("/d/cap.pcapng.zst"), 7),
            PathBuf::from("/d/cap-0007.pcapng.zst")
        );
        assert_eq!(
            with_sequence(Path::new("/d/cap.pcapng"), 7),
            PathBuf::from("/d/cap-0007.pcapng")
        );
        assert_eq!(
            with_sequence(Path::new("cap"), 12345),
            PathBuf::from("cap-12345")
        );
    }
}
