//! `--round-robin` and `--tee`: blocks of standard input written to jobs that stay
//! running, instead of one block per job.
//!
//! Each such job reads a pipe of its own. One feeder thread owns the pipes' write
//! ends and writes without blocking, polling the pipes that have data waiting:
//! - **round-robin**: up to `-j` jobs are started, one per block as blocks come; later
//!   blocks go, whole, to whichever job has taken all it was given. A block no byte of
//!   which was taken by a job that closed its input goes to another job, so a job that
//!   exits early loses only what it read and did not want.
//! - **tee**: every block goes to every job; the next block is read once every job has
//!   taken this one, so memory stays at one block however slow the slowest job is.
//!
//! The jobs' input ends only once every job has started (taken its pipe), and with
//! `--tee` nothing is written before that: no job can end and free its slot (`{%}`)
//! before the last has taken one, as in GNU parallel.
//!
//! When the input ends (and every block is written), the write ends are closed and the
//! jobs see end of input.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rustix::event::{PollFd, PollFlags, poll};

use super::pipe::Blocks;
use crate::process::{Input, ReadEnd};

/// How blocks are shared among the jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Each block to one job, whichever is ready.
    RoundRobin,
    /// Every block to every job.
    Tee,
}

enum Message {
    /// A new job's pipe, with the block it starts with (round-robin).
    Outlet(File, Option<Vec<u8>>),
    /// The rest of the input: every job is known.
    Blocks(Box<Blocks>),
}

/// The feeder thread, and the way to give it pipes.
pub struct Feeder {
    messages: Option<Sender<Message>>,
    /// Given to each job's pipe and dropped when the job takes it (see [`ReadEnd`]):
    /// every copy is gone once every job has started.
    taken: Option<Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Feeder {
    /// Starts the feeder thread.
    pub fn start(sharing: Sharing) -> io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (taken, all_taken) = crossbeam_channel::bounded(0);
        let thread = std::thread::Builder::new()
            .name("run-feeder".into())
            .spawn(move || feed(sharing, &rx, &all_taken))?;
        Ok(Self {
            messages: Some(tx),
            taken: Some(taken),
            thread: Some(thread),
        })
    }

    /// A new job's stdin: the read end of a pipe whose write end the feeder keeps,
    /// with `first` written to it first.
    pub fn outlet(&self, first: Option<Vec<u8>>) -> io::Result<Input> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let write = File::from(write);
        rustix::io::ioctl_fionbio(&write, true)?;
        if let Some(messages) = &self.messages {
            messages
                .send(Message::Outlet(write, first))
                .map_err(|_| io::Error::other("the feeder thread ended early"))?;
        }
        Ok(Input::Pipe(Arc::new(ReadEnd::new(
            read,
            self.taken.clone(),
        ))))
    }

    /// Hands the rest of the input to the feeder: no job is added after this.
    pub fn finish_later(&mut self, blocks: Option<Blocks>) {
        if let (Some(messages), Some(blocks)) = (self.messages.take(), blocks) {
            let _ = messages.send(Message::Blocks(Box::new(blocks)));
        }
        self.messages = None;
        self.taken = None;
    }

    /// [`finish_later`](Self::finish_later), then waits until the input is all
    /// written (or no job takes more); its error, if reading failed.
    pub fn finish(&mut self, blocks: Option<Blocks>) -> io::Result<()> {
        self.finish_later(blocks);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the feeder thread panicked"))),
            None => Ok(()),
        }
    }
}

/// One job's pipe.
struct Outlet {
    file: File,
    /// What it was given and has not taken yet, from `.1` on.
    pending: Option<(Arc<[u8]>, usize)>,
}

/// How long to wait on the pipes before looking for new ones again.
const TICK: Duration = Duration::from_millis(20);

