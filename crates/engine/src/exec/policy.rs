//! Exec policy: which commands run, which need a person's approval, which never run.
//!
//! A rule names a program by its resolved absolute path (a bare name on `PATH` is resolved when
//! the rule is added and when a command is checked, so `python3` in a rule and in a request
//! mean the same file — and a `python3` planted earlier on `PATH` does not). Its argument
//! patterns match argument by argument: `status` is that exact string, `/re/` a regular
//! expression that must match the whole argument. Without `any_args` the command must have
//! exactly as many arguments as patterns; with it, arguments after the patterns are free.
//!
//! Deny rules win, then allow, then ask; a command no rule covers is asked about. No shell is
//! ever involved: `sh -c …` is just a program with arguments, asked about unless a rule says so.

use std::path::{Path, PathBuf};

use regex::Regex;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        [Action::Allow, Action::Ask, Action::Deny].into_iter().find(|a| a.as_str() == s)
    }
}

/// What a rule says, stored or about to be.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSpec {
    pub action: Action,
    /// Absolute path.
    pub program: String,
    pub args: Vec<String>,
    pub any_args: bool,
    pub network: bool,
    /// Holds only for commands run in this directory (timed grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_cwd: Option<String>,
    /// Holds only for this kind of requester: `person`, `model` or `job` (timed grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_requester: Option<String>,
}

/// Where and for whom a command is to run, for rules that hold only there.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub cwd: &'a std::path::Path,
    pub requester: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub builtin: bool,
    /// A timed grant ends then.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    pub expires_at: Option<Millis>,
}


impl Rule {
    /// How a person would write it: `allow /usr/bin/git status /log|diff/ …`.
    pub fn display(&self) -> String {
        let spec = &self.spec;
        let mut s = format!("{} {}", spec.action.as_str(), spec.program);
        for a in &spec.args {
            s.push(' ');
            s.push_str(a);
        }
        if spec.any_args {
            s.push_str(" …");
        }
        if spec.network {
            s.push_str(" (network)");
        }
        if let Some(cwd) = &spec.only_cwd {
            s.push_str(&format!(" (in {cwd})"));
        }
        if let Some(who) = &spec.only_requester {
            s.push_str(&format!(" (for the {who})"));
        }
        if let Some(t) = self.expires_at {
            s.push_str(&format!(" (until {})", crate::clock::rfc3339(t)));
        }
        s
    }

    fn matches(&self, program: &[PathBuf], args: &[String], scope: Scope<'_>) -> bool {
        let spec = &self.spec;
        if spec.only_cwd.as_deref().is_some_and(|c| std::path::Path::new(c) != scope.cwd)
            || spec.only_requester.as_deref().is_some_and(|r| r != scope.requester)
        {
            return false;
        }
        if !program.iter().any(|p| p.as_os_str() == spec.program.as_str()) {
            return false;
        }
        if args.len() < spec.args.len() || (!spec.any_args && args.len() != spec.args.len()) {
            return false;
        }
        spec.args.iter().zip(args).all(|(pattern, arg)| arg_matches(pattern, arg))
    }
}

/// The pattern that matches exactly `arg` (a fixed string, unless it looks like `/…/`).
pub(crate) fn exact(arg: &str) -> String {
    if regex_of(arg).is_some() {
        format!("/{}/", regex::escape(arg))
    } else {
        arg.to_owned()
    }
}

/// `/re/` is a whole-argument regular expression; anything else a fixed string.
fn arg_matches(pattern: &str, arg: &str) -> bool {
    match regex_of(pattern) {
        Some(re) => Regex::new(&format!("^(?:{re})$")).map(|r| r.is_match(arg)).unwrap_or(false),
        None => pattern == arg,
    }
}

fn regex_of(pattern: &str) -> Option<&str> {
    pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')).filter(|_| pattern.len() >= 2)
}

/// Check the patterns of a new rule.
pub fn check_patterns(args: &[String]) -> Result<()> {
    for a in args {
        if let Some(re) = regex_of(a) {
            Regex::new(re).map_err(|e| Error::ExecInvalid(format!("`{a}` is not a valid regular expression: {e}")))?;
        }
    }
    Ok(())
}

