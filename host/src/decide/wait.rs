//! How long to wait before looking again at an IP OCI is changing: [`Waits`].
//! Pure: the caller passes the time in.
//!
//! OCI changes a public IP asynchronously (PROVISIONING, ASSIGNING,
//! UNASSIGNING) and says nothing about when it will be done. A constant poll
//! is either late (a fast OCI waits for the interval) or costly (a slow OCI is
//! read many times). So the operator keeps, per transitional state, what
//! recent transitions say about OCI's time: an interval, `low` (a look this
//! soon found one still changing) to `high` (a look this late found one
//! done), and searches it as transitions come:
//!
//! - the first look comes at `high` when the interval is within the lateness
//!   tolerated ([`tolerance`]: a tenth of the time, [`MIN_STEP`] at least),
//!   else at its middle: a find there lowers `high`, a miss raises `low`, so
//!   a few transitions halve a wide interval down to a narrow one;
//! - found still changing below `high`: the next look is at `high` when a
//!   look there could only be a little late (within twice the tolerance),
//!   else halfway to it (a wide interval, after a first transition);
//! - found still changing at or past `high` (or with nothing learned): the
//!   time spent triples at each look below [`TRIPLE_BELOW`], grows by half after,
//!   so an OCI much slower than usual costs few reads, up to the longest wait
//!   the operator is configured with;
//! - found done at the first look twice in a row or more: OCI may have got
//!   faster, which such finds cannot tell; the next first look probes the
//!   middle of the interval, however narrow (else a `high` up to a tenth
//!   above OCI's time would stay there), and from the third find in a row
//!   `low` is lowered by 10%, then twice as much at each further one (up to
//!   80%), which reopens the interval below `high` for the search above;
//!   a find by a look that came later than its first look was due (it
//!   waited for a shared listing, or its pass for a worker) teaches nothing.
//!
//! Without history the first look comes after [`FIRST_GUESS`]. Steady, a
//! transition is seen within a few hundredths of its time after it ends
//! (a tenth, or [`MIN_STEP`], at most), in one read mostly and two when a
//! probe comes early (about 1.3 at 2 s in the unit model); after
//! OCI's time changes, a few transitions relearn it (the benchmark's sweep:
//! at most 2 reads per transition on average over the five at each delay,
//! the first after the change included).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::oci::PublicIpState;

/// The first look at a transition never seen before.
pub const FIRST_GUESS: Duration = Duration::from_millis(50);
/// The least lateness tolerated: about a read's own latency.
pub const MIN_STEP: Duration = Duration::from_millis(50);
/// The most an estimate can say OCI takes.
const MAX_ESTIMATE: Duration = Duration::from_secs(600);
/// The shortest wait: OCI's answer to the write took longer than this anyway.
const MIN_WAIT: Duration = Duration::from_millis(10);
/// Below this, a transition past what was learned triples the time spent
/// at each look; after it, grows it by half.
const TRIPLE_BELOW: Duration = Duration::from_secs(1);
/// How far the third of several first-look finds in a row lowers `low`
/// (doubling at each further one, up to [`MAX_PROBE`]).
const FIRST_PROBE: f64 = 0.1;
const MAX_PROBE: f64 = 0.8;

/// One IP's transition being watched.
#[derive(Debug, Clone, Copy)]
struct Watching {
    state: PublicIpState,
    began: Instant,
    /// Time since `began` of the last look that found it still changing.
    missed_at: Option<Duration>,
    /// The version of the estimate its first look was timed by: a find at
    /// the first look teaches only when no other transition taught since
    /// (many transitions watched together, all tested against the same
    /// estimate, teach once, not once each).
    tested: u64,
    /// When its first look was due, after `began`.
    first: Duration,
    /// When its next look is due.
    due: Instant,
    /// A look at it is under way (it joined a shared listing).
    looking: bool,
}

/// What recent transitions in one state say about OCI's time.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// A look this soon found a transition still changing (or a guess below
    /// `high` made to look for a faster OCI).
    low: Duration,
    /// A look this late found one done.
    high: Duration,
    /// Transitions in a row found done at the first look.
    first_look_finds: u32,
    /// Counts the changes: see [`Watching::tested`].
    version: u64,
}

