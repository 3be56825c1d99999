#!/usr/bin/env python3
"""Runs GNU parallel's own local test cases against GNU parallel and against `concur run`,
and counts the cases whose output is identical.

    python3 benches/gnu_suite.py DIR target/release/concur [--only NAME] [--show] [--cache DIR]

DIR holds the `parallel-local*.sh` files of `testsuite/tests-to-run/` in GNU parallel's
source, at the release installed here (20221122 on Debian 12), e.g. from a checkout:

    for f in $(git ls-tree --name-only fc277924 testsuite/tests-to-run/ | grep parallel-local); do
        git show fc277924:$f > DIR/$(basename $f); done

Nothing of GNU parallel's suite is kept in this project; this script only runs it.

Each `par_*` function is a case. A case counts only if every `parallel` call in it uses
flags that `concur run` supports (the README's "yes" rows, under any spelling GNU
parallel accepts) and no other tool of the GNU parallel package but `sem` (not parset,
env_parallel, parsort, niceload, sql). It runs twice in a fresh temporary directory,
with `parallel` and `sem` on PATH standing for GNU parallel (`--will-cite`), then for
`concur run` and `concur sem`; each run gets 60 s (`--timeout S`). A case that GNU parallel itself does
not finish in that time cannot be compared: it is listed apart and not counted.
Reported: cases identical on stdout and exit status, and on stdout, stderr and exit
status. `--cache DIR` keeps GNU parallel's results
there and reuses them (they do not change between runs of concur).
"""
import os, re, shlex, shutil, subprocess, sys, tempfile

suite_dir, concur = sys.argv[1], os.path.abspath(sys.argv[2])
only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
show = "--show" in sys.argv
cache = sys.argv[sys.argv.index("--cache") + 1] if "--cache" in sys.argv else None
limit = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 60.0
gnu = shutil.which("parallel")

# (Cases that log in to other machines need an sshd on port 22, which the local suite
# does not start: -S and --slf cases are left out, as are --header values but `:`.)
# Supported flags, under every spelling GNU parallel 20221122 accepts, and whether
# each takes a value. (-j FILE, --load and --memfree are values of supported flags.)
TAKES_VALUE = set("""a arg-file argfile d delimiter C colsep col-sep header N
max-replace-args maxreplaceargs n max-args maxargs I j jobs P max-procs maxprocs delay
timeout retries halt halt-on-error joblog jl tagstring tag-string results result res
tmpdir tempdir block block-size blocksize bs recstart recend load memfree S sshlogin ssh
slf sshloginfile transferfile tf transfer-file transfer-files transferfiles return trc
workdir wd work-dir E eof arg-sep argsep arg-file-sep argfilesep L max-lines s max-chars
nice J profile filter rpl compress-program compressprogram use-compress-program
decompress-program decompressprogram use-decompress-program""".split())
FLAGS = TAKES_VALUE | set("""link xapply 0 null X m q quote k keep-order keeporder resume
resume-failed resumefailed tag line-buffer lb linebuffer line-buffered linebuffered u
ungroup v dry-run dryrun dr shuf bar eta progress will-cite willcite files
output-as-files outputasfiles pipe spreadstdin cleanup r no-run-if-empty shellquote regexp
regex shebang hashbang semaphore pipepart pipe-part round-robin roundrobin round tee plus csv compress""".split())
OTHER_TOOLS = re.compile(r"\b(parset|env_parallel|parsort|niceload|sql|--sql\w*)\b")
# Features that are no flag of their own and concur lacks: $PARALLEL_ENV,
# --shebang-wrap; cases that log in to other machines; and
# cases that call parallel by an absolute path (`#!/usr/local/bin/parallel`), which
# the wrapper on PATH cannot stand for.
UNSUPPORTED = re.compile(r"\bPARALLEL_ENV\b|\.json\b|--shebang-wrap|bin/parallel\b"
                         r"|\s-S\s*\S|--sshlogin|--slf|--sshloginfile|--number-of-")


def cases(path):
    """Each case's name and body, with the bodies of the file's helper functions it calls
    (so that their flags are checked too)."""
    text = open(path, errors="replace").read()
    functions = dict((m.group(1), m.group(2)) for m in
                     re.finditer(r"^([\w-]+)\s*\(\)\s*\{\n(.*?)^\}", text, re.M | re.S))
    for name, body in functions.items():
        if not name.startswith("par_"):
            continue
        seen, todo = {name}, [body]
        while todo:
            for helper, text_of in functions.items():
                if helper not in seen and not helper.startswith("par_") and \
                        re.search(r"(?<![\w-])" + re.escape(helper) + r"(?![\w-])", todo[0]):
                    seen.add(helper)
                    todo.append(text_of)
                    body += "\n" + text_of
            todo.pop(0)
        yield name, body