/// The paths a program name stands for: where it is found, and where that leads after
/// symlinks. A rule on either matches.
pub fn resolve(program: &str, cwd: Option<&Path>) -> Result<Vec<PathBuf>> {
    let found = if program.contains('/') {
        let p = Path::new(program);
        let p = match (p.is_absolute(), cwd) {
            (false, Some(cwd)) => cwd.join(p),
            _ => p.to_owned(),
        };
        super::resolve_program(&p.to_string_lossy())
    } else {
        super::resolve_program(program)
    };
    let found = found.ok_or_else(|| {
        Error::ExecInvalid(format!("the program `{program}` was not found or is not executable (looked on PATH)"))
    })?;
    let mut paths = vec![found.clone()];
    if let Ok(real) = std::fs::canonicalize(&found) {
        if real != found {
            paths.push(real);
        }
    }
    Ok(paths)
}

/// The decision for one command, and what made it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub action: Action,
    pub rule: Option<Rule>,
    pub reason: String,
}

pub fn decide(rules: &[Rule], program: &[PathBuf], args: &[String], scope: Scope<'_>) -> Decision {
    for action in [Action::Deny, Action::Allow, Action::Ask] {
        if let Some(rule) = rules.iter().find(|r| r.spec.action == action && r.matches(program, args, scope)) {
            let reason = format!("rule {} ({})", rule.id, rule.display());
            return Decision { action, rule: Some(rule.clone()), reason };
        }
    }
    Decision { action: Action::Ask, rule: None, reason: "no rule covers this command".into() }
}

/// The rules in force at `now` (timed grants that ended are left out).
pub(crate) async fn rules(store: &Store, now: Millis) -> Result<Vec<Rule>> {
    store
        .read(move |c| {
            c.prepare_cached(
                "SELECT id, action, program, args, any_args, network, builtin, expires_at, only_cwd, only_requester FROM exec_rules
                 WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY id",
            )?
                .query_map([now], |r| {
                    let action: String = r.get(1)?;
                    let args: String = r.get(3)?;
                    Ok(Rule {
                        id: r.get(0)?,
                        spec: RuleSpec {
                            action: Action::parse(&action).unwrap_or(Action::Ask),
                            program: r.get(2)?,
                            args: serde_json::from_str(&args).unwrap_or_default(),
                            any_args: r.get(4)?,
                            network: r.get(5)?,
                            only_cwd: r.get(8)?,
                            only_requester: r.get(9)?,
                        },
                        builtin: r.get(6)?,
                        expires_at: r.get(7)?,
                    })
                })?
                .collect()
        })
        .await
}

/// A rule to add. `spec.program` is already resolved to an absolute path.
pub(crate) struct AddRule {
    pub spec: RuleSpec,
    pub builtin: bool,
    /// For a timed grant: how long from now it lasts.
    pub lasts_ms: Option<i64>,
}

impl WriteOp for AddRule {
    type Output = i64;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<i64> {
        conn.query_row(
            "INSERT INTO exec_rules (action, program, args, any_args, network, builtin, created_at, expires_at,
                                     only_cwd, only_requester)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
            params![
                self.spec.action.as_str(),
                self.spec.program,
                serde_json::to_string(&self.spec.args).unwrap_or_else(|_| "[]".into()),
                self.spec.any_args,
                self.spec.network,
                self.builtin,
                now,
                self.lasts_ms.map(|ms| now + ms),
                self.spec.only_cwd,
                self.spec.only_requester
            ],
            |r| r.get(0),
        )
        .map_err(db)
    }
}

pub(crate) struct RemoveRule(pub i64);

impl WriteOp for RemoveRule {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        match conn.execute("DELETE FROM exec_rules WHERE id = ?1", [self.0]).map_err(db)? {
            0 => Err(Error::ExecInvalid(format!("there is no exec rule {}; see `gatehouse exec policy list`", self.0))),
            _ => Ok(()),
        }
    }
}