/// `all_taken`: a channel no one sends on, closed once every job has taken its pipe.
fn feed(
    sharing: Sharing,
    messages: &Receiver<Message>,
    all_taken: &Receiver<()>,
) -> io::Result<()> {
    let mut outlets: Vec<Outlet> = Vec::new();
    let mut blocks: Option<Blocks> = None;
    // Every job is known: the channel closed or the blocks came.
    let mut all_known = false;
    let mut input_done = false;
    // Round-robin: blocks to give again (a job closed its input before taking any).
    let mut again: VecDeque<Arc<[u8]>> = VecDeque::new();
    let mut next = 0usize;
    loop {
        // New pipes, and the rest of the input once every job is known.
        loop {
            let message = if all_known {
                break;
            } else if outlets.iter().any(|o| o.pending.is_some()) {
                match messages.try_recv() {
                    Ok(m) => m,
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        all_known = true;
                        break;
                    }
                }
            } else {
                match messages.recv() {
                    Ok(m) => m,
                    Err(_) => {
                        all_known = true;
                        break;
                    }
                }
            };
            match message {
                Message::Outlet(file, first) => outlets.push(Outlet {
                    file,
                    pending: first.map(|b| (Arc::from(b), 0)),
                }),
                Message::Blocks(rest) => {
                    blocks = Some(*rest);
                    all_known = true;
                }
            }
        }
        if all_known && blocks.is_none() {
            input_done = true;
        }
        // Give out blocks.
        match sharing {
            Sharing::RoundRobin => {
                while let Some(idle) = (0..outlets.len())
                    .map(|i| (next + i) % outlets.len())
                    .find(|&i| outlets[i].pending.is_none())
                {
                    let block = match again.pop_front() {
                        Some(block) => block,
                        // Before the rest of the input is handed over, only the
                        // jobs' first blocks are known.
                        None if input_done || blocks.is_none() => break,
                        None => match blocks.as_mut().map(Blocks::next_block).transpose()? {
                            Some(Some(block)) => Arc::from(block),
                            _ => {
                                input_done = true;
                                break;
                            }
                        },
                    };
                    outlets[idle].pending = Some((block, 0));
                    next = idle + 1;
                }
            }
            Sharing::Tee => {
                if all_known {
                    // Returns (disconnected) once every job has started.
                    let _ = all_taken.recv();
                }
                if all_known && !input_done && outlets.iter().all(|o| o.pending.is_none()) {
                    match blocks.as_mut().map(Blocks::next_block).transpose()? {
                        Some(Some(block)) => {
                            let block: Arc<[u8]> = Arc::from(block);
                            for outlet in &mut outlets {
                                outlet.pending = Some((Arc::clone(&block), 0));
                            }
                        }
                        _ => input_done = true,
                    }
                }
            }
        }
        if outlets.is_empty() && all_known {
            // Every job closed its input: the rest is not read.
            return Ok(());
        }
        if input_done && again.is_empty() && outlets.iter().all(|o| o.pending.is_none()) {
            // Dropping the write ends gives each job its end of input: not before
            // every job has started.
            let _ = all_taken.recv();
            return Ok(());
        }
        // Write what the pipes take.
        let waiting: Vec<usize> = (0..outlets.len())
            .filter(|&i| outlets[i].pending.is_some())
            .collect();
        if waiting.is_empty() {
            continue;
        }
        let mut fds: Vec<PollFd<'_>> = waiting
            .iter()
            .map(|&i| PollFd::new(&outlets[i].file, PollFlags::OUT))
            .collect();
        let tick = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: TICK.as_nanos() as i64,
        };
        match poll(&mut fds, (!all_known).then_some(&tick)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut closed = Vec::new();
        for (&i, ready) in waiting.iter().zip(ready) {
            if !ready {
                continue;
            }
            let outlet = &mut outlets[i];
            let Some((block, at)) = &mut outlet.pending else {
                continue;
            };
            match outlet.file.write(&block[*at..]) {
                Ok(n) => {
                    *at += n;
                    if *at == block.len() {
                        outlet.pending = None;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                // The job closed its input (or ended).
                Err(_) => closed.push(i),
            }
        }
        for &i in closed.iter().rev() {
            let outlet = outlets.remove(i);
            if let (Sharing::RoundRobin, Some((block, 0))) = (sharing, outlet.pending) {
                again.push_back(block);
            }
            next = next.min(outlets.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pipe::PipeOptions;
    use super::*;
    use std::io::Read;

    /// Reads a job's whole stdin, as a child would.
    fn drain(input: Input) -> std::thread::JoinHandle<Vec<u8>> {
        let Input::Pipe(end) = input else {
            panic!("not a pipe")
        };
        let fd = end.take().unwrap();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            File::from(fd).read_to_end(&mut out).unwrap();
            out
        })
    }

    fn blocks(data: &'static [u8], block: usize) -> Blocks {
        Blocks::new(
            Box::new(data),
            PipeOptions {
                block,
                ..PipeOptions::default()
            },
        )
    }

    #[test]
    fn round_robin_gives_each_block_whole_to_one_job() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let mut input = blocks(data, 1000);
        let mut feeder = Feeder::start(Sharing::RoundRobin).unwrap();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let first = input.next_block().unwrap();
                drain(feeder.outlet(first).unwrap())
            })
            .collect();
        feeder.finish(Some(input)).unwrap();
        let mut lines: Vec<u32> = readers
            .into_iter()
            .flat_map(|r| {
                let got = String::from_utf8(r.join().unwrap()).unwrap();
                assert!(got.is_empty() || got.ends_with('\n'));
                got.lines().map(|l| l.parse().unwrap()).collect::<Vec<_>>()
            })
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, (0..20_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_that_closes_its_input_early_hands_its_untaken_blocks_to_the_others() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let mut input = blocks(data, 100);
        let mut feeder = Feeder::start(Sharing::RoundRobin).unwrap();
        // This job reads nothing and goes away.
        let Input::Pipe(end) = feeder.outlet(input.next_block().unwrap()).unwrap() else {
            panic!()
        };
        let quitter = end.take().unwrap();
        let reader = drain(feeder.outlet(input.next_block().unwrap()).unwrap());
        drop(quitter);
        feeder.finish(Some(input)).unwrap();
        let got = String::from_utf8(reader.join().unwrap()).unwrap();
        // Every line but those of the quitter's first block (which it was given and
        // dropped unread) reached the other job.
        let lines = got.lines().count();
        assert!(lines >= 50_000 - 40, "{lines} lines");
    }

    #[test]
    fn tee_gives_every_block_to_every_job() {
        let data: Vec<u8> = (0..30_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let mut feeder = Feeder::start(Sharing::Tee).unwrap();
        let readers: Vec<_> = (0..4)
            .map(|_| drain(feeder.outlet(None).unwrap()))
            .collect();
        feeder.finish(Some(blocks(data, 4096))).unwrap();
        for reader in readers {
            assert!(reader.join().unwrap() == data);
        }
    }

    /// Whether `fd` has something to read within `wait`.
    fn readable(fd: &std::os::fd::OwnedFd, wait: Duration) -> bool {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let wait = rustix::time::Timespec::try_from(wait).unwrap();
        poll(&mut fds, Some(&wait)).unwrap() == 1
    }

    #[test]
    fn tee_writes_nothing_until_every_job_has_taken_its_pipe() {
        let mut feeder = Feeder::start(Sharing::Tee).unwrap();
        let ends: Vec<Arc<ReadEnd>> = (0..3)
            .map(|_| match feeder.outlet(None).unwrap() {
                Input::Pipe(end) => end,
                _ => panic!("not a pipe"),
            })
            .collect();
        let first = ends[0].take().unwrap();
        feeder.finish_later(Some(blocks(b"a\nb\n", 4096)));
        // Two jobs have not started: had the feeder written, the first job could read
        // its input, end, and free its slot before they take theirs.
        assert!(!readable(&first, Duration::from_millis(300)));
        let second = ends[1].take().unwrap();
        assert!(!readable(&first, Duration::from_millis(100)));
        // The third job never starts (it was skipped): its end is dropped untaken.
        drop(ends);
        assert!(readable(&first, Duration::from_secs(60)));
        feeder.finish(None).unwrap();
        for fd in [first, second] {
            let mut got = Vec::new();
            File::from(fd).read_to_end(&mut got).unwrap();
            assert_eq!(got, b"a\nb\n");
        }
    }

    #[test]
    fn round_robin_ends_no_job_s_input_before_every_job_has_taken_its_pipe() {
        let mut feeder = Feeder::start(Sharing::RoundRobin).unwrap();
        let end = |input| match input {
            Input::Pipe(end) => end,
            _ => panic!("not a pipe"),
        };
        let first = end(feeder.outlet(Some(b"1\n".to_vec())).unwrap());
        let second = end(feeder.outlet(Some(b"2\n".to_vec())).unwrap());
        feeder.finish_later(None);
        let first = first.take().unwrap();
        let mut got = [0; 2];
        File::from(first.try_clone().unwrap())
            .read_exact(&mut got)
            .unwrap();
        assert_eq!(&got, b"1\n");
        // Its block is written, and the input is over, but the second job has not
        // started: the first must not see its end (and end, and free its slot) yet.
        assert!(!readable(&first, Duration::from_millis(300)));
        drop(second);
        assert!(readable(&first, Duration::from_secs(60)));
        feeder.finish(None).unwrap();
        let mut rest = Vec::new();
        File::from(first).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}
