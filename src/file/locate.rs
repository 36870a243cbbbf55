//! Where a TOML syntax error is: the key path around the error's position, from as much of
//! the document as parses (`route[0].backlog` for `backlog = = 3`).

use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The key path a syntax error at `span` with `message` is about, if anything around it parsed.
pub fn syntax_field(text: &str, span: &Range<usize>, message: &str) -> Option<String> {
    let (doc, _) = DeTable::parse_recoverable(text);
    let mut entries = Vec::new();
    collect_entries(doc.get_ref(), "", &mut entries);
    syntax_field_at(&entries, text, span, message)
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A key or an array element of the document, with its key path.
struct Entry {
    path: String,
    /// Where the key is written (`None` for an array element).
    key: Option<Range<usize>>,
    /// Where the value is written (for a `[[table]]`, its header).
    value: Range<usize>,
}

/// Lists every key and array element under `table`, parents before their children.
fn collect_entries(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push(Entry {
            path: path.clone(),
            key: Some(key.span()),
            value: value.span(),
        });
        collect_value_entries(value, &path, out);
    }
}

fn collect_value_entries(value: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<Entry>) {
    match value.get_ref() {
        DeValue::Table(table) => collect_entries(table, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                out.push(Entry {
                    path: path.clone(),
                    key: None,
                    value: item.span(),
                });
                collect_value_entries(item, &path, out);
            }
        }
        _ => {}
    }
}

/// The path of the innermost key or value covering `span`: the smallest cover, and of equal
/// ones the deepest.
fn field_at(entries: &[Entry], span: &Range<usize>) -> Option<String> {
    let covers = |outer: &Range<usize>| outer.start <= span.start && span.end <= outer.end;
    entries
        .iter()
        .filter_map(|e| {
            let best = [e.key.clone(), Some(e.value.clone())]
                .into_iter()
                .flatten()
                .filter(|r| covers(r))
                .map(|r| r.len())
                .min()?;
            Some((best, e))
        })
        .min_by_key(|(len, e)| (*len, std::cmp::Reverse(e.path.len())))
        .map(|(_, e)| e.path.clone())
}

/// The key a syntax error is about, from what parsed around it: for a duplicate key, its
/// first definition; else what covers the error; else the last key before it on its line.
fn syntax_field_at(
    entries: &[Entry],
    text: &str,
    span: &Range<usize>,
    message: &str,
) -> Option<String> {
    let before = |e: &&Entry| e.key.as_ref().is_some_and(|k| k.start < span.start);
    if message == "duplicate key" {
        let name = text.get(span.clone())?.trim_matches(['"', '\'']);
        let first = entries
            .iter()
            .filter(before)
            .filter(|e| e.path.rsplit('.').next() == Some(name))
            .max_by_key(|e| e.key.as_ref().map(|k| k.start));
        if let Some(first) = first {
            return Some(first.path.clone());
        }
    }
    if let Some(field) = field_at(entries, span) {
        return Some(field);
    }
    let line = line_of(text, span.start);
    entries
        .iter()
        .filter(before)
        .filter(|e| {
            e.key
                .as_ref()
                .is_some_and(|k| line_of(text, k.start) == line)
        })
        .max_by_key(|e| e.key.as_ref().map(|k| k.start))
        .map(|e| e.path.clone())
}
