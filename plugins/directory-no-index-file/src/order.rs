//! The order of a listing: folders first, then by name (natural and case-insensitive, so `9`
//! comes before `10` and `a` and `B` interleave), by size or by date.

use crate::entries::Entry;
use crate::view::Key;
use std::cmp::Ordering;

/// Sort `list` by `key`, folders first whatever the key; equal sizes and dates by name.
pub fn sort(list: &mut [Entry], key: Key, desc: bool) {
    list.sort_unstable_by(|a, b| {
        let by_key = match key {
            Key::Name => Ordering::Equal,
            // A folder's own size says nothing about its contents: folders stay by name.
            Key::Size if a.dir && b.dir => Ordering::Equal,
            Key::Size => a.size.cmp(&b.size),
            Key::Date => a.mtime.cmp(&b.mtime),
        };
        let by_name = natural(&a.name, &b.name).then_with(|| a.raw.cmp(&b.raw));
        let (by_key, by_name) = match (desc, key) {
            (false, _) => (by_key, by_name),
            (true, Key::Name) => (by_key, by_name.reverse()),
            // Equal sizes or dates stay A to Z.
            (true, _) => (by_key.reverse(), by_name),
        };
        b.dir.cmp(&a.dir).then(by_key).then(by_name)
    });
}

/// Compare names as people read them: runs of digits by their value, other characters by
/// their lower case.
pub fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        let (Some(&c), Some(&d)) = (x.as_bytes().first(), y.as_bytes().first()) else {
            return x.is_empty().cmp(&y.is_empty()).reverse();
        };
        let ord = if c.is_ascii_digit() && d.is_ascii_digit() {
            let (n, rest_x) = digits(x);
            let (m, rest_y) = digits(y);
            (x, y) = (rest_x, rest_y);
            let (n, m) = (n.trim_start_matches('0'), m.trim_start_matches('0'));
            n.len().cmp(&m.len()).then_with(|| n.cmp(m))
        } else if c.is_ascii() && d.is_ascii() {
            // The common case, one byte each: no char decoding.
            (x, y) = (&x[1..], &y[1..]);
            c.to_ascii_lowercase().cmp(&d.to_ascii_lowercase())
        } else {
            let (c, d) = (
                x.chars().next().unwrap_or('\0'),
                y.chars().next().unwrap_or('\0'),
            );
            (x, y) = (&x[c.len_utf8()..], &y[d.len_utf8()..]);
            c.to_lowercase().cmp(d.to_lowercase())
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
}

/// The leading run of ASCII digits of `s`, and the rest.
fn digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn entry(name: &str, dir: bool, size: u64, mtime: i64) -> Entry {
        Entry {
            name: name.into(),
            raw: name.as_bytes().to_vec(),
            dir,
            size,
            mtime,
        }
    }

    fn names(list: &[Entry]) -> Vec<&str> {
        list.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn names_compare_by_number_and_without_case() {
        let mut v = vec!["file10", "File9", "b", "A", "a2", "a10", "a01", "é", "z"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(
            v,
            ["A", "a01", "a2", "a10", "b", "File9", "file10", "z", "é"]
        );
        assert_eq!(natural("a", "a1"), Ordering::Less);
        assert_eq!(natural("x100", "x99"), Ordering::Greater);
    }

    #[test]
    fn folders_come_first_in_every_order() {
        let mut list = vec![
            entry("big", false, 900, 1),
            entry("Docs", true, 4096, 3),
            entry("small", false, 2, 5),
            entry("apps", true, 4096, 9),
        ];
        sort(&mut list, Key::Name, false);
        assert_eq!(names(&list), ["apps", "Docs", "big", "small"]);
        sort(&mut list, Key::Size, true);
        assert_eq!(names(&list), ["apps", "Docs", "big", "small"]);
        sort(&mut list, Key::Date, true);
        assert_eq!(names(&list), ["apps", "Docs", "small", "big"]);
        sort(&mut list, Key::Name, true);
        assert_eq!(names(&list), ["Docs", "apps", "small", "big"]);
    }
}
