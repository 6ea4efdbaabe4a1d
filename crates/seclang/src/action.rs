//! Actions: what a rule does and says about itself (`"id:1,phase:2,t:none,deny,msg:'x'"`).
//!
//! An action list is a comma-separated list of `name` or `name:value`. Names are
//! case-insensitive (kept lower-cased). A value either runs to the next comma (blanks around it
//! trimmed) or is single-quoted: then it runs to the next unescaped `'`, may contain commas,
//! and `\'` inside it stands for `'` (other backslashes are kept as written). Every action is
//! checked against the actions ModSecurity v3 knows, and the common ones are parsed into
//! [`ActionKind`] so the engine never re-parses text: ids, phases, transformations, `setvar`,
//! `ctl`, severities, `skip`/`skipAfter`, `status`.

use std::fmt;

use crate::directive::{AuditEngine, EngineMode, IdRange};
use crate::error::ErrorKind;
use crate::variable::{self, Variable};

/// One action of a rule (or of `SecAction`, `SecDefaultAction`, `SecRuleUpdateActionById`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The canonical lower-case name: `id`, `t`, `setvar`, `ctl`, `skipafter`, `logdata`.
    pub name: String,
    /// The value exactly as written, without its single quotes (`\'` unescaped).
    pub value: Option<String>,
    /// The parsed meaning.
    pub kind: ActionKind,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(v) = &self.value {
            write!(f, ":'{}'", v.replace('\'', "\\'"))?;
        }
        Ok(())
    }
}

/// The parsed meaning of an action. Variants carrying a `String` carry the value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionKind {
    // --- meta-data
    /// `id:942100`.
    Id(u64),
    /// `phase:2`, `phase:request`.
    Phase(Phase),
    /// `msg:'...'` (may contain macros).
    Msg(String),
    /// `logdata:'...'` (may contain macros).
    LogData(String),
    /// `tag:'...'`.
    Tag(String),
    /// `ver:'...'`.
    Ver(String),
    /// `rev:'...'`.
    Rev(String),
    /// `severity:'CRITICAL'` or `severity:2`.
    Severity(Severity),
    /// `maturity:1`..`9`.
    Maturity(u8),
    /// `accuracy:1`..`9`.
    Accuracy(u8),

    // --- disruptive
    /// `allow`, `allow:phase`, `allow:request`.
    Allow(AllowScope),
    /// `block`: the disruptive action of `SecDefaultAction`.
    Block,
    /// `deny`.
    Deny,
    /// `drop`.
    Drop,
    /// `pass`.
    Pass,
    /// `pause:5000` (milliseconds).
    Pause(u64),
    /// `proxy:URL`.
    Proxy(String),
    /// `redirect:URL`.
    Redirect(String),

    // --- flow
    /// `chain`: the next `SecRule` is part of this rule (see [`SecRule::chain`](crate::SecRule::chain)).
    Chain,
    /// `skip:N`: skip the next N rules (or chains).
    Skip(u32),
    /// `skipAfter:MARKER`: skip to the `SecMarker` (or rule id) named.
    SkipAfter(String),

    // --- data and logging
    /// `t:name`, canonical lower-case: `none`, `lowercase`, `urldecodeuni`, `normalizepath`.
    Transformation(String),
    /// `setvar:...`.
    SetVar(SetVar),
    /// `ctl:name=value`.
    Ctl(Ctl),
    /// `capture`.
    Capture,
    /// `multiMatch`.
    MultiMatch,
    /// `log`.
    Log,
    /// `nolog`.
    NoLog,
    /// `auditlog`.
    AuditLog,
    /// `noauditlog`.
    NoAuditLog,
    /// `status:403`.
    Status(u16),
    /// `initcol:ip=%{REMOTE_ADDR}`: `collection` upper-cased, the key as written.
    InitCol {
        /// `IP`, `SESSION`, `USER`, `GLOBAL`, `RESOURCE`.
        collection: String,
        /// The key expression.
        key: String,
    },
    /// `setenv:name=value` (or `setenv:!name`), as written.
    SetEnv(String),
    /// `setuid:...`, as written.
    SetUid(String),
    /// `setsid:...`, as written.
    SetSid(String),
    /// `setrsc:...`, as written.
    SetRsc(String),
    /// `expirevar:tx.x=60`, as written.
    ExpireVar(String),
    /// `deprecatevar:tx.x=60/300`, as written.
    DeprecateVar(String),
    /// `exec:/path`, as written.
    Exec(String),
    /// `append:text`, as written.
    Append(String),
    /// `prepend:text`, as written.
    Prepend(String),
    /// `sanitiseArg:name`.
    SanitiseArg(String),
    /// `sanitiseMatched`.
    SanitiseMatched,
    /// `sanitiseMatchedBytes` or `sanitiseMatchedBytes:1/4`.
    SanitiseMatchedBytes(Option<String>),
    /// `sanitiseRequestHeader:name`.
    SanitiseRequestHeader(String),
    /// `sanitiseResponseHeader:name`.
    SanitiseResponseHeader(String),
    /// `xmlns:prefix=URI`, as written.
    Xmlns(String),
}

