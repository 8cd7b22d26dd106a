//! The format field language: `<target> = <source> | module | module(args)`.
//!
//! Hand-written because the language is ours; it is small and fuzzed (see `lexer`).

use std::fmt;

use regex::Regex;

use super::lexer::Lexer;
use super::words::did_you_mean;
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
    /// Accept invisible format characters (zero-width joiners, LRM/RLM …) in this field's
    /// value; refused otherwise.
    AllowFormat,
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
            Module::AllowFormat => "allowformat".into(),
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
    /// `None`: the field is disabled (an empty source overrides a format field).
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

#[cfg(test)]
#[path = "expression_tests.rs"]
mod tests;
