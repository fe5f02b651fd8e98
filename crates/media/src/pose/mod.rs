//! Pose conditioning made in Rust: skeleton animation templates ([`rig`]) and the images a
//! ControlNet or an img2img pass reads from a pose ([`render`]).

pub mod render;
pub mod rig;
