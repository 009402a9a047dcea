//! Group config values as Java parses them: `String.trim()`, and
//! `ShareGroupAutoOffsetResetStrategy` with `java.time.Duration.parse` for `share.auto.offset.reset`.

/// Java's `String.trim()`.
pub(super) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// `ShareGroupAutoOffsetResetStrategy.fromString` succeeds.
pub(super) fn valid_auto_offset_reset(v: &str) -> bool {
    match v {
        "earliest" | "latest" => true,
        _ => v
            .strip_prefix("by_duration:")
            .and_then(java_duration_nanos)
            .is_some_and(|n| n >= 0),
    }
}

/// `java.time.Duration.parse` (`[-+]PnDTnHnMn.nS`, case-insensitive) in nanoseconds; `None`
/// where Java throws.
fn java_duration_nanos(s: &str) -> Option<i128> {
    fn number(s: &str) -> Option<(i64, &str)> {
        let end = s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
            .map_or(s.len(), |(i, _)| i);
        let digits = &s[..end];
        if !digits.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((digits.parse().ok()?, &s[end..]))
    }
    let upper = s.to_ascii_uppercase();
    let (negate, rest) = match upper.as_bytes().first()? {
        b'-' => (true, &upper[1..]),
        b'+' => (false, &upper[1..]),
        _ => (false, &upper[..]),
    };
    let mut rest = rest.strip_prefix('P')?;
    let mut seconds: i64 = 0;
    let mut nanos: i64 = 0;
    let mut any = false;
    if let Some((n, r)) = number(rest).filter(|(_, r)| r.starts_with('D')) {
        seconds = n.checked_mul(86_400)?;
        rest = &r[1..];
        any = true;
    }
    if let Some(r) = rest.strip_prefix('T') {
        rest = r;
        let mut any_time = false;
        for (unit, scale) in [('H', 3_600i64), ('M', 60)] {
            if let Some((n, r)) = number(rest).filter(|(_, r)| r.starts_with(unit)) {
                seconds = seconds.checked_add(n.checked_mul(scale)?)?;
                rest = &r[1..];
                any_time = true;
            }
        }
        if let Some((n, r)) = number(rest) {
            let (frac, r) = match r.strip_prefix(['.', ',']) {
                Some(f) => {
                    let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                    if end > 9 {
                        return None;
                    }
                    (&f[..end], &f[end..])
                }
                None => ("", r),
            };
            let r = r.strip_prefix('S')?;
            seconds = seconds.checked_add(n)?;
            if !frac.is_empty() {
                let f: i64 = format!("{frac:0<9}").parse().ok()?;
                nanos = if rest.starts_with('-') { -f } else { f };
            }
            rest = r;
            any_time = true;
        }
        if !any_time {
            return None;
        }
        any = true;
    }
    if !any || !rest.is_empty() {
        return None;
    }
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    Some(if negate { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_offset_reset_follows_java() {
        for ok in [
            "latest",
            "earliest",
            "by_duration:PT1H",
            "by_duration:P1D",
            "by_duration:pt1.5s",
            "by_duration:P1DT2H3M4.000000001S",
            "by_duration:PT0S",
            "by_duration:-PT-1H",
        ] {
            assert!(valid_auto_offset_reset(ok), "{ok}");
        }
        for bad in [
            "none",
            "LATEST",
            "by_duration",
            "by_duration:",
            "by_duration:-PT1H",
            "by_duration:P",
            "by_duration:PT",
            "by_duration:PT1",
            "by_duration:1H",
            "by_duration:PT1.0000000001S",
            "by_duration:P99999999999999999D",
        ] {
            assert!(!valid_auto_offset_reset(bad), "{bad}");
        }
    }
}
