//! Pacing of bulk traffic (data and background priorities) so that it does not
//! fill the queue in front of the slowest link and delay the small requests
//! that share the connection.
//!
//! Stream priorities order what a node has not sent yet; they cannot reorder
//! packets already waiting in a router's buffer, or in the socket of a busy
//! receiver. Loss-based congestion control fills those buffers by design. The
//! pacer keeps them short: it watches the connection's round-trip time, takes
//! the lowest value seen recently as the empty-queue base, and adjusts the rate
//! at which bulk bytes enter the transport so that the queueing delay (round
//! trip minus base) stays near a target of half the base round trip (with a
//! floor, for links whose round trip is below the timers' resolution). Below
//! the target the rate grows, above it shrinks, in proportion to the distance
//! (the approach of LEDBAT, RFC 6817, applied to a rate). A standing queue at
//! the target keeps the link busy, so bulk throughput is barely reduced while
//! small requests wait at most the target.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use tokio::io::AsyncWrite;

use crate::transport::SendHalf;
use crate::Priority;

/// Rate at which bulk data starts on a new connection (bytes per second).
const INITIAL_RATE: f64 = 8.0 * MIB;
/// Bulk data is never paced below this rate, so it always progresses.
const MIN_RATE: f64 = 256.0 * 1024.0;
/// Bulk data is never paced above this rate: growth stops when the link
/// shows no queue at any rate (the sender, not the link, is the limit).
const MAX_RATE: f64 = 64.0 * 1024.0 * MIB;
/// Lowest queueing-delay target: the round trip of a local link is below what
/// timers and schedulers resolve.
const MIN_TARGET: Duration = Duration::from_micros(500);
/// Lowest queueing-delay target for the round trips of small requests, while
/// data of user requests is sent: user uploads may cost small requests this
/// much, so that a busy node does not starve them.
const DATA_REQUEST_TARGET: Duration = Duration::from_millis(1);
/// The same for background traffic (resync, rebalancing, scrub), which yields
/// to small requests almost entirely.
const BACKGROUND_REQUEST_TARGET: Duration = Duration::from_micros(100);
/// Round trips of small requests older than this are not used.
const REQUEST_SAMPLE_FRESH: Duration = Duration::from_millis(100);
/// Shortest interval between two rate adjustments.
const MIN_UPDATE: Duration = Duration::from_millis(2);
/// The base round trip is the lowest sample of the last two windows this long.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// Weight of the distance to the target queueing delay in one adjustment.
const GAIN: f64 = 0.05;
/// Weight of the queue's growth in one adjustment.
const DAMPING: f64 = 2.0;
/// Largest change of the rate in one adjustment, up or down.
const MAX_GROWTH: f64 = 1.25;
const MAX_SHRINK: f64 = 0.7;
/// Bytes that may be written at once: this many milliseconds of the rate.
const BURST: Duration = Duration::from_millis(2);
const MIN_BURST: usize = 16 * 1024;
const MAX_BURST: usize = 256 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

/// The lowest round trip of the last two windows: the round trip with empty
/// queues.
#[derive(Debug)]
struct BaseRtt {
    current: Duration,
    previous: Duration,
    window_start: Instant,
}

impl BaseRtt {
    fn new(now: Instant) -> Self {
        BaseRtt {
            current: Duration::MAX,
            previous: Duration::MAX,
            window_start: now,
        }
    }

    fn observe(&mut self, now: Instant, rtt: Duration) {
        if now.duration_since(self.window_start) >= BASE_WINDOW {
            self.previous = self.current;
            self.current = Duration::MAX;
            self.window_start = now;
        }
        self.current = self.current.min(rtt);
    }

    fn get(&self) -> Duration {
        self.current.min(self.previous)
    }
}

/// Round trips of small requests as their callers saw them, less the handlers'
/// time: they include what the transport's own estimate does not see, such as
/// a receiver too busy to read its socket or to schedule the request.
#[derive(Debug)]
struct RequestDelay {
    base: BaseRtt,
    min_target: Duration,
    smoothed: Duration,
    last_sample: Option<Instant>,
}

