//! Past one machine, in the tour: `concur run -S` and the `concur gcd --hosts` pool
//! over SSH, against a private sshd on 127.0.0.2 and 127.0.0.3 (both this machine).

use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{TourError, heading};
use crate::parallel::gcd::BOOK_PAIRS;
use crate::parallel::pool::{PoolOptions, RemoteWorkers};
use crate::parallel::{self, Mode};
use crate::process::{CancelToken, Cmd};
use crate::remote::sshd::LocalSshd;
use crate::remote::{Hosts, SshLogin, Workdir};
use crate::runner::{
    self, Input, JobSource, Jobs, RunOptions, Source, Streams, Template, TemplateOptions, Timeout,
};

fn demo(err: impl std::fmt::Display) -> TourError {
    TourError::Demo(std::io::Error::other(err.to_string()))
}

/// Runs the "past one machine" part of the tour.
pub(super) fn run(out: &mut dyn Write) -> Result<(), TourError> {
    heading(
        out,
        "Past one machine: concur run -S and concur gcd --hosts over SSH",
    )?;
    let sshd = match LocalSshd::start(&["127.0.0.2", "127.0.0.3"]) {
        Ok(sshd) => sshd,
        Err(why) => {
            writeln!(
                out,
                "skipped: {why}; README \"Across machines\" shows what this part does"
            )?;
            return Ok(());
        }
    };
    writeln!(
        out,
        "A private sshd (generated keys) on 127.0.0.2 and 127.0.0.3, port {}: two \"hosts\"\n\
         that are this machine. One master connection per host; each job is one session on it.",
        sshd.port
    )?;
    let logins: Vec<SshLogin> = [sshd.login("127.0.0.2", 2), sshd.login("127.0.0.3", 1)]
        .iter()
        .map(|l| l.parse().map_err(demo))
        .collect::<Result<_, _>>()?;
    let command: Vec<String> = sshd
        .ssh_command()
        .split_whitespace()
        .map(String::from)
        .collect();
    let connect = |logins: Vec<SshLogin>| {
        Hosts::connect(
            logins,
            command.clone(),
            None,
            Workdir::RunDir,
            None,
            &mut |_| {},
            None,
        )
        .map(Arc::new)
        .map_err(demo)
    };
    let hosts = connect(logins.clone())?;

    // Jobs spread over both hosts; the joblog says where each ran.
    let dir = tempfile::tempdir()?;
    let words: Vec<String> = ["echo", "{}"].map(String::from).to_vec();
    let template = Template::parse(&words, &TemplateOptions::default()).map_err(demo)?;
    let mut options = RunOptions::new(template);
    options.jobs = NonZeroUsize::new(hosts.slots()).unwrap_or(NonZeroUsize::MIN);
    options.keep_order = true;
    options.joblog = Some(dir.path().join("joblog"));
    options.hosts = Some(Arc::clone(&hosts));
    let inputs: Vec<Vec<u8>> = (1..=12).map(|i| format!("job-{i}").into_bytes()).collect();
    options.input.inputs = vec![Input {
        source: Source::List(inputs),
        linked: false,
    }];
    let jobs = Jobs::open(&options.input, None).map_err(demo)?;
    let mut streams = Streams {
        out: Vec::new(),
        err: Vec::new(),
    };
    let cancel = CancelToken::new()?;
    let start = Instant::now();
    let summary = runner::run_jobs(&options, JobSource::Args(jobs), &mut streams, &cancel)?;
    let seconds = start.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(dir.path().join("joblog"))?;
    let on = |host: &str| {
        log.lines()
            .filter(|l| l.split('\t').nth(1).is_some_and(|h| h.starts_with(host)))
            .count()
    };
    let lines = String::from_utf8_lossy(&streams.out).lines().count();
    writeln!(
        out,
        "\n`concur run -S 2/127.0.0.2:{p},1/127.0.0.3:{p} echo {{}} ::: job-1 … job-12`:\n  \
         {} jobs, {lines} lines in input order, in {seconds:.2} s; the joblog's Host column:\n  \
         {} on 127.0.0.2 (2 slots), {} on 127.0.0.3 (1 slot); {} failed",
        summary.jobs,
        on("127.0.0.2"),
        on("127.0.0.3"),
        summary.failed,
        p = sshd.port,
    )?;

    // A timeout stops the remote job's process group, not only the local ssh: an
    // ordinary job through its watched stdin; a --pipe job (its stdin is its data)
    // from a second session that stops the group its pid file names.
    let mut timed_out = Vec::new();
    for (line, sleep, pipe) in [
        ("sleep 3109; echo {}", "sleep 3109", false),
        ("cat >/dev/null; sleep 3110", "sleep 3110", true),
    ] {
        let words = vec![line.to_owned()];
        let mut options =
            RunOptions::new(Template::parse(&words, &TemplateOptions::default()).map_err(demo)?);
        options.jobs = NonZeroUsize::MIN;
        options.timeout = Some(Timeout::Fixed(Duration::from_millis(500)));
        options.grace = Duration::from_millis(500);
        options.hosts = Some(connect(logins[..1].to_vec())?);
        let summary = if pipe {
            options.pipe = Some(runner::PipeOptions::default());
            let stdin: Box<dyn std::io::BufRead + Send> = Box::new(&b"x\n"[..]);
            runner::run(&options, Some(stdin), &mut streams, &cancel)?
        } else {
            options.input.inputs = vec![Input {
                source: Source::List(vec![b"x".to_vec()]),
                linked: false,
            }];
            let jobs = Jobs::open(&options.input, None).map_err(demo)?;
            runner::run_jobs(&options, JobSource::Args(jobs), &mut streams, &cancel)?
        };
        // Asked over SSH, as the remote machine's owner would: the stop takes a
        // moment on the host (a busy one, longer), so it looks for up to 10 s.
        let ask = format!(
            "i=0; while pgrep -f '^{sleep}$' >/dev/null && [ $i -lt 100 ]; do sleep 0.1; \
             i=$((i + 1)); done; pgrep -c -f '^{sleep}$' || true"
        );
        let argv = hosts.ssh.argv(&logins[0], ask.as_bytes());
        let left = Cmd::new(&argv[0])
            .args(&argv[1..])
            .timeout(Duration::from_secs(10))
            .output()?;
        timed_out.push((
            summary.timed_out,
            String::from_utf8_lossy(&left.stdout).trim().to_owned(),
        ));
    }
    writeln!(
        out,
        "\n`--timeout 0.5 'sleep 3109; echo {{}}'` on 127.0.0.2: {} timed out; `pgrep` over SSH\n  \
         (looking for up to 10 s) then finds {} such process there (the remote job watches\n  \
         its session's stdin and stops its whole process group when the local ssh goes)\n\
         `--pipe --timeout 0.5 'cat >/dev/null; sleep 3110'`: {} timed out; {} such process\n  \
         left (its stdin is its data: a second session stops the group it wrote down; looked\n  \
         for the same way)",
        timed_out[0].0, timed_out[0].1, timed_out[1].0, timed_out[1].1,
    )?;

    // The login shell per job, or once per host: sessions against the agent.
    let program = std::env::current_exe()?;
    let agent_hosts = Arc::new(
        Hosts::connect(
            logins[..1].to_vec(),
            command.clone(),
            None,
            Workdir::RunDir,
            Some(program.display().to_string()),
            &mut |_| {},
            None,
        )
        .map_err(demo)?,
    );
    let mut rates = Vec::new();
    for hosts in [connect(logins[..1].to_vec())?, agent_hosts] {
        let words: Vec<String> = ["true"].map(String::from).to_vec();
        let mut options =
            RunOptions::new(Template::parse(&words, &TemplateOptions::default()).map_err(demo)?);
        options.jobs = NonZeroUsize::new(hosts.slots()).unwrap_or(NonZeroUsize::MIN);
        options.hosts = Some(hosts);
        options.input.inputs = vec![Input {
            source: Source::List((1..=40).map(|i| i.to_string().into_bytes()).collect()),
            linked: false,
        }];
        let jobs = Jobs::open(&options.input, None).map_err(demo)?;
        let start = Instant::now();
        let summary = runner::run_jobs(&options, JobSource::Args(jobs), &mut streams, &cancel)?;
        rates.push((
            summary.jobs,
            summary.failed,
            summary.jobs as f64 / start.elapsed().as_secs_f64(),
        ));
    }
    let ((jobs, plain_failed, plain), (_, agent_failed, agent)) = (rates[0], rates[1]);
    writeln!(
        out,
        "\n{jobs} jobs of `true` on 127.0.0.2 (2 slots): a session each, {plain:.1} jobs/s \
         ({plain_failed} failed);\n  through one `concur agent` session (--remote-agent), \
         {agent:.1} jobs/s ({agent_failed} failed):\n  {:.1}x, the login shell started once \
         (when connecting, before either clock starts) instead of once per job",
        agent / plain,
    )?;

    // The gcd pool's workers over SSH: the same frames, results as serial.
    let mut pool = PoolOptions::new(NonZeroUsize::MIN, &program);
    pool.workers = NonZeroUsize::new(hosts.slots()).unwrap_or(NonZeroUsize::MIN);
    pool.remote = Some(RemoteWorkers {
        hosts: Arc::clone(&hosts),
        program: program.display().to_string(),
    });
    let pairs = parallel::repeat(&BOOK_PAIRS, 4).ok_or_else(|| demo("too many pairs"))?;
    let start = Instant::now();
    let remote = parallel::run(Mode::Processes, &pairs, &pool, &cancel).map_err(demo)?;
    let seconds = start.elapsed().as_secs_f64();
    let serial = parallel::run(Mode::Serial, &pairs, &pool, &cancel).map_err(demo)?;
    writeln!(
        out,
        "\n`concur gcd --hosts 2/127.0.0.2:{p},1/127.0.0.3:{p} --scale 4`: {} tasks on {} workers\n  \
         (`ssh host concur worker`, postcard frames over the SSH channel) in {seconds:.2} s;\n  \
         results {} the serial run's",
        pairs.len(),
        remote.workers,
        if remote.results == serial.results {
            "equal"
        } else {
            "DIFFER FROM"
        },
        p = sshd.port,
    )?;
    writeln!(
        out,
        "\nOn real machines the hosts add cores; here they share this one's. Per-job and\n\
         per-task costs against GNU parallel -S and the local pool: benches/ssh.sh."
    )?;
    Ok(())
}