def flags_ok(body):
    """Whether every parallel call in `body` uses only supported flags."""
    if OTHER_TOOLS.search(body) or UNSUPPORTED.search(body):
        return False
    for line in body.replace("\\\n", " ").splitlines():
        stripped = line.strip()
        # A comment, or a title (`echo '### …'`) that no pipe feeds to parallel.
        if stripped.startswith("#") or (stripped.startswith("echo") and "|" not in stripped):
            continue
        for m in re.finditer(r"(?<![\w./$-])parallel\b(?![.\w-])", line):
            rest = line[m.end():]
            try:
                words = shlex.split(rest, posix=True)
            except ValueError:
                words = rest.split()
            i = 0
            while i < len(words):
                w = words[i]
                if w in (":::", "::::", ":::+", "::::+") or not w.startswith("-") or w == "-":
                    break
                if w == "--":
                    break
                name = w.lstrip("-")
                value = None
                if "=" in name:
                    name, value = name.split("=", 1)
                if len(w) > 2 and not w.startswith("--"):
                    # -j2, -kv, -n1: a short flag glued to its value or to others.
                    if w[1] in TAKES_VALUE or w[1] in "jnNaCdIPS":
                        name, value = w[1], w[2:]
                    elif all(c in FLAGS for c in w[1:]):
                        i += 1
                        continue
                    else:
                        return False
                if name not in FLAGS:
                    return False
                i += 2 if name in TAKES_VALUE and value is None else 1
    return True


def run(path, name, mode, work):
    bindir = os.path.join(work, ".bin")
    os.makedirs(bindir, exist_ok=True)
    for tool in ("parallel", "sem"):
        wrapper = os.path.join(bindir, tool)
        with open(wrapper, "w") as f:
            # bash, not sh: dash drops the functions bash exports (BASH_FUNC_f%%), which
            # many cases hand to parallel.
            f.write("#!/bin/bash\n[ -n \"$GNU_SUITE_CASE\" ] || exit 0\n")
            if mode == "gnu" and tool == "parallel":
                # GNU parallel reads --shebang only as its first argument.
                f.write(f'case "$1" in --shebang*) exec {shlex.quote(gnu)} "$@";; esac\n')
                f.write(f'exec {shlex.quote(gnu)} --will-cite "$@"\n')
            elif mode == "gnu":
                f.write(f'exec {shlex.quote(gnu)} --semaphore --will-cite "$@"\n')
            else:
                f.write(f'exec {shlex.quote(concur)} {"run" if tool == "parallel" else "sem"} "$@"\n')
        os.chmod(wrapper, 0o755)
    script = (f"source {shlex.quote(path)} >/dev/null 2>&1 </dev/null\n"
              f"export GNU_SUITE_CASE=1\n{name}\n")
    env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], TMPDIR=work, HOME=work,
               LC_ALL="C", SHELL="/bin/bash")
    env.pop("GNU_SUITE_CASE", None)
    try:
        p = subprocess.run(["bash", "-c", script], cwd=work, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=limit)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return "timeout", e.stdout or b"", e.stderr or b""


counted = same = same_all = 0
differ, unfinished = [], []
for file in sorted(os.listdir(suite_dir)):
    if not file.startswith("parallel-local") or not file.endswith(".sh"):
        continue
    if re.search(r"ssh|sql|parsort", file):
        continue
    path = os.path.join(suite_dir, file)
    for name, body in cases(path):
        if only and name != only:
            continue
        if not flags_ok(body):
            continue
        counted += 1
        results = []
        for mode in ("gnu", "concur"):
            # Two files may hold cases of the same name.
            cached = cache and os.path.join(cache, file[:-3] + "." + name)
            if mode == "gnu" and cached and os.path.exists(cached + ".status"):
                status = open(cached + ".status").read().strip()
                results.append((int(status) if status.lstrip("-").isdigit() else status,
                                open(cached + ".out", "rb").read(),
                                open(cached + ".err", "rb").read()))
                continue
            with tempfile.TemporaryDirectory() as work:
                results.append(run(path, name, mode, work))
            if mode == "gnu" and cached:
                os.makedirs(cache, exist_ok=True)
                open(cached + ".status", "w").write(str(results[0][0]))
                open(cached + ".out", "wb").write(results[0][1])
                open(cached + ".err", "wb").write(results[0][2])
        (gs, go, ge), (cs, co, ce) = results
        if gs == "timeout":
            counted -= 1
            unfinished.append(name)
        elif gs == cs and go == co:
            same += 1
            if ge == ce:
                same_all += 1
        else:
            differ.append(name)
            if show:
                print(f"--- {file} {name}: status gnu {gs} concur {cs}")
                print("gnu stdout:\n" + go.decode(errors="replace")[:1500])
                print("concur stdout:\n" + co.decode(errors="replace")[:1500])
                print("concur stderr:\n" + ce.decode(errors="replace")[:600])

print(f"{counted} cases use only supported flags; {same} identical on stdout and exit status "
      f"({100 * same / max(counted, 1):.0f}%); {same_all} also on stderr")
print("differ:", " ".join(differ))
print(f"not counted, GNU parallel did not finish in {limit:.0f} s:", " ".join(unfinished))