impl Estimate {
    /// When to look first at a transition.
    fn first_look(&self) -> Duration {
        let width = self.high.saturating_sub(self.low);
        // Probing (found at the first look twice in a row or more): test
        // the middle even of an interval within the tolerance, or a high
        // up to a tenth above OCI's time would never come down.
        let probing = self.first_look_finds >= 2 && width > MIN_WAIT;
        if width <= tolerance(self.high) && !probing {
            self.high
        } else {
            self.low + width / 2
        }
    }
}

/// See the module docs. One per process, shared by reconciles (behind a lock).
#[derive(Debug)]
pub struct Waits {
    /// The longest wait between two looks while OCI's time is not known.
    longest: Duration,
    /// What OCI recently took, per transitional state.
    estimates: HashMap<PublicIpState, Estimate>,
    /// Transitions being watched, by ReservedIP UID.
    watching: HashMap<String, Watching>,
}

impl Waits {
    pub fn new(longest: Duration) -> Self {
        Self {
            longest: longest.max(MIN_WAIT),
            estimates: HashMap::new(),
            watching: HashMap::new(),
        }
    }

    /// A write left `uid`'s IP in `state` at `now`: when to look first.
    pub fn began(&mut self, uid: &str, state: PublicIpState, now: Instant) -> Duration {
        let first = self.first_look(state);
        let watching = Watching {
            state,
            began: now,
            missed_at: None,
            tested: self.estimates.get(&state).map_or(0, |e| e.version),
            first,
            due: now + first,
            looking: false,
        };
        self.watching.insert(uid.to_string(), watching);
        first
    }

    /// A look at `now` found `uid`'s IP still in `state`: when to look next.
    pub fn still(&mut self, uid: &str, state: PublicIpState, now: Instant) -> Duration {
        let Some(w) = self.watching.get(uid).copied().filter(|w| w.state == state) else {
            // A transition this process did not start (or the next one of a
            // chain, PROVISIONING then ASSIGNING): its start is unknown.
            if let Some(previous) = self.watching.get(uid).copied() {
                self.learn(previous, now);
            }
            return self.began(uid, state, now);
        };
        let spent = now.saturating_duration_since(w.began);
        let wait = match self.estimates.get(&state) {
            // Looked early (woken by something else): wait for the first look.
            Some(e) if spent + MIN_WAIT < e.first_look() => e.first_look() - spent,
            // Below what a recent transition took: halve the gap to it, or
            // close it when a look there could only be a little late.
            Some(e) if spent < e.high => {
                let gap = e.high - spent;
                if gap <= tolerance(spent) * 2 {
                    gap
                } else {
                    gap / 2
                }
            }
            // Past it, or nothing known yet: triple the time spent while
            // it is short (reads count more than lateness), add half of it
            // after (lateness counts more, and the interval this leaves
            // times the next transition within a quarter), up to the
            // longest wait.
            _ if spent < TRIPLE_BELOW => (spent.max(MIN_STEP) * 2).min(self.longest),
            _ => (spent / 2).min(self.longest),
        };
        let wait = wait.max(MIN_WAIT);
        if let Some(watching) = self.watching.get_mut(uid) {
            watching.missed_at = Some(spent);
            watching.due = now + wait;
            watching.looking = false;
        }
        wait
    }

    /// A fresh look at `now` found `uid`'s IP at rest: learn from its
    /// transition, if one was being watched.
    pub fn done(&mut self, uid: &str, now: Instant) {
        if let Some(w) = self.watching.remove(uid) {
            self.learn(w, now);
        }
    }

    /// Stops watching `uid` without learning (the pass failed, the
    /// ReservedIP went away).
    pub fn forget(&mut self, uid: &str) {
        self.watching.remove(uid);
    }