/// A processing phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// 1: request headers.
    RequestHeaders = 1,
    /// 2 (`request`): request body.
    RequestBody = 2,
    /// 3: response headers.
    ResponseHeaders = 3,
    /// 4 (`response`): response body.
    ResponseBody = 4,
    /// 5 (`logging`): logging.
    Logging = 5,
}

impl Phase {
    /// The phase number, 1 to 5.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Parses `1`..`5`, `request`, `response`, `logging` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" => Some(Self::RequestHeaders),
            "2" | "request" => Some(Self::RequestBody),
            "3" => Some(Self::ResponseHeaders),
            "4" | "response" => Some(Self::ResponseBody),
            "5" | "logging" => Some(Self::Logging),
            _ => None,
        }
    }
}

/// A rule's severity (syslog levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// 0.
    Emergency = 0,
    /// 1.
    Alert = 1,
    /// 2.
    Critical = 2,
    /// 3.
    Error = 3,
    /// 4.
    Warning = 4,
    /// 5.
    Notice = 5,
    /// 6.
    Info = 6,
    /// 7.
    Debug = 7,
}

impl Severity {
    /// The level, 0 (emergency) to 7 (debug).
    pub fn level(self) -> u8 {
        self as u8
    }

    /// The upper-case name, as CRS writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Emergency => "EMERGENCY",
            Self::Alert => "ALERT",
            Self::Critical => "CRITICAL",
            Self::Error => "ERROR",
            Self::Warning => "WARNING",
            Self::Notice => "NOTICE",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
        }
    }

    /// Parses a name (any case) or a number 0-7.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "0" | "EMERGENCY" => Self::Emergency,
            "1" | "ALERT" => Self::Alert,
            "2" | "CRITICAL" => Self::Critical,
            "3" | "ERROR" => Self::Error,
            "4" | "WARNING" => Self::Warning,
            "5" | "NOTICE" => Self::Notice,
            "6" | "INFO" => Self::Info,
            "7" | "DEBUG" => Self::Debug,
            _ => return None,
        })
    }
}

/// What `allow` lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowScope {
    /// `allow`: the rest of the transaction (all phases; logging still runs).
    Transaction,
    /// `allow:phase`: the rest of the current phase.
    Phase,
    /// `allow:request`: the rest of the request phases (response phases still run).
    Request,
}

/// A `setvar` action: `setvar:'tx.score=+%{tx.critical_anomaly_score}'`, `setvar:!tx.x`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetVar {
    /// The collection, upper-cased: `TX`, `IP`, `SESSION`, `USER`, `GLOBAL`, `RESOURCE`.
    pub collection: String,
    /// The variable name as written (may contain `%{...}` macros).
    pub name: String,
    /// What to do.
    pub op: SetVarOp,
    /// The operand as written (may contain macros); empty for [`SetVarOp::Delete`], `"1"` for
    /// the `setvar:tx.flag` form (no `=`), which ModSecurity treats as `=1`.
    pub value: String,
}

/// The operation of a [`SetVar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetVarOp {
    /// `name=value`.
    Set,
    /// `name=+value`: add (numbers).
    Add,
    /// `name=-value`: subtract (numbers).
    Sub,
    /// `!name`: remove the variable.
    Delete,
}

