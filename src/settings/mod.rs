//! One schema for every setting: each is declared once, with its type, default, value kind
//! and help, and the command line, the TOML file, `--check`, the range checks and `--help`
//! are all driven from that declaration.
//!
//! A [`Kind`] says how one kind of value (a size, a duration, a bounded whole number, an
//! address, a choice of names) is read from a flag and from TOML, checked, and printed; the
//! flag and the file read a value the same way and `--check` prints it so that the file
//! reads it back to the same value. [`settings!`](crate::settings!) declares a struct of
//! settings whose `Default` holds the defaults and whose methods set a field by key from a
//! flag or a TOML value, check every field's range, and list the fields for `--help` and
//! `--check`. The declarations are [`RouteSettings`], [`ServerOptions`] and [`Global`].

mod global;
pub mod kinds;
mod route;

pub use global::{Global, LogFormat};
pub use route::{BalancePolicy, MAX_BUFFER_SIZE, RouteSettings, ServerOptions};

use toml::de::DeValue;

/// How one kind of value is read, checked and printed.
///
/// `parse_*` accept only values that [`Kind::check`] accepts, so a setting read from a flag
/// or a file is always in range; `check` also guards values set in code. [`Kind::toml`]
/// writes a value that [`Kind::parse_toml`] reads back to the same value.
pub trait Kind {
    /// The Rust type of the setting.
    type Value;
    /// What the setting accepts, completing "expected ...".
    fn expected(&self) -> String;
    /// The value of a flag (`--buffer-size 16KiB`), or `None` if it is not one.
    fn parse_flag(&self, s: &str) -> Option<Self::Value>;
    /// A TOML value, or `None` if it is not one. Strings read as flags do by default.
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<Self::Value> {
        v.as_str().and_then(|s| self.parse_flag(s))
    }
    /// True when `v` is in range (what the parsers accept).
    fn check(&self, v: &Self::Value) -> bool;
    /// The value as a flag would be written (`16KiB`, `5s`), for `--help` and logs.
    fn show(&self, v: &Self::Value) -> String;
    /// The value as a TOML literal (`"16KiB"`), or `None` for an unset optional setting.
    fn toml(&self, v: &Self::Value) -> Option<String>;
    /// What leaving an optional setting unset means (`None` for a setting with a value).
    fn unset(&self, _v: &Self::Value) -> Option<&'static str> {
        None
    }
    /// True for an on/off setting given as a bare flag (`--check`), without a value.
    fn is_switch(&self) -> bool {
        false
    }
    /// True for a list: the flag may be repeated, each value adds to the list.
    fn is_list(&self) -> bool {
        false
    }
}

/// Where a setting is shown in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Connection handling.
    Options,
    /// Balancing and health.
    Balancing,
    /// Who the client is: the PROXY protocol.
    Identity,
    /// Choosing a route by the TLS server name.
    Routing,
    /// Who may connect, how often, how fast.
    Limits,
    /// Running and observing the proxy.
    Operating,
}

/// One declared setting, for `--help` and `--check`.
#[derive(Debug, Clone)]
pub struct Field {
    /// The TOML key; the flag is the key with `_` turned into `-`.
    pub key: &'static str,
    /// The metavariable after the flag in `--help` (`SIZE`, `DUR`, `N`).
    pub meta: &'static str,
    /// The `--help` section.
    pub section: Section,
    /// One-line help, with `\n` before continuation lines.
    pub help: &'static str,
    /// The long flag: `--` and the key with `_` turned into `-`.
    pub flag: &'static str,
    /// The default as `--help` shows it.
    pub default: String,
    /// True for a bare flag without a value.
    pub switch: bool,
    /// True for a list: the flag may be repeated.
    pub list: bool,
}

/// The long flag of a key: `buffer_size` → `--buffer-size`.
pub fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// One setting's current value, for `--check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The TOML key.
    pub key: &'static str,
    /// The TOML literal, or `None` when an optional setting is unset.
    pub value: Option<String>,
    /// What unset means, for an optional setting.
    pub unset: Option<&'static str>,
}

/// Why a value was not taken: what the setting expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected(pub String);

/// Sets `slot` from a flag's text with `kind`.
pub fn from_flag<K: Kind>(kind: &K, slot: &mut K::Value, s: &str) -> Result<(), Expected> {
    *slot = kind
        .parse_flag(s)
        .ok_or_else(|| Expected(kind.expected()))?;
    Ok(())
}

