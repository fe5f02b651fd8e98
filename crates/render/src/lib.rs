//! The wgpu renderer: finding the adapters a headless render can use (for `mintframe doctor`),
//! and the headless compositor (`composite`) that draws a frame over a backdrop at integer zoom,
//! tiled, with onion skin and a pixel grid, and reads it back — on a GPU, or on Mesa's lavapipe.

mod composite;

/// The wgpu this crate draws with, for callers that hand it a device (the preview window).
pub use wgpu;

pub use composite::{
    Backdrop, Image, MAX_OUTPUT_SIDE, Onion, Renderer, SRGB_VIEW, Sampling, View, shader_source,
};

/// What a render can fail at; each names the value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error(
        "no graphics adapter: {0}; install Mesa's Vulkan drivers (mesa-vulkan-drivers) for CPU rendering"
    )]
    NoAdapter(String),
    #[error("the graphics device could not be opened: {0}")]
    Device(String),
    #[error("shader: {0}")]
    Shader(String),
    #[error("{0}")]
    BadImage(String),
    #[error("reading the render back failed: {0}")]
    Readback(String),
}

/// One adapter wgpu can open without a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> AdapterSummary {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_owned(),
        }
    }
}

/// What a headless render can use: every adapter on every backend this build supports, and
/// the one a render would pick (the default high-performance choice). One instance serves both,
/// since creating one loads every backend's driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapters {
    pub all: Vec<AdapterSummary>,
    pub preferred: Option<AdapterSummary>,
}

pub fn adapters() -> Adapters {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let all = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info()))
        .collect();
    let preferred = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .ok()
    .map(|a| AdapterSummary::from_info(&a.get_info()));
    Adapters { all, preferred }
}

#[cfg(test)]
mod tests;