/// A `ctl` action: changes the configuration for the current transaction only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ctl {
    /// `ctl:auditEngine=On|Off|RelevantOnly`.
    AuditEngine(AuditEngine),
    /// `ctl:auditLogParts=+E` (as written).
    AuditLogParts(String),
    /// `ctl:debugLogLevel=N`.
    DebugLogLevel(u8),
    /// `ctl:forceRequestBodyVariable=On|Off`.
    ForceRequestBodyVariable(bool),
    /// `ctl:requestBodyAccess=On|Off`.
    RequestBodyAccess(bool),
    /// `ctl:requestBodyLimit=N`.
    RequestBodyLimit(u64),
    /// `ctl:requestBodyProcessor=URLENCODED|MULTIPART|XML|JSON` (upper-cased).
    RequestBodyProcessor(String),
    /// `ctl:responseBodyAccess=On|Off`.
    ResponseBodyAccess(bool),
    /// `ctl:responseBodyLimit=N`.
    ResponseBodyLimit(u64),
    /// `ctl:ruleEngine=On|Off|DetectionOnly`.
    RuleEngine(EngineMode),
    /// `ctl:ruleRemoveById=942100` (ids and ranges, blank-separated).
    RuleRemoveById(Vec<IdRange>),
    /// `ctl:ruleRemoveByMsg=...`.
    RuleRemoveByMsg(String),
    /// `ctl:ruleRemoveByTag=...` (ModSecurity matches it as a regular expression).
    RuleRemoveByTag(String),
    /// `ctl:ruleRemoveTargetById=942100;ARGS:password`.
    RuleRemoveTargetById {
        /// The rules.
        ids: Vec<IdRange>,
        /// The variables to stop inspecting.
        targets: Vec<Variable>,
    },
    /// `ctl:ruleRemoveTargetByMsg=MSG;ARGS:password`.
    RuleRemoveTargetByMsg {
        /// The rules' message.
        msg: String,
        /// The variables to stop inspecting.
        targets: Vec<Variable>,
    },
    /// `ctl:ruleRemoveTargetByTag=TAG;ARGS:password`.
    RuleRemoveTargetByTag {
        /// The rules' tag.
        tag: String,
        /// The variables to stop inspecting.
        targets: Vec<Variable>,
    },
}

impl Ctl {
    /// The canonical lower-case option name, e.g. `ruleremovetargetbyid`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AuditEngine(_) => "auditengine",
            Self::AuditLogParts(_) => "auditlogparts",
            Self::DebugLogLevel(_) => "debugloglevel",
            Self::ForceRequestBodyVariable(_) => "forcerequestbodyvariable",
            Self::RequestBodyAccess(_) => "requestbodyaccess",
            Self::RequestBodyLimit(_) => "requestbodylimit",
            Self::RequestBodyProcessor(_) => "requestbodyprocessor",
            Self::ResponseBodyAccess(_) => "responsebodyaccess",
            Self::ResponseBodyLimit(_) => "responsebodylimit",
            Self::RuleEngine(_) => "ruleengine",
            Self::RuleRemoveById(_) => "ruleremovebyid",
            Self::RuleRemoveByMsg(_) => "ruleremovebymsg",
            Self::RuleRemoveByTag(_) => "ruleremovebytag",
            Self::RuleRemoveTargetById { .. } => "ruleremovetargetbyid",
            Self::RuleRemoveTargetByMsg { .. } => "ruleremovetargetbymsg",
            Self::RuleRemoveTargetByTag { .. } => "ruleremovetargetbytag",
        }
    }
}

/// Every action name the parser accepts (canonical, lower-case).
pub const ACTIONS: &[&str] = &[
    "accuracy",
    "allow",
    "append",
    "auditlog",
    "block",
    "capture",
    "chain",
    "ctl",
    "deny",
    "deprecatevar",
    "drop",
    "exec",
    "expirevar",
    "id",
    "initcol",
    "log",
    "logdata",
    "maturity",
    "msg",
    "multimatch",
    "noauditlog",
    "nolog",
    "pass",
    "pause",
    "phase",
    "prepend",
    "proxy",
    "redirect",
    "rev",
    "sanitisearg",
    "sanitisematched",
    "sanitisematchedbytes",
    "sanitiserequestheader",
    "sanitiseresponseheader",
    "setenv",
    "setrsc",
    "setsid",
    "setuid",
    "setvar",
    "severity",
    "skip",
    "skipafter",
    "status",
    "t",
    "tag",
    "ver",
    "xmlns",
];

/// Every transformation name the parser accepts (canonical, lower-case). `normalisePath` and
/// `normalisePathWin` are accepted as the `normalizepath` and `normalizepathwin` CRS writes.
pub const TRANSFORMATIONS: &[&str] = &[
    "base64decode",
    "base64decodeext",
    "base64encode",
    "cmdline",
    "compresswhitespace",
    "cssdecode",
    "escapeseqdecode",
    "hexdecode",
    "hexencode",
    "htmlentitydecode",
    "jsdecode",
    "length",
    "lowercase",
    "md5",
    "none",
    "normalizepath",
    "normalizepathwin",
    "parityeven7bit",
    "parityodd7bit",
    "parityzero7bit",
    "removecomments",
    "removecommentschar",
    "removenulls",
    "removewhitespace",
    "replacecomments",
    "replacenulls",
    "sha1",
    "sqlhexdecode",
    "trim",
    "trimleft",
    "trimright",
    "uppercase",
    "urldecode",
    "urldecodeuni",
    "urlencode",
    "utf8tounicode",
];

