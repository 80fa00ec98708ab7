//! Kubernetes `resource.Quantity` for the fake API server: parse to exact nano-units and re-emit the
//! canonical form, as the apiserver does when it stores an object (`1.5` → `1500m`, `0.5Gi` → `512Mi`).
//!
//! Written independently of the product's parser so that the fake is an oracle, not an echo.
//! Grammar: `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$` with the suffixes of apimachinery `suffix.go`.

/// How a quantity was written; the canonical form keeps the family of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, … (powers of 1024).
    BinarySi,
    /// `n`, `u`, `m`, ``, `k`, `M`, …
    DecimalSi,
    /// `e3`, `E-6`, …
    DecimalExponent,
}

/// A parsed quantity: its exact value in nano-units (10^-9), rounded up as apimachinery does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    pub nanos: i128,
    pub format: Format,
}

const NANO: i128 = 1_000_000_000;
/// apimachinery caps values at 2^63-1 (of the base unit).
const MAX_BASE: i128 = i64::MAX as i128;

impl Quantity {
    /// Parses `text`; the error is the apimachinery message for the failure class.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        const REGEX_ERR: &str =
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
        if text.is_empty() {
            return Err(REGEX_ERR.to_string());
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = match bytes[0] {
            b'-' => {
                i = 1;
                true
            }
            b'+' => {
                i = 1;
                false
            }
            _ => false,
        };
        let num_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &text[num_start..i];
        let suffix = &text[i..];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(REGEX_ERR.to_string());
        }
        if !suffix.chars().all(|c| "eEinumkKMGTP+-0123456789".contains(c)) {
            return Err(REGEX_ERR.to_string());
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err("quantity is too large or has too many digits".to_string());
        }
        let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| REGEX_ERR.to_string())? };
        let frac_digits = frac_part.len() as i32;

        // value = mantissa * 10^(exp10 - frac_digits) * 1024^exp2
        let (format, exp10, exp2) = match suffix {
            "" => (Format::DecimalSi, 0, 0),
            "n" => (Format::DecimalSi, -9, 0),
            "u" => (Format::DecimalSi, -6, 0),
            "m" => (Format::DecimalSi, -3, 0),
            "k" => (Format::DecimalSi, 3, 0),
            "M" => (Format::DecimalSi, 6, 0),
            "G" => (Format::DecimalSi, 9, 0),
            "T" => (Format::DecimalSi, 12, 0),
            "P" => (Format::DecimalSi, 15, 0),
            "E" => (Format::DecimalSi, 18, 0),
            "Ki" => (Format::BinarySi, 0, 1),
            "Mi" => (Format::BinarySi, 0, 2),
            "Gi" => (Format::BinarySi, 0, 3),
            "Ti" => (Format::BinarySi, 0, 4),
            "Pi" => (Format::BinarySi, 0, 5),
            "Ei" => (Format::BinarySi, 0, 6),
            s if s.starts_with(['e', 'E']) => {
                let exp: i32 = s[1..].parse().map_err(|_| "unable to parse quantity's suffix".to_string())?;
                if !(-30..=30).contains(&exp) {
                    return Err("unable to parse quantity's suffix".to_string());
                }
                (Format::DecimalExponent, exp, 0)
            }
            _ => return Err("unable to parse quantity's suffix".to_string()),
        };
        // nanos = mantissa * 10^(exp10 - frac_digits + 9) * 1024^exp2, rounded up, capped.
        let scale = exp10 - frac_digits + 9;
        let mut value = mantissa;
        for _ in 0..exp2 {
            value = value.saturating_mul(1024);
        }
        let nanos = if scale >= 0 {
            let mut v = value;
            for _ in 0..scale {
                v = v.saturating_mul(10);
            }
            v
        } else {
            let div = 10i128.checked_pow((-scale) as u32).unwrap_or(i128::MAX);
            if div == i128::MAX { i128::from(value != 0) } else { (value + div - 1) / div }
        };
        let nanos = nanos.min(MAX_BASE.saturating_mul(NANO));
        Ok(Quantity { nanos: if negative { -nanos } else { nanos }, format })
    }

    /// The canonical text the apiserver stores for this quantity.
    pub fn canonical(&self) -> String {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.abs();
        if abs == 0 {
            return "0".to_string();
        }
        if self.format == Format::BinarySi && abs % NANO == 0 && abs / NANO >= 1024 {
            let mut base = abs / NANO;
            let mut power = 0;
            while power < 6 && base % 1024 == 0 {
                base /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return format!("{sign}{base}{suffix}");
        }
        // Decimal: the largest exponent (multiple of 3, from -9) that leaves an integer mantissa.
        let mut mantissa = abs;
        let mut exp = -9;
        while exp < 18 && mantissa % 1000 == 0 {
            mantissa /= 1000;
            exp += 3;
        }
        let suffix = if self.format == Format::DecimalExponent {
            if exp == 0 { String::new() } else { format!("e{exp}") }
        } else {
            match exp {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                0 => "",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                _ => "E",
            }
            .to_string()
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    fn canon(s: &str) -> String {
        Quantity::parse(s).map(|q| q.canonical()).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn canonical_forms_match_apimachinery_vectors() {
        for (input, want) in [
            ("1", "1"),
            ("1.5", "1500m"),
            (".5", "500m"),
            ("500m", "500m"),
            ("0.1m", "100u"),
            ("1.5e3", "1500"),
            ("1e3", "1e3"),
            ("0.5Gi", "512Mi"),
            ("1.5Gi", "1536Mi"),
            ("1.1Mi", "1153433600m"),
            ("1024", "1024"),
            ("512Ki", "512Ki"),
            ("1Gi", "1Gi"),
            ("1000Mi", "1000Mi"),
            ("2000m", "2"),
            ("100Ei", "9223372036854775807"),
            ("-1", "-1"),
            ("0", "0"),
            ("1E", "1E"),
        ] {
            assert_eq!(canon(input), want, "input {input}");
        }
    }

    #[test]
    fn invalid_quantities_are_rejected() {
        for bad in ["1K", "1ki", "1Gb", "1GiB", "1 Gi", "0x10", "2Gi5", "1.1.M", "aoeu", ".5i", " 1", "1 ", "", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn comparison_is_numeric() {
        let q = |s| Quantity::parse(s).unwrap().nanos;
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("2") > q("1500m"));
    }
}
