//! The artifacts directory and atomic file writes (temp file in the same directory + rename, so a
//! reader never sees half a file), plus the clock, pinned by `SOURCE_DATE_EPOCH` for reproducible runs.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

/// Seconds since the epoch: `SOURCE_DATE_EPOCH` when set (reproducible builds convention), else the clock.
pub fn now_epoch() -> anyhow::Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<i64>().with_context(|| {
            format!("SOURCE_DATE_EPOCH=`{v}` is not a whole number of seconds since 1970-01-01T00:00:00Z")
        }),
        Err(_) => Ok(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()),
    }
}

/// `2025-10-11T00:00:00Z` for an epoch second (UTC, proleptic Gregorian).
pub fn rfc3339(epoch: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(epoch);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20251011T000000Z`: the artifacts folder name for an epoch second.
pub fn folder_stamp(epoch: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(epoch);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

fn civil(epoch: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (secs / 3600) as u32, ((secs % 3600) / 60) as u32, (secs % 60) as u32)
}

/// `--out DIR` made absolute, or `.artifacts/infra-scale/<UTC stamp>` under the working directory.
pub fn resolve_dir(out: Option<&Path>, epoch: i64) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    Ok(match out {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => cwd.join(dir),
        None => cwd.join(".artifacts").join("infra-scale").join(folder_stamp(epoch)),
    })
}

/// The artifacts directory of one plan run, created by this call: `--out DIR` as given (made
/// absolute, created when missing), else `.artifacts/infra-scale/<UTC stamp>-<target>` under the
/// working directory, with `-2`, `-3`, … appended when that directory already exists. The leaf
/// is created with `create_dir`, which fails when it exists, so two runs in the same second (or
/// with the same `SOURCE_DATE_EPOCH`) never share a directory, even when they race.
pub fn claim_dir(out: Option<&Path>, epoch: i64, target: &str) -> anyhow::Result<PathBuf> {
    if out.is_some() {
        let dir = resolve_dir(out, epoch)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        return Ok(dir);
    }
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let parent = cwd.join(".artifacts").join("infra-scale");
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let base = format!("{}-{target}", folder_stamp(epoch));
    for n in 1..=10_000u32 {
        let dir = if n == 1 { parent.join(&base) } else { parent.join(format!("{base}-{n}")) };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!("{} already holds 10000 artifacts directories named {base}-N; remove old ones", parent.display())
}

/// Writes `bytes` to `path` atomically: a temp file beside it, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("artifact path has no parent directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().context("artifact path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_760_140_800), "2025-10-11T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(folder_stamp(1_760_140_800 + 3661), "20251011T010101Z");
    }
}