/// Every `ctl` option name the parser accepts (canonical, lower-case).
pub const CTL_OPTIONS: &[&str] = &[
    "auditengine",
    "auditlogparts",
    "debugloglevel",
    "forcerequestbodyvariable",
    "requestbodyaccess",
    "requestbodylimit",
    "requestbodyprocessor",
    "responsebodyaccess",
    "responsebodylimit",
    "ruleengine",
    "ruleremovebyid",
    "ruleremovebymsg",
    "ruleremovebytag",
    "ruleremovetargetbyid",
    "ruleremovetargetbymsg",
    "ruleremovetargetbytag",
];

/// The persistent and transaction collections `setvar` may write.
const SETVAR_COLLECTIONS: &[&str] = &["GLOBAL", "IP", "RESOURCE", "SESSION", "TX", "USER"];

fn lookup(table: &[&'static str], name: &str) -> Option<&'static str> {
    table
        .binary_search(&name)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
}

/// The canonical name of a transformation (any case), or `None` if unknown.
pub fn canonical_transformation(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    let lower = match lower.as_str() {
        "normalisepath" => "normalizepath",
        "normalisepathwin" => "normalizepathwin",
        other => other,
    };
    lookup(TRANSFORMATIONS, lower)
}

fn syntax(text: &str, reason: &'static str) -> ErrorKind {
    ErrorKind::ActionSyntax {
        text: text.to_owned(),
        reason,
    }
}

/// Parses an action list (the text inside the double quotes).
pub(crate) fn parse_list(text: &str) -> Result<Vec<Action>, ErrorKind> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    loop {
        // The name: up to ':' or ','.
        let name_start = pos;
        while let Some(&b) = bytes.get(pos) {
            if b == b':' || b == b',' {
                break;
            }
            pos += 1;
        }
        let name = text.get(name_start..pos).unwrap_or_default().trim();
        if name.is_empty() {
            return Err(syntax(text, "empty action (stray comma?)"));
        }
        let mut value = None;
        if bytes.get(pos) == Some(&b':') {
            pos += 1;
            while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
                pos += 1;
            }
            if bytes.get(pos) == Some(&b'\'') {
                pos += 1;
                let mut v = String::new();
                let mut run = pos;
                loop {
                    match bytes.get(pos) {
                        None => return Err(syntax(text, "unterminated single quote in a value")),
                        Some(b'\'') => break,
                        Some(b'\\') if bytes.get(pos + 1) == Some(&b'\'') => {
                            v.push_str(text.get(run..pos).unwrap_or_default());
                            v.push('\'');
                            pos += 2;
                            run = pos;
                        }
                        Some(b'\\') => pos += if bytes.get(pos + 1).is_some() { 2 } else { 1 },
                        Some(_) => pos += 1,
                    }
                }
                v.push_str(text.get(run..pos).unwrap_or_default());
                pos += 1;
                while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
                    pos += 1;
                }
                if !matches!(bytes.get(pos), None | Some(b',')) {
                    return Err(syntax(text, "unexpected text after a quoted value"));
                }
                value = Some(v);
            } else {
                let start = pos;
                while !matches!(bytes.get(pos), None | Some(b',')) {
                    pos += 1;
                }
                value = Some(text.get(start..pos).unwrap_or_default().trim().to_owned());
            }
        }
        out.push(build(name, value)?);
        match bytes.get(pos) {
            None => return Ok(out),
            Some(_) => {
                pos += 1;
                if text.get(pos..).unwrap_or_default().trim().is_empty() {
                    return Err(syntax(text, "trailing comma"));
                }
            }
        }
    }
}