/// The defaults, added when the rule table is empty: read-only tools run, obviously dangerous
/// programs never do, everything else is asked about. Names not installed are skipped.
pub(crate) fn defaults() -> Vec<AddRule> {
    let mut rules = Vec::new();
    let mut add = |action: Action, names: &[&str], args: &[&str], any_args: bool| {
        for name in names {
            if let Ok(paths) = resolve(name, None) {
                rules.push(AddRule {
                    spec: RuleSpec {
                        action,
                        program: paths[0].to_string_lossy().into_owned(),
                        args: args.iter().map(|a| a.to_string()).collect(),
                        any_args,
                        network: false,
                        only_cwd: None,
                        only_requester: None,
                    },
                    builtin: true,
                    lasts_ms: None,
                });
            }
        }
    };
    add(Action::Deny, &["sudo", "su", "doas", "pkexec", "mkfs", "dd", "shutdown", "reboot", "poweroff", "halt"], &[], true);
    add(
        Action::Allow,
        &[
            "ls", "cat", "head", "tail", "wc", "echo", "pwd", "date", "uname", "whoami", "id", "true", "false", "grep",
            "cut", "tr", "diff", "stat", "file", "which", "basename", "dirname", "realpath",
            "sha256sum", "md5sum", "du", "df", "sleep", "seq", "printf",
        ],
        &[],
        true,
    );
    // Not git, sort or uniq: with free arguments each can write files (`git log --output`,
    // `sort -o`), and a written `.git/config` runs code at the next `git status`.
    for python in ["python3", "python"] {
        add(Action::Allow, &[python], &["--version"], false);
    }
    rules
}

/// Add the defaults if there are no rules at all (first use).
pub(crate) struct SeedDefaults;

impl WriteOp for SeedDefaults {
    type Output = usize;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<usize> {
        let empty: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM exec_rules)", [], |r| r.get(0)).map_err(db)?;
        if !empty {
            return Ok(0);
        }
        let mut rules = defaults();
        for rule in &mut rules {
            rule.apply(conn, now)?;
        }
        Ok(rules.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anywhere() -> Scope<'static> {
        Scope { cwd: std::path::Path::new("/w"), requester: "person" }
    }

    #[test]
    fn a_timed_grant_holds_only_where_and_for_whom_it_was_given() {
        let mut grant = rule(9, Action::Allow, "/usr/bin/rm", &["build"], false);
        grant.spec.only_cwd = Some("/w/project".into());
        grant.spec.only_requester = Some("model".into());
        let rules = vec![grant];
        let rm = vec![PathBuf::from("/usr/bin/rm")];
        let project = PathBuf::from("/w/project");
        let other = PathBuf::from("/w/other");
        let at = |cwd: &PathBuf, requester: &'static str| {
            decide(&rules, &rm, &argv(&["build"]), Scope { cwd: cwd.as_path(), requester }).action
        };
        assert_eq!(at(&project, "model"), Action::Allow);
        assert_eq!(at(&other, "model"), Action::Ask, "another directory");
        assert_eq!(at(&project, "job"), Action::Ask, "another requester");
        assert!(rules[0].display().contains("(in /w/project) (for the model)"));
    }

    fn rule(id: i64, action: Action, program: &str, args: &[&str], any_args: bool) -> Rule {
        Rule {
            id,
            spec: RuleSpec {
                action,
                program: program.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                any_args,
                network: false,
                only_cwd: None,
                only_requester: None,
            },
            builtin: false,
            expires_at: None,
        }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deny_wins_then_allow_then_ask_and_patterns_match_whole_arguments() {
        let git = [PathBuf::from("/usr/bin/git")];
        let rules = vec![
            rule(1, Action::Allow, "/usr/bin/git", &["/status|log/"], true),
            rule(2, Action::Deny, "/usr/bin/git", &["push"], true),
            rule(3, Action::Ask, "/usr/bin/git", &[], true),
        ];
        assert_eq!(decide(&rules, &git, &argv(&["log", "--oneline"]), anywhere()).action, Action::Allow);
        assert_eq!(decide(&rules, &git, &argv(&["push", "origin"]), anywhere()).action, Action::Deny);
        assert_eq!(decide(&rules, &git, &argv(&["logx"]), anywhere()).action, Action::Ask, "regex is anchored");
        assert_eq!(decide(&rules, &git, &argv(&["commit"]), anywhere()).rule.unwrap().id, 3);
        let other = [PathBuf::from("/tmp/git")];
        let d = decide(&rules, &other, &argv(&["status"]), anywhere());
        assert_eq!((d.action, d.rule.is_none()), (Action::Ask, true), "a different file named git is not git");
    }

    #[test]
    fn without_any_args_the_argument_count_must_match() {
        let py = [PathBuf::from("/usr/bin/python3")];
        let rules = vec![rule(1, Action::Allow, "/usr/bin/python3", &["--version"], false)];
        assert_eq!(decide(&rules, &py, &argv(&["--version"]), anywhere()).action, Action::Allow);
        assert_eq!(decide(&rules, &py, &argv(&["--version", "-c", "x"]), anywhere()).action, Action::Ask);
        assert_eq!(decide(&rules, &py, &argv(&[]), anywhere()).action, Action::Ask);
    }
}
