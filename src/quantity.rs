//! Kubernetes resource quantities, parsed exactly as apimachinery's `resource.ParseQuantity`
//! does, held as an exact number of nano-units so that they compare numerically.
//!
//! Grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go):
//! `<quantity> ::= <signedNumber><suffix>`, suffix one of `Ki Mi Gi Ti Pi Ei`,
//! `n u m "" k M G T P E`, or `e<signedInt>` / `E<signedInt>`. Values are rounded *up* to
//! nano precision. On top of the grammar, infra-scale refuses what the API server accepts but no
//! one means: negative values, CPU in bytes-like units (`500M` CPU is 500 million cores),
//! CPU finer than `1m`, and memory in fractions of a byte (`400m` memory is 0.4 bytes).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANO: i128 = 1_000_000_000;
/// apimachinery keeps quantities within int64 base units; anything larger is refused.
const MAX_NANOS: i128 = (i64::MAX as i128) * NANO;

/// A parsed quantity: the text as written (kept for output) and its exact value in nano-units.
#[derive(Debug, Clone, Eq)]
pub struct Quantity {
    text: String,
    nanos: i128,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    /// Does not match `^[+-]?[0-9.]+([eEinumkKMGTP]*[-+]?[0-9]*)$`.
    Format,
    /// The suffix is not one Kubernetes knows (`1K`, `1ki`, `2Gi5`).
    Suffix(String),
    /// Negative quantities are never valid for requests, limits or totals.
    Negative,
    /// Larger than int64 base units.
    TooLarge,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantityError::Format => f.write_str("is not a Kubernetes quantity"),
            QuantityError::Suffix(s) => write!(f, "has an unknown unit suffix `{s}`"),
            QuantityError::Negative => f.write_str("is negative"),
            QuantityError::TooLarge => f.write_str("is too large (more than 2^63-1 units)"),
        }
    }
}

impl Quantity {
    /// Parses `s` with apimachinery's grammar. Negative values are refused.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let (negative, int_digits, frac_digits, suffix) = split(s)?;
        let (base, exponent) = interpret(suffix).ok_or_else(|| QuantityError::Suffix(suffix.to_string()))?;
        // mantissa = int_digits.frac_digits as an integer, scaled by 10^-len(frac)
        let digits = format!("{int_digits}{frac_digits}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 36 {
            return Err(QuantityError::TooLarge);
        }
        let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| QuantityError::Format)? };
        if mantissa != 0 && negative {
            return Err(QuantityError::Negative);
        }
        let frac_len = frac_digits.len() as i64;
        // value = mantissa * base^exponent / 10^frac_len, in nano-units: * 10^9, rounded up.
        let nanos = if base == 2 {
            let mut num = mantissa.checked_mul(NANO).ok_or(QuantityError::TooLarge)?;
            num = num.checked_mul(1i128 << exponent as u32).ok_or(QuantityError::TooLarge)?;
            div_ceil_pow10(num, frac_len)
        } else {
            let power = exponent - frac_len + 9;
            if mantissa == 0 {
                0
            } else if power >= 0 {
                if power > 38 {
                    return Err(QuantityError::TooLarge);
                }
                mantissa.checked_mul(10i128.pow(power as u32)).ok_or(QuantityError::TooLarge)?
            } else {
                div_ceil_pow10(mantissa, -power)
            }
        };
        if nanos > MAX_NANOS {
            return Err(QuantityError::TooLarge);
        }
        Ok(Quantity { text: s.to_string(), nanos })
    }

    /// A quantity from an exact nano-unit count, written in canonical-ish form for display.
    pub fn from_nanos(nanos: i128) -> Self {
        Quantity { text: format_decimal(nanos), nanos }
    }

    /// The text as written by the user (or the API server).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The exact value in nano-units (1 CPU core = 10^9; 1 byte = 10^9).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up (as apimachinery's `MilliValue`).
    pub fn millis(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// Whether the value has a fractional part finer than one milli-unit.
    pub fn finer_than_milli(&self) -> bool {
        self.nanos % 1_000_000 != 0
    }

    /// Whether the value is a whole number of base units.
    pub fn is_whole(&self) -> bool {
        self.nanos % NANO == 0
    }

    /// The suffix the text was written with (`Gi`, `m`, `e3`, "").
    pub fn suffix(&self) -> &str {
        split(&self.text).map(|(_, _, _, s)| s).unwrap_or("")
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Plans and the API may write a bare number (`cpu: 1`); accept it as its text.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(u64),
            F(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::F(f) => f.to_string(),
        };
        Quantity::parse(&text).map_err(|e| serde::de::Error::custom(format!("quantity `{text}` {e}")))
    }
}