impl RequestDelay {
    /// How far the queueing delay of recent requests is from its target
    /// (relative: 1 for no queue, negative beyond the target), if requests
    /// were seen lately.
    fn off_target(&self, now: Instant) -> Option<f64> {
        let last = self.last_sample?;
        if now.duration_since(last) > REQUEST_SAMPLE_FRESH {
            return None;
        }
        let base = self.base.get();
        let target = self.min_target.max(base / 2).as_secs_f64();
        let queueing = self.smoothed.saturating_sub(base).as_secs_f64();
        Some((target - queueing) / target)
    }
}

/// The rate controller, without clocks or I/O.
#[derive(Debug)]
pub(crate) struct RateControl {
    rate: f64,
    tokens: f64,
    last_refill: Instant,
    last_update: Instant,
    base: BaseRtt,
    requests: RequestDelay,
    last_queueing: Option<f64>,
    /// Whether a writer had to wait since the last adjustment: the rate only
    /// grows while it is what limits the sender.
    limited: bool,
}

impl RateControl {
    /// A controller whose target for the queueing delay of small requests is
    /// at least `request_target`.
    pub(crate) fn new(now: Instant, request_target: Duration) -> Self {
        RateControl {
            rate: INITIAL_RATE,
            tokens: 0.0,
            last_refill: now,
            last_update: now,
            base: BaseRtt::new(now),
            requests: RequestDelay {
                base: BaseRtt::new(now),
                min_target: request_target,
                smoothed: Duration::ZERO,
                last_sample: None,
            },
            last_queueing: None,
            limited: false,
        }
    }

    /// The current rate in bytes per second.
    #[cfg(test)]
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes the round trip of a small request into account.
    pub(crate) fn observe_request(&mut self, now: Instant, rtt: Duration) {
        let r = &mut self.requests;
        r.smoothed = match r.last_sample {
            Some(_) => (r.smoothed * 3 + rtt) / 4,
            None => rtt,
        };
        r.last_sample = Some(now);
        // The base is the lowest smoothed value, not the luckiest sample: the
        // round trips of requests vary with scheduling even on an idle node.
        r.base.observe(now, r.smoothed);
    }

    /// Takes the transport's round-trip estimate into account, and the delay
    /// of small requests if `follow_requests` (see [`Path`]).
    pub(crate) fn observe(&mut self, now: Instant, rtt: Duration, follow_requests: bool) {
        self.base.observe(now, rtt);
        let since = now.duration_since(self.last_update);
        // One adjustment per round trip at most, so that the effect of the last
        // one can be seen.
        if since < MIN_UPDATE.max(rtt) {
            return;
        }
        self.last_update = now;
        let base = self.base.get();
        let target = MIN_TARGET.max(base / 2).as_secs_f64();
        let queueing = rtt.saturating_sub(base).as_secs_f64();
        // Proportional to the distance from the target, damped by how fast the
        // queue grows or shrinks (seconds of queue per second): a queue growing
        // by s seconds per second means bulk data enters s times faster than
        // the link drains it.
        let mut off_target = (target - queueing) / target;
        if let Some(requests) = self.requests.off_target(now).filter(|_| follow_requests) {
            off_target = off_target.min(requests);
        }
        let slope = match self.last_queueing {
            Some(previous) => (queueing - previous) / since.as_secs_f64(),
            None => 0.0,
        };
        self.last_queueing = Some(queueing);
        let mut factor = (1.0 + GAIN * off_target - DAMPING * slope).clamp(MAX_SHRINK, MAX_GROWTH);
        if !std::mem::take(&mut self.limited) {
            factor = factor.min(1.0);
        }
        self.rate = (self.rate * factor).clamp(MIN_RATE, MAX_RATE);
    }

    /// How long to wait before writing (zero: write now).
    pub(crate) fn wait(&mut self, now: Instant) -> Duration {
        let elapsed = now.duration_since(self.last_refill).as_secs_f64();
        self.last_refill = now;
        let burst = self.burst() as f64;
        self.tokens = (self.tokens + elapsed * self.rate).min(burst);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            self.limited = true;
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// The most bytes to write in one go.
    pub(crate) fn burst(&self) -> usize {
        ((self.rate * BURST.as_secs_f64()) as usize).clamp(MIN_BURST, MAX_BURST)
    }

    /// Counts `bytes` written.
    pub(crate) fn consume(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }
}

/// The pacer of one connection, shared by its bulk streams: one rate for data
/// of user requests and one for background traffic.
pub(crate) struct Pacer {
    controls: Mutex<[RateControl; 2]>,
    path: Box<dyn Fn() -> Path + Send + Sync>,
}

/// What a pacer reads before it lets bulk bytes through.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Path {
    /// The round trip of the connection the bulk bytes travel on.
    pub(crate) rtt: Duration,
    /// Whether the delay of small requests measures a queue that bulk data
    /// builds. It does not when bulk data travels on the bulk lane at idle CPU
    /// priority ([`crate::lane`]): the CPU, not the network, is what they share
    /// there, the scheduler already puts small requests first, and their delay
    /// measures the node's load (following it only throttled bulk data on busy
    /// nodes, to a tenth of its rate).
    pub(crate) follow_requests: bool,
}

