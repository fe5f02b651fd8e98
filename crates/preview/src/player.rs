//! Which frame shows when: the clock of the preview, kept apart from the window so it can be
//! tested frame by frame.

use mintframe_media::{Direction, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playback {
    Loop,
    PingPong,
}

/// The frame order of a range and the position in it, advanced by elapsed time.
#[derive(Debug, Clone)]
pub struct Player {
    order: Vec<usize>,
    pos: usize,
    carry_ms: f64,
    pub playing: bool,
}

/// The frames `from..=to` in the order `playback` (or a tag's own direction) plays them once
/// round. Ping-pong does not repeat the end frames (0 1 2 3 2 1, then 0 again).
pub fn order(from: usize, to: usize, playback: Playback, direction: Direction) -> Vec<usize> {
    let forward: Vec<usize> = (from..=to).collect();
    let pingpong = |v: Vec<usize>| {
        // Two frames ping-pong the same as they loop: there is no inner frame to repeat.
        let mut out = v.clone();
        if v.len() > 2 {
            out.extend(v[1..v.len() - 1].iter().rev());
        }
        out
    };
    match (direction, playback) {
        (Direction::PingPong, _) | (Direction::Forward, Playback::PingPong) => pingpong(forward),
        (Direction::Reverse, Playback::PingPong) => pingpong(forward.into_iter().rev().collect()),
        (Direction::Reverse, Playback::Loop) => forward.into_iter().rev().collect(),
        (Direction::Forward, Playback::Loop) => forward,
    }
}

impl Player {
    pub fn new(frame_count: usize) -> Player {
        Player {
            order: (0..frame_count.max(1)).collect(),
            pos: 0,
            carry_ms: 0.0,
            playing: true,
        }
    }

    /// Plays `tag` (or every frame) with `playback`; keeps showing the current frame if it is in
    /// the new range.
    pub fn select(&mut self, frame_count: usize, tag: Option<&Tag>, playback: Playback) {
        let current = self.frame();
        self.order = match tag {
            Some(t) => order(t.from, t.to, playback, t.direction),
            None => order(
                0,
                frame_count.saturating_sub(1),
                playback,
                Direction::Forward,
            ),
        };
        self.pos = self.order.iter().position(|f| *f == current).unwrap_or(0);
        self.carry_ms = 0.0;
    }

    pub fn frame(&self) -> usize {
        self.order.get(self.pos).copied().unwrap_or(0)
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.order.len().saturating_sub(1));
        self.carry_ms = 0.0;
    }

    /// Shows frame `frame` if the current range holds it.
    pub fn seek_frame(&mut self, frame: usize) -> bool {
        match self.order.iter().position(|f| *f == frame) {
            Some(p) => {
                self.seek(p);
                true
            }
            None => false,
        }
    }

    pub fn step(&mut self, by: isize) {
        let n = self.order.len() as isize;
        if n > 0 {
            self.pos = (self.pos as isize + by).rem_euclid(n) as usize;
        }
        self.carry_ms = 0.0;
    }

    /// Moves on by `elapsed_ms`; `duration_ms(frame)` says how long each frame shows. Returns
    /// whether the frame changed. Several frames may pass in one call (a slow redraw).
    pub fn advance(&mut self, elapsed_ms: f64, duration_ms: impl Fn(usize) -> f64) -> bool {
        if !self.playing || self.order.len() < 2 {
            return false;
        }
        let before = self.pos;
        self.carry_ms += elapsed_ms;
        // Bounded so a window that slept for an hour does not spin here.
        for _ in 0..10_000 {
            let d = duration_ms(self.frame()).max(1.0);
            if self.carry_ms < d {
                break;
            }
            self.carry_ms -= d;
            self.pos = (self.pos + 1) % self.order.len();
        }
        self.pos != before
    }

    /// Milliseconds until the next frame is due, for scheduling the next redraw.
    pub fn until_next_ms(&self, duration_ms: impl Fn(usize) -> f64) -> f64 {
        (duration_ms(self.frame()) - self.carry_ms).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_for_each_mode() {
        assert_eq!(
            order(0, 3, Playback::Loop, Direction::Forward),
            [0, 1, 2, 3]
        );
        assert_eq!(
            order(0, 3, Playback::PingPong, Direction::Forward),
            [0, 1, 2, 3, 2, 1]
        );
        assert_eq!(order(2, 4, Playback::Loop, Direction::Reverse), [4, 3, 2]);
        assert_eq!(
            order(0, 2, Playback::Loop, Direction::PingPong),
            [0, 1, 2, 1]
        );
        assert_eq!(order(5, 5, Playback::PingPong, Direction::Forward), [5]);
    }

    #[test]
    fn time_moves_frames_at_their_durations() {
        let mut p = Player::new(3);
        let d = |f: usize| [100.0, 200.0, 100.0][f];
        assert!(!p.advance(99.0, d));
        assert!(p.advance(1.0, d));
        assert_eq!(p.frame(), 1);
        assert!(!p.advance(150.0, d));
        // 50 ms left of frame 1, then all of frame 2 and 10 ms into frame 0 again.
        assert!(p.advance(160.0, d));
        assert_eq!(p.frame(), 0);
        p.playing = false;
        assert!(!p.advance(1000.0, d));
    }

    #[test]
    fn a_tag_keeps_the_frame_it_holds_and_seeks_by_frame() {
        let mut p = Player::new(8);
        p.seek(5);
        let tag = Tag {
            name: "run".into(),
            from: 4,
            to: 7,
            direction: Direction::Forward,
        };
        p.select(8, Some(&tag), Playback::Loop);
        assert_eq!((p.frame(), p.len()), (5, 4));
        assert!(!p.seek_frame(1));
        assert!(p.seek_frame(7));
        p.step(1);
        assert_eq!(p.frame(), 4);
        p.step(-1);
        assert_eq!(p.frame(), 7);
    }
}
