//! Reading rule files. Every error names the file, line and column of the faulty token, and all
//! errors of all files are reported together so one `swarmpilot check` run shows everything.

use super::matcher::Matcher;
use super::{Action, ActionKind, Rule, RuleOrigin, RuleSet, MAX_REPLICAS};
use crate::parse::AlertStatus;
use marked_yaml::{LoaderOptions, Marker, Spanned};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

/// The longest cooldown a rule may ask for. A deadline is `now + cooldown`; a year is longer
/// than any remediation window an operator means, and keeps every deadline representable.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(365 * 24 * 3600);

/// One problem in one rule file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found while loading a rules directory, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl std::fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for RuleErrors {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(rename = "match")]
    matchers: Spanned<Vec<Spanned<String>>>,
    on: Option<Spanned<String>>,
    service_label: Option<Spanned<String>>,
    action: Spanned<String>,
    // Numbers are read as text and parsed here, so every bad value (negative, too large for a
    // u64, past MAX_REPLICAS) gets one message naming the allowed range.
    step: Option<Spanned<String>>,
    max_replicas: Option<Spanned<String>>,
    min_replicas: Option<Spanned<String>>,
    cooldown: Option<Spanned<String>>,
    job: Option<Spanned<String>>,
}

/// Load every `*.yml` / `*.yaml` file of a directory, in file-name order.
pub fn load_rules_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
    let files = rule_files(dir).map_err(|message| {
        RuleErrors(vec![RuleError {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            message,
        }])
    })?;
    let mut rules = Vec::new();
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let mut parsed = parse_file(&file, &text);
                rules.append(&mut parsed.rules);
                names.append(&mut parsed.names);
                errors.append(&mut parsed.errors);
            }
            Err(e) => errors.push(at(&file, None, format!("cannot read: {e}"))),
        }
    }
    errors.extend(duplicate_names(&names));
    if errors.is_empty() {
        Ok(RuleSet::new(rules))
    } else {
        Err(RuleErrors(errors))
    }
}

fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read rules_dir: {e}"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One file's valid rules, the name of every rule (valid or not, to find duplicates), and errors.
#[derive(Default)]
struct ParsedFile {
    rules: Vec<Rule>,
    names: Vec<(String, RuleOrigin)>,
    errors: Vec<RuleError>,
}

/// Parse one file's text into rules, collecting every error rather than stopping at the first.
pub fn parse_rule_file(file: &Path, text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    let mut parsed = parse_file(file, text);
    for error in &mut parsed.errors {
        error.keep_within(text);
    }
    (parsed.rules, parsed.errors)
}

impl RuleError {
    /// The YAML scanner places a value missing at the very end of a file on the line after the
    /// last; point at the end of the last line instead, where an editor can go. Lines break at
    /// LF, CR and CRLF, as YAML counts them.
    fn keep_within(&mut self, text: &str) {
        let normalized = text.replace("\r\n", "\n");
        let lines: Vec<&str> = normalized.split(['\n', '\r']).collect();
        if self.line > lines.len() {
            self.line = lines.len();
            self.column = lines.last().map_or(0, |l| l.chars().count()) + 1;
        }
        self.line = self.line.max(1);
        self.column = self.column.max(1);
    }
}

fn parse_file(file: &Path, text: &str) -> ParsedFile {
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let raw: RawFile = match marked_yaml::from_yaml_with_options(0, text, options) {
        Ok(raw) => raw,
        Err(e) => {
            return ParsedFile {
                errors: vec![yaml_error(file, text, e)],
                ..Default::default()
            }
        }
    };
    let mut parsed = ParsedFile::default();
    for raw_rule in raw.rules {
        parsed
            .names
            .push((raw_rule.name.to_string(), origin(file, &raw_rule.name)));
        match build_rule(file, text, raw_rule) {
            Ok(rule) => parsed.rules.push(rule),
            Err(mut errs) => parsed.errors.append(&mut errs),
        }
    }
    parsed
}

fn origin(file: &Path, name: &Spanned<String>) -> RuleOrigin {
    let start = name.span().start();
    RuleOrigin {
        file: file.to_path_buf(),
        line: start.map_or(0, |m| m.line()),
        column: start.map_or(0, |m| m.column()),
    }
}

fn yaml_error(file: &Path, text: &str, e: marked_yaml::FromYamlError) -> RuleError {
    use marked_yaml::{FromYamlError, LoadError};
    match e {
        FromYamlError::ParseYaml(load) => {
            let mark = match &load {
                LoadError::TopLevelMustBeMapping(m)
                | LoadError::TopLevelMustBeSequence(m)
                | LoadError::UnexpectedAnchor(m)
                | LoadError::MappingKeyMustBeScalar(m)
                | LoadError::UnexpectedTag(m)
                | LoadError::ScanError(m, _) => Some(*m),
                LoadError::DuplicateKey(inner) => inner.key.span().start().copied(),
            };
            let message = match &load {
                LoadError::DuplicateKey(inner) => {
                    format!("duplicate key {:?}", inner.key.as_str())
                }
                other => strip_marker_prefix(&other.to_string()),
            };
            at(file, mark, format!("invalid YAML: {message}"))
        }
        FromYamlError::FromNode(node) => match &*node {
            marked_yaml::Error::UnknownFieldError(field, expected, _) => {
                let message = format!(
                    "unknown field {field:?}, expected one of {}",
                    expected.join(", ")
                );
                let mark = node.start_mark().or_else(|| find_key(text, field));
                at(file, mark, message)
            }
            other => at(file, node.start_mark(), other.to_string()),
        },
    }
}

