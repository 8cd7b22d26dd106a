//! The lexer and recursive-descent parser of the format field language (sources, modules and
//! their arguments). Hand-written: the language is ours and small, and it is fuzzed.

use regex::Regex;

use super::expression::{Module, Source};
use super::words::{did_you_mean, regex_error};
use crate::ca::Attribute;

pub(super) struct Lexer {
    pub(super) chars: Vec<char>,
    pub(super) pos: usize,
}

impl Lexer {
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    pub(super) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    pub(super) fn rest(&self) -> String {
        self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .collect()
    }
    pub(super) fn skip_ws(&mut self) {
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
    pub(super) fn source(&mut self) -> Result<Source, String> {
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
    pub(super) fn module(&mut self) -> Result<Module, String> {
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
            "allowformat" => none(&args, Module::AllowFormat),
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
                 match, maxlen, minlen, oneof, email, country, allowformat",
                did_you_mean(other, MODULE_NAMES)
            )),
        }
    }
}

const MODULE_NAMES: &[&str] = &[
    "trim",
    "lower",
    "upper",
    "replace",
    "truncate",
    "default",
    "required",
    "match",
    "maxlen",
    "minlen",
    "oneof",
    "email",
    "country",
    "allowformat",
];

enum Arg {
    Str(String),
    Num(usize),
}
