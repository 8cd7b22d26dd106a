//! The format field language: `<target> = <source> | module | module(args)`.
//!
//! Hand-written because the language is ours (no crate parses it); it is small and fuzzed.

use std::fmt;

use regex::Regex;

use crate::ca::Attribute;

/// Where a field was defined, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    /// The key as written (`formatFields.4`, `handler.1.formatFields.4`, …).
    pub key: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Which certificates a target writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The common context: every certificate that lacks the attribute.
    Common,
    /// One certificate request, 0-based in token-procedure order.
    Request(usize),
}

/// A target location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub scope: Scope,
    pub attribute: Attribute,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::Common => write!(f, "ast.valuetarget.{}.value", self.attribute),
            Scope::Request(i) => write!(f, "certrequests:{i}:{}.value", self.attribute),
        }
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Header(String),
    Literal(String),
    /// `cert:subject.<attr>` of the caller's verified client certificate.
    CertSubject(Attribute),
    /// `cert:san.<type>` of the caller's verified client certificate.
    CertSan(Attribute),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Header(h) => write!(f, "header `{h}`"),
            Source::Literal(l) => write!(f, "\"{l}\""),
            Source::CertSubject(a) => write!(f, "cert:subject.{a}"),
            Source::CertSan(a) => write!(f, "cert:san.{a}"),
        }
    }
}

impl Source {
    /// The source as written in a format file (the inverse of the parser).
    pub fn syntax(&self) -> String {
        match self {
            Source::Header(h) => h.clone(),
            Source::Literal(l) => quote(l),
            Source::CertSubject(a) => format!("cert:subject.{a}"),
            Source::CertSan(a) => format!("cert:san.{a}"),
        }
    }
}

/// `"text"` with each `"` written `\"`; every other character, backslashes included, as is. A text
/// cannot end in a backslash (it would escape the closing quote).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// Modifiers and verifiers, applied left to right.
#[derive(Debug, Clone)]
pub enum Module {
    Trim,
    Lower,
    Upper,
    Replace(Regex, String),
    Truncate(usize),
    Default(String),
    Required,
    Match(Regex),
    MaxLen(usize),
    MinLen(usize),
    OneOf(Vec<String>),
    Email,
    Country,
}

impl Module {
    /// How the module is written, for `config check` and error messages.
    pub fn describe(&self) -> String {
        match self {
            Module::Trim => "trim".into(),
            Module::Lower => "lower".into(),
            Module::Upper => "upper".into(),
            Module::Replace(r, w) => format!("replace({},{})", quote(r.as_str()), quote(w)),
            Module::Truncate(n) => format!("truncate({n})"),
            Module::Default(d) => format!("default({})", quote(d)),
            Module::Required => "required".into(),
            Module::Match(r) => format!("match({})", quote(unanchor(r.as_str()))),
            Module::MaxLen(n) => format!("maxlen({n})"),
            Module::MinLen(n) => format!("minlen({n})"),
            Module::OneOf(v) => format!(
                "oneof({})",
                v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(",")
            ),
            Module::Email => "email".into(),
            Module::Country => "country".into(),
        }
    }
}

fn unanchor(s: &str) -> &str {
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// One format field: `formatFields.<index> = <target> = <source> | modules`.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub index: u32,
    pub target: Target,
    /// `None`: the field is disabled (an empty source).
    pub source: Option<Source>,
    pub modules: Vec<Module>,
    pub origin: Origin,
}

/// Parses a target such as `ast.valuetarget.commonname.value`, `commoncontext:surname.value`
/// or `certrequests:1:rfc822name.value`.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let s = s.trim();
    let attribute = |name: &str| {
        Attribute::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Attribute::ALL.iter().map(|a| a.name()).collect();
            format!(
                "unknown attribute `{name}`{}; expected one of {}",
                did_you_mean(name, &names),
                names.join(", ")
            )
        })
    };
    if let Some(rest) = s
        .strip_prefix("ast.valuetarget.")
        .and_then(|r| r.strip_suffix(".value"))
    {
        return Ok(Target {
            scope: Scope::Common,
            attribute: attribute(rest)?,
        });
    }
    if let Some(rest) = s
        .strip_prefix("commoncontext:")
        .and_then(|r| r.strip_suffix(".value"))
    {
        return Ok(Target {
            scope: Scope::Common,
            attribute: attribute(rest)?,
        });
    }
    if let Some(rest) = s
        .strip_prefix("certrequests:")
        .and_then(|r| r.strip_suffix(".value"))
        && let Some((index, name)) = rest.split_once(':')
    {
        let index: usize = index
            .parse()
            .map_err(|_| format!("`{index}` is not a certificate request index; write 0, 1, … (token-procedure order)"))?;
        return Ok(Target {
            scope: Scope::Request(index),
            attribute: attribute(name)?,
        });
    }
    Err(format!(
        "`{s}` is not a target; write ast.valuetarget.<attribute>.value, commoncontext:<attribute>.value \
         or certrequests:<index>:<attribute>.value"
    ))
}

