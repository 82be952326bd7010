//! Finding containers under `LOG_SOURCES`: every `<id>/` directory with a `config.v2.json`
//! (whose `Name` is `/<name>`) and a log `<id>-json.log`, filtered by `CONTAINERS` patterns.

use std::io;
use std::path::{Path, PathBuf};

/// A container whose log can be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub log_path: PathBuf,
}

/// Lists the containers under `sources` whose name matches one of `patterns` (all when
/// empty), sorted by name. A directory without a readable config is named by its short id.
pub fn scan(sources: &Path, patterns: &[String]) -> io::Result<Vec<Container>> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(sources)? {
        let Ok(dir) = dir else { continue };
        if !dir.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let id = dir.file_name().to_string_lossy().into_owned();
        let name = container_name(&dir.path()).unwrap_or_else(|| id.chars().take(12).collect());
        if !patterns.is_empty() && !patterns.iter().any(|p| glob_match(p, &name)) {
            continue;
        }
        found.push(Container {
            log_path: dir.path().join(format!("{id}-json.log")),
            id,
            name,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn container_name(dir: &Path) -> Option<String> {
    let config = std::fs::read(dir.join("config.v2.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&config).ok()?;
    let name = value.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

/// Shell-style matching with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (pattern, text, expected) in [
            ("myapp_*", "myapp_web_1", true),
            ("myapp_*", "other", false),
            ("db", "db", true),
            ("db", "db2", false),
            ("d?", "db", true),
            ("*", "", true),
            ("*web*", "myapp_web_1", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn scans_names_from_config() {
        let dir = tempfile::tempdir().unwrap();
        for (id, name) in [("aaa111", "/web"), ("bbb222", "/db")] {
            std::fs::create_dir(dir.path().join(id)).unwrap();
            std::fs::write(
                dir.path().join(id).join("config.v2.json"),
                format!("{{\"Name\":\"{name}\"}}"),
            )
            .unwrap();
        }
        let all = scan(dir.path(), &[]).unwrap();
        assert_eq!(
            all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["db", "web"]
        );
        assert!(all[1].log_path.ends_with("aaa111/aaa111-json.log"));
        let only_web = scan(dir.path(), &["w*".to_string()]).unwrap();
        assert_eq!(only_web.len(), 1);
    }
}