fn invalid(action: &str, value: &str, expected: &'static str) -> ErrorKind {
    ErrorKind::InvalidActionValue {
        action: action.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

/// Builds one action from its name and value, validating and parsing the value.
fn build(name: &str, value: Option<String>) -> Result<Action, ErrorKind> {
    let lower = name.to_ascii_lowercase();
    let canonical =
        lookup(ACTIONS, &lower).ok_or_else(|| ErrorKind::UnknownAction(name.to_owned()))?;
    let v = value.as_deref();
    let required = |expected: &'static str| -> Result<&str, ErrorKind> {
        v.ok_or_else(|| invalid(canonical, "", expected))
    };
    let none = |kind: ActionKind| -> Result<ActionKind, ErrorKind> {
        match v {
            None => Ok(kind),
            Some(value) => Err(invalid(canonical, value, "no value")),
        }
    };
    let number = |expected: &'static str| -> Result<u64, ErrorKind> {
        let text = required(expected)?;
        text.trim()
            .parse::<u64>()
            .map_err(|_| invalid(canonical, text, expected))
    };
    let text = |expected: &'static str| -> Result<String, ErrorKind> {
        required(expected).map(str::to_owned)
    };
    let kind = match canonical {
        "accuracy" | "maturity" => {
            let n = number("a number from 1 to 9")?;
            let n = u8::try_from(n)
                .ok()
                .filter(|n| (1..=9).contains(n))
                .ok_or_else(|| invalid(canonical, v.unwrap_or_default(), "a number from 1 to 9"))?;
            if canonical == "accuracy" {
                ActionKind::Accuracy(n)
            } else {
                ActionKind::Maturity(n)
            }
        }
        "allow" => match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None => ActionKind::Allow(AllowScope::Transaction),
            Some("phase") => ActionKind::Allow(AllowScope::Phase),
            Some("request") => ActionKind::Allow(AllowScope::Request),
            Some(_) => {
                return Err(invalid(
                    canonical,
                    v.unwrap_or_default(),
                    "no value, phase or request",
                ));
            }
        },
        "append" => ActionKind::Append(text("text to append")?),
        "auditlog" => none(ActionKind::AuditLog)?,
        "block" => none(ActionKind::Block)?,
        "capture" => none(ActionKind::Capture)?,
        "chain" => none(ActionKind::Chain)?,
        "ctl" => ActionKind::Ctl(parse_ctl(required("option=value")?)?),
        "deny" => none(ActionKind::Deny)?,
        "deprecatevar" => ActionKind::DeprecateVar(text("collection.name=amount/seconds")?),
        "drop" => none(ActionKind::Drop)?,
        "exec" => ActionKind::Exec(text("a script path")?),
        "expirevar" => ActionKind::ExpireVar(text("collection.name=seconds")?),
        "id" => {
            let id = number("a positive rule id")?;
            if id == 0 {
                return Err(invalid(canonical, "0", "a positive rule id"));
            }
            ActionKind::Id(id)
        }
        "initcol" => {
            let raw = required("collection=key")?;
            let (coll, key) = raw
                .split_once('=')
                .ok_or_else(|| invalid(canonical, raw, "collection=key"))?;
            let collection = coll.trim().to_ascii_uppercase();
            if !SETVAR_COLLECTIONS.contains(&collection.as_str()) || collection == "TX" {
                return Err(invalid(
                    canonical,
                    raw,
                    "ip, session, user, global or resource = key",
                ));
            }
            ActionKind::InitCol {
                collection,
                key: key.trim().to_owned(),
            }
        }
        "log" => none(ActionKind::Log)?,
        "logdata" => ActionKind::LogData(text("text")?),
        "msg" => ActionKind::Msg(text("a message")?),
        "multimatch" => none(ActionKind::MultiMatch)?,
        "noauditlog" => none(ActionKind::NoAuditLog)?,
        "nolog" => none(ActionKind::NoLog)?,
        "pass" => none(ActionKind::Pass)?,
        "pause" => ActionKind::Pause(number("milliseconds")?),
        "phase" => {
            let raw = required("1-5, request, response or logging")?;
            ActionKind::Phase(
                Phase::parse(raw)
                    .ok_or_else(|| invalid(canonical, raw, "1-5, request, response or logging"))?,
            )
        }
        "prepend" => ActionKind::Prepend(text("text to prepend")?),
        "proxy" => ActionKind::Proxy(text("a url")?),
        "redirect" => ActionKind::Redirect(text("a url")?),
        "rev" => ActionKind::Rev(text("a revision")?),
        "sanitisearg" => ActionKind::SanitiseArg(text("an argument name")?),
        "sanitisematched" => none(ActionKind::SanitiseMatched)?,
        "sanitisematchedbytes" => ActionKind::SanitiseMatchedBytes(value.clone()),
        "sanitiserequestheader" => ActionKind::SanitiseRequestHeader(text("a header name")?),
        "sanitiseresponseheader" => ActionKind::SanitiseResponseHeader(text("a header name")?),
        "setenv" => ActionKind::SetEnv(text("name=value")?),
        "setrsc" => ActionKind::SetRsc(text("a resource key")?),
        "setsid" => ActionKind::SetSid(text("a session id")?),
        "setuid" => ActionKind::SetUid(text("a user id")?),
        "setvar" => ActionKind::SetVar(parse_setvar(required("collection.name=value")?)?),
        "severity" => {
            let raw = required("0-7 or a severity name")?;
            ActionKind::Severity(
                Severity::parse(raw)
                    .ok_or_else(|| invalid(canonical, raw, "0-7 or a severity name"))?,
            )
        }
        "skip" => {
            let n = number("a positive number of rules")?;
            let n = u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid(
                    canonical,
                    v.unwrap_or_default(),
                    "a positive number of rules",
                )
            })?;
            ActionKind::Skip(n)
        }
        "skipafter" => {
            let raw = required("a marker name")?;
            if raw.trim().is_empty() {
                return Err(invalid(canonical, raw, "a marker name"));
            }
            ActionKind::SkipAfter(raw.trim().to_owned())
        }
        "status" => {
            let n = number("an HTTP status code")?;
            let n = u16::try_from(n)
                .ok()
                .filter(|n| (100..=999).contains(n))
                .ok_or_else(|| invalid(canonical, v.unwrap_or_default(), "an HTTP status code"))?;
            ActionKind::Status(n)
        }
        "t" => {
            let raw = required("a transformation name")?;
            let t = canonical_transformation(raw)
                .ok_or_else(|| ErrorKind::UnknownTransformation(raw.to_owned()))?;
            ActionKind::Transformation(t.to_owned())
        }
        "tag" => ActionKind::Tag(text("a tag")?),
        "ver" => ActionKind::Ver(text("a version")?),
        "xmlns" => ActionKind::Xmlns(text("prefix=uri")?),
        _ => return Err(ErrorKind::UnknownAction(name.to_owned())),
    };
    Ok(Action {
        name: canonical.to_owned(),
        value,
        kind,
    })
}

