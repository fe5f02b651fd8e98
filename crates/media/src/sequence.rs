//! An animation as every part of the product holds it: equally sized RGBA frames, their
//! durations and named ranges (Aseprite's frame tags).

use crate::still::Rgba;

/// How a tag plays, as Aseprite names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    PingPong,
}

/// A named range of frames, inclusive at both ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub from: usize,
    pub to: usize,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub frames: Vec<Rgba>,
    /// Milliseconds each frame shows for; `None` where the source does not say (PNG sheets and
    /// sequences), so the player's fps applies.
    pub durations_ms: Vec<Option<u32>>,
    pub tags: Vec<Tag>,
}

impl Sequence {
    pub fn width(&self) -> u32 {
        self.frames.first().map(|f| f.width).unwrap_or(0)
    }
    pub fn height(&self) -> u32 {
        self.frames.first().map(|f| f.height).unwrap_or(0)
    }
}