/// Which of a pacer's rates paces `priority`, if any.
fn class(priority: Priority) -> Option<usize> {
    match priority {
        Priority::Data => Some(0),
        Priority::Background => Some(1),
        Priority::Control | Priority::Metadata => None,
    }
}

impl Pacer {
    /// A pacer reading the path of its bulk bytes from `path`.
    pub(crate) fn new(path: impl Fn() -> Path + Send + Sync + 'static) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Pacer {
            controls: Mutex::new([
                RateControl::new(now, DATA_REQUEST_TARGET),
                RateControl::new(now, BACKGROUND_REQUEST_TARGET),
            ]),
            path: Box::new(path),
        })
    }

    /// Reports the round trip of a small request, less its handler's time.
    pub(crate) fn observe_request(&self, rtt: Duration) {
        let now = Instant::now();
        for control in self.controls().iter_mut() {
            control.observe_request(now, rtt);
        }
    }

    fn controls(&self) -> std::sync::MutexGuard<'_, [RateControl; 2]> {
        self.controls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A stream's sending half whose data and background bytes go through the
/// connection's [`Pacer`].
pub(crate) struct PacedSend<S> {
    inner: S,
    pacer: Arc<Pacer>,
    class: Option<usize>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> PacedSend<S> {
    pub(crate) fn new(inner: S, pacer: Arc<Pacer>, priority: Priority) -> Self {
        PacedSend {
            inner,
            pacer,
            class: class(priority),
            sleep: None,
        }
    }
}

impl<S: SendHalf> SendHalf for PacedSend<S> {
    fn set_priority(&mut self, priority: Priority) {
        self.class = class(priority);
        self.inner.set_priority(priority);
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PacedSend<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let Some(class) = this.class else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                std::task::ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
            }
            let now = Instant::now();
            let path = (this.pacer.path)();
            let mut controls = this.pacer.controls();
            let control = &mut controls[class];
            control.observe(now, path.rtt, path.follow_requests);
            let wait = control.wait(now);
            if wait.is_zero() {
                let len = buf.len().min(control.burst());
                drop(controls);
                let written =
                    std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..len]))?;
                this.pacer.controls()[class].consume(written);
                return Poll::Ready(Ok(written));
            }
            drop(controls);
            this.sleep = Some(Box::pin(tokio::time::sleep(wait)));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds the controller a link whose queue grows with the rate above
    /// `capacity` and returns the rate it settles at.
    fn settle(base: Duration, capacity: f64) -> (f64, Duration) {
        let start = Instant::now();
        let mut c = RateControl::new(start, BACKGROUND_REQUEST_TARGET);
        let mut queue = 0.0f64; // bytes standing in the bottleneck queue
        let mut rtt = base;
        let step = MS;
        let mut sent_late = 0.0;
        for i in 1..20_000u32 {
            let now = start + step * i;
            // A greedy sender: writes whenever the pacer lets it.
            let mut sent = 0.0;
            while c.wait(now).is_zero() {
                let burst = c.burst();
                c.consume(burst);
                sent += burst as f64;
            }
            if i > 10_000 {
                sent_late += sent;
            }
            queue = (queue + sent - capacity * step.as_secs_f64()).max(0.0);
            rtt = base + Duration::from_secs_f64(queue / capacity);
            c.observe(now, rtt, true);
        }
        let rate = sent_late / (step * 10_000).as_secs_f64();
        (rate, rtt)
    }

    #[test]
    fn keeps_the_queue_near_half_the_base_round_trip() {
        let base = 10 * MS;
        let capacity = 12.0 * MIB;
        let (rate, rtt) = settle(base, capacity);
        assert!(rtt <= base * 2, "queue too long: {rtt:?}");
        assert!(rate > 0.8 * capacity, "link underused: {rate}");
        assert!(rate < 1.2 * capacity, "rate above capacity: {rate}");
    }

    #[test]
    fn fast_local_links_use_the_floor_target() {
        let base = Duration::from_micros(100);
        let capacity = 400.0 * MIB;
        let (rate, rtt) = settle(base, capacity);
        assert!(rtt <= base + 2 * MIN_TARGET, "queue too long: {rtt:?}");
        assert!(rate > 0.5 * capacity, "link underused: {rate}");
    }

    #[test]
    fn a_congested_link_never_stops_bulk_data() {
        let start = Instant::now();
        let mut c = RateControl::new(start, BACKGROUND_REQUEST_TARGET);
        c.observe(start, 10 * MS, true);
        for i in 1..1000u32 {
            c.observe(start + 10 * MS * i, 10 * MS + 500 * MS, true);
        }
        assert_eq!(c.rate(), MIN_RATE);
    }

    #[test]
    fn an_idle_sender_does_not_raise_the_rate() {
        let start = Instant::now();
        let mut c = RateControl::new(start, BACKGROUND_REQUEST_TARGET);
        for i in 1..1000u32 {
            c.observe(start + 10 * MS * i, 10 * MS, true);
        }
        assert_eq!(c.rate(), INITIAL_RATE);
    }

    /// A greedy sender paced by `c` for `steps` milliseconds while small
    /// requests see `request_rtt` and the transport a steady 1 ms.
    fn run_with_requests(c: &mut RateControl, start: Instant, steps: u32, request_rtt: Duration) {
        run_following(c, start, steps, request_rtt, true);
    }

    /// The same, telling the controller whether to follow the requests.
    fn run_following(
        c: &mut RateControl,
        start: Instant,
        steps: u32,
        request_rtt: Duration,
        follow_requests: bool,
    ) {
        for i in 1..=steps {
            let now = start + MS * i;
            while c.wait(now).is_zero() {
                let burst = c.burst();
                c.consume(burst);
            }
            c.observe_request(now, request_rtt);
            c.observe(now, MS, follow_requests);
        }
    }

    #[test]
    fn background_yields_to_delayed_requests_and_data_less_so() {
        let start = Instant::now();
        let mut data = RateControl::new(start, DATA_REQUEST_TARGET);
        let mut background = RateControl::new(start, BACKGROUND_REQUEST_TARGET);
        for c in [&mut data, &mut background] {
            // Requests first answer in 100 us, then take 600 us.
            run_with_requests(c, start, 1, Duration::from_micros(100));
            run_with_requests(c, start + MS, 2000, Duration::from_micros(600));
        }
        assert_eq!(background.rate(), MIN_RATE);
        assert!(data.rate() > 100.0 * INITIAL_RATE, "{}", data.rate());
        // Without recent requests, background traffic speeds up again.
        let later = start + Duration::from_secs(3);
        for i in 1..=2000 {
            let now = later + MS * i;
            while background.wait(now).is_zero() {
                let burst = background.burst();
                background.consume(burst);
            }
            background.observe(now, MS, true);
        }
        assert!(background.rate() > INITIAL_RATE, "{}", background.rate());
    }

    #[test]
    fn delayed_requests_are_ignored_when_the_path_says_so() {
        let start = Instant::now();
        let mut c = RateControl::new(start, BACKGROUND_REQUEST_TARGET);
        run_following(&mut c, start, 1, Duration::from_micros(100), false);
        run_following(&mut c, start + MS, 2000, Duration::from_micros(600), false);
        assert!(c.rate() > 100.0 * INITIAL_RATE, "{}", c.rate());
        // The same controller follows them again once told to.
        run_following(
            &mut c,
            start + 2001 * MS,
            2000,
            Duration::from_micros(600),
            true,
        );
        assert_eq!(c.rate(), MIN_RATE);
    }

    #[test]
    fn tokens_limit_bytes_to_the_rate() {
        let start = Instant::now();
        let mut c = RateControl::new(start, BACKGROUND_REQUEST_TARGET);
        assert!(c.wait(start).is_zero());
        c.consume(INITIAL_RATE as usize / 10);
        let wait = c.wait(start);
        assert!(wait >= 99 * MS && wait <= 101 * MS, "{wait:?}");
        assert!(c.wait(start + wait).is_zero());
    }
}