/// Parses the value of `setvar`.
pub(crate) fn parse_setvar(raw: &str) -> Result<SetVar, ErrorKind> {
    let bad = || {
        invalid(
            "setvar",
            raw,
            "collection.name, collection.name=value or !collection.name",
        )
    };
    let text = raw.trim();
    let (delete, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    let (target, operand) = match text.split_once('=') {
        Some((t, o)) if !delete => (t.trim_end(), Some(o)),
        Some(_) => return Err(bad()),
        None => (text, None),
    };
    let (collection, name) = target.split_once(['.', ':']).ok_or_else(bad)?;
    let collection = collection.trim().to_ascii_uppercase();
    if !SETVAR_COLLECTIONS.contains(&collection.as_str()) || name.trim().is_empty() {
        return Err(bad());
    }
    let (op, value) = match operand {
        _ if delete => (SetVarOp::Delete, String::new()),
        None => (SetVarOp::Set, "1".to_owned()),
        Some(o) => match o.strip_prefix('+') {
            Some(rest) => (SetVarOp::Add, rest.to_owned()),
            None => match o.strip_prefix('-') {
                Some(rest) => (SetVarOp::Sub, rest.to_owned()),
                None => (SetVarOp::Set, o.to_owned()),
            },
        },
    };
    Ok(SetVar {
        collection,
        name: name.trim().to_owned(),
        op,
        value,
    })
}

fn on_off(option: &'static str, value: &str) -> Result<bool, ErrorKind> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(invalid("ctl", &format!("{option}={value}"), "On or Off")),
    }
}

/// Parses the value of `ctl` (`option=value`).
pub(crate) fn parse_ctl(raw: &str) -> Result<Ctl, ErrorKind> {
    let (option, value) = raw
        .split_once('=')
        .ok_or_else(|| invalid("ctl", raw, "option=value"))?;
    let lower = option.trim().to_ascii_lowercase();
    let option = lookup(CTL_OPTIONS, &lower)
        .ok_or_else(|| ErrorKind::UnknownCtl(option.trim().to_owned()))?;
    let value = value.trim();
    let bad = |expected: &'static str| invalid("ctl", raw, expected);
    let number = |expected: &'static str| value.parse::<u64>().map_err(|_| bad(expected));
    let with_targets = |expected: &'static str| -> Result<(&str, Vec<Variable>), ErrorKind> {
        let (which, targets) = value.split_once(';').ok_or_else(|| bad(expected))?;
        if which.trim().is_empty() {
            return Err(bad(expected));
        }
        Ok((which.trim(), variable::parse_list(targets)?))
    };
    Ok(match option {
        "auditengine" => Ctl::AuditEngine(
            AuditEngine::parse(value).ok_or_else(|| bad("auditEngine=On|Off|RelevantOnly"))?,
        ),
        "auditlogparts" => Ctl::AuditLogParts(value.to_owned()),
        "debugloglevel" => Ctl::DebugLogLevel(
            u8::try_from(number("debugLogLevel=0-9")?)
                .ok()
                .filter(|n| *n <= 9)
                .ok_or_else(|| bad("debugLogLevel=0-9"))?,
        ),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(option, value)?),
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(option, value)?),
        "requestbodylimit" => Ctl::RequestBodyLimit(number("requestBodyLimit=bytes")?),
        "requestbodyprocessor" => {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("requestBodyProcessor=URLENCODED|MULTIPART|XML|JSON"));
            }
            Ctl::RequestBodyProcessor(value.to_ascii_uppercase())
        }
        "responsebodyaccess" => Ctl::ResponseBodyAccess(on_off(option, value)?),
        "responsebodylimit" => Ctl::ResponseBodyLimit(number("responseBodyLimit=bytes")?),
        "ruleengine" => Ctl::RuleEngine(
            EngineMode::parse(value).ok_or_else(|| bad("ruleEngine=On|Off|DetectionOnly"))?,
        ),
        "ruleremovebyid" => Ctl::RuleRemoveById(
            IdRange::parse_list(value.split_whitespace())
                .ok_or_else(|| bad("ruleRemoveById=ID or ID-ID"))?,
        ),
        "ruleremovebymsg" if !value.is_empty() => Ctl::RuleRemoveByMsg(value.to_owned()),
        "ruleremovebytag" if !value.is_empty() => Ctl::RuleRemoveByTag(value.to_owned()),
        "ruleremovetargetbyid" => {
            let (ids, targets) = with_targets("ruleRemoveTargetById=ID;VARIABLE")?;
            let ids = IdRange::parse_list(ids.split_whitespace())
                .ok_or_else(|| bad("ruleRemoveTargetById=ID;VARIABLE"))?;
            Ctl::RuleRemoveTargetById { ids, targets }
        }
        "ruleremovetargetbymsg" => {
            let (msg, targets) = with_targets("ruleRemoveTargetByMsg=MSG;VARIABLE")?;
            Ctl::RuleRemoveTargetByMsg {
                msg: msg.to_owned(),
                targets,
            }
        }
        "ruleremovetargetbytag" => {
            let (tag, targets) = with_targets("ruleRemoveTargetByTag=TAG;VARIABLE")?;
            Ctl::RuleRemoveTargetByTag {
                tag: tag.to_owned(),
                targets,
            }
        }
        _ => return Err(bad("a non-empty value")),
    })
}

