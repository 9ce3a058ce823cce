//! Query parameters with a fixed set of values, read by serde (`web::Query`) into their types:
//! `Param<T>` is `T` when the parameter holds one of its words, nothing when it is absent or
//! empty, and a 400 naming the parameter (never repeating more than 32 characters of the value)
//! otherwise.

use crate::domain::proxy::{Anonymity, Protocol};
use crate::domain::selection::Strategy;
use serde::de::{Deserialize, Deserializer, Error};

/// A value of a query parameter: its name, the words it takes, and how a word reads.
pub trait ParamValue: Sized {
    const NAME: &'static str;
    const EXPECTED: &'static str;
    fn parse(word: &str) -> Option<Self>;
}

/// A parameter that may be absent or empty (both: `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Param<T>(pub Option<T>);

impl<'de, T: ParamValue> Deserialize<'de> for Param<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let word = raw.trim();
        if word.is_empty() {
            return Ok(Param(None));
        }
        T::parse(word).map(|v| Param(Some(v))).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown {} `{}`: use {}",
                T::NAME,
                word.chars().take(32).collect::<String>(),
                T::EXPECTED
            ))
        })
    }
}

impl ParamValue for Strategy {
    const NAME: &'static str = "strategy";
    const EXPECTED: &'static str = "fastest, cheapest, random or least_loaded";
    fn parse(word: &str) -> Option<Self> {
        Strategy::parse(word)
    }
}

impl ParamValue for Protocol {
    const NAME: &'static str = "protocol";
    const EXPECTED: &'static str = "http, https, socks4 or socks5";
    fn parse(word: &str) -> Option<Self> {
        Protocol::parse(word)
    }
}

impl ParamValue for Anonymity {
    const NAME: &'static str = "anonymity";
    const EXPECTED: &'static str = "transparent, anonymous or elite";
    fn parse(word: &str) -> Option<Self> {
        Anonymity::parse(word)
    }
}

impl ParamValue for crate::domain::usage::Group {
    const NAME: &'static str = "group";
    const EXPECTED: &'static str = "proxy, day, hour or session";
    fn parse(word: &str) -> Option<Self> {
        crate::domain::usage::Group::parse(word)
    }
}

/// `true`/`1` or `false`/`0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flag(pub bool);

impl ParamValue for Flag {
    const NAME: &'static str = "detail";
    const EXPECTED: &'static str = "true or false";
    fn parse(word: &str) -> Option<Self> {
        match word {
            "true" | "1" => Some(Flag(true)),
            "false" | "0" => Some(Flag(false)),
            _ => None,
        }
    }
}

/// An ISO 3166 two-letter code, any case (kept upper case).
#[derive(Clone, Debug, PartialEq)]
pub struct Country(pub String);

impl ParamValue for Country {
    const NAME: &'static str = "country";
    const EXPECTED: &'static str = "a two-letter ISO code";
    fn parse(word: &str) -> Option<Self> {
        (word.len() == 2 && word.chars().all(|c| c.is_ascii_alphabetic()))
            .then(|| Country(word.to_ascii_uppercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Q {
        strategy: Option<Param<Strategy>>,
        country: Option<Param<Country>>,
    }

    fn q(s: &str) -> Result<Q, String> {
        actix_web::web::Query::<Q>::from_query(s)
            .map(|q| q.into_inner())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn words_read_empty_is_absent_and_others_are_named() {
        let a = q("strategy=cheapest&country=nl").unwrap();
        assert_eq!(a.strategy, Some(Param(Some(Strategy::Cheapest))));
        assert_eq!(a.country, Some(Param(Some(Country("NL".into())))));
        let empty = q("strategy=&country=").unwrap();
        assert_eq!(empty.strategy, Some(Param(None)));
        assert!(q("").unwrap().strategy.is_none());
        let e = q(&format!("strategy={}", "x".repeat(500))).unwrap_err();
        assert!(e.contains("unknown strategy `xxx") && e.len() < 160, "{e}");
        assert!(q("country=Germany").is_err());
    }
}
