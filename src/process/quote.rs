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
}
