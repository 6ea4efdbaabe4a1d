//! The directive AST: rules, actions, markers, rule updates and engine settings.
//!
//! Directive names are case-insensitive. Each directive is checked for its number of arguments
//! and its values are parsed into types ([`Setting`] for the engine configuration directives);
//! an unknown directive is an error, never a skipped line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::action::{self, Action, ActionList};
use crate::error::ErrorKind;
use crate::lexer::{Arg, RawDirective};
use crate::operator::{self, Operator};
use crate::variable::{self, Variable};

/// Where a directive starts: its file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file (shared by every directive of that file).
    pub file: Arc<Path>,
    /// The 1-based line where the directive starts.
    pub line: u32,
}

impl Location {
    /// Resolves a path written in this directive (a data file of `@pmFromFile`, a
    /// `SecUnicodeMapFile`, ...) the way ModSecurity does: relative to the directory of the file
    /// the directive is in; absolute paths are returned as they are.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        self.file
            .parent()
            .map_or_else(|| p.to_path_buf(), |dir| dir.join(p))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One directive of a configuration, includes already expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `SecRule VARIABLES "OPERATOR" "ACTIONS"` (with its chained rules).
    Rule(SecRule),
    /// `SecAction "ACTIONS"`: a rule that always matches.
    Action(SecAction),
    /// `SecDefaultAction "ACTIONS"`: actions inherited by the rules that follow, per phase.
    DefaultAction(SecDefaultAction),
    /// `SecMarker NAME`: a target for `skipAfter`.
    Marker(SecMarker),
    /// `SecRuleRemoveById`, `SecRuleRemoveByTag`, `SecRuleRemoveByMsg`.
    RuleRemove(RuleRemove),
    /// `SecRuleUpdateTargetById`, `SecRuleUpdateTargetByTag`, `SecRuleUpdateTargetByMsg`.
    RuleUpdateTarget(RuleUpdateTarget),
    /// `SecRuleUpdateActionById ID "ACTIONS"`.
    RuleUpdateAction(RuleUpdateAction),
    /// An engine setting (`SecRuleEngine On`, `SecRequestBodyLimit 13107200`, ...).
    Setting(SettingDirective),
}

impl Directive {
    /// Where the directive starts.
    pub fn location(&self) -> &Location {
        match self {
            Self::Rule(d) => &d.location,
            Self::Action(d) => &d.location,
            Self::DefaultAction(d) => &d.location,
            Self::Marker(d) => &d.location,
            Self::RuleRemove(d) => &d.location,
            Self::RuleUpdateTarget(d) => &d.location,
            Self::RuleUpdateAction(d) => &d.location,
            Self::Setting(d) => &d.location,
        }
    }
}

/// A `SecRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecRule {
    /// What to inspect, in order (exclusions `!X:y` included).
    pub variables: Vec<Variable>,
    /// How to test it.
    pub operator: Operator,
    /// What to do, in order as written (`chain` included). Empty when the rule has no action
    /// argument.
    pub actions: Vec<Action>,
    /// The next link of the chain, when `actions` has `chain`: the rule that must also match.
    /// ModSecurity takes the rule's id, phase and disruptive action from the chain's first rule.
    pub chain: Option<Box<SecRule>>,
    /// Where the rule starts.
    pub location: Location,
}

impl SecRule {
    /// The rule id (`id:` action), if any. Chained rules have none.
    pub fn id(&self) -> Option<u64> {
        self.actions.id()
    }

    /// The phase (`phase:` action), if any.
    pub fn phase(&self) -> Option<action::Phase> {
        self.actions.phase()
    }

    /// The rules of the chain after this one, in order.
    pub fn chained(&self) -> impl Iterator<Item = &SecRule> {
        std::iter::successors(self.chain.as_deref(), |r| r.chain.as_deref())
    }
}

/// A `SecAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecAction {
    /// What to do.
    pub actions: Vec<Action>,
    /// Where the directive starts.
    pub location: Location,
}

impl SecAction {
    /// The rule id, if any.
    pub fn id(&self) -> Option<u64> {
        self.actions.id()
    }

    /// The phase, if any.
    pub fn phase(&self) -> Option<action::Phase> {
        self.actions.phase()
    }
}

