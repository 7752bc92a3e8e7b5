//! An inventory variable's value, read straight from the source into a compact shape.
//!
//! `serde_json::Value` keeps every object as a B-tree whose smallest node takes hundreds of
//! bytes: the 4 MiB of `{"v1": {"n": [1]}, ...}` an `ansible-inventory` host may carry
//! took over 60 MiB. Here a nested mapping is a vector of pairs (a few dozen bytes), and
//! JSON is deserialized into it directly, never into a `Value` first.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A variable's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Var {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
    List(Vec<Var>),
    /// In the source's order; a later duplicate key wins where it is read.
    Map(Vec<(String, Var)>),
}

/// A group's or host's variables, by name.
pub type Vars = BTreeMap<String, Var>;

impl Var {
    /// Text for scalars (numbers as written); none for the rest.
    pub fn text(&self) -> Option<String> {
        match self {
            Var::Text(s) => Some(s.clone()),
            Var::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A mapping's entries as variables (a later duplicate key wins), or none.
    pub fn into_vars(self) -> Option<Vars> {
        match self {
            Var::Map(pairs) => Some(pairs.into_iter().collect()),
            Var::Null => Some(Vars::new()),
            _ => None,
        }
    }
}

impl From<u16> for Var {
    fn from(n: u16) -> Self {
        Var::Number(n.into())
    }
}

impl<'de> Deserialize<'de> for Var {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Var, D::Error> {
        deserializer.deserialize_any(VarVisitor)
    }
}

struct VarVisitor;

impl<'de> Visitor<'de> for VarVisitor {
    type Value = Var;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Var, E> {
        Ok(Var::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Var, E> {
        Ok(Var::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Var, E> {
        Ok(Var::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Var, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Var::Null, Var::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Var, E> {
        Ok(Var::Text(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Var, E> {
        Ok(Var::Text(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Var, E> {
        Ok(Var::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Var, E> {
        Ok(Var::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Var, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Var::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Var, A::Error> {
        let mut pairs = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Var>()? {
            pairs.push((key, value));
        }
        pairs.shrink_to_fit();
        Ok(Var::Map(pairs))
    }
}