/// The container resources infra-scale changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Cpu,
    Memory,
}

impl Resource {
    /// Parses a resource key; `mem` is accepted as an alias of `memory` (the prototype's spelling).
    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "cpu" => Some(Resource::Cpu),
            "memory" | "mem" => Some(Resource::Memory),
            _ => None,
        }
    }

    /// The Kubernetes resource name (never `mem`).
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }

    /// Parses and checks a quantity for this resource, with a message and the accepted form.
    pub fn quantity(self, text: &str) -> Result<Quantity, (String, String)> {
        let help = match self {
            Resource::Cpu => "use CPU cores or millicores, e.g. 500m, 1, 1.5 or 2",
            Resource::Memory => {
                "use bytes with a Kubernetes suffix, e.g. 512Mi, 1Gi or 1500M (Ki Mi Gi Ti Pi Ei, k M G T P E)"
            }
        };
        let q = match Quantity::parse(text) {
            Ok(q) => q,
            Err(e) => return Err((format!("{} quantity `{text}` {e}", self.name()), help.to_string())),
        };
        match self {
            Resource::Cpu => {
                let suffix = q.suffix();
                if matches!(suffix, "k" | "M" | "G" | "T" | "P" | "E") || suffix.ends_with('i') {
                    return Err((
                        format!(
                            "cpu quantity `{text}` means {} cores; the suffix `{suffix}` is for bytes",
                            format_decimal(q.nanos)
                        ),
                        "did you mean millicores (`m`, lower case)? e.g. 500m".to_string(),
                    ));
                }
                if q.finer_than_milli() {
                    return Err((
                        format!(
                            "cpu quantity `{text}` is finer than 1m; Kubernetes does not allow CPU precision below one millicore"
                        ),
                        help.to_string(),
                    ));
                }
            }
            Resource::Memory => {
                let suffix = q.suffix();
                if matches!(suffix, "m" | "u" | "n") || !q.is_whole() {
                    return Err((
                        format!("memory quantity `{text}` is a fraction of a byte ({} bytes)", format_decimal(q.nanos)),
                        "did you mean Mi (mebibytes) or M (megabytes)? e.g. 512Mi".to_string(),
                    ));
                }
            }
        }
        if q.nanos == 0 {
            return Err((format!("{} quantity `{text}` is zero", self.name()), help.to_string()));
        }
        Ok(q)
    }

    /// A human form of a total of this resource (cores for CPU, binary units for memory).
    pub fn display(self, nanos: i128) -> String {
        match self {
            Resource::Cpu => format_decimal(nanos),
            Resource::Memory => format_bytes(nanos / NANO),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Splits `s` into (negative, integer digits, fraction digits, suffix) like apimachinery's
/// `parseQuantityString`, refusing what its regular expression refuses.
fn split(s: &str) -> Result<(bool, &str, &str, &str), QuantityError> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    if let Some(&c) = bytes.first()
        && (c == b'-' || c == b'+')
    {
        negative = c == b'-';
        pos = 1;
    }
    let int_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &s[int_start..pos];
    let mut frac_digits = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &s[frac_start..pos];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(QuantityError::Format);
    }
    let suffix_start = pos;
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && (bytes[pos] == b'-' || bytes[pos] == b'+') {
        pos += 1;
    }
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != bytes.len() {
        return Err(QuantityError::Format);
    }
    Ok((negative, int_digits, frac_digits, &s[suffix_start..]))
}

/// apimachinery's suffixer: (base, exponent) for a suffix; `None` for an unknown suffix.
fn interpret(suffix: &str) -> Option<(u32, i64)> {
    let found = match suffix {
        "n" => (10, -9),
        "u" => (10, -6),
        "m" => (10, -3),
        "" => (10, 0),
        "k" => (10, 3),
        "M" => (10, 6),
        "G" => (10, 9),
        "T" => (10, 12),
        "P" => (10, 15),
        "E" => (10, 18),
        "Ki" => (2, 10),
        "Mi" => (2, 20),
        "Gi" => (2, 30),
        "Ti" => (2, 40),
        "Pi" => (2, 50),
        "Ei" => (2, 60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            // strconv.ParseInt(s[1:], 10, 64): an optional sign, then digits only.
            let rest = &s[1..];
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (10, rest.parse().ok()?)
        }
        _ => return None,
    };
    Some(found)
}