/// A `SecDefaultAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecDefaultAction {
    /// The default actions (they include a `phase`).
    pub actions: Vec<Action>,
    /// Where the directive starts.
    pub location: Location,
}

/// A `SecMarker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecMarker {
    /// The marker name, as written.
    pub name: String,
    /// Where the directive starts.
    pub location: Location,
}

/// A rule id or an inclusive range of ids (`942100`, `942100-942199`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdRange {
    /// The first id.
    pub start: u64,
    /// The last id (equal to `start` for a single id).
    pub end: u64,
}

impl IdRange {
    /// A range holding one id.
    pub fn single(id: u64) -> Self {
        Self { start: id, end: id }
    }

    /// Whether `id` is in the range.
    pub fn contains(&self, id: u64) -> bool {
        (self.start..=self.end).contains(&id)
    }

    /// Parses `N` or `N-M` (with `N <= M`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (start, end) = match text.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let id = text.parse().ok()?;
                (id, id)
            }
        };
        (start <= end).then_some(Self { start, end })
    }

    /// Parses a list of ids and ranges; each item may itself hold several, separated by blanks
    /// or commas. `None` if any is invalid or the list is empty.
    pub fn parse_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<Vec<Self>> {
        let out = items
            .into_iter()
            .flat_map(|item| item.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect::<Option<Vec<_>>>()?;
        (!out.is_empty()).then_some(out)
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Which rules a `SecRuleRemove*` / `SecRuleUpdateTarget*` directive is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSelector {
    /// By ids and id ranges.
    Ids(Vec<IdRange>),
    /// By tag (ModSecurity matches it as a regular expression).
    Tag(String),
    /// By message (ModSecurity matches it as a regular expression).
    Msg(String),
}

/// `SecRuleRemoveById 1 2 10-20`, `SecRuleRemoveByTag TAG`, `SecRuleRemoveByMsg MSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRemove {
    /// The rules to remove.
    pub rules: RuleSelector,
    /// Where the directive starts.
    pub location: Location,
}

/// `SecRuleUpdateTargetById 942100 "!ARGS:foo"` and its `ByTag` / `ByMsg` forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleUpdateTarget {
    /// The rules to update.
    pub rules: RuleSelector,
    /// The variables to add (or, when negated, to exclude).
    pub targets: Vec<Variable>,
    /// The optional third argument: the variables `targets` replace (ModSecurity v2 form).
    pub replaced: Vec<Variable>,
    /// Where the directive starts.
    pub location: Location,
}

/// `SecRuleUpdateActionById 942100 "ACTIONS"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleUpdateAction {
    /// The rule to update.
    pub id: u64,
    /// The actions that replace (or add to) the rule's own.
    pub actions: Vec<Action>,
    /// Where the directive starts.
    pub location: Location,
}

/// An engine setting and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDirective {
    /// The setting.
    pub setting: Setting,
    /// Where the directive starts.
    pub location: Location,
}

/// `On`, `Off` or `DetectionOnly` (`SecRuleEngine`, `ctl:ruleEngine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineMode {
    /// Rules run and disruptive actions apply.
    On,
    /// Rules do not run.
    Off,
    /// Rules run, disruptive actions are only logged.
    DetectionOnly,
}

impl EngineMode {
    /// Parses `On`, `Off`, `DetectionOnly` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            "detectiononly" => Some(Self::DetectionOnly),
            _ => None,
        }
    }
}

/// `On`, `Off` or `RelevantOnly` (`SecAuditEngine`, `ctl:auditEngine`, `SecUploadKeepFiles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditEngine {
    /// Everything.
    On,
    /// Nothing.
    Off,
    /// Only relevant transactions (warnings, errors, `SecAuditLogRelevantStatus`).
    RelevantOnly,
}

impl AuditEngine {
    /// Parses `On`, `Off`, `RelevantOnly` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            "relevantonly" => Some(Self::RelevantOnly),
            _ => None,
        }
    }
}

/// What to do with a body over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyLimitAction {
    /// Reject the transaction.
    Reject,
    /// Inspect the part within the limit and let the rest through.
    ProcessPartial,
}

