//! Mixed scripts within one word, and invisible (default-ignorable) characters.
//!
//! `Pаypal` with a Cyrillic `а` looks exactly like `Paypal`. UTS #39 calls a text "highly
//! restrictive" when it is written in one script, or in one of the combinations a language
//! writes together (Latin with Han and Japanese kana, with Han and Bopomofo, or with Han and
//! Hangul). The gateway applies that level to each *word* of a value — a run of letters and
//! marks between spaces, digits and punctuation (characters of script Common) — so
//! `Иван Petrov` (two words, each in one script) and `Jean-Пьер` pass while `Pаypal` does not.
//! Characters used by several scripts (their `Script_Extensions`) and combining marks
//! (Inherited) fit any script. Scripts come from ICU4X (`icu_properties`, compiled data).

use icu_properties::props::{DefaultIgnorableCodePoint, Script};
use icu_properties::script::ScriptWithExtensions;
use icu_properties::{CodePointSetData, PropertyNamesShort};

/// Whether `c` is a Unicode Default_Ignorable_Code_Point: invisible unless a renderer gives it
/// meaning (variation selectors, fillers, the grapheme joiner, format characters …).
pub(super) fn is_default_ignorable(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// Two characters of one word that no allowed script combination holds together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MixedScripts {
    pub first: char,
    pub second: char,
}

impl MixedScripts {
    /// The short script names of both characters (`Latn`, `Cyrl` …), for the message.
    pub fn scripts(&self) -> (String, String) {
        let names = PropertyNamesShort::<Script>::new();
        let name = |c: char| {
            let script = ScriptWithExtensions::new().get_script_val(c);
            names.get(script).unwrap_or("Zyyy").to_string()
        };
        (name(self.first), name(self.second))
    }
}

/// Script combinations a word may use besides a single script (UTS #39, highly restrictive).
const COMBINATIONS: [&[Script]; 3] = [
    &[
        Script::Latin,
        Script::Han,
        Script::Hiragana,
        Script::Katakana,
    ],
    &[Script::Latin, Script::Han, Script::Bopomofo],
    &[Script::Latin, Script::Han, Script::Hangul],
];

/// Refuses a value with a word that mixes scripts (see the module doc).
pub(super) fn check_words(value: &str) -> Result<(), MixedScripts> {
    let scx = ScriptWithExtensions::new();
    // The word's characters that belong to particular scripts, with their script sets.
    let mut word: Vec<(char, Vec<Script>)> = Vec::new();
    for c in value.chars().chain(std::iter::once(' ')) {
        let scripts: Vec<Script> = scx.get_script_extensions_val(c).iter().collect();
        if scripts.contains(&Script::Common) {
            check_word(&word)?;
            word.clear();
        } else if !scripts.contains(&Script::Inherited) && !scripts.is_empty() {
            word.push((c, scripts));
        }
    }
    Ok(())
}

fn check_word(word: &[(char, Vec<Script>)]) -> Result<(), MixedScripts> {
    let Some((first, first_scripts)) = word.first() else {
        return Ok(());
    };
    // One script that every character has.
    if first_scripts
        .iter()
        .any(|s| word.iter().all(|(_, scripts)| scripts.contains(s)))
    {
        return Ok(());
    }
    // One combination that holds a script of every character.
    if COMBINATIONS.iter().any(|allowed| {
        word.iter()
            .all(|(_, scripts)| scripts.iter().any(|s| allowed.contains(s)))
    }) {
        return Ok(());
    }
    let second = word
        .iter()
        .find(|(_, scripts)| !scripts.iter().any(|s| first_scripts.contains(s)))
        .map_or(*first, |(c, _)| *c);
    Err(MixedScripts {
        first: *first,
        second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_script_per_word_or_an_east_asian_combination() {
        for ok in [
            "Hanna Ström",
            "Иван Petrov",
            "Jean-Пьер",
            "Ελένη Παπαδοπούλου",
            "محمد",
            "山田 たろう",
            "山田タロウ Yamada",
            "ＡＢＣ株式会社",
            "김철수 金哲洙",
            "Firma2Го",
            "Stro\u{308}m",
            "A😀",
            "",
        ] {
            assert_eq!(check_words(ok), Ok(()), "{ok}");
        }
        // Latin `P` with Cyrillic `а`; Latin with Greek omicron; Cyrillic with Latin `o`.
        for (mixed, first, second) in [
            ("P\u{430}ypal", 'P', '\u{430}'),
            ("G\u{3BF}ogle Inc", 'G', '\u{3BF}'),
            ("Иван Petr\u{43E}v", 'P', '\u{43E}'),
        ] {
            assert_eq!(
                check_words(mixed),
                Err(MixedScripts { first, second }),
                "{mixed}"
            );
        }
        let refused = check_words("P\u{430}ypal").unwrap_err();
        assert_eq!(refused.scripts(), ("Latn".into(), "Cyrl".into()));
    }

    #[test]
    fn default_ignorables() {
        for c in [
            '\u{34F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{180B}',
            '\u{200B}',
            '\u{AD}',
        ] {
            assert!(is_default_ignorable(c), "{c:?}");
        }
        for c in ['a', ' ', 'ö', '\u{308}', '田', '\u{A0}'] {
            assert!(!is_default_ignorable(c), "{c:?}");
        }
    }
}
