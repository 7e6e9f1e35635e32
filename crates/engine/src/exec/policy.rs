//! Exec policy: which commands run, which need a person's approval, which never run.
//!
//! A rule names a program by a path (a bare name is found on the sandbox's `PATH` when the rule
//! is added), and it matches the *file* that path leads to, compared by device and inode with
//! the file the command will run (`super::program`): `/sbin/reboot`,
//! `/usr/sbin/../sbin/reboot` and a workspace symlink to it all hit `deny /usr/sbin/reboot`.
//! When the rule's path is another name for its file (a symlink: `reboot` → `systemctl`), the
//! command must use that name too, since a multi-call program does what its name says. A rule
//! on a program outside the system directories (which commands can rewrite) also pins its
//! content: it holds for those bytes (their SHA-256) and no others. Its argument
//! patterns match argument by argument: `status` is that exact string, `/re/` a regular
//! expression that must match the whole argument. Without `any_args` the command must have
//! exactly as many arguments as patterns; with it, arguments after the patterns are free.
//!
//! Deny rules win, then allow, then ask; a command no rule covers is asked about. No shell is
//! ever involved: `sh -c …` is just a program with arguments, asked about unless a rule says so.

use regex::Regex;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// What a rule does with the commands it covers.
pub enum Action {
    /// Run it.
    Allow,
    /// Ask a person first.
    Ask,
    /// Refuse it, whatever else allows it.
    Deny,
}

impl Action {
    /// The word stored and shown: `allow`, `ask` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }

    /// The action named by `s`, if it is one.
    pub fn parse(s: &str) -> Option<Action> {
        [Action::Allow, Action::Ask, Action::Deny].into_iter().find(|a| a.as_str() == s)
    }
}

/// What a rule says, stored or about to be.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct RuleSpec {
    /// What the rule does.
    pub action: Action,
    /// Absolute path.
    pub program: String,
    /// Argument patterns, one per argument: an exact string, or `/re/` matching the whole one.
    pub args: Vec<String>,
    /// Arguments after the patterns are free (else the count must match).
    pub any_args: bool,
    /// Commands under the rule may use the network (else the sandbox has none).
    pub network: bool,
    /// Holds only for commands run in this directory (timed grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_cwd: Option<String>,
    /// Holds only for this kind of requester: `person`, `model` or `job` (timed grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_requester: Option<String>,
    /// For a program outside the system directories: holds for this content only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Paths a command under this rule may read besides the system directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub see: Vec<String>,
    /// Environment variables a request under this rule may set besides the harmless ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