/// An engine configuration directive with its parsed value. Paths are kept as written;
/// resolve relative ones with [`Location::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// `SecRuleEngine On|Off|DetectionOnly`.
    RuleEngine(EngineMode),
    /// `SecRequestBodyAccess On|Off`.
    RequestBodyAccess(bool),
    /// `SecResponseBodyAccess On|Off`.
    ResponseBodyAccess(bool),
    /// `SecRequestBodyLimit BYTES`.
    RequestBodyLimit(u64),
    /// `SecRequestBodyNoFilesLimit BYTES`.
    RequestBodyNoFilesLimit(u64),
    /// `SecRequestBodyInMemoryLimit BYTES`.
    RequestBodyInMemoryLimit(u64),
    /// `SecRequestBodyLimitAction Reject|ProcessPartial`.
    RequestBodyLimitAction(BodyLimitAction),
    /// `SecRequestBodyJsonDepthLimit N`.
    RequestBodyJsonDepthLimit(u64),
    /// `SecArgumentsLimit N`.
    ArgumentsLimit(u64),
    /// `SecResponseBodyLimit BYTES`.
    ResponseBodyLimit(u64),
    /// `SecResponseBodyLimitAction Reject|ProcessPartial`.
    ResponseBodyLimitAction(BodyLimitAction),
    /// `SecResponseBodyMimeType TYPE...` (adds to the list).
    ResponseBodyMimeType(Vec<String>),
    /// `SecResponseBodyMimeTypesClear`.
    ResponseBodyMimeTypesClear,
    /// `SecComponentSignature "text"`.
    ComponentSignature(String),
    /// `SecServerSignature "text"`.
    ServerSignature(String),
    /// `SecWebAppId NAME`.
    WebAppId(String),
    /// `SecCollectionTimeout SECONDS`.
    CollectionTimeout(u64),
    /// `SecArgumentSeparator CHAR`.
    ArgumentSeparator(String),
    /// `SecCookieFormat 0|1`.
    CookieFormat(u8),
    /// `SecCookieV0Separator CHAR`.
    CookieV0Separator(String),
    /// `SecUnicodeMapFile PATH CODEPAGE`.
    UnicodeMapFile {
        /// The mapping file, as written.
        path: String,
        /// The code page to use from it (e.g. 20127).
        code_page: u32,
    },
    /// `SecPcreMatchLimit N`.
    PcreMatchLimit(u64),
    /// `SecPcreMatchLimitRecursion N`.
    PcreMatchLimitRecursion(u64),
    /// `SecTmpDir PATH`.
    TmpDir(String),
    /// `SecDataDir PATH`.
    DataDir(String),
    /// `SecUploadDir PATH`.
    UploadDir(String),
    /// `SecUploadKeepFiles On|Off|RelevantOnly`.
    UploadKeepFiles(AuditEngine),
    /// `SecUploadFileMode OCTAL`.
    UploadFileMode(u32),
    /// `SecUploadFileLimit N`.
    UploadFileLimit(u64),
    /// `SecTmpSaveUploadedFiles On|Off`.
    TmpSaveUploadedFiles(bool),
    /// `SecXmlExternalEntity On|Off`.
    XmlExternalEntity(bool),
    /// `SecAuditEngine On|Off|RelevantOnly`.
    AuditEngine(AuditEngine),
    /// `SecAuditLog PATH` (or `|program`).
    AuditLog(String),
    /// `SecAuditLog2 PATH`.
    AuditLog2(String),
    /// `SecAuditLogParts ABCDEFHIJKZ`.
    AuditLogParts(String),
    /// `SecAuditLogRelevantStatus REGEX`.
    AuditLogRelevantStatus(String),
    /// `SecAuditLogStorageDir PATH`.
    AuditLogStorageDir(String),
    /// `SecAuditLogType Serial|Concurrent|HTTPS` (as written).
    AuditLogType(String),
    /// `SecAuditLogFormat JSON|Native` (as written).
    AuditLogFormat(String),
    /// `SecAuditLogDirMode OCTAL` (or `default`, kept as `None`).
    AuditLogDirMode(Option<u32>),
    /// `SecAuditLogFileMode OCTAL` (or `default`, kept as `None`).
    AuditLogFileMode(Option<u32>),
    /// `SecDebugLog PATH`.
    DebugLog(String),
    /// `SecDebugLogLevel 0-9`.
    DebugLogLevel(u8),
    /// `SecStatusEngine On|Off`.
    StatusEngine(bool),
    /// `SecGeoLookupDb PATH`.
    GeoLookupDb(String),
}

