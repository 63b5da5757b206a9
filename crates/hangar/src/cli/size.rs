//! Sizes as operators type them: `100G`, `1T`, `500GB`, `2TiB`, `1.5T`,
//! `4096` (bytes).

/// Units and their size in bytes, lowercase: decimal (`k`, `kb`: 1000) and
/// binary (`ki`, `kib`: 1024).
const UNITS: [(&str, u128); 16] = [
    ("k", 1_000),
    ("m", 1_000_000),
    ("g", 1_000_000_000),
    ("t", 1_000_000_000_000),
    ("p", 1_000_000_000_000_000),
    ("e", 1_000_000_000_000_000_000),
    ("ki", 1 << 10),
    ("mi", 1 << 20),
    ("gi", 1 << 30),
    ("ti", 1 << 40),
    ("pi", 1 << 50),
    ("ei", 1 << 60),
    ("", 1),
    ("b", 1),
    ("bytes", 1),
    ("byte", 1),
];

/// Longest fractional part read (`1.123456789012345678T`).
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a positive size in bytes: a number (fractions allowed) and an
/// optional unit, any case, optionally ending in `B`: `K`/`KB` = 1000,
/// `Ki`/`KiB` = 1024, up to `E`/`EiB`. A fraction of a byte is dropped.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() || number == "." {
        return Err(format!(
            "{text:?}: expected a size such as 100G, 1.5T or 2TiB"
        ));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = unit_size(&unit).ok_or_else(|| {
        format!("{text:?}: unknown unit {unit:?} (use B, K/KB, M/MB, G/GB, T/TB, P/PB, E/EB or KiB..EiB)")
    })?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || fraction.len() > MAX_FRACTION_DIGITS {
        return Err(format!("{text:?}: not a number"));
    }
    let too_large = || format!("{text:?}: too large");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction
            .parse()
            .map_err(|_| format!("{text:?}: not a number"))?;
        let scale = 10u128.pow(fraction.len() as u32);
        bytes = digits
            .checked_mul(multiplier)
            .map(|f| f / scale)
            .and_then(|f| bytes.checked_add(f))
            .ok_or_else(too_large)?;
    }
    let bytes = u64::try_from(bytes).map_err(|_| too_large())?;
    if bytes == 0 {
        return Err(format!("{text:?}: a capacity must be positive"));
    }
    Ok(bytes)
}

/// Bytes in one `unit` (lowercase), with or without a trailing `b`.
fn unit_size(unit: &str) -> Option<u128> {
    let lookup = |u: &str| UNITS.iter().find(|(name, _)| *name == u).map(|(_, n)| *n);
    lookup(unit).or_else(|| unit.strip_suffix('b').and_then(lookup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        let cases: &[(&str, u64)] = &[
            ("4096", 4096),
            ("100G", 100_000_000_000),
            ("100g", 100_000_000_000),
            ("1T", 1_000_000_000_000),
            ("500GB", 500_000_000_000),
            ("500 GB", 500_000_000_000),
            ("2TiB", 2 << 40),
            ("2ti", 2 << 40),
            ("1.5T", 1_500_000_000_000),
            ("0.5KiB", 512),
            (".5K", 500),
            ("10B", 10),
            ("1 bytes", 1),
            ("15EiB", 15 << 60),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(*bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        for text in [
            "",
            ".",
            "G",
            "0",
            "0G",
            "-1G",
            "1.2.3G",
            "10X",
            "10 GiBs",
            "1e3",
            "16EiB",
            "100000000000000000000",
            "1.0000000000000000001",
        ] {
            let e = parse_size(text).expect_err(text);
            assert!(e.starts_with(&format!("{text:?}")), "{text}: {e}");
        }
        assert!(parse_size("10X")
            .err()
            .is_some_and(|e| e.contains("unknown unit")));
    }
}