/// marked_yaml prefixes load errors with its own "line:col: " (sometimes "source:line:col: ");
/// we print our own position, so drop it.
fn strip_marker_prefix(text: &str) -> String {
    let mut rest = text;
    while let Some((head, tail)) = rest.split_once(':') {
        if head.trim().parse::<usize>().is_err() {
            break;
        }
        rest = tail;
    }
    rest.trim().to_string()
}

/// marked_yaml reports unknown fields without a position; find the key in the text.
fn find_key(text: &str, key: &str) -> Option<Marker> {
    let needle = format!("{key}:");
    text.lines().enumerate().find_map(|(i, line)| {
        let body = line.trim_start().trim_start_matches("- ");
        body.starts_with(&needle).then(|| {
            let column = line.len() - body.len() + 1;
            Marker::new(0, 0, i + 1, column)
        })
    })
}

fn at(file: &Path, mark: Option<Marker>, message: String) -> RuleError {
    RuleError {
        file: file.to_path_buf(),
        line: mark.map_or(1, |m| m.line()),
        column: mark.map_or(1, |m| m.column()),
        message,
    }
}

fn at_span<T>(file: &Path, value: &Spanned<T>, message: String) -> RuleError {
    at(file, value.span().start().copied(), message)
}

/// Collects the errors of one rule so every faulty field is reported, not only the first.
struct RuleBuilder<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<RuleError>,
}

impl RuleBuilder<'_> {
    fn error<T>(&mut self, value: &Spanned<T>, message: String) {
        self.errors.push(at_span(self.file, value, message));
    }

    fn matchers(&mut self, raw: &Spanned<Vec<Spanned<String>>>) -> Vec<Matcher> {
        if raw.is_empty() {
            self.error(raw, "match needs at least one matcher".into());
        }
        let mut out = Vec::new();
        for text in raw.iter() {
            match Matcher::parse(text) {
                Ok(m) => out.push(m),
                Err(e) => {
                    let mut err = at_span(self.file, text, e.message.clone());
                    err.column += e.offset + quote_width(self.text, &err);
                    self.errors.push(err);
                }
            }
        }
        out
    }

    fn status(&mut self, raw: Option<&Spanned<String>>) -> AlertStatus {
        match raw.map(|s| s.as_str()) {
            None | Some("firing") => AlertStatus::Firing,
            Some("resolved") => AlertStatus::Resolved,
            Some(other) => {
                let message = format!("on must be firing or resolved, not {other:?}");
                self.error(raw.expect("matched Some"), message);
                AlertStatus::Firing
            }
        }
    }

    fn duration(&mut self, raw: Option<&Spanned<String>>) -> Duration {
        let Some(raw) = raw else {
            return DEFAULT_COOLDOWN;
        };
        match humantime::parse_duration(raw) {
            Ok(cooldown) if cooldown <= MAX_COOLDOWN => cooldown,
            Ok(_) | Err(humantime::DurationError::NumberOverflow) => {
                let message = format!(
                    "cooldown {:?} is too long: at most {}d",
                    raw.as_str(),
                    MAX_COOLDOWN.as_secs() / (24 * 3600)
                );
                self.error(raw, message);
                DEFAULT_COOLDOWN
            }
            Err(e) => {
                self.error(raw, format!("invalid duration {:?}: {e}", raw.as_str()));
                DEFAULT_COOLDOWN
            }
        }
    }

    /// A whole number in `min..=MAX_REPLICAS`, or an error naming the field and the range.
    fn replicas(&mut self, field: &str, raw: &Spanned<String>, min: u64) -> Option<u64> {
        let parsed = raw.trim().parse::<u64>().ok();
        let valid = parsed.filter(|n| (min..=MAX_REPLICAS).contains(n));
        if valid.is_none() {
            let message = format!(
                "{field} must be a whole number from {min} to {MAX_REPLICAS}, not {:?}",
                raw.as_str()
            );
            self.error(raw, message);
        }
        valid
    }

    fn label_name(&mut self, raw: Option<&Spanned<String>>) -> String {
        let Some(raw) = raw else {
            return "service".into();
        };
        let valid = raw
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if raw.is_empty() || !valid {
            self.error(
                raw,
                format!("service_label {:?} is not a label name", raw.as_str()),
            );
        }
        raw.to_string()
    }

    fn rule_name(&mut self, raw: &Spanned<String>) {
        let valid = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        if !valid {
            let message = format!(
                "rule name {:?} must start with a letter or digit and hold only letters, digits, _ . : -",
                raw.as_str()
            );
            self.error(raw, message);
        }
    }

    fn action(&mut self, raw: &RawRule) -> Option<Action> {
        let Some(kind) = ActionKind::from_name(&raw.action) else {
            let names: Vec<&str> = ActionKind::ALL.iter().map(|k| k.as_str()).collect();
            let message = format!(
                "unknown action {:?}, expected one of {}",
                raw.action.as_str(),
                names.join(", ")
            );
            self.error(&raw.action, message);
            return None;
        };
        self.forbid_unused(kind, raw);
        match kind {
            ActionKind::ScaleUp => {
                let step = self.step(raw.step.as_ref());
                let Some(max) = &raw.max_replicas else {
                    let message = "scale_up needs max_replicas, the bound it never exceeds".into();
                    self.error(&raw.action, message);
                    return None;
                };
                // max_replicas 0 could never scale anything up.
                let max_replicas = self.replicas("max_replicas", max, 1)?;
                Some(Action::ScaleUp {
                    step: step?,
                    max_replicas,
                })
            }
            ActionKind::ScaleDown => {
                let step = self.step(raw.step.as_ref());
                let min_replicas = match &raw.min_replicas {
                    Some(min) => self.replicas("min_replicas", min, 0)?,
                    None => 1,
                };
                Some(Action::ScaleDown {
                    step: step?,
                    min_replicas,
                })
            }
            ActionKind::Restart => Some(Action::Restart),
            ActionKind::Rollback => Some(Action::Rollback),
            ActionKind::BackupNow => match &raw.job {
                Some(job) if !job.is_empty() => Some(Action::BackupNow {
                    job: job.to_string(),
                }),
                Some(job) => {
                    self.error(job, "job must name a job service".into());
                    None
                }
                None => {
                    let message = "backup_now needs job, the job service to run".into();
                    self.error(&raw.action, message);
                    None
                }
            },
        }
    }

    fn step(&mut self, raw: Option<&Spanned<String>>) -> Option<u64> {
        match raw {
            Some(step) => self.replicas("step", step, 1),
            None => Some(1),
        }
    }

    /// A field that the action ignores is almost always a mistake (a bound on the wrong action).
    fn forbid_unused(&mut self, kind: ActionKind, raw: &RawRule) {
        let scale = matches!(kind, ActionKind::ScaleUp | ActionKind::ScaleDown);
        let unused: [(&str, Option<&Spanned<String>>, bool); 3] = [
            ("step", raw.step.as_ref(), scale),
            (
                "max_replicas",
                raw.max_replicas.as_ref(),
                kind == ActionKind::ScaleUp,
            ),
            (
                "min_replicas",
                raw.min_replicas.as_ref(),
                kind == ActionKind::ScaleDown,
            ),
        ];
        for (field, value, allowed) in unused {
            if let (Some(value), false) = (value, allowed) {
                self.error(value, format!("{field} does not apply to action {kind}"));
            }
        }
        if let (Some(job), false) = (&raw.job, kind == ActionKind::BackupNow) {
            self.error(job, format!("job does not apply to action {kind}"));
        }
    }
}

