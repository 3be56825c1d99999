//! `--rpl 'TAG perl'` and `--plus`: replacement strings defined in Perl.
//!
//! A defined string is shorthand for a `{= perl =}`: before the command is parsed,
//! each TAG in it becomes `{=perl=}`, and `{N` + the rest of TAG becomes `{=N perl=}`
//! (its positional form, when TAG starts with `{`). A TAG may hold one regex group
//! span, `(…)`: whatever its groups match is given to the code as `$$1`, `$$2`, …
//! (`--rpl '{%(.+?)} s/$$1$//'` makes `{%.gz}` strip `.gz`). Longer tags are replaced
//! first, and nothing inside an existing `{= … =}` is touched, as in GNU parallel.
//! `--plus` defines GNU parallel's extra strings the same way.

use regex::bytes::{Captures, Regex};

/// GNU parallel's `--plus` strings, as `--rpl` definitions (the Perl is GNU
/// parallel's meaning of each; `{host}`, `{sshlogin}` and the host group strings are
/// left out).
const PLUS: &[(&str, &str)] = &[
    ("{+/}", r"s:/[^/]*$:: || s:.*$::"),
    ("{+.}", r"s:.*\.:: || s:.*$::"),
    ("{+..}", r"s:.*\.([^/.]*\.[^/.]*)$:$1: || s:.*$::"),
    ("{+...}", r"s:.*\.([^/.]*\.[^/.]*\.[^/.]*)$:$1: || s:.*$::"),
    ("{..}", r"s:\.[^/.]*\.[^/.]*$::"),
    ("{...}", r"s:\.[^/.]*\.[^/.]*\.[^/.]*$::"),
    ("{/..}", r"s:.*/::; s:\.[^/.]*\.[^/.]*$::"),
    ("{/...}", r"s:.*/::; s:\.[^/.]*\.[^/.]*\.[^/.]*$::"),
    (
        "{choose_k}",
        r"for $t (2..$#arg) { if($arg[$t-1] ge $arg[$t]) { skip() } }",
    ),
    ("{uniq}", r"if(::uniq(@arg) != @arg) { skip(); }"),
    ("{##}", r"1 $_=total_jobs()"),
    (
        "{0%}",
        r#"1 $f=1+int((log($Global::max_jobs_running||1)/log(10))); $_=sprintf("%0${f}d",slot())"#,
    ),
    (
        "{0#}",
        r#"1 $f=1+int((log(total_jobs())/log(10))); $_=sprintf("%0${f}d",seq())"#,
    ),
    // The job's slot, as the shell sees it.
    ("{slot}", r#"1 $_="\${PARALLEL_JOBSLOT}";uq()"#),
    ("{:-([^}]+?)}", r"$_ ||= $$1"),
    ("{:(\\d+?)}", r#"substr($_,0,$$1) = """#),
    ("{:(\\d+?):(\\d+?)}", r"$_ = substr($_,$$1,$$2);"),
    (
        "{#([^#}][^}]*?)}",
        r"$nongreedy=::make_regexp_ungreedy($$1);s/^$nongreedy(.*)/$1/;",
    ),
    ("{##([^#}][^}]*?)}", r"s/^$$1//;"),
    (
        "{%([^}]+?)}",
        r"$nongreedy=::make_regexp_ungreedy($$1);s/(.*)$nongreedy$/$1/;",
    ),
    ("{%%([^}]+?)}", r"s/$$1$//;"),
    ("{/([^#%}/]+?)/([^}]*?)}", r"s/$$1/$$2/;"),
    ("{/#([^}]+?)/([^}]*?)}", r"s/^$$1/$$2/g;"),
    ("{/%([^}]+?)/([^}]*?)}", r"s/$$1$/$$2/g;"),
    ("{//([^}]+?)/([^}]*?)}", r"s/$$1/$$2/g;"),
    ("{^([^}]+?)}", r"s/^($$1)/uc($1)/e;"),
    ("{^^([^}]+?)}", r"s/($$1)/uc($1)/eg;"),
    ("{,([^}]+?)}", r"s/^($$1)/lc($1)/e;"),
    ("{,,([^}]+?)}", r"s/($$1)/lc($1)/eg;"),
];

/// One defined string: how to find it, plainly and in its positional form.
#[derive(Clone, Debug)]
struct Definition {
    plain: Regex,
    positional: Option<Regex>,
    code: String,
}

/// The defined strings of a run, longest tag first.
#[derive(Clone, Debug, Default)]
pub struct Rpl {
    definitions: Vec<Definition>,
}

impl Rpl {
    /// Definitions from `--plus` (if `plus`) and each `--rpl 'TAG perl'` (a later one,
    /// and `--rpl` over `--plus`, wins for the same TAG). Fails, naming the definition,
    /// on one without code or whose group span is not a regex.
    pub fn new(plus: bool, rpl: &[String]) -> Result<Self, String> {
        let mut defined: Vec<(String, String)> = Vec::new();
        let mut define = |tag: &str, code: &str| {
            defined.retain(|(t, _)| t != tag);
            defined.push((tag.to_owned(), code.to_owned()));
        };
        if plus {
            for (tag, code) in PLUS {
                define(tag, code);
            }
        }
        for text in rpl {
            // A tag alone stands for the value as it is (code that changes nothing).
            let text = text.trim_start();
            let (tag, code) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            if tag.is_empty() {
                return Err(format!(
                    "--rpl {text:?}: expected a tag, then Perl code (e.g. '{{..}} s:\\.[^.]+$::')"
                ));
            }
            define(tag, code);
        }
        defined.sort_by_key(|(tag, _)| std::cmp::Reverse(tag.len()));
        let mut definitions = Vec::with_capacity(defined.len());
        for (tag, code) in defined {
            let (prefix, group, postfix) = split_tag(&tag);
            let compile = |pattern: String| {
                Regex::new(&pattern)
                    .map_err(|e| format!("--rpl {tag:?}: its group {group:?} is not a regex: {e}"))
            };
            let plain = compile(format!(
                "{}{group}{}",
                regex::escape(prefix),
                regex::escape(postfix)
            ))?;
            let positional = match prefix.strip_prefix('{') {
                Some(rest) => Some(compile(format!(
                    r"\{{(-?\d+)\s*{}{group}{}",
                    regex::escape(rest),
                    regex::escape(postfix)
                ))?),
                None => None,
            };
            definitions.push(Definition {
                plain,
                positional,
                code,
            });
        }
        Ok(Self { definitions })
    }

    /// Whether nothing is defined.
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// `word` with every defined string replaced by its `{= perl =}`.
    pub fn expand(&self, word: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return word.to_vec();
        }
        // Pieces of the word: text still to search, or `{= … =}` already made.
        let mut pieces: Vec<(bool, Vec<u8>)> = split_perl(word);
        for definition in &self.definitions {
            for (is_perl, pattern) in [
                (false, Some(&definition.plain)),
                (true, definition.positional.as_ref()),
            ] {
                let Some(pattern) = pattern else { continue };
                let mut next = Vec::with_capacity(pieces.len());
                for (perl, text) in pieces {
                    if perl {
                        next.push((true, text));
                        continue;
                    }
                    let mut at = 0;
                    for found in pattern.captures_iter(&text) {
                        let whole = found.get(0).expect("group 0 is the match");
                        next.push((false, text[at..whole.start()].to_vec()));
                        next.push((true, definition.perl(&found, is_perl)));
                        at = whole.end();
                    }
                    next.push((false, text[at..].to_vec()));
                }
                pieces = next;
            }
        }
        pieces.into_iter().flat_map(|(_, text)| text).collect()
    }
}

impl Definition {
    /// The `{= … =}` for one match: the groups set as Perl strings first, and the
    /// position (the positional form's first group) before all.
    fn perl(&self, found: &Captures<'_>, positional: bool) -> Vec<u8> {
        let mut out = b"{=".to_vec();
        let mut groups = found.iter().skip(1);
        if positional && let Some(Some(position)) = groups.next() {
            out.extend_from_slice(position.as_bytes());
            out.push(b' ');
        }
        for (i, group) in groups.enumerate() {
            out.extend_from_slice(format!("$_pAr_gRp{} = \"", i + 1).as_bytes());
            for &b in group.map_or(&b""[..], |g| g.as_bytes()) {
                if matches!(b, b'\\' | b'"' | b'$' | b'@') {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.extend_from_slice(b"\";");
        }
        let code = Regex::new(r"\$\$(\d+)").expect("a valid regex");
        out.extend_from_slice(&code.replace_all(self.code.as_bytes(), &b"$$_pAr_gRp${1}"[..]));
        out.extend_from_slice(b"=}");
        out
    }
}

/// A tag's text before its group span, the span (from the first `(` to the last `)`),
/// and the text after.
fn split_tag(tag: &str) -> (&str, &str, &str) {
    match (tag.find('('), tag.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            (&tag[..open], &tag[open..=close], &tag[close + 1..])
        }
        _ => (tag, "", ""),
    }
}

/// `word` as pieces: `{= … =}` (true) and the text between (false).
fn split_perl(word: &[u8]) -> Vec<(bool, Vec<u8>)> {
    let mut pieces = Vec::new();
    let mut rest = word;
    while let Some(start) = memchr::memmem::find(rest, b"{=") {
        let Some(end) = memchr::memmem::find(&rest[start + 2..], b"=}") else {
            break;
        };
        let end = start + 2 + end + 2;
        pieces.push((false, rest[..start].to_vec()));
        pieces.push((true, rest[start..end].to_vec()));
        rest = &rest[end..];
    }
    pieces.push((false, rest.to_vec()));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(rpl: &Rpl, word: &str) -> String {
        String::from_utf8(rpl.expand(word.as_bytes())).unwrap()
    }

    #[test]
    fn a_tag_becomes_its_perl_plainly_and_by_position() {
        let rpl = Rpl::new(false, &[r"{..} s:\.[^.]+$::;s:\.[^.]+$::;".into()]).unwrap();
        assert_eq!(
            expand(&rpl, "a{..}b {2..}"),
            r"a{=s:\.[^.]+$::;s:\.[^.]+$::;=}b {=2 s:\.[^.]+$::;s:\.[^.]+$::;=}"
        );
        // Nothing inside an existing {= … =} is touched.
        assert_eq!(expand(&rpl, "{= $_ .= '{..}' =}"), "{= $_ .= '{..}' =}");
    }

    #[test]
    fn groups_are_given_as_quoted_perl_strings() {
        let rpl = Rpl::new(false, &[r"{%(.+?)} s/$$1$//;".into()]).unwrap();
        assert_eq!(
            expand(&rpl, r#"{%.g"z}"#),
            r#"{=$_pAr_gRp1 = ".g\"z";s/$_pAr_gRp1$//;=}"#
        );
    }

    #[test]
    fn longer_tags_first_and_later_definitions_win() {
        let rpl = Rpl::new(
            false,
            &["% s/a/b/".into(), "%% s/b/a/".into(), "% uc".into()],
        )
        .unwrap();
        assert_eq!(expand(&rpl, "%%-%"), "{=s/b/a/=}-{=uc=}");
        // A tag alone is the value unchanged; nothing at all is an error.
        assert_eq!(
            expand(&Rpl::new(false, &["%".into()]).unwrap(), "%"),
            "{==}"
        );
        assert!(Rpl::new(false, &["".into()]).is_err());
        assert!(Rpl::new(false, &["{x(} code".into()]).is_ok());
    }
}