    /// A look at `uid`'s transition begins at `now` (if it is watched): how
    /// many looks one listing begun within `within` could answer, its own
    /// and those of the other watched transitions due by then and not being
    /// looked at already. A look overdue by as long is not counted: its
    /// pass is held up elsewhere (an error's backoff) and would keep the
    /// listing waiting.
    pub fn look_together(&mut self, uid: &str, now: Instant, within: Duration) -> Option<usize> {
        let me = self.watching.get_mut(uid)?;
        me.looking = true;
        let (earliest, horizon) = (now.checked_sub(within).unwrap_or(now), now + within);
        let others = self
            .watching
            .iter()
            .filter(|(u, w)| {
                u.as_str() != uid && !w.looking && (earliest..=horizon).contains(&w.due)
            })
            .count();
        Some(others + 1)
    }

    /// When the next transition in `state` will be looked at first, if
    /// anything is known about it.
    pub fn estimate(&self, state: PublicIpState) -> Option<Duration> {
        self.estimates.get(&state).map(Estimate::first_look)
    }

    fn first_look(&self, state: PublicIpState) -> Duration {
        self.estimate(state).unwrap_or(FIRST_GUESS).max(MIN_WAIT)
    }

    fn learn(&mut self, w: Watching, now: Instant) {
        // Learned from what OCI did, so not bounded by the longest wait
        // (that bounds guessing), only kept sane.
        let found = now
            .saturating_duration_since(w.began)
            .clamp(MIN_WAIT, MAX_ESTIMATE);
        let known = self.estimates.get(&w.state).copied();
        let version = known.map_or(0, |k| k.version) + 1;
        // A miss below what is known already (a pass woken early by
        // something else) says nothing new: the transition teaches as if
        // found at its first look, which is also how a faster OCI is noticed.
        let missed_at = w
            .missed_at
            .filter(|missed| known.is_none_or(|k| *missed > k.low || k.high <= *missed));
        let estimate = match (missed_at, known) {
            (Some(missed), known) => {
                // A done found late (its look waited for a shared listing, or
                // its pass for a worker) bounds OCI's time loosely: what is
                // known stays where it is tighter, while its bound is still
                // above this miss. One at or below the miss is stale (OCI got
                // slower).
                // (Past the filter above, a miss is above what is known as
                // `low`: it is the new one.)
                let high = known
                    .filter(|k| k.high > missed)
                    .map_or(found, |k| k.high.min(found));
                Estimate {
                    low: missed.min(high),
                    high,
                    first_look_finds: 0,
                    version,
                }
            }
            (None, None) => Estimate {
                low: Duration::ZERO,
                high: found,
                first_look_finds: 1,
                version,
            },
            (None, Some(known)) => {
                // Timed by an estimate another transition has improved on
                // since, or found by a look that came later than its first
                // look was due (it waited for a shared listing that waited
                // for others, or its pass for a worker): says nothing new.
                // (Counted as found at the first look, such finds, common in
                // a burst, lowered `low` again and again: probes far below
                // OCI's time, and the burst's last transition looked at with
                // them.)
                if w.tested != known.version || found > w.first + MIN_STEP {
                    return;
                }
                let finds = known.first_look_finds + 1;
                let high = found.min(known.high);
                // The second find in a row probes what is known (the middle
                // of the interval); further ones reopen it below.
                let probe = match finds {
                    0..=2 => 0.0,
                    n => (FIRST_PROBE * f64::from(1u32 << (n - 3).min(5))).min(MAX_PROBE),
                };
                Estimate {
                    low: known.low.min(high).min(high.mul_f64(1.0 - probe)),
                    high,
                    first_look_finds: finds,
                    version,
                }
            }
        };
        self.estimates.insert(w.state, estimate);
    }
}