impl RuleSpec {
    /// A rule with no scope, pin, extra paths or variables.
    pub fn new(action: Action, program: String, args: Vec<String>, any_args: bool, network: bool) -> RuleSpec {
        RuleSpec {
            action,
            program,
            args,
            any_args,
            network,
            only_cwd: None,
            only_requester: None,
            sha256: None,
            see: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// The program a command will run, as rules see it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub(crate) id: super::held::FileId,
    /// The name it was called by (`argv[0]`).
    pub(crate) name: String,
    pub(crate) sha256: Option<String>,
}

impl Candidate {
    pub(crate) fn of(program: &super::program::Program) -> Candidate {
        Candidate { id: program.id, name: program.name(), sha256: program.sha256().map(str::to_owned) }
    }
}

/// What a rule's program path leads to now: the file, and the name the rule insists on when
/// the path is another name for the file.
pub(crate) type Target = Option<(super::held::FileId, Option<String>)>;

/// Where and for whom a command is to run, for rules that hold only there.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The command's working directory, as held.
    pub cwd: &'a std::path::Path,
    /// Who asked (`person`, `model`, `job`).
    pub requester: &'a str,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// A stored policy rule.
pub struct Rule {
    /// Its id: what `gatehouse exec policy remove ID` takes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    #[serde(flatten)]
    /// What it matches and does.
    pub spec: RuleSpec,
    /// One of the defaults seeded at first start (the person may still remove it).
    pub builtin: bool,
    /// A timed grant ends then.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
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
        for path in &spec.see {
            s.push_str(&format!(" (sees {path})"));
        }
        for name in &spec.env {
            s.push_str(&format!(" (may set {name})"));
        }
        if let Some(sha) = &spec.sha256 {
            s.push_str(&format!(" (content {})", &sha[..sha.len().min(12)]));
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

    fn matches(&self, target: &Target, program: &Candidate, args: &[String], scope: Scope<'_>) -> bool {
        let spec = &self.spec;
        if spec.only_cwd.as_deref().is_some_and(|c| std::path::Path::new(c) != scope.cwd)
            || spec.only_requester.as_deref().is_some_and(|r| r != scope.requester)
        {
            return false;
        }
        let Some((id, alias)) = target else { return false };
        if *id != program.id || alias.as_ref().is_some_and(|a| *a != program.name) {
            return false;
        }
        if spec.sha256.as_ref().is_some_and(|h| program.sha256.as_ref() != Some(h)) {
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

/// The decision for one command, and what made it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Run, ask or refuse.
    pub action: Action,
    /// The rule that decided; `None` when no rule covers the command (then it is asked about).
    pub rule: Option<Rule>,
    /// Why, in words: the rule, or that none covers it.
    pub reason: String,
}

/// The decision for `program` with `args` under `rules`; `target` says what a rule's program
/// path leads to now ([`super::program::rule_target`] outside tests).
pub(crate) fn decide(
    rules: &[Rule],
    program: &Candidate,
    args: &[String],
    scope: Scope<'_>,
    target: impl Fn(&str) -> Target,
) -> Decision {
    // Each rule's path is looked at once per decision.
    let targets: Vec<Target> = rules.iter().map(|r| target(&r.spec.program)).collect();
    // Deny wins over allow, allow over ask. Among allow rules the newest one a person added
    // applies, built-in defaults last: what it grants (`--network`, `--see`, `--env`) is what
    // the command gets, so a rule added to widen a default is not shadowed by that default.
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| (rules[i].builtin, std::cmp::Reverse(rules[i].id)));
    for action in [Action::Deny, Action::Allow, Action::Ask] {
        let found = order
            .iter()
            .map(|&i| (&rules[i], &targets[i]))
            .find(|(r, t)| r.spec.action == action && r.matches(t, program, args, scope));
        if let Some((rule, _)) = found {
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
                "SELECT id, action, program, args, any_args, network, builtin, expires_at, only_cwd, only_requester,
                        sha256, see, env FROM exec_rules
                 WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY id",
            )?
                .query_map([now], |r| {
                    let action: String = r.get(1)?;
                    let args: String = r.get(3)?;
                    let (see, env): (String, String) = (r.get(11)?, r.get(12)?);
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
                            sha256: r.get(10)?,
                            see: serde_json::from_str(&see).unwrap_or_default(),
                            env: serde_json::from_str(&env).unwrap_or_default(),
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
                                     only_cwd, only_requester, sha256, see, env)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
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
                self.spec.only_requester,
                self.spec.sha256,
                serde_json::to_string(&self.spec.see).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&self.spec.env).unwrap_or_else(|_| "[]".into())
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
            0 => Err(Error::RuleNotFound(self.0)),
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
            if let Ok(program) = super::program::resolve(name, None) {
                let args = args.iter().map(|a| a.to_string()).collect();
                let spec = RuleSpec::new(action, program.found.to_string_lossy().into_owned(), args, any_args, false);
                rules.push(AddRule { spec, builtin: true, lasts_ms: None });
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
    use super::super::held::FileId;
    use super::*;
    use std::path::PathBuf;

    fn anywhere() -> Scope<'static> {
        Scope { cwd: std::path::Path::new("/w"), requester: "person" }
    }

    /// Paths as the tests' file system has them: each its own file, but `/sbin/reboot`, which
    /// is `/usr/bin/systemctl` under another name.
    fn target(path: &str) -> Target {
        let file = |ino| FileId { dev: 1, ino };
        match path {
            "/usr/bin/git" => Some((file(1), None)),
            "/usr/bin/python3" => Some((file(2), None)),
            "/usr/bin/rm" => Some((file(3), None)),
            "/sbin/reboot" => Some((file(4), Some("reboot".into()))),
            "/usr/bin/systemctl" => Some((file(4), None)),
            "/w/tool" => Some((file(5), None)),
            "/usr/bin/head" => Some((file(6), None)),
            _ => None,
        }
    }

    fn program(ino: u64, name: &str) -> Candidate {
        Candidate { id: FileId { dev: 1, ino }, name: name.into(), sha256: None }
    }

    #[test]
    fn a_timed_grant_holds_only_where_and_for_whom_it_was_given() {
        let mut grant = rule(9, Action::Allow, "/usr/bin/rm", &["build"], false);
        grant.spec.only_cwd = Some("/w/project".into());
        grant.spec.only_requester = Some("model".into());
        let rules = vec![grant];
        let rm = program(3, "rm");
        let project = PathBuf::from("/w/project");
        let other = PathBuf::from("/w/other");
        let at = |cwd: &PathBuf, requester: &'static str| {
            decide(&rules, &rm, &argv(&["build"]), Scope { cwd: cwd.as_path(), requester }, target).action
        };
        assert_eq!(at(&project, "model"), Action::Allow);
        assert_eq!(at(&other, "model"), Action::Ask, "another directory");
        assert_eq!(at(&project, "job"), Action::Ask, "another requester");
        assert!(rules[0].display().contains("(in /w/project) (for the model)"));
    }

    fn rule(id: i64, action: Action, program: &str, args: &[&str], any_args: bool) -> Rule {
        Rule {
            id,
            spec: RuleSpec::new(action, program.into(), args.iter().map(|a| a.to_string()).collect(), any_args, false),
            builtin: false,
            expires_at: None,
        }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deny_wins_then_allow_then_ask_and_patterns_match_whole_arguments() {
        let git = program(1, "git");
        let rules = vec![
            rule(1, Action::Allow, "/usr/bin/git", &["/status|log/"], true),
            rule(2, Action::Deny, "/usr/bin/git", &["push"], true),
            rule(3, Action::Ask, "/usr/bin/git", &[], true),
        ];
        let decide = |p: &Candidate, a: &[&str]| decide(&rules, p, &argv(a), anywhere(), target);
        assert_eq!(decide(&git, &["log", "--oneline"]).action, Action::Allow);
        assert_eq!(decide(&git, &["push", "origin"]).action, Action::Deny);
        assert_eq!(decide(&git, &["logx"]).action, Action::Ask, "regex is anchored");
        assert_eq!(decide(&git, &["commit"]).rule.unwrap().id, 3);
        let d = decide(&program(99, "git"), &["status"]);
        assert_eq!((d.action, d.rule.is_none()), (Action::Ask, true), "a different file named git is not git");
        assert_eq!(decide(&program(1, "tool"), &["push"]).action, Action::Deny, "git by any other name is git");
    }

    #[test]
    fn a_rule_on_another_name_holds_for_that_name_and_a_pinned_rule_for_that_content() {
        let rules = vec![rule(1, Action::Deny, "/sbin/reboot", &[], true)];
        assert_eq!(decide(&rules, &program(4, "reboot"), &[], anywhere(), target).action, Action::Deny);
        assert_eq!(decide(&rules, &program(4, "systemctl"), &argv(&["status"]), anywhere(), target).action, Action::Ask);

        let mut pinned = rule(2, Action::Allow, "/w/tool", &[], false);
        pinned.spec.sha256 = Some("aa".into());
        let rules = vec![pinned];
        let mut tool = program(5, "tool");
        tool.sha256 = Some("aa".into());
        assert_eq!(decide(&rules, &tool, &[], anywhere(), target).action, Action::Allow);
        tool.sha256 = Some("bb".into());
        assert_eq!(decide(&rules, &tool, &[], anywhere(), target).action, Action::Ask, "other bytes");
    }

    #[test]
    fn the_newest_allow_rule_a_person_added_applies_before_a_default() {
        let head = program(6, "head");
        let mut default = rule(1, Action::Allow, "/usr/bin/head", &[], true);
        default.builtin = true;
        let mut wider = rule(7, Action::Allow, "/usr/bin/head", &[], true);
        wider.spec.see = vec!["/srv/docs".into()];
        let older = rule(5, Action::Allow, "/usr/bin/head", &[], true);
        let rules = vec![default, older, wider];
        let d = decide(&rules, &head, &argv(&["x"]), anywhere(), target);
        assert_eq!(d.rule.map(|r| r.id), Some(7));
    }

    #[test]
    fn without_any_args_the_argument_count_must_match() {
        let py = program(2, "python3");
        let rules = vec![rule(1, Action::Allow, "/usr/bin/python3", &["--version"], false)];
        let decide = |a: &[&str]| decide(&rules, &py, &argv(a), anywhere(), target).action;
        assert_eq!(decide(&["--version"]), Action::Allow);
        assert_eq!(decide(&["--version", "-c", "x"]), Action::Ask);
        assert_eq!(decide(&[]), Action::Ask);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Whatever the rules, program and arguments, deciding never panics and never allows
        /// a command that a deny rule covers.
        #[test]
        fn no_rule_set_allows_what_a_deny_rule_covers(
            specs in proptest::collection::vec(
                (0u8..3, proptest::sample::select(vec!["/usr/bin/git", "/usr/bin/rm", "/sbin/reboot", "/usr/bin/systemctl", "/w/tool", "/nowhere"]),
                 proptest::collection::vec("(/[a-z|.*(]{0,6}/?|[a-z-]{0,4})", 0..3), proptest::bool::ANY, proptest::bool::ANY),
                0..8,
            ),
            ino in 1u64..7,
            name in proptest::sample::select(vec!["git", "rm", "reboot", "systemctl", "tool", "x"]),
            args in proptest::collection::vec("[a-z./|-]{0,5}", 0..4),
        ) {
            let mut rules = Vec::new();
            for (i, (action, program, patterns, any_args, builtin)) in specs.into_iter().enumerate() {
                let action = [Action::Allow, Action::Deny, Action::Ask][action as usize];
                let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
                let mut r = rule(i as i64 + 1, action, program, &patterns, any_args);
                r.builtin = builtin;
                rules.push(r);
            }
            let candidate = program(ino, name);
            let decision = decide(&rules, &candidate, &args, anywhere(), target);
            let denied = rules.iter().any(|r| r.spec.action == Action::Deny && r.matches(&target(&r.spec.program), &candidate, &args, anywhere()));
            if denied {
                proptest::prop_assert_eq!(decision.action, Action::Deny);
            }
        }
    }
}