/// The outcome of interpreting one raw directive.
pub(crate) enum Parsed {
    /// A directive for the AST.
    Directive(Directive),
    /// `Include` (`optional`: `IncludeOptional`) with its argument.
    Include { path: String, optional: bool },
}

/// Interprets one raw directive.
pub(crate) fn interpret(raw: RawDirective, location: Location) -> Result<Parsed, ErrorKind> {
    let RawDirective { name, args, .. } = raw;
    let lower = name.to_ascii_lowercase();
    let d = Interp { args, location };
    let setting = |s: Setting| -> Result<Parsed, ErrorKind> { Ok(d.setting(s)) };
    match lower.as_str() {
        "include" | "includeoptional" => {
            let path = d.one("Include")?;
            Ok(Parsed::Include {
                path,
                optional: lower == "includeoptional",
            })
        }
        "secrule" => d.rule(),
        "secaction" => {
            let actions = action::parse_list(&d.one("SecAction")?)?;
            Ok(Parsed::Directive(Directive::Action(SecAction {
                actions,
                location: d.location,
            })))
        }
        "secdefaultaction" => {
            let actions = action::parse_list(&d.one("SecDefaultAction")?)?;
            if actions.phase().is_none() {
                return Err(ErrorKind::InvalidValue {
                    directive: "SecDefaultAction",
                    value: d.args.first().map(|a| a.text.clone()).unwrap_or_default(),
                    expected: "an action list with a phase",
                });
            }
            Ok(Parsed::Directive(Directive::DefaultAction(
                SecDefaultAction {
                    actions,
                    location: d.location,
                },
            )))
        }
        "secmarker" => {
            let name = d.one("SecMarker")?;
            if name.trim().is_empty() {
                return Err(d.invalid("SecMarker", &name, "a marker name"));
            }
            Ok(Parsed::Directive(Directive::Marker(SecMarker {
                name,
                location: d.location,
            })))
        }
        "secruleremovebyid" => {
            if d.args.is_empty() {
                return Err(d.count("SecRuleRemoveById", "one or more ids or ranges"));
            }
            let ids =
                IdRange::parse_list(d.args.iter().map(|a| a.text.as_str())).ok_or_else(|| {
                    d.invalid(
                        "SecRuleRemoveById",
                        &d.joined(),
                        "rule ids or ranges such as 942100 or 942100-942199",
                    )
                })?;
            Ok(d.remove(RuleSelector::Ids(ids)))
        }
        "secruleremovebytag" => {
            let tag = d.one("SecRuleRemoveByTag")?;
            Ok(d.remove(RuleSelector::Tag(tag)))
        }
        "secruleremovebymsg" => {
            let msg = d.one("SecRuleRemoveByMsg")?;
            Ok(d.remove(RuleSelector::Msg(msg)))
        }
        "secruleupdatetargetbyid" => {
            let first = d.first_of_update("SecRuleUpdateTargetById")?;
            let ids = IdRange::parse_list(first.split_whitespace()).ok_or_else(|| {
                d.invalid("SecRuleUpdateTargetById", &first, "a rule id or range")
            })?;
            d.update_target(RuleSelector::Ids(ids))
        }
        "secruleupdatetargetbytag" => {
            let tag = d.first_of_update("SecRuleUpdateTargetByTag")?;
            d.update_target(RuleSelector::Tag(tag))
        }
        "secruleupdatetargetbymsg" => {
            let msg = d.first_of_update("SecRuleUpdateTargetByMsg")?;
            d.update_target(RuleSelector::Msg(msg))
        }
        "secruleupdateactionbyid" => {
            let [id, actions] = d.exactly::<2>("SecRuleUpdateActionById", "two arguments")?;
            let id = id
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| d.invalid("SecRuleUpdateActionById", &id, "a rule id"))?;
            let actions = action::parse_list(&actions)?;
            Ok(Parsed::Directive(Directive::RuleUpdateAction(
                RuleUpdateAction {
                    id,
                    actions,
                    location: d.location,
                },
            )))
        }
        "secruleengine" => {
            let v = d.one("SecRuleEngine")?;
            let mode = EngineMode::parse(&v)
                .ok_or_else(|| d.invalid("SecRuleEngine", &v, "On, Off or DetectionOnly"))?;
            setting(Setting::RuleEngine(mode))
        }
        "secrequestbodyaccess" => setting(Setting::RequestBodyAccess(
            d.on_off("SecRequestBodyAccess")?,
        )),
        "secresponsebodyaccess" => setting(Setting::ResponseBodyAccess(
            d.on_off("SecResponseBodyAccess")?,
        )),
        "secrequestbodylimit" => {
            setting(Setting::RequestBodyLimit(d.number("SecRequestBodyLimit")?))
        }
        "secrequestbodynofileslimit" => setting(Setting::RequestBodyNoFilesLimit(
            d.number("SecRequestBodyNoFilesLimit")?,
        )),
        "secrequestbodyinmemorylimit" => setting(Setting::RequestBodyInMemoryLimit(
            d.number("SecRequestBodyInMemoryLimit")?,
        )),
        "secrequestbodylimitaction" => setting(Setting::RequestBodyLimitAction(
            d.limit_action("SecRequestBodyLimitAction")?,
        )),
        "secrequestbodyjsondepthlimit" => setting(Setting::RequestBodyJsonDepthLimit(
            d.number("SecRequestBodyJsonDepthLimit")?,
        )),
        "secargumentslimit" => setting(Setting::ArgumentsLimit(d.number("SecArgumentsLimit")?)),
        "secresponsebodylimit" => setting(Setting::ResponseBodyLimit(
            d.number("SecResponseBodyLimit")?,
        )),
        "secresponsebodylimitaction" => setting(Setting::ResponseBodyLimitAction(
            d.limit_action("SecResponseBodyLimitAction")?,
        )),
        "secresponsebodymimetype" => {
            if d.args.is_empty() {
                return Err(d.count("SecResponseBodyMimeType", "one or more MIME types"));
            }
            let types = d
                .args
                .iter()
                .flat_map(|a| a.text.split_whitespace())
                .map(str::to_owned)
                .collect();
            setting(Setting::ResponseBodyMimeType(types))
        }
        "secresponsebodymimetypesclear" => {
            d.exactly::<0>("SecResponseBodyMimeTypesClear", "no argument")?;
            setting(Setting::ResponseBodyMimeTypesClear)
        }
        "seccomponentsignature" => {
            setting(Setting::ComponentSignature(d.one("SecComponentSignature")?))
        }
        "secserversignature" => setting(Setting::ServerSignature(d.one("SecServerSignature")?)),
        "secwebappid" => setting(Setting::WebAppId(d.one("SecWebAppId")?)),
        "seccollectiontimeout" => setting(Setting::CollectionTimeout(
            d.number("SecCollectionTimeout")?,
        )),
        "secargumentseparator" => {
            let v = d.one("SecArgumentSeparator")?;
            if v.chars().count() != 1 {
                return Err(d.invalid("SecArgumentSeparator", &v, "one character"));
            }
            setting(Setting::ArgumentSeparator(v))
        }
        "seccookieformat" => {
            let v = d.one("SecCookieFormat")?;
            let n = match v.trim() {
                "0" => 0,
                "1" => 1,
                _ => return Err(d.invalid("SecCookieFormat", &v, "0 or 1")),
            };
            setting(Setting::CookieFormat(n))
        }
        "seccookiev0separator" => {
            setting(Setting::CookieV0Separator(d.one("SecCookieV0Separator")?))
        }
        "secunicodemapfile" => {
            let [path, code_page] =
                d.exactly::<2>("SecUnicodeMapFile", "two arguments (file and code page)")?;
            let code_page = code_page
                .trim()
                .parse()
                .map_err(|_| d.invalid("SecUnicodeMapFile", &code_page, "a code page number"))?;
            setting(Setting::UnicodeMapFile { path, code_page })
        }
        "secpcrematchlimit" => setting(Setting::PcreMatchLimit(d.number("SecPcreMatchLimit")?)),
        "secpcrematchlimitrecursion" => setting(Setting::PcreMatchLimitRecursion(
            d.number("SecPcreMatchLimitRecursion")?,
        )),
        "sectmpdir" => setting(Setting::TmpDir(d.one("SecTmpDir")?)),
        "secdatadir" => setting(Setting::DataDir(d.one("SecDataDir")?)),
        "secuploaddir" => setting(Setting::UploadDir(d.one("SecUploadDir")?)),
        "secuploadkeepfiles" => {
            let v = d.one("SecUploadKeepFiles")?;
            let mode = AuditEngine::parse(&v)
                .ok_or_else(|| d.invalid("SecUploadKeepFiles", &v, "On, Off or RelevantOnly"))?;
            setting(Setting::UploadKeepFiles(mode))
        }
        "secuploadfilemode" => setting(Setting::UploadFileMode(
            d.octal("SecUploadFileMode")?.unwrap_or(0o600),
        )),
        "secuploadfilelimit" => setting(Setting::UploadFileLimit(d.number("SecUploadFileLimit")?)),
        "sectmpsaveuploadedfiles" => setting(Setting::TmpSaveUploadedFiles(
            d.on_off("SecTmpSaveUploadedFiles")?,
        )),
        "secxmlexternalentity" => setting(Setting::XmlExternalEntity(
            d.on_off("SecXmlExternalEntity")?,
        )),
        "secauditengine" => {
            let v = d.one("SecAuditEngine")?;
            let mode = AuditEngine::parse(&v)
                .ok_or_else(|| d.invalid("SecAuditEngine", &v, "On, Off or RelevantOnly"))?;
            setting(Setting::AuditEngine(mode))
        }
        "secauditlog" => setting(Setting::AuditLog(d.one("SecAuditLog")?)),
        "secauditlog2" => setting(Setting::AuditLog2(d.one("SecAuditLog2")?)),
        "secauditlogparts" => {
            let v = d.one("SecAuditLogParts")?;
            if v.is_empty() || !v.bytes().all(|b| b"ABCDEFGHIJKZ".contains(&b)) {
                return Err(d.invalid("SecAuditLogParts", &v, "letters from ABCDEFGHIJKZ"));
            }
            setting(Setting::AuditLogParts(v))
        }
        "secauditlogrelevantstatus" => setting(Setting::AuditLogRelevantStatus(
            d.one("SecAuditLogRelevantStatus")?,
        )),
        "secauditlogstoragedir" => {
            setting(Setting::AuditLogStorageDir(d.one("SecAuditLogStorageDir")?))
        }
        "secauditlogtype" => {
            let v = d.one("SecAuditLogType")?;
            if !["serial", "concurrent", "parallel", "https"]
                .contains(&v.to_ascii_lowercase().as_str())
            {
                return Err(d.invalid("SecAuditLogType", &v, "Serial, Concurrent or HTTPS"));
            }
            setting(Setting::AuditLogType(v))
        }
        "secauditlogformat" => {
            let v = d.one("SecAuditLogFormat")?;
            if !["json", "native"].contains(&v.to_ascii_lowercase().as_str()) {
                return Err(d.invalid("SecAuditLogFormat", &v, "JSON or Native"));
            }
            setting(Setting::AuditLogFormat(v))
        }
        "secauditlogdirmode" => setting(Setting::AuditLogDirMode(d.octal("SecAuditLogDirMode")?)),
        "secauditlogfilemode" => {
            setting(Setting::AuditLogFileMode(d.octal("SecAuditLogFileMode")?))
        }
        "secdebuglog" => setting(Setting::DebugLog(d.one("SecDebugLog")?)),
        "secdebugloglevel" => {
            let v = d.one("SecDebugLogLevel")?;
            let n = v
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 9)
                .ok_or_else(|| d.invalid("SecDebugLogLevel", &v, "a level from 0 to 9"))?;
            setting(Setting::DebugLogLevel(n))
        }
        "secstatusengine" => setting(Setting::StatusEngine(d.on_off("SecStatusEngine")?)),
        "secgeolookupdb" => setting(Setting::GeoLookupDb(d.one("SecGeoLookupDb")?)),
        _ => Err(ErrorKind::UnknownDirective(name)),
    }
}

