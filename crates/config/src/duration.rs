//! Durations as people write them in the config file: a whole number and a unit (`500ms`, `5s`,
//! `2m`, `1h`), parsed and printed back the same way.

use std::time::Duration;

/// Parses `"500ms"`, `"5s"`, `"2m"` or `"1h"`; the error says which part is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err("it does not start with a whole number".to_owned());
    }
    let value: u64 = number
        .parse()
        .map_err(|_| "the number is too large".to_owned())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err("the unit is missing".to_owned()),
        other => return Err(format!("{other:?} is not a unit")),
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| "the number is too large".to_owned())
}

/// Prints a duration in the largest unit that represents it exactly: `90s`, `2m`, `250ms`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000)] {
        if millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert!(parse_duration("").unwrap_err().contains("whole number"));
        assert!(parse_duration("s").unwrap_err().contains("whole number"));
        assert!(parse_duration("-5s").unwrap_err().contains("whole number"));
        assert!(parse_duration("1.5s").unwrap_err().contains("\".5s\""));
        assert!(parse_duration("10").unwrap_err().contains("missing"));
        assert!(parse_duration("10 s").unwrap_err().contains("\" s\""));
        assert!(parse_duration("3d").unwrap_err().contains("\"d\""));
        assert!(
            parse_duration("99999999999999999999s")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_duration("18446744073709551615h")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
