//! Host CPU per machine at the 200 ms polling cycle and at the 40 ms real-time cycle, and how
//! many machines one core could serve, next to a baseline measured in the same run.
//!
//! Two measurements per cycle:
//! - The sans-IO core: simulated machines play on a virtual line (`sim::loopback`) for 60 s of
//!   virtual time while every call into the host core is recorded; the recording is replayed
//!   into a fresh core, alone, and timed (the core is deterministic, so it does the same work,
//!   and the simulator's CPU is not counted). Median of several runs.
//! - The whole host as deployed: `SasHost` with its tokio task and serial transport over a
//!   pty pair, machines simulated on another thread, for 20 s of real time; the host thread's
//!   CPU time (user + system, `getrusage(RUSAGE_THREAD)`) is what counts.
//!
//! The baseline, measured in the same run on the same frames, is the codec alone: decoding and
//! re-encoding (with CRC) every host message and decoding every machine answer.
//!
//! Run: `cargo bench -p slot-interface --bench host_cpu`

// Floats only format the timing figures; no money or points here.
#![allow(clippy::float_arithmetic)]

use std::time::{Duration, Instant};

use slot_interface::codec::{Expect, HostMessage, Response};
use slot_interface::session::HostCore;
use slot_interface::sim::loopback::{HostCall, Loopback};
use slot_interface::sim::{Egm, SimConfig, Stored};
use slot_interface::{Address, HostConfig};

const SIMULATED: Duration = Duration::from_secs(60);
const RUNS: usize = 15;

struct Scenario {
    name: &'static str,
    machines: u8,
    real_time: bool,
}

fn config(machines: u8, real_time: bool) -> HostConfig {
    let mut config = HostConfig::new((1..=machines).map(|a| Address::new(a).unwrap()).collect());
    config.real_time_events = real_time;
    config
}

/// Runs the line and returns the host's recorded calls and the start time.
fn record(s: &Scenario) -> (Vec<HostCall>, Instant) {
    let start = Instant::now();
    let machines: Vec<Egm> = (1..=s.machines)
        .map(|a| {
            let mut c = SimConfig::new(Address::new(a).unwrap());
            c.seed = u64::from(a);
            Egm::new(c, Stored::default(), start).unwrap()
        })
        .collect();
    let mut line = Loopback::new(HostCore::new(config(s.machines, s.real_time), start), machines, start);
    line.transcript = Some(Vec::new());
    // Every machine plays a game every 2 s, staggered.
    let step = Duration::from_millis(100);
    let mut t = Duration::ZERO;
    while t < SIMULATED {
        line.run_for(step);
        t += step;
        let tick = (t.as_millis() / step.as_millis()) as usize;
        for (k, egm) in line.machines.iter_mut().enumerate() {
            if (tick + k * 3).is_multiple_of(20) {
                egm.play().unwrap();
            }
        }
    }
    (line.transcript.take().unwrap(), start)
}

/// Replays the calls into a fresh core; returns the time taken and how many messages it sent.
fn replay(s: &Scenario, calls: &[HostCall], start: Instant) -> (Duration, usize) {
    let mut core = HostCore::new(config(s.machines, s.real_time), start);
    let mut sent = 0;
    let began = Instant::now();
    for call in calls {
        match call {
            HostCall::Transmit(t) => {
                if core.poll_transmit(*t).is_some() {
                    sent += 1;
                }
            }
            HostCall::Input(t, bytes) => core.handle_input(bytes, *t),
            HostCall::Timeout(t) => core.handle_timeout(*t),
        }
        while core.poll_output().is_some() {}
    }
    (began.elapsed(), std::hint::black_box(sent))
}

/// The codec alone on the same traffic.
fn baseline(s: &Scenario, calls: &[HostCall], start: Instant) -> Duration {
    // Recover the frames: replay once (untimed) to get the bytes the host sent.
    let mut core = HostCore::new(config(s.machines, s.real_time), start);
    let mut frames: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for call in calls {
        match call {
            HostCall::Transmit(t) => {
                if let Some(bytes) = core.poll_transmit(*t) {
                    frames.push((bytes, Vec::new()));
                }
            }
            HostCall::Input(t, bytes) => {
                if let Some(last) = frames.last_mut() {
                    last.1.extend_from_slice(bytes);
                }
                core.handle_input(bytes, *t);
            }
            HostCall::Timeout(t) => core.handle_timeout(*t),
        }
        while core.poll_output().is_some() {}
    }
    let began = Instant::now();
    for (sent, answer) in &frames {
        let Ok(Some((message, _))) = HostMessage::decode(sent) else { continue };
        let again = message.encode().unwrap();
        std::hint::black_box(&again);
        if let (Some(address), Some(expect)) = (message.address(), Expect::for_message(&message)) {
            let _ = std::hint::black_box(Response::decode(address, expect, answer, true));
        }
    }
    began.elapsed()
}

/// CPU time of the calling thread so far: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| Duration::from_micros((t.tv_sec() * 1_000_000 + t.tv_usec()) as u64);
    (micros(usage.user_time()), micros(usage.system_time()))
}