/// A raw directive being interpreted.
struct Interp {
    args: Vec<Arg>,
    location: Location,
}

impl Interp {
    fn count(&self, directive: &'static str, expected: &'static str) -> ErrorKind {
        ErrorKind::ArgumentCount {
            directive,
            expected,
            found: self.args.len(),
        }
    }

    fn invalid(&self, directive: &'static str, value: &str, expected: &'static str) -> ErrorKind {
        ErrorKind::InvalidValue {
            directive,
            value: value.to_owned(),
            expected,
        }
    }

    fn joined(&self) -> String {
        self.args
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn exactly<const N: usize>(
        &self,
        directive: &'static str,
        expected: &'static str,
    ) -> Result<[String; N], ErrorKind> {
        let texts: Vec<String> = self.args.iter().map(|a| a.text.clone()).collect();
        texts
            .try_into()
            .map_err(|_| self.count(directive, expected))
    }

    fn one(&self, directive: &'static str) -> Result<String, ErrorKind> {
        let [v] = self.exactly::<1>(directive, "one argument")?;
        Ok(v)
    }

    fn on_off(&self, directive: &'static str) -> Result<bool, ErrorKind> {
        let v = self.one(directive)?;
        match v.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(self.invalid(directive, &v, "On or Off")),
        }
    }

