//! The GitHub Actions runner's file-command parser (`FileCommandManager.cs`, Linux: lines split on
//! `\n`), shared by the tests that check what infra-scale writes to `GITHUB_OUTPUT` and by the
//! local action runner.

/// Parses a `GITHUB_OUTPUT` / `GITHUB_ENV` file as the runner does: `NAME=VALUE` when `=` comes
/// before any `<<`, else `NAME<<DELIM` then lines up to one that is exactly `DELIM`. Pairs are
/// returned in file order; an error carries the runner's message.
pub fn parse_file_commands(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let name = &line[..e];
                if name.is_empty() {
                    return Err(format!("Invalid format '{line}': name must not be empty"));
                }
                out.push((name.to_string(), line[e + 1..].to_string()));
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!("Invalid format '{line}'"));
                }
                let mut value = Vec::new();
                loop {
                    let Some(next) = lines.get(i) else {
                        return Err(format!("Matching delimiter not found '{delimiter}'"));
                    };
                    i += 1;
                    if *next == delimiter {
                        break;
                    }
                    value.push(*next);
                }
                out.push((name.to_string(), value.join("\n")));
            }
            _ => return Err(format!("Invalid format '{line}'")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_commands_follow_the_runner() {
        let parsed: std::collections::BTreeMap<String, String> =
            parse_file_commands("a=1\nb<<EOF\nx\ny=z\nEOF\nc=has<<inside\n").expect("parse").into_iter().collect();
        assert_eq!(parsed["a"], "1");
        assert_eq!(parsed["b"], "x\ny=z");
        assert_eq!(parsed["c"], "has<<inside");
        assert!(parse_file_commands("d<<EOF\nno end\n").is_err());
        assert!(parse_file_commands("novalue\n").is_err());
    }
}
