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

mod target;

pub use target::{DEFAULT_STABILIZATION, DEFAULT_TOLERANCE, MAX_STABILIZATION};

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
    // scale_to_target's keys (see `target`), read as text like the numbers above.
    target: Option<Spanned<String>>,
    value_from: Option<Spanned<String>>,
    query: Option<Spanned<String>>,
    tolerance: Option<Spanned<String>>,
    scale_down_stabilization: Option<Spanned<String>>,
    max_step_up: Option<Spanned<String>>,
    max_step_down: Option<Spanned<String>>,
}

/// What one rules directory may hold. Far above any real rule set (the shipped rules are a few
/// KiB), low enough that a runaway generator or a wrong directory cannot stall a reload or
/// multiply memory: a 20 MB file of 105k rules took 9 s and 2 GB to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLimits {
    /// Bytes per file, checked from the file's metadata before it is read.
    pub max_file_bytes: u64,
    /// `*.yml` / `*.yaml` entries in the directory.
    pub max_files: usize,
    /// Rules across all files; loading stops at the first file that passes it.
    pub max_rules: usize,
}

/// 1 MiB per rule file: thousands of rules.
pub const MAX_RULE_FILE_BYTES: u64 = 1024 * 1024;
/// 1,000 rule files per directory.
pub const MAX_RULE_FILES: usize = 1_000;
/// 10,000 rules in all: each is checked for every alert not indexed by `alertname`.
pub const MAX_RULES: usize = 10_000;

impl RuleLimits {
    pub const DEFAULT: Self = Self {
        max_file_bytes: MAX_RULE_FILE_BYTES,
        max_files: MAX_RULE_FILES,
        max_rules: MAX_RULES,
    };
}

/// Load every `*.yml` / `*.yaml` file of a directory, in file-name order, within
/// [`RuleLimits::DEFAULT`].
pub fn load_rules_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
    load_rules_dir_with(dir, RuleLimits::DEFAULT)
}

/// [`load_rules_dir`] for a server whose `[prometheus] url` is `prometheus_url`: without one a
/// `query:` rule could only ever refuse, so it is an error at the rule, like any other mistake.
pub fn load_rules_for(dir: &Path, prometheus_url: &str) -> Result<RuleSet, RuleErrors> {
    let rules = load_rules_dir(dir)?;
    if !prometheus_url.trim().is_empty() {
        return Ok(rules);
    }
    let errors: Vec<RuleError> = rules
        .iter()
        .filter(|rule| rule.reads_prometheus())
        .map(|rule| RuleError {
            file: rule.origin.file.clone(),
            line: rule.origin.line,
            column: rule.origin.column,
            message: format!(
                "rule {} reads its value with query: set [prometheus] url (SWARMPILOT_PROMETHEUS__URL) to the Prometheus to ask",
                rule.name
            ),
        })
        .collect();
    match errors.is_empty() {
        true => Ok(rules),
        false => Err(RuleErrors(errors)),
    }
}

/// As [`load_rules_dir`], within `limits`.
pub fn load_rules_dir_with(dir: &Path, limits: RuleLimits) -> Result<RuleSet, RuleErrors> {
    let (files, mut errors) = rule_files(dir, limits)?;
    let mut rules = Vec::new();
    let mut names = Vec::new();
    for file in files {
        match read_bounded(&file, limits.max_file_bytes) {
            Ok(text) => {
                let mut parsed = parse_file(&file, &text);
                rules.append(&mut parsed.rules);
                names.append(&mut parsed.names);
                errors.append(&mut parsed.errors);
            }
            Err(message) => errors.push(at(&file, None, message)),
        }
        if names.len() > limits.max_rules {
            errors.push(too_many_rules(&names[limits.max_rules].1, limits.max_rules));
            break;
        }
    }
    errors.extend(duplicate_names(&names));
    if errors.is_empty() {
        Ok(RuleSet::new(rules))
    } else {
        Err(RuleErrors(errors))
    }
}

fn too_many_rules(first_over: &RuleOrigin, max: usize) -> RuleError {
    RuleError {
        file: first_over.file.clone(),
        line: first_over.line,
        column: first_over.column,
        message: format!(
            "more than {max} rules in rules_dir (the limit); remove unused or generated rules, \
             or match several services with one rule"
        ),
    }
}

/// An error about the directory itself rather than a position in a file.
fn dir_error(dir: &Path, message: String) -> RuleErrors {
    RuleErrors(vec![RuleError {
        file: dir.to_path_buf(),
        line: 0,
        column: 0,
        message,
    }])
}

/// The readable rule files of `dir`, sorted, and an error for every `*.yml` / `*.yaml` entry
/// that is not (or does not lead to) a regular file: silently skipping one used to let `check`
/// say "ok" about rules that were never loaded. Other entries are ignored.
fn rule_files(
    dir: &Path,
    limits: RuleLimits,
) -> Result<(Vec<PathBuf>, Vec<RuleError>), RuleErrors> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| dir_error(dir, format!("cannot read rules_dir: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    if paths.len() > limits.max_files {
        let message = format!(
            "rules_dir holds {} rule files, more than the limit of {}; merge them into fewer files",
            paths.len(),
            limits.max_files
        );
        return Err(dir_error(dir, message));
    }
    paths.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match regular_file(&path, limits.max_file_bytes) {
            Ok(()) => files.push(path),
            Err(message) => errors.push(at(&path, None, message)),
        }
    }
    Ok((files, errors))
}

