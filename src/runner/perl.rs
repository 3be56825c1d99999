//! `{= perl expression =}`: GNU parallel's replacement strings written in Perl,
//! evaluated by one `perl` child per run.
//!
//! GNU parallel is Perl and evaluates the expression itself, with `$_` set to the
//! argument; whatever `$_` holds afterwards replaces the string. concur cannot be Perl,
//! so it starts `perl` once, sends it each distinct expression once (compiled there to
//! a sub), and then one request per value: the expression's number, the job's
//! sequence number and slot, the value and the job's arguments. The reply is the new
//! `$_` and two flags: `uq()` was called (insert the value unquoted) or `skip()` was
//! (do not run the job). Frames are a 4-byte big-endian length and NUL-separated
//! fields (an argument cannot hold a NUL).
//!
//! Inside an expression: `$_`, `$job->seq()`, `$job->slot()`, `@arg` (the job's
//! arguments, `$arg[1]` the first), `Q($text)` (shell-quoted), `uq()`, `skip()`.
//! Requests from the job threads take turns on one pipe pair.

use std::io::{self, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

/// The Perl side: compiles expressions and evaluates them, one frame at a time.
const PROGRAM: &str = r#"
use strict; use warnings; no warnings 'redefine';
binmode STDIN; binmode STDOUT; $| = 1;
our ($seq, $slot, $uq, $skip) = (0, 0, 0, 0);
our @arg;
our $total = 0; $Global::max_jobs_running = 1;
package ConcurJob { sub seq { $main::seq } sub slot { $main::slot } sub total_jobs { $main::total } }
our $job = bless {}, 'ConcurJob';
sub seq { $seq } sub slot { $slot } sub total_jobs { $total }
use File::Basename qw(dirname basename);
sub shell_quote { return wantarray ? (map { Q($_) } @_) : join(" ", map { Q($_) } @_) }
sub uniq { no warnings; my %seen; return grep { !$seen{$_}++ } @_ }
sub pQ { my $s = shift; $s =~ s/([\\"\$\@])/\\$1/g; return $s }
# A regex with each quantifier made lazy (for --plus's {#…} and {%…}).
sub make_regexp_ungreedy { my ($re) = @_; my ($out, $class, $esc, $quant) = ('', 0, 0, 0);
  for my $c (split //, $re) {
    if ($quant) { $out .= '?' if $c ne '?'; $quant = 0 }
    $out .= $c;
    if ($esc) { $esc = 0 } elsif ($c eq '\\') { $esc = 1 } elsif ($class) { $class = 0 if $c eq ']' }
    elsif ($c eq '[') { $class = 1 } elsif ($c =~ /[*+}]/) { $quant = 1 } }
  $out .= '?' if $quant; return $out }
sub Q { my $s = shift; return "''" if !defined $s || $s eq '';
  return $s if $s =~ m{^[-_.+a-zA-Z0-9/]+$};
  $s =~ s/'/'"'"'/g; $s = "'$s'"; $s =~ s/^''//; $s =~ s/''$//; return $s }
sub uq { $main::uq = 1; return }
sub skip { $main::skip = 1; return }
my @code;
sub reply { my $m = join("\0", @_); print pack("N", length $m), $m }
while (read(STDIN, my $head, 4) == 4) {
  my $len = unpack("N", $head); my $msg = '';
  while (length($msg) < $len) { read(STDIN, $msg, $len - length($msg), length $msg) or exit 0 }
  my ($kind, @f) = split /\0/, $msg, -1;
  if ($kind eq 'C') {
    no strict; no warnings;
    my $sub = eval "sub { $f[0]\n; }";
    if ($@) { my $e = $@; $e =~ s/\s+$//; reply('E', $e) } else { push @code, $sub; reply('K', $#code) }
  } else {
    my ($id, $s, $j, $t, $m, $value, @args) = @f;
    ($seq, $slot, $total, $Global::max_jobs_running, $uq, $skip) = ($s, $j, $t, $m, 0, 0);
    @arg = (undef, @args);
    local $_ = $value;
    my $ok = eval { no warnings; $code[$id]->(); 1 };
    if (!$ok) { my $e = $@; $e =~ s/\s+$//; reply('E', $e) }
    else { reply('V', ($uq ? 1 : 0) . ($skip ? 1 : 0), defined $_ ? $_ : '') }
  }
}
"#;

/// What one evaluation gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Evaluated {
    /// `$_` after the expression ran.
    pub(crate) value: Vec<u8>,
    /// `uq()` was called: the value goes in unquoted.
    pub(crate) unquoted: bool,
    /// `skip()` was called: the job is not run.
    pub(crate) skip: bool,
}

struct Channel {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

/// The run's `perl` child. Dropping the last handle closes its stdin, which ends it.
pub struct Perl {
    channel: Mutex<Channel>,
    /// `total_jobs()`, once the input is all read (0 before).
    total: std::sync::atomic::AtomicUsize,
    /// The job slots, for `$Global::max_jobs_running`.
    slots: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Perl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Perl")
    }
}

impl Drop for Perl {
    fn drop(&mut self) {
        let channel = self
            .channel
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = channel.child.kill();
        let _ = channel.child.wait();
    }
}

impl Perl {
    /// Starts `perl`; the error says so plainly when it is not installed.
    pub fn start() -> Result<Arc<Self>, String> {
        let mut child = Command::new("perl")
            .arg("-e")
            .arg(PROGRAM)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => {
                    "{= perl expression =} needs perl, which is not installed (not on PATH)"
                        .to_owned()
                }
                _ => format!("cannot start perl for {{= perl expression =}}: {e}"),
            })?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("cannot talk to perl: no pipes".into());
        };
        Ok(Arc::new(Self {
            channel: Mutex::new(Channel {
                child,
                input,
                output: BufReader::new(output),
            }),
            total: std::sync::atomic::AtomicUsize::new(0),
            slots: std::sync::atomic::AtomicUsize::new(1),
        }))
    }

    /// Sets what `total_jobs()` gives.
    pub fn set_total(&self, total: usize) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the run's job slots (`$Global::max_jobs_running`).
    pub fn set_slots(&self, slots: usize) {
        self.slots
            .store(slots, std::sync::atomic::Ordering::Relaxed);
    }

    /// One request and its reply's fields.
    fn ask(&self, fields: &[&[u8]]) -> io::Result<Vec<Vec<u8>>> {
        let message = fields.join(&b'\0');
        let length = u32::try_from(message.len())
            .map_err(|_| io::Error::other("a value too long for perl (over 4 GiB)"))?;
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        let mut frame = length.to_be_bytes().to_vec();
        frame.extend_from_slice(&message);
        channel.input.write_all(&frame)?;
        channel.input.flush()?;
        let mut head = [0; 4];
        channel.output.read_exact(&mut head)?;
        let mut reply = vec![0; u32::from_be_bytes(head) as usize];
        channel.output.read_exact(&mut reply)?;
        Ok(reply.split(|&b| b == 0).map(<[u8]>::to_vec).collect())
    }

    /// Compiles `expression`; its number, or Perl's complaint.
    pub(crate) fn compile(&self, expression: &str) -> Result<usize, String> {
        let reply = self
            .ask(&[b"C", expression.as_bytes()])
            .map_err(|e| format!("perl stopped answering: {e}"))?;
        match reply.as_slice() {
            [kind, id] if kind == b"K" => String::from_utf8_lossy(id)
                .parse()
                .map_err(|_| "perl answered nonsense".to_owned()),
            [kind, error, ..] if kind == b"E" => Err(format!(
                "{{={expression}=}} is not valid Perl: {}",
                String::from_utf8_lossy(error)
            )),
            _ => Err("perl answered nonsense".into()),
        }
    }

    /// Runs expression `id` with `$_` = `value`; an error is Perl's `die` message.
    pub(crate) fn evaluate(
        &self,
        id: usize,
        seq: usize,
        slot: usize,
        value: &[u8],
        args: &[Vec<u8>],
    ) -> Result<Evaluated, String> {
        let (id, seq, slot) = (id.to_string(), seq.to_string(), slot.to_string());
        let total = self
            .total
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let slots = self
            .slots
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let mut fields: Vec<&[u8]> = vec![
            b"E",
            id.as_bytes(),
            seq.as_bytes(),
            slot.as_bytes(),
            total.as_bytes(),
            slots.as_bytes(),
        ];
        fields.push(value);
        fields.extend(args.iter().map(Vec::as_slice));
        let reply = self
            .ask(&fields)
            .map_err(|e| format!("perl stopped answering: {e}"))?;
        match reply.as_slice() {
            // A NUL the expression put in `$_` split the value: join it back.
            [kind, flags, value @ ..] if kind == b"V" && flags.len() == 2 => Ok(Evaluated {
                value: value.join(&b'\0'),
                unquoted: flags[0] == b'1',
                skip: flags[1] == b'1',
            }),
            [kind, error, ..] if kind == b"E" => Err(String::from_utf8_lossy(error).into_owned()),
            _ => Err("perl answered nonsense".into()),
        }
    }
}

/// `--filter EXPR`: a job runs only if EXPR, its replacement strings filled in
/// unquoted, is true as Perl (GNU parallel's: `--filter '{1} < {2}'`). A job filtered
/// out is declined as by `skip()`. An expression that does not compile or dies is
/// false.
#[derive(Clone, Debug)]
pub struct Filter {
    perl: Arc<Perl>,
    check: usize,
    texts: Vec<super::Template>,
}

impl Filter {
    /// The filters `texts` (all must hold), evaluated by `perl`.
    pub fn new(perl: Arc<Perl>, texts: Vec<super::Template>) -> Result<Self, String> {
        // Under `use strict`, as in GNU parallel: a bare word is an error (false), so
        // text is compared quoted, as in `"{}" ne "b"`.
        let check = perl.compile("use strict; $_ = (eval $_) ? 1 : 0")?;
        Ok(Self { perl, check, texts })
    }

    /// Whether the job with these arguments passes every filter.
    pub(crate) fn passes(&self, args: &super::JobArgs, seq: usize, slot: usize) -> bool {
        self.texts.iter().all(|text| {
            let code = text.render_text(args, seq, slot);
            self.perl
                .evaluate(self.check, seq, slot, &code, &args.values)
                .is_ok_and(|done| done.value == b"1")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perl() -> Option<Arc<Perl>> {
        match Perl::start() {
            Ok(perl) => Some(perl),
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn expressions_see_the_value_the_job_and_the_arguments() {
        let Some(perl) = perl() else { return };
        let strip = perl.compile(r"s/\.gz$//").unwrap();
        let seq = perl.compile("$_ = $job->seq() * 2 + $job->slot()").unwrap();
        let args = perl.compile("$_ = $arg[2] . uc($arg[1])").unwrap();
        let quoted = perl.compile("$_ = Q($_)").unwrap();
        let flags = perl.compile("uq(); skip() if /x/").unwrap();
        let ev = |id, value: &str| {
            perl.evaluate(id, 7, 3, value.as_bytes(), &[b"a".to_vec(), b"b".to_vec()])
        };
        assert_eq!(ev(strip, "f.tar.gz").unwrap().value, b"f.tar");
        assert_eq!(ev(seq, "").unwrap().value, b"17");
        assert_eq!(ev(args, "").unwrap().value, b"bA");
        assert_eq!(ev(quoted, "it's").unwrap().value, br#"'it'"'"'s'"#);
        let flagged = ev(flags, "x").unwrap();
        assert!(flagged.unquoted && flagged.skip);
        let plain = ev(flags, "y").unwrap();
        assert!(plain.unquoted && !plain.skip);
        // Values that are not UTF-8 pass through as bytes.
        let bytes = perl.evaluate(strip, 1, 1, b"caf\xe9.gz", &[]).unwrap();
        assert_eq!(bytes.value, b"caf\xe9");
    }

    #[test]
    fn bad_perl_and_dying_expressions_are_errors_with_perls_words() {
        let Some(perl) = perl() else { return };
        let err = perl.compile("s/unclosed(/").unwrap_err();
        assert!(err.contains("is not valid Perl"), "{err}");
        let dies = perl.compile("die 'no such file'").unwrap();
        let err = perl.evaluate(dies, 1, 1, b"", &[]).unwrap_err();
        assert!(err.contains("no such file"), "{err}");
        // It still answers after both.
        let id = perl.compile("$_ .= '!'").unwrap();
        assert_eq!(perl.evaluate(id, 1, 1, b"ok", &[]).unwrap().value, b"ok!");
    }
}