    fn number(&self, directive: &'static str) -> Result<u64, ErrorKind> {
        let v = self.one(directive)?;
        v.trim()
            .parse()
            .map_err(|_| self.invalid(directive, &v, "a non-negative integer"))
    }

    /// An octal file mode, or `None` for `default`.
    fn octal(&self, directive: &'static str) -> Result<Option<u32>, ErrorKind> {
        let v = self.one(directive)?;
        if v.trim().eq_ignore_ascii_case("default") {
            return Ok(None);
        }
        u32::from_str_radix(v.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Some)
            .ok_or_else(|| self.invalid(directive, &v, "an octal file mode such as 0600"))
    }

    fn limit_action(&self, directive: &'static str) -> Result<BodyLimitAction, ErrorKind> {
        let v = self.one(directive)?;
        match v.trim().to_ascii_lowercase().as_str() {
            "reject" => Ok(BodyLimitAction::Reject),
            "processpartial" => Ok(BodyLimitAction::ProcessPartial),
            _ => Err(self.invalid(directive, &v, "Reject or ProcessPartial")),
        }
    }

    fn setting(&self, setting: Setting) -> Parsed {
        Parsed::Directive(Directive::Setting(SettingDirective {
            setting,
            location: self.location.clone(),
        }))
    }

    fn remove(self, rules: RuleSelector) -> Parsed {
        Parsed::Directive(Directive::RuleRemove(RuleRemove {
            rules,
            location: self.location,
        }))
    }