/// Whether `path` is, or is a symlink to, a regular file within the size limit; otherwise what
/// it is. Only metadata is read: opening a FIFO would block the loader.
fn regular_file(path: &Path, max_bytes: u64) -> Result<(), String> {
    let link = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    let via = if link.file_type().is_symlink() {
        "a symlink to "
    } else {
        ""
    };
    let meta = std::fs::metadata(path).map_err(|e| unresolved(path, &e))?;
    let kind = file_kind(meta.file_type());
    if kind != "a regular file" {
        return Err(format!(
            "is {via}{kind}, not a rule file; rule files must be regular files (or symlinks to them)"
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_large(meta.len(), max_bytes));
    }
    Ok(())
}

fn file_kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match file_type {
        t if t.is_file() => "a regular file",
        t if t.is_dir() => "a directory",
        t if t.is_fifo() => "a FIFO",
        t if t.is_socket() => "a socket",
        t if t.is_char_device() => "a character device",
        t if t.is_block_device() => "a block device",
        _ => "an unknown kind of file",
    }
}

/// Why a symlink (or path) does not resolve: dangling, a loop, or the OS's own reason.
fn unresolved(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        return "is a dangling symlink: its target does not exist".into();
    }
    if links_in_a_loop(path) {
        return "is a symlink loop: following it never reaches a file".into();
    }
    format!("cannot read: {e}")
}

/// Follow `path`'s chain of symlinks (as Linux does, at most 40 hops) and say whether it comes
/// back to a link it has seen. std does not name ELOOP as a stable `ErrorKind`.
fn links_in_a_loop(path: &Path) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&current) else {
            return false;
        };
        if !seen.insert(current.clone()) {
            return true;
        }
        current = match current.parent() {
            Some(parent) => parent.join(target),
            None => target,
        };
    }
    true
}

fn too_large(bytes: u64, max_bytes: u64) -> String {
    format!(
        "file is {bytes} bytes, more than the limit of {max_bytes} bytes per rule file; \
         split it into several files"
    )
}

/// Read a file, never more than `max_bytes` (+1 to notice a file that grew since its metadata
/// was read).
fn read_bounded(path: &Path, max_bytes: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > max_bytes {
        return Err(too_large(len, max_bytes));
    }
    String::from_utf8(bytes).map_err(|e| format!("cannot read: {e}"))
}

/// One file's valid rules, the name of every rule (valid or not, to find duplicates), and errors.
#[derive(Default)]
struct ParsedFile {
    rules: Vec<Rule>,
    names: Vec<(String, RuleOrigin)>,
    errors: Vec<RuleError>,
}

/// Parse one file's text into rules, collecting every error rather than stopping at the first.
/// Tests and benchmarks only: a rules dir is loaded with [`load_rules_dir`].
#[cfg(any(test, feature = "test-support"))]
pub fn parse_rule_file(file: &Path, text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    let parsed = parse_file(file, text);
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

/// One file parsed, every error placed inside the file.
fn parse_file(file: &Path, text: &str) -> ParsedFile {
    let mut parsed = parse_yaml(file, text);
    for error in &mut parsed.errors {
        error.keep_within(text);
    }
    parsed
}

fn parse_yaml(file: &Path, text: &str) -> ParsedFile {
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
        if !super::matcher::is_label_name(raw) {
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
            ActionKind::ScaleToTarget => self
                .target_tracking(raw)
                .map(|tracking| Action::ScaleToTarget(Box::new(tracking))),
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
        let tracking = kind == ActionKind::ScaleToTarget;
        let unused: [(&str, Option<&Spanned<String>>, bool); 11] = [
            ("step", raw.step.as_ref(), scale),
            (
                "max_replicas",
                raw.max_replicas.as_ref(),
                kind == ActionKind::ScaleUp || tracking,
            ),
            (
                "min_replicas",
                raw.min_replicas.as_ref(),
                kind == ActionKind::ScaleDown || tracking,
            ),
            ("job", raw.job.as_ref(), kind == ActionKind::BackupNow),
            ("target", raw.target.as_ref(), tracking),
            ("value_from", raw.value_from.as_ref(), tracking),
            ("query", raw.query.as_ref(), tracking),
            ("tolerance", raw.tolerance.as_ref(), tracking),
            (
                "scale_down_stabilization",
                raw.scale_down_stabilization.as_ref(),
                tracking,
            ),
            ("max_step_up", raw.max_step_up.as_ref(), tracking),
            ("max_step_down", raw.max_step_down.as_ref(), tracking),
        ];
        for (field, value, allowed) in unused {
            if let (Some(value), false) = (value, allowed) {
                self.error(value, format!("{field} does not apply to action {kind}"));
            }
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