/// Parses the value of a `formatFields.<N>` key: `<target> = <source expression>`.
pub fn parse_field(index: u32, value: &str, origin: Origin) -> Result<FieldSpec, String> {
    let (target, expr) = match value.split_once('=') {
        Some((t, e)) => (t, e),
        None => (value, ""),
    };
    let target = parse_target(target)?;
    let (source, modules) = parse_expression(expr)?;
    Ok(FieldSpec {
        index,
        target,
        source,
        modules,
        origin,
    })
}

/// Parses `<source> | module | module(args)`; an empty expression disables the field.
pub fn parse_expression(expr: &str) -> Result<(Option<Source>, Vec<Module>), String> {
    let mut lexer = Lexer {
        chars: expr.chars().collect(),
        pos: 0,
    };
    lexer.skip_ws();
    if lexer.at_end() {
        return Ok((None, Vec::new()));
    }
    let source = lexer.source()?;
    let mut modules = Vec::new();
    loop {
        lexer.skip_ws();
        if lexer.at_end() {
            break;
        }
        if !lexer.eat('|') {
            return Err(format!("expected `|` before `{}`", lexer.rest()));
        }
        lexer.skip_ws();
        modules.push(lexer.module()?);
    }
    Ok((Some(source), modules))
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn rest(&self) -> String {
        self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .collect()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn word(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
    /// A double-quoted string. `\"` is a quote; every other backslash stays as written, so
    /// regular expressions keep their escapes (the properties reader already removed one level).
    fn string(&mut self) -> Result<String, String> {
        if !self.eat('"') {
            return Err(format!("expected a quoted string at `{}`", self.rest()));
        }
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string: missing closing `\"`".into()),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') if self.chars.get(self.pos + 1) == Some(&'"') => {
                    out.push('"');
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
    fn source(&mut self) -> Result<Source, String> {
        if self.peek() == Some('"') {
            return Ok(Source::Literal(self.string()?));
        }
        let word = self.word();
        if word.is_empty() {
            return Err(format!(
                "expected a header name, a \"literal\" or cert:… at `{}`",
                self.rest()
            ));
        }
        if let Some(attr) = word.strip_prefix("cert:subject.") {
            let a = Attribute::from_name(attr)
                .filter(|a| !a.is_san())
                .ok_or_else(|| format!("`{attr}` is not a subject attribute for cert:subject"))?;
            return Ok(Source::CertSubject(a));
        }
        if let Some(attr) = word.strip_prefix("cert:san.") {
            let a = Attribute::from_name(attr)
                .filter(|a| a.is_san())
                .ok_or_else(|| {
                    format!(
                        "`{attr}` is not a SAN type for cert:san (rfc822name, dnsname, upn, uri)"
                    )
                })?;
            return Ok(Source::CertSan(a));
        }
        if word.starts_with("cert:") {
            return Err(format!(
                "`{word}`: write cert:subject.<attribute> or cert:san.<type>"
            ));
        }
        if !word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("`{word}` is not a valid header name"));
        }
        Ok(Source::Header(word.to_ascii_lowercase()))
    }
    fn args(&mut self) -> Result<Vec<Arg>, String> {
        let mut args = Vec::new();
        self.skip_ws();
        if !self.eat('(') {
            return Ok(args);
        }
        loop {
            self.skip_ws();
            if self.eat(')') {
                return Ok(args);
            }
            if !args.is_empty() && !self.eat(',') {
                return Err(format!("expected `,` or `)` at `{}`", self.rest()));
            }
            self.skip_ws();
            if self.peek() == Some('"') {
                args.push(Arg::Str(self.string()?));
            } else {
                let w = self.word();
                let n = w
                    .parse::<usize>()
                    .map_err(|_| format!("expected a number or a \"string\", found `{w}`"))?;
                args.push(Arg::Num(n));
            }
        }
    }
    fn module(&mut self) -> Result<Module, String> {
        let name = self.word();
        let args = self.args()?;
        let n = |args: &[Arg]| match args {
            [Arg::Num(n)] => Ok(*n),
            _ => Err(format!("`{name}` takes one number, e.g. {name}(64)")),
        };
        let s = |args: &[Arg]| match args {
            [Arg::Str(s)] => Ok(s.clone()),
            _ => Err(format!("`{name}` takes one \"string\"")),
        };
        let none = |args: &[Arg], m: Module| {
            if args.is_empty() {
                Ok(m)
            } else {
                Err(format!("`{name}` takes no arguments"))
            }
        };
        let regex = |r: &str| {
            Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                format!("bad regular expression in `{name}`: {}; remember that the file's own escaping comes first, so write \\\\. for a literal dot", regex_error(&e))
            })
        };
        match name.as_str() {
            "trim" => none(&args, Module::Trim),
            "lower" => none(&args, Module::Lower),
            "upper" => none(&args, Module::Upper),
            "required" => none(&args, Module::Required),
            "email" => none(&args, Module::Email),
            "country" => none(&args, Module::Country),
            "truncate" => Ok(Module::Truncate(n(&args)?)),
            "maxlen" => Ok(Module::MaxLen(n(&args)?)),
            "minlen" => Ok(Module::MinLen(n(&args)?)),
            "default" => Ok(Module::Default(s(&args)?)),
            "match" => Ok(Module::Match(regex(&s(&args)?)?)),
            "replace" => match args.as_slice() {
                [Arg::Str(r), Arg::Str(w)] => Ok(Module::Replace(
                    Regex::new(r).map_err(|e| {
                        format!("bad regular expression in `replace`: {}", regex_error(&e))
                    })?,
                    w.clone(),
                )),
                _ => Err("`replace` takes two strings: replace(\"regex\",\"with\")".into()),
            },
            "oneof" => {
                let mut values = Vec::new();
                for a in args {
                    match a {
                        Arg::Str(s) => values.push(s),
                        Arg::Num(_) => return Err("`oneof` takes \"strings\"".into()),
                    }
                }
                if values.is_empty() {
                    return Err("`oneof` needs at least one \"value\"".into());
                }
                Ok(Module::OneOf(values))
            }
            "" => Err(format!(
                "expected a module name after `|` at `{}`",
                self.rest()
            )),
            other => Err(format!(
                "unknown module `{other}`{}; modules are trim, lower, upper, replace, truncate, default, required, \
                 match, maxlen, minlen, oneof, email, country",
                did_you_mean(other, MODULE_NAMES)
            )),
        }
    }
}