/// Convenience look-ups over an action list, for rules and `SecAction`/`SecDefaultAction`.
///
/// Implemented for `[Action]`, so `rule.actions.id()` works.
pub trait ActionList {
    /// The actions.
    fn actions(&self) -> &[Action];

    /// The kinds of the actions, in order.
    fn kinds(&self) -> impl DoubleEndedIterator<Item = &ActionKind> {
        self.actions().iter().map(|a| &a.kind)
    }

    /// The rule id (`id:`), if any (the last one wins, as in ModSecurity).
    fn id(&self) -> Option<u64> {
        self.kinds().rev().find_map(|k| match k {
            ActionKind::Id(id) => Some(*id),
            _ => None,
        })
    }

    /// The phase (`phase:`), if any (the last one wins).
    fn phase(&self) -> Option<Phase> {
        self.kinds().rev().find_map(|k| match k {
            ActionKind::Phase(p) => Some(*p),
            _ => None,
        })
    }

    /// The message (`msg:`), if any.
    fn msg(&self) -> Option<&str> {
        self.kinds().rev().find_map(|k| match k {
            ActionKind::Msg(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The severity, if any.
    fn severity(&self) -> Option<Severity> {
        self.kinds().rev().find_map(|k| match k {
            ActionKind::Severity(s) => Some(*s),
            _ => None,
        })
    }

    /// The tags, in order.
    fn tags(&self) -> impl Iterator<Item = &str> {
        self.kinds().filter_map(|k| match k {
            ActionKind::Tag(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The transformations (`t:`) in order, `none` included (it clears those before it).
    fn transformations(&self) -> impl Iterator<Item = &str> {
        self.kinds().filter_map(|k| match k {
            ActionKind::Transformation(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The `setvar` actions, in order.
    fn setvars(&self) -> impl Iterator<Item = &SetVar> {
        self.kinds().filter_map(|k| match k {
            ActionKind::SetVar(s) => Some(s),
            _ => None,
        })
    }

    /// The `ctl` actions, in order.
    fn ctls(&self) -> impl Iterator<Item = &Ctl> {
        self.kinds().filter_map(|k| match k {
            ActionKind::Ctl(c) => Some(c),
            _ => None,
        })
    }

    /// Whether the list has the `chain` action.
    fn has_chain(&self) -> bool {
        self.kinds().any(|k| matches!(k, ActionKind::Chain))
    }
}

impl ActionList for [Action] {
    fn actions(&self) -> &[Action] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variable::Selector;

    fn kinds(text: &str) -> Vec<ActionKind> {
        parse_list(text)
            .unwrap()
            .into_iter()
            .map(|a| a.kind)
            .collect()
    }

    #[test]
    fn tables_are_sorted() {
        for t in [ACTIONS, TRANSFORMATIONS, CTL_OPTIONS] {
            assert!(t.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn common_actions() {
        assert_eq!(
            kinds(
                "id:942100,phase:request,t:none,t:urlDecodeUni,block,capture,severity:'CRITICAL'"
            ),
            vec![
                ActionKind::Id(942100),
                ActionKind::Phase(Phase::RequestBody),
                ActionKind::Transformation("none".into()),
                ActionKind::Transformation("urldecodeuni".into()),
                ActionKind::Block,
                ActionKind::Capture,
                ActionKind::Severity(Severity::Critical),
            ]
        );
    }

    #[test]
    fn quoted_values_keep_commas_and_unescape_quotes() {
        let a = parse_list(r"msg:'a, b \'c\' d\x',  tag : 'x' ,logdata:%{TX.0}").unwrap();
        assert_eq!(a[0].value.as_deref(), Some(r"a, b 'c' d\x"));
        assert_eq!(a[1].name, "tag");
        assert_eq!(a[1].value.as_deref(), Some("x"));
        assert_eq!(a[2].kind, ActionKind::LogData("%{TX.0}".into()));
    }

    #[test]
    fn setvar_forms() {
        let sv = |text: &str| parse_setvar(text).unwrap();
        let s = sv("tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}");
        assert_eq!(
            (
                s.collection.as_str(),
                s.name.as_str(),
                s.op,
                s.value.as_str()
            ),
            (
                "TX",
                "inbound_anomaly_score_pl1",
                SetVarOp::Add,
                "%{tx.critical_anomaly_score}"
            )
        );
        assert_eq!(sv("ip.x=-5").op, SetVarOp::Sub);
        assert_eq!(sv("!tx.x").op, SetVarOp::Delete);
        let s = sv("tx.flag");
        assert_eq!((s.op, s.value.as_str()), (SetVarOp::Set, "1"));
        let s = sv("tx.a=b=c");
        assert_eq!((s.name.as_str(), s.value.as_str()), ("a", "b=c"));
        let s = sv("TX.%{rule.id}-x=");
        assert_eq!((s.name.as_str(), s.value.as_str()), ("%{rule.id}-x", ""));
        for bad in ["x", "env.x=1", "tx.=1", "!tx.x=1", ""] {
            assert!(parse_setvar(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ctl_forms() {
        assert_eq!(
            parse_ctl("ruleEngine=DetectionOnly").unwrap(),
            Ctl::RuleEngine(EngineMode::DetectionOnly)
        );
        assert_eq!(
            parse_ctl("ruleRemoveById=920100 920200-920299").unwrap(),
            Ctl::RuleRemoveById(vec![
                IdRange::single(920100),
                IdRange {
                    start: 920200,
                    end: 920299
                }
            ])
        );
        assert_eq!(
            parse_ctl("ruleRemoveTargetByTag=OWASP_CRS;REQUEST_COOKIES:/^__utm/").unwrap(),
            Ctl::RuleRemoveTargetByTag {
                tag: "OWASP_CRS".into(),
                targets: vec![Variable {
                    negated: false,
                    count: false,
                    collection: "REQUEST_COOKIES".into(),
                    selector: Some(Selector::Regex("^__utm".into())),
                }],
            }
        );
        assert_eq!(
            parse_ctl("requestBodyProcessor=json").unwrap(),
            Ctl::RequestBodyProcessor("JSON".into())
        );
        assert_eq!(
            parse_ctl("forceRequestBodyVariable=On").unwrap(),
            Ctl::ForceRequestBodyVariable(true)
        );
        for bad in [
            "nope=1",
            "ruleEngine=maybe",
            "ruleRemoveById=abc",
            "ruleRemoveTargetById=1",
            "x",
        ] {
            assert!(parse_ctl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects() {
        for bad in [
            "id:1,,pass",
            "id:1,",
            ",id:1",
            "msg:'unterminated",
            "msg:'a'b",
            "nope",
            "id:abc",
            "id:0",
            "phase:6",
            "pass:1",
            "t:nope",
            "t",
            "severity:9",
            "skip:0",
            "status:42",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn helpers() {
        let a = parse_list(
            "id:5,phase:2,t:none,t:lowercase,tag:'a',tag:'b',chain,msg:'m',setvar:tx.x=1",
        )
        .unwrap();
        assert_eq!(a.id(), Some(5));
        assert_eq!(a.phase(), Some(Phase::RequestBody));
        assert_eq!(
            a.transformations().collect::<Vec<_>>(),
            ["none", "lowercase"]
        );
        assert_eq!(a.tags().collect::<Vec<_>>(), ["a", "b"]);
        assert!(a.has_chain());
        assert_eq!(a.msg(), Some("m"));
        assert_eq!(a.setvars().count(), 1);
    }
}
