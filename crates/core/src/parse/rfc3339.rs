//! RFC 3339 timestamps (`2023-11-14T22:28:20Z`, `2023-11-15T00:28:20.5+02:00`): the one calendar
//! format a token response may carry, in `expires_at`.
//!
//! A small parser of the `date-time` production (RFC 3339 §5.6) in place of the `time` crate, which
//! cost every service five crates to build (`time`, `time-core`, `deranged`, `powerfmt`,
//! `num-conv`) for this one call. A property test checks it against `time` (a dev-dependency).

/// The Unix time of the RFC 3339 `date-time` `text`, in whole seconds (a fraction of a second is
/// dropped), or `None` when `text` is not one.
///
/// `T` and `Z` may be lower case (§5.6, note). A leap second (`:60`) is read as the second before
/// it. Every field is range-checked (month 01–12, the day within its month of that year, hour
/// 00–23, minute 00–59, offset up to ±23:59), so no input can overflow: the result lies between
/// year 0000 and 9999.
pub(crate) fn unix_seconds(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    // `YYYY-MM-DDTHH:MM:SS`, 19 bytes, then an optional fraction and the offset.
    let (fixed, rest) = (bytes.get(..19)?, bytes.get(19..)?);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| fixed.get(at) != Some(&sep)) || !matches!(fixed.get(10), Some(b'T' | b't')) {
        return None;
    }
    let field = |at: usize, len: usize| digits(fixed.get(at..at.checked_add(len)?)?);
    let (year, month, day) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (hour, minute, second) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let rest = match rest.split_first() {
        Some((b'.', fraction)) => {
            let len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 {
                return None;
            }
            fraction.get(len..)?
        }
        _ => rest,
    };
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (hours, minutes) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = seconds_of(hours, minutes, 0);
            if *sign == b'-' { seconds.checked_neg()? } else { seconds }
        }
        _ => return None,
    };
    let local =
        days_from_civil(year, month, day).checked_mul(86_400)?.checked_add(seconds_of(hour, minute, second.min(59)))?;
    local.checked_sub(offset)
}

/// The value of ASCII digits (at most 4 here), or `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |value, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        value.checked_mul(10)?.checked_add(i64::from(digit))
    })
}

/// `hours:minutes:seconds` in seconds; each already range-checked (< 24, < 60, < 60).
#[allow(clippy::arithmetic_side_effects)] // at most 23 * 3600 + 59 * 60 + 59
fn seconds_of(hours: i64, minutes: i64, seconds: i64) -> i64 {
    hours * 3600 + minutes * 60 + seconds
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days of `month` (1–12) in `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year 0–9999, month 1–12, day 1–31): the
/// "days from civil" algorithm (H. Hinnant, `chrono`-compatible date algorithms).
#[allow(clippy::arithmetic_side_effects)] // every operand is bounded by the ranges above
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    use super::unix_seconds;

    /// What the `time` crate reads, the reference this parser replaced.
    fn reference(text: &str) -> Option<i64> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
    }

    #[test]
    fn known_instants() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(unix_seconds("2023-11-15T00:13:20+02:00"), Some(1_700_000_000));
        assert_eq!(unix_seconds("2023-11-14t17:13:20.999-05:00"), Some(1_700_000_000));
        assert_eq!(unix_seconds("2023-11-14T22:13:20.123456789123z"), Some(1_700_000_000));
        assert_eq!(unix_seconds("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(unix_seconds("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        assert_eq!(unix_seconds("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(unix_seconds("0000-01-01T00:00:00Z"), Some(-62_167_219_200));
        assert_eq!(unix_seconds("2016-12-31T23:59:60Z"), Some(1_483_228_799), "a leap second");
    }

    #[test]
    fn what_is_not_a_date_time_is_refused() {
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13Z",
            "2023-13-01T00:00:00Z",
            "2023-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-11-00T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:60:00Z",
            "2023-11-14T22:13:61Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+24:00",
            "2023-11-14T22:13:20+02:60",
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20Z ",
            "+2023-11-14T22:13:20Z",
            "2023-11-14T22:13:2٠Z",
            "２023-11-14T22:13:20Z",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad:?}");
        }
    }

    /// A date-time string made of valid fields and any of the optional parts, and its parts.
    fn date_time() -> impl Strategy<Value = String> {
        (
            (0i64..=9999, 1i64..=12, 1i64..=31, 0i64..=23, 0i64..=59, 0i64..=59),
            (any::<bool>(), any::<bool>(), prop::option::of("[0-9]{1,12}")),
            prop::option::of((any::<bool>(), 0i64..=23, 0i64..=59)),
        )
            .prop_map(|((y, mo, d, h, mi, s), (lower_t, lower_z, fraction), offset)| {
                let t = if lower_t { 't' } else { 'T' };
                let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
                let offset = match offset {
                    None if lower_z => "z".to_owned(),
                    None => "Z".to_owned(),
                    Some((east, oh, om)) => format!("{}{oh:02}:{om:02}", if east { '+' } else { '-' }),
                };
                format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{fraction}{offset}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// On well-formed text (and the invalid days of short months it also produces) the parser
        /// agrees with `time` exactly, refusals included.
        #[test]
        fn agrees_with_time_on_date_times(text in date_time()) {
            prop_assert_eq!(unix_seconds(&text), reference(&text), "{}", text);
        }

        /// On text near the grammar (one byte changed, cut short, or made of its alphabet) it never
        /// panics, and what it accepts `time` accepts with the same instant.
        #[test]
        fn accepts_only_what_time_accepts(
            text in date_time(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"0123456789-:+.TtZz x\xc3".to_vec()),
            cut in any::<bool>(),
        ) {
            let mut bytes = text.into_bytes();
            let at = at.index(bytes.len());
            if cut { bytes.truncate(at) } else if let Some(b) = bytes.get_mut(at) { *b = byte }
            let text = String::from_utf8_lossy(&bytes);
            // `time` takes `:60` only at a real leap second; this parser reads any as `:59`.
            let leap = text.get(17..19) == Some("60");
            if let Some(seconds) = unix_seconds(&text).filter(|_| !leap) {
                prop_assert_eq!(Some(seconds), reference(&text), "{}", text);
            }
        }

        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,40}") {
            let _ = unix_seconds(&text);
        }
    }
}