/// Machines on the master end of a pty, on their own thread and runtime: every machine hears
/// every message. Sends back the path of the other end for the host to open.
fn machines_thread(
    s_machines: u8,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    path: std::sync::mpsc::Sender<String>,
    opened: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    use slot_interface::codec::{Framed, HostFramer};
    use std::os::fd::AsRawFd;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let (stream, other_end) = tokio_serial::SerialStream::pair().expect("pty pair");
            let name = std::fs::read_link(format!("/proc/self/fd/{}", other_end.as_raw_fd())).expect("pty name");
            // The host opens that end itself; its lock must go first.
            drop(other_end);
            path.send(name.to_string_lossy().into_owned()).expect("bench waits for the path");
            opened.recv().expect("the host opens its end");
            let now = Instant::now();
            let mut port = slot_interface::SasPort::from_stream(stream);
            let mut egms: Vec<Egm> = (1..=s_machines)
                .map(|a| Egm::new(SimConfig::new(Address::new(a).unwrap()), Stored::default(), now).unwrap())
                .collect();
            let mut framers: Vec<HostFramer> = egms.iter().map(|_| HostFramer::new(Duration::from_millis(5))).collect();
            let mut rx = Vec::new();
            let mut games = tokio::time::interval(Duration::from_millis(2_000 / u64::from(s_machines)));
            let mut next = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::select! {
                    got = port.recv(&mut rx) => {
                        if got.is_err() { return; }
                        let now = Instant::now();
                        for (egm, framer) in egms.iter_mut().zip(framers.iter_mut()) {
                            for item in framer.push(&rx, now) {
                                if let Framed::Message(m) = item
                                    && let Some(answer) = egm.receive(&m, now)
                                {
                                    let _ = port.send_data(&answer).await;
                                }
                            }
                        }
                        rx.clear();
                    }
                    _ = games.tick() => {
                        let _ = egms[next].play();
                        next = (next + 1) % egms.len();
                    }
                }
            }
        });
    })
}

/// Runs the real async host against machines on a pty for `wall` and returns the host
/// thread's CPU time (user, system) and how many events it delivered.
fn whole_host(s: &Scenario, wall: Duration) -> ((Duration, Duration), usize) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (path_tx, path_rx) = std::sync::mpsc::channel();
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let machines = machines_thread(s.machines, stop.clone(), path_tx, opened_rx);
    let path = path_rx.recv().expect("the machines' pty");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(async {
        let port = slot_interface::SasPort::open(&path, slot_interface::LinkMode::Plain).expect("host end of the pty");
        opened_tx.send(()).expect("machines waiting");
        let (host, mut events) = slot_interface::SasHost::spawn(port, config(s.machines, s.real_time));
        let cpu_before = thread_cpu();
        let mut delivered = 0;
        let deadline = tokio::time::Instant::now() + wall;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, events.recv()).await {
            delivered += 1;
        }
        let cpu_after = thread_cpu();
        let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        let _ = host.stop().await;
        (cpu, delivered)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(runtime);
    let _ = machines.join();
    result
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let scenarios = [
        Scenario { name: "200 ms cycle (general polls, no real-time events)", machines: 8, real_time: false },
        Scenario { name: "40 ms cycle (real-time events)", machines: 4, real_time: true },
    ];
    println!("SAS host CPU: {} s of virtual line traffic replayed into the host core, median of {RUNS} runs", SIMULATED.as_secs());
    println!("(every machine plays a game every 2 s; baseline = decode + encode + CRC of the same frames, no state machine)\n");
    for s in &scenarios {
        let (calls, start) = record(s);
        let mut host = Vec::new();
        let mut base = Vec::new();
        let mut sent = 0;
        for _ in 0..RUNS {
            let (t, n) = replay(s, &calls, start);
            host.push(t);
            sent = n;
            base.push(baseline(s, &calls, start));
        }
        let per_machine_second = |d: Duration| d.as_secs_f64() * 1e6 / (f64::from(s.machines) * SIMULATED.as_secs_f64());
        let host_us = per_machine_second(median(host));
        let base_us = per_machine_second(median(base));
        println!("{}", s.name);
        println!("  machines on the line:        {}", s.machines);
        println!("  messages sent by the host:   {sent} ({:.0} per machine per second)", sent as f64 / (f64::from(s.machines) * SIMULATED.as_secs_f64()));
        println!("  host CPU per machine:        {host_us:.2} us per second ({:.4} % of a core)", host_us / 1e4);
        println!("  baseline codec per machine:  {base_us:.2} us per second");
        println!("  state machine / baseline:    {:.1}x", host_us / base_us);
        println!("  machines one core could serve (core alone):     {:.0}", 1e6 / host_us);
        let wall = Duration::from_secs(20);
        let ((user, system), events) = whole_host(s, wall);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / (f64::from(s.machines) * wall.as_secs_f64());
        let whole_us = per(user + system);
        println!(
            "  whole host (task + pty IO), {} s real time: {whole_us:.0} us per machine per second ({:.3} % of a core; user {:.0}, system {:.0}), {events} events",
            wall.as_secs(),
            whole_us / 1e4,
            per(user),
            per(system)
        );
        println!("  machines one core could serve (whole host):     {:.0}\n", 1e6 / whole_us);
    }
    println!("The whole-host figure includes the kernel's pty work (a pty wakes a worker thread for every");
    println!("write); a real UART costs less. The serial line, not the CPU, bounds a SAS line: at 19 200 baud");
    println!("with a 20 ms answer window a line carries a few machines at 40 ms and a few dozen at 200 ms.");
}
