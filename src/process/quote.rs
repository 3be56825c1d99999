//! Shell quoting, for showing commands and for building `sh -c` scripts safely.

use std::borrow::Cow;
use std::ffi::OsStr;

/// Quotes `word` for a POSIX shell: unchanged if it is plain, else in single quotes.
///
/// ```
/// use concur::process::quote;
///
/// assert_eq!(quote("file.txt"), "file.txt");
/// assert_eq!(quote("two words"), "'two words'");
/// assert_eq!(quote("it's"), r"'it'\''s'");
/// assert_eq!(quote(""), "''");
/// ```
pub fn quote(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// Quotes `word` with backslashes, as GNU parallel does, for substitution into a shell
/// script the user wrote: every character that could mean something to the shell gets
/// a backslash, and a newline becomes `'` newline `'`.
///
/// Unlike single quotes, this stays data in every context a script can put `{}` in:
/// bare (`echo {}`), inside double quotes (`echo "{}"`, where `\$`, `` \` ``, `\"`
/// and `\\` are literal and other backslashes stay as they are), and inside single
/// quotes (`echo '{}'`, where an input `'` ends the quote but everything after it is
/// still escaped). Inside quotes the text can come out with extra backslashes, as in
/// GNU parallel; it is never run.
///
/// ```
/// use concur::process::quote_backslash;
///
/// assert_eq!(quote_backslash("file.txt"), "file.txt");
/// assert_eq!(quote_backslash("two words"), r"two\ words");
/// assert_eq!(quote_backslash("$(touch pw)"), r"\$\(touch\ pw\)");
/// assert_eq!(quote_backslash(""), "''");
/// ```
pub fn quote_backslash(word: &str) -> Cow<'_, str> {
    if word.is_empty() {
        return Cow::Borrowed("''");
    }
    match quote_backslash_bytes(word.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(word),
        // Only ASCII bytes were added, next to whole characters: still UTF-8.
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// [`quote_backslash`] for bytes that need not be UTF-8 (a file name, say). Bytes from
/// 0x80 up mean nothing to the shell and pass unchanged.
///
/// ```
/// use concur::process::quote_backslash_bytes;
///
/// assert_eq!(&*quote_backslash_bytes(b"a b\xff"), b"a\\ b\xff");
/// ```
pub fn quote_backslash_bytes(word: &[u8]) -> Cow<'_, [u8]> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_@%+:,./-".contains(&b) || b >= 0x80;
    if word.is_empty() {
        return Cow::Borrowed(b"''");
    }
    if word.iter().all(|&b| plain(b)) {
        return Cow::Borrowed(word);
    }
    let mut quoted = Vec::with_capacity(word.len() * 2);
    for &b in word {
        if b == b'\n' {
            quoted.extend_from_slice(b"'\n'");
        } else {
            if !plain(b) {
                quoted.push(b'\\');
            }
            quoted.push(b);
        }
    }
    Cow::Owned(quoted)
}

/// A command line, each word quoted, joined by spaces.
pub fn quote_command<'a>(words: impl IntoIterator<Item = &'a (impl AsRef<OsStr> + 'a)>) -> String {
    words
        .into_iter()
        .map(|w| quote(&w.as_ref().to_string_lossy()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_real_shell() {
        for word in [
            "plain",
            "two words",
            "it's",
            "$HOME",
            "a\"b",
            "*",
            "",
            "back\\slash",
            "new\nline",
        ] {
            let script = format!("printf %s {}", quote(word));
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word, "{script}");
        }
    }

    /// Hostile inputs put into a script bare, in double quotes and in single quotes:
    /// none of them runs anything, and bare they come out exactly.
    #[test]
    fn backslash_quoting_is_data_in_every_context() {
        let dir = tempfile::tempdir().unwrap();
        let hostile = [
            "$(touch pw1)",
            "`touch pw2`",
            "a;touch pw3",
            "a|touch pw4",
            "'; touch pw5; '",
            "\"; touch pw6; \"",
            "a\ntouch pw7",
            "back\\slash $HOME * ~ # & > x",
            "a=b",
            "é ü",
        ];
        for word in hostile {
            let q = quote_backslash(word);
            for (script, exact) in [
                (format!("printf %s {q}"), true),
                (format!("printf %s \"{q}\""), false),
                (format!("printf %s '{q}'"), false),
            ] {
                let out = std::process::Command::new("sh")
                    .args(["-c", &script])
                    .current_dir(dir.path())
                    .output()
                    .unwrap();
                if exact {
                    assert_eq!(String::from_utf8_lossy(&out.stdout), word, "{script}");
                }
            }
        }
        let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert!(made.is_empty(), "the shell ran input as code: {made:?}");
    }
}
