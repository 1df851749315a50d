//! The pages' languages: one message catalogue per language (`floor-server/i18n/<code>.toml`),
//! compiled into the binary and checked by a test so that every key exists in every language.
//!
//! Key decision: plain TOML maps of `section.key = "text"` with `{name}` placeholders, not a full
//! localisation framework: the consoles' texts are short labels and sentences without plural
//! rules that would need one. A missing key shows the key itself (and the test fails).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// A language the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Sl,
    Hr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Sl, Lang::Hr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Sl => "sl",
            Lang::Hr => "hr",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code.trim().to_ascii_lowercase())
    }

    /// The language's own name, for the language menu.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Sl => "Slovenščina",
            Lang::Hr => "Hrvatski",
        }
    }

    /// The first supported language of an `Accept-Language` header.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').filter_map(|part| Lang::from_code(part.split(';').next()?.split('-').next()?)).next()
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../../i18n/en.toml"),
            Lang::Sl => include_str!("../../i18n/sl.toml"),
            Lang::Hr => include_str!("../../i18n/hr.toml"),
        }
    }
}

type Catalogue = HashMap<String, String>;

fn flatten(prefix: &str, table: &toml::Table, out: &mut Catalogue) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => panic!("i18n key {key}: expected text, found {other}"),
        }
    }
}

fn parse(lang: Lang) -> Catalogue {
    let table: toml::Table = toml::from_str(lang.source()).unwrap_or_else(|e| panic!("i18n/{}.toml: {e}", lang.code()));
    let mut out = Catalogue::new();
    flatten("", &table, &mut out);
    out
}

static CATALOGUES: LazyLock<HashMap<Lang, Catalogue>> = LazyLock::new(|| Lang::ALL.into_iter().map(|l| (l, parse(l))).collect());

/// The texts of one language, as the templates use them: `{{ t.get("nav.logout") }}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The text for `key`; the key itself when the catalogue lacks it.
    pub fn get<'a>(&self, key: &'a str) -> &'a str {
        match CATALOGUES.get(&self.lang).and_then(|c| c.get(key)) {
            // The catalogues live for the whole program.
            Some(text) => {
                let text: &'static str = text.as_str();
                text
            }
            None => key,
        }
    }

    /// The text for `key` with each `{name}` replaced by its value.
    pub fn fmt(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_owned();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The language's code, for `<html lang>`.
    pub fn code(&self) -> &'static str {
        self.lang.code()
    }
}

/// Every key of every catalogue, sorted (for the completeness test and tools).
pub fn keys(lang: Lang) -> Vec<String> {
    let mut keys: Vec<String> = CATALOGUES[&lang].keys().cloned().collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_exists_in_every_language() {
        let english = keys(Lang::En);
        assert!(english.len() > 20, "the English catalogue is the reference and is not empty");
        for lang in Lang::ALL {
            let theirs = keys(lang);
            let missing: Vec<_> = english.iter().filter(|k| !theirs.contains(k)).collect();
            let extra: Vec<_> = theirs.iter().filter(|k| !english.contains(k)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
            assert!(extra.is_empty(), "{} has keys English lacks: {extra:?}", lang.code());
        }
    }

    #[test]
    fn every_text_is_translated_and_not_blank() {
        for lang in Lang::ALL {
            for key in keys(lang) {
                assert!(!Tr::new(lang).get(&key).trim().is_empty(), "{}: {key} is blank", lang.code());
            }
        }
    }

    #[test]
    fn placeholders_are_the_same_in_every_language() {
        let names = |s: &str| {
            let mut v: Vec<String> = s.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned())).collect();
            v.sort();
            v
        };
        for key in keys(Lang::En) {
            let en = names(Tr::new(Lang::En).get(&key));
            for lang in [Lang::Sl, Lang::Hr] {
                assert_eq!(names(Tr::new(lang).get(&key)), en, "{}: {key}", lang.code());
            }
        }
    }

    #[test]
    fn a_missing_key_shows_itself_and_arguments_fill_in() {
        let t = Tr::new(Lang::En);
        assert_eq!(t.get("no.such.key"), "no.such.key");
        assert_eq!(Tr::new(Lang::Sl).get("nav.logout"), "Odjava");
        assert_eq!(Lang::from_accept_language("sl-SI,sl;q=0.9,en;q=0.8"), Some(Lang::Sl));
        assert_eq!(Lang::from_accept_language("de-DE, hr;q=0.5"), Some(Lang::Hr));
        assert_eq!(Lang::from_accept_language("de"), None);
    }
}