/// Sets `slot` from a TOML value with `kind`.
pub fn from_toml<K: Kind>(kind: &K, slot: &mut K::Value, v: &DeValue<'_>) -> Result<(), Expected> {
    *slot = kind
        .parse_toml(v)
        .ok_or_else(|| Expected(kind.expected()))?;
    Ok(())
}

/// True when `kind` is a bare flag (`value` only ties the kind's type to the field's).
pub fn is_switch<K: Kind>(kind: &K, _value: &K::Value) -> bool {
    kind.is_switch()
}

/// True when `kind` is a list (`value` only ties the kind's type to the field's).
pub fn is_list<K: Kind>(kind: &K, _value: &K::Value) -> bool {
    kind.is_list()
}

/// What `--help` shows as the default of a field set to `value`.
pub fn shown_default<K: Kind>(kind: &K, value: &K::Value) -> String {
    kind.unset(value)
        .map_or_else(|| kind.show(value), str::to_string)
}

/// Checks `value` with `kind`: `Err` says what is expected and what the value is.
pub fn check<K: Kind>(kind: &K, value: &K::Value) -> Result<(), (Expected, String)> {
    if kind.check(value) {
        Ok(())
    } else {
        Err((Expected(kind.expected()), kind.show(value)))
    }
}

/// Declares a struct of settings: for each field its doc, type, default, [`Kind`], `--help`
/// metavariable, section and help. Generates the struct, its `Default`, and
/// `set_flag`/`set_toml` (by key; `None` for an unknown key), `check` (every field's range),
/// `fields` (for `--help`), `entries` (for `--check`) and `KEYS`.
#[macro_export]
macro_rules! settings {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr,
                    $kind:expr, $meta:literal, $section:ident, $help:literal;
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            /// Every key, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Sets the field `key` from a flag's text; `None` if there is no such key.
            pub fn set_flag(
                &mut self,
                key: &str,
                s: &str,
            ) -> Option<Result<(), $crate::settings::Expected>> {
                match key {
                    $( stringify!($field) => {
                        Some($crate::settings::from_flag(&$kind, &mut self.$field, s))
                    } )*
                    _ => None,
                }
            }

            /// Sets the field `key` from a TOML value; `None` if there is no such key.
            pub fn set_toml(
                &mut self,
                key: &str,
                v: &toml::de::DeValue<'_>,
            ) -> Option<Result<(), $crate::settings::Expected>> {
                match key {
                    $( stringify!($field) => {
                        Some($crate::settings::from_toml(&$kind, &mut self.$field, v))
                    } )*
                    _ => None,
                }
            }

            /// Checks every field's range; the first out of range gives its key, what it
            /// expects and its value.
            pub fn check(
                &self,
            ) -> Result<(), (&'static str, $crate::settings::Expected, String)> {
                $(
                    $crate::settings::check(&$kind, &self.$field)
                        .map_err(|(e, got)| (stringify!($field), e, got))?;
                )*
                Ok(())
            }

            /// Every field, for `--help` and the command line (built once per process).
            pub fn fields() -> &'static [$crate::settings::Field] {
                static FIELDS: std::sync::OnceLock<Vec<$crate::settings::Field>> =
                    std::sync::OnceLock::new();
                FIELDS.get_or_init(|| {
                    let defaults = $name::default();
                    vec![ $(
                        $crate::settings::Field {
                            key: stringify!($field),
                            meta: $meta,
                            section: $crate::settings::Section::$section,
                            help: $help,
                            flag: $crate::settings::flag_of(stringify!($field)).leak(),
                            default: $crate::settings::shown_default(&$kind, &defaults.$field),
                            switch: $crate::settings::is_switch(&$kind, &defaults.$field),
                            list: $crate::settings::is_list(&$kind, &defaults.$field),
                        },
                    )* ]
                })
            }

            /// Every field's current value, for `--check`.
            pub fn entries(&self) -> Vec<$crate::settings::Entry> {
                vec![ $(
                    $crate::settings::Entry {
                        key: stringify!($field),
                        value: $crate::settings::Kind::toml(&$kind, &self.$field),
                        unset: $crate::settings::Kind::unset(&$kind, &self.$field),
                    },
                )* ]
            }
        }
    };
}