fn div_ceil(num: i128, den: i128) -> i128 {
    if num % den == 0 { num / den } else { num / den + 1 }
}

fn div_ceil_pow10(num: i128, power: i64) -> i128 {
    if power <= 0 {
        return num;
    }
    if power > 38 {
        return i128::from(num > 0);
    }
    div_ceil(num, 10i128.pow(power as u32))
}

/// `nanos` as a plain decimal number of base units: `1500000000` → `1.5`.
pub fn format_decimal(nanos: i128) -> String {
    let whole = nanos / NANO;
    let frac = nanos % NANO;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Bytes in the largest binary unit that keeps at most two decimals: `1610612736` → `1.5Gi`.
pub fn format_bytes(bytes: i128) -> String {
    const UNITS: [(&str, i128); 6] =
        [("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let hundredths = div_ceil(bytes * 100, size);
            let (w, f) = (hundredths / 100, hundredths % 100);
            return if f == 0 {
                format!("{w}{unit}")
            } else if f % 10 == 0 {
                format!("{w}.{}{unit}", f / 10)
            } else {
                format!("{w}.{f:02}{unit}")
            };
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i128 {
        Quantity::parse(s).map(|q| q.nanos()).unwrap_or(-1)
    }

    #[test]
    fn grammar_table_matches_apimachinery() {
        // (input, value in nano-units) from apimachinery's quantity_test.go and kubectl runs.
        let cases: &[(&str, i128)] = &[
            ("1", NANO),
            ("1.5", 1_500_000_000),
            (".5", 500_000_000),
            ("5.", 5 * NANO),
            ("500m", 500_000_000),
            ("0.1m", 100_000),
            ("1.5e3", 1500 * NANO),
            ("1e3", 1000 * NANO),
            ("1E3", 1000 * NANO),
            ("1e-3", 1_000_000),
            ("1e+3", 1000 * NANO),
            ("0.5Gi", 512 * 1024 * 1024 * NANO),
            ("1.1Mi", 1_153_433_600_000_000),
            ("1E", 1_000_000_000_000_000_000 * NANO),
            ("1Ki", 1024 * NANO),
            ("1n", 1),
            ("0.1n", 1), // rounded up to nano precision
            ("+1", NANO),
            ("0", 0),
            ("007", 7 * NANO),
        ];
        for (input, want) in cases {
            assert_eq!(nanos(input), *want, "input {input}");
        }
    }

    #[test]
    fn refuses_what_apimachinery_refuses() {
        for bad in ["1K", "1ki", "2Gi5", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "1.1.M", "1+1.0M", "-3.01e-"] {
            assert!(matches!(Quantity::parse(bad), Err(QuantityError::Suffix(_) | QuantityError::Format)), "{bad}");
        }
        for bad in ["1GB", "1GiB", "1 Gi", " 1", "1 ", "0x10", "", "e3", "1e", "Gi"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Quantity::parse("-1"), Err(QuantityError::Negative));
        assert_eq!(Quantity::parse("100Ei"), Err(QuantityError::TooLarge));
        assert_eq!(Quantity::parse("1e100"), Err(QuantityError::TooLarge));
    }

    #[test]
    fn compares_numerically_not_as_text() {
        let q = |s| Quantity::parse(s).map_err(|e| e.to_string());
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("2Gi") > q("1500Mi"));
        assert!(q("1") > q("999m"));
    }

    #[test]
    fn resource_rules() {
        assert!(Resource::Cpu.quantity("500M").is_err(), "500M CPU is 500 million cores");
        assert!(Resource::Cpu.quantity("0.1m").is_err(), "finer than 1m");
        assert!(Resource::Memory.quantity("400m").is_err(), "0.4 bytes");
        assert!(Resource::Memory.quantity("1Gi").is_ok());
        assert!(Resource::Cpu.quantity("1.5").is_ok());
        assert_eq!(Resource::parse("mem"), Some(Resource::Memory));
        assert_eq!(Resource::parse("gpu"), None);
    }

    #[test]
    fn display_forms() {
        assert_eq!(format_bytes(1536 * 1024 * 1024), "1.5Gi");
        assert_eq!(format_bytes(30 * 1024 * 1024 * 1024), "30Gi");
        assert_eq!(format_decimal(13_500_000_000), "13.5");
        assert_eq!(format_decimal(1_600_000_000), "1.6");
    }
}