/// Where the YAML scalar is quoted, matcher offsets start one column after the quote.
fn quote_width(text: &str, err: &RuleError) -> usize {
    let line = text.lines().nth(err.line.saturating_sub(1)).unwrap_or("");
    let first = line.chars().nth(err.column.saturating_sub(1));
    usize::from(matches!(first, Some('"' | '\'')))
}

fn build_rule(file: &Path, text: &str, raw: RawRule) -> Result<Rule, Vec<RuleError>> {
    let mut b = RuleBuilder {
        file,
        text,
        errors: Vec::new(),
    };
    b.rule_name(&raw.name);
    let matchers = b.matchers(&raw.matchers);
    let on = b.status(raw.on.as_ref());
    let service_label = b.label_name(raw.service_label.as_ref());
    let cooldown = b.duration(raw.cooldown.as_ref());
    let action = b.action(&raw);
    if let (AlertStatus::Resolved, Some(a), Some(on)) = (on, &action, &raw.on) {
        if !matches!(a.kind(), ActionKind::ScaleDown | ActionKind::BackupNow) {
            let message = format!(
                "on: resolved applies only to scale_down and backup_now; a resolved alert never triggers {}",
                a.kind()
            );
            b.error(on, message);
        }
    }
    match action {
        Some(action) if b.errors.is_empty() => Ok(Rule {
            name: raw.name.to_string(),
            matchers,
            on,
            service_label,
            action,
            cooldown,
            origin: origin(file, &raw.name),
        }),
        _ => Err(b.errors),
    }
}

fn duplicate_names(names: &[(String, RuleOrigin)]) -> Vec<RuleError> {
    let mut first: HashMap<&str, &RuleOrigin> = HashMap::new();
    let mut errors = Vec::new();
    for (name, origin) in names {
        match first.get(name.as_str()) {
            Some(prev) => errors.push(RuleError {
                file: origin.file.clone(),
                line: origin.line,
                column: origin.column,
                message: format!(
                    "duplicate rule name {name:?}, first defined at {}:{}",
                    prev.file.display(),
                    prev.line
                ),
            }),
            None => {
                first.insert(name, origin);
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests;