const MODULE_NAMES: &[&str] = &[
    "trim", "lower", "upper", "replace", "truncate", "default", "required", "match", "maxlen",
    "minlen", "oneof", "email", "country",
];

enum Arg {
    Str(String),
    Num(usize),
}

/// A regex error on one line (the regex crate's message spans several, with a caret).
pub fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// ` (did you mean `x`?)` when a candidate is within edit distance 2.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| {
            (
                edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        let f = parse_field(4, "ast.valuetarget.countryname.value =", Origin::default()).unwrap();
        assert!(f.source.is_none());
        let f = parse_field(
            5,
            "ast.valuetarget.localityname.value = myheader",
            Origin::default(),
        )
        .unwrap();
        assert_eq!(f.source, Some(Source::Header("myheader".into())));
        assert_eq!(f.target.attribute, Attribute::LocalityName);
    }

    #[test]
    fn modules_and_regex_escapes() {
        let f = parse_field(
            9,
            r#"ast.valuetarget.rfc822name.value = email | trim | lower | match("^[^@\s]+@example\.com$") | maxlen(128)"#,
            Origin::default(),
        )
        .unwrap();
        assert_eq!(f.modules.len(), 4);
        match &f.modules[2] {
            Module::Match(r) => {
                assert!(r.is_match("a@example.com"));
                assert!(!r.is_match("a@exampleXcom"));
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("certrequests:1:upn.value").unwrap().scope,
            Scope::Request(1)
        );
        assert_eq!(
            parse_target("commoncontext:surname.value").unwrap().scope,
            Scope::Common
        );
        assert!(
            parse_target("ast.valuetarget.nosuch.value")
                .unwrap_err()
                .contains("unknown attribute")
        );
    }

    #[test]
    fn errors_are_clear() {
        let e = parse_expression("email | lowr").unwrap_err();
        assert!(e.contains("did you mean `lower`"), "{e}");
        assert!(
            parse_expression("email | match(\"[\")")
                .unwrap_err()
                .contains("bad regular expression")
        );
        assert!(
            parse_expression("\"open")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(parse_expression("cert:subject.rfc822name").is_err());
        let (s, m) = parse_expression("\"lit \\\"q\\\"\" | default(\"x\")").unwrap();
        assert_eq!(s, Some(Source::Literal("lit \"q\"".into())));
        assert_eq!(m.len(), 1);
    }
}

/// Property tests: the parser never panics, and printing a parsed expression and parsing it
/// again gives the same expression. Failing seeds are kept in proptest-regressions/.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;

    fn print(source: &Option<Source>, modules: &[Module]) -> String {
        let mut out = source.as_ref().map(Source::syntax).unwrap_or_default();
        for m in modules {
            out.push_str(" | ");
            out.push_str(&m.describe());
        }
        out
    }

    /// Text for a quoted string: anything but a trailing backslash or a backslash before `"`.
    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 äé✓@.,;:|()=\"'\\\\-]{0,12}".prop_map(|s| {
            let s = s.replace("\\\"", "\"");
            if s.ends_with('\\') {
                format!("{s}x")
            } else {
                s
            }
        })
    }

    fn regex_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[a-z]+".to_string()),
            Just("^[^@\\s]+@example\\.com$".to_string()),
            Just("a|b".to_string()),
            Just("\\d{2,4}".to_string()),
            Just("\\\"x\\\"".to_string())
        ]
    }

    fn quoted(s: &str) -> String {
        quote(s)
    }

    fn source() -> impl Strategy<Value = String> {
        let attrs: Vec<&'static str> = Attribute::ALL
            .iter()
            .filter(|a| !a.is_san())
            .map(|a| a.name())
            .collect();
        let sans: Vec<&'static str> = Attribute::ALL
            .iter()
            .filter(|a| a.is_san())
            .map(|a| a.name())
            .collect();
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_-]{0,15}",
            text().prop_map(|t| quoted(&t)),
            proptest::sample::select(attrs).prop_map(|a| format!("cert:subject.{a}")),
            proptest::sample::select(sans).prop_map(|a| format!("cert:san.{a}")),
        ]
    }

    fn module() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "trim", "lower", "upper", "required", "email", "country"
            ])
            .prop_map(str::to_string),
            (
                proptest::sample::select(vec!["truncate", "maxlen", "minlen"]),
                0usize..500
            )
                .prop_map(|(m, n)| format!("{m}( {n} )")),
            text().prop_map(|t| format!("default({})", quoted(&t))),
            regex_text().prop_map(|r| format!("match({})", quoted(&r))),
            (regex_text(), text()).prop_map(|(r, w)| format!(
                "replace({}, {})",
                quoted(&r),
                quoted(&w)
            )),
            proptest::collection::vec(text(), 1..4).prop_map(|v| format!(
                "oneof({})",
                v.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(" ,")
            )),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = parse_expression(&s);
            let _ = parse_field(1, &s, Origin::default());
            let _ = parse_target(&s);
        }

        #[test]
        fn never_panics_on_near_misses(s in "[a-z\"|() ,.:=\\\\0-9]{0,40}") {
            let _ = parse_expression(&s);
            let _ = parse_field(1, &format!("ast.valuetarget.title.value = {s}"), Origin::default());
        }

        #[test]
        fn print_parse_round_trip(source in source(), modules in proptest::collection::vec(module(), 0..5)) {
            let written = std::iter::once(source).chain(modules).collect::<Vec<_>>().join(" | ");
            let (s1, m1) = parse_expression(&written).map_err(|e| TestCaseError::fail(format!("{written}: {e}")))?;
            let printed = print(&s1, &m1);
            let (s2, m2) = parse_expression(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(&s1, &s2);
            prop_assert_eq!(print(&s2, &m2), printed);
        }

        #[test]
        fn targets_round_trip(i in 0usize..1000, a in proptest::sample::select(Attribute::ALL.to_vec()), common in any::<bool>()) {
            let t = Target { scope: if common { Scope::Common } else { Scope::Request(i) }, attribute: a };
            prop_assert_eq!(parse_target(&t.to_string()).unwrap(), t);
        }
    }
}
