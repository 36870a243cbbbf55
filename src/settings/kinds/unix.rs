//! The kinds of the Unix socket file settings: a permission mode (`"0660"`) and an owner
//! (`"user:group"`, `"user"`, `":group"`, names or numeric ids).

use super::quote;
use crate::settings::Kind;
use toml::de::DeValue;

/// Permission bits of a socket file: octal, `"0660"` or `"660"` (in TOML also `0o660`), at
/// most `0777`.
#[derive(Debug, Clone, Copy)]
pub struct Mode;

impl Kind for Mode {
    type Value = u32;
    fn expected(&self) -> String {
        "an octal mode such as \"0660\" or \"0600\", at most \"0777\"".into()
    }
    fn parse_flag(&self, s: &str) -> Option<u32> {
        let digits = s.trim();
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        u32::from_str_radix(digits, 8)
            .ok()
            .filter(|m| self.check(m))
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<u32> {
        match v {
            DeValue::String(s) => self.parse_flag(s),
            DeValue::Integer(n) if n.radix() == 8 => u32::from_str_radix(n.as_str(), 8)
                .ok()
                .filter(|m| self.check(m)),
            _ => None,
        }
    }
    fn check(&self, v: &u32) -> bool {
        *v <= 0o777
    }
    fn show(&self, v: &u32) -> String {
        format!("{v:04o}")
    }
    fn toml(&self, v: &u32) -> Option<String> {
        Some(quote(&self.show(v)))
    }
}

/// The owner of a socket file: `user:group`, `user` or `:group`, each a name or a numeric
/// id (names are looked up when the socket is bound).
#[derive(Debug, Clone, Copy)]
pub struct Owner;

/// True for a user or group name as `useradd` takes it, or a numeric id.
fn is_account(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Kind for Owner {
    type Value = String;
    fn expected(&self) -> String {
        "an owner such as \"www-data:www-data\", \"app\" or \":proxy\"".into()
    }
    fn parse_flag(&self, s: &str) -> Option<String> {
        Some(s.to_string()).filter(|s| self.check(s))
    }
    fn check(&self, v: &String) -> bool {
        match v.split_once(':') {
            Some(("", group)) => is_account(group),
            Some((user, group)) => is_account(user) && is_account(group),
            None => is_account(v),
        }
    }
    fn show(&self, v: &String) -> String {
        v.clone()
    }
    fn toml(&self, v: &String) -> Option<String> {
        Some(quote(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_and_at_most_0777() {
        assert_eq!(Mode.parse_flag("0660"), Some(0o660));
        assert_eq!(Mode.parse_flag("600"), Some(0o600));
        assert_eq!(Mode.parse_flag("0777"), Some(0o777));
        for bad in ["", "0800", "1777", "rw", "-660", "0x1a"] {
            assert_eq!(Mode.parse_flag(bad), None, "{bad}");
        }
        assert_eq!(Mode.show(&0o60), "0060");
        let doc = toml::de::DeTable::parse("a = 0o660\nb = 660").unwrap();
        let get = |k: &str| Mode.parse_toml(doc.get_ref().get(k).unwrap().get_ref());
        assert_eq!(get("a"), Some(0o660));
        assert_eq!(get("b"), None, "a decimal integer is not a mode");
    }

    #[test]
    fn owners_are_user_group_or_either() {
        for good in ["www-data:www-data", "app", ":proxy", "1000:1000", "a.b_c"] {
            assert!(Owner.check(&good.to_string()), "{good}");
        }
        for bad in ["", ":", "a:", "a:b:c", "a b", "-x", "user:"] {
            assert!(!Owner.check(&bad.to_string()), "{bad}");
        }
    }
}