/// How late a look may find a transition that took about `time`: a tenth
/// of it, and at least [`MIN_STEP`].
fn tolerance(time: Duration) -> Duration {
    (time / 10).max(MIN_STEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSIGNING: PublicIpState = PublicIpState::Assigning;

    /// Watches transitions that take `takes` each, looking when told to;
    /// returns (time from the transition's end to the look that saw it,
    /// looks) for each.
    fn run(waits: &mut Waits, takes: Duration, times: usize) -> Vec<(Duration, u32)> {
        let mut t = Instant::now();
        (0..times)
            .map(|_| {
                let began = t;
                let mut wait = waits.began("a", ASSIGNING, began);
                let mut looks = 0;
                loop {
                    t += wait;
                    looks += 1;
                    if t - began >= takes {
                        waits.done("a", t);
                        break (t - began - takes, looks);
                    }
                    wait = waits.still("a", ASSIGNING, t);
                }
            })
            .collect()
    }

    /// One transition begun at `t`, seen still changing after `missed_ms`
    /// and done after `found_ms`.
    fn learn_one(waits: &mut Waits, t: Instant, missed_ms: u64, found_ms: u64) {
        waits.began("a", ASSIGNING, t);
        waits.still("a", ASSIGNING, t + Duration::from_millis(missed_ms));
        waits.done("a", t + Duration::from_millis(found_ms));
    }

    #[test]
    fn after_oci_changes_its_time_a_few_transitions_relearn_it() {
        // The benchmark's sweep: 5 transitions at each time, one after
        // another, OCI slower at each step. Its targets: at most 2 looks per
        // transition on average (the first after the change included), and
        // the other 4 assigned within 1.1x the floor (the delay and 0.2 s of
        // calls) + 0.1 s on average: seen within a tenth of the delay and
        // 120 ms after it ends, less what the rest of a pass takes.
        let mut waits = Waits::new(Duration::from_secs(2));
        for ms in [0u64, 500, 1000, 2000, 5000] {
            let takes = Duration::from_millis(ms);
            let group = run(&mut waits, takes, 5);
            let looks: Vec<u32> = group.iter().map(|(_, l)| *l).collect();
            assert!(looks.iter().sum::<u32>() <= 10, "{ms} ms: looks {looks:?}");
            let late: Duration = group[1..].iter().map(|(late, _)| *late).sum::<Duration>() / 4;
            assert!(
                late <= takes / 10 + Duration::from_millis(120),
                "{ms} ms: seen {late:?} late on average, looks {looks:?}"
            );
        }
    }

    #[test]
    fn looks_due_together_are_counted_for_one_listing() {
        let mut waits = Waits::new(Duration::from_secs(30));
        let t = Instant::now();
        let within = Duration::from_millis(100);
        assert_eq!(waits.look_together("a", t, within), None, "not watched");
        for uid in ["a", "b", "c", "e"] {
            waits.began(uid, ASSIGNING, t); // first look at FIRST_GUESS
        }
        let later = t + Duration::from_secs(1);
        waits.began("d", ASSIGNING, later);
        let now = t + FIRST_GUESS;
        // d's look is due after the horizon: a goes with b, c and e...
        assert_eq!(waits.look_together("a", now, within), Some(4));
        // ...b with c and e (a's look is under way)...
        assert_eq!(waits.look_together("b", now, within), Some(3));
        waits.done("b", now);
        // ...c with e...
        assert_eq!(waits.look_together("c", now, within), Some(2));
        // ...a miss ends c's look: e goes with c's next, due soon.
        waits.still("c", ASSIGNING, now);
        assert_eq!(waits.look_together("e", now, within), Some(2));
        // d alone: the others are being looked at, or c, long overdue, is
        // held up elsewhere (not waited for).
        let now = later + FIRST_GUESS;
        assert_eq!(waits.look_together("d", now, within), Some(1));
    }

    #[test]
    fn steady_transitions_are_seen_soon_after_they_end_in_few_looks() {
        for ms in [0u64, 100, 500, 1000, 2000, 5000, 20_000] {
            let takes = Duration::from_millis(ms);
            let mut waits = Waits::new(Duration::from_secs(30));
            run(&mut waits, takes, 12); // learning
            let steady = run(&mut waits, takes, 50);
            let looks: u32 = steady.iter().map(|(_, l)| l).sum();
            let average = f64::from(looks) / steady.len() as f64;
            assert!(average <= 2.0, "{ms} ms: {average} looks on average");
            for (late, _) in steady {
                assert!(
                    late <= takes / 10 + MIN_STEP + MIN_WAIT,
                    "{ms} ms: seen {late:?} after it ended"
                );
            }
        }
    }

    #[test]
    fn the_second_transition_ever_is_seen_soon_in_one_or_two_looks() {
        // The benchmark's single ReservedIP, cold then warm: what the first
        // transition taught must time the second well. (Not so for a first
        // transition longer than the longest wait: its last two looks are
        // that far apart, and the second may be found up to half of it late.)
        for ms in [300u64, 1000, 1950] {
            let takes = Duration::from_millis(ms);
            let mut waits = Waits::new(Duration::from_secs(2));
            run(&mut waits, takes, 1);
            let (late, looks) = run(&mut waits, takes, 1)[0];
            assert!(looks <= 2, "{ms} ms: {looks} looks");
            assert!(
                late <= takes / 10 + MIN_STEP,
                "{ms} ms: seen {late:?} after it ended"
            );
        }
    }

    #[test]
    fn a_first_transition_costs_few_looks_whatever_it_takes() {
        for ms in [0u64, 500, 2000, 5000, 20_000] {
            let mut waits = Waits::new(Duration::from_secs(30));
            let first = run(&mut waits, Duration::from_millis(ms), 1);
            // Tripling from the first guess up to 1 s, then growing by
            // half: about log3(1 s / 50 ms) + log1.5(ms / 1 s) looks.
            assert!(first[0].1 <= 11, "{ms} ms: {} looks", first[0].1);
        }
    }

    #[test]
    fn the_estimate_follows_an_oci_that_gets_faster_or_slower() {
        let mut waits = Waits::new(Duration::from_secs(30));
        run(&mut waits, Duration::from_secs(5), 10);
        let faster = run(&mut waits, Duration::from_millis(500), 40);
        let (late, _) = faster.last().copied().unwrap_or_default();
        assert!(late <= Duration::from_millis(110), "late by {late:?}");
        let slower = run(&mut waits, Duration::from_secs(3), 10);
        let (late, looks) = slower.last().copied().unwrap_or_default();
        assert!(late <= Duration::from_millis(360), "late by {late:?}");
        assert!(looks <= 2);
    }

    #[test]
    fn transitions_watched_together_lower_the_estimate_once() {
        // The same history, then one find at the first look, or 50 at once.
        let after = |n: usize| {
            let mut waits = Waits::new(Duration::from_secs(30));
            run(&mut waits, Duration::from_secs(2), 12);
            let start = Instant::now();
            let names: Vec<String> = (0..n).map(|i| format!("ip{i}")).collect();
            let first = names
                .iter()
                .map(|n| waits.began(n, ASSIGNING, start))
                .max()
                .unwrap_or_default();
            for n in &names {
                waits.done(n, start + first);
            }
            waits.estimate(ASSIGNING).unwrap_or_default()
        };
        assert_eq!(after(50), after(1));
    }

    #[test]
    fn finds_by_looks_that_came_late_teach_nothing() {
        // Learned: still changing at 1.9 s, done at 2.0 s; then found at
        // the first look twice (the next first look probes).
        let mut waits = Waits::new(Duration::from_secs(2));
        let t = Instant::now();
        learn_one(&mut waits, t, 1900, 2000);
        run(&mut waits, Duration::from_secs(2), 2);
        let before = waits.estimate(ASSIGNING);
        // A burst: each transition's first look waits for a shared listing
        // that begins a second later, and finds it done.
        let t = t + Duration::from_secs(60);
        for i in 0..20u32 {
            let began = t + Duration::from_millis(100) * i;
            let first = waits.began("a", ASSIGNING, began);
            waits.done("a", began + first + Duration::from_secs(1));
        }
        assert_eq!(waits.estimate(ASSIGNING), before);
    }

    #[test]
    fn a_done_found_late_keeps_a_tighter_bound() {
        let mut waits = Waits::new(Duration::from_secs(2));
        let t = Instant::now();
        // Learned: 2.0 s found done, 1.9 s still changing.
        learn_one(&mut waits, t, 1900, 2000);
        let learned = waits.estimate(ASSIGNING);
        assert_eq!(learned, Some(Duration::from_millis(2000)));
        // The next one is missed at 1.5 s (woken early), then its look waits
        // for a shared listing until 2.9 s: OCI did not get slower for that.
        let t = t + Duration::from_secs(10);
        waits.began("b", ASSIGNING, t);
        waits.still("b", ASSIGNING, t + Duration::from_millis(1500));
        waits.done("b", t + Duration::from_millis(2900));
        assert_eq!(waits.estimate(ASSIGNING), learned);
        // A miss past the known bound is news: OCI is slower now.
        let t = t + Duration::from_secs(10);
        waits.began("c", ASSIGNING, t);
        waits.still("c", ASSIGNING, t + Duration::from_millis(2000));
        waits.done("c", t + Duration::from_millis(2500));
        // (between that miss and the find: looked at in the middle next)
        assert_eq!(waits.estimate(ASSIGNING), Some(Duration::from_millis(2250)));
    }

    #[test]
    fn transitions_woken_early_still_follow_an_oci_that_got_faster() {
        let mut waits = Waits::new(Duration::from_secs(2));
        let mut t = Instant::now();
        // OCI took 5 s for a while.
        run(&mut waits, Duration::from_secs(5), 5);
        let slow = waits.estimate(ASSIGNING).unwrap_or_default();
        assert!(slow > Duration::from_secs(4), "{slow:?}");
        // Now 2 s; every transition is also looked at 300 ms in (a pass
        // woken by a pod change), which finds it changing.
        let takes = Duration::from_secs(2);
        t += Duration::from_secs(100);
        for _ in 0..8 {
            let began = t;
            waits.began("a", ASSIGNING, began);
            let mut at = began + Duration::from_millis(300);
            loop {
                let wait = waits.still("a", ASSIGNING, at);
                at += wait;
                if at - began >= takes {
                    waits.done("a", at);
                    break;
                }
            }
            t = at + Duration::from_secs(1);
        }
        let now = waits.estimate(ASSIGNING).unwrap_or_default();
        assert!(
            now < Duration::from_millis(2600),
            "still {now:?} after 8 transitions of 2 s"
        );
    }

    #[test]
    fn a_high_bound_within_a_tenth_above_ocis_time_comes_down() {
        // Learned in a burst (a find timed by a shared listing): still
        // changing at 1.95 s, done at 2.134 s. OCI takes 2 s.
        let mut waits = Waits::new(Duration::from_secs(2));
        learn_one(&mut waits, Instant::now(), 1950, 2134);
        let seen = run(&mut waits, Duration::from_secs(2), 20);
        let looks: u32 = seen.iter().map(|(_, l)| l).sum();
        assert!(looks <= 30, "{looks} looks for 20 transitions");
        // Looking at the bound it knew, it would stay 134 ms late.
        for (i, (late, _)) in seen.iter().enumerate().skip(10) {
            assert!(
                *late <= Duration::from_millis(20),
                "transition {i} seen {late:?} late"
            );
        }
    }

    #[test]
    fn waits_for_an_unknown_time_never_exceed_the_longest() {
        let mut waits = Waits::new(Duration::from_secs(2));
        let now = Instant::now();
        waits.began("a", ASSIGNING, now);
        let mut t = now;
        for _ in 0..20 {
            let wait = waits.still("a", ASSIGNING, t);
            assert!(wait <= Duration::from_secs(2));
            t += wait;
        }
    }

    #[test]
    fn a_learned_time_beyond_the_longest_wait_costs_one_or_two_looks() {
        let mut waits = Waits::new(Duration::from_secs(2));
        run(&mut waits, Duration::from_secs(8), 12);
        let steady = run(&mut waits, Duration::from_secs(8), 20);
        let looks: u32 = steady.iter().map(|(_, l)| l).sum();
        assert!(looks <= 40, "{looks} looks for 20 transitions");
    }

    #[test]
    fn a_transition_not_begun_here_starts_from_the_first_look() {
        let mut waits = Waits::new(Duration::from_secs(30));
        let wait = waits.still("b", PublicIpState::Provisioning, Instant::now());
        assert_eq!(wait, FIRST_GUESS);
    }
}