    fn first_of_update(&self, directive: &'static str) -> Result<String, ErrorKind> {
        if !(2..=3).contains(&self.args.len()) {
            return Err(self.count(directive, "two or three arguments"));
        }
        Ok(self
            .args
            .first()
            .map(|a| a.text.clone())
            .unwrap_or_default())
    }

    fn update_target(self, rules: RuleSelector) -> Result<Parsed, ErrorKind> {
        let targets = variable::parse_list(self.args.get(1).map_or("", |a| a.text.as_str()))?;
        let replaced = match self.args.get(2) {
            Some(a) => variable::parse_list(&a.text)?,
            None => Vec::new(),
        };
        Ok(Parsed::Directive(Directive::RuleUpdateTarget(
            RuleUpdateTarget {
                rules,
                targets,
                replaced,
                location: self.location,
            },
        )))
    }

    fn rule(self) -> Result<Parsed, ErrorKind> {
        let mut args = self.args.into_iter();
        let (vars, op, actions) = match (args.next(), args.next(), args.next(), args.next()) {
            (Some(_), None, _, _) => return Err(ErrorKind::MissingOperator),
            (Some(v), Some(o), a, None) => (v, o, a),
            (v, o, a, extra) => {
                let found = [v, o, a, extra].iter().flatten().count() + args.count();
                return Err(ErrorKind::ArgumentCount {
                    directive: "SecRule",
                    expected: "two or three arguments (variables, operator, actions)",
                    found,
                });
            }
        };
        let variables = variable::parse_list(&vars.text)?;
        let operator = operator::parse(&op.text)?;
        let actions = match actions {
            Some(a) => action::parse_list(&a.text)?,
            None => Vec::new(),
        };
        Ok(Parsed::Directive(Directive::Rule(SecRule {
            variables,
            operator,
            actions,
            chain: None,
            location: self.location,
        })))
    }
}
